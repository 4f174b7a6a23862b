package taurusdb

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
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
	simToken   = "taurus-test-token"
	simIns     = "3d39c18788b54a919bab633874c159dfin07"
)

var simStart = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func startSim(t *testing.T, cfg simulator.TaurusDBConfig, clk *windowtest.Clock, pageSize int) (*simulator.Server, *Stream, string) {
	t.Helper()
	sim := simulator.New(simulator.Config{
		ProjectID: simProject,
		Tokens:    []simulator.Token{{Value: simToken}},
		Seed:      42,
		Now:       clk.Now,
		TaurusDB:  cfg,
	})
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
	win := window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 100}
	return sim, Streams(scfg, win, api, "cn-north-4", simProject, simStart, clk.Now)[0], base
}

func TestEveryFileOnceOldestFirstWithLateFiles(t *testing.T) {
	clk := windowtest.NewClock(simStart)
	cfg := simulator.TaurusDBConfig{Instances: []string{simIns}, Files: 400, Start: simStart.Add(time.Minute), Interval: time.Minute, MaxLag: 4 * time.Minute}
	sim, s, _ := startSim(t, cfg, clk, 7)
	want := sim.TaurusDBRecords(simIns)
	last := want[len(want)-1].VisibleAt
	sameSecond := 0
	for i := 1; i < len(want); i++ {
		if want[i].EndTime.Equal(want[i-1].EndTime) {
			sameSecond++
		}
	}
	if sameSecond < 20 {
		t.Fatalf("only %d files share a second with the one before", sameSecond)
	}

	seen, cursor, runs := windowtest.DrainEvery(t, s, clk, 7*time.Minute, last.Add(10*time.Minute), func(raw []byte) (string, time.Time, error) {
		var k struct {
			ID      string `json:"id"`
			EndTime string `json:"end_time"`
		}
		if err := json.Unmarshal(raw, &k); err != nil {
			return "", time.Time{}, err
		}
		end, err := time.Parse("2006-01-02T15:04:05-0700", k.EndTime)
		return k.ID, end, err
	})
	for _, r := range want {
		if !seen[r.ID] {
			t.Errorf("file %s (end %s, listed from %s) never delivered", r.ID, r.EndTime, r.VisibleAt)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("delivered %d files, want %d (in %d runs)", len(seen), len(want), runs)
	}
	if !strings.Contains(string(cursor), `"through":"`) {
		t.Errorf("cursor %s", cursor)
	}
}

func TestSimulatorRejectsUnescapedPlus(t *testing.T) {
	clk := windowtest.NewClock(simStart.Add(time.Hour))
	_, _, base := startSim(t, simulator.TaurusDBConfig{Instances: []string{simIns}, Files: 3, Start: simStart}, clk, 10)
	api := huaweiapi.NewClient(huaweiapi.Config{ProjectID: simProject, MaxRPS: 1e6, Timeout: 10 * time.Second, MaxBodyBytes: 1 << 20}, huaweiapi.TokenAuth{Token: simToken})
	q := url.Values{"start_time": {"2025-06-01T08:00:00+0800"}, "end_time": {"2025-06-01T09:00:00+0800"}}
	body, err := api.Do(context.Background(), huaweiapi.Request{Method: "GET", Endpoint: base, Path: "/v3/" + simProject + "/instances/" + simIns + "/audit-logs", Query: q})
	if err != nil {
		t.Fatalf("escaped '+' refused: %v", err)
	}
	if !strings.Contains(string(body), `"total_count"`) {
		t.Fatalf("body %s", body)
	}
	for _, bad := range []url.Values{
		{"start_time": {"2025-06-01T08:00:00Z"}, "end_time": {"2025-06-01T09:00:00+0800"}},
		{"start_time": {"2025-06-01T08:00:00+0800"}},
		{"start_time": {"2025-05-01T08:00:00+0800"}, "end_time": {"2025-06-01T09:00:00+0800"}},
		{"start_time": {"2025-06-01T08:00:00+0800"}, "end_time": {"2025-06-01T09:00:00+0800"}, "limit": {"101"}},
		{"start_time": {"2025-06-01T08:00:00+0800"}, "end_time": {"2025-06-01T09:00:00+0800"}, "offset": {"-1"}},
	} {
		_, err := api.Do(context.Background(), huaweiapi.Request{Method: "GET", Endpoint: base, Path: "/v3/" + simProject + "/instances/" + simIns + "/audit-logs", Query: bad})
		var ae *huaweiapi.APIError
		if !errors.As(err, &ae) || ae.Status != 400 || !pipeline.IsPermanent(err) {
			t.Errorf("%v: got %v, want a permanent 400", bad, err)
		}
	}
}
