package newestfirst

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// outcome is what runs of a Reader did with each record, by raw id.
type outcome struct {
	delivered map[int64]int
	invalid   map[int64]int
	// unmarked are records a page without a mark delivered: until a key
	// is confirmed a first run has nothing to resume from, so they may
	// come again.
	unmarked map[int64]bool
	before   int64
	after    int64
	requests int
}

// runAll drains the list in runs, each resuming from the last mark, with
// records arriving between runs by insert. No error may be permanent.
func runAll(t *testing.T, a *listAPI, cfg Config[int64], runs int, between func(run int)) outcome {
	t.Helper()
	o := outcome{delivered: map[int64]int{}, invalid: map[int64]int{}, unmarked: map[int64]bool{}}
	var mark *Mark[int64]
	for run := range runs {
		c := cfg
		c.Fetch = a.fetch
		rd := New(c, mark)
		for {
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
			for _, raw := range p.Records {
				id, _ := strconv.ParseInt(string(raw), 10, 64)
				o.delivered[id]++
				if p.Mark == nil {
					o.unmarked[id] = true
				}
			}
			for _, inv := range p.Invalid {
				id, _ := strconv.ParseInt(string(inv.Raw), 10, 64)
				o.invalid[id]++
				if inv.Reason == "" {
					t.Fatalf("record %d refused without a reason", id)
				}
			}
			o.before += p.Excluded.BeforeStart
			o.after += p.Excluded.AfterEnd
			if p.Mark != nil {
				mark = p.Mark
			}
		}
		if between != nil && run < runs-1 {
			between(run)
		}
	}
	a.mu.Lock()
	o.requests = a.requests
	a.mu.Unlock()
	return o
}

func TestOddKeysNeverDecideOtherRecords(t *testing.T) {
	// One or two records carry a key far above or far below their
	// neighbours (an id of the wrong JSON type read as a huge number, a
	// counter reset). Whatever their place (inside a page, at a page's
	// edge, at the head when a run starts or ends) every other record is
	// delivered exactly once, each odd one is delivered or dead-lettered,
	// and no run fails. Before, the page failed its order check with a
	// permanent error at the same offset on every run.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for seed := range uint64(120) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			n := 50 + rng.IntN(600)
			pageSize := []int{20, 37, 100}[seed%3]
			a := newListAPI(n, base)
			a.oddKey = map[int64]int64{}
			odd := map[int64]bool{}
			for range 1 + rng.IntN(2) {
				// Inside the list, or among the records that arrive later.
				id := a.ids[rng.IntN(len(a.ids))]
				if rng.IntN(3) == 0 {
					id = a.nextID + int64(rng.IntN(40))*2
				}
				if rng.IntN(2) == 0 {
					a.oddKey[id] = 1 << 40 // far above
				} else {
					a.oddKey[id] = -5 // far below
				}
				odd[id] = true
			}
			cfg := Config[int64]{Name: "odd", MaxPageSize: pageSize, Start: base, Compare: cmp.Compare[int64], Concurrency: []int{1, 4}[seed%2]}
			o := runAll(t, a, cfg, 4, func(int) {
				a.mu.Lock() // a head check the last run cancelled may still be running
				defer a.mu.Unlock()
				a.add(rng.IntN(pageSize))
			})
			for _, id := range a.ids {
				switch {
				case odd[id]:
					if o.delivered[id]+o.invalid[id] == 0 {
						t.Errorf("odd record %d neither delivered nor dead-lettered", id)
					}
				case o.unmarked[id] && o.delivered[id] >= 1 && o.invalid[id] == 0:
				case o.delivered[id] != 1 || o.invalid[id] != 0:
					t.Errorf("record %d delivered %d times, dead-lettered %d (odd: %v)", id, o.delivered[id], o.invalid[id], a.oddKey)
				}
			}
		})
	}
}

func TestImplausibleTimesAreDeadLetteredNotBoundaries(t *testing.T) {
	// A first run from a start inside the list: a record stamped year 0
	// (or 9999) among the new records must not become the boundary and
	// hide the records below it; it is dead-lettered with the reason. A
	// plausible but wrong time (2001) among new records is not a boundary
	// either: it is left out by the start rule, and counted.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		t       time.Time
		invalid bool
	}{
		{"year 0", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"year 9999", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), true},
		{"year 2001", time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		for _, pos := range []int{0, 1, 19, 20, 55, 99} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, pos), func(t *testing.T) {
				a := newListAPI(400, base)
				start := a.timeOf(a.ids[150])
				// pos counts from the head: inside what is new.
				oddID := a.ids[len(a.ids)-1-pos]
				a.oddTime = map[int64]time.Time{oddID: tc.t}
				cfg := Config[int64]{Name: "times", MaxPageSize: 20, Start: start, Compare: cmp.Compare[int64], Now: func() time.Time { return base.Add(time.Hour) }}
				o := runAll(t, a, cfg, 1, nil)
				for _, id := range a.ids {
					newer := !a.timeOf(id).Before(start)
					switch {
					case id == oddID:
						if tc.invalid && o.invalid[id] != 1 {
							t.Errorf("record %d stamped %s dead-lettered %d times, want once", id, tc.t, o.invalid[id])
						}
						if !tc.invalid && o.before != 1 {
							t.Errorf("record %d stamped %s: %d excluded before start, want 1", id, tc.t, o.before)
						}
					case newer && o.delivered[id] != 1:
						t.Fatalf("record %d (newer than the start) delivered %d times", id, o.delivered[id])
					case !newer && o.delivered[id] != 0:
						t.Fatalf("record %d (before the start) delivered", id)
					}
				}
			})
		}
	}
}

func TestEndBoundsTheRangeWhateverOneRecordSays(t *testing.T) {
	// A backfill range ends at End. One record stamped after End in the
	// middle of the range (or year 9999) must not end it early; records
	// after End are excluded and counted; the walk stops soon after End.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, odd := range []time.Time{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), base.Add(20 * time.Hour)} {
		t.Run(odd.Format("2006"), func(t *testing.T) {
			a := newListAPI(1000, base)
			start, end := a.timeOf(a.ids[100]), a.timeOf(a.ids[700])
			oddID := a.ids[300]
			a.oddTime = map[int64]time.Time{oddID: odd}
			cfg := Config[int64]{Name: "end", MaxPageSize: 20, Start: start, End: end, Compare: cmp.Compare[int64], Now: func() time.Time { return base.Add(time.Hour) }}
			o := runAll(t, a, cfg, 1, nil)
			for _, id := range a.ids {
				inRange := !a.timeOf(id).Before(start) && a.timeOf(id).Before(end)
				if id == oddID {
					if o.delivered[id]+o.invalid[id] != 0 && o.after+int64(o.invalid[id]) == 0 {
						t.Errorf("odd record %d delivered", id)
					}
					continue
				}
				if inRange && o.delivered[id] != 1 {
					t.Fatalf("record %d in range delivered %d times (requests %d)", id, o.delivered[id], o.requests)
				}
				if !inRange && o.delivered[id] != 0 {
					t.Fatalf("record %d outside the range delivered", id)
				}
			}
			// The walk stops within a page or two of End, not at the head.
			if o.after > 2*20 {
				t.Errorf("%d records after End were read; the walk should stop soon after End", o.after)
			}
		})
	}
}

func TestRunEndsWhileRecordsArriveFasterThanItReads(t *testing.T) {
	// Records arrive faster than pages that must overlap by as much can
	// carry new ones (45 per request, pages of 100, so that the margin each page leaves below the boundary eats most of it): a reader chasing the
	// head would never end. It reads what the list held when it started,
	// and the next run takes the rest.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a := newListAPI(1000, base)
	_, mark := drain(t, a, 100, base, nil)
	a.add(1000)
	a.insert = func(int) int { return 45 }
	cfg := Config[int64]{Name: "flood", MaxPageSize: 100, Start: base, Compare: cmp.Compare[int64]}
	rd := New(Config[int64]{Name: "flood", Fetch: a.fetch, MaxPageSize: 100, Start: base, Compare: cmp.Compare[int64]}, mark)
	o := outcome{delivered: map[int64]int{}}
	for {
		p, err := rd.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range p.Records {
			id, _ := strconv.ParseInt(string(raw), 10, 64)
			o.delivered[id]++
		}
		if a.requests > 1000 {
			t.Fatalf("%d requests and counting: the run chases the head", a.requests)
		}
	}
	_ = cfg
	a.still()
	for _, id := range a.ids[1000:2000] {
		if o.delivered[id] != 1 {
			t.Fatalf("record %d, listed when the run started, delivered %d times", id, o.delivered[id])
		}
	}
}

func TestAnAPIThatChangedItsContractFailsTheStreamLoudly(t *testing.T) {
	// Every record refused (say the ids all changed JSON type): that is
	// not a few odd records but a broken contract. The stream fails with
	// the reason instead of dead-lettering the whole list.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	fetch := func(_ context.Context, offset, limit int64) ([]Record[int64], int64, error) {
		var recs []Record[int64]
		for i := range limit {
			recs = append(recs, Record[int64]{Raw: []byte("x"), Invalid: "id 7 is a JSON number; the API documents a string", Time: base.Add(time.Duration(i)), HasTime: true})
		}
		return recs, 1000, nil
	}
	rd := New(Config[int64]{Name: "changed", Fetch: fetch, MaxPageSize: 20, Compare: cmp.Compare[int64]}, nil)
	_, err := rd.Next(context.Background())
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "20 of 20 records refused, first: id 7 is a JSON number") {
		t.Fatalf("Next = %v, want a permanent error naming the reason", err)
	}
}

func TestSkipStaysSmallWhenRunsFindOneRecordEach(t *testing.T) {
	// A steady feed: every run finds one new record. The newest record
	// cannot confirm its own key, but the next run's confirms it, so the
	// mark keeps up and Skip stays at one; before, Skip grew by one a run
	// until no page could hold the records it counted and the reader
	// asked for a negative offset.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a := newListAPI(100, base)
	cfg := Config[int64]{Name: "feed", MaxPageSize: 20, Start: base, Compare: cmp.Compare[int64]}
	var mark *Mark[int64]
	delivered := map[int64]int{}
	for run := range 60 {
		c := cfg
		c.Fetch = a.fetch
		rd := New(c, mark)
		for {
			p, err := rd.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("run %d: %v", run, err)
			}
			for _, raw := range p.Records {
				id, _ := strconv.ParseInt(string(raw), 10, 64)
				delivered[id]++
			}
			if p.Mark != nil {
				mark = p.Mark
			}
		}
		if mark.Skip > 1 {
			t.Fatalf("run %d: mark %+v counts %d records above it", run, mark, mark.Skip)
		}
		a.add(1)
	}
	for _, id := range a.ids[:len(a.ids)-1] {
		if delivered[id] != 1 {
			t.Fatalf("record %d delivered %d times", id, delivered[id])
		}
	}
}

func TestAbsurdTotalIsAClearPermanentError(t *testing.T) {
	// 300 records and a claimed total of 10^12. Before, the search for the
	// boundary probed offsets the list never reached, ran out of requests
	// and was retried for as long as the backoff allowed (19,469 requests
	// in 5 s against a hostile API); now the first short page that
	// contradicts its own total ends the stream with the reason.
	a := newListAPI(300, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	fetch := func(ctx context.Context, offset, limit int64) ([]Record[int64], int64, error) {
		recs, _, err := a.fetch(ctx, offset, limit)
		return recs, 1e12, err
	}
	rd := New(Config[int64]{Name: "liar", Fetch: fetch, MaxPageSize: 100, Compare: cmp.Compare[int64]}, nil)
	for range 10 {
		_, err := rd.Next(context.Background())
		if err == nil {
			continue
		}
		if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "claims a total of 1000000000000") {
			t.Fatalf("Next = %v, want a permanent error naming the total", err)
		}
		if a.requests > 60 {
			t.Errorf("%d requests before the error", a.requests)
		}
		return
	}
	t.Fatal("no error after 10 calls of Next")
}
