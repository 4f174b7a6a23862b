package dbss

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/jsonscan"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

// kindStream is the stream of kind k of simIns on a simulator of cfg,
// requests served in process.
func kindStream(t testing.TB, cfg simulator.DBSSConfig, clk *windowtest.Clock, k Kind, pageSize int) (*simulator.Server, *Stream) {
	t.Helper()
	sim := simulator.New(simulator.Config{ProjectID: simProject, Tokens: []simulator.Token{{Value: simToken}}, Seed: 7, Now: clk.Now, DBSS: cfg})
	scfg := Config{Instances: cfg.Instances, Endpoint: "http://dbss.sim", PageSize: pageSize, Streams: []string{string(k)}}
	if err := scfg.Validate("cn-north-4"); err != nil {
		t.Fatal(err)
	}
	streams := NewStreams(scfg, windowtest.InProcess{H: sim, Token: simToken}, "cn-north-4", simProject, Options{
		Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 100},
		Start:  simStart,
		Now:    clk.Now,
	})
	if len(streams) != 1 || streams[0].Kind() != k {
		t.Fatalf("got %d streams, want one of kind %s", len(streams), k)
	}
	return sim, streams[0]
}

// recordTime is the time the reader keys a delivered record of kind k by.
func recordTime(t testing.TB, k Kind, raw []byte) time.Time {
	t.Helper()
	v, err := jsonscan.Parse(raw)
	if err != nil {
		t.Fatalf("delivered record is not JSON: %s", raw)
	}
	var rec window.Record
	if k == SQL {
		rec = sqlKey(v, 0)
	} else {
		rec = keyOf(v, "alarm_time")
	}
	if rec.Time.IsZero() {
		t.Fatalf("delivered record without a time: %s", raw)
	}
	return rec.Time
}

// alarmIdentity names an alarm whatever its status: its id, or its time,
// type, description and send_email when it has none.
func alarmIdentity(raw []byte) (string, error) {
	var id, tm, typ, desc, email string
	err := jsonscan.Members(raw, func(name []byte, v jsonscan.Value) error {
		switch string(jsonscan.Name(name)) {
		case "id":
			id, _ = v.ID()
		case "alarm_time":
			tm = string(v.Raw)
		case "alarm_type":
			typ = string(v.Raw)
		case "alarm_description":
			desc = string(v.Raw)
		case "send_email", "sendEmail":
			email = string(v.Raw)
		}
		return nil
	})
	if id != "" {
		return id, err
	}
	return tm + "|" + typ + "|" + desc + "|" + email, err
}

// drainKind runs s every 6 minutes until every record was listed and
// settled, checking oldest-first order across runs, and returns the
// delivered records.
func drainKind(t *testing.T, s *Stream, clk *windowtest.Clock, until time.Time) [][]byte {
	t.Helper()
	var (
		out    [][]byte
		cursor []byte
		prev   time.Time
	)
	for clk.Now().Before(until) {
		clk.Add(6 * time.Minute)
		var recs [][]byte
		recs, cursor = windowtest.Drain(t, s, cursor)
		for _, raw := range recs {
			at := recordTime(t, s.Kind(), raw)
			if at.Before(prev) {
				t.Fatalf("record at %s delivered after one at %s: %s", at, prev, raw)
			}
			prev = at
			var ev pipeline.Event
			if err := s.Map(raw, &ev); err != nil {
				t.Fatalf("Map(%s): %v", raw, err)
			}
			out = append(out, raw)
		}
	}
	return out
}

// sqlVariants are the behaviours the SDK leaves open for the SQL audit
// list, each a simulator switch (docs/api-assumptions.md, DBSS SQL).
func sqlVariants() map[string]simulator.DBSSConfig {
	vs := map[string]simulator.DBSSConfig{
		"documented":          {},
		"ids-missing":         {Variants: simulator.DBSSVariants{SQLNoID: true}},
		"ids-shared":          {Variants: simulator.DBSSVariants{SQLSharedIDs: true}},
		"copies":              {Variants: simulator.DBSSVariants{SQLCopies: true}},
		"copies-without-ids":  {Variants: simulator.DBSSVariants{SQLCopies: true, SQLNoID: true}},
		"count-only":          {Variants: simulator.DBSSVariants{SQLCount: simulator.CountOnly}},
		"count-is-page":       {Variants: simulator.DBSSVariants{SQLCount: simulator.CountIsPage}},
		"order-ignored-desc":  {Variants: simulator.DBSSVariants{IgnoreTimeOrder: true}},
		"order-ignored-hash":  {Variants: simulator.DBSSVariants{IgnoreTimeOrder: true}, Listing: simulator.Listing{Order: simulator.Unordered}},
		"bounds-exclusive":    {Listing: simulator.Listing{StartExclusive: true, EndExclusive: true}},
		"listed-late":         {MaxLag: 4 * time.Minute},
		"dense-seconds":       {SameSecond: 30},
		"dense-no-ids-copies": {SameSecond: 30, Variants: simulator.DBSSVariants{SQLNoID: true, SQLCopies: true}},
		"list-capped":         {Variants: simulator.DBSSVariants{ListCap: 150}},
		"newer-path-404":      {CurrentPathMissing: true},
		"newer-path-403":      {CurrentPathStatus: 403},
	}
	for _, f := range []simulator.DBSSTimeFormat{simulator.TimeEpochMillis, simulator.TimeEpochMillisString, simulator.TimeRFC3339Local} {
		vs["time-"+f.String()] = simulator.DBSSConfig{Variants: simulator.DBSSVariants{TimeFormat: f}}
	}
	return vs
}

// TestSQLEveryRecordUnderVariants reads the SQL audit under each variant
// and checks that the records delivered are exactly the records served,
// copies included, oldest first, each one mapping.
func TestSQLEveryRecordUnderVariants(t *testing.T) {
	for name, cfg := range sqlVariants() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			clk := windowtest.NewClock(simStart)
			cfg.Instances, cfg.SQLRecords, cfg.Start, cfg.SQLInterval = []string{simIns}, 300, simStart.Add(time.Minute), 20*time.Second
			sim, s := kindStream(t, cfg, clk, SQL, 10)
			want := sim.DBSSSQLRecords(simIns)
			got := drainKind(t, s, clk, want[len(want)-1].VisibleAt.Add(15*time.Minute))
			count := map[string]int{}
			for _, r := range want {
				count[r.Raw]++
			}
			for _, raw := range got {
				count[string(raw)]--
			}
			for raw, n := range count {
				if n > 0 {
					t.Errorf("%d of %s not delivered", n, raw)
				} else if n < 0 {
					t.Errorf("%s delivered %d more times than served", raw, -n)
				}
			}
			if legacy := cfg.CurrentPathMissing || cfg.CurrentPathStatus != 0; s.UsesLegacyPath() != legacy {
				t.Errorf("UsesLegacyPath = %v, want %v", s.UsesLegacyPath(), legacy)
			}
		})
	}
}

// TestSQLCopiesAreOneEvent: byte-identical SQL records (ids missing, one
// statement run twice in a second) are both delivered and map to one
// event id, so sinks keep one; records that differ only in their id are
// two events, even if the id is shared.
func TestSQLCopiesAreOneEvent(t *testing.T) {
	s := goldenStreamOf(nil, time.Time{})
	s.kind = SQL
	ids := func(raws ...string) map[string]bool {
		out := map[string]bool{}
		for _, r := range raws {
			var ev pipeline.Event
			if err := s.Map([]byte(r), &ev); err != nil {
				t.Fatal(err)
			}
			out[ev.ID] = true
		}
		return out
	}
	a := `{"sql_statement":"select 1","db_user":"app","start_time":"2025-06-01 00:00:01"}`
	if n := len(ids(a, a)); n != 1 {
		t.Errorf("two identical records map to %d event ids, want 1", n)
	}
	b1 := `{"id":"s1","sql_statement":"select 1","start_time":"2025-06-01 00:00:01"}`
	b2 := `{"id":"s1","sql_statement":"select 2","start_time":"2025-06-01 00:00:01"}`
	if n := len(ids(b1, b2)); n != 2 {
		t.Errorf("two records sharing an id map to %d event ids, want 2", n)
	}
}

// TestSQLPageSizeAboveTheAPIsLimit: the SDK documents no largest size;
// an API that refuses ours answers 400 on both paths, and the error names
// the setting to lower. With a size it accepts, everything is read.
func TestSQLPageSizeAboveTheAPIsLimit(t *testing.T) {
	cfg := simulator.DBSSConfig{Instances: []string{simIns}, SQLRecords: 120, Start: simStart.Add(time.Minute), SQLInterval: 10 * time.Second, Variants: simulator.DBSSVariants{MaxSize: 50}}
	clk := windowtest.NewClock(simStart.Add(2 * time.Hour))
	_, s := kindStream(t, cfg, clk, SQL, 100)
	rd, err := s.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rd.Next(context.Background())
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "HWCAUDIT_DBSS_PAGE_SIZE is 100") {
		t.Fatalf("got %v, want a permanent error naming HWCAUDIT_DBSS_PAGE_SIZE", err)
	}
	sim, s := kindStream(t, cfg, clk, SQL, 50)
	recs, _ := windowtest.Drain(t, s, nil)
	if len(recs) != len(sim.DBSSSQLRecords(simIns)) {
		t.Errorf("read %d records with size 50, want %d", len(recs), len(sim.DBSSSQLRecords(simIns)))
	}
}

// TestSQLListingPastTheTotal: an API that ignores "page" serves the first
// page again past the total; records without a stable id cannot show the
// repeat, so the decoder refuses a page that lists records at or after
// the total.
func TestSQLListingPastTheTotal(t *testing.T) {
	body := []byte(`{"total":3,"count":3,"sqls":[{"sql":{"start_time":"2025-06-01 00:00:01"}}]}`)
	if _, _, err := decodeSQLPage(body, "i", 0, 10); err != nil {
		t.Fatalf("first page: %v", err)
	}
	_, _, err := decodeSQLPage(body, "i", 10, 10)
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), `ignore "page"`) {
		t.Fatalf("page past the total: got %v", err)
	}
}

func alarmVariants() map[string]simulator.DBSSConfig {
	vs := map[string]simulator.DBSSConfig{
		"documented":       {},
		"status-changes":   {Variants: simulator.DBSSVariants{AlarmStatusChanges: true}},
		"ids-missing":      {Variants: simulator.DBSSVariants{AlarmNoID: true, AlarmStatusChanges: true}},
		"oldest-first":     {Listing: simulator.Listing{Order: simulator.OldestFirst}},
		"unordered":        {Listing: simulator.Listing{Order: simulator.Unordered}},
		"bounds-exclusive": {Listing: simulator.Listing{StartExclusive: true, EndExclusive: true}},
		"listed-late":      {MaxLag: 4 * time.Minute},
		"older-path":       {CurrentPathMissing: true, Variants: simulator.DBSSVariants{AlarmStatusChanges: true}},
	}
	for _, f := range []simulator.DBSSTimeFormat{simulator.TimeEpochMillis, simulator.TimeEpochMillisString, simulator.TimeRFC3339Local} {
		vs["time-"+f.String()] = simulator.DBSSConfig{Variants: simulator.DBSSVariants{TimeFormat: f, AlarmStatusChanges: true}}
	}
	return vs
}

// TestAlarmEveryAlarmUnderVariants reads the alarm logs under each
// variant: every alarm is delivered once (as it stood when its window was
// read), oldest first, and maps.
func TestAlarmEveryAlarmUnderVariants(t *testing.T) {
	for name, cfg := range alarmVariants() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			clk := windowtest.NewClock(simStart)
			cfg.Instances, cfg.Alarms, cfg.Start, cfg.AlarmInterval = []string{simIns}, 120, simStart.Add(time.Minute), 30*time.Second
			sim, s := kindStream(t, cfg, clk, Alarm, 10)
			want := sim.DBSSAlarms(simIns)
			got := drainKind(t, s, clk, want[len(want)-1].VisibleAt.Add(15*time.Minute))
			count := map[string]int{}
			for _, al := range want {
				id, err := alarmIdentity([]byte(sim.DBSSAlarmJSON(al, al.Time)))
				if err != nil {
					t.Fatal(err)
				}
				count[id]++
			}
			for _, raw := range got {
				id, err := alarmIdentity(raw)
				if err != nil {
					t.Fatal(err)
				}
				count[id]--
			}
			var problems []string
			for id, n := range count {
				if n != 0 {
					problems = append(problems, fmt.Sprintf("%s: %d undelivered", id, n))
				}
			}
			sort.Strings(problems)
			if len(problems) > 0 {
				t.Errorf("%d of %d alarms miscounted: %v", len(problems), len(want), problems)
			}
		})
	}
}

// TestSQLDenseSecondIsStreamed: 20,000 SQL records in one second (ids
// missing, so nothing but their position tells them apart) are read in
// one pass a page at a time, each delivered once, the reader never
// holding more than a page, in about three listings of the second (its
// own and its neighbours' one-second overlaps).
func TestSQLDenseSecondIsStreamed(t *testing.T) {
	const n, page = 20_000, 100
	sec := simStart.Add(time.Hour)
	recs, times := benchSQLRecords(n, n, sec)
	for i := range recs {
		recs[i] = []byte(strings.Replace(string(recs[i]), `"id":`, `"x_id":`, 1))
	}
	api := &sqlBenchAPI{recs: recs, times: times}
	s := NewStreams(Config{Instances: []string{simIns}, PageSize: page, Streams: []string{"sql"}}, api, "r", simProject, Options{
		Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 1000},
		Start:  sec.Add(-time.Hour),
		Now:    func() time.Time { return sec.Add(time.Hour) },
	})[0]
	rd, err := s.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for {
		p, err := rd.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Records) > page {
			t.Fatalf("a page of %d records, more than the page size", len(p.Records))
		}
		for _, raw := range p.Records {
			seen[string(raw)]++
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct records delivered, want %d", len(seen), n)
	}
	for raw, k := range seen {
		if k != 1 {
			t.Fatalf("delivered %d times: %s", k, raw)
		}
	}
	if limit := 3*(n/page+1) + 80; api.calls > limit {
		t.Errorf("%d requests for %d records in pages of %d, want at most %d", api.calls, n, page, limit)
	}
}

// TestSQLAndAlarmUnderThrottlingAndServerErrors: with one answer in five a
// 429 or a 503 on every path, the SQL audit and alarm streams still
// deliver every record exactly once (failed pages are retried; a run's
// answered pages are kept).
func TestSQLAndAlarmUnderThrottlingAndServerErrors(t *testing.T) {
	for _, k := range []Kind{SQL, Alarm} {
		t.Run(string(k), func(t *testing.T) {
			clk := windowtest.NewClock(simStart)
			cfg := simulator.DBSSConfig{Instances: []string{simIns}, Start: simStart.Add(time.Minute), SQLRecords: 300, SQLInterval: 20 * time.Second, Alarms: 150, AlarmInterval: 30 * time.Second, SameSecond: 25}
			sim := simulator.New(simulator.Config{ProjectID: simProject, Tokens: []simulator.Token{{Value: simToken}}, Seed: 11, Now: clk.Now, DBSS: cfg,
				Faults: simulator.Faults{ThrottleRate: 0.1, ServerErrorRate: 0.1, ServerErrorStatus: 503}})
			scfg := Config{Instances: cfg.Instances, Endpoint: "http://dbss.sim", PageSize: 10, Streams: []string{string(k)}}
			s := NewStreams(scfg, windowtest.InProcess{H: sim, Token: simToken}, "cn-north-4", simProject, Options{
				Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 100}, Start: simStart, Now: clk.Now,
			})[0]
			var want []string
			var last time.Time
			if k == SQL {
				for _, r := range sim.DBSSSQLRecords(simIns) {
					want, last = append(want, r.Raw), r.VisibleAt
				}
			} else {
				for _, al := range sim.DBSSAlarms(simIns) {
					id, _ := alarmIdentity([]byte(sim.DBSSAlarmJSON(al, al.Time)))
					want, last = append(want, id), al.VisibleAt
				}
			}
			got := drainKind(t, s, clk, last.Add(15*time.Minute))
			count := map[string]int{}
			for _, w := range want {
				count[w]++
			}
			for _, raw := range got {
				key := string(raw)
				if k == Alarm {
					key, _ = alarmIdentity(raw)
				}
				count[key]--
			}
			for key, n := range count {
				if n != 0 {
					t.Errorf("%s: %d more served than delivered", key, n)
				}
			}
			st := sim.Stats()
			t.Logf("%d records delivered; simulator: %+v", len(got), st)
			if st.ServerErrors == 0 || st.Throttled == 0 {
				t.Errorf("no fault was injected: %+v", st)
			}
		})
	}
}
