package taurusdb

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

// sqlSim is a simulator serving SQL files and a SQL stream reading it.
type sqlSim struct {
	sim  *simulator.Server
	clk  *windowtest.Clock
	s    *SQLStream
	base string
}

func startSQLSim(t *testing.T, files int, sql simulator.TaurusDBSQLConfig, pageRecords int) *sqlSim {
	t.Helper()
	clk := windowtest.NewClock(simStart.Add(time.Duration(files)*time.Minute + 2*time.Hour))
	sim := simulator.New(simulator.Config{
		ProjectID: simProject,
		Tokens:    []simulator.Token{{Value: simToken}},
		Seed:      42,
		Now:       clk.Now,
		TaurusDB:  simulator.TaurusDBConfig{Instances: []string{simIns}, Files: files, Start: simStart.Add(time.Minute), Interval: time.Minute, SQL: sql},
	})
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	api := huaweiapi.NewClient(huaweiapi.Config{ProjectID: simProject, MaxRPS: 1e6, Timeout: 10 * time.Second, MaxBodyBytes: 16 << 20}, huaweiapi.TokenAuth{Token: simToken})
	cfg := Config{Instances: []string{simIns}, Endpoint: base, PageSize: 7, SQL: true,
		SQLMaxRecordBytes: 4096, SQLPageRecords: pageRecords, SQLReadTimeout: 10 * time.Second}
	if err := cfg.Validate("cn-north-4"); err != nil {
		t.Fatal(err)
	}
	streams := NewSQLStreams(cfg, api, nil, "cn-north-4", simProject, Options{
		Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 100}, Start: simStart, Now: clk.Now})
	if len(streams) != 1 {
		t.Fatalf("%d streams", len(streams))
	}
	return &sqlSim{sim: sim, clk: clk, s: streams[0], base: base}
}

// wantIDs is every statement's event id, by file, and the count of
// malformed ones.
func (h *sqlSim) want(t *testing.T) (ids map[string]bool, malformed int) {
	t.Helper()
	ids = map[string]bool{}
	for _, f := range h.sim.TaurusDBRecords(simIns) {
		for _, r := range h.sim.TaurusDBSQLRecords(simIns, f.ID) {
			if r.Malformed {
				malformed++
				continue
			}
			ids[f.ID+"/"+r.RecordID] = true
		}
	}
	return ids, malformed
}

// drained is what reading a stream delivered.
type drained struct {
	seen    map[string]int // file/record_id → times delivered
	invalid []pipeline.Invalid
	pages   int
	cursors [][]byte
	// lenient counts records Map refuses (the pipeline's "map" dead
	// letters) instead of failing the test.
	lenient bool
	mapErrs int
}

// drain reads r until io.EOF, or until stop pages were read (stop > 0).
func drain(t *testing.T, s *SQLStream, r pipeline.Reader, d *drained, stop int) bool {
	t.Helper()
	if d.seen == nil {
		d.seen = map[string]int{}
	}
	for n := 0; stop <= 0 || n < stop; n++ {
		p, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		d.pages++
		d.cursors = append(d.cursors, p.Cursor)
		d.invalid = append(d.invalid, p.Invalid...)
		for _, raw := range p.Records {
			var ev pipeline.Event
			if err := s.Map(raw, &ev); err != nil {
				if !d.lenient {
					t.Fatalf("Map(%s): %v", raw, err)
				}
				d.mapErrs++
			}
			var e sqlEntry
			if err := e.decode(raw); err != nil {
				t.Fatal(err)
			}
			d.seen[e.AuditLogID+"/"+e.RecordID]++
		}
	}
	return false
}

func TestSQLEveryStatementOnceEachFormat(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  simulator.TaurusDBSQLConfig
	}{
		{"csv header", simulator.TaurusDBSQLConfig{Records: 40, Format: simulator.SQLCSVHeader}},
		{"csv", simulator.TaurusDBSQLConfig{Records: 40, Format: simulator.SQLCSV}},
		{"json lines", simulator.TaurusDBSQLConfig{Records: 40, Format: simulator.SQLJSONLines}},
		{"gzip csv header", simulator.TaurusDBSQLConfig{Records: 40, Format: simulator.SQLCSVHeader, Gzip: true}},
		{"gzip json lines malformed", simulator.TaurusDBSQLConfig{Records: 40, Format: simulator.SQLJSONLines, Gzip: true, MalformedEvery: 9}},
		{"csv malformed", simulator.TaurusDBSQLConfig{Records: 40, Format: simulator.SQLCSV, MalformedEvery: 7}},
		{"csv long records", simulator.TaurusDBSQLConfig{Records: 40, Format: simulator.SQLCSVHeader, LongEvery: 13, LongBytes: 10_000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startSQLSim(t, 12, tc.cfg, 15)
			want, malformed := h.want(t)
			long := 0
			if tc.cfg.LongEvery > 0 {
				for id := range want {
					var n int
					_, _ = fmt.Sscanf(id[strings.IndexByte(id, '/')+1:], "%d", &n)
					if (n%10_000_000)%tc.cfg.LongEvery == 0 {
						delete(want, id)
						long++
					}
				}
			}
			r, err := h.s.Open(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var d drained
			drain(t, h.s, r, &d, 0)
			for id := range want {
				if d.seen[id] != 1 {
					t.Errorf("statement %s delivered %d times", id, d.seen[id])
				}
			}
			if len(d.seen) != len(want) {
				t.Errorf("delivered %d statements, want %d", len(d.seen), len(want))
			}
			if len(d.invalid) != malformed+long {
				t.Errorf("%d dead letters, want %d malformed + %d too long", len(d.invalid), malformed, long)
			}
			for _, inv := range d.invalid {
				if inv.Reason == "" || len(inv.Raw) > 4096 {
					t.Errorf("dead letter %q with %d bytes", inv.Reason, len(inv.Raw))
				}
			}
			if st := h.sim.TaurusDBSQLStats(); st.CredentialLeaks != 0 || st.Downloads != 12 {
				t.Errorf("stats %+v, want 12 downloads and no credentials sent", st)
			}
		})
	}
}

func TestSQLUnreadableFileIsDeadLettered(t *testing.T) {
	h := startSQLSim(t, 3, simulator.TaurusDBSQLConfig{Records: 5, Format: simulator.SQLUnreadable}, 10)
	r, err := h.s.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var d drained
	drain(t, h.s, r, &d, 0)
	if len(d.seen) != 0 || len(d.invalid) != 3 {
		t.Fatalf("%d statements, %d dead letters; want 0 and one per file", len(d.seen), len(d.invalid))
	}
	files := h.sim.TaurusDBRecords(simIns)
	for i, inv := range d.invalid {
		if !strings.Contains(inv.Reason, "format not recognised") || !strings.Contains(string(inv.Raw), files[i].ID) {
			t.Errorf("dead letter %d: %q, %s", i, inv.Reason, inv.Raw)
		}
	}
}

// TestSQLKillInTheMiddleOfAFile kills runs at random pages, in the middle
// of files of 600 statements, and resumes each from the cursor of a page
// at or before the last one returned (what a checkpoint may hold): every
// statement arrives, repeats only. With Range the rest of a file is asked
// from its byte offset; without, the delivered records are skipped.
func TestSQLKillInTheMiddleOfAFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  simulator.TaurusDBSQLConfig
	}{
		{"range csv header", simulator.TaurusDBSQLConfig{Records: 600, Format: simulator.SQLCSVHeader, Range: true, MalformedEvery: 97}},
		{"range json lines", simulator.TaurusDBSQLConfig{Records: 600, Format: simulator.SQLJSONLines, Range: true}},
		{"no range csv", simulator.TaurusDBSQLConfig{Records: 600, Format: simulator.SQLCSV}},
		{"range csv", simulator.TaurusDBSQLConfig{Records: 600, Format: simulator.SQLCSV, Range: true, MalformedEvery: 89}},
		{"gzip with range server", simulator.TaurusDBSQLConfig{Records: 600, Format: simulator.SQLCSVHeader, Gzip: true, Range: true}},
		{"connection cut", simulator.TaurusDBSQLConfig{Records: 600, Format: simulator.SQLCSVHeader, Range: true, CutFirstDownload: 20_000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startSQLSim(t, 5, tc.cfg, 50)
			want, malformed := h.want(t)
			rng := rand.New(rand.NewPCG(7, uint64(len(tc.name))))
			var d drained
			var cursor []byte
			runs := 0
			for ; runs < 100; runs++ {
				r, err := h.s.Open(context.Background(), cursor)
				if err != nil {
					t.Fatal(err)
				}
				before := len(d.cursors)
				done := drain(t, h.s, r, &d, 1+rng.IntN(12))
				_ = r.(io.Closer).Close()
				if done {
					break
				}
				// The checkpoint holds the cursor of one of this run's pages.
				if n := len(d.cursors) - before; n > 0 {
					cursor = d.cursors[before+rng.IntN(n)]
				}
			}
			if runs < 3 {
				t.Fatalf("only %d runs", runs)
			}
			repeats := 0
			for id := range want {
				if d.seen[id] == 0 {
					t.Errorf("statement %s lost", id)
				}
				repeats += d.seen[id] - 1
			}
			if len(d.seen) != len(want) {
				t.Errorf("delivered %d distinct statements, want %d", len(d.seen), len(want))
			}
			badLetters := map[string]bool{}
			for _, inv := range d.invalid {
				badLetters[string(inv.Raw)] = true
			}
			if len(badLetters) != malformed {
				t.Errorf("%d distinct dead letters, want %d", len(badLetters), malformed)
			}
			st := h.sim.TaurusDBSQLStats()
			if tc.cfg.Range && !tc.cfg.Gzip && st.RangedDownloads == 0 {
				t.Errorf("no ranged download: %+v", st)
			}
			if tc.cfg.Gzip && st.RangedDownloads != 0 {
				t.Errorf("a gzip file was asked for by range: %+v", st)
			}
			t.Logf("%d runs, %d pages, %d repeats, %+v", runs, d.pages, repeats, st)
		})
	}
}

// TestSQLLinkExpiry: the clock passes the links' validity between the
// link request and the download, once per file: the reader asks again.
// A server that refuses every link makes Next fail after maxLinkAttempts
// links, retryable, with no link in the error.
func TestSQLLinkExpiry(t *testing.T) {
	h := startSQLSim(t, 3, simulator.TaurusDBSQLConfig{Records: 20, LinkTTL: time.Minute}, 100)
	// Move the clock on every link request: the first link of each
	// attempt is stale by the time it is used.
	var moved atomic.Int64
	api := huaweiapi.NewClient(huaweiapi.Config{ProjectID: simProject, MaxRPS: 1e6, Timeout: 10 * time.Second, MaxBodyBytes: 16 << 20}, huaweiapi.TokenAuth{Token: simToken})
	h.s.api = doerFunc(func(ctx context.Context, req huaweiapi.Request) ([]byte, error) {
		out, err := api.Do(ctx, req)
		if strings.HasSuffix(req.Path, "/audit-log-link") && moved.Add(1)%2 == 1 {
			h.clk.Add(2 * time.Minute)
		}
		return out, err
	})
	r, err := h.s.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var d drained
	drain(t, h.s, r, &d, 0)
	want, _ := h.want(t)
	if len(d.seen) != len(want) {
		t.Fatalf("delivered %d statements, want %d", len(d.seen), len(want))
	}
	if st := h.sim.TaurusDBSQLStats(); st.Expired != 3 || st.LinkRequests != 6 {
		t.Errorf("stats %+v: want each file's first link expired and a second asked", st)
	}

	t.Run("always expired", func(t *testing.T) {
		h := startSQLSim(t, 1, simulator.TaurusDBSQLConfig{Records: 5, LinkTTL: time.Second}, 100)
		api := huaweiapi.NewClient(huaweiapi.Config{ProjectID: simProject, MaxRPS: 1e6, Timeout: 10 * time.Second, MaxBodyBytes: 16 << 20}, huaweiapi.TokenAuth{Token: simToken})
		h.s.api = doerFunc(func(ctx context.Context, req huaweiapi.Request) ([]byte, error) {
			out, err := api.Do(ctx, req)
			if strings.HasSuffix(req.Path, "/audit-log-link") {
				h.clk.Add(time.Minute)
			}
			return out, err
		})
		r, err := h.s.Open(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		var p pipeline.Page
		for range 5 {
			if p, err = r.Next(context.Background()); err != nil || len(p.Records) > 0 {
				break
			}
		}
		if err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "403") {
			t.Fatalf("got %v, want a retryable error naming the 403", err)
		}
		if strings.Contains(err.Error(), "Signature") || strings.Contains(err.Error(), "Expires") {
			t.Errorf("error shows the link: %v", err)
		}
		if st := h.sim.TaurusDBSQLStats(); st.LinkRequests != maxLinkAttempts {
			t.Errorf("%d link requests, want %d", st.LinkRequests, maxLinkAttempts)
		}
	})
}

type doerFunc func(context.Context, huaweiapi.Request) ([]byte, error)

func (f doerFunc) Do(ctx context.Context, req huaweiapi.Request) ([]byte, error) { return f(ctx, req) }

// TestSQLDownloadSendsNoCredentials: the API client signs its requests;
// the download, to another host, carries none of it, refuses a redirect to
// a third host, and no error shows the link's signature.
func TestSQLDownloadSendsNoCredentials(t *testing.T) {
	const secret = "Signature=s3cr3t-signature-value"
	var got atomic.Pointer[http.Header]
	third := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the redirect to another server was followed: %s", r.URL)
	}))
	defer third.Close()
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := r.Header.Clone()
		got.Store(&hd)
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, third.URL+"/x?"+secret, http.StatusFound)
		default:
			_, _ = io.WriteString(w, "record_id,timestamp,sqltext\n1,2025-06-01 00:00:00,SELECT 1\n")
		}
	}))
	defer files.Close()
	for _, tc := range []struct {
		path    string
		records int
		fail    bool
	}{{"/file", 1, false}, {"/redirect", 0, true}} {
		t.Run(tc.path, func(t *testing.T) {
			link := files.URL + tc.path + "?AccessKeyId=AK&Expires=99&" + secret
			sign := doerFunc(func(_ context.Context, req huaweiapi.Request) ([]byte, error) {
				if strings.HasSuffix(req.Path, "/audit-log-link") {
					return json.Marshal(map[string][]string{"links": {link}})
				}
				return []byte(`{"audit_logs":[{"id":"f1","name":"n","size":1,"begin_time":"2025-06-01T08:00:00+0800","end_time":"2025-06-01T08:10:00+0800"}],"total_count":1}`), nil
			})
			cfg := Config{Instances: []string{simIns}, Endpoint: "https://gaussdb.example.com", PageSize: 10, SQL: true,
				SQLMaxRecordBytes: 4096, SQLPageRecords: 10, SQLReadTimeout: 5 * time.Second}
			s := NewSQLStreams(cfg, sign, nil, "cn-north-4", simProject, Options{
				Window: window.Config{SettleDelay: time.Minute, MaxRecords: 100},
				Start:  time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
				Now:    func() time.Time { return time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC) }})[0]
			r, err := s.Open(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var d drained
			var lastErr error
			for range 10 {
				p, err := r.Next(context.Background())
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					lastErr = err
					break
				}
				d.invalid = append(d.invalid, p.Invalid...)
				d.pages += len(p.Records)
			}
			if d.pages != tc.records {
				t.Errorf("%d statements, want %d", d.pages, tc.records)
			}
			if tc.fail {
				text := fmt.Sprint(lastErr)
				for _, inv := range d.invalid {
					text += inv.Reason
				}
				if lastErr == nil && len(d.invalid) == 0 {
					t.Errorf("the redirect to another server was neither an error nor a dead letter")
				}
				if lastErr != nil && !pipeline.IsPermanent(lastErr) {
					t.Errorf("the redirect to another server is retried (forever): %v", lastErr)
				}
				if strings.Contains(text, "s3cr3t") {
					t.Errorf("the link's signature shows: %s", text)
				}
				t.Logf("redirect: %s", text)
			}
			hd := got.Load()
			if hd == nil {
				t.Fatal("no download request")
			}
			for _, k := range []string{"Authorization", "X-Auth-Token", "X-Sdk-Date", "X-Project-Id", "X-Security-Token"} {
				if v := hd.Get(k); v != "" {
					t.Errorf("download carried %s: %s", k, v)
				}
			}
		})
	}
}

// TestSQLSimulatorRefusesCredentials: the simulator's file host refuses a
// download that carries API credentials, so that the stream tests would
// see a leak.
func TestSQLSimulatorRefusesCredentials(t *testing.T) {
	h := startSQLSim(t, 1, simulator.TaurusDBSQLConfig{Records: 3}, 10)
	id := h.sim.TaurusDBRecords(simIns)[0].ID
	api := huaweiapi.NewClient(huaweiapi.Config{ProjectID: simProject, MaxRPS: 1e6, Timeout: 10 * time.Second, MaxBodyBytes: 1 << 20}, huaweiapi.TokenAuth{Token: simToken})
	h.s.api = api
	links, err := h.s.requestLinks(context.Background(), []string{id})
	if err != nil || len(links) != 1 {
		t.Fatalf("links %v, %v", links, err)
	}
	req, _ := http.NewRequest(http.MethodGet, links[0], nil)
	req.Header.Set("X-Auth-Token", simToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || h.sim.TaurusDBSQLStats().CredentialLeaks != 1 {
		t.Errorf("download with a token: HTTP %d, stats %+v", resp.StatusCode, h.sim.TaurusDBSQLStats())
	}
	if _, err := h.s.requestLinks(context.Background(), make([]string, MaxLinkIDs+1)); err == nil || !pipeline.IsPermanent(err) {
		t.Errorf("51 ids: %v", err)
	}
	body, err := api.Do(context.Background(), huaweiapi.Request{Method: http.MethodPost, Endpoint: h.base,
		Path: "/v3/" + simProject + "/instances/" + simIns + "/audit-log-link", Body: []byte(`{"ids":[` + strings.Repeat(`"`+id+`",`, 50) + `"` + id + `"]}`)})
	var ae *huaweiapi.APIError
	if !errors.As(err, &ae) || ae.Status != 400 {
		t.Errorf("51 ids to the simulator: %v %s", err, body)
	}
}

// TestSQLCrashRunsLive runs the SQL stream on a schedule while files
// appear (each listed once it ended), killing runs at random pages, half
// the time before the page's cursor was saved (windowtest.CrashRuns):
// every statement and every malformed line arrives at least once, and each
// run accounts for what it fetched.
func TestSQLCrashRunsLive(t *testing.T) {
	for _, rangeOK := range []bool{true, false} {
		t.Run(fmt.Sprintf("range=%v", rangeOK), func(t *testing.T) {
			h := startSQLSim(t, 24, simulator.TaurusDBSQLConfig{Records: 150, Range: rangeOK, MalformedEvery: 40, Format: simulator.SQLCSVHeader}, 37)
			h.clk.Add(-time.Duration(24)*time.Minute - 2*time.Hour) // back to the first file
			want, malformed := h.want(t)
			rep := windowtest.CrashRuns(t, h.s, windowtest.CrashConfig{
				Clock: h.clk, Step: 4 * time.Minute, Until: simStart.Add(24*time.Minute + time.Hour),
				Seed: 11, CrashRate: 0.25, Retries: 3,
				ID: func(raw []byte) (string, error) {
					var e sqlEntry
					if err := e.decode(raw); err == nil && e.HasRecord {
						return e.AuditLogID + "/" + e.RecordID, nil
					}
					return "line:" + string(raw), nil // a malformed line
				},
			})
			if rep.Failed > 0 {
				t.Fatalf("%d runs failed: %v", rep.Failed, rep.LastErr)
			}
			lines := 0
			for id, n := range rep.Delivered {
				if strings.HasPrefix(id, "line:") && n > 0 {
					lines++
				}
			}
			for id := range want {
				if rep.Delivered[id] == 0 {
					t.Errorf("statement %s lost", id)
				}
			}
			if lines != malformed {
				t.Errorf("%d malformed lines dead-lettered, want %d", lines, malformed)
			}
			t.Logf("%d runs, %d crashes, %d fetched for %d statements and %d malformed lines; %+v", rep.Runs, rep.Crashes, rep.Fetched, len(want), malformed, h.sim.TaurusDBSQLStats())
		})
	}
}

// TestSQLCorruptGzipMidFile: a gzip file whose compressed data is broken
// in the middle delivers what decompresses (garbage lines among it are
// dead-lettered one by one: deflate may only notice at the checksum),
// dead-letters the file once with the reason when the stream fails, and
// the stream goes on to the next file instead of retrying forever.
func TestSQLCorruptGzipMidFile(t *testing.T) {
	var plain bytes.Buffer
	plain.WriteString("record_id,timestamp,sqltext\n")
	for i := range 2000 {
		fmt.Fprintf(&plain, "%d,2025-06-01 00:00:%02d,SELECT %d\n", i+1, i%60, i*7919)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(plain.Bytes())
	_ = zw.Close()
	broken := gz.Bytes()
	for i := len(broken) / 2; i < len(broken)/2+64; i++ {
		broken[i] ^= 0x5a
	}
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/f2" {
			_, _ = io.WriteString(w, "record_id,timestamp,sqltext\n1,2025-06-01 00:10:00,SELECT 1\n")
			return
		}
		_, _ = w.Write(broken)
	}))
	defer files.Close()
	api := doerFunc(func(_ context.Context, req huaweiapi.Request) ([]byte, error) {
		if strings.HasSuffix(req.Path, "/audit-log-link") {
			var b struct{ IDs []string }
			_ = json.Unmarshal(req.Body, &b)
			return json.Marshal(map[string][]string{"links": {files.URL + "/" + b.IDs[0] + "?Signature=x"}})
		}
		return []byte(`{"audit_logs":[{"id":"f2","name":"b","size":1,"begin_time":"2025-06-01T08:05:00+0800","end_time":"2025-06-01T08:20:00+0800"},{"id":"f1","name":"a","size":1,"begin_time":"2025-06-01T08:00:00+0800","end_time":"2025-06-01T08:10:00+0800"}],"total_count":2}`), nil
	})
	cfg := Config{Instances: []string{simIns}, Endpoint: "https://gaussdb.example.com", PageSize: 10, SQL: true,
		SQLMaxRecordBytes: 4096, SQLPageRecords: 100, SQLReadTimeout: 5 * time.Second}
	s := NewSQLStreams(cfg, api, nil, "cn-north-4", simProject, Options{
		Window: window.Config{SettleDelay: time.Minute, MaxRecords: 100},
		Start:  time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
		Now:    func() time.Time { return time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC) }})[0]
	r, err := s.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Flipped deflate bits may decode to garbage before the stream fails:
	// those records fail to map (dead letters, stage map).
	d := drained{lenient: true}
	drain(t, s, r, &d, 0)
	fileLetters := 0
	var reason string
	for _, inv := range d.invalid {
		if strings.Contains(inv.Reason, "gzip data corrupt") {
			fileLetters++
			reason = inv.Reason
			if !strings.Contains(string(inv.Raw), `"f1"`) {
				t.Errorf("the file's dead letter holds %s", inv.Raw)
			}
		}
	}
	if fileLetters != 1 {
		t.Fatalf("%d dead letters for the corrupt file, want 1", fileLetters)
	}
	f1 := 0
	for id := range d.seen {
		if strings.HasPrefix(id, "f1/") {
			f1++
		}
	}
	if f1 == 0 || d.seen["f2/1"] != 1 {
		t.Errorf("%d statements of the corrupt file, f2's %d; want some of f1 and f2's one", f1, d.seen["f2/1"])
	}
	t.Logf("%d statements of the corrupt file, %d garbage lines dead-lettered, %d refused by Map; %s", f1, len(d.invalid)-1, d.mapErrs, reason)
}

// TestSQLStalledDownloadResumes: the first download sends part of the
// file and stalls; the idle timer ends it after the read timeout and the
// next call resumes after the records delivered, from a new download.
func TestSQLStalledDownloadResumes(t *testing.T) {
	var body bytes.Buffer
	body.WriteString("record_id,timestamp,sqltext\n")
	for i := range 300 {
		fmt.Fprintf(&body, "%d,2025-06-01 00:00:%02d,SELECT %d\n", i+1, i%60, i)
	}
	var downloads atomic.Int64
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if downloads.Add(1) == 1 {
			_, _ = w.Write(body.Bytes()[:body.Len()/2])
			w.(http.Flusher).Flush()
			<-r.Context().Done() // stalls until the client gives up
			return
		}
		_, _ = w.Write(body.Bytes())
	}))
	defer files.Close()
	api := doerFunc(func(_ context.Context, req huaweiapi.Request) ([]byte, error) {
		if strings.HasSuffix(req.Path, "/audit-log-link") {
			return json.Marshal(map[string][]string{"links": {files.URL + "/f1?Signature=x"}})
		}
		return []byte(`{"audit_logs":[{"id":"f1","name":"a","size":1,"begin_time":"2025-06-01T08:00:00+0800","end_time":"2025-06-01T08:10:00+0800"}],"total_count":1}`), nil
	})
	cfg := Config{Instances: []string{simIns}, Endpoint: "https://gaussdb.example.com", PageSize: 10, SQL: true,
		SQLMaxRecordBytes: 4096, SQLPageRecords: 40, SQLReadTimeout: time.Second}
	s := NewSQLStreams(cfg, api, nil, "cn-north-4", simProject, Options{
		Window: window.Config{SettleDelay: time.Minute, MaxRecords: 100},
		Start:  time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
		Now:    func() time.Time { return time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC) }})[0]
	s.readTimeout = 200 * time.Millisecond
	r, err := s.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := drained{seen: map[string]int{}}
	errs := 0
	for range 100 {
		p, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs++
			continue
		}
		for _, raw := range p.Records {
			var e sqlEntry
			if err := e.decode(raw); err != nil {
				t.Fatal(err)
			}
			d.seen[e.RecordID]++
		}
	}
	if len(d.seen) != 300 {
		t.Errorf("%d statements, want 300", len(d.seen))
	}
	for id, n := range d.seen {
		if n != 1 {
			t.Errorf("statement %s delivered %d times within one reader", id, n)
		}
	}
	if downloads.Load() != 2 {
		t.Errorf("%d downloads, want 2", downloads.Load())
	}
	t.Logf("%d retryable errors on the way", errs)
}
