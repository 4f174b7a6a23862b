package cts

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

const (
	simProject = "0a6c3d5e9f1b4c2d8e7f6a5b4c3d2e1f"
	simToken   = "cts-test-token"
)

var simStart = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// traceKey identifies a delivered trace: its trace_id and request_id,
// since the trace ids of one variant are not unique.
func traceKey(raw []byte) (string, error) {
	var k struct {
		ID  json.RawMessage `json:"trace_id"`
		Req string          `json:"request_id"`
	}
	err := json.Unmarshal(raw, &k)
	return string(k.ID) + "/" + k.Req, err
}

func simKey(t simulator.CTSTrace) string {
	switch t.Malformed {
	case simulator.MalformedIDBool:
		return "true/" + t.RequestID
	case simulator.MalformedNoID:
		return "/" + t.RequestID
	}
	return fmt.Sprintf("%q/%s", t.TraceID, t.RequestID)
}

// TestMatrixCrashResume runs the reader across every behaviour the SDK and
// the API page leave open (see docs/api-assumptions.md, "CTS"): the time
// from and to select by (time or record_time), what next resumes at
// (strictly before the marked trace, at or before it, after it in the
// list), inclusive or exclusive bounds, traces recorded minutes after they
// happened, dense seconds and milliseconds shared across page edges, a
// marker on a last full page, pages not in order, trace ids shared by two
// traces. Runs are killed at random pages and resumed from the last saved
// cursor. Every trace is delivered (repeats only after a crash) and each
// run's records add up.
func TestMatrixCrashResume(t *testing.T) {
	type variant struct {
		name   string
		cfg    simulator.CTSConfig
		faults simulator.Faults
	}
	var vs []variant
	for _, f := range []simulator.CTSFilter{simulator.CTSFilterTime, simulator.CTSFilterRecordTime} {
		for _, m := range []simulator.CTSMarker{simulator.CTSMarkerBefore, simulator.CTSMarkerAtOrBefore, simulator.CTSMarkerAfter} {
			for _, incl := range []bool{false, true} {
				for _, lag := range []time.Duration{0, 7 * time.Minute} {
					for _, dense := range [][2]int{{0, 0}, {30, 3}} {
						vs = append(vs, variant{
							name: fmt.Sprintf("filter=%d/marker=%d/inclusive=%v/lag=%s/same-second=%d/same-ms=%d", f, m, incl, lag, dense[0], dense[1]),
							cfg: simulator.CTSConfig{Filter: f, Marker: m, FromInclusive: incl, ToInclusive: incl,
								MaxLag: lag, SameSecond: dense[0], SameMilli: dense[1]},
						})
					}
				}
			}
		}
	}
	for _, c := range []simulator.CTSConfig{
		{ShufflePages: true, SameSecond: 30, SameMilli: 3},
		{ShufflePages: true, Marker: simulator.CTSMarkerAfter, SameSecond: 30, SameMilli: 3},
		{MarkerOnLastPage: true, SameSecond: 30},
		{DuplicateIDs: true, SameSecond: 30, SameMilli: 3},
		{FromInclusive: true, SameMilli: 8, SameSecond: 24},
		{SameMilli: 10, SameSecond: 50, Marker: simulator.CTSMarkerBefore},
	} {
		vs = append(vs, variant{name: fmt.Sprintf("%+v", c), cfg: c})
	}
	vs = append(vs, variant{name: "hostile", cfg: simulator.CTSConfig{SameSecond: 30, SameMilli: 3, MaxLag: 7 * time.Minute},
		faults: simulator.Faults{MalformedRate: 0.05, OddRate: 0.2, ThrottleRate: 0.1, ServerErrorRate: 0.05}})
	for i, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			clk := windowtest.NewClock(simStart)
			cfg := v.cfg
			cfg.Traces, cfg.Start, cfg.Interval = 150, simStart.Add(time.Minute), 20*time.Second
			sim := simulator.New(simulator.Config{ProjectID: simProject, Tokens: []simulator.Token{{Value: simToken}}, Seed: 7, Now: clk.Now, CTS: cfg, Faults: v.faults})
			scfg := Config{Enabled: true, TraceTypes: []string{TypeSystem}, Endpoint: "http://cts.sim", PageSize: 10, Lookback: 8 * time.Minute}
			s := NewStreams(scfg, windowtest.InProcess{H: sim, Token: simToken}, "cn-north-4", simProject, Options{
				Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 100},
				Start:  simStart,
				Now:    clk.Now,
			})[0]
			want := sim.CTSTraces(TypeSystem)
			rep := windowtest.CrashRuns(t, s, windowtest.CrashConfig{Clock: clk, Step: 6 * time.Minute, Until: want[len(want)-1].VisibleAt().Add(20 * time.Minute),
				Seed: uint64(i), CrashRate: 0.2, Retries: 20, ID: traceKey})
			rep.Verdict(t, s.Key(), false)
			keys := map[string]bool{}
			for _, tr := range want {
				keys[simKey(tr)] = true
				if rep.Delivered[simKey(tr)] == 0 {
					t.Errorf("trace %s at %s (recorded %s) never delivered; cursor %s", tr.TraceID, tr.Time.Format(time.RFC3339Nano), tr.RecordTime.Format(time.RFC3339Nano), rep.Cursor)
				}
			}
			if len(rep.Delivered) != len(keys) {
				t.Errorf("delivered %d distinct traces, the simulator has %d", len(rep.Delivered), len(keys))
			}
			if len(keys) != len(want) {
				t.Fatalf("the simulator's traces are not told apart by trace_id and request_id")
			}
			if rep.Crashes == 0 {
				t.Errorf("no run crashed in %d runs", rep.Runs)
			}
		})
	}
}
