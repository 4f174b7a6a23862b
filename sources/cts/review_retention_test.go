package cts

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
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

// tickingDoer moves the clock by step before each request: a listing
// takes time, during which CTS drops the traces that age out.
type tickingDoer struct {
	d    windowtest.InProcess
	clk  *windowtest.Clock
	step time.Duration
}

func (d tickingDoer) Do(ctx context.Context, r huaweiapi.Request) ([]byte, error) {
	d.clk.Add(d.step)
	return d.d.Do(ctx, r)
}

// TestReviewRetentionEdgeWithAgingMarkers resumes a stream from a
// checkpoint eight days old, through an API that refuses a marker naming a
// trace it no longer keeps (CTSConfig.KeptMarkersOnly), while every
// request takes 30 seconds: a run whose marker aged out fails (400), but
// the next starts at the new oldest trace, and the runs get past the
// retention edge instead of failing there for good.
func TestReviewRetentionEdgeWithAgingMarkers(t *testing.T) {
	now := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
	clk := windowtest.NewClock(now)
	sim := simulator.New(simulator.Config{ProjectID: simProject, Tokens: []simulator.Token{{Value: simToken}}, Seed: 3, Now: clk.Now,
		CTS: simulator.CTSConfig{Traces: 3000, Start: now.Add(-7*24*time.Hour - time.Hour), Interval: 2 * time.Second, KeptMarkersOnly: true}})
	cfg := Config{Enabled: true, TraceTypes: []string{TypeSystem}, Endpoint: "http://cts.sim", PageSize: 20, Lookback: 10 * time.Minute}
	s := NewStreams(cfg, tickingDoer{windowtest.InProcess{H: sim, Token: simToken}, clk, 30 * time.Second}, "cn-north-4", simProject,
		Options{Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 1000}, Now: clk.Now})[0]
	cursor := window.Cursor{Through: now.Add(-8 * 24 * time.Hour)}.Encode()
	var lastErr error
	failed := 0
	for range 10 {
		rd, err := s.Open(context.Background(), cursor)
		if err != nil {
			t.Fatal(err)
		}
		for {
			p, err := rd.Next(context.Background())
			if err != nil {
				if !errors.Is(err, io.EOF) {
					failed++
					lastErr = err
				}
				break
			}
			cursor = p.Cursor
		}
	}
	c, err := window.DecodeCursor(cursor)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d runs failed (last: %v); cursor %s, retention edge %s", failed, lastErr, c.Through, clk.Now().Add(-Retention))
	if edge := clk.Now().Add(-Retention + time.Hour); c.Through.Before(edge) {
		t.Errorf("after 10 runs (%d failed, last: %v) the cursor is at %s, still within an hour of the retention edge %s", failed, lastErr, c.Through, clk.Now().Add(-Retention))
	}
}
