package dbss

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

const (
	simProject = "0a6c3d5e9f1b4c2d8e7f6a5b4c3d2e1f"
	simToken   = "dbss-test-token"
	simIns     = "dbss-ins-1"
)

var simStart = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func startSim(t *testing.T, cfg simulator.DBSSConfig, clk *windowtest.Clock, pageSize int) (*simulator.Server, *Stream) {
	t.Helper()
	sim := simulator.New(simulator.Config{ProjectID: simProject, Tokens: []simulator.Token{{Value: simToken}}, Seed: 7, Now: clk.Now, DBSS: cfg})
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	api := huaweiapi.NewClient(huaweiapi.Config{ProjectID: simProject, MaxRPS: 1e6, Timeout: 10 * time.Second, MaxBodyBytes: 16 << 20}, huaweiapi.TokenAuth{Token: simToken})
	scfg := Config{Instances: cfg.Instances, Endpoint: base, PageSize: pageSize}
	if err := scfg.Validate("cn-north-4"); err != nil {
		t.Fatal(err)
	}
	return sim, Streams(scfg, window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 100}, api, "cn-north-4", simProject, simStart, clk.Now)[0]
}

// readEverything runs the stream every few minutes until all records were
// listed and settled, checking each is delivered once, oldest first.
func readEverything(t *testing.T, sim *simulator.Server, s *Stream, clk *windowtest.Clock) {
	t.Helper()
	want := sim.DBSSRecords(simIns)
	last := want[len(want)-1].VisibleAt
	seen, _, _ := windowtest.DrainEvery(t, s, clk, 6*time.Minute, last.Add(10*time.Minute), func(raw []byte) (string, time.Time, error) {
		var k struct{ ID, Time string }
		if err := json.Unmarshal(raw, &k); err != nil {
			return "", time.Time{}, err
		}
		ts, err := time.Parse(bodyLayout, k.Time)
		return k.ID, ts, err
	})
	for _, r := range want {
		if !seen[r.ID] {
			t.Errorf("record %s at %s never delivered", r.ID, r.Time)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("delivered %d, want %d", len(seen), len(want))
	}
}

func TestEveryRecordOnceOldestFirstWithLateRecords(t *testing.T) {
	clk := windowtest.NewClock(simStart)
	sim, s := startSim(t, simulator.DBSSConfig{Instances: []string{simIns}, Records: 500, Start: simStart.Add(time.Minute), Interval: 20 * time.Second, MaxLag: 4 * time.Minute}, clk, 9)
	zh, en := 0, 0
	for _, r := range sim.DBSSRecords(simIns) {
		switch r.Action {
		case "创建", "删除", "更新", "下载":
			zh++
		default:
			en++
		}
	}
	if zh == 0 || en == 0 {
		t.Fatalf("simulator served %d Chinese and %d English actions; want both", zh, en)
	}
	readEverything(t, sim, s, clk)
	if s.UsesLegacyPath() {
		t.Error("fell back to the retiring path although the current one works")
	}
}

func TestFallsBackToLegacyPathOn404(t *testing.T) {
	clk := windowtest.NewClock(simStart)
	sim, s := startSim(t, simulator.DBSSConfig{Instances: []string{simIns}, Records: 80, Start: simStart.Add(time.Minute), Interval: 30 * time.Second, CurrentPathMissing: true}, clk, 10)
	readEverything(t, sim, s, clk)
	if !s.UsesLegacyPath() {
		t.Fatal("the stream did not remember the fallback")
	}
	before := sim.Stats().ClientErrors
	clk.Add(time.Hour)
	windowtest.Drain(t, s, nil)
	if after := sim.Stats().ClientErrors; after != before {
		t.Errorf("%d more 404s after the fallback was remembered", after-before)
	}
}

func TestBothPathsGoneIsPermanent(t *testing.T) {
	clk := windowtest.NewClock(simStart.Add(time.Hour))
	_, s := startSim(t, simulator.DBSSConfig{Instances: []string{simIns}, Records: 5, Start: simStart, CurrentPathMissing: true, LegacyPathGone: true}, clk, 10)
	rd, err := s.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rd.Next(context.Background())
	if !pipeline.IsPermanent(err) {
		t.Fatalf("got %v, want a permanent 404", err)
	}
}

// TestFallsBackWhenCurrentPathCannotServe: the newer path may be missing
// (404), not granted (403), not accept our request (400), or not publish
// the method (405, 501) in a region; each time the documented path is
// used instead, and remembered. Only 404 fell back before.
func TestFallsBackWhenCurrentPathCannotServe(t *testing.T) {
	for _, status := range []int{400, 403, 404, 405, 501} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			clk := windowtest.NewClock(simStart)
			sim, s := startSim(t, simulator.DBSSConfig{Instances: []string{simIns}, Records: 60, Start: simStart.Add(time.Minute), Interval: 30 * time.Second, CurrentPathStatus: status}, clk, 10)
			readEverything(t, sim, s, clk)
			if !s.UsesLegacyPath() {
				t.Fatal("the stream did not remember the fallback")
			}
		})
	}
}
