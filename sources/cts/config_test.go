package cts

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	ctsregion "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/cts/v3/region"

	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

// TestEndpointsMatchSDK compares Endpoint with the SDK's CTS region table
// for every region it lists, .eu (eu-west-101) included.
func TestEndpointsMatchSDK(t *testing.T) {
	regions := []string{"af-south-1", "cn-north-4", "cn-north-1", "cn-east-2", "cn-east-3", "cn-south-1", "cn-south-2",
		"cn-southwest-2", "ap-southeast-2", "ap-southeast-1", "ap-southeast-3", "cn-north-2", "cn-north-9", "cn-south-4",
		"ru-northwest-2", "la-south-2", "sa-brazil-1", "la-north-2", "na-mexico-1", "eu-west-101", "ap-southeast-4",
		"ap-southeast-5", "af-north-1", "tr-west-1", "cn-east-5", "cn-north-12", "cn-southwest-3", "cn-north-11", "cn-east-4",
		"me-east-1", "eu-west-0", "my-kualalumpur-1", "ru-moscow-1", "ae-ad-1"}
	for _, r := range regions {
		reg, err := ctsregion.SafeValueOf(r)
		if err != nil {
			t.Fatalf("the SDK does not know %s: %v", r, err)
		}
		if got, want := Endpoint(r), reg.Endpoints[0]; got != want {
			t.Errorf("Endpoint(%s) = %s, the SDK says %s", r, got, want)
		}
	}
	if got := Endpoint("eu-west-101"); got != "https://cts.eu-west-101.myhuaweicloud.eu" {
		t.Errorf("eu-west-101: %s", got)
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Enabled: true, TraceTypes: []string{"system", "data"}, PageSize: 200, Lookback: 10 * time.Minute}
	if err := ok.Validate("cn-north-4", "p1"); err != nil {
		t.Fatal(err)
	}
	off := Config{TraceTypes: []string{"system"}, PageSize: 200}
	if err := off.Validate("", ""); err != nil || off.Configured() {
		t.Errorf("disabled: %v, configured %v", err, off.Configured())
	}
	for _, tc := range []struct {
		mod             func(*Config)
		region, project string
		want            string
	}{
		{func(c *Config) { c.TraceTypes = []string{"management"} }, "cn-north-4", "p", "HWCAUDIT_CTS_TRACE_TYPES"},
		{func(c *Config) { c.TraceTypes = []string{"system", "system"} }, "cn-north-4", "p", "HWCAUDIT_CTS_TRACE_TYPES"},
		{func(c *Config) { c.TraceTypes = nil }, "cn-north-4", "p", "HWCAUDIT_CTS_TRACE_TYPES"},
		{func(c *Config) { c.PageSize = 201 }, "cn-north-4", "p", "HWCAUDIT_CTS_PAGE_SIZE"},
		{func(c *Config) { c.PageSize = 0 }, "cn-north-4", "p", "HWCAUDIT_CTS_PAGE_SIZE"},
		{func(c *Config) { c.Lookback = -time.Second }, "cn-north-4", "p", "HWCAUDIT_CTS_LOOKBACK"},
		{func(c *Config) { c.Lookback = 13 * time.Hour }, "cn-north-4", "p", "HWCAUDIT_CTS_LOOKBACK"},
		{func(c *Config) { c.Endpoint = "ftp://x" }, "cn-north-4", "p", "HWCAUDIT_CTS_ENDPOINT"},
		{func(c *Config) { c.Endpoint = "https://user:secret@cts.example" + string(rune(0x7f)) }, "cn-north-4", "p", "HWCAUDIT_CTS_ENDPOINT"},
		{func(*Config) {}, "", "p", "HWCAUDIT_REGION"},
		{func(*Config) {}, "cn-north-4", "", "HWCAUDIT_PROJECT_ID"},
	} {
		c := ok
		tc.mod(&c)
		err := c.Validate(tc.region, tc.project)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
			t.Errorf("%+v: %v, want an error naming %s", c, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error shows the endpoint's password: %v", err)
		}
	}
	if got := (&Config{Endpoint: "https://cts.example/"}).endpoint("x"); got != "https://cts.example" {
		t.Errorf("endpoint override: %s", got)
	}
}

// TestRetention opens streams whose checkpoint or start time is older
// than the seven days CTS keeps: they start at the oldest trace kept,
// deliver every trace still listed, and warn once per stream, naming it
// and the gap; a stream within the seven days neither moves nor warns.
func TestRetention(t *testing.T) {
	now := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
	clk := windowtest.NewClock(now)
	sim := simulator.New(simulator.Config{ProjectID: simProject, Tokens: []simulator.Token{{Value: simToken}}, Seed: 3, Now: clk.Now,
		CTS: simulator.CTSConfig{Traces: 400, Start: now.Add(-10 * 24 * time.Hour), Interval: 50 * time.Minute}})
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	newStream := func(start time.Time) *Stream {
		cfg := Config{Enabled: true, TraceTypes: []string{TypeSystem}, Endpoint: "http://cts.sim", PageSize: 50, Lookback: 10 * time.Minute}
		s := NewStreams(cfg, windowtest.InProcess{H: sim, Token: simToken}, "cn-north-4", simProject,
			Options{Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 1000}, Start: start, Now: clk.Now})[0]
		s.SetLogger(log)
		return s
	}
	oldest := now.Add(-Retention)
	var kept int
	for _, tr := range sim.CTSTraces(TypeSystem) {
		if !tr.RecordTime.Before(oldest.Add(time.Second)) && tr.RecordTime.Before(now.Add(-5*time.Minute)) {
			kept++
		}
	}

	t.Run("start time", func(t *testing.T) {
		logs.Reset()
		s := newStream(now.Add(-9 * 24 * time.Hour))
		recs, cursor := windowtest.Drain(t, s, nil)
		if len(recs) != kept {
			t.Errorf("delivered %d traces, %d are kept", len(recs), kept)
		}
		if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), s.Key()) || !strings.Contains(logs.String(), "gap=48h0m") {
			t.Errorf("want one warning naming %s and the 48h gap, got %q", s.Key(), logs.String())
		}
		if from, to := s.Gap(); !from.Equal(now.Add(-9*24*time.Hour)) || !to.After(from) {
			t.Errorf("Gap() = %s..%s", from, to)
		}
		// Reopened from its cursor: within the seven days, no warning.
		logs.Reset()
		windowtest.Drain(t, s, cursor)
		if logs.Len() != 0 {
			t.Errorf("warned again: %s", logs.String())
		}
	})
	t.Run("old checkpoint warns once", func(t *testing.T) {
		logs.Reset()
		s := newStream(now.Add(-time.Hour))
		old := window.Cursor{Through: now.Add(-8 * 24 * time.Hour)}.Encode()
		recs, _ := windowtest.Drain(t, s, old)
		windowtest.Drain(t, s, old) // the same old checkpoint again: no second warning
		if len(recs) != kept {
			t.Errorf("delivered %d traces, %d are kept", len(recs), kept)
		}
		if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "from=checkpoint") {
			t.Errorf("want one warning about the checkpoint, got %q", logs.String())
		}
	})
	t.Run("recent start", func(t *testing.T) {
		logs.Reset()
		s := newStream(now.Add(-24 * time.Hour))
		rd, err := s.Open(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c := rd.(*window.Reader).Cursor(); !c.Through.Equal(now.Add(-24 * time.Hour)) {
			t.Errorf("a start within the seven days moved to %s", c.Through)
		}
		if logs.Len() != 0 {
			t.Errorf("warned: %s", logs.String())
		}
	})
}
