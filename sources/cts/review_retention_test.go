package cts

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

// TestReviewRetentionWarnsEachNewLoss reopens a stream whose checkpoint
// stays older than the traces CTS keeps (its runs fail, or read slower
// than traces age out): each reopening an hour later finds another hour of
// traces gone, and says so; reopening at the same time finds none and
// stays silent.
func TestReviewRetentionWarnsEachNewLoss(t *testing.T) {
	now := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
	clk := windowtest.NewClock(now)
	sim := simulator.New(simulator.Config{ProjectID: simProject, Tokens: []simulator.Token{{Value: simToken}}, Seed: 3, Now: clk.Now,
		CTS: simulator.CTSConfig{Traces: 10, Start: now.Add(-10 * 24 * time.Hour), Interval: time.Hour}})
	var logs bytes.Buffer
	cfg := Config{Enabled: true, TraceTypes: []string{TypeSystem}, Endpoint: "http://cts.sim", PageSize: 50, Lookback: 10 * time.Minute}
	s := NewStreams(cfg, windowtest.InProcess{H: sim, Token: simToken}, "cn-north-4", simProject,
		Options{Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 1000}, Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})[0]
	old := window.Cursor{Through: now.Add(-8 * 24 * time.Hour)}.Encode()
	open := func() {
		t.Helper()
		if _, err := s.Open(context.Background(), old); err != nil {
			t.Fatal(err)
		}
	}
	open()
	open() // the same gap: no second warning
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings for one gap, want 1: %s", n, logs.String())
	}
	clk.Add(time.Hour)
	open()
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 || !strings.Contains(logs.String(), "gap=1h0m0s") {
		t.Errorf("an hour later another hour of traces is gone: want a second warning naming the new 1h gap, got %d: %s", n, logs.String())
	}
}
