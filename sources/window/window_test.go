package window

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

var t0 = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

// fakeAPI lists records by time like the audit APIs: records whose time
// lies in the query range, newest first, paged by offset and limit.
type fakeAPI struct {
	mu        sync.Mutex
	recs      []Record
	startExcl bool // start_time is exclusive
	endExcl   bool // end_time is exclusive
	maxSpan   time.Duration
	calls     int
	spans     []time.Duration // query span of each call
	totals    []int64
	// onFetch runs after a page was cut, before it is returned.
	onFetch func(a *fakeAPI, offset int)
	// lie adds this to every total.
	lie int64
	// filter is the time the range applies to: "" or "end" (Record.Time),
	// "begin" (begins[id]) or "overlap" ([begin, time] meets the range).
	filter string
	begins map[string]time.Time
	// served counts the records returned.
	served int64
	// queries are the ranges asked for.
	queries [][2]time.Time
}

func rec(id string, t time.Time) Record {
	return Record{ID: id, Time: t, Raw: []byte(fmt.Sprintf(`{"id":%q,"t":%q}`, id, t.Format(time.RFC3339Nano)))}
}

func (a *fakeAPI) add(r ...Record) {
	a.mu.Lock()
	a.recs = append(a.recs, r...)
	a.mu.Unlock()
}

func (a *fakeAPI) fetch(_ context.Context, from, to time.Time, offset, limit int) ([]Record, int64, error) {
	a.mu.Lock()
	a.calls++
	span := to.Sub(from)
	a.spans = append(a.spans, span)
	if a.maxSpan > 0 && span > a.maxSpan {
		a.mu.Unlock()
		return nil, 0, pipeline.Permanent(fmt.Errorf("span %s over %s", span, a.maxSpan))
	}
	if offset%limit != 0 {
		a.mu.Unlock()
		return nil, 0, pipeline.Permanent(fmt.Errorf("offset %d not a multiple of %d", offset, limit))
	}
	a.queries = append(a.queries, [2]time.Time{from, to})
	var in []Record
	for _, r := range a.recs {
		lo := r.Time.Truncate(time.Second)
		hi := lo
		if b, ok := a.begins[r.ID]; ok {
			setBegin(&r, b)
			switch a.filter {
			case "begin":
				lo, hi = b, b
			case "overlap":
				lo = b
			}
		}
		// [lo, hi] must meet the range.
		if (a.startExcl && !hi.After(from)) || hi.Before(from) {
			continue
		}
		if (a.endExcl && !lo.Before(to)) || lo.After(to) {
			continue
		}
		in = append(in, r)
	}
	// Newest first; ties in insertion order, as a database might.
	slices.SortStableFunc(in, func(x, y Record) int { return y.Time.Compare(x.Time) })
	total := int64(len(in))
	a.totals = append(a.totals, total)
	page := in[min(offset, len(in)):min(offset+limit, len(in))]
	page = slices.Clone(page)
	a.served += int64(len(page))
	hook := a.onFetch
	a.mu.Unlock()
	if hook != nil {
		hook(a, offset)
	}
	return page, total + a.lie, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newOpts(a *fakeAPI, c *clock, pageSize, maxRecords int) Options {
	return Options{
		Key:      "test",
		Start:    t0,
		Config:   Config{SettleDelay: 5 * time.Minute, MaxRecords: maxRecords},
		MaxSpan:  a.maxSpan,
		PageSize: pageSize,
		Now:      c.now,
		Fetch:    a.fetch,
	}
}

// drain reads until io.EOF and returns the ids delivered and the last
// cursor, checking that times never go backwards.
func drain(t *testing.T, o Options, cursor []byte) (ids []string, cursors [][]byte, last []byte) {
	t.Helper()
	r, err := NewReader(o, cursor)
	if err != nil {
		t.Fatal(err)
	}
	last = cursor
	var prev time.Time
	for range 100000 {
		p, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return ids, cursors, last
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.Cursor == nil {
			t.Fatal("page without cursor")
		}
		for _, raw := range p.Records {
			var v struct{ ID, T string }
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			// Oldest first by second: within a second the cursor does not
			// move, and a streamed second comes in the API's order.
			ts, _ := time.Parse(time.RFC3339Nano, v.T)
			ts = ts.Truncate(time.Second)
			if ts.Before(prev) {
				t.Fatalf("record %s at %s after one at %s", v.ID, ts, prev)
			}
			prev = ts
			ids = append(ids, v.ID)
		}
		last = p.Cursor
		cursors = append(cursors, p.Cursor)
		if p.Total != int64(len(ids)) {
			t.Fatalf("page Total %d after %d records delivered in this run", p.Total, len(ids))
		}
	}
	t.Fatal("reader never reached io.EOF")
	return
}

// burstyRecords places n records from t0 on, many sharing a second, some
// with sub-second times.
func burstyRecords(n int, seed uint64) []Record {
	var out []Record
	ts := t0
	h := seed
	for i := range n {
		h = h*6364136223846793005 + 1442695040888963407
		switch (h >> 33) % 5 {
		case 0, 1: // same second
		case 2:
			ts = ts.Add(time.Second)
		default:
			ts = ts.Add(time.Duration((h>>40)%600) * time.Second)
		}
		out = append(out, rec(fmt.Sprintf("r%05d", i), ts.Add(time.Duration((h>>20)%1000)*time.Millisecond)))
	}
	return out
}

func checkOnce(t *testing.T, got []string, want []Record) {
	t.Helper()
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
		if seen[id] == 2 {
			t.Errorf("record %s delivered twice", id)
		}
	}
	missing := 0
	for _, r := range want {
		if seen[r.ID] == 0 {
			if missing < 5 {
				t.Errorf("record %s at %s never delivered", r.ID, r.Time)
			}
			missing++
		}
	}
	if missing > 0 || len(seen) != len(want) {
		t.Fatalf("%d of %d records missing; %d distinct delivered", missing, len(want), len(seen))
	}
}

func TestEveryRecordOnceOldestFirst(t *testing.T) {
	for _, excl := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		for i, ps := range []int{1, 3, 10, 100} {
			// Half the cases request the pages of a window concurrently.
			conc := 1 + 3*(i%2)
			t.Run(fmt.Sprintf("startExcl=%v/endExcl=%v/page=%d/concurrency=%d", excl[0], excl[1], ps, conc), func(t *testing.T) {
				all := burstyRecords(600, uint64(ps))
				a := &fakeAPI{startExcl: excl[0], endExcl: excl[1], maxSpan: 30 * 24 * time.Hour}
				end := all[len(all)-1].Time
				c := &clock{t: t0}
				o := newOpts(a, c, ps, 40)
				o.Config.Concurrency = conc
				var got []string
				var cur []byte
				// Runs every few minutes; each record becomes visible up to
				// four minutes after its time, inside the settle delay.
				for c.t.Before(end.Add(10 * time.Minute)) {
					c.t = c.t.Add(7 * time.Minute)
					a.mu.Lock()
					a.recs = a.recs[:0]
					for i, r := range all {
						if !r.Time.Add(time.Duration(i%5) * time.Minute).After(c.t) {
							a.recs = append(a.recs, r)
						}
					}
					a.mu.Unlock()
					ids, _, last := drain(t, o, cur)
					got, cur = append(got, ids...), last
				}
				checkOnce(t, got, all)
			})
		}
	}
}

// TestResumeFromEveryCursor crashes after every page: reading again from
// that page's cursor must deliver the rest, repeating only records of the
// second the cursor stands at (delivered in part before the crash).
func TestResumeFromEveryCursor(t *testing.T) {
	all := burstyRecords(300, 7)
	at := map[string]time.Time{}
	for _, r := range all {
		at[r.ID] = r.Time.Truncate(time.Second)
	}
	a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
	a.add(all...)
	c := &clock{t: all[len(all)-1].Time.Add(time.Hour)}
	o := newOpts(a, c, 4, 25)
	ids, cursors, _ := drain(t, o, nil)
	checkOnce(t, ids, all)
	for i, cur := range cursors {
		cc, err := DecodeCursor(cur)
		if err != nil {
			t.Fatal(err)
		}
		before := deliveredUpTo(t, o, i)
		rest, _, _ := drain(t, o, cur)
		got := map[string]bool{}
		for _, id := range before {
			got[id] = true
		}
		for _, id := range rest {
			if got[id] && !at[id].Equal(cc.Through) {
				t.Fatalf("after cursor %d (%s): record %s at %s delivered again", i, cur, id, at[id])
			}
			got[id] = true
		}
		if len(got) != len(all) {
			t.Fatalf("after cursor %d (%s): %d of %d records delivered", i, cur, len(got), len(all))
		}
	}
}

// deliveredUpTo returns the ids of the first n+1 pages of a fresh run.
func deliveredUpTo(t *testing.T, o Options, n int) []string {
	t.Helper()
	r, err := NewReader(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range n + 1 {
		p, err := r.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range p.Records {
			var v struct{ ID string }
			_ = json.Unmarshal(raw, &v)
			ids = append(ids, v.ID)
		}
	}
	return ids
}

func TestSplitsLongAndDenseWindows(t *testing.T) {
	const maxSpan = 30 * 24 * time.Hour
	a := &fakeAPI{maxSpan: maxSpan}
	// 100 days, with a dense hour in the middle.
	var all []Record
	for d := range 100 {
		all = append(all, rec(fmt.Sprintf("d%03d", d), t0.Add(time.Duration(d)*24*time.Hour+time.Hour)))
	}
	dense := t0.Add(50*24*time.Hour + 30*time.Minute)
	for i := range 200 {
		all = append(all, rec(fmt.Sprintf("x%03d", i), dense.Add(time.Duration(i/4)*time.Second)))
	}
	for i := range 30 { // one second above the cap: never split
		all = append(all, rec(fmt.Sprintf("s%03d", i), dense.Add(time.Hour)))
	}
	a.add(all...)
	c := &clock{t: t0.Add(101 * 24 * time.Hour)}
	o := newOpts(a, c, 7, 20)
	ids, _, _ := drain(t, o, nil)
	checkOnce(t, ids, all)
	for i, s := range a.spans {
		if s > maxSpan {
			t.Errorf("query %d spans %s", i, s)
		}
	}
	if a.calls > 2000 {
		t.Errorf("%d requests for %d records", a.calls, len(all))
	}
}

func TestSettleDelay(t *testing.T) {
	a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
	now := t0.Add(time.Hour)
	a.add(rec("old", now.Add(-10*time.Minute)), rec("edge", now.Add(-5*time.Minute)), rec("new", now.Add(-time.Minute)))
	c := &clock{t: now}
	o := newOpts(a, c, 10, 100)
	ids, _, last := drain(t, o, nil)
	if !slices.Equal(ids, []string{"old"}) {
		t.Fatalf("delivered %v before the settle delay passed, want [old]", ids)
	}
	cur, err := DecodeCursor(last)
	if err != nil {
		t.Fatal(err)
	}
	if !cur.Through.Equal(now.Add(-5 * time.Minute)) {
		t.Errorf("cursor through %s, want now−5m", cur.Through)
	}
	c.t = now.Add(5 * time.Minute)
	ids, _, _ = drain(t, o, last)
	if !slices.Equal(ids, []string{"edge", "new"}) {
		t.Fatalf("second run delivered %v, want [edge new]", ids)
	}
}

func TestSameSecondAcrossWindows(t *testing.T) {
	a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
	sec := t0.Add(time.Hour)
	a.add(rec("a", sec), rec("b", sec.Add(100*time.Millisecond)), rec("c", sec.Add(900*time.Millisecond)))
	c := &clock{t: sec.Add(5*time.Minute + time.Second)} // the window ends right after sec
	o := newOpts(a, c, 1, 100)
	ids, cursors, last := drain(t, o, nil)
	if slices.Sort(ids); !slices.Equal(ids, []string{"a", "b", "c"}) {
		t.Fatalf("got %v", ids)
	}
	// The cursor passes sec only with its last record, and holds no ids.
	for i, cur := range cursors {
		cc, err := DecodeCursor(cur)
		if err != nil {
			t.Fatal(err)
		}
		if i < len(cursors)-1 && cc.Through.After(sec) {
			t.Errorf("cursor %d %s passed %s before its last record", i, cur, sec)
		}
		if strings.Contains(string(cur), "seen") {
			t.Errorf("cursor %s holds ids", cur)
		}
	}
	if want := `{"through":"` + sec.Add(time.Second).Format(time.RFC3339) + `"}`; string(last) != want {
		t.Errorf("last cursor %s, want %s", last, want)
	}
	// Resuming from the cursor after "a" delivers the whole second again.
	rest, _, _ := drain(t, o, cursors[0])
	if slices.Sort(rest); !slices.Equal(rest, []string{"a", "b", "c"}) {
		t.Fatalf("resumed mid-second: %v, want the second again", rest)
	}
}

func TestTotalChangeRereads(t *testing.T) {
	a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
	for i := range 10 {
		a.add(rec(fmt.Sprintf("r%d", i), t0.Add(time.Duration(i)*time.Second)))
	}
	inserted := false
	a.onFetch = func(a *fakeAPI, offset int) {
		if offset == 3 && !inserted {
			inserted = true
			a.add(rec("late", t0.Add(4*time.Second))) // shifts later pages
		}
	}
	c := &clock{t: t0.Add(time.Hour)}
	o := newOpts(a, c, 3, 100)
	ids, _, _ := drain(t, o, nil)
	checkOnce(t, ids, a.recs)
}

func TestInconsistentTotalIsRetryable(t *testing.T) {
	a := &fakeAPI{maxSpan: 30 * 24 * time.Hour, lie: 1}
	a.add(rec("r", t0.Add(time.Second)))
	c := &clock{t: t0.Add(time.Hour)}
	r, err := NewReader(newOpts(a, c, 10, 100), nil)
	if err != nil {
		t.Fatal(err)
	}
	before := r.Cursor()
	if _, err := r.Next(context.Background()); err == nil || pipeline.IsPermanent(err) || errors.Is(err, io.EOF) {
		t.Fatalf("got %v, want a retryable error", err)
	}
	if after := r.Cursor(); !after.Through.Equal(before.Through) {
		t.Fatalf("cursor moved after an error: %v → %v", before, after)
	}
	a.lie = 0
	p, err := r.Next(context.Background())
	if err != nil || len(p.Records) != 1 {
		t.Fatalf("after the API healed: %d records, %v", len(p.Records), err)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := Cursor{Through: time.Date(2025, 3, 1, 8, 0, 5, 0, time.FixedZone("x", 8*3600)), LookbackSeconds: 7200}
	raw := c.Encode()
	if string(raw) != `{"through":"2025-03-01T00:00:05Z","lookback_s":7200}` {
		t.Fatalf("encoded %s", raw)
	}
	got, err := DecodeCursor(raw)
	if err != nil || !got.Through.Equal(c.Through) || got.LookbackSeconds != 7200 {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	if raw := (Cursor{Through: c.Through}).Encode(); string(raw) != `{"through":"2025-03-01T00:00:05Z"}` {
		t.Fatalf("encoded %s", raw)
	}
	for _, bad := range []string{``, `null`, `{}`, `{"through":"yesterday"}`, `[1]`, `{"through":"0001-01-01T00:00:00Z"}`,
		`{"through":"2025-03-01T00:00:05Z","lookback_s":-1}`, `{"through":"2025-03-01T00:00:05Z","lookback_s":1e12}`} {
		if _, err := DecodeCursor([]byte(bad)); err == nil || !pipeline.IsPermanent(err) {
			t.Errorf("DecodeCursor(%q) = %v, want a permanent error", bad, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{SettleDelay: 5 * time.Minute, MaxRecords: 5000}, ""},
		{Config{SettleDelay: -time.Second, MaxRecords: 5000}, "HWCAUDIT_SETTLE_DELAY"},
		{Config{SettleDelay: time.Minute, MaxRecords: 5}, "HWCAUDIT_WINDOW_MAX_RECORDS"},
	} {
		err := c.cfg.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}

func FuzzCursor(f *testing.F) {
	for _, s := range []string{`{"through":"2025-03-01T00:10:00Z","seen_ids":["r00001"]}`, `{"through":"2025-03-01T00:00:00Z","seen_ids":[]}`, `{}`, `{"through":"9999-12-31T23:59:59Z"}`} {
		f.Add([]byte(s))
	}
	all := burstyRecords(50, 3)
	f.Fuzz(func(t *testing.T, cur []byte) {
		a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
		a.add(all...)
		c := &clock{t: all[len(all)-1].Time.Add(time.Hour)}
		r, err := NewReader(newOpts(a, c, 10, 100), cur)
		if err != nil {
			if !pipeline.IsPermanent(err) {
				t.Fatalf("retryable error for a bad cursor: %v", err)
			}
			return
		}
		for range 50 {
			if _, err := r.Next(context.Background()); err != nil {
				return
			}
		}
	})
}

func TestFailingPagesDoNotRestartTheWindow(t *testing.T) {
	for _, tc := range []struct {
		name                string
		records, maxRecords int
		failEvery           int
		maxNext             int // calls of Next allowed
	}{
		// A window holds 30 pages and every third request fails (a 429, a
		// 503). Before, each retry listed the window from its first page,
		// failed at the third every time, and the stream never moved. Now
		// answered pages are kept across the retries of one listing.
		{"one wide window", 300, 5000, 3, 100},
		// 1,000 records where a window may hold 100, and every ninth
		// request fails. Before, a failure undid the splitting done so
		// far: every retry began with the widest window again, needed more
		// than eight pages to learn it was too wide, and never moved.
		{"a split learnt before a failure", 1000, 100, 9, 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
			for i := range tc.records {
				a.add(rec(fmt.Sprintf("r%04d", i), t0.Add(time.Duration(i)*time.Second)))
			}
			c := &clock{t: t0.Add(2 * time.Hour)}
			o := newOpts(a, c, 10, tc.maxRecords)
			fetch := o.Fetch
			calls := 0
			o.Fetch = func(ctx context.Context, from, to time.Time, offset, limit int) ([]Record, int64, error) {
				calls++
				if calls%tc.failEvery == 0 {
					return nil, 0, errors.New("HTTP 503 APIG.0201: Backend unavailable")
				}
				return fetch(ctx, from, to, offset, limit)
			}
			r, err := NewReader(o, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			for attempt := 0; ; attempt++ {
				if attempt > tc.maxNext {
					t.Fatalf("no end after %d calls of Next (%d records, %d requests)", attempt, got, calls)
				}
				p, err := r.Next(context.Background())
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					if pipeline.IsPermanent(err) {
						t.Fatal(err)
					}
					continue // the pipeline backs off and calls Next again
				}
				got += len(p.Records)
			}
			if got != tc.records {
				t.Fatalf("delivered %d records, want %d", got, tc.records)
			}
		})
	}
}
