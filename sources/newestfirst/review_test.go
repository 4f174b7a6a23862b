package newestfirst

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// rvCase is one adversarial schedule for the review's property test.
type rvCase struct {
	n, page, conc int
	// per request, under the list's lock
	insert func(req int) int
	drop   func(req int) int
	fail   func(req int) bool
	// per record, decided once
	keylessRate int // 1 in keylessRate records carry no key (0: none)
	oddKeys     int // records with a key far off their neighbours
	oddHead     bool
	startIdx    int // first run starts at the time of ids[startIdx] (may be len: after all)
	endIdx      int // -1: no End; else End is the time of ids[endIdx] (or later)
	earlierMark bool
	maxPages    int
	runs        int
	modes       string // what insert, drop and fail do, for the report
}

type rvResult struct {
	delivered map[int64]int
	invalid   map[int64]int
	keyless   map[int64]bool
	odd       map[int64]bool
	start     time.Time
	end       time.Time
	log       []string
}

func (c rvCase) String() string {
	return fmt.Sprintf("%s n=%d page=%d conc=%d keyless=1/%d odd=%d oddHead=%v startIdx=%d endIdx=%d earlierMark=%v maxPages=%d runs=%d",
		c.modes, c.n, c.page, c.conc, c.keylessRate, c.oddKeys, c.oddHead, c.startIdx, c.endIdx, c.earlierMark, c.maxPages, c.runs)
}

// rvRun drives runs of a Reader over a with kills after random pages,
// each resuming from the last page's mark or (earlierMark) from a mark
// returned earlier in the run, as a pipeline coalescing checkpoints may.
func rvRun(t *testing.T, seed uint64, a *listAPI, c rvCase) rvResult {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 501))
	lrng := rand.New(rand.NewPCG(seed, 502))
	res := rvResult{delivered: map[int64]int{}, invalid: map[int64]int{}, keyless: map[int64]bool{}, odd: map[int64]bool{}}
	if c.keylessRate > 0 {
		decided := map[int64]bool{}
		a.keyless = func(id int64) bool {
			if v, ok := decided[id]; ok {
				return v
			}
			decided[id] = lrng.IntN(c.keylessRate) == 0
			if decided[id] {
				res.keyless[id] = true
			}
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
		res.odd[id] = true
	}
	if c.oddHead {
		id := a.ids[len(a.ids)-1]
		a.oddKey[id] = 1 << 40
		res.odd[id] = true
	}
	if c.startIdx >= len(a.ids) {
		res.start = a.timeOf(a.nextID)
	} else {
		res.start = a.timeOf(a.ids[c.startIdx])
	}
	if c.endIdx >= 0 {
		if c.endIdx >= len(a.ids) {
			res.end = a.timeOf(a.nextID + 10_000_000)
		} else {
			res.end = a.timeOf(a.ids[c.endIdx])
		}
	}
	a.insert, a.drop, a.fail = c.insert, c.drop, c.fail
	now := func() time.Time { return a.base.Add(1000 * 24 * time.Hour) }
	var mark *Mark[int64]
	quiet := 0 // final runs in a row that found nothing
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
		cfg := Config[int64]{Name: "review", Fetch: a.fetch, MaxPageSize: c.page, Start: res.start, End: res.end, Compare: cmp.Compare[int64], Concurrency: c.conc, Now: now}
		rd := New(cfg, mark)
		pages := 1 + rng.IntN(c.maxPages)
		if last {
			pages = 1 << 30
		}
		var marks []*Mark[int64]
		errs := 0
		found := 0
		for p := 0; p < pages; {
			pg, err := rd.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				if pipeline.IsPermanent(err) {
					if os.Getenv("REVIEW_LOG") != "" {
						for _, l := range res.log {
							t.Log(l)
						}
					}
					t.Fatalf("seed %d run %d: permanent error %v\n%s", seed, run, err, c)
				}
				if errs++; errs > 1000 {
					t.Fatalf("seed %d run %d: 1000 retryable errors, last %v", seed, run, err)
				}
				continue
			}
			p++
			found += len(pg.Records) + len(pg.Invalid)
			countPage(pg, res.delivered, res.invalid)
			if pg.Mark != nil {
				marks = append(marks, pg.Mark)
			}
			res.log = append(res.log, fmt.Sprintf("run %d page %d: %d recs %v..%v inv %d excl %+v mark %+v", run, p, len(pg.Records), first(pg.Records), lastOf(pg.Records), len(pg.Invalid), pg.Excluded, pg.Mark))
		}
		if len(marks) > 0 {
			if c.earlierMark && !last {
				// The checkpoint kept one of the marks (or none: the last
				// one saved by an earlier run).
				if i := rng.IntN(len(marks) + 1); i < len(marks) {
					mark = marks[i]
				}
			} else {
				mark = marks[len(marks)-1]
			}
		}
		res.log = append(res.log, fmt.Sprintf("run %d ends; checkpoint %+v", run, mark))
		if last && found == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
	return res
}

func first(recs [][]byte) string {
	if len(recs) == 0 {
		return "-"
	}
	return string(recs[0])
}

func lastOf(recs [][]byte) string {
	if len(recs) == 0 {
		return "-"
	}
	return string(recs[len(recs)-1])
}

// rvCheck asserts the property: every record the list still holds whose
// time is in [start, end) was delivered or dead-lettered; no well-formed
// record before start or at or after end was delivered.
func rvCheck(t *testing.T, seed uint64, a *listAPI, c rvCase, res rvResult) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	bad := 0
	for _, id := range a.ids {
		tm := a.timeOf(id)
		in := !tm.Before(res.start) && (res.end.IsZero() || tm.Before(res.end))
		got := res.delivered[id] + res.invalid[id]
		switch {
		case res.odd[id]:
			// Odd keys: delivered or dead-lettered, or excluded by time.
		case in && got == 0:
			bad++
			if bad < 5 {
				t.Errorf("seed %d: record %d (keyless %v) in range never delivered nor dead-lettered", seed, id, res.keyless[id])
			}
		case !in && res.delivered[id] > 0:
			bad++
			if bad < 5 {
				t.Errorf("seed %d: record %d outside [start,end) delivered", seed, id)
			}
		}
	}
	if bad > 0 {
		t.Errorf("seed %d: %d bad records; %s", seed, bad, c)
		if os.Getenv("REVIEW_LOG") != "" {
			for _, l := range res.log {
				t.Log(l)
			}
		}
	}
}

func rvRandomCase(seed uint64, a **listAPI, base time.Time) rvCase {
	rng := rand.New(rand.NewPCG(seed, 500))
	lrng := rand.New(rand.NewPCG(seed, 503)) // used under the list's lock
	c := rvCase{n: 50 + rng.IntN(900), page: []int{20, 21, 37, 50, 100}[rng.IntN(5)], conc: []int{1, 2, 4, 8}[rng.IntN(4)], endIdx: -1, runs: 12 + rng.IntN(20), maxPages: 1 + rng.IntN(6)}
	*a = newListAPI(c.n, base)
	im := rng.IntN(4)
	c.modes = []string{"insert<6", "bursts", "insert<page/2", "no-insert"}[im]
	switch im {
	case 0:
		c.insert = func(int) int { return lrng.IntN(6) }
	case 1:
		// Bursts larger than any margin.
		c.insert = func(int) int {
			if lrng.IntN(8) == 0 {
				return 30 + lrng.IntN(150)
			}
			return lrng.IntN(3)
		}
	case 2:
		c.insert = func(int) int { return lrng.IntN(c.page/2 + 1) }
	}
	if rng.IntN(2) == 0 {
		c.modes += " retention"
		c.drop = func(int) int {
			if lrng.IntN(3) == 0 {
				return lrng.IntN(12)
			}
			return 0
		}
	}
	if rng.IntN(2) == 0 {
		c.modes += " failures"
		c.fail = func(int) bool { return lrng.IntN(8) == 0 }
	}
	if rng.IntN(3) > 0 {
		c.keylessRate = []int{3, 5, 10, 20}[rng.IntN(4)]
	}
	if rng.IntN(3) == 0 {
		c.oddKeys = 1 + rng.IntN(2)
	}
	c.oddHead = rng.IntN(5) == 0
	switch rng.IntN(3) {
	case 0:
		c.startIdx = 0
	case 1:
		c.startIdx = rng.IntN(c.n)
	default:
		c.startIdx = c.n - rng.IntN(30) // near or past the head
	}
	if rng.IntN(4) == 0 {
		c.endIdx = c.startIdx + rng.IntN(c.n+200)
	}
	c.earlierMark = rng.IntN(2) == 0
	return c
}

// TestReviewRandomAdversarial: kills after random pages, resumes from
// the last page's mark or an earlier one (a coalescing checkpoint),
// arrivals in bursts larger than any margin, failing requests, retention,
// first runs from anywhere in the list, End anywhere, concurrency 1 to 8.
// Every record in [Start, End) the list still holds is delivered at least
// once, none outside it, no error is permanent. The variants that lose
// records today (key-less records, odd keys, retention with concurrency)
// are the skipped tests below; REVIEW_FULL=1 runs the whole matrix.
func TestReviewRandomAdversarial(t *testing.T) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	seeds := uint64(300)
	if s := os.Getenv("REVIEW_SEEDS"); s != "" {
		n, _ := strconv.Atoi(s)
		seeds = uint64(n)
	}
	from := uint64(0)
	if s := os.Getenv("REVIEW_FROM"); s != "" {
		n, _ := strconv.Atoi(s)
		from = uint64(n)
	}
	full := os.Getenv("REVIEW_FULL") != ""
	for seed := from; seed < from+seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			var a *listAPI
			c := rvRandomCase(seed, &a, base)
			if !full {
				c.oddKeys, c.oddHead, c.keylessRate = 0, false, 0
				if c.drop != nil {
					c.conc = 1
				}
			}
			if s := os.Getenv("REVIEW_CONC"); s != "" {
				c.conc, _ = strconv.Atoi(s)
			}
			if os.Getenv("REVIEW_NOODD") != "" {
				c.oddKeys, c.oddHead = 0, false
			}
			if os.Getenv("REVIEW_NOKEYLESS") != "" {
				c.keylessRate = 0
			}
			if os.Getenv("REVIEW_LASTMARK") != "" {
				c.earlierMark = false
			}
			res := rvRun(t, seed, a, c)
			rvCheck(t, seed, a, c, res)
		})
	}
}

// rvDrainRuns runs complete Readers (to EOF) one after another, each from
// the last mark, and returns what each delivered or dead-lettered.
func rvDrainRuns(t *testing.T, a *listAPI, cfg Config[int64], runs int) (delivered map[int64]int, marks []*Mark[int64]) {
	t.Helper()
	return rvDrainRuns2(t, a, cfg, nil, runs)
}

func TestReviewKeylessFirstRecordAtStartWedgesFirstRuns(t *testing.T) {
	// t.Skip("review finding: a first run whose first emitted page holds only key-less records stops with no mark; every later run repeats it, the rest of the list is never delivered")
	// 100 records, pages of 20. The first run starts at the record 40th
	// from the head, which carries no key. The search finds the boundary
	// at position 41 in the aligned page at offset 40, whose only new
	// record is that key-less one: emit has no key to make a mark, sets
	// done, and returns a page without Mark. The next run starts from
	// Start again and does exactly the same: the 40 records above are
	// never delivered, every run exits cleanly.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a := newListAPI(100, base)
	at := a.ids[59] // 40th from the head (position 40)
	a.keyless = func(id int64) bool { return id == at }
	cfg := Config[int64]{Name: "review", MaxPageSize: 20, Start: a.timeOf(at), Compare: cmp.Compare[int64]}
	delivered, marks := rvDrainRuns(t, a, cfg, 5)
	for _, id := range a.ids[59:] {
		if delivered[id] == 0 {
			t.Fatalf("record %d never delivered in 5 runs (delivered %v, last mark %+v)", id, delivered, marks[len(marks)-1])
		}
	}
}

func TestReviewOddKeyAtHeadOnFirstRunBecomesTheMark(t *testing.T) {
	// t.Skip("review finding: on a first run whose first emitted page holds one keyed record, that key becomes the mark unconfirmed; an odd key there (far above) hides every later record for good")
	// A first run starting at the newest record (HWCAUDIT_START_FROM
	// about now): the only new record is the head, whose id came as a
	// huge number. emit takes it as the mark ("a single keyed record is
	// all a first run has"); every record that arrives later has a key
	// below it and counts as delivered. Nothing is ever delivered again,
	// nothing is dead-lettered, every run ends cleanly.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a := newListAPI(100, base)
	head := a.ids[99]
	a.oddKey = map[int64]int64{head: 1 << 40}
	cfg := Config[int64]{Name: "review", MaxPageSize: 20, Start: a.timeOf(head), Compare: cmp.Compare[int64]}
	delivered, marks := rvDrainRuns(t, a, cfg, 1)
	a.add(50)
	more, marks2 := rvDrainRuns2(t, a, cfg, marks[0], 3)
	for id, n := range more {
		delivered[id] += n
	}
	for _, id := range a.ids[99:] {
		if id != head && delivered[id] == 0 {
			t.Fatalf("record %d never delivered (first run's mark %+v, last %+v)", id, marks[0], marks2[len(marks2)-1])
		}
	}
}

// rvDrainRuns2 is rvDrainRuns from a given mark.
func rvDrainRuns2(t *testing.T, a *listAPI, cfg Config[int64], mark *Mark[int64], runs int) (delivered map[int64]int, marks []*Mark[int64]) {
	t.Helper()
	delivered = map[int64]int{}
	for run := range runs {
		c := cfg
		c.Fetch = a.fetch
		rd := New(c, mark)
		for range 10_000 {
			p, err := rd.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				if pipeline.IsPermanent(err) {
					t.Fatalf("run %d: %v", run, err)
				}
				continue
			}
			countPage(p, delivered, delivered)
			if p.Mark != nil {
				mark = p.Mark
			}
		}
		marks = append(marks, mark)
	}
	return delivered, marks
}

func TestReviewLargeSkipPlansAnUnalignedOffset(t *testing.T) {
	// t.Skip("review finding: with Mark.Skip near the page size, plan's blind page b-MaxPageSize is not a multiple of the limit; the API answers 400 (permanent) on every run")
	// The 16 newest records carry no key. A run delivers them all; its
	// mark is the newest keyed record, with Skip counting the 16 above
	// it. 25 records arrive. No limit holds the boundary, the 16 records
	// Skip counts and a new one, so plan takes the blind page at
	// b - MaxPageSize = 25 - 20 = 5, limit 20: not a multiple of the
	// limit, which the API refuses with 400, a permanent error, on every
	// run for as long as the list stands still.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a := newListAPI(100, base)
	a.keyless = func(id int64) bool { return id >= a.ids[84] && id <= a.ids[99] }
	cfg := Config[int64]{Name: "review", MaxPageSize: 20, Start: base, Compare: cmp.Compare[int64]}
	delivered, marks := rvDrainRuns(t, a, cfg, 1)
	if len(delivered) != 100 {
		t.Fatalf("first run delivered %d records", len(delivered))
	}
	t.Logf("first run's mark %+v", marks[0])
	a.add(25)
	more, _ := rvDrainRuns2(t, a, cfg, marks[0], 1)
	for _, id := range a.ids[100:] {
		if more[id] == 0 {
			t.Fatalf("record %d never delivered", id)
		}
	}
}

func TestReviewOddKeyDeepInTheListDuringTheSearch(t *testing.T) {
	// t.Skip("review finding: an old record with an odd high key at the top of a search response is taken as new above a delivered one; with a Skip-0 mark it is emitted and Skip grows by one, hiding the record above the mark (index 309: record 601 lost)")
	// A first run that found one new record leaves a mark with Skip 0.
	// Then records arrive and retention deletes the oldest, so the
	// checkpoint's position hint misses and the boundary is searched for.
	// One old record (long delivered or before the start) carries a key
	// far above the others; when a probe response begins with it, it
	// looks new above a delivered record.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	bad := 0
	for j := 100; j < 399; j++ {
		a := newListAPI(400, base)
		// Two new records: the newer confirms the older as the mark
		// (Skip 1); one alone leaves no mark since the fix of finding 2.
		below := a.ids[398]
		cfg := Config[int64]{Name: "review", MaxPageSize: 20, Start: a.timeOf(below), Compare: cmp.Compare[int64]}
		_, marks := rvDrainRuns(t, a, cfg, 1)
		if m := marks[0]; m == nil || m.Key != below || m.Skip != 1 {
			t.Fatalf("first run's mark %+v, want the record below the head with Skip 1", m)
		}
		a.add(150)
		a.ids = a.ids[100:]
		odd := a.ids[j-100]
		a.oddKey = map[int64]int64{odd: 1 << 40}
		delivered, marks2 := rvDrainRuns2(t, a, cfg, marks[0], 2)
		for _, id := range a.ids[300:] {
			if delivered[id] == 0 {
				bad++
				t.Errorf("odd record %d (index %d): new record %d never delivered; delivered the odd one %d times; marks %+v %+v", odd, j, id, delivered[odd], marks2[0], marks2[1])
			}
		}
	}
}

func TestReviewTwoOddKeysInARowAtTheHead(t *testing.T) {
	t.Skip("review finding: two consecutive records with keys far above the rest confirm each other; the lower becomes the mark and every later record counts as delivered, for good")
	// Two records arrive together whose keys are both far above the
	// others (and in order with each other). The newer confirms the
	// older, which becomes the mark.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, gap := range []int{0, 3} {
		a := newListAPI(100, base)
		cfg := Config[int64]{Name: "review", MaxPageSize: 20, Start: base, Compare: cmp.Compare[int64]}
		_, marks := rvDrainRuns(t, a, cfg, 1)
		a.add(gap)
		a.add(2)
		n := len(a.ids)
		a.oddKey = map[int64]int64{a.ids[n-1]: 1<<40 + 1, a.ids[n-2]: 1 << 40}
		_, marks2 := rvDrainRuns2(t, a, cfg, marks[0], 1)
		a.add(50)
		delivered, marks3 := rvDrainRuns2(t, a, cfg, marks2[0], 2)
		for _, id := range a.ids[n:] {
			if delivered[id] == 0 {
				t.Fatalf("gap %d: record %d, after the two odd ones, never delivered; marks %+v %+v", gap, id, marks2[0], marks3[1])
			}
		}
	}
}

func TestReviewStaleHintTrustedByPagesAhead(t *testing.T) {
	// t.Skip("review finding: with Concurrency > 1 a checkpoint's FromEnd hint made stale by retention is trusted as exact by refill; an abutting page ahead is accepted and the records between the hinted and real boundary are lost (20 here)")
	// Retention deleted the oldest records since the checkpoint, so its
	// FromEnd hint places the boundary too close to the head. With
	// Concurrency above one, refill plans pages ahead from the hinted b
	// as if keys had proved it; when b is a multiple of the page size the
	// first page ahead abuts it, holds no delivered record, and is
	// accepted by the head check: the new records between the hinted and
	// the real boundary are never delivered.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a := newListAPI(300, base)
	cfg := Config[int64]{Name: "review", MaxPageSize: 20, Start: base, Compare: cmp.Compare[int64]}
	_, marks := rvDrainRuns(t, a, cfg, 1)
	m := marks[0]
	const arrived, hinted = 60, 40
	dropped := int(300 + arrived - 1 - m.FromEnd - hinted)
	a.add(arrived)
	a.ids = a.ids[dropped:]
	cfg.Concurrency = 2
	delivered, marks2 := rvDrainRuns2(t, a, cfg, m, 1)
	for _, id := range a.ids[len(a.ids)-arrived:] {
		if delivered[id] == 0 {
			t.Errorf("record %d arrived after the checkpoint %+v and was never delivered (retention dropped %d; mark after %+v)", id, m, dropped, marks2[0])
		}
	}
}
