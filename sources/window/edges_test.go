package window

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// pageLog reads a reader to io.EOF or an error and keeps every page.
type pageLog struct {
	pages   []pipeline.Page
	err     error
	ids     []string // Records' ids, in order
	invalid []pipeline.Invalid
}

func readAllPages(t *testing.T, r *Reader, maxCalls int) pageLog {
	t.Helper()
	var l pageLog
	for range maxCalls {
		p, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return l
		}
		if err != nil {
			l.err = err
			return l
		}
		l.pages = append(l.pages, p)
		for _, raw := range p.Records {
			var v struct{ ID string }
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			l.ids = append(l.ids, v.ID)
		}
		l.invalid = append(l.invalid, p.Invalid...)
	}
	t.Fatalf("no io.EOF after %d calls of Next", maxCalls)
	return l
}

// sums adds up what the pages account for.
func (l pageLog) sums() (records, invalid, skipped int64, excl pipeline.Excluded) {
	for _, p := range l.pages {
		records += int64(len(p.Records))
		invalid += int64(len(p.Invalid))
		skipped += p.Skipped
		excl.BeforeStart += p.Excluded.BeforeStart
		excl.AfterEnd += p.Excluded.AfterEnd
	}
	return
}

// TestFilesAcrossWindowEdgesWhateverTheFilter: files that span minutes to
// hours, listed by whichever of their times the API filters on, are each
// delivered once although the reader keys them by their end and starts
// with a look-back shorter than the longest file: it learns a longer one
// from the files it sees ahead of their window, and keeps it in the
// cursor. Keyed by end with no look-back, files whose begin lies in an
// earlier window were lost under a begin filter.
func TestFilesAcrossWindowEdgesWhateverTheFilter(t *testing.T) {
	var all []Record
	begins := map[string]time.Time{}
	end := t0.Add(3 * time.Hour)
	h := uint64(11)
	for i := range 400 {
		h = h*6364136223846793005 + 1442695040888963407
		end = end.Add(time.Duration(1+(h>>33)%600) * time.Second)
		span := time.Minute + time.Duration((h>>20)%(3*3600))*time.Second // up to 3h
		r := rec(fmt.Sprintf("f%03d", i), end)
		all = append(all, r)
		begins[r.ID] = end.Add(-span)
	}
	for _, filter := range []string{"end", "begin", "overlap"} {
		for _, excl := range [][2]bool{{false, false}, {true, true}} {
			t.Run(fmt.Sprintf("%s/exclusive=%v", filter, excl[0]), func(t *testing.T) {
				a := &fakeAPI{maxSpan: 30 * 24 * time.Hour, filter: filter, begins: begins, startExcl: excl[0], endExcl: excl[1]}
				a.add(all...)
				c := &clock{t: end.Add(time.Hour)}
				o := newOpts(a, c, 7, 40)
				setLookback(&o, 30*time.Minute)
				ids, _, last := drain(t, o, nil)
				checkOnce(t, ids, all)
				var cur struct {
					Lookback int64 `json:"lookback_s"`
				}
				_ = json.Unmarshal(last, &cur)
				if filter == "begin" && cur.Lookback < 3600 {
					t.Errorf("cursor %s: no look-back learnt from files of up to 3h", last)
				}
			})
		}
	}
}

// TestLearntLookbackSurvivesResume: a reader that resumes from a cursor
// that learnt a look-back queries with it, even with a shorter default.
func TestLearntLookbackSurvivesResume(t *testing.T) {
	a := &fakeAPI{maxSpan: 30 * 24 * time.Hour, filter: "begin", begins: map[string]time.Time{}}
	r := rec("long", t0.Add(10*time.Hour))
	a.begins["long"] = t0.Add(4 * time.Hour) // spans 6h
	a.add(r)
	c := &clock{t: t0.Add(20 * time.Hour)}
	o := newOpts(a, c, 10, 100)
	setLookback(&o, time.Hour)
	cur := Cursor{Through: t0.Add(9 * time.Hour), LookbackSeconds: 7 * 3600}.Encode()
	ids, _, _ := drain(t, o, cur)
	if !slices.Equal(ids, []string{"long"}) {
		t.Fatalf("delivered %v, want the 6h file the cursor's 7h look-back reaches", ids)
	}
}

// TestOutsideRecordsAreCounted: every record a query listed is accounted
// once per listing: delivered, skipped (another window's, listed again by
// a look-back or an inclusive edge) or excluded before the start. They
// used to vanish uncounted.
func TestOutsideRecordsAreCounted(t *testing.T) {
	a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
	var all []Record
	for i := range 300 {
		all = append(all, rec(fmt.Sprintf("r%03d", i), t0.Add(time.Duration(i)*97*time.Second)))
	}
	a.add(all...)
	start := t0.Add(2 * time.Hour)
	c := &clock{t: start}
	o := newOpts(a, c, 10, 1000)
	o.Start = start
	setLookback(&o, time.Hour)
	// Runs every half hour, each reading a window of about that much with
	// an hour's look-back, which lists the two windows before again.
	var (
		cursor             []byte
		recs, inv, skipped int64
		excl               pipeline.Excluded
		delivered          []string
	)
	for c.t.Before(all[len(all)-1].Time.Add(time.Hour)) {
		c.t = c.t.Add(30 * time.Minute)
		r, err := NewReader(o, cursor)
		if err != nil {
			t.Fatal(err)
		}
		served := a.served
		l := readAllPages(t, r, 10000)
		if l.err != nil {
			t.Fatal(l.err)
		}
		r1, i1, s1, e1 := l.sums()
		if got := r1 + i1 + s1 + e1.Total(); got != a.served-served {
			t.Errorf("run to %s: pages account for %d records (%d delivered, %d skipped, %d excluded), the API served %d", c.t, got, r1, s1, e1.Total(), a.served-served)
		}
		if len(l.pages) > 0 {
			cursor = l.pages[len(l.pages)-1].Cursor
			if last := l.pages[len(l.pages)-1]; last.Total != r1+i1+e1.Total() {
				t.Errorf("last page Total %d, want %d", last.Total, r1+i1+e1.Total())
			}
		}
		recs, inv, skipped = recs+r1, inv+i1, skipped+s1
		excl.BeforeStart += e1.BeforeStart
		delivered = append(delivered, l.ids...)
	}
	var want []Record
	before := 0
	for _, x := range all {
		switch {
		case !x.Time.Before(start):
			want = append(want, x)
		case !x.Time.Before(start.Add(-time.Hour - time.Second)):
			before++
		}
	}
	checkOnce(t, delivered, want)
	if excl.BeforeStart != int64(before) {
		t.Errorf("Excluded.BeforeStart %d, want %d (the first query's records before the start)", excl.BeforeStart, before)
	}
	if skipped < recs {
		t.Errorf("%d records counted skipped, %d delivered: every query looks back an hour over two earlier windows", skipped, recs)
	}
}

// TestEndStopsWindowsAndExcludesAfter: with Options.End, no query reaches
// past End's second, nothing at or after End is delivered, and what the
// last query listed after End is counted as Excluded.AfterEnd.
func TestEndStopsWindowsAndExcludesAfter(t *testing.T) {
	a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
	var all []Record
	for i := range 20 {
		all = append(all, rec(fmt.Sprintf("r%02d", i), t0.Add(time.Duration(i)*10*time.Minute)))
	}
	endSec := t0.Add(90 * time.Minute)
	end := endSec.Add(500 * time.Millisecond)
	all = append(all, rec("in", endSec.Add(200*time.Millisecond)), rec("out", endSec.Add(700*time.Millisecond)), rec("next", endSec.Add(time.Second)))
	a.add(all...)
	c := &clock{t: t0.Add(10 * time.Hour)}
	o := newOpts(a, c, 10, 100)
	setEnd(&o, end)
	r, err := NewReader(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := readAllPages(t, r, 1000)
	if l.err != nil {
		t.Fatal(l.err)
	}
	var want []string
	for _, x := range all {
		if x.Time.Before(end) {
			want = append(want, x.ID)
		}
	}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(l.ids))
	if !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	for _, q := range a.queries {
		if q[1].After(endSec.Add(time.Second)) {
			t.Errorf("query %s..%s reaches past the end %s", q[0], q[1], end)
		}
	}
	// "out" (after End in its second) and "next" (the inclusive end).
	if _, _, _, excl := l.sums(); excl.AfterEnd != 2 {
		t.Errorf("Excluded.AfterEnd %d, want 2", excl.AfterEnd)
	}
}

// TestRunEndsAgainstSlowAPI: every request takes a minute of the clock.
// The reader reads up to the target it fixed when it opened, so a run
// ends; windows that chased now − SettleDelay never let it.
func TestRunEndsAgainstSlowAPI(t *testing.T) {
	a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
	c := &clock{t: t0.Add(24 * time.Hour)}
	var all []Record
	for i := range 200 {
		all = append(all, rec(fmt.Sprintf("r%03d", i), t0.Add(time.Duration(i)*7*time.Minute)))
	}
	a.add(all...)
	a.onFetch = func(*fakeAPI, int) { c.t = c.t.Add(time.Minute) }
	o := newOpts(a, c, 10, 50)
	target := c.t.Add(-o.Config.SettleDelay)
	r, err := NewReader(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := readAllPages(t, r, 2000)
	if l.err != nil {
		t.Fatal(l.err)
	}
	var want []Record
	for _, x := range all {
		if x.Time.Before(target) {
			want = append(want, x)
		}
	}
	checkOnce(t, l.ids, want)
}

// TestAbsurdTotalIsAClearError: a total of 10^12 used to size the
// reader's slices (fatal error: out of memory). It is a hint: the pages
// are read until they end and the total is found absurd afterwards, a
// permanent error that names the stream and the window.
func TestAbsurdTotalIsAClearError(t *testing.T) {
	a := &fakeAPI{maxSpan: 30 * 24 * time.Hour, lie: 1_000_000_000_000}
	for i := range 30 {
		a.add(rec(fmt.Sprintf("r%02d", i), t0.Add(time.Duration(i)*time.Minute)))
	}
	c := &clock{t: t0.Add(2 * time.Hour)}
	r, err := NewReader(newOpts(a, c, 10, 100), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := readAllPages(t, r, 1000)
	if l.err == nil || !pipeline.IsPermanent(l.err) {
		t.Fatalf("got %v, want a permanent error", l.err)
	}
	for _, want := range []string{"test:", "window", "total"} {
		if !strings.Contains(l.err.Error(), want) {
			t.Errorf("error %q does not say %q", l.err, want)
		}
	}
	if a.calls > 200 {
		t.Errorf("%d requests before giving up", a.calls)
	}
	if cur, _ := DecodeCursor(r.Cursor().Encode()); !cur.Through.Equal(t0) {
		t.Errorf("cursor moved to %s", cur.Through)
	}
}

// TestEndlessListingEnds: an API that ignores the offset (every page the
// same full page) or whose total grows with every request ends the read
// with an error instead of paging for ever.
func TestEndlessListingEnds(t *testing.T) {
	for _, name := range []string{"ignores offset", "total grows"} {
		t.Run(name, func(t *testing.T) {
			a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
			for i := range 50 {
				a.add(rec(fmt.Sprintf("r%02d", i), t0.Add(time.Duration(i)*time.Second)))
			}
			c := &clock{t: t0.Add(time.Hour)}
			o := newOpts(a, c, 10, 100)
			fetch := o.Fetch
			calls := 0
			o.Fetch = func(ctx context.Context, from, to time.Time, offset, limit int) ([]Record, int64, error) {
				calls++
				if name == "ignores offset" {
					offset = 0
				}
				recs, total, err := fetch(ctx, from, to, offset, limit)
				if name == "total grows" {
					total += int64(calls)
				}
				return recs, total, err
			}
			r, err := NewReader(o, nil)
			if err != nil {
				t.Fatal(err)
			}
			var failed error
			for range 100 { // the pipeline retries a retryable error
				if failed = readAllPages(t, r, 10000).err; failed == nil || pipeline.IsPermanent(failed) {
					break
				}
			}
			if failed == nil {
				t.Fatal("read to the end")
			}
			if calls > 20000 {
				t.Errorf("%d requests", calls)
			}
		})
	}
}

// TestImplausibleTimesAreInvalid: records whose time is missing or cannot
// be true go to Page.Invalid with the reason, once each, and never place
// a window or the cursor; their neighbours are all delivered.
func TestImplausibleTimesAreInvalid(t *testing.T) {
	a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
	var good []Record
	for i := range 40 {
		good = append(good, rec(fmt.Sprintf("g%02d", i), t0.Add(time.Duration(i)*3*time.Minute)))
	}
	a.add(good...)
	now := t0.Add(3 * time.Hour)
	bad := map[string]time.Time{
		"zero":   {},
		"year0":  time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		"1999":   time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
		"future": now.Add(49 * time.Hour),
		"9999":   time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	}
	var inner []Record
	for id, ts := range bad {
		inner = append(inner, Record{ID: id, Time: ts, Raw: []byte(`{"id":"` + id + `"}`)})
	}
	c := &clock{t: now}
	o := newOpts(a, c, 10, 100)
	fetch := o.Fetch
	// The API lists them in the queries that cover their true time, t0+1h.
	o.Fetch = func(ctx context.Context, from, to time.Time, offset, limit int) ([]Record, int64, error) {
		recs, _, err := fetch(ctx, from, to, 0, 1<<20)
		if err != nil {
			return nil, 0, err
		}
		if !from.After(t0.Add(time.Hour)) && !to.Before(t0.Add(time.Hour)) {
			recs = append(recs, inner...)
		}
		return recs[min(offset, len(recs)):min(offset+limit, len(recs))], int64(len(recs)), nil
	}
	r, err := NewReader(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := readAllPages(t, r, 1000)
	if l.err != nil {
		t.Fatal(l.err)
	}
	checkOnce(t, l.ids, good)
	seen := map[string]string{}
	for _, inv := range l.invalid {
		var v struct{ ID string }
		_ = json.Unmarshal(inv.Raw, &v)
		if _, dup := seen[v.ID]; dup {
			t.Errorf("%s invalid twice", v.ID)
		}
		seen[v.ID] = inv.Reason
	}
	for id := range bad {
		if seen[id] == "" {
			t.Errorf("record %s not in Page.Invalid with a reason (got %v)", id, seen)
		}
	}
	for _, p := range l.pages {
		cur, _ := DecodeCursor(p.Cursor)
		if cur.Through.After(now) {
			t.Errorf("cursor %s after the clock", p.Cursor)
		}
	}
}

// TestLegacyCursorResumesOneSecondEarlier: a cursor of the earlier form
// names the ids delivered of the second before "through"; the reader
// delivers that whole second again rather than keep ids.
func TestLegacyCursorResumesOneSecondEarlier(t *testing.T) {
	a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
	sec := t0.Add(time.Hour)
	a.add(rec("a", sec), rec("b", sec.Add(300*time.Millisecond)), rec("c", sec.Add(2*time.Second)))
	c := &clock{t: sec.Add(time.Hour)}
	old := fmt.Sprintf(`{"through":%q,"seen_ids":["a"]}`, sec.Add(time.Second).Format(time.RFC3339))
	ids, _, _ := drain(t, newOpts(a, c, 10, 100), []byte(old))
	if slices.Sort(ids); !slices.Equal(ids, []string{"a", "b", "c"}) {
		t.Fatalf("resumed from %s: %v, want a b c", old, ids)
	}
}
