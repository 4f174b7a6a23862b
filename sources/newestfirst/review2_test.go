package newestfirst

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// rv2Lines is the debug trace; fetches ahead append to it concurrently.
var (
	rv2Mu    sync.Mutex
	rv2Lines []string
)

func rv2Log(l string) {
	rv2Mu.Lock()
	defer rv2Mu.Unlock()
	rv2Lines = append(rv2Lines, l)
}

// rv2Logged returns the trace so far.
func rv2Logged() []string {
	rv2Mu.Lock()
	defer rv2Mu.Unlock()
	return slices.Clone(rv2Lines)
}

// rv2Trace wraps a fetch to log every request and its answer's range.
func rv2Trace(on *atomic.Bool, f Fetch[int64]) Fetch[int64] {
	return func(ctx context.Context, offset, limit int64) ([]Record[int64], int64, error) {
		recs, total, err := f(ctx, offset, limit)
		if on.Load() {
			s := ""
			for _, r := range recs {
				k := "-"
				if r.HasKey {
					k = fmt.Sprint(r.Key)
				}
				s += fmt.Sprintf(" %s/%s", r.Raw, k)
			}
			rv2Log(fmt.Sprintf("fetch off=%d lim=%d total=%d err=%v:%s", offset, limit, total, err, s))
		}
		return recs, total, err
	}
}

// TestReview2DebugSeed replays one seed of TestReviewRandomAdversarial
// with a trace of the requests of its last run (REVIEW2_SEED).
func TestReview2DebugSeed(t *testing.T) {
	s := os.Getenv("REVIEW2_SEED")
	if s == "" {
		t.Skip("REVIEW2_SEED not set")
	}
	seed, _ := strconv.ParseUint(s, 10, 64)
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var a *listAPI
	c := rvRandomCase(seed, &a, base)
	if s := os.Getenv("REVIEW_CONC"); s != "" {
		c.conc, _ = strconv.Atoi(s)
	}
	traceRun, _ := strconv.Atoi(os.Getenv("REVIEW2_RUN"))
	traceFrom, _ := strconv.Atoi(os.Getenv("REVIEW2_FROMPAGE"))
	rng := rand.New(rand.NewPCG(seed, 501))
	lrng := rand.New(rand.NewPCG(seed, 502))
	if c.keylessRate > 0 {
		decided := map[int64]bool{}
		a.keyless = func(id int64) bool {
			if v, ok := decided[id]; ok {
				return v
			}
			decided[id] = lrng.IntN(c.keylessRate) == 0
			return decided[id]
		}
	}
	a.oddKey = map[int64]int64{}
	for range c.oddKeys {
		id := a.ids[rng.IntN(len(a.ids))]
		if rng.IntN(2) == 0 {
			id = a.nextID + int64(rng.IntN(60))
		}
		a.oddKey[id] = []int64{1 << 40, -5}[rng.IntN(2)]
	}
	if c.oddHead {
		a.oddKey[a.ids[len(a.ids)-1]] = 1 << 40
	}
	var start, end time.Time
	if c.startIdx >= len(a.ids) {
		start = a.timeOf(a.nextID)
	} else {
		start = a.timeOf(a.ids[c.startIdx])
	}
	if c.endIdx >= 0 {
		if c.endIdx >= len(a.ids) {
			end = a.timeOf(a.nextID + 10_000_000)
		} else {
			end = a.timeOf(a.ids[c.endIdx])
		}
	}
	a.insert, a.drop, a.fail = c.insert, c.drop, c.fail
	now := func() time.Time { return a.base.Add(1000 * 24 * time.Hour) }
	var mark *Mark[int64]
	quiet := 0
	var on atomic.Bool
	res := rvResult{delivered: map[int64]int{}, invalid: map[int64]int{}, keyless: map[int64]bool{}, odd: map[int64]bool{}, start: start, end: end}
	for id := range a.oddKey {
		res.odd[id] = true
	}
	defer func() {
		rvCheck(t, seed, a, c, res)
		if t.Failed() {
			for _, l := range rv2Logged() {
				t.Log(l)
			}
		}
	}()
	for run := 0; ; run++ {
		last := run >= c.runs-1
		if last && (quiet >= 2 || run > c.runs+20) {
			break
		}
		if last {
			a.mu.Lock()
			a.insert, a.drop = nil, nil
			a.mu.Unlock()
		}
		a.mu.Lock()
		req0 := a.requests
		a.mu.Unlock()
		cfg := Config[int64]{Name: "review", Fetch: rv2Trace(&on, a.fetch), MaxPageSize: c.page, Start: start, End: end, Compare: cmp.Compare[int64], Concurrency: c.conc, Now: now}
		rd := New(cfg, mark)
		pages := 1 + rng.IntN(c.maxPages)
		if last {
			pages = 1 << 30
		}
		var marks []*Mark[int64]
		found, errs := 0, 0
		for p := 0; p < pages; {
			on.Store(run >= traceRun && p >= traceFrom)
			pg, err := rd.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				if errs++; errs > 1000 || pipeline.IsPermanent(err) {
					prev, rep := "", 0
					for _, l := range rv2Logged() {
						if l == prev {
							rep++
							continue
						}
						if rep > 0 {
							t.Logf("  (repeated %d times)", rep)
						}
						rep, prev = 0, l
						t.Log(l)
					}
					t.Fatalf("run %d: %v; %s", run, err, c)
				}
				if err.Error() != "connection reset" {
					t.Logf("run %d: error %v", run, err)
				}
				continue
			}
			p++
			found += len(pg.Records) + len(pg.Invalid)
			countPage(pg, res.delivered, res.invalid)
			if run >= traceRun {
				rv2Log(fmt.Sprintf("run %d page %d: recs %s..%s inv %d mark %+v", run, p, first(pg.Records), lastOf(pg.Records), len(pg.Invalid), pg.Mark))
			}
			if pg.Mark != nil {
				marks = append(marks, pg.Mark)
			}
		}
		if len(marks) > 0 {
			if c.earlierMark && !last {
				if i := rng.IntN(len(marks) + 1); i < len(marks) {
					mark = marks[i]
				}
			} else {
				mark = marks[len(marks)-1]
			}
		}
		a.mu.Lock()
		rv2Log(fmt.Sprintf("run %d: %d requests, %d ids, checkpoint %+v", run, a.requests-req0, len(a.ids), mark))
		a.mu.Unlock()
		if last && found == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
}

func TestReview2BlindPageNeverAcceptedOnceTheListMoved(t *testing.T) {
	// The head checks compare the newest keyed record of the run's first
	// response, and its index: a newest record without a key no longer
	// makes the list count as moving. A list that moved once during the
	// run still does (skipped below).
	// 100 records, pages of 20; the 11 newest carry no key. A first run
	// delivers all; its mark is the record 12th from the head with Skip
	// 12. Then records arrive. No limit holds the boundary, the 12
	// records Skip counts and a new one (b % l + 13 < l has no solution
	// for l <= 20 when b is 8 or 9), so plan takes the blind page that
	// abuts b. A blind page is accepted only after a head check shows
	// the list still since the run's first response; but when the
	// newest record has no key (noteHead sets moving) or the list grew
	// once during the run (evaluate sets moving), confirmStill answers
	// false for the rest of the run. evaluate then finds no delivered
	// record in the page with g below it and plan picks the same page
	// again: 128 requests per Next, every Next, while the list stands
	// still. (Seeds 83 and 1007 of TestReviewRandomAdversarial with
	// REVIEW_FULL=1 hit it: "1000 retryable errors", "the reader is
	// looping".)
	for _, tc := range []struct {
		name        string
		arrive      int
		keylessHead bool
		moveOnce    bool
	}{
		{"newest record without key", 8, true, false},
		{"list grew once during the run", 8, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.moveOnce {
				t.Skip("review2 finding: once a run saw the list move, plan's blind page is never accepted; with a Skip no overlapping page can hold, Next loops on the same page: every Next fails retryably, the new records are never delivered")
			}
			base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			a := newListAPI(100, base)
			keyless := map[int64]bool{}
			for _, id := range a.ids[89:] {
				keyless[id] = true
			}
			a.keyless = func(id int64) bool { return keyless[id] }
			cfg := Config[int64]{Name: "review2", MaxPageSize: 20, Start: base, Compare: cmp.Compare[int64]}
			delivered, marks := rvDrainRuns(t, a, cfg, 1)
			if len(delivered) != 100 || marks[0] == nil || marks[0].Skip != 12 {
				t.Fatalf("first run: %d delivered, mark %+v", len(delivered), marks[0])
			}
			a.add(tc.arrive)
			if tc.keylessHead {
				keyless[a.ids[len(a.ids)-1]] = true
			}
			if tc.moveOnce {
				first := a.requests + 2
				a.insert = func(req int) int {
					if req == first {
						return 1
					}
					return 0
				}
			}
			c := cfg
			c.Fetch = a.fetch
			rd := New(c, marks[0])
			got := map[int64]bool{}
			for errs := 0; ; {
				p, err := rd.Next(context.Background())
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					if errs++; errs >= 3 {
						t.Fatalf("Next keeps failing: %v (mark %+v)", err, marks[0])
					}
					continue
				}
				for _, raw := range p.Records {
					id, _ := strconv.ParseInt(string(raw), 10, 64)
					got[id] = true
				}
			}
			for _, id := range a.ids[100:] {
				if !got[id] {
					t.Errorf("record %d never delivered", id)
				}
			}
		})
	}
}

func TestReview2KeylessTailAfterRetentionInflatesSkip(t *testing.T) {
	// t.Skip("review2 finding: a search page at the list's end holding only key-less records (delivered long ago, below the mark) is taken as new (evaluate: 'no delivered record down to the list's end'); emit re-delivers them and adds them to Skip, which hides as many new records above the mark: 8 records (27..37) lost here")
	// 57 records, the 14 oldest without a key (ids 1..21). A first run
	// delivers one page, records 1..25: its mark is record 24 with
	// Skip 1 (FromEnd 16). Then 16 records arrive and retention deletes
	// the 5 oldest, so the list ends in 9 key-less records (9..21) that
	// were delivered. The next run's hint misses, the search asks for
	// the page at the list's end, which holds only those key-less
	// records; evaluate finds no delivered record "down to the list's
	// end" and emits them as new: Skip grows from 1 to 9 although they
	// lie below the mark. The page that then finds the mark puts b 9
	// records too far down, and records 27..37, just above the mark,
	// are never delivered. Concurrency 1, deterministic.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a := newListAPI(57, base)
	keyless := map[int64]bool{}
	for _, id := range a.ids[:14] {
		keyless[id] = true
	}
	a.keyless = func(id int64) bool { return keyless[id] }
	cfg := Config[int64]{Name: "review2", Fetch: a.fetch, MaxPageSize: 20, Start: base, Compare: cmp.Compare[int64]}
	delivered := map[int64]int{}
	rd := New(cfg, nil)
	p, err := rd.Next(context.Background())
	if err != nil || p.Mark == nil {
		t.Fatalf("first page: %v, mark %+v", err, p.Mark)
	}
	for _, raw := range p.Records {
		id, _ := strconv.ParseInt(string(raw), 10, 64)
		delivered[id]++
	}
	mark := p.Mark
	a.add(16)
	a.ids = a.ids[5:]
	more, marks := rvDrainRuns2(t, a, cfg, mark, 2)
	for id, n := range more {
		delivered[id] += n
	}
	lost := 0
	for _, id := range a.ids {
		if delivered[id] == 0 {
			lost++
			t.Errorf("record %d never delivered (mark before %+v, after %+v)", id, mark, marks[0])
		}
	}
}

func TestReview2FirstRunOverKeylessTailNeverEnds(t *testing.T) {
	// t.Skip("review2 finding: a first run over a list whose oldest records (14 of 30 here, a page and a little) carry no key delivers the same pages for ever: no mark is ever made, the page above is not recognised as overlapping, the search returns to the tail page")
	// A first run from before every record; the 14 oldest records of
	// 30 carry no key (malformed, dead-lettered by Map). The tail page
	// (offset 20, 10 key-less records) is emitted without a mark (no
	// key to confirm). The next page overlaps it, but on a first run
	// "delivered" means "before Start", so no record in it counts as
	// delivered; evaluate searches below it, plan's search lands on the
	// tail page again, which is emitted again: the run never ends and
	// delivers the same records without end (200 pages here), with
	// Concurrency 1 or more. A 100-record list with 19 to 40 key-less
	// oldest records does the same.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, conc := range []int{1, 4} {
		a := newListAPI(30, base)
		keyless := map[int64]bool{}
		for _, id := range a.ids[:14] {
			keyless[id] = true
		}
		a.keyless = func(id int64) bool { return keyless[id] }
		rd := New(Config[int64]{Name: "review2", Fetch: a.fetch, MaxPageSize: 20, Start: base, Compare: cmp.Compare[int64], Concurrency: conc}, nil)
		delivered := map[int64]int{}
		pages := 0
		for ; pages < 200; pages++ {
			p, err := rd.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("concurrency %d: %v", conc, err)
			}
			for _, raw := range p.Records {
				id, _ := strconv.ParseInt(string(raw), 10, 64)
				delivered[id]++
			}
		}
		if pages >= 200 {
			most := 0
			for _, n := range delivered {
				most = max(most, n)
			}
			t.Errorf("concurrency %d: the first run delivered 200 pages without reaching the head (a record delivered %d times, %d distinct of 30)", conc, most, len(delivered))
		}
	}
}
