package dbss

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
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

// TestMatrixCrashResumeSQLAndAlarm runs the SQL audit and alarm readers
// across the behaviours the SDK leaves open (each kind's variants, crossed
// with list order, inclusive or exclusive bounds, late and dense records
// for the SQL audit), runs killed at random pages and resumed from the
// last saved cursor. Every record is delivered (repeats only after a
// crash), each run's records add up, and a lying total fails runs with an
// error naming the stream without losing a record before the cursor.
func TestMatrixCrashResumeSQLAndAlarm(t *testing.T) {
	type variant struct {
		name string
		kind Kind
		cfg  simulator.DBSSConfig
		lies bool
	}
	var vs []variant
	for _, o := range []struct {
		name    string
		ignored bool
		order   simulator.ListOrder
	}{{"time_order-honoured", false, 0}, {"newest-first", true, simulator.NewestFirst}, {"unordered", true, simulator.Unordered}} {
		for _, excl := range []bool{false, true} {
			for _, lag := range []time.Duration{0, 4 * time.Minute} {
				for _, dense := range []int{0, 30} {
					vs = append(vs, variant{
						name: fmt.Sprintf("sql/%s/exclusive=%v/lag=%s/same-second=%d", o.name, excl, lag, dense),
						kind: SQL,
						cfg: simulator.DBSSConfig{MaxLag: lag, SameSecond: dense,
							Listing:  simulator.Listing{Order: o.order, StartExclusive: excl, EndExclusive: excl},
							Variants: simulator.DBSSVariants{IgnoreTimeOrder: o.ignored}},
					})
				}
			}
		}
	}
	// In name order: a variant's crash points follow its index.
	sqls := sqlVariants()
	for _, name := range slices.Sorted(maps.Keys(sqls)) {
		vs = append(vs, variant{name: "sql/" + name, kind: SQL, cfg: sqls[name]})
	}
	for _, o := range []simulator.ListOrder{simulator.NewestFirst, simulator.OldestFirst, simulator.Unordered} {
		for _, excl := range []bool{false, true} {
			vs = append(vs, variant{
				name: fmt.Sprintf("alarm/%s/exclusive=%v/lag=4m/status-changes", o, excl),
				kind: Alarm,
				cfg: simulator.DBSSConfig{MaxLag: 4 * time.Minute, Listing: simulator.Listing{Order: o, StartExclusive: excl, EndExclusive: excl},
					Variants: simulator.DBSSVariants{AlarmStatusChanges: true}},
			})
		}
	}
	alarms := alarmVariants()
	for _, name := range slices.Sorted(maps.Keys(alarms)) {
		vs = append(vs, variant{name: "alarm/" + name, kind: Alarm, cfg: alarms[name]})
	}
	for _, k := range []Kind{SQL, Alarm} {
		for _, l := range []simulator.Listing{{TotalExtra: 1}, {TotalExtra: 1_000_000_000_000}, {TotalGrowing: true}} {
			vs = append(vs, variant{name: fmt.Sprintf("%s/lying/extra=%d/growing=%v", k, l.TotalExtra, l.TotalGrowing), kind: k, cfg: simulator.DBSSConfig{Listing: l}, lies: true})
		}
	}
	// A total too small: the alarm list's pages that hold more are taken
	// (nothing is missing); the SQL list, whose repeats cannot show by id,
	// refuses records listed at or after the total.
	vs = append(vs,
		variant{name: "alarm/total-too-small", kind: Alarm, cfg: simulator.DBSSConfig{Variants: simulator.DBSSVariants{TotalShort: 3}}},
		variant{name: "sql/lying/total-too-small", kind: SQL, cfg: simulator.DBSSConfig{Variants: simulator.DBSSVariants{TotalShort: 15}}, lies: true})
	for i, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			clk := windowtest.NewClock(simStart)
			cfg := v.cfg
			cfg.Instances, cfg.Start = []string{simIns}, simStart.Add(time.Minute)
			var id func([]byte) (string, error)
			pageSize := 10
			if v.kind == SQL {
				cfg.SQLRecords, cfg.SQLInterval = 150, 20*time.Second
				// Byte-identical copies are one record to a sink.
				id = func(raw []byte) (string, error) { return string(raw), nil }
			} else {
				// Small pages: enough of them for crashes to hit each run.
				cfg.Alarms, cfg.AlarmInterval, pageSize = 200, 15*time.Second, 5
				id = alarmIdentity
			}
			sim, s := kindStream(t, cfg, clk, v.kind, pageSize)
			type want struct {
				key string
				at  time.Time
			}
			var wants []want
			var last time.Time
			if v.kind == SQL {
				for _, r := range sim.DBSSSQLRecords(simIns) {
					wants, last = append(wants, want{r.Raw, r.Time}), r.VisibleAt
				}
			} else {
				for _, al := range sim.DBSSAlarms(simIns) {
					key, err := alarmIdentity([]byte(sim.DBSSAlarmJSON(al, al.Time)))
					if err != nil {
						t.Fatal(err)
					}
					wants, last = append(wants, want{key, al.Time}), al.VisibleAt
				}
			}
			rep := windowtest.CrashRuns(t, s, windowtest.CrashConfig{Clock: clk, Step: 6 * time.Minute, Until: last.Add(20 * time.Minute),
				Seed: uint64(i), CrashRate: 0.2, Retries: 3, ID: id})
			through := rep.Verdict(t, s.Key(), v.lies)
			for _, w := range wants {
				if rep.Delivered[w.key] == 0 && (!v.lies || w.at.Before(through)) {
					t.Errorf("record %s at %s never delivered; cursor %s", w.key, w.at, rep.Cursor)
				}
			}
			if rep.DeadLettered > 0 {
				t.Errorf("%d records dead-lettered", rep.DeadLettered)
			}
			if rep.Crashes == 0 && !v.lies {
				t.Errorf("no run crashed in %d runs (fetched %d)", rep.Runs, rep.Fetched)
			}
		})
	}
}
