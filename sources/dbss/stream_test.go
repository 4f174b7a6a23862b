package dbss

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

const (
	simProject = "0a6c3d5e9f1b4c2d8e7f6a5b4c3d2e1f"
	simToken   = "dbss-test-token"
	simIns     = "dbss-ins-1"
)

var simStart = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func startSim(t *testing.T, cfg simulator.DBSSConfig, clk *testClock, pageSize int) (*simulator.Server, *Stream) {
	t.Helper()
	sim := simulator.New(simulator.Config{ProjectID: simProject, Tokens: []simulator.Token{{Value: simToken}}, Seed: 7, Now: clk.now, DBSS: cfg})
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
	return sim, Streams(scfg, window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 100}, api, "cn-north-4", simProject, simStart, clk.now)[0]
}

func drain(t *testing.T, s *Stream, cursor []byte) ([][]byte, []byte) {
	t.Helper()
	rd, err := s.Open(context.Background(), cursor)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for range 100000 {
		p, err := rd.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out, cursor
		}
		if err != nil {
			t.Fatalf("%v", err)
		}
		out = append(out, p.Records...)
		cursor = p.Cursor
	}
	t.Fatal("no io.EOF")
	return nil, nil
}

// readEverything runs the stream every few minutes until all records were
// listed and settled, checking each is delivered once, oldest first.
func readEverything(t *testing.T, sim *simulator.Server, s *Stream, clk *testClock) {
	t.Helper()
	want := sim.DBSSRecords(simIns)
	last := want[len(want)-1].VisibleAt
	seen := map[string]bool{}
	var prev time.Time
	var cursor []byte
	for clk.now().Before(last.Add(10 * time.Minute)) {
		clk.add(6 * time.Minute)
		recs, cur := drain(t, s, cursor)
		cursor = cur
		for _, raw := range recs {
			var k struct{ ID, Time string }
			if err := json.Unmarshal(raw, &k); err != nil {
				t.Fatal(err)
			}
			ts, err := time.Parse(bodyLayout, k.Time)
			if err != nil {
				t.Fatal(err)
			}
			if ts.Before(prev) {
				t.Fatalf("record %s at %s after one at %s", k.ID, ts, prev)
			}
			prev = ts
			if seen[k.ID] {
				t.Fatalf("record %s delivered twice", k.ID)
			}
			seen[k.ID] = true
		}
	}
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
	clk := &testClock{t: simStart}
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
	clk := &testClock{t: simStart}
	sim, s := startSim(t, simulator.DBSSConfig{Instances: []string{simIns}, Records: 80, Start: simStart.Add(time.Minute), Interval: 30 * time.Second, CurrentPathMissing: true}, clk, 10)
	readEverything(t, sim, s, clk)
	if !s.UsesLegacyPath() {
		t.Fatal("the stream did not remember the fallback")
	}
	before := sim.Stats().ClientErrors
	clk.add(time.Hour)
	drain(t, s, nil)
	if after := sim.Stats().ClientErrors; after != before {
		t.Errorf("%d more 404s after the fallback was remembered", after-before)
	}
}

func TestBothPathsGoneIsPermanent(t *testing.T) {
	clk := &testClock{t: simStart.Add(time.Hour)}
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
