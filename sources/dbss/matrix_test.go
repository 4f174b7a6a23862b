package dbss

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

func logID(raw []byte) (string, error) {
	var k struct {
		ID string `json:"id"`
	}
	err := json.Unmarshal(raw, &k)
	return k.ID, err
}

// TestMatrixCrashResume runs the reader across every behaviour the
// documents leave open (list order, inclusive or exclusive bounds, records
// listed late within the settle delay, dense seconds, lying totals, the
// newer path unavailable) with runs killed at random pages and resumed
// from the last saved cursor. Every record is delivered (repeats only
// after a crash), each run's records add up, and a lying total fails runs
// with an error naming the stream, never losing a record before the
// cursor.
func TestMatrixCrashResume(t *testing.T) {
	type variant struct {
		name string
		cfg  simulator.DBSSConfig
		lies bool
	}
	var vs []variant
	for _, o := range []simulator.ListOrder{simulator.NewestFirst, simulator.OldestFirst, simulator.Unordered} {
		for _, excl := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for _, lag := range []time.Duration{0, 4 * time.Minute} {
				for _, dense := range []int{0, 30} {
					vs = append(vs, variant{
						name: fmt.Sprintf("%s/start-exclusive=%v/end-exclusive=%v/lag=%s/same-second=%d", o, excl[0], excl[1], lag, dense),
						cfg:  simulator.DBSSConfig{MaxLag: lag, SameSecond: dense, Listing: simulator.Listing{Order: o, StartExclusive: excl[0], EndExclusive: excl[1]}},
					})
				}
			}
		}
	}
	vs = append(vs, variant{name: "current-path-403", cfg: simulator.DBSSConfig{CurrentPathStatus: 403}})
	for _, l := range []simulator.Listing{{TotalExtra: 1}, {TotalExtra: 1_000_000_000_000}, {TotalGrowing: true}} {
		vs = append(vs, variant{name: fmt.Sprintf("lying/extra=%d/growing=%v", l.TotalExtra, l.TotalGrowing), cfg: simulator.DBSSConfig{Listing: l}, lies: true})
	}
	for i, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			clk := windowtest.NewClock(simStart)
			cfg := v.cfg
			cfg.Instances, cfg.Records, cfg.Start, cfg.Interval = []string{simIns}, 150, simStart.Add(time.Minute), 20*time.Second
			sim := simulator.New(simulator.Config{ProjectID: simProject, Tokens: []simulator.Token{{Value: simToken}}, Seed: 7, Now: clk.Now, DBSS: cfg})
			scfg := Config{Instances: cfg.Instances, Endpoint: "http://dbss.sim", PageSize: 10}
			s := NewStreams(scfg, windowtest.InProcess{H: sim, Token: simToken}, "cn-north-4", simProject, Options{
				Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 100},
				Start:  simStart,
				Now:    clk.Now,
			})[0]
			want := sim.DBSSRecords(simIns)
			rep := windowtest.CrashRuns(t, s, windowtest.CrashConfig{Clock: clk, Step: 6 * time.Minute, Until: want[len(want)-1].VisibleAt.Add(20 * time.Minute),
				Seed: uint64(i), CrashRate: 0.2, Retries: 3, ID: logID})
			through := rep.Verdict(t, "dbss/"+simIns, v.lies)
			for _, r := range want {
				if rep.Delivered[r.ID] == 0 && (!v.lies || r.Time.Before(through)) {
					t.Errorf("record %s at %s never delivered; cursor %s", r.ID, r.Time, rep.Cursor)
				}
			}
			if rep.Crashes == 0 && !v.lies {
				t.Errorf("no run crashed in %d runs", rep.Runs)
			}
		})
	}
}
