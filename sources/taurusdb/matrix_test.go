package taurusdb

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

// matrixStream builds a simulator with cfg and a stream reading it in
// process with the given default look-back (0: DefaultLookback).
func matrixStream(t *testing.T, cfg simulator.TaurusDBConfig, clk *windowtest.Clock, lookback time.Duration) (*simulator.Server, *Stream) {
	t.Helper()
	cfg.Instances = []string{simIns}
	sim := simulator.New(simulator.Config{ProjectID: simProject, Tokens: []simulator.Token{{Value: simToken}}, Seed: 42, Now: clk.Now, TaurusDB: cfg})
	scfg := Config{Instances: cfg.Instances, Endpoint: "http://taurusdb.sim", PageSize: 10}
	if err := scfg.Validate("cn-north-4"); err != nil {
		t.Fatal(err)
	}
	s := NewStreams(scfg, windowtest.InProcess{H: sim, Token: simToken}, "cn-north-4", simProject, Options{
		Window:   window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 100},
		Start:    simStart,
		Lookback: lookback,
		Now:      clk.Now,
	})[0]
	return sim, s
}

func fileID(raw []byte) (string, error) {
	var k struct {
		ID string `json:"id"`
	}
	err := json.Unmarshal(raw, &k)
	return k.ID, err
}

// TestEveryFileOnceWhateverTheFilter: files span up to three hours, so
// they cross the reader's window edges; whether the API's start_time and
// end_time select files by end_time, begin_time or overlap, every file is
// delivered exactly once. Read live (runs every 20 minutes, a file listed
// once it ended), the default look-back covers the longest file; read
// catching up (every file already listed) from a one-hour look-back, the
// reader learns a longer one from the files it sees ahead of their window.
// Keyed by end_time without a look-back, files whose begin_time lay in an
// earlier window were lost under a begin_time filter.
func TestEveryFileOnceWhateverTheFilter(t *testing.T) {
	for _, f := range []simulator.TaurusDBFilter{simulator.FilterEnd, simulator.FilterBegin, simulator.FilterOverlap} {
		for _, live := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/live=%v", f, live), func(t *testing.T) {
				clk := windowtest.NewClock(simStart)
				cfg := simulator.TaurusDBConfig{Files: 150, Start: simStart.Add(4 * time.Hour), Interval: 5 * time.Minute, MaxFileSpan: 3 * time.Hour, Filter: f}
				lookback := time.Duration(0)
				if !live {
					lookback = time.Hour
				}
				sim, s := matrixStream(t, cfg, clk, lookback)
				want := sim.TaurusDBRecords(simIns)
				until := want[len(want)-1].VisibleAt.Add(30 * time.Minute)
				step := 20 * time.Minute
				if !live { // one run, everything listed
					clk.Add(until.Sub(simStart))
					step, until = time.Minute, clk.Now().Add(time.Minute)
				}
				rep := windowtest.CrashRuns(t, s, windowtest.CrashConfig{Clock: clk, Step: step, Until: until, ID: fileID})
				if rep.Failed > 0 {
					t.Fatalf("%d runs failed: %v", rep.Failed, rep.LastErr)
				}
				for _, r := range want {
					if n := rep.Delivered[r.ID]; n != 1 {
						t.Errorf("file %s (begin %s, end %s) delivered %d times", r.ID, r.BeginTime, r.EndTime, n)
					}
				}
				if len(rep.Delivered) != len(want) {
					t.Errorf("%d distinct files delivered, want %d", len(rep.Delivered), len(want))
				}
				if c, _ := window.DecodeCursor(rep.Cursor); !live && f == simulator.FilterBegin && c.LookbackSeconds < 2*3600 {
					t.Errorf("cursor %s: no look-back learnt from files of up to 3h", rep.Cursor)
				}
			})
		}
	}
}

// TestMatrixCrashResume runs the reader across every behaviour the
// documents leave open (filter time, list order, inclusive or exclusive
// bounds, files listed late within the settle delay, lying totals) with
// runs killed at random pages and resumed from the last saved cursor.
// Every file is delivered (repeats only after a crash), each run's
// records add up, and a lying total fails runs with an error naming the
// stream, never losing a file before the cursor.
func TestMatrixCrashResume(t *testing.T) {
	type variant struct {
		name string
		cfg  simulator.TaurusDBConfig
		lies bool
	}
	var vs []variant
	for _, f := range []simulator.TaurusDBFilter{simulator.FilterEnd, simulator.FilterBegin, simulator.FilterOverlap} {
		for _, o := range []simulator.ListOrder{simulator.NewestFirst, simulator.OldestFirst, simulator.Unordered} {
			for _, excl := range []bool{false, true} {
				for _, lag := range []time.Duration{0, 4 * time.Minute} {
					vs = append(vs, variant{
						name: fmt.Sprintf("%s/%s/exclusive=%v/lag=%s", f, o, excl, lag),
						cfg:  simulator.TaurusDBConfig{Filter: f, MaxLag: lag, Listing: simulator.Listing{Order: o, StartExclusive: excl, EndExclusive: excl}},
					})
				}
			}
		}
	}
	for _, l := range []simulator.Listing{{TotalExtra: 1}, {TotalExtra: 1_000_000_000_000}, {TotalGrowing: true}} {
		vs = append(vs, variant{name: fmt.Sprintf("lying/extra=%d/growing=%v", l.TotalExtra, l.TotalGrowing), cfg: simulator.TaurusDBConfig{Filter: simulator.FilterBegin, Listing: l}, lies: true})
	}
	for i, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			clk := windowtest.NewClock(simStart)
			cfg := v.cfg
			cfg.Files, cfg.Start, cfg.Interval, cfg.MaxFileSpan = 60, simStart.Add(4*time.Hour), 5*time.Minute, 3*time.Hour
			sim, s := matrixStream(t, cfg, clk, 0)
			want := sim.TaurusDBRecords(simIns)
			rep := windowtest.CrashRuns(t, s, windowtest.CrashConfig{Clock: clk, Step: 20 * time.Minute, Until: want[len(want)-1].VisibleAt.Add(30 * time.Minute),
				Seed: uint64(i), CrashRate: 0.2, Retries: 3, ID: fileID})
			through := rep.Verdict(t, "taurusdb/"+simIns, v.lies)
			for _, r := range want {
				if rep.Delivered[r.ID] == 0 && (!v.lies || r.EndTime.Before(through)) {
					t.Errorf("file %s (begin %s, end %s) never delivered; cursor %s", r.ID, r.BeginTime, r.EndTime, rep.Cursor)
				}
			}
			if rep.Crashes == 0 && !v.lies {
				t.Errorf("no run crashed in %d runs", rep.Runs)
			}
		})
	}
}
