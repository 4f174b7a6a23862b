package window

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// rvWindowRun reads from cursor for at most pages pages (0: to EOF),
// retrying retryable errors up to 20 times in a row, and returns the ids
// delivered or dead-lettered, the cursors of the pages, and the last
// error if the run gave up.
func rvWindowRun(t *testing.T, o Options, cursor []byte, pages int) (ids []string, cursors [][]byte, eof bool, err error) {
	ids, cursors, _, eof, err = rvWindowRunPages(t, o, cursor, pages)
	return
}

// rvWindowRunPages is rvWindowRun that also returns, for each page, how
// many ids were delivered up to and including it.
func rvWindowRunPages(t *testing.T, o Options, cursor []byte, pages int) (ids []string, cursors [][]byte, upTo []int, eof bool, err error) {
	t.Helper()
	r, err := NewReader(o, cursor)
	if err != nil {
		t.Fatal(err)
	}
	fails := 0
	for n := 0; pages == 0 || n < pages; {
		p, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return ids, cursors, upTo, true, nil
		}
		if err != nil {
			if pipeline.IsPermanent(err) {
				t.Fatalf("permanent error: %v", err)
			}
			if fails++; fails > 20 {
				return ids, cursors, upTo, false, err
			}
			continue
		}
		fails = 0
		n++
		for _, raw := range p.Records {
			var v struct{ ID string }
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, v.ID)
		}
		for _, inv := range p.Invalid {
			ids = append(ids, "invalid:"+string(inv.Raw))
		}
		cursors = append(cursors, p.Cursor)
		upTo = append(upTo, len(ids))
	}
	return ids, cursors, upTo, false, nil
}

func TestReviewSameIDInTwoSecondsOfAWindow(t *testing.T) {
	// t.Skip("review finding: two records sharing an id in different seconds of one window make every listing 'inconsistent'; the window is read 4 times and Next fails (retryable) on every run for ever: the stream stalls on two records")
	// Two records share an id (an API that reuses ids, or two sources
	// behind one list) but lie in different seconds. They are different
	// records; even if they were not, the stream must not stall on them.
	a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
	a.add(rec("a", t0.Add(10*time.Second)), rec("dup", t0.Add(20*time.Second)), rec("dup", t0.Add(40*time.Second)), rec("b", t0.Add(50*time.Second)))
	c := &clock{t: t0.Add(time.Hour)}
	o := newOpts(a, c, 10, 100)
	ids, _, eof, err := rvWindowRun(t, o, nil, 0)
	if !eof {
		t.Fatalf("the run never ended: delivered %v, last error %v (%d requests)", ids, err, a.calls)
	}
}

// rvDenseAPI lists a dense second among sparse neighbours.
func rvDenseRecords() []Record {
	var all []Record
	for i := range 30 {
		all = append(all, rec(fmt.Sprintf("s%02d", i), t0.Add(time.Duration(i)*7*time.Second)))
	}
	dense := t0.Add(100 * time.Second)
	for i := range 95 {
		all = append(all, rec(fmt.Sprintf("d%03d", i), dense.Add(time.Duration(i)*time.Millisecond)))
	}
	return all
}

// TestReviewResumeAtEveryPageOfADenseSecond: a second holding more than
// MaxRecords is streamed a page per Next; a run killed after any page
// and resumed from that page's cursor, or from any earlier page's, still
// delivers every record, with End inside the dense second or not, and
// with page sizes that do and do not divide the second's records.
func TestReviewResumeAtEveryPageOfADenseSecond(t *testing.T) {
	dense := t0.Add(100 * time.Second)
	for _, end := range []time.Time{{}, dense.Add(50 * time.Millisecond), dense.Add(time.Second), t0.Add(150 * time.Second)} {
		for _, pageSize := range []int{10, 19} {
			for _, lookback := range []time.Duration{0, 30 * time.Second} {
				name := fmt.Sprintf("end=%s/page=%d/lookback=%s", end.Format("15:04:05.000"), pageSize, lookback)
				t.Run(name, func(t *testing.T) {
					a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
					all := rvDenseRecords()
					a.add(all...)
					c := &clock{t: t0.Add(time.Hour)}
					o := newOpts(a, c, pageSize, 100)
					o.Config.MaxRecords = 50 // the dense second (95) does not fit: it is streamed
					setLookback(&o, lookback)
					if !end.IsZero() {
						setEnd(&o, end)
					}
					want := map[string]bool{}
					for _, r := range all {
						if end.IsZero() || r.Time.Before(end) {
							want[r.ID] = true
						}
					}
					all1, cursors, upTo, eof, err := rvWindowRunPages(t, o, nil, 0)
					if !eof {
						t.Fatal(err)
					}
					atDense := 0 // pages whose cursor stays at the dense second: it was streamed
					for _, cur := range cursors {
						if c, err := DecodeCursor(cur); err == nil && c.Through.Equal(dense) {
							atDense++
						}
					}
					if atDense < 3 && (end.IsZero() || end.After(dense.Add(time.Second))) {
						t.Fatalf("only %d pages held the cursor at the dense second: it was not streamed", atDense)
					}
					for k := range cursors {
						for _, back := range []int{0, 2} {
							if back > k {
								continue
							}
							// Delivered in the first run up to page k, then
							// resumed from the cursor of page k-back.
							first := all1[:upTo[k]:upTo[k]] // appended to below: no aliasing
							rest, _, eof, err := rvWindowRun(t, o, cursors[k-back], 0)
							if k == len(cursors)-1 && back == 0 && len(rest) != 0 {
								t.Errorf("resumed from the last cursor, delivered %v again", rest)
							}
							if !eof {
								t.Fatalf("resume after page %d: %v", k, err)
							}
							got := map[string]bool{}
							for _, id := range append(first, rest...) {
								got[id] = true
							}
							for id := range want {
								if !got[id] {
									t.Fatalf("killed after page %d, resumed from page %d's cursor %s: %s never delivered", k, k-back, cursors[k-back], id)
								}
							}
							for id := range got {
								if !want[id] {
									t.Fatalf("%s delivered, after End", id)
								}
							}
						}
					}
				})
			}
		}
	}
}

func TestReviewBeginFilterFileStartingBeforeTheFirstWindow(t *testing.T) {
	t.Skip("review finding: under a begin_time filter a first run or backfill from Start never lists a file that began more than Lookback before Start but ended after it; it is neither delivered nor counted")
	// The API filters on begin_time. A file began 3h before the stream's
	// Start and ended 10 minutes after it; the look-back is 1h. Its key
	// (end_time) is inside the range, so it must be delivered, or at
	// least counted; no earlier window was ever read, so nothing could
	// have taught the reader a longer look-back.
	start := t0.Add(24 * time.Hour)
	a := &fakeAPI{maxSpan: 30 * 24 * time.Hour, filter: "begin", begins: map[string]time.Time{}}
	long := rec("long", start.Add(10*time.Minute))
	a.begins["long"] = start.Add(-3 * time.Hour)
	short := rec("short", start.Add(20*time.Minute))
	a.begins["short"] = start.Add(15 * time.Minute)
	a.add(long, short)
	c := &clock{t: start.Add(2 * time.Hour)}
	o := newOpts(a, c, 10, 100)
	o.Start = start
	setLookback(&o, time.Hour)
	ids, _, eof, err := rvWindowRun(t, o, nil, 0)
	if !eof {
		t.Fatal(err)
	}
	if len(ids) != 2 {
		t.Fatalf("delivered %v, want long and short", ids)
	}
}
