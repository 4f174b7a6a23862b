package cts

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

// BenchmarkMap measures the transform stage on CTS traces as the pipeline
// runs it (pipeline.MapRecords, a page at a time), including the decoding
// of the API's page into records: records/s is per core. The traces are
// the simulator's: management traces of several services, a user object,
// request and response bodies, one in ten odd.
func BenchmarkMap(b *testing.B) {
	sim := simulator.New(simulator.Config{ProjectID: goldenProject, Seed: 5, Faults: simulator.Faults{OddRate: 0.1},
		CTS: simulator.CTSConfig{Traces: 10 * MaxPageSize, Start: goldenNow.Add(-24 * time.Hour), Interval: 30 * time.Second}})
	var recs [][]byte
	for _, tr := range sim.CTSTraces(TypeSystem) {
		recs = append(recs, []byte(tr.Raw))
	}
	bodies := ecstest.PageBodies(b, recs, MaxPageSize, func(traces []json.RawMessage) any {
		return map[string]any{"traces": traces, "meta_data": map[string]any{"count": len(traces), "marker": nil}}
	})
	s := goldenStream()
	ecstest.BenchmarkMap(b, s, s.Key(), bodies, MaxPageSize, func(_ int, body []byte) ([][]byte, error) {
		list, _, err := decodePage(body, s.Key(), MaxPageSize, 10*time.Minute)
		return windowtest.Raw(list), err
	})
}
