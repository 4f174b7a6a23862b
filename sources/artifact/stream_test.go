package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
)

// These tests read the simulator over real HTTP: what they prove holds for
// the API as documented, including its paging limits and errors.

const (
	simProject = "0a6c3d5e9f1b4c2d8e7f6a5b4c3d2e1f"
	simToken   = "artifact-test-token"
	simTenant  = "5a775fdcb14f4431b6c0015618140bc3"
	simFile    = "cn-north-4_5a775fdcb14f4431b6c0015618140bc3_maven_1_108"
	simRepo    = "cn-north-4_5a775fdcb14f4431b6c0015618140bc3_npm_1_109"
)

var simStart = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func simConfig(n int) simulator.Config {
	return simulator.Config{
		ProjectID: simProject,
		Tokens:    []simulator.Token{{Value: simToken}},
		Seed:      7,
		Artifact: simulator.ArtifactConfig{
			TenantID:       simTenant,
			Repos:          []simulator.ArtifactRepo{{Module: "file", Repo: simFile}, {Module: "repository", Repo: simRepo}},
			RecordsPerRepo: n,
			Start:          simStart,
			Interval:       400 * time.Millisecond, // several records per second
		},
	}
}

func startSim(t *testing.T, cfg simulator.Config, pageSize int, start time.Time) (*simulator.Server, map[string]*Stream) {
	t.Helper()
	sim := simulator.New(cfg)
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	api := huaweiapi.NewClient(huaweiapi.Config{ProjectID: simProject, MaxRPS: 1e6, Timeout: 10 * time.Second, MaxBodyBytes: 16 << 20}, huaweiapi.TokenAuth{Token: simToken})
	scfg := Config{TenantID: simTenant, Repos: []string{"file/" + simFile, "repository/" + simRepo}, Endpoint: base, Timezone: "+08:00", PageSize: pageSize}
	if err := scfg.Validate("cn-north-4"); err != nil {
		t.Fatal(err)
	}
	out := map[string]*Stream{}
	for _, s := range Streams(scfg, api, "cn-north-4", simProject, start, fixedNow) {
		out[s.module] = s
	}
	return sim, out
}

type run struct {
	ids     []string
	cursors [][]byte
	ends    []int
	last    []byte
	errs    int
}

func readAll(t *testing.T, s *Stream, cursor []byte) run {
	t.Helper()
	rd, err := s.Open(context.Background(), cursor)
	if err != nil {
		t.Fatal(err)
	}
	r := run{last: cursor}
	for calls := 0; ; calls++ {
		if calls > 3000 {
			t.Fatalf("%s: no end after %d calls of Next", s.Key(), calls)
		}
		p, err := rd.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return r
		}
		if err != nil {
			if pipeline.IsPermanent(err) {
				t.Fatalf("%s: permanent error: %v", s.Key(), err)
			}
			r.errs++
			continue
		}
		for _, raw := range p.Records {
			var k struct{ ID string }
			if err := json.Unmarshal(raw, &k); err != nil {
				t.Fatal(err)
			}
			r.ids = append(r.ids, k.ID)
		}
		if p.Cursor != nil {
			r.last = p.Cursor
			if len(p.Records) > 0 {
				r.cursors, r.ends = append(r.cursors, p.Cursor), append(r.ends, len(r.ids))
			}
		}
	}
}

func wantIDs(recs []simulator.ArtifactRecord, from, to int) []string {
	var out []string
	for _, r := range recs[from:to] {
		out = append(out, r.ID)
	}
	return out
}

func checkIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: delivered %d records, want %d (missed, doubled or out of order)", what, len(got), len(want))
	}
}

func TestStreamFullReadThenCaughtUp(t *testing.T) {
	const n = 730
	sim, streams := startSim(t, simConfig(n), MaxPageSize, simStart)
	for module, s := range streams {
		t.Run(module, func(t *testing.T) {
			recs := sim.ArtifactRecords(module, s.repo)
			first := readAll(t, s, nil)
			checkIDs(t, "first run", first.ids, wantIDs(recs, 0, n))
			if first.errs > 0 {
				t.Errorf("%d errors without faults", first.errs)
			}
			before := sim.Stats().Requests
			if again := readAll(t, s, first.last); len(again.ids) != 0 {
				t.Errorf("caught-up run delivered %d", len(again.ids))
			}
			if d := sim.Stats().Requests - before; d != 1 {
				t.Errorf("caught-up run took %d requests, want 1", d)
			}
		})
	}
}

func TestStreamResumesFromEveryCheckpoint(t *testing.T) {
	sim, streams := startSim(t, simConfig(300), 37, simStart)
	s := streams["file"]
	recs := sim.ArtifactRecords("file", simFile)
	full := readAll(t, s, nil)
	checkIDs(t, "full run", full.ids, wantIDs(recs, 0, len(recs)))
	if len(full.cursors) < 5 {
		t.Fatalf("only %d pages", len(full.cursors))
	}
	for k, cur := range full.cursors {
		rest := readAll(t, s, cur)
		checkIDs(t, fmt.Sprintf("resumed after page %d (%s)", k+1, cur), rest.ids, wantIDs(recs, full.ends[k], len(recs)))
	}
}

func TestStreamDrift(t *testing.T) {
	for _, tt := range []struct {
		pageSize, drift int
	}{{100, 1}, {100, 40}, {20, 3}, {37, 9}} {
		t.Run(fmt.Sprintf("page %d drift %d", tt.pageSize, tt.drift), func(t *testing.T) {
			const n = 900
			sim, streams := startSim(t, simConfig(n), tt.pageSize, simStart)
			s := streams["repository"]
			sim.SetFaults(simulator.Faults{DriftPerPage: tt.drift})
			first := readAll(t, s, nil)
			recs := sim.ArtifactRecords("repository", simRepo)
			if len(first.ids) < n || len(recs) <= n {
				t.Fatalf("delivered %d of %d records (%d now)", len(first.ids), n, len(recs))
			}
			checkIDs(t, "drifting run", first.ids, wantIDs(recs, 0, len(first.ids)))
			sim.SetFaults(simulator.Faults{})
			second := readAll(t, s, first.last)
			checkIDs(t, "next run", append(first.ids, second.ids...), wantIDs(recs, 0, len(recs)))
		})
	}
}

func TestStreamRetriesThroughFaults(t *testing.T) {
	for name, f := range map[string]simulator.Faults{
		"throttled":         {ThrottleEvery: 3},
		"500s":              {ServerErrorEvery: 4},
		"502s, 429s, drift": {ThrottleRate: 0.2, ServerErrorRate: 0.2, ServerErrorStatus: 502, DriftPerPage: 5},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := simConfig(500)
			cfg.Faults = f
			sim, streams := startSim(t, cfg, MaxPageSize, simStart)
			s := streams["file"]
			first := readAll(t, s, nil)
			if first.errs == 0 {
				t.Fatal("no fault reached the reader")
			}
			sim.SetFaults(simulator.Faults{})
			second := readAll(t, s, first.last)
			recs := sim.ArtifactRecords("file", simFile)
			checkIDs(t, "runs through faults", append(first.ids, second.ids...), wantIDs(recs, 0, len(recs)))
		})
	}
}

func TestStreamStartTime(t *testing.T) {
	const n = 400
	recs := simulator.New(simConfig(n)).ArtifactRecords("file", simFile)
	first := func(start time.Time) int {
		for i, r := range recs {
			if !r.Time.Before(start) {
				return i
			}
		}
		return n
	}
	for name, start := range map[string]time.Time{
		"before every record": simStart.Add(-time.Hour),
		"at a record":         recs[217].Time,
		"inside a second":     recs[217].Time.Add(500 * time.Millisecond),
		"at the newest":       recs[n-1].Time,
		"after every record":  recs[n-1].Time.Add(time.Second),
		"other zone":          recs[100].Time.In(time.FixedZone("X", -7*3600)),
	} {
		t.Run(name, func(t *testing.T) {
			sim, streams := startSim(t, simConfig(n), MaxPageSize, start)
			s := streams["file"]
			r := readAll(t, s, nil)
			checkIDs(t, "run from the start time", r.ids, wantIDs(recs, first(start), n))
			if err := sim.InsertArtifact("file", simFile, 5); err != nil {
				t.Fatal(err)
			}
			all := sim.ArtifactRecords("file", simFile)
			next := readAll(t, s, r.last)
			checkIDs(t, "next run", next.ids, wantIDs(all, n, n+5))
		})
	}
}

func TestStreamUnknownRepoIsAnError(t *testing.T) {
	_, streams := startSim(t, simConfig(10), MaxPageSize, simStart)
	s := *streams["file"]
	s.repo = "nope"
	rd, _ := s.Open(context.Background(), nil)
	_, err := rd.Next(context.Background())
	var apiErr *huaweiapi.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Fatalf("Next = %v, want a 404", err)
	}
}
