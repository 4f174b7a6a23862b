package windowtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// InProcess sends requests to a handler (the simulator) in process, with
// Token in X-Auth-Token, so that matrix tests run thousands of requests
// quickly. A non-200 answer is an *huaweiapi.APIError, permanent unless
// it is 429 or 5xx.
type InProcess struct {
	H     http.Handler
	Token string
}

// Do serves req with d.H.
func (d InProcess) Do(ctx context.Context, req huaweiapi.Request) ([]byte, error) {
	u := req.Endpoint + req.Path
	if len(req.Query) > 0 {
		u += "?" + strings.ReplaceAll(req.Query.Encode(), "+", "%20")
	}
	r := httptest.NewRequestWithContext(ctx, req.Method, u, bytes.NewReader(req.Body))
	r.Header.Set("X-Auth-Token", d.Token)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	d.H.ServeHTTP(w, r)
	if w.Code == http.StatusOK {
		return w.Body.Bytes(), nil
	}
	err := &huaweiapi.APIError{Status: w.Code, Message: w.Body.String()}
	if w.Code == http.StatusTooManyRequests || w.Code >= 500 {
		return nil, err
	}
	return nil, pipeline.Permanent(err)
}

// CrashConfig drives CrashRuns.
type CrashConfig struct {
	// Clock is moved by Step before each run, until it passes Until.
	Clock *Clock
	Step  time.Duration
	Until time.Time
	// Seed chooses the crash points.
	Seed uint64
	// CrashRate is the chance, after each page, that the run is killed:
	// half the time after the page was delivered but before its cursor
	// was saved, half the time after.
	CrashRate float64
	// Retries is how often a retryable error is retried within a run
	// before the run fails (the pipeline's backoff, without the wait).
	Retries int
	// ID reads a record's id, from Records or Invalid alike.
	ID func(raw []byte) (string, error)
}

// CrashReport is what CrashRuns saw.
type CrashReport struct {
	// Delivered counts, by id, how often a record reached the sinks or
	// the dead letters.
	Delivered map[string]int
	// Cursor is the last cursor saved.
	Cursor                []byte
	Runs, Crashes, Failed int
	LastErr               error
	Fetched, Skipped      int64
	Excluded              pipeline.Excluded
	Mapped, DeadLettered  int64
}

// CrashRuns runs s as a simulated pipeline on a schedule: each run opens
// the stream from the last saved cursor and reads pages until io.EOF, a
// failure or a crash at a random point, delivering each page (Map, or the
// dead letter for Invalid records and records Map refuses) and saving its
// cursor afterwards; after Until, three runs that are not killed follow.
// For every run it checks the accounting identity:
// the records fetched (Records, Invalid, Excluded) all ended mapped,
// dead-lettered or excluded, and the last page's Total is what the run
// fetched.
func CrashRuns(t testing.TB, s pipeline.Stream, cfg CrashConfig) CrashReport {
	t.Helper()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	rep := CrashReport{Delivered: map[string]int{}}
	for cfg.Clock.Now().Before(cfg.Until) {
		cfg.Clock.Add(cfg.Step)
		rep.Runs++
		crashed, err := oneRun(t, s, cfg, rng, &rep)
		if crashed {
			rep.Crashes++
		}
		if err != nil {
			rep.Failed++
			rep.LastErr = err
		}
	}
	// The schedule goes on: runs that are not killed finish what killed
	// runs left.
	calm := cfg
	calm.CrashRate = 0
	for range 3 {
		rep.Runs++
		if _, err := oneRun(t, s, calm, rng, &rep); err != nil {
			rep.Failed++
			rep.LastErr = err
		}
	}
	return rep
}

func oneRun(t testing.TB, s pipeline.Stream, cfg CrashConfig, rng *rand.Rand, rep *CrashReport) (crashed bool, _ error) {
	t.Helper()
	rd, err := s.Open(context.Background(), rep.Cursor)
	if err != nil {
		return false, err
	}
	var fetched, mapped, dead, excluded, total int64
	defer func() {
		if fetched != mapped+dead+excluded {
			t.Errorf("run %d: fetched %d, mapped %d + dead-lettered %d + excluded %d", rep.Runs, fetched, mapped, dead, excluded)
		}
		if total != fetched {
			t.Errorf("run %d: the pages' Total says %d, the run fetched %d", rep.Runs, total, fetched)
		}
		rep.Fetched += fetched
		rep.Mapped += mapped
		rep.DeadLettered += dead
	}()
	retries := 0
	for range 1_000_000 {
		p, err := rd.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			if pipeline.IsPermanent(err) || retries >= cfg.Retries {
				return false, err
			}
			retries++
			continue
		}
		retries = 0
		if p.Cursor == nil {
			t.Fatalf("run %d: page without cursor", rep.Runs)
		}
		fetched += int64(len(p.Records)+len(p.Invalid)) + p.Excluded.Total()
		excluded += p.Excluded.Total()
		rep.Skipped += p.Skipped
		rep.Excluded.BeforeStart += p.Excluded.BeforeStart
		rep.Excluded.AfterEnd += p.Excluded.AfterEnd
		total = p.Total
		deliver := func(raw []byte) {
			id, err := cfg.ID(raw)
			if err != nil {
				t.Fatalf("run %d: record %s: %v", rep.Runs, raw, err)
			}
			rep.Delivered[id]++
		}
		for _, raw := range p.Records {
			var ev pipeline.Event
			if s.Map(raw, &ev) == nil {
				mapped++
			} else {
				dead++
			}
			deliver(raw)
		}
		for _, inv := range p.Invalid {
			if inv.Reason == "" {
				t.Errorf("run %d: invalid record without a reason: %s", rep.Runs, inv.Raw)
			}
			dead++
			deliver(inv.Raw)
		}
		if rng.Float64() < cfg.CrashRate {
			if rng.IntN(2) == 0 {
				rep.Cursor = p.Cursor // killed after the save
			}
			return true, nil
		}
		rep.Cursor = p.Cursor
	}
	return false, fmt.Errorf("run %d: no io.EOF", rep.Runs)
}

// Verdict checks how the runs ended: with a lying total (lies), some runs
// failed with an error naming stream; otherwise none failed. It returns the
// last cursor's time (zero without one): every record before it must have
// been delivered, lying total or not.
func (rep CrashReport) Verdict(t testing.TB, stream string, lies bool) (through time.Time) {
	t.Helper()
	if rep.Cursor != nil {
		c, err := window.DecodeCursor(rep.Cursor)
		if err != nil {
			t.Fatal(err)
		}
		through = c.Through
	}
	if lies {
		if rep.Failed == 0 || !strings.Contains(rep.LastErr.Error(), stream) {
			t.Fatalf("a lying total: %d runs failed, last error %v; want failures naming the stream", rep.Failed, rep.LastErr)
		}
	} else if rep.Failed > 0 {
		t.Fatalf("%d of %d runs failed: %v", rep.Failed, rep.Runs, rep.LastErr)
	}
	return through
}
