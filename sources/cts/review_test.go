package cts

import (
	"fmt"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

// reviewRun reads 150 traces generated as cfg says through CrashRuns, with
// page size pageSize and windows of at most maxRecords, and reports every
// trace never delivered and every run that failed.
func reviewRun(t *testing.T, seed uint64, cfg simulator.CTSConfig, faults simulator.Faults, pageSize, maxRecords int, crashRate float64) windowtest.CrashReport {
	t.Helper()
	clk := windowtest.NewClock(simStart)
	cfg.Traces, cfg.Start = 150, simStart.Add(5*time.Minute) // no trace recorded before the stream starts
	if cfg.Interval == 0 {
		cfg.Interval = 20 * time.Second
	}
	sim := simulator.New(simulator.Config{ProjectID: simProject, Tokens: []simulator.Token{{Value: simToken}}, Seed: 7, Now: clk.Now, CTS: cfg, Faults: faults})
	scfg := Config{Enabled: true, TraceTypes: []string{TypeSystem}, Endpoint: "http://cts.sim", PageSize: pageSize, Lookback: 8 * time.Minute}
	s := NewStreams(scfg, windowtest.InProcess{H: sim, Token: simToken}, "cn-north-4", simProject, Options{
		Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: maxRecords},
		Start:  simStart,
		Now:    clk.Now,
	})[0]
	want := sim.CTSTraces(TypeSystem)
	rep := windowtest.CrashRuns(t, s, windowtest.CrashConfig{Clock: clk, Step: 6 * time.Minute, Until: want[len(want)-1].VisibleAt().Add(20 * time.Minute),
		Seed: seed, CrashRate: crashRate, Retries: 20, ID: traceKey})
	rep.Verdict(t, s.Key(), false)
	lost := 0
	for _, tr := range want {
		if rep.Delivered[simKey(tr)] == 0 {
			lost++
			if lost <= 5 {
				t.Errorf("trace %s at %s (recorded %s) never delivered", tr.TraceID, tr.Time.Format(time.RFC3339Nano), tr.RecordTime.Format(time.RFC3339Nano))
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d traces never delivered", lost, len(want))
	}
	return rep
}

func ctsVariants(f func(name string, filter simulator.CTSFilter, marker simulator.CTSMarker, incl bool)) {
	for _, filter := range []simulator.CTSFilter{simulator.CTSFilterTime, simulator.CTSFilterRecordTime} {
		for _, m := range []simulator.CTSMarker{simulator.CTSMarkerBefore, simulator.CTSMarkerAtOrBefore, simulator.CTSMarkerAfter} {
			for _, incl := range []bool{false, true} {
				f(fmt.Sprintf("filter=%d/marker=%d/inclusive=%v", filter, m, incl), filter, m, incl)
			}
		}
	}
}

// TestReviewRecordTimeBeforeTime serves traces whose record_time is up to
// 3 minutes earlier than their time (the reporting service's clock ahead
// of CTS's), in dense seconds and shared milliseconds: each is delivered
// under every filter and marker.
func TestReviewRecordTimeBeforeTime(t *testing.T) {
	i := uint64(0)
	ctsVariants(func(name string, filter simulator.CTSFilter, marker simulator.CTSMarker, incl bool) {
		i++
		seed := i
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, maxRecords := range []int{100, 1000} {
				reviewRun(t, seed, simulator.CTSConfig{Filter: filter, Marker: marker, FromInclusive: incl, ToInclusive: incl,
					Skew: 3 * time.Minute, MaxLag: 2 * time.Minute, SameSecond: 30, SameMilli: 3}, simulator.Faults{}, 10, maxRecords, 0.2)
			}
		})
	})
}
