package swr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
)

// listAPI serves one instance+operation list the way the audit-logs API
// pages it: newest first, offset a multiple of limit, limit 1..100. Between
// requests it can insert records at the head (drift) or drop the oldest
// (retention). The HTTP-level behaviour is covered against the simulator,
// and sources/newestfirst drives the paging logic itself through hundreds of
// random schedules; this checks SWR's decoding and cursor on a few of them.
type listAPI struct {
	ids      []int64 // ascending
	nextID   int64
	base     time.Time
	insert   func(req int) int // records to add before serving request req
	drop     func(req int) int // oldest records to remove before request req
	requests int
	opTime   map[int64]string // op_time served instead of the id's own
}

func newListAPI(n int, base time.Time) *listAPI {
	a := &listAPI{base: base, nextID: 1}
	a.add(n)
	return a
}

func (a *listAPI) add(n int) {
	for range n {
		a.ids = append(a.ids, a.nextID)
		a.nextID += 1 + int64(a.nextID%3) // sparse, like one operation of many
	}
}

func (a *listAPI) timeOf(id int64) time.Time { return a.base.Add(time.Duration(id) * time.Second) }

func (a *listAPI) Do(_ context.Context, req huaweiapi.Request) ([]byte, error) {
	a.requests++
	if a.requests > 100_000 {
		return nil, pipeline.Permanent(errors.New("test budget of requests exhausted: the reader is looping"))
	}
	if a.insert != nil {
		a.add(a.insert(a.requests))
	}
	if a.drop != nil {
		if d := min(a.drop(a.requests), len(a.ids)); d > 0 {
			a.ids = a.ids[d:]
		}
	}
	offset, err1 := strconv.Atoi(req.Query.Get("offset"))
	limit, err2 := strconv.Atoi(req.Query.Get("limit"))
	if err1 != nil || err2 != nil || limit < 1 || limit > 100 || offset < 0 || offset%limit != 0 {
		return nil, pipeline.Permanent(fmt.Errorf("bad paging offset=%s limit=%s", req.Query.Get("offset"), req.Query.Get("limit")))
	}
	var logs []map[string]any
	for i := offset; i < offset+limit && i < len(a.ids); i++ {
		id := a.ids[len(a.ids)-1-i]
		opTime := a.timeOf(id).Format(time.RFC3339Nano)
		if t, ok := a.opTime[id]; ok {
			opTime = t
		}
		logs = append(logs, map[string]any{"id": id, "op_time": opTime, "operation": "pull", "username": "u"})
	}
	return json.Marshal(map[string]any{"audit_logs": logs, "total": len(a.ids)})
}

func testStream(api huaweiapi.Doer, pageSize int, start time.Time) *Stream {
	return &Stream{api: api, endpoint: "http://sim", project: "p", instance: "i", operation: "pull",
		pageSize: pageSize, start: start, now: time.Now}
}

// drain reads a stream to EOF, resuming from the last cursor like a new run.
func drain(t *testing.T, s *Stream, cursor []byte) (ids []int64, last []byte) {
	t.Helper()
	rd, err := s.Open(context.Background(), cursor)
	if err != nil {
		t.Fatal(err)
	}
	last = cursor
	for {
		p, err := rd.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return ids, last
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range p.Records {
			var k struct{ ID int64 }
			if err := json.Unmarshal(raw, &k); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, k.ID)
		}
		if p.Cursor != nil {
			last = p.Cursor
		}
	}
}

func TestReaderDeliversEveryRecordOnceOldestFirst(t *testing.T) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for seed := range uint64(12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { readerScenario(t, base, seed) })
	}
}

func readerScenario(t *testing.T, base time.Time, seed uint64) {
	{
		rng := rand.New(rand.NewPCG(seed, 7))
		n := rng.IntN(3000)
		pageSize := MinPageSize + rng.IntN(MaxPageSize-MinPageSize+1)
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
		// Start somewhere inside the list, or before it.
		startID := int64(rng.IntN(n + 2))
		start := api.timeOf(startID)
		s := testStream(api, pageSize, start)

		// Several runs, each resuming from the previous cursor.
		var got []int64
		var cur []byte
		for run := 0; run < 3; run++ {
			ids, c := drain(t, s, cur)
			got, cur = append(got, ids...), c
			if run == 1 {
				api.insert = nil
			}
		}
		want := []int64{}
		for _, id := range api.ids {
			if !api.timeOf(id).Before(start) {
				want = append(want, id)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("seed %d (n=%d limit=%d): delivered %d records, want %d\n got %v\nwant %v", seed, n, pageSize, len(got), len(want), head10(got), head10(want))
		}
	}
}

func TestReaderSurvivesRetention(t *testing.T) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	api := newListAPI(500, base)
	s := testStream(api, 100, base)
	first, cur := drain(t, s, nil)
	if len(first) != 500 {
		t.Fatalf("first run delivered %d, want 500", len(first))
	}
	// Retention removes 450 of the oldest records while 300 arrive.
	api.add(300)
	api.ids = api.ids[450:]
	got, _ := drain(t, s, cur)
	if len(got) != 300 || got[0] != api.ids[50] {
		t.Fatalf("after retention delivered %d records starting %v, want the 300 new ones", len(got), head10(got))
	}
	// Retention passed the high-water mark itself: everything left is new.
	api2 := newListAPI(100, base)
	_, cur2 := drain(t, testStream(api2, 100, base), nil)
	api2.add(40)
	api2.ids = api2.ids[120:]
	got2, _ := drain(t, testStream(api2, 100, base), cur2)
	if len(got2) != 20 {
		t.Fatalf("delivered %d records, want the 20 survivors", len(got2))
	}
}

func TestReaderBoundedRequests(t *testing.T) {
	// A steady run with a checkpoint near the head costs one request; a first
	// run over a long list costs a logarithmic search plus a page per ~100.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	api := newListAPI(100_000, base)
	s := testStream(api, 100, api.timeOf(api.ids[99_000]))
	ids, cur := drain(t, s, nil)
	if len(ids) != 1000 {
		t.Fatalf("delivered %d, want 1000", len(ids))
	}
	if api.requests > 40 {
		t.Errorf("first run took %d requests for 1000 records in a list of 100000", api.requests)
	}
	api.requests = 0
	if ids, _ := drain(t, s, cur); len(ids) != 0 || api.requests != 1 {
		t.Errorf("caught-up run delivered %d records in %d requests, want 0 in 1", len(ids), api.requests)
	}
}

func TestReaderLeavesStateOnError(t *testing.T) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	api := newListAPI(250, base)
	flaky := &flakyAPI{api: api}
	s := testStream(flaky, 100, base)
	rd, _ := s.Open(context.Background(), nil)
	var got []int64
	for {
		p, err := rd.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			continue // the pipeline would back off and call Next again
		}
		for _, raw := range p.Records {
			var k struct{ ID int64 }
			_ = json.Unmarshal(raw, &k)
			got = append(got, k.ID)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(api.ids) {
		t.Fatalf("with failing requests delivered %v, want %v", head10(got), head10(api.ids))
	}
}

type flakyAPI struct {
	api *listAPI
	n   int
}

func (f *flakyAPI) Do(ctx context.Context, req huaweiapi.Request) ([]byte, error) {
	f.n++
	if f.n%2 == 0 {
		return nil, errors.New("connection reset")
	}
	return f.api.Do(ctx, req)
}

func head10(ids []int64) []int64 {
	if len(ids) > 10 {
		return ids[:10]
	}
	return ids
}

func TestOneImpossibleOpTimeIsNotTheStart(t *testing.T) {
	// A first run from HWCAUDIT_START_FROM inside the list. One record
	// stamped 0000-01-01T00:00:00Z among the new ones became the start
	// boundary before: the valid records below it, newer than the start,
	// were neither delivered nor dead-lettered, and the run exited 0. Now
	// that record is dead-lettered with the reason and the rest delivered.
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, at := range []int{5, 60, 199} { // counted from the head
		t.Run(strconv.Itoa(at), func(t *testing.T) {
			a := newListAPI(500, base)
			odd := a.ids[len(a.ids)-1-at]
			a.opTime = map[int64]string{odd: "0000-01-01T00:00:00Z"}
			start := a.timeOf(a.ids[250])
			s := testStream(a, 50, start)
			s.now = func() time.Time { return base.Add(48 * time.Hour) }
			rd, err := s.Open(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			delivered := map[int64]int{}
			var refused []pipeline.Invalid
			for {
				p, err := rd.Next(context.Background())
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, raw := range p.Records {
					var k struct{ ID int64 }
					if err := json.Unmarshal(raw, &k); err != nil {
						t.Fatal(err)
					}
					delivered[k.ID]++
				}
				refused = append(refused, p.Invalid...)
			}
			for _, id := range a.ids {
				newer := !a.timeOf(id).Before(start)
				if id != odd && newer && delivered[id] != 1 {
					t.Fatalf("record %d, newer than the start, delivered %d times", id, delivered[id])
				}
				if !newer && delivered[id] != 0 {
					t.Fatalf("record %d, older than the start, delivered", id)
				}
			}
			if len(refused) != 1 || !strings.Contains(refused[0].Reason, "time 0000-01-01T00:00:00Z cannot be true") {
				t.Fatalf("refused %+v, want the year-0 record once with its reason", refused)
			}
		})
	}
}
