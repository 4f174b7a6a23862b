package newestfirst

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// listAPI is a list served the way the audit APIs page it: newest first,
// offset a multiple of limit, limit 1..100. Between requests it can insert
// records at the head (drift) or drop the oldest (retention). It answers
// with Records directly, without JSON, so the property test can drive the
// paging logic through many random schedules quickly; the HTTP-level
// behaviour is covered by each source's tests against the simulator.
type listAPI struct {
	mu       sync.Mutex // requests may come concurrently
	inFlight int
	maxIn    int     // most page requests served at once, head checks aside
	checks   int     // head checks: requests of limit 1 at offset 0
	sent     int     // every request, cancelled ones included
	ids      []int64 // ascending
	nextID   int64
	base     time.Time
	insert   func(req int) int // records to add before serving request req
	drop     func(req int) int // oldest records to remove before request req
	fail     func(req int) bool
	requests int
	latency  time.Duration // each request's, outside the lock
	// oddKey and oddTime give some records a key or a time other than
	// their id says, as a misbehaving API might.
	oddKey  map[int64]int64
	oddTime map[int64]time.Time
	// keyless says a record is served without a usable key.
	keyless func(id int64) bool
}

func newListAPI(n int, base time.Time) *listAPI {
	a := &listAPI{base: base, nextID: 1}
	a.add(n)
	return a
}

func (a *listAPI) add(n int) {
	for range n {
		a.ids = append(a.ids, a.nextID)
		a.nextID += 1 + a.nextID%3 // sparse, like one operation of many
	}
}

// still stops inserts and drops. It takes the lock: requests a finished
// Reader cancelled may still be running.
func (a *listAPI) still() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.insert, a.drop = nil, nil
}

func (a *listAPI) timeOf(id int64) time.Time { return a.base.Add(time.Duration(id) * time.Second) }

func (a *listAPI) fetch(ctx context.Context, offset, limit int64) ([]Record[int64], int64, error) {
	check := offset == 0 && limit == 1
	a.mu.Lock()
	a.sent++
	if check {
		a.checks++
	} else {
		a.inFlight++
		a.maxIn = max(a.maxIn, a.inFlight)
	}
	a.mu.Unlock()
	if a.latency > 0 {
		select {
		case <-time.After(a.latency):
		case <-ctx.Done():
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !check {
		a.inFlight--
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	a.requests++
	if a.requests > 100_000 {
		return nil, 0, pipeline.Permanent(errors.New("test budget of requests exhausted: the reader is looping"))
	}
	if a.fail != nil && a.fail(a.requests) {
		return nil, 0, errors.New("connection reset")
	}
	if a.insert != nil {
		a.add(a.insert(a.requests))
	}
	if a.drop != nil {
		if d := min(a.drop(a.requests), len(a.ids)); d > 0 {
			a.ids = a.ids[d:]
		}
	}
	if limit < 1 || limit > 100 || offset < 0 || offset%limit != 0 {
		return nil, 0, pipeline.Permanent(fmt.Errorf("bad paging offset=%d limit=%d", offset, limit))
	}
	var recs []Record[int64]
	for i := offset; i < offset+limit && i < int64(len(a.ids)); i++ {
		id := a.ids[int64(len(a.ids))-1-i]
		rec := Record[int64]{Raw: strconv.AppendInt(nil, id, 10), Key: id, HasKey: true, Time: a.timeOf(id), HasTime: true}
		if k, ok := a.oddKey[id]; ok {
			rec.Key = k
		}
		if t, ok := a.oddTime[id]; ok {
			rec.Time = t
		}
		if a.keyless != nil && a.keyless(id) {
			rec.HasKey = false
		}
		recs = append(recs, rec)
	}
	return recs, int64(len(a.ids)), nil
}

func newReader(a *listAPI, pageSize, concurrency int, start time.Time, from *Mark[int64]) *Reader[int64] {
	return New(Config[int64]{Name: "test", Fetch: a.fetch, MaxPageSize: pageSize, Start: start, Compare: cmp.Compare[int64], Concurrency: concurrency}, from)
}

// drain reads to EOF from mark, like a new run resuming from a checkpoint,
// retrying retryable errors as the pipeline would after a backoff.
func drain(t *testing.T, a *listAPI, pageSize int, start time.Time, from *Mark[int64]) (ids []int64, last *Mark[int64]) {
	t.Helper()
	return drainConcurrently(t, a, pageSize, 1, start, from)
}

// drainConcurrently is drain with requests kept in flight ahead. It also
// checks each page's Total against the records delivered so far whenever
// the list is not losing records.
func drainConcurrently(t *testing.T, a *listAPI, pageSize, concurrency int, start time.Time, from *Mark[int64]) (ids []int64, last *Mark[int64]) {
	t.Helper()
	rd := newReader(a, pageSize, concurrency, start, from)
	last = from
	var excluded int64
	for {
		p, err := rd.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return ids, last
		}
		if err != nil {
			if pipeline.IsPermanent(err) {
				t.Fatal(err)
			}
			continue
		}
		for _, raw := range p.Records {
			id, err := strconv.ParseInt(string(raw), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if len(p.Records) > 1 && p.Mark == nil {
			// One keyed record alone cannot be confirmed as a mark.
			t.Fatal("a page of keyed records carries no mark")
		}
		if p.Mark != nil {
			last = p.Mark
		}
		if len(p.Invalid) > 0 {
			t.Fatalf("well-formed records refused: %v", p.Invalid)
		}
		excluded += p.Excluded.Total()
		if a.drop == nil && p.Total != int64(len(ids))+excluded {
			t.Fatalf("page Total %d after %d records delivered and %d excluded in this run", p.Total, len(ids), excluded)
		}
	}
}

func TestReaderDeliversEveryRecordOnceOldestFirst(t *testing.T) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for seed := range uint64(300) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { readerScenario(t, base, seed) })
	}
}

func readerScenario(t *testing.T, base time.Time, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	n := rng.IntN(3000)
	pageSize := MinPageSize + rng.IntN(100-MinPageSize+1)
	if seed%3 == 0 {
		pageSize = 100
	}
	api := newListAPI(n, base)
	insertEvery := 1 + rng.IntN(4)
	// Arrivals stay below what a page can carry, or no run could end.
	maxInsert := rng.IntN(pageSize/2 + 1)
	api.insert = func(req int) int {
		if req%insertEvery == 0 {
			return rng.IntN(maxInsert + 1)
		}
		return 0
	}
	if seed%5 == 1 {
		// Every seventh request fails; the retry must change nothing.
		api.fail = func(req int) bool { return req%7 == 0 }
	}
	// Start somewhere inside the list, or before it.
	startID := int64(rng.IntN(n + 2))
	start := api.timeOf(startID)

	// Several runs, each resuming from the previous mark.
	var got []int64
	var mark *Mark[int64]
	// Every other seed keeps several requests in flight.
	concurrency := []int{1, 4, 1, 8}[seed%4]
	for run := 0; run < 3; run++ {
		ids, m := drainConcurrently(t, api, pageSize, concurrency, start, mark)
		if mark == nil {
			// Until a key is confirmed (two keyed records), a first run
			// has no mark: what it delivered before comes again, as a
			// run without a checkpoint starts from the start time.
			ids = withoutRepeats(got, ids)
		}
		got, mark = append(got, ids...), m
		if run == 1 {
			api.still()
		}
	}
	want := []int64{}
	for _, id := range api.ids {
		if !api.timeOf(id).Before(start) {
			want = append(want, id)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("seed %d (n=%d limit=%d concurrency=%d): delivered %d records, want %d\n got %v\nwant %v", seed, n, pageSize, concurrency, len(got), len(want), head10(got), head10(want))
	}
}

func TestReaderSurvivesRetention(t *testing.T) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	api := newListAPI(500, base)
	first, mark := drain(t, api, 100, base, nil)
	if len(first) != 500 {
		t.Fatalf("first run delivered %d, want 500", len(first))
	}
	// Retention removes 450 of the oldest records while 300 arrive.
	api.add(300)
	api.ids = api.ids[450:]
	got, _ := drain(t, api, 100, base, mark)
	if len(got) != 300 || got[0] != api.ids[50] {
		t.Fatalf("after retention delivered %d records starting %v, want the 300 new ones", len(got), head10(got))
	}
	// Retention passed the high-water mark itself: everything left is new.
	api2 := newListAPI(100, base)
	_, mark2 := drain(t, api2, 100, base, nil)
	api2.add(40)
	api2.ids = api2.ids[120:]
	got2, _ := drain(t, api2, 100, base, mark2)
	if len(got2) != 20 {
		t.Fatalf("delivered %d records, want the 20 survivors", len(got2))
	}
	// Retention while paging.
	api3 := newListAPI(2000, base)
	api3.drop = func(req int) int { return 30 * (req % 2) }
	got3, _ := drain(t, api3, 100, base, nil)
	for i := 1; i < len(got3); i++ {
		if got3[i] <= got3[i-1] {
			t.Fatalf("delivery %d (%d) after %d", i, got3[i], got3[i-1])
		}
	}
	if len(got3) == 0 || got3[len(got3)-1] != api3.ids[len(api3.ids)-1] {
		t.Fatalf("run with retention did not reach the head: %d records", len(got3))
	}
}

func TestReaderBoundedRequests(t *testing.T) {
	// A steady run with a checkpoint near the head costs one request; a first
	// run over a long list costs a logarithmic search plus a page per ~100.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	api := newListAPI(100_000, base)
	start := api.timeOf(api.ids[99_000])
	ids, mark := drain(t, api, 100, start, nil)
	if len(ids) != 1000 {
		t.Fatalf("delivered %d, want 1000", len(ids))
	}
	if api.requests > 40 {
		t.Errorf("first run took %d requests for 1000 records in a list of 100000", api.requests)
	}
	api.requests = 0
	if ids, _ := drain(t, api, 100, start, mark); len(ids) != 0 || api.requests != 1 {
		t.Errorf("caught-up run delivered %d records in %d requests, want 0 in 1", len(ids), api.requests)
	}
}

func TestReaderConcurrentPages(t *testing.T) {
	// A still list is walked in whole pages, Concurrency of them in flight
	// at once: about one request per 100 records, each waiting out the
	// latency alongside the others.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	api := newListAPI(20_000, base)
	api.latency = 2 * time.Millisecond
	ids, _ := drainConcurrently(t, api, 100, 8, base.Add(-time.Hour), nil)
	if fmt.Sprint(ids) != fmt.Sprint(api.ids) {
		t.Fatalf("delivered %d records, want %d in order", len(ids), len(api.ids))
	}
	if api.maxIn != 8 {
		t.Errorf("at most %d page requests in flight, want 8", api.maxIn)
	}
	// One page from the top, two rounds of 8 probes for the start, then 200
	// pages; a few requests may be started ahead and dropped at the end.
	// Head checks go one at a time beside them, one per round trip: with 8
	// pages answered per round trip, well under one per four pages.
	if pages := api.requests - api.checks; pages > 230 {
		t.Errorf("%d page requests for 20000 records", pages)
	}
	if api.checks == 0 || api.checks > 200/4 {
		t.Errorf("%d head checks for 200 pages walked 8 at a time", api.checks)
	}

	// The widest setting, a start deep inside a long list: the probes find
	// it, and the walk delivers exactly the records from there.
	api3 := newListAPI(300_000, base)
	want := api3.ids[299_000:]
	ids3, _ := drainConcurrently(t, api3, 100, 64, api3.timeOf(want[0]), nil)
	if fmt.Sprint(ids3) != fmt.Sprint(want) {
		t.Fatalf("concurrency 64: delivered %d records, want the last %d", len(ids3), len(want))
	}

	// Records arriving at the head while retention removes others at the
	// tail, never exactly as many: the totals differ, and from then on
	// every page ahead must prove its place by keys.
	api4 := newListAPI(6000, base)
	api4.insert = func(int) int { return 3 }
	api4.drop = func(int) int { return 2 }
	ids4, _ := drainConcurrently(t, api4, 100, 8, base.Add(-time.Hour), nil)
	for i := 1; i < len(ids4); i++ {
		if ids4[i] <= ids4[i-1] {
			t.Fatalf("with churn: delivery %d (%d) after %d", i, ids4[i], ids4[i-1])
		}
	}
	// Everything still listed and newer than the first delivery arrived.
	api4.still()
	rest4, _ := drainConcurrently(t, api4, 100, 8, base.Add(-time.Hour), &Mark[int64]{Key: ids4[len(ids4)-1]})
	all4 := append(ids4, rest4...)
	var want4 []int64
	for _, id := range api4.ids {
		if id >= ids4[0] {
			want4 = append(want4, id)
		}
	}
	got4 := all4[len(all4)-len(want4):]
	if len(all4) < len(want4) || fmt.Sprint(got4) != fmt.Sprint(want4) {
		t.Fatalf("with churn: %d records delivered, the list holds %d at or after the first", len(all4), len(want4))
	}

	// Churn that keeps the total unchanged (as many deleted at the tail as
	// inserted at the head) after the list once showed a change: the total
	// no longer tells a shift, so pages ahead must overlap.
	api5 := newListAPI(6000, base)
	api5.insert = func(req int) int { return 3 }
	api5.drop = func(req int) int {
		if req == 2 {
			return 0
		}
		return 3
	}
	ids5, _ := drainConcurrently(t, api5, 100, 8, base.Add(-time.Hour), nil)
	api5.still()
	rest5, _ := drainConcurrently(t, api5, 100, 8, base.Add(-time.Hour), &Mark[int64]{Key: ids5[len(ids5)-1]})
	all5 := append(ids5, rest5...)
	seen5 := map[int64]bool{}
	for _, id := range all5 {
		seen5[id] = true
	}
	for _, id := range api5.ids {
		if id >= ids5[0] && !seen5[id] {
			t.Fatalf("with balanced churn: record %d is listed and was never delivered", id)
		}
	}

	// Records arriving while the walk goes on: every request sees more.
	api2 := newListAPI(5000, base)
	api2.latency = time.Millisecond
	api2.insert = func(int) int { return 3 }
	ids2, _ := drainConcurrently(t, api2, 100, 8, base.Add(-time.Hour), nil)
	for i := 1; i < len(ids2); i++ {
		if ids2[i] <= ids2[i-1] {
			t.Fatalf("delivery %d (%d) after %d", i, ids2[i], ids2[i-1])
		}
	}
	api2.still()
	rest, _ := drainConcurrently(t, api2, 100, 8, base.Add(-time.Hour), &Mark[int64]{Key: ids2[len(ids2)-1]})
	if all := append(ids2, rest...); fmt.Sprint(all) != fmt.Sprint(api2.ids) {
		t.Fatalf("with arrivals delivered %d records, want %d in order", len(all), len(api2.ids))
	}
}

func TestReaderCappedList(t *testing.T) {
	// A list capped at a number of records deletes one at the tail for
	// every one inserted at the head: its total never moves, yet every
	// insert shifts the positions of the pages ahead. The head checks must
	// catch each shift, whenever it falls between two pages' answers.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for seed := range uint64(60) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			api := newListAPI(4000+rng.IntN(2000), base)
			every := 1 + rng.IntN(40) // some runs see no insert for a while
			var mu sync.Mutex         // insert and drop are called under api.mu; rng is shared
			inserted := 0
			api.insert = func(req int) int {
				mu.Lock()
				defer mu.Unlock()
				if rng.IntN(every) != 0 {
					inserted = 0
					return 0
				}
				inserted = 1 + rng.IntN(3)
				return inserted
			}
			api.drop = func(int) int {
				mu.Lock()
				defer mu.Unlock()
				return inserted
			}
			if seed%4 == 3 {
				api.latency = time.Millisecond
			}
			start := api.timeOf(api.ids[len(api.ids)/2])
			concurrency := []int{2, 4, 8}[seed%3]
			ids, mark := drainConcurrently(t, api, 100, concurrency, start, nil)
			api.still()
			rest, _ := drainConcurrently(t, api, 100, concurrency, start, mark)
			got := append(ids, rest...)
			delivered := map[int64]bool{}
			for i, id := range got {
				if i > 0 && id <= got[i-1] {
					t.Fatalf("delivery %d (%d) after %d", i, id, got[i-1])
				}
				delivered[id] = true
			}
			missing := 0
			for _, id := range api.ids {
				if !api.timeOf(id).Before(start) && !delivered[id] {
					missing++
				}
			}
			if missing > 0 {
				t.Fatalf("concurrency %d: %d records listed at or after the start were never delivered (%d delivered)", concurrency, missing, len(got))
			}
		})
	}
}

func TestReaderLeavesStateOnError(t *testing.T) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	api := newListAPI(250, base)
	api.fail = func(req int) bool { return req%2 == 0 }
	got, _ := drain(t, api, 100, base, nil)
	if fmt.Sprint(got) != fmt.Sprint(api.ids) {
		t.Fatalf("with failing requests delivered %v, want %v", head10(got), head10(api.ids))
	}
}

func TestReaderKeylessRecords(t *testing.T) {
	// Records without a key are delivered once and counted in Mark.Skip, so
	// that a resumed run does not deliver them again.
	keyless := map[int]bool{3: true, 4: true, 10: true, 98: true, 99: true}
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	recs := func() []Record[int64] {
		var out []Record[int64]
		for i := 99; i >= 0; i-- { // newest first
			r := Record[int64]{Raw: []byte(strconv.Itoa(i)), Key: int64(i), HasKey: !keyless[i], HasTime: true, Time: base.Add(time.Duration(i) * time.Second)}
			out = append(out, r)
		}
		return out
	}()
	fetch := func(_ context.Context, offset, limit int64) ([]Record[int64], int64, error) {
		end := min(offset+limit, int64(len(recs)))
		return recs[min(offset, end):end], int64(len(recs)), nil
	}
	cfg := Config[int64]{Name: "keyless", Fetch: fetch, MaxPageSize: 20, Start: base, Compare: cmp.Compare[int64]}
	var got []string
	var mark *Mark[int64]
	for run := range 2 {
		rd := New(cfg, mark)
		for {
			p, err := rd.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range p.Records {
				got = append(got, string(r))
			}
			mark = p.Mark
		}
		// 97, the newest key, has no greater key above it to confirm it:
		// the mark is the next one down, with the three above it skipped.
		if run == 0 && (mark == nil || mark.Key != 96 || mark.Skip != 3) {
			t.Fatalf("mark after the first run = %+v, want key 96 skip 3", mark)
		}
	}
	if len(got) != 100 || got[0] != "0" || got[99] != "99" {
		t.Fatalf("delivered %d records (%v…), want 0..99 once", len(got), got[:min(5, len(got))])
	}
}

func TestReaderRejectsBadPages(t *testing.T) {
	for name, recs := range map[string][]Record[int64]{
		"over limit": make([]Record[int64], 21),
	} {
		t.Run(name, func(t *testing.T) {
			fetch := func(context.Context, int64, int64) ([]Record[int64], int64, error) { return recs, 1000, nil }
			rd := New(Config[int64]{Name: "bad", Fetch: fetch, MaxPageSize: 20, Compare: cmp.Compare[int64]}, nil)
			if _, err := rd.Next(context.Background()); !pipeline.IsPermanent(err) {
				t.Fatalf("Next = %v, want a permanent error", err)
			}
		})
	}
}

func TestNewPanicsOnBadConfig(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New accepted a page size below MinPageSize")
		}
	}()
	New(Config[int64]{Fetch: newListAPI(1, time.Time{}).fetch, MaxPageSize: MinPageSize - 1, Compare: cmp.Compare[int64]}, nil)
}

func head10(ids []int64) []int64 {
	if len(ids) > 10 {
		return ids[:10]
	}
	return ids
}

// withoutRepeats is ids less those already in got.
func withoutRepeats(got, ids []int64) []int64 {
	seen := map[int64]bool{}
	for _, id := range got {
		seen[id] = true
	}
	var out []int64
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// countPage adds a page's delivered records to delivered and its refused
// ones to invalid (which may be the same map), by id.
func countPage(p Page[int64], delivered, invalid map[int64]int) {
	for _, raw := range p.Records {
		id, _ := strconv.ParseInt(string(raw), 10, 64)
		delivered[id]++
	}
	for _, inv := range p.Invalid {
		id, _ := strconv.ParseInt(string(inv.Raw), 10, 64)
		invalid[id]++
	}
}
