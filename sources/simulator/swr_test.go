package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestAuditLogsValidation(t *testing.T) {
	s := New(testConfig())
	tests := []struct {
		name   string
		path   string
		query  string
		status int
		code   string
	}{
		{"defaults", auditPath(testProject, testInstance), "operation=pull", 200, ""},
		{"create", auditPath(testProject, testInstance), "operation=create", 200, ""},
		{"delete", auditPath(testProject, testInstance), "operation=delete", 200, ""},
		{"offset multiple of default limit", auditPath(testProject, testInstance), "operation=pull&offset=20", 200, ""},
		{"limit 100 offset 200", auditPath(testProject, testInstance), "operation=pull&limit=100&offset=200", 200, ""},
		{"limit 1 any offset", auditPath(testProject, testInstance), "operation=pull&limit=1&offset=3", 200, ""},
		{"empty limit means default", auditPath(testProject, testInstance), "operation=pull&limit=&offset=10", 200, ""},
		{"unknown parameter ignored", auditPath(testProject, testInstance), "operation=pull&foo=bar", 200, ""},
		{"missing operation", auditPath(testProject, testInstance), "", 400, codeSWRInvalidParam},
		{"empty operation", auditPath(testProject, testInstance), "operation=", 400, codeSWRInvalidParam},
		{"operation case", auditPath(testProject, testInstance), "operation=PULL", 400, codeSWRInvalidParam},
		{"operation update", auditPath(testProject, testInstance), "operation=update", 400, codeSWRInvalidParam},
		{"limit 0", auditPath(testProject, testInstance), "operation=pull&limit=0", 400, codeSWRInvalidParam},
		{"limit 101", auditPath(testProject, testInstance), "operation=pull&limit=101", 400, codeSWRInvalidParam},
		{"limit negative", auditPath(testProject, testInstance), "operation=pull&limit=-5", 400, codeSWRInvalidParam},
		{"limit not a number", auditPath(testProject, testInstance), "operation=pull&limit=ten", 400, codeSWRInvalidParam},
		{"limit float", auditPath(testProject, testInstance), "operation=pull&limit=1.5", 400, codeSWRInvalidParam},
		{"offset negative", auditPath(testProject, testInstance), "operation=pull&offset=-10", 400, codeSWRInvalidParam},
		{"offset not multiple", auditPath(testProject, testInstance), "operation=pull&offset=5", 400, codeSWRInvalidParam},
		{"offset not multiple of limit", auditPath(testProject, testInstance), "operation=pull&limit=20&offset=30", 400, codeSWRInvalidParam},
		{"offset not a number", auditPath(testProject, testInstance), "operation=pull&offset=x", 400, codeSWRInvalidParam},
		{"offset huge", auditPath(testProject, testInstance), "operation=pull&offset=99999999999999999999", 400, codeSWRInvalidParam},
		{"other project", auditPath("0000", testInstance), "operation=pull", 403, codeSWRForbidden},
		{"unknown instance", auditPath(testProject, "nope"), "operation=pull", 404, codeSWRInstanceNotFound},
		{"unknown API", "/v2/" + testProject + "/instances/" + testInstance + "/audit-log", "operation=pull", 404, codeAPINotFound},
		{"unknown version", "/v3/" + testProject + "/instances/" + testInstance + "/audit-logs", "operation=pull", 404, codeAPINotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(t, s, tt.path+"?"+tt.query)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.status, w.Body)
			}
			if tt.code == "" {
				return
			}
			e := decodeError(t, w.Body.Bytes())
			if e.ErrorCode != tt.code || e.ErrorMsg == "" {
				t.Errorf("error %+v, want code %s", e, tt.code)
			}
		})
	}

	t.Run("wrong method", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, auditPath(testProject, testInstance)+"?operation=pull", nil)
		r.Header.Set("X-Auth-Token", testToken)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != http.StatusNotFound || decodeError(t, w.Body.Bytes()).ErrorCode != codeAPINotFound {
			t.Errorf("POST: %d %s", w.Code, w.Body)
		}
	})
}

var opTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func TestAuditLogsPaging(t *testing.T) {
	s := New(testConfig())
	for _, op := range []string{"pull", "create", "delete"} {
		t.Run(op, func(t *testing.T) {
			want := s.SWRRecords(testInstance, op)
			if len(want) != 25 {
				t.Fatalf("SWRRecords: %d records, want 25", len(want))
			}
			var got []testRecord
			sizes := []int{}
			for offset := 0; ; offset += 10 {
				p := getPage(t, s, testInstance, fmt.Sprintf("operation=%s&limit=10&offset=%d", op, offset))
				if p.Total != 25 {
					t.Fatalf("total %d, want 25", p.Total)
				}
				sizes = append(sizes, len(p.AuditLogs))
				got = append(got, p.AuditLogs...)
				if len(p.AuditLogs) == 0 {
					break
				}
			}
			if fmt.Sprint(sizes) != "[10 10 5 0]" {
				t.Errorf("page sizes %v, want [10 10 5 0]", sizes)
			}
			if len(got) != len(want) {
				t.Fatalf("paged %d records, want %d", len(got), len(want))
			}
			for i, g := range got {
				w := want[len(want)-1-i] // newest first
				if g.ID != w.ID || g.Operation != op || g.OpTime != w.OpTime.Format(opTimeLayout) {
					t.Errorf("record %d: got %+v, want %+v", i, g, w)
				}
				if !opTimeRE.MatchString(g.OpTime) {
					t.Errorf("op_time %q is not RFC 3339 UTC with milliseconds", g.OpTime)
				}
				if i > 0 && !(g.ID < got[i-1].ID && g.OpTime < got[i-1].OpTime) {
					t.Errorf("record %d (%d, %s) not older than record %d (%d, %s)", i, g.ID, g.OpTime, i-1, got[i-1].ID, got[i-1].OpTime)
				}
			}
		})
	}

	t.Run("default limit", func(t *testing.T) {
		p := getPage(t, s, testInstance, "operation=pull")
		if len(p.AuditLogs) != 10 {
			t.Errorf("%d records, want the default 10", len(p.AuditLogs))
		}
	})
	t.Run("past the end", func(t *testing.T) {
		w := get(t, s, auditPath(testProject, testInstance)+"?operation=pull&limit=50&offset=100")
		if w.Code != 200 || w.Body.String() != `{"audit_logs":[],"total":25}` {
			t.Errorf("got %d %s", w.Code, w.Body)
		}
	})
}

func TestSharedIDSequence(t *testing.T) {
	s := New(testConfig())
	for _, inst := range []string{testInstance, testInstanceB} {
		var all []SWRRecord
		for _, op := range []string{"pull", "create", "delete"} {
			recs := s.SWRRecords(inst, op)
			sparse := false
			for i := 1; i < len(recs); i++ {
				if recs[i].ID <= recs[i-1].ID || !recs[i].OpTime.After(recs[i-1].OpTime) {
					t.Errorf("%s %s: ids or times not increasing at %d", inst, op, i)
				}
				sparse = sparse || recs[i].ID-recs[i-1].ID > 1
			}
			if !sparse {
				t.Errorf("%s %s: ids are contiguous; they should interleave with other operations", inst, op)
			}
			all = append(all, recs...)
		}
		byID := make(map[int64]SWRRecord)
		for _, r := range all {
			if prev, dup := byID[r.ID]; dup {
				t.Errorf("%s: id %d used by %s and %s", inst, r.ID, prev.Operation, r.Operation)
			}
			byID[r.ID] = r
		}
		// Across operations, op_time still grows with id.
		var lo, hi int64 = 1 << 62, 0
		for id := range byID {
			lo, hi = min(lo, id), max(hi, id)
		}
		if int(hi-lo+1) != len(all) {
			t.Errorf("%s: ids %d..%d are not one dense sequence of %d", inst, lo, hi, len(all))
		}
		var prev time.Time
		for id := lo; id <= hi; id++ {
			if tm := byID[id].OpTime; !tm.After(prev) {
				t.Errorf("%s: op_time of id %d not after id %d", inst, id, id-1)
			} else {
				prev = tm
			}
		}
		if first := byID[lo].OpTime; first.Before(testStart) || first.After(testStart.Add(time.Second)) {
			t.Errorf("%s: first op_time %v, want within the first interval after %v", inst, first, testStart)
		}
	}
}

// TestRecordsDecode checks that the hand-written JSON decodes to exactly
// what SWRRecords reports, over a dataset large enough to use every word of
// the vocabulary.
func TestRecordsDecode(t *testing.T) {
	cfg := testConfig()
	cfg.SWR.RecordsPerOperation = 1000
	s := New(cfg)
	var sawUnicode, sawRobot, sawClair, sawDigest, sawRepo, sawTag bool
	for _, op := range []string{"pull", "create", "delete"} {
		want := s.SWRRecords(testInstance, op)
		var got []testRecord
		for offset := 0; offset < len(want); offset += 100 {
			w := get(t, s, auditPath(testProject, testInstance)+fmt.Sprintf("?operation=%s&limit=100&offset=%d", op, offset))
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("invalid JSON: %s", w.Body)
			}
			var p testPage
			dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				t.Fatal(err)
			}
			got = append(got, p.AuditLogs...)
		}
		for i, g := range got {
			w := want[len(want)-1-i]
			wr := testRecord{w.ID, w.OpTime.Format(opTimeLayout), w.Operation, w.Resource, w.ResourceType, w.Username}
			if g != wr {
				t.Fatalf("record %d: got %+v, want %+v", i, g, wr)
			}
			sawUnicode = sawUnicode || strings.ContainsRune(g.Username, '张')
			sawRobot = sawRobot || strings.HasPrefix(g.Username, "robot$") && !strings.HasPrefix(g.Username, "robot$Clair-")
			sawClair = sawClair || regexp.MustCompile(`^robot\$Clair-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(g.Username)
			sawDigest = sawDigest || regexp.MustCompile(`^[a-z-]+/[a-z/-]+:sha256:[0-9a-f]{64}$`).MatchString(g.Resource) && g.ResourceType == "artifact"
			sawRepo = sawRepo || g.ResourceType == "repository" && !strings.Contains(g.Resource, ":")
			sawTag = sawTag || g.ResourceType == "tag" && strings.Count(g.Resource, ":") == 1
			if op == "pull" && g.ResourceType != "artifact" {
				t.Errorf("pull of a %s", g.ResourceType)
			}
		}
	}
	if !(sawUnicode && sawRobot && sawClair && sawDigest && sawRepo && sawTag) {
		t.Errorf("dataset lacks variety: unicode %v robot %v clair %v digest %v repository %v tag %v",
			sawUnicode, sawRobot, sawClair, sawDigest, sawRepo, sawTag)
	}
}

func TestInsertSWR(t *testing.T) {
	s := New(testConfig())
	maxID := int64(0)
	for _, op := range []string{"pull", "create", "delete"} {
		recs := s.SWRRecords(testInstance, op)
		maxID = max(maxID, recs[len(recs)-1].ID)
	}
	before := getPage(t, s, testInstance, "operation=pull&limit=10")

	if err := s.InsertSWR(testInstance, "pull", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertSWR(testInstance, "delete", 1); err != nil {
		t.Fatal(err)
	}
	after := getPage(t, s, testInstance, "operation=pull&limit=10")
	if after.Total != before.Total+3 {
		t.Errorf("total %d, want %d", after.Total, before.Total+3)
	}
	for i, r := range after.AuditLogs[:3] {
		if want := maxID + int64(3-i); r.ID != want {
			t.Errorf("new record %d has id %d, want %d", i, r.ID, want)
		}
	}
	if after.AuditLogs[3] != before.AuditLogs[0] {
		t.Errorf("old head %+v moved to %+v", before.AuditLogs[0], after.AuditLogs[3])
	}
	del := getPage(t, s, testInstance, "operation=delete&limit=1")
	if del.Total != 26 || del.AuditLogs[0].ID != maxID+4 {
		t.Errorf("delete head %+v total %d, want id %d total 26", del.AuditLogs[0], del.Total, maxID+4)
	}
	if other := getPage(t, s, testInstanceB, "operation=pull&limit=1"); other.Total != 25 {
		t.Errorf("insert leaked into another instance: total %d", other.Total)
	}

	if err := s.InsertSWR("nope", "pull", 1); err == nil {
		t.Error("InsertSWR accepted an unknown instance")
	}
	if err := s.InsertSWR(testInstance, "update", 1); err == nil {
		t.Error("InsertSWR accepted an unknown operation")
	}
}

func TestDrift(t *testing.T) {
	cfg := testConfig()
	cfg.Faults.DriftPerPage = 2
	s := New(cfg)

	p1 := getPage(t, s, testInstance, "operation=pull&limit=10&offset=0")
	p2 := getPage(t, s, testInstance, "operation=pull&limit=10&offset=10")
	if p1.Total != 25 || p2.Total != 27 {
		t.Errorf("totals %d, %d; want 25, 27", p1.Total, p2.Total)
	}
	// Two records arrived at the head between the pages, so page 2 starts
	// with the last two records of page 1.
	if p2.AuditLogs[0] != p1.AuditLogs[8] || p2.AuditLogs[1] != p1.AuditLogs[9] {
		t.Errorf("page 2 starts %v, want the tail of page 1 %v", p2.AuditLogs[:2], p1.AuditLogs[8:])
	}
	if n := len(s.SWRRecords(testInstance, "pull")); n != 29 {
		t.Errorf("%d records after two pages, want 29", n)
	}
	if n := len(s.SWRRecords(testInstance, "create")); n != 25 {
		t.Errorf("drift leaked into create: %d records", n)
	}
}

func TestMalformedRecords(t *testing.T) {
	cfg := testConfig()
	cfg.SWR.RecordsPerOperation = 300
	cfg.Faults.MalformedRate = 0.1
	s := New(cfg)

	want := s.SWRRecords(testInstance, "pull")
	kinds := make(map[string]int)
	for offset := 0; offset < len(want); offset += 100 {
		w := get(t, s, auditPath(testProject, testInstance)+fmt.Sprintf("?operation=pull&limit=100&offset=%d", offset))
		var p struct {
			AuditLogs []map[string]json.RawMessage `json:"audit_logs"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatalf("a page with malformed records must still be valid JSON: %v", err)
		}
		for i, raw := range p.AuditLogs {
			rec := want[len(want)-1-offset-i]
			kinds[rec.Malformed]++
			id, hasID := raw["id"]
			var opTime string
			_ = json.Unmarshal(raw["op_time"], &opTime)
			_, timeErr := time.Parse(time.RFC3339Nano, opTime)
			switch rec.Malformed {
			case "":
				if string(id) != fmt.Sprint(rec.ID) || timeErr != nil {
					t.Errorf("well-formed record %d served as id=%s op_time=%q", rec.ID, id, opTime)
				}
			case MalformedIDString:
				if string(id) != `"not-a-number"` {
					t.Errorf("record %d: id %s, want a string", rec.ID, id)
				}
			case MalformedNoID:
				if hasID {
					t.Errorf("record %d: id present", rec.ID)
				}
			case MalformedOpTime:
				if timeErr == nil || string(id) != fmt.Sprint(rec.ID) {
					t.Errorf("record %d: op_time %q parses", rec.ID, opTime)
				}
			}
		}
	}
	for _, k := range []string{MalformedIDString, MalformedNoID, MalformedOpTime} {
		if kinds[k] == 0 {
			t.Errorf("no %s records among %v", k, kinds)
		}
	}
	if bad := len(want) - kinds[""]; bad < 10 || bad > 60 {
		t.Errorf("%d malformed of %d at rate 0.1", bad, len(want))
	}

	// Same seed, same malformed records.
	again := New(cfg).SWRRecords(testInstance, "pull")
	for i := range want {
		if want[i] != again[i] {
			t.Fatalf("record %d differs between servers: %+v vs %+v", i, want[i], again[i])
		}
	}
}

func TestDeterminism(t *testing.T) {
	cfg := testConfig()
	cfg.Faults = Faults{
		ThrottleRate:    0.2,
		RetryAfter:      time.Second,
		ServerErrorRate: 0.1,
		DriftPerPage:    1,
		MalformedRate:   0.05,
	}
	run := func(cfg Config) string {
		s := New(cfg)
		var out strings.Builder
		for i := range 40 {
			inst := []string{testInstance, testInstanceB}[i%2]
			op := []string{"pull", "create", "delete"}[i%3]
			w := get(t, s, auditPath(testProject, inst)+fmt.Sprintf("?operation=%s&limit=5&offset=%d", op, 5*(i%4)))
			fmt.Fprintf(&out, "%d %s %s %s\n", w.Code, w.Header().Get("Retry-After"), w.Header().Get(headerRequestID), w.Body)
		}
		return out.String()
	}
	a, b := run(cfg), run(cfg)
	if a != b {
		t.Errorf("same config, different answers:\n%s\n---\n%s", a, b)
	}
	for _, want := range []string{"200 ", "429 1 ", "500 "} {
		if !strings.Contains(a, "\n"+want) {
			t.Errorf("no %q answer in the run; adjust the rates:\n%s", want, a)
		}
	}
	cfg.Seed++
	if run(cfg) == a {
		t.Error("a different seed gave identical answers")
	}
}
