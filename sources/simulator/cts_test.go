package simulator

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

type ctsPage struct {
	Traces []struct {
		TraceID    string `json:"trace_id"`
		Time       int64  `json:"time"`
		RecordTime int64  `json:"record_time"`
	} `json:"traces"`
	Meta struct {
		Count  int     `json:"count"`
		Marker *string `json:"marker"`
	} `json:"meta_data"`
}

// ctsServer serves 60 system traces in runs of 4 sharing a millisecond,
// the clock a day after the first.
func ctsServer(t *testing.T, c CTSConfig) (*Server, []CTSTrace) {
	t.Helper()
	cfg := testConfig()
	cfg.Now = func() time.Time { return testStart.Add(24 * time.Hour) }
	c.Traces, c.DataTraces, c.Start, c.Interval = 60, 5, testStart, time.Minute
	if c.SameMilli == 0 {
		c.SameMilli = 4
	}
	cfg.CTS = c
	s := New(cfg)
	return s, s.CTSTraces("system")
}

func ctsList(t *testing.T, s *Server, from, to time.Time, limit int, next string) (ctsPage, int) {
	t.Helper()
	q := "trace_type=system&limit=" + strconv.Itoa(limit) + "&from=" + strconv.FormatInt(from.UnixMilli(), 10) + "&to=" + strconv.FormatInt(to.UnixMilli(), 10)
	if next != "" {
		q += "&next=" + next
	}
	w := get(t, s, "/v3/"+testProject+"/traces?"+q)
	var p ctsPage
	if w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
	}
	return p, w.Code
}

func TestCTSValidation(t *testing.T) {
	s, _ := ctsServer(t, CTSConfig{})
	base := "/v3/" + testProject + "/traces?"
	for _, tt := range []struct {
		query string
		code  int
	}{
		{"trace_type=system", 200},
		{"trace_type=data&limit=200", 200},
		{"", 400},
		{"trace_type=audit", 400},
		{"trace_type=system&limit=201", 400},
		{"trace_type=system&limit=0", 400},
		{"trace_type=system&from=1709280000000", 400},
		{"trace_type=system&from=1709280000&to=1709366400", 400},
		{"trace_type=system&from=1709366400000&to=1709280000000", 400},
		{"trace_type=system&next=no-such-trace", 400},
	} {
		if w := get(t, s, base+tt.query); w.Code != tt.code {
			t.Errorf("?%s: %d %s, want %d", tt.query, w.Code, w.Body, tt.code)
		}
	}
	if w := get(t, s, "/v3/otherproject/traces?trace_type=system"); w.Code != http.StatusForbidden {
		t.Errorf("another project: %d", w.Code)
	}
}

// TestCTSMarkers pages the whole list with each marker variant and checks
// what each lists: After and AtOrBefore every trace (AtOrBefore with page
// edges repeated), Before all but the traces of an edge millisecond that
// did not fit on their page; newest first by the filter time.
func TestCTSMarkers(t *testing.T) {
	for _, m := range []CTSMarker{CTSMarkerBefore, CTSMarkerAtOrBefore, CTSMarkerAfter} {
		s, all := ctsServer(t, CTSConfig{Marker: m})
		from, to := testStart.Add(-time.Hour), testStart.Add(23*time.Hour)
		seen, listed, next := map[string]int{}, 0, ""
		var prev int64 = 1 << 62
		for range 100 {
			p, code := ctsList(t, s, from, to, 10, next)
			if code != 200 {
				t.Fatalf("marker %d: %d", m, code)
			}
			if p.Meta.Count != len(p.Traces) {
				t.Errorf("count %d for %d traces", p.Meta.Count, len(p.Traces))
			}
			for _, tr := range p.Traces {
				if tr.Time > prev && m != CTSMarkerAtOrBefore {
					t.Errorf("marker %d: not newest first", m)
				}
				prev = tr.Time
				seen[tr.TraceID]++
				listed++
			}
			if p.Meta.Marker == nil {
				break
			}
			next = *p.Meta.Marker
			if next != p.Traces[len(p.Traces)-1].TraceID {
				t.Errorf("marker %s is not the page's last trace", next)
			}
		}
		switch m {
		case CTSMarkerBefore:
			if len(seen) >= len(all) || len(seen) < len(all)/2 || listed != len(seen) {
				t.Errorf("Before listed %d distinct of %d (%d in all): want some edge traces lost, none repeated", len(seen), len(all), listed)
			}
		case CTSMarkerAtOrBefore:
			if len(seen) != len(all) || listed <= len(all) {
				t.Errorf("AtOrBefore listed %d distinct of %d (%d in all): want all, edges repeated", len(seen), len(all), listed)
			}
		case CTSMarkerAfter:
			if len(seen) != len(all) || listed != len(all) {
				t.Errorf("After listed %d distinct of %d (%d in all): want each once", len(seen), len(all), listed)
			}
		}
	}
}

// TestCTSBoundsRetentionAndLag checks the documented exclusive bounds and
// the inclusive switch, the seven days kept, and that a trace is listed
// from its record_time on.
func TestCTSBoundsRetentionAndLag(t *testing.T) {
	s, all := ctsServer(t, CTSConfig{SameMilli: 1})
	at := all[10].Time
	if p, _ := ctsList(t, s, at, at.Add(time.Millisecond), 10, ""); len(p.Traces) != 0 {
		t.Errorf("exclusive from listed the trace at from: %d", len(p.Traces))
	}
	si, _ := ctsServer(t, CTSConfig{SameMilli: 1, FromInclusive: true, ToInclusive: true})
	if p, _ := ctsList(t, si, at, at, 10, ""); len(p.Traces) != 1 {
		t.Errorf("inclusive bounds: %d traces at one millisecond, want 1", len(p.Traces))
	}
	// Nine days later only the traces recorded in the last seven are kept.
	cfg := testConfig()
	cfg.Now = func() time.Time { return testStart.Add(7*24*time.Hour + 30*time.Minute) }
	cfg.CTS = CTSConfig{Traces: 60, Start: testStart, Interval: time.Minute, MaxLag: 10 * time.Minute}
	old := New(cfg)
	p, _ := ctsList(t, old, testStart.Add(-time.Hour), cfg.Now(), 200, "")
	want := 0
	for _, tr := range old.CTSTraces("system") {
		if !tr.RecordTime.Before(cfg.Now().Add(-7 * 24 * time.Hour)) {
			want++
		}
		if tr.RecordTime.Before(tr.Time) || tr.RecordTime.Sub(tr.Time) >= 10*time.Minute {
			t.Errorf("record_time %s for time %s", tr.RecordTime, tr.Time)
		}
	}
	if len(p.Traces) != want || want == 0 || want == 60 {
		t.Errorf("listed %d traces after retention, want %d of 60", len(p.Traces), want)
	}
	// A trace is listed from its record_time on.
	cfg.Now = func() time.Time { return all[20].Time }
	cfg.CTS = CTSConfig{Traces: 60, Start: testStart, Interval: time.Minute, MaxLag: 10 * time.Minute}
	lag := New(cfg)
	p, _ = ctsList(t, lag, testStart.Add(-time.Hour), all[20].Time, 200, "")
	for _, tr := range p.Traces {
		if time.UnixMilli(tr.RecordTime).After(cfg.Now()) {
			t.Errorf("trace recorded at %d listed at %s", tr.RecordTime, cfg.Now())
		}
	}
}

func TestCTSSwitches(t *testing.T) {
	s, all := ctsServer(t, CTSConfig{DuplicateIDs: true, MarkerOnLastPage: true, BodyBytes: 1000})
	ids := map[string]int{}
	for _, tr := range all {
		ids[tr.TraceID]++
	}
	if len(ids) == len(all) {
		t.Error("DuplicateIDs: every trace id unique")
	}
	// 60 traces, pages of 20: the third page is full and carries a marker,
	// the fourth is empty with none.
	var pages []ctsPage
	next := ""
	for range 10 {
		p, code := ctsList(t, s, testStart.Add(-time.Hour), testStart.Add(23*time.Hour), 20, next)
		if code != 200 {
			break
		}
		pages = append(pages, p)
		if p.Meta.Marker == nil {
			break
		}
		next = *p.Meta.Marker
	}
	if len(pages) < 2 || len(pages[len(pages)-1].Traces) != 0 {
		t.Errorf("MarkerOnLastPage: %d pages, the last with %d traces", len(pages), len(pages[len(pages)-1].Traces))
	}
	if big := slices.IndexFunc(all, func(tr CTSTrace) bool { return len(tr.Raw) > 2000 }); big < 0 {
		t.Error("BodyBytes: no trace carries large bodies")
	}
}
