package simulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// hostileTestConfig is every API in hostile mode with the faults that
// would make paging by hand awkward (throttling, 5xx, drift, latency)
// turned off, so that one pass over each list sees exactly the records the
// *Records functions report.
func hostileTestConfig() Config {
	cfg := testConfig()
	cfg.SWR.RecordsPerOperation = 400
	cfg.Artifact = ArtifactConfig{TenantID: "tenant0001", RecordsPerRepo: 400, Start: testStart,
		Repos: []ArtifactRepo{{Module: "file", Repo: "r1"}, {Module: "repository", Repo: "r2"}}}
	cfg.TaurusDB = TaurusDBConfig{Instances: []string{"t1"}, Files: 400, Start: testStart}
	cfg.DBSS = DBSSConfig{Instances: []string{"d1"}, Records: 400, Start: testStart}
	cfg = Hostile(cfg)
	f := cfg.Faults
	cfg.Faults = Faults{MalformedRate: f.MalformedRate * 3, OddRate: f.OddRate}
	return cfg
}

// servedList pages through one list newest first, 20 at a time, and
// returns each record's bytes as served.
func servedList(t *testing.T, s *Server, method, target string, body func(page int) string, list func([]byte) []json.RawMessage) []string {
	t.Helper()
	var out []string
	for page := 1; ; page++ {
		u := strings.ReplaceAll(target, "{offset}", fmt.Sprint((page-1)*20))
		u = strings.ReplaceAll(u, "{page}", fmt.Sprint(page))
		var b string
		if body != nil {
			b = body(page)
		}
		r := httptest.NewRequest(method, u, strings.NewReader(b))
		r.Header.Set("X-Auth-Token", testToken)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("%s %s: status %d: %s", method, u, w.Code, w.Body)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s: the page is not JSON: %.300s", method, u, w.Body)
		}
		recs := list(w.Body.Bytes())
		for _, r := range recs {
			out = append(out, string(r))
		}
		if len(recs) < 20 {
			return out
		}
	}
}

// TestHostileRecordsAreServedAsReported pages through every API in hostile
// mode: each record is served byte for byte as its Raw says, malformed
// and odd records of every kind occur in every API, and odd records are
// valid JSON whose fields carry what the *Records functions report.
func TestHostileRecordsAreServedAsReported(t *testing.T) {
	cfg := hostileTestConfig()
	s := New(cfg)
	type listed struct {
		name   string
		served []string
		raw    []string // newest first
		bad    []string
		odd    []string
	}
	var lists []listed

	swrList := func(b []byte) []json.RawMessage {
		var p struct {
			AuditLogs []json.RawMessage `json:"audit_logs"`
		}
		_ = json.Unmarshal(b, &p)
		return p.AuditLogs
	}
	for _, op := range swrOperations {
		l := listed{name: "swr " + op}
		l.served = servedList(t, s, http.MethodGet, auditPath(testProject, testInstance)+"?operation="+op+"&limit=20&offset={offset}", nil, swrList)
		recs := s.SWRRecords(testInstance, op)
		for i := len(recs) - 1; i >= 0; i-- {
			r := recs[i]
			l.raw, l.bad, l.odd = append(l.raw, r.Raw), append(l.bad, r.Malformed), append(l.odd, r.Odd)
			if r.Malformed != "" {
				continue
			}
			var got testRecord
			if err := json.Unmarshal([]byte(r.Raw), &got); err != nil {
				t.Fatalf("swr %s record %d (%s): %v: %s", op, r.ID, r.Odd, err, r.Raw)
			}
			want := testRecord{ID: r.ID, OpTime: r.OpTime.Format(opTimeLayout), Operation: op, Resource: r.Resource, ResourceType: r.ResourceType, Username: r.Username}
			if got != want {
				t.Errorf("swr %s record %d (%s): served %+v, reported %+v", op, r.ID, r.Odd, got, want)
			}
		}
		lists = append(lists, l)
	}
	for _, repo := range cfg.Artifact.Repos {
		l := listed{name: "artifact " + repo.Repo}
		l.served = servedList(t, s, http.MethodGet, "/cloudartifact/v5/tenant0001/"+testProject+"/"+repo.Module+"/"+repo.Repo+"/audit?page_size=20&page_num={page}", nil,
			func(b []byte) []json.RawMessage {
				var p struct {
					Result struct{ AuditInfoList []json.RawMessage }
				}
				_ = json.Unmarshal(b, &p)
				return p.Result.AuditInfoList
			})
		recs := s.ArtifactRecords(repo.Module, repo.Repo)
		for i := len(recs) - 1; i >= 0; i-- {
			r := recs[i]
			l.raw, l.bad, l.odd = append(l.raw, r.Raw), append(l.bad, r.Malformed), append(l.odd, r.Odd)
			if r.Malformed != "" {
				continue
			}
			var got struct{ ID, Operator, Data, Time string }
			if err := json.Unmarshal([]byte(r.Raw), &got); err != nil {
				t.Fatalf("artifact record %s (%s): %v", r.ID, r.Odd, err)
			}
			if got.ID != r.ID || got.Operator != r.Operator || got.Data != r.Data || got.Time != r.Time.Format(artifactTimeLayout) {
				t.Errorf("artifact record %s (%s): served %+v", r.ID, r.Odd, got)
			}
		}
		lists = append(lists, l)
	}
	{
		l := listed{name: "taurusdb"}
		l.served = servedList(t, s, http.MethodGet, "/v3/"+testProject+"/instances/t1/audit-logs?start_time=2024-03-01T00:00:00%2B0800&end_time=2024-03-30T00:00:00%2B0800&limit=20&offset={offset}", nil,
			func(b []byte) []json.RawMessage {
				var p struct {
					AuditLogs []json.RawMessage `json:"audit_logs"`
				}
				_ = json.Unmarshal(b, &p)
				return p.AuditLogs
			})
		recs := s.TaurusDBRecords("t1")
		for i := len(recs) - 1; i >= 0; i-- {
			r := recs[i]
			if r.EndTime.Before(time.Date(2024, 2, 29, 16, 0, 0, 0, time.UTC)) || r.EndTime.After(time.Date(2024, 3, 29, 16, 0, 0, 0, time.UTC)) {
				continue
			}
			l.raw, l.bad, l.odd = append(l.raw, r.Raw), append(l.bad, r.Malformed), append(l.odd, r.Odd)
		}
		lists = append(lists, l)
	}
	{
		l := listed{name: "dbss"}
		l.served = servedList(t, s, http.MethodPost, "/v1/"+testProject+"/audit/d1/operation-log", func(page int) string {
			return fmt.Sprintf(`{"time":{"start_time":"2024-01-01 00:00:00","end_time":"2024-12-01 00:00:00"},"page":"%d","size":"20"}`, page)
		}, func(b []byte) []json.RawMessage {
			var p struct {
				OperateLog []json.RawMessage `json:"operate_log"`
			}
			_ = json.Unmarshal(b, &p)
			return p.OperateLog
		})
		recs := s.DBSSRecords("d1")
		for i := len(recs) - 1; i >= 0; i-- {
			r := recs[i]
			l.raw, l.bad, l.odd = append(l.raw, r.Raw), append(l.bad, r.Malformed), append(l.odd, r.Odd)
		}
		lists = append(lists, l)
	}

	allOdd := map[string]bool{}
	for _, l := range lists {
		if len(l.served) != len(l.raw) || len(l.served) < 100 {
			t.Errorf("%s: %d records served, %d reported", l.name, len(l.served), len(l.raw))
			continue
		}
		bad, odd := map[string]int{}, map[string]int{}
		for i := range l.served {
			if l.served[i] != l.raw[i] {
				t.Errorf("%s record %d: served\n%s\nreported Raw\n%s", l.name, i, l.served[i], l.raw[i])
			}
			if !json.Valid([]byte(l.raw[i])) {
				t.Errorf("%s record %d is not JSON: %s", l.name, i, l.raw[i])
			}
			if l.bad[i] != "" {
				bad[l.bad[i]]++
			}
			if l.odd[i] != "" {
				odd[l.odd[i]]++
				allOdd[l.odd[i]] = true
			}
		}
		if len(bad) != 3 {
			t.Errorf("%s: malformed records by kind %v, want all three kinds", l.name, bad)
		}
		if len(odd) < 4 {
			t.Errorf("%s: odd records by kind %v, want most kinds", l.name, odd)
		}
		t.Logf("%s: %d records, malformed %v, odd %v", l.name, len(l.served), bad, odd)
	}
	if len(allOdd) != len(oddKinds) {
		t.Errorf("odd kinds served %v, want all of %v", allOdd, oddKinds)
	}
}

// TestHostileSameTime checks the dataset options of Hostile: SWR runs of
// records sharing one op_time straddle page edges, and a DBSS or TaurusDB
// second holds more records than a page.
func TestHostileSameTime(t *testing.T) {
	s := New(hostileTestConfig())
	straddles := 0
	for _, op := range swrOperations {
		recs := s.SWRRecords(testInstance, op)
		for i := 1; i < len(recs); i++ {
			if recs[i].OpTime.Before(recs[i-1].OpTime) {
				t.Fatalf("swr %s: op_time goes back at record %d", op, recs[i].ID)
			}
			// The list is newest first: a page edge of limit 20 falls
			// between ascending positions len-1-20k and len-20k.
			if (len(recs)-i)%20 == 0 && recs[i].OpTime.Equal(recs[i-1].OpTime) {
				straddles++
			}
		}
	}
	if straddles == 0 {
		t.Error("no SWR millisecond straddles a page edge")
	}
	bySecond := map[time.Time]int{}
	for _, r := range s.DBSSRecords("d1") {
		bySecond[r.Time]++
	}
	for _, r := range s.TaurusDBRecords("t1") {
		bySecond[r.EndTime]++
	}
	big := 0
	for _, n := range bySecond {
		if n > 20 {
			big++
		}
	}
	if big == 0 {
		t.Error("no DBSS or TaurusDB second holds more than a page of 20")
	}
	t.Logf("%d SWR page edges inside one millisecond; %d seconds hold more than 20 records", straddles, big)
}

// TestNoRetryAfterRate throttles everything: some 429s carry Retry-After,
// some do not.
func TestNoRetryAfterRate(t *testing.T) {
	cfg := testConfig()
	cfg.Faults = Faults{ThrottleRate: 1, RetryAfter: time.Second, NoRetryAfterRate: 0.5}
	s := New(cfg)
	with, without := 0, 0
	for range 40 {
		w := get(t, s, auditPath(testProject, testInstance)+"?operation=pull")
		if w.Code != http.StatusTooManyRequests {
			t.Fatalf("status %d", w.Code)
		}
		switch w.Header().Get("Retry-After") {
		case "1":
			with++
		case "":
			without++
		default:
			t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
		}
	}
	if with == 0 || without == 0 {
		t.Errorf("%d 429s with Retry-After, %d without; want both", with, without)
	}
}
