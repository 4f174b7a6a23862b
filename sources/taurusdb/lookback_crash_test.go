package taurusdb

import (
	"fmt"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

// TestLearntLookbackSurvivesCrashesWhileCatchingUp: files span up to three
// hours, the configured look-back is shorter, and runs are killed at
// random pages while catching up (every file already listed). A run
// resuming from a cursor in the middle of a window must still reach back
// to the begin of that window's longest file. Before, only files ahead of
// the window taught the look-back; one resumed mid-window lost 25 to 42 of
// 80 files under a begin_time filter (found by an independent review).
func TestLearntLookbackSurvivesCrashesWhileCatchingUp(t *testing.T) {
	for _, f := range []simulator.TaurusDBFilter{simulator.FilterBegin, simulator.FilterOverlap, simulator.FilterEnd} {
		for _, lb := range []time.Duration{20 * time.Minute, time.Hour} {
			for _, rate := range []float64{0, 0.3} {
				extra, seed := int64(0), uint64(0)
				t.Run(fmt.Sprintf("%s/lb=%s/rate=%v", f, lb, rate), func(t *testing.T) {
					clk := windowtest.NewClock(simStart)
					cfg := simulator.TaurusDBConfig{Files: 80, Start: simStart.Add(4 * time.Hour), Interval: 5 * time.Minute, MaxFileSpan: 3 * time.Hour, Filter: f,
						Listing: simulator.Listing{TotalExtra: extra}}
					sim, s := matrixStream(t, cfg, clk, lb)
					want := sim.TaurusDBRecords(simIns)
					until := want[len(want)-1].VisibleAt.Add(30 * time.Minute)
					clk.Add(until.Sub(simStart)) // catching up: everything listed
					rep := windowtest.CrashRuns(t, s, windowtest.CrashConfig{Clock: clk, Step: time.Minute, Until: clk.Now().Add(30 * time.Minute), Seed: seed, CrashRate: rate, Retries: 3, ID: fileID})
					lost := 0
					for _, r := range want {
						if rep.Delivered[r.ID] == 0 {
							lost++
							if lost < 3 {
								t.Errorf("file %s (begin %s, end %s) never delivered; runs %d failed %d last %v", r.ID, r.BeginTime, r.EndTime, rep.Runs, rep.Failed, rep.LastErr)
							}
						}
					}
					if lost > 0 {
						t.Errorf("%d of %d lost", lost, len(want))
					}
				})
			}
		}
	}
}
