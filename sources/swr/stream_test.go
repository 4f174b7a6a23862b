package swr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
)

// These tests read the simulator over real HTTP with real AK/SK signatures:
// what they prove holds for the API as documented, including its paging
// limits and the gateway's errors.

const (
	simProject = "5d1c0f3a9b8e4c7d6a5f4e3d2c1b0a99"
	simAK      = "AKSWRSTREAMTEST00001"
	simSK      = "swr-stream-test-secret"
	simInsA    = "ins-a"
	simInsB    = "ins-b"
)

var simStart = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

var allOperations = []string{"pull", "create", "delete"}

func simConfigN(perOp int) simulator.Config {
	return simulator.Config{
		ProjectID:   simProject,
		Credentials: []simulator.Credential{{AK: simAK, SK: simSK}},
		Seed:        99,
		SWR: simulator.SWRConfig{
			Instances:           []string{simInsA, simInsB},
			RecordsPerOperation: perOp,
			Start:               simStart,
			Interval:            time.Second,
		},
	}
}

// startSimulator serves cfg and returns the SWR streams of every instance
// and operation, reading it through a signing huaweiapi.Client.
func startSimulator(t *testing.T, cfg simulator.Config, pageSize int, start time.Time) (*simulator.Server, map[string]*Stream) {
	t.Helper()
	return startSimulatorConcurrent(t, cfg, pageSize, 1, start)
}

// startSimulatorConcurrent is startSimulator with streams that keep
// concurrency requests in flight.
func startSimulatorConcurrent(t *testing.T, cfg simulator.Config, pageSize, concurrency int, start time.Time) (*simulator.Server, map[string]*Stream) {
	t.Helper()
	sim := simulator.New(cfg)
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	signer, err := huaweiapi.NewSDKSigner(func() (auth.ICredential, error) {
		return auth.NewBasicCredentialsBuilder().WithAk(simAK).WithSk(simSK).WithProjectId(simProject).SafeBuild()
	})
	if err != nil {
		t.Fatal(err)
	}
	api := &countingDoer{api: huaweiapi.NewClient(huaweiapi.Config{ProjectID: simProject, MaxRPS: 1e6, Timeout: 10 * time.Second, MaxBodyBytes: 16 << 20}, signer)}
	scfg := Config{Instances: cfg.SWR.Instances, Operations: allOperations, Endpoint: base, PageSize: pageSize, Concurrency: concurrency}
	if err := scfg.Validate("cn-north-4"); err != nil {
		t.Fatal(err)
	}
	streams := map[string]*Stream{}
	for _, s := range Streams(scfg, api, "cn-north-4", simProject, start, fixedNow) {
		streams[s.Key()] = s
	}
	return sim, streams
}

// countingDoer counts the requests of the streams that share it.
type countingDoer struct {
	api huaweiapi.Doer
	n   atomic.Int64
}

func (d *countingDoer) Do(ctx context.Context, req huaweiapi.Request) ([]byte, error) {
	d.n.Add(1)
	return d.api.Do(ctx, req)
}

// maxRequests bounds the requests of one run in these tests: a reader that
// loops fails fast instead of hanging the test. Runs here take a few
// hundred at most.
const maxRequests = 2000

// run is what one reader delivered.
type run struct {
	records [][]byte
	cursors [][]byte // the cursor after each page that had records
	ends    []int    // len(records) after each such page
	last    []byte   // the last cursor, or the one the run started from
	errs    []error  // retryable errors that Next returned
}

// readAll opens s at cursor and calls Next until io.EOF. Like the pipeline
// after a backoff, it calls Next again after a retryable error.
func readAll(t *testing.T, s *Stream, cursor []byte) run {
	t.Helper()
	rd, err := s.Open(context.Background(), cursor)
	if err != nil {
		t.Fatal(err)
	}
	r := run{last: cursor}
	// A reader that loops, or never reaches the head, fails the test
	// instead of hanging it.
	counter, _ := s.api.(*countingDoer)
	var before int64
	if counter != nil {
		before = counter.n.Load()
	}
	for calls := 0; ; calls++ {
		if counter != nil && counter.n.Load()-before > maxRequests || calls > maxRequests {
			t.Fatalf("%s: no end after %d calls of Next (%d records, %d errors)", s.Key(), calls, len(r.records), len(r.errs))
		}
		p, err := rd.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return r
		}
		if err != nil {
			if pipeline.IsPermanent(err) {
				t.Fatalf("%s: permanent error after %d records: %v", s.Key(), len(r.records), err)
			}
			r.errs = append(r.errs, err)
			continue
		}
		if len(p.Records) > 1 && p.Cursor == nil {
			// One record alone cannot confirm its key as a mark.
			t.Fatalf("%s: a page of %d records has no cursor", s.Key(), len(p.Records))
		}
		r.records = append(r.records, p.Records...)
		// Records the reader refused (an id of the wrong JSON type, out
		// of order) are dead-lettered by the pipeline: accounted for as
		// surely as delivered ones.
		for _, inv := range p.Invalid {
			r.records = append(r.records, inv.Raw)
		}
		if p.Cursor != nil {
			r.last = p.Cursor
			if len(p.Records) > 0 {
				r.cursors = append(r.cursors, p.Cursor)
				r.ends = append(r.ends, len(r.records))
			}
		}
	}
}

// catalog finds the simulator's record behind a raw record: by id, or by
// op_time when the record is served with a broken id (op_time strictly
// grows with id, so it is unique within an instance's operation).
type catalog struct {
	recs     []simulator.SWRRecord
	byID     map[int64]int
	byOpTime map[string]int
}

func newCatalog(recs []simulator.SWRRecord) *catalog {
	c := &catalog{recs: recs, byID: map[int64]int{}, byOpTime: map[string]int{}}
	for i, r := range recs {
		c.byID[r.ID] = i
		c.byOpTime[r.OpTime.Format("2006-01-02T15:04:05.000Z")] = i
	}
	return c
}

func (c *catalog) index(t *testing.T, raw []byte) int {
	t.Helper()
	var k struct {
		ID     json.RawMessage `json:"id"`
		OpTime string          `json:"op_time"`
	}
	if err := json.Unmarshal(raw, &k); err != nil {
		t.Fatalf("record is not JSON: %s", raw)
	}
	if id, err := strconv.ParseInt(string(k.ID), 10, 64); err == nil {
		if i, ok := c.byID[id]; ok {
			return i
		}
	} else if i, ok := c.byOpTime[k.OpTime]; ok {
		return i
	}
	t.Fatalf("record %s is not one the simulator holds", raw)
	return -1
}

// checkExactly fails unless records are the catalog's records from..to,
// each once. A page's refused records come after its delivered ones, so
// order is checked by the newestfirst property tests, not here.
func (c *catalog) checkExactly(t *testing.T, what string, records [][]byte, from, to int) {
	t.Helper()
	if len(records) != to-from {
		t.Errorf("%s: delivered %d records, want %d (simulator records %d..%d)", what, len(records), to-from, from, to-1)
	}
	idx := make([]int, len(records))
	for n, raw := range records {
		idx[n] = c.index(t, raw)
	}
	slices.Sort(idx)
	for n, i := range idx {
		if i != from+n {
			t.Fatalf("%s: delivery %d is simulator record %d (id %d), want record %d: missed, doubled or out of order",
				what, n, i, c.recs[i].ID, from+n)
		}
	}
}

func TestStreamFullReadThenCaughtUp(t *testing.T) {
	const perOp = 2500
	sim, streams := startSimulator(t, simConfigN(perOp), MaxPageSize, simStart)
	ecs := loadECSIfPresent(t)
	eventIDs := map[string]string{}
	for _, ins := range []string{simInsA, simInsB} {
		for _, op := range allOperations {
			s := streams["swr/"+ins+"/"+op]
			t.Run(s.Key(), func(t *testing.T) {
				cat := newCatalog(sim.SWRRecords(ins, op))
				first := readAll(t, s, nil)
				cat.checkExactly(t, "first run", first.records, 0, perOp)
				if len(first.errs) > 0 {
					t.Errorf("%d errors without injected faults, first: %v", len(first.errs), first.errs[0])
				}
				for i, raw := range first.records {
					var ev pipeline.Event
					if err := s.Map(raw, &ev); err != nil {
						t.Fatalf("record %d: %v", i, err)
					}
					if other, dup := eventIDs[ev.ID]; dup {
						t.Fatalf("event.id %s of %s record %d also belongs to %s", ev.ID, s.Key(), i, other)
					}
					eventIDs[ev.ID] = fmt.Sprintf("%s record %d", s.Key(), i)
					if ecs != nil && i%97 == 0 {
						ecs.Check(t, ev.Doc)
					}
				}

				before := sim.Stats().Requests
				again := readAll(t, s, first.last)
				if len(again.records) != 0 {
					t.Errorf("second run from the last cursor delivered %d records, want none", len(again.records))
				}
				if n := sim.Stats().Requests - before; n != 1 {
					t.Errorf("caught-up run took %d requests, want 1", n)
				}
			})
		}
	}
}

func loadECSIfPresent(t *testing.T) *ecstest.Schema {
	var ecs *ecstest.Schema
	t.Run("ecs schema", func(t *testing.T) { ecs = ecstest.LoadECS(t) })
	return ecs
}

func TestStreamResumesFromEveryCheckpoint(t *testing.T) {
	// A crash after any page leaves that page's cursor as the checkpoint;
	// a new run from it must deliver exactly the rest. Malformed records
	// (some without a usable id) make the cursor carry a skip count.
	for _, tt := range []struct {
		name      string
		malformed float64
		pageSize  int
	}{
		{"well-formed", 0, 100},
		{"malformed records, odd page size", 0.2, 37},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := simConfigN(600)
			cfg.Faults.MalformedRate = tt.malformed
			sim, streams := startSimulator(t, cfg, tt.pageSize, simStart)
			s := streams["swr/"+simInsA+"/create"]
			cat := newCatalog(sim.SWRRecords(simInsA, "create"))
			full := readAll(t, s, nil)
			cat.checkExactly(t, "full run", full.records, 0, len(cat.recs))
			if len(full.cursors) < 5 {
				t.Fatalf("only %d pages: the test needs more", len(full.cursors))
			}
			for k, cur := range full.cursors {
				rest := readAll(t, s, cur)
				cat.checkExactly(t, fmt.Sprintf("resumed after page %d (cursor %s)", k+1, cur), rest.records, full.ends[k], len(cat.recs))
			}
		})
	}
}

func TestStreamDrift(t *testing.T) {
	tests := []struct {
		name     string
		pageSize int
		drift    int
		resumeAt int // records delivered before drift starts; 0: drift from the first request
	}{
		{"one per page", 100, 1, 0},
		{"seven per page", 100, 7, 0},
		{"forty per page", 100, 40, 0},
		{"small pages", 20, 3, 0},
		{"odd page size", 37, 9, 0},
		{"resume into drift", 100, 25, 1200},
	}
	for _, tt := range tests {
		for _, concurrency := range []int{1, 8} {
			t.Run(fmt.Sprintf("%s/concurrency=%d", tt.name, concurrency), func(t *testing.T) {
				driftCase(t, tt.pageSize, tt.drift, tt.resumeAt, concurrency)
			})
		}
	}
}

func driftCase(t *testing.T, pageSize, drift, resumeAt, concurrency int) {
	t.Helper()
	const perOp = 2000
	sim, streams := startSimulatorConcurrent(t, simConfigN(perOp), pageSize, concurrency, simStart)
	s := streams["swr/"+simInsB+"/pull"]
	var delivered [][]byte
	var cursor []byte
	if resumeAt > 0 {
		// An earlier run stopped part-way; its checkpoint is where
		// the drifting run starts.
		rd, err := s.Open(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for len(delivered) < resumeAt {
			p, err := rd.Next(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			delivered, cursor = append(delivered, p.Records...), p.Cursor
		}
	}
	sim.SetFaults(simulator.Faults{DriftPerPage: drift})
	first := readAll(t, s, cursor)
	delivered = append(delivered, first.records...)
	// With requests in flight, pages asked ahead may still be served (each
	// inserting records) after the reader reached the head: the list is
	// read once it stopped growing.
	settled(sim)

	// Records inserted after the reader passed the head are left for
	// the next run; everything before them arrived once, in order.
	cat := newCatalog(sim.SWRRecords(simInsB, "pull"))
	if len(cat.recs) <= perOp {
		t.Fatalf("the simulator inserted no records (%d)", len(cat.recs))
	}
	if len(delivered) < perOp {
		t.Errorf("drifting run delivered %d records, fewer than the %d there were at its start", len(delivered), perOp)
	}
	cat.checkExactly(t, "drifting run", delivered, 0, len(delivered))

	sim.SetFaults(simulator.Faults{})
	second := readAll(t, s, first.last)
	cat.checkExactly(t, "next run", second.records, len(delivered), len(cat.recs))
}

// settled waits until the simulator received no request for 100ms (at
// most 5s).
func settled(sim *simulator.Server) {
	last := sim.Stats().Requests
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		n := sim.Stats().Requests
		if n == last {
			return
		}
		last = n
	}
}

func TestStreamRetriesThroughFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults simulator.Faults
	}{
		{"every third request throttled with Retry-After", simulator.Faults{ThrottleEvery: 3, RetryAfter: 2 * time.Second}},
		{"every second request throttled", simulator.Faults{ThrottleEvery: 2}},
		{"every fourth request a 500", simulator.Faults{ServerErrorEvery: 4}},
		{"random 502s and 429s", simulator.Faults{ThrottleRate: 0.2, ServerErrorRate: 0.2, ServerErrorStatus: 502}},
		{"faults, drift and malformed records", simulator.Faults{ThrottleEvery: 5, ServerErrorEvery: 3, ServerErrorStatus: 503, DriftPerPage: 5, MalformedRate: 0.05}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const perOp = 1500
			cfg := simConfigN(perOp)
			cfg.Faults = tt.faults
			sim, streams := startSimulator(t, cfg, MaxPageSize, simStart)
			s := streams["swr/"+simInsA+"/delete"]
			first := readAll(t, s, nil)
			if len(first.errs) == 0 {
				t.Fatal("no fault reached the reader")
			}
			var sawWait bool
			for _, err := range first.errs {
				var apiErr *huaweiapi.APIError
				if !errors.As(err, &apiErr) || apiErr.Status != 429 && apiErr.Status < 500 {
					t.Fatalf("unexpected error: %v", err)
				}
				if d, ok := pipeline.RetryAfter(err); ok {
					sawWait = true
					if d != tt.faults.RetryAfter {
						t.Errorf("RetryAfter = %v, want %v", d, tt.faults.RetryAfter)
					}
				}
			}
			if tt.faults.RetryAfter > 0 && !sawWait {
				t.Error("no error carried the server's Retry-After")
			}
			st := sim.Stats()
			if got := int64(len(first.errs)); got != st.Throttled+st.ServerErrors {
				t.Errorf("Next returned %d errors for %d injected faults", got, st.Throttled+st.ServerErrors)
			}

			sim.SetFaults(simulator.Faults{MalformedRate: tt.faults.MalformedRate})
			second := readAll(t, s, first.last)
			cat := newCatalog(sim.SWRRecords(simInsA, "delete"))
			cat.checkExactly(t, "runs through faults", append(first.records, second.records...), 0, len(cat.recs))
		})
	}
}

func TestStreamMalformedRecords(t *testing.T) {
	const perOp = 2000
	cfg := simConfigN(perOp)
	cfg.Faults.MalformedRate = 0.05
	sim, streams := startSimulator(t, cfg, MaxPageSize, simStart)
	for _, op := range allOperations {
		t.Run(op, func(t *testing.T) {
			s := streams["swr/"+simInsA+"/"+op]
			cat := newCatalog(sim.SWRRecords(simInsA, op))
			r := readAll(t, s, nil)
			cat.checkExactly(t, "run with malformed records", r.records, 0, perOp)
			kinds := map[string]int{}
			for n, raw := range r.records {
				rec := cat.recs[cat.index(t, raw)]
				var ev pipeline.Event
				err := s.Map(raw, &ev)
				switch {
				case rec.Malformed != "" && err == nil:
					t.Errorf("record %d is malformed (%s) but mapped: %s", n, rec.Malformed, raw)
				case rec.Malformed == "" && err != nil:
					t.Errorf("record %d is well-formed but did not map: %v", n, err)
				case err == nil && n%10 == 0:
					ecstest.CheckDoc(t, raw, &ev, Dataset)
				}
				kinds[rec.Malformed]++
			}
			for _, k := range []string{simulator.MalformedIDString, simulator.MalformedNoID, simulator.MalformedOpTime} {
				if kinds[k] == 0 {
					t.Errorf("no record was malformed as %s (%v): the test proves less than it claims", k, kinds)
				}
			}
			again := readAll(t, s, r.last)
			if len(again.records) != 0 {
				t.Errorf("second run delivered %d records, want none", len(again.records))
			}
		})
	}
}

func TestStreamStartTime(t *testing.T) {
	const perOp = 1000
	cfg := simConfigN(perOp)
	recs := simulator.New(cfg).SWRRecords(simInsA, "pull")
	last := recs[perOp-1].OpTime
	tests := []struct {
		name  string
		start time.Time
		from  int // first record wanted
	}{
		{"before every record", simStart.Add(-time.Hour), 0},
		{"at the first record", recs[0].OpTime, 0},
		{"at a record", recs[617].OpTime, 617},
		{"just after a record", recs[616].OpTime.Add(time.Millisecond), 617},
		{"just before a record", recs[617].OpTime.Add(-time.Millisecond), 617},
		{"in the last page", recs[perOp-3].OpTime, perOp - 3},
		{"at the newest record", last, perOp - 1},
		{"after every record", last.Add(time.Millisecond), perOp},
		{"in another time zone", recs[300].OpTime.In(time.FixedZone("CST", 8*3600)), 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, streams := startSimulator(t, cfg, MaxPageSize, tt.start)
			s := streams["swr/"+simInsA+"/pull"]
			cat := newCatalog(sim.SWRRecords(simInsA, "pull"))
			r := readAll(t, s, nil)
			cat.checkExactly(t, "run from the start time", r.records, tt.from, perOp)
			for _, raw := range r.records {
				if rec := cat.recs[cat.index(t, raw)]; rec.OpTime.Before(tt.start) {
					t.Fatalf("record of %v delivered for start %v", rec.OpTime, tt.start)
				}
			}
			// Records that arrive later are read from the cursor, or from the
			// start time again when the first run found nothing.
			if err := sim.InsertSWR(simInsA, "pull", 5); err != nil {
				t.Fatal(err)
			}
			cat = newCatalog(sim.SWRRecords(simInsA, "pull"))
			next := readAll(t, s, r.last)
			from := perOp
			if r.last == nil && len(r.records) == 1 {
				// A first run that found one record has no key confirmed
				// to resume from: the next run starts at the start time
				// again and delivers it once more.
				from = perOp - 1
			}
			cat.checkExactly(t, "next run", next.records, from, perOp+5)
		})
	}
}
