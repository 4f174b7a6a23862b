package newestfirst

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"
)

// requestCase is a walk whose cost in requests is measured: a first run
// from before the oldest record of a list, with Concurrency requests in
// flight, each answered after latency, while arrive records are inserted
// at the head before every request (head checks included).
type requestCase struct {
	name        string
	records     int
	concurrency int
	arrive      int
	latency     time.Duration
}

var requestCases = []requestCase{
	{"still/concurrency=8", 200_000, 8, 0, 5 * time.Millisecond},
	{"still/concurrency=4", 200_000, 4, 0, 5 * time.Millisecond},
	{"still/concurrency=1", 20_000, 1, 0, 0},
	{"growing=1/concurrency=8", 200_000, 8, 1, 5 * time.Millisecond},
	{"growing=3/concurrency=8", 200_000, 8, 3, 5 * time.Millisecond},
	{"growing=10/concurrency=8", 200_000, 8, 10, 5 * time.Millisecond},
}

// requestCost is what one measured walk delivered and asked for.
type requestCost struct {
	records, requests, checks int
	wall                      time.Duration
}

func (c requestCost) perRequest() float64 { return float64(c.records) / float64(c.requests) }

// measureRequests reads c's list to the end of the run and checks that
// every record listed when the run began was delivered once, in order.
func measureRequests(tb testing.TB, c requestCase) requestCost {
	tb.Helper()
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a := newListAPI(c.records, base)
	a.latency = c.latency
	want := a.ids
	if c.arrive > 0 {
		a.insert = func(int) int { return c.arrive }
	}
	rd := newReader(a, 100, c.concurrency, base.Add(-time.Hour), nil)
	began := time.Now()
	var got []int64
	for {
		p, err := rd.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		for _, raw := range p.Records {
			id, _ := strconv.ParseInt(string(raw), 10, 64)
			got = append(got, id)
		}
	}
	wall := time.Since(began)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(got) < len(want) || fmt.Sprint(got[:len(want)]) != fmt.Sprint(want) {
		tb.Fatalf("%s: delivered %d records, want the %d listed at the start first, in order", c.name, len(got), len(want))
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			tb.Fatalf("%s: delivery %d (%d) after %d", c.name, i, got[i], got[i-1])
		}
	}
	return requestCost{records: len(got), requests: a.sent, checks: a.checks, wall: wall}
}

// BenchmarkRequests reports records per request (the API quota's cost)
// of a first run over 200,000 records, the list still or growing at the
// head by 1, 3 or 10 records before every request, and, with 5 ms per
// request, the ratio of records/s to the ceiling of Concurrency full pages
// per round trip:
//
//	go test ./sources/newestfirst -run '^$' -bench Requests -benchtime 1x
func BenchmarkRequests(b *testing.B) {
	for _, c := range requestCases {
		b.Run(c.name, func(b *testing.B) {
			var cost requestCost
			for range b.N {
				cost = measureRequests(b, c)
			}
			b.ReportMetric(cost.perRequest(), "records/request")
			b.ReportMetric(float64(cost.requests), "requests")
			b.ReportMetric(float64(cost.checks), "head-checks")
			if c.latency > 0 {
				// Records/s over what c.concurrency requests of 100 records
				// in flight all the time would carry.
				ceiling := float64(c.concurrency) * 100 / c.latency.Seconds()
				b.ReportMetric(float64(cost.records)/cost.wall.Seconds()/ceiling, "ceiling-ratio")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

func TestFailingRequestsDoNotStallTheWalk(t *testing.T) {
	// Every seventh request fails, head checks included. A failed head
	// check is sent again rather than fail Next and drop the pages that
	// wait for it. Without that, once checks waited for several rounds
	// of pages, a round whose length was a multiple of seven ended in a
	// failed check every time, and the walk never got past it (seeds 61
	// and 181 of TestReaderDeliversEveryRecordOnceOldestFirst under load).
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, conc := range []int{2, 4, 8} {
		for round := range 5 {
			a := newListAPI(5000, base)
			a.fail = func(req int) bool { return req%7 == 0 }
			rd := newReader(a, 100, conc, base.Add(-time.Hour), nil)
			var got []int64
			for errs := 0; ; {
				p, err := rd.Next(context.Background())
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					if errs++; errs > 500 {
						t.Fatalf("concurrency %d round %d: %d failed calls of Next, %d records delivered; last: %v", conc, round, errs, len(got), err)
					}
					continue
				}
				for _, raw := range p.Records {
					id, _ := strconv.ParseInt(string(raw), 10, 64)
					got = append(got, id)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(a.ids) {
				t.Fatalf("concurrency %d: delivered %d records, want %d in order", conc, len(got), len(a.ids))
			}
		}
	}
}

func TestRecordsPerRequest(t *testing.T) {
	// The request quota is what a real API limits. A first run over
	// 200,000 records with 8 requests in flight costs at most one
	// request per 95 records on a still list (whole abutting pages and
	// one head check per 32 of them), and one per 80 while records keep
	// arriving at the head (pages that overlap by the margin arrivals
	// need). BenchmarkRequests reports the figures.
	if testing.Short() {
		t.Skip("200,000 records")
	}
	for _, c := range []struct {
		requestCase
		floor float64
	}{
		{requestCase{"still", 200_000, 8, 0, 0}, 95},
		{requestCase{"still, 4 in flight", 200_000, 4, 0, 0}, 95},
		{requestCase{"growing by 3 per request", 200_000, 8, 3, 0}, 80},
	} {
		cost := measureRequests(t, c.requestCase)
		if got := cost.perRequest(); got < c.floor {
			t.Errorf("%s: %.1f records per request (%d requests, %d head checks), want at least %.0f", c.name, got, cost.requests, cost.checks, c.floor)
		}
	}
}
