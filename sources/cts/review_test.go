package cts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

// reviewRun reads 150 traces generated as cfg says through CrashRuns, with
// page size pageSize and windows of at most maxRecords, and reports every
// trace never delivered and every run that failed.
func reviewRun(t *testing.T, seed uint64, cfg simulator.CTSConfig, faults simulator.Faults, pageSize, maxRecords int, crashRate float64, retries ...int) windowtest.CrashReport {
	t.Helper()
	clk := windowtest.NewClock(simStart)
	cfg.Traces = 150
	if cfg.Start.IsZero() {
		cfg.Start = simStart.Add(5 * time.Minute)
	}
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
	n := 20
	if len(retries) > 0 {
		n = retries[0]
	}
	rep := windowtest.CrashRuns(t, s, windowtest.CrashConfig{Clock: clk, Step: 6 * time.Minute, Until: want[len(want)-1].VisibleAt().Add(20 * time.Minute),
		Seed: seed, CrashRate: crashRate, Retries: n, ID: traceKey})
	rep.Verdict(t, s.Key(), false)
	lost := 0
	for _, tr := range want {
		key := tr.RecordTime
		if tr.Time.After(key) && tr.Time.Sub(key) <= scfg.Lookback {
			key = tr.Time
		}
		if key.Before(simStart) {
			continue // before the stream's start: excluded
		}
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

// TestReviewMilliFullerThanAPage serves runs of 15 traces sharing one
// millisecond, read 10 a page. A marker that is a cursor in the list
// (CTSMarkerAfter) reads them all.
func TestReviewMilliFullerThanAPage(t *testing.T) {
	i := uint64(100)
	ctsVariants(func(name string, filter simulator.CTSFilter, marker simulator.CTSMarker, incl bool) {
		i++
		seed := i
		t.Run(name, func(t *testing.T) {
			switch marker {
			case simulator.CTSMarkerBefore:
				t.Skip("known (documented limit): next strictly before the marked millisecond never lists the traces of that millisecond past the first page, and the boundary query pages by the same marker; 5 of every 15 are lost, uncounted")
			case simulator.CTSMarkerAtOrBefore:
				t.Skip("known: next at or before the marked millisecond serves the same page again (\"page N carries the marker it was asked with\"): every run fails at that window until it ages out of the 7-day retention; no marker can page past it, only a query whose `to` is below the millisecond could")
			}
			t.Parallel()
			for _, maxRecords := range []int{100, 1000} {
				reviewRun(t, seed, simulator.CTSConfig{Filter: filter, Marker: marker, FromInclusive: incl, ToInclusive: incl,
					SameSecond: 30, SameMilli: 15}, simulator.Faults{}, 10, maxRecords, 0.2)
			}
		})
	})
}

// TestReviewDuplicateIDsWithLag serves trace ids shared by two traces
// (CTSConfig.DuplicateIDs) whose record times are minutes apart, so that
// a marker naming the id may resume at either twin.
func TestReviewDuplicateIDsWithLag(t *testing.T) {
	i := uint64(200)
	ctsVariants(func(name string, filter simulator.CTSFilter, marker simulator.CTSMarker, incl bool) {
		i++
		seed := i
		t.Run(name, func(t *testing.T) {
			if filter == simulator.CTSFilterRecordTime && marker != simulator.CTSMarkerBefore {
				t.Skip("known: a marker naming an id two traces share resumes at the newer twin (the simulator, like any API that looks the id up); when the twins are pages apart (record_time order differs from time order), the next page lists only traces listed before: at-or-before serves the marker it was asked with, after loops; the reader reports \"the marker did not advance\" and every run fails at that window")
			}
			t.Parallel()
			reviewRun(t, seed, simulator.CTSConfig{Filter: filter, Marker: marker, FromInclusive: incl, ToInclusive: incl,
				DuplicateIDs: true, MaxLag: 4 * time.Minute, SameSecond: 30, SameMilli: 3}, simulator.Faults{}, 10, 100, 0.2)
		})
	})
}

// TestReviewNoRepeatsWithoutCrash reads dense seconds, whole (30 a second)
// and streamed a page at a time (150 a second, above MaxRecords), under
// every filter, marker and bound, and with pages capped at 4 (a
// millisecond's 3 traces and a neighbour's fill a page): without a crash
// no trace is delivered twice, although boundary queries and markers list
// page edges again. (With the cap, a streamed second that remembered only
// the previous page delivered the millisecond after an edge twice when
// its traces lay two pages back.)
func TestReviewNoRepeatsWithoutCrash(t *testing.T) {
	ctsVariants(func(name string, filter simulator.CTSFilter, marker simulator.CTSMarker, incl bool) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, c := range []struct{ sameSecond, pageCap int }{{30, 0}, {150, 0}, {150, 4}} {
				rep := reviewRun(t, 1, simulator.CTSConfig{Filter: filter, Marker: marker, FromInclusive: incl, ToInclusive: incl,
					SameSecond: c.sameSecond, SameMilli: 3, PageCap: c.pageCap}, simulator.Faults{}, 10, 100, 0)
				repeats := 0
				for _, n := range rep.Delivered {
					repeats += n - 1
				}
				if repeats > 0 {
					t.Errorf("same-second=%d, page cap %d: %d repeats without a crash", c.sameSecond, c.pageCap, repeats)
				}
			}
		})
	})
}

// TestReviewHostileSkewLagShuffle combines record_time before and after
// time, shuffled pages, malformed and odd traces, 10% throttling and 5%
// server errors with crashes: nothing is lost. Retries are generous (100
// failed Next calls in a row): see TestReviewErrorRateLiveness.
func TestReviewHostileSkewLagShuffle(t *testing.T) {
	i := uint64(500)
	ctsVariants(func(name string, filter simulator.CTSFilter, marker simulator.CTSMarker, incl bool) {
		i++
		seed := i
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			reviewRun(t, seed, simulator.CTSConfig{Filter: filter, Marker: marker, FromInclusive: incl, ToInclusive: incl,
				SameSecond: 30, SameMilli: 3, MaxLag: 4 * time.Minute, Skew: 2 * time.Minute, ShufflePages: true},
				simulator.Faults{MalformedRate: 0.05, OddRate: 0.2, ThrottleRate: 0.1, ServerErrorRate: 0.05}, 10, 100, 0.2, 100)
		})
	})
}

// TestReviewErrorRateLiveness is TestReviewHostileSkewLagShuffle with the
// retry budget of the pipeline's default backoff (about 12 failures of one
// Next within HWCAUDIT's 5-minute MaxElapsed).
func TestReviewErrorRateLiveness(t *testing.T) {
	t.Skip("known: a window's listing (every page of its query and look-back, each followed by one or two boundary queries) returns no page until it is whole, so under a steady 15% error rate one Next fails ten times or more in a row; the pipeline's retry counts those failures without seeing the progress between them, gives up, and the next run's reader starts the window afresh (its kept pages and learnt span are lost): the stream can stay stuck while the error rate lasts")
	i := uint64(500)
	ctsVariants(func(name string, filter simulator.CTSFilter, marker simulator.CTSMarker, incl bool) {
		i++
		seed := i
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			reviewRun(t, seed, simulator.CTSConfig{Filter: filter, Marker: marker, FromInclusive: incl, ToInclusive: incl,
				SameSecond: 30, SameMilli: 3, MaxLag: 4 * time.Minute, Skew: 2 * time.Minute, ShufflePages: true},
				simulator.Faults{ThrottleRate: 0.1, ServerErrorRate: 0.05}, 10, 100, 0, 12)
		})
	})
}

// TestReviewUnusableRecordTime decodes traces whose record_time is 0, a
// negative number, a fraction, empty, not digits or null: each is keyed by
// its time, as a trace without record_time is, not dead-lettered for a
// record_time that cannot be true.
func TestReviewUnusableRecordTime(t *testing.T) {
	const at = 1772359500123 // 2026-03-01T10:05:00.123Z
	for _, rt := range []string{`0`, `"0"`, `-5`, `""`, `"soon"`, `null`, `1.5`, `946684799999`} {
		body := `{"traces":[{"trace_id":"a","time":` + fmt.Sprint(at) + `,"record_time":` + rt + `}],"meta_data":{"count":1,"marker":null}}`
		recs, _, err := decodePage([]byte(body), "test", 10, 10*time.Minute)
		if err != nil {
			t.Fatalf("record_time %s: %v", rt, err)
		}
		if got := recs[0].Time.UnixMilli(); got != at || !recs[0].Begin.IsZero() {
			t.Errorf("record_time %s: key %s, begin %s; want the time %d and no begin", rt, recs[0].Time, recs[0].Begin, int64(at))
		}
	}
}

// TestReviewBackfillEndWithinAMillisecond ends a backfill half a
// millisecond after a trace whose millisecond three traces share, under
// each marker: the traces keyed before End are delivered, those after are
// not, in a dense second and with record_time before and after time.
func TestReviewBackfillEndWithinAMillisecond(t *testing.T) {
	for _, m := range []simulator.CTSMarker{simulator.CTSMarkerBefore, simulator.CTSMarkerAtOrBefore, simulator.CTSMarkerAfter} {
		for _, f := range []simulator.CTSFilter{simulator.CTSFilterTime, simulator.CTSFilterRecordTime} {
			t.Run(fmt.Sprintf("filter=%d/marker=%d", f, m), func(t *testing.T) {
				now := simStart.Add(3 * time.Hour)
				clk := windowtest.NewClock(now)
				cfg := simulator.CTSConfig{Traces: 150, Start: simStart.Add(5 * time.Minute), Interval: 20 * time.Second, Filter: f, Marker: m,
					SameSecond: 30, SameMilli: 3, MaxLag: 2 * time.Minute, Skew: time.Minute}
				sim := simulator.New(simulator.Config{ProjectID: simProject, Tokens: []simulator.Token{{Value: simToken}}, Seed: 9, Now: clk.Now, CTS: cfg})
				want := sim.CTSTraces(TypeSystem)
				key := func(tr simulator.CTSTrace) time.Time {
					if tr.Time.After(tr.RecordTime) {
						return tr.Time
					}
					return tr.RecordTime
				}
				end := key(want[75]).Add(500 * time.Microsecond)
				scfg := Config{Enabled: true, TraceTypes: []string{TypeSystem}, Endpoint: "http://cts.sim", PageSize: 10, Lookback: 8 * time.Minute}
				s := NewStreams(scfg, windowtest.InProcess{H: sim, Token: simToken}, "cn-north-4", simProject, Options{
					Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 100}, Start: simStart, End: end, Now: clk.Now,
				})[0]
				recs, _ := windowtest.Drain(t, s, nil)
				got := map[string]int{}
				for _, raw := range recs {
					k, err := traceKey(raw)
					if err != nil {
						t.Fatal(err)
					}
					got[k]++
				}
				for _, tr := range want {
					before := key(tr).Before(end)
					if n := got[simKey(tr)]; before && n != 1 || !before && n != 0 {
						t.Errorf("trace keyed %s (End %s) delivered %d times", key(tr).Format(time.RFC3339Nano), end.Format(time.RFC3339Nano), n)
					}
				}
			})
		}
	}
}

// TestReviewClockAheadOfCTS runs the exporter with a clock 6 minutes ahead
// of CTS's, beyond the 5-minute settle delay.
func TestReviewClockAheadOfCTS(t *testing.T) {
	t.Skip("known (all window sources): a window is read SettleDelay after its end by the exporter's clock; when that clock runs ahead of CTS's by more than the settle delay, windows are read before CTS recorded their traces, and the cursor passes them: those traces are never delivered. Nothing compares the clocks (the answers' Date header could)")
	clk := windowtest.NewClock(simStart)
	api := func() time.Time { return clk.Now().Add(-6 * time.Minute) }
	cfg := simulator.CTSConfig{Traces: 150, Start: simStart.Add(5 * time.Minute), Interval: 20 * time.Second, Filter: simulator.CTSFilterRecordTime}
	sim := simulator.New(simulator.Config{ProjectID: simProject, Tokens: []simulator.Token{{Value: simToken}}, Seed: 7, Now: api, CTS: cfg})
	scfg := Config{Enabled: true, TraceTypes: []string{TypeSystem}, Endpoint: "http://cts.sim", PageSize: 10, Lookback: 8 * time.Minute}
	s := NewStreams(scfg, windowtest.InProcess{H: sim, Token: simToken}, "cn-north-4", simProject, Options{
		Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 100}, Start: simStart, Now: clk.Now,
	})[0]
	want := sim.CTSTraces(TypeSystem)
	rep := windowtest.CrashRuns(t, s, windowtest.CrashConfig{Clock: clk, Step: time.Minute, Until: want[len(want)-1].VisibleAt().Add(20 * time.Minute),
		Seed: 1, Retries: 20, ID: traceKey})
	rep.Verdict(t, s.Key(), false)
	lost := 0
	for _, tr := range want {
		if rep.Delivered[simKey(tr)] == 0 {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d traces never delivered", lost, len(want))
	}
}

// TestReviewPageCappedBelowLimit serves at most 4 traces a page when the
// reader asks for 10, with markers on every page but the last: nothing is
// lost (the dense milliseconds hold 3, within the cap).
func TestReviewPageCappedBelowLimit(t *testing.T) {
	i := uint64(700)
	ctsVariants(func(name string, filter simulator.CTSFilter, marker simulator.CTSMarker, incl bool) {
		i++
		seed := i
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			reviewRun(t, seed, simulator.CTSConfig{Filter: filter, Marker: marker, FromInclusive: incl, ToInclusive: incl,
				PageCap: 4, SameSecond: 30, SameMilli: 3, MaxLag: 3 * time.Minute}, simulator.Faults{}, 10, 100, 0.2)
		})
	})
}

// TestReviewAdjacentMillisecondsFillABoundaryPage serves runs of 5 traces
// sharing a millisecond, a millisecond or a few apart, read 10 a page: each
// millisecond fits a page, but with inclusive bounds the boundary query of
// one millisecond (from 1ms before to 1ms after it) holds three of them.
func TestReviewAdjacentMillisecondsFillABoundaryPage(t *testing.T) {
	i := uint64(800)
	ctsVariants(func(name string, filter simulator.CTSFilter, marker simulator.CTSMarker, incl bool) {
		i++
		seed := i
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, ms := range []int{5, 9} {
				reviewRun(t, seed, simulator.CTSConfig{Filter: filter, Marker: marker, FromInclusive: incl, ToInclusive: incl,
					SameSecond: 60, SameMilli: ms}, simulator.Faults{}, 10, 100, 0.2)
			}
		})
	})
}

// TestReviewSkewAfterOrderLearnt serves, under the strict marker, runs of 3
// and 7 traces sharing a millisecond of time and of record_time, one run in 4,
// 20 or 40 recorded before it happened: the reader learns from the pages which time
// the API orders by and drops the other time's boundary query; a page
// edge inside a run of skewed traces must still be joined by the query of
// the right millisecond.
func TestReviewSkewAfterOrderLearnt(t *testing.T) {
	for _, f := range []simulator.CTSFilter{simulator.CTSFilterTime, simulator.CTSFilterRecordTime} {
		for _, incl := range []bool{false, true} {
			t.Run(fmt.Sprintf("filter=%d/inclusive=%v", f, incl), func(t *testing.T) {
				t.Parallel()
				for _, every := range []int{4, 20, 40} {
					for _, ms := range []int{3, 7} {
						reviewRun(t, 900+uint64(every), simulator.CTSConfig{Filter: f, FromInclusive: incl, ToInclusive: incl,
							Skew: 3 * time.Minute, SkewEvery: every, MaxLag: 3 * time.Minute, SameSecond: 60, SameMilli: ms}, simulator.Faults{}, 10, 1000, 0)
					}
				}
			})
		}
	}
}

// TestReviewSkewBeyondLookback serves traces recorded up to 8 hours before
// they happened (a service reporting local time as UTC, say), one in 20,
// with an 8-minute look-back: under a record_time filter each is delivered
// and the look-back stays 8 minutes (keyed by time, such a trace would
// raise it to hours for good, and every later query would list hours of
// traces again).
func TestReviewSkewBeyondLookback(t *testing.T) {
	for _, m := range []simulator.CTSMarker{simulator.CTSMarkerBefore, simulator.CTSMarkerAtOrBefore, simulator.CTSMarkerAfter} {
		for _, f := range []simulator.CTSFilter{simulator.CTSFilterTime, simulator.CTSFilterRecordTime} {
			t.Run(fmt.Sprintf("filter=%d/marker=%d", f, m), func(t *testing.T) {
				if f == simulator.CTSFilterTime {
					t.Skip("known (documented limit, as for delays): under a time filter a trace recorded more than the look-back before it happened is listed only in the query of its time's window, and is keyed by its record_time, an earlier window's")
				}
				t.Parallel()
				rep := reviewRun(t, 42, simulator.CTSConfig{Filter: f, Marker: m, Skew: 8 * time.Hour, SkewEvery: 20, SameSecond: 30, SameMilli: 3,
					Start: simStart.Add(9 * time.Hour)}, // recorded after the stream's start
					simulator.Faults{}, 10, 100, 0.2)
				c, err := window.DecodeCursor(rep.Cursor)
				if err != nil {
					t.Fatal(err)
				}
				if c.LookbackSeconds > 8*60 {
					t.Errorf("look-back raised to %s", time.Duration(c.LookbackSeconds)*time.Second)
				}
			})
		}
	}
}

// countingDoer counts the requests sent through it.
type countingDoer struct {
	d huaweiapi.Doer
	n atomic.Int64
}

func (c *countingDoer) Do(ctx context.Context, r huaweiapi.Request) ([]byte, error) {
	c.n.Add(1)
	return c.d.Do(ctx, r)
}

// TestReviewOneLateTraceRaisesTheLookbackForGood reads 600 traces, ten
// seconds apart, recorded within a second of happening, of which one is
// recorded 6 hours late: the requests the reader sends should stay close
// to what it sends without that trace.
func TestReviewOneLateTraceRaisesTheLookbackForGood(t *testing.T) {
	t.Skip("known: the reader raises its look-back to the longest delay it saw (6h here) and keeps it in the cursor for good, so every later window's query lists up to 6h of traces again: 4.5 times the requests here (73 → 332 over 100 minutes of traces; the ratio grows with the trace rate and the time after the late trace), and a listing's repeat set (window.Reader.list) grows with the look-back's traces, not with MaxRecords; the look-back never shrinks back to HWCAUDIT_CTS_LOOKBACK")
	requests := func(late bool) int64 {
		clk := windowtest.NewClock(simStart)
		cfg := simulator.CTSConfig{Traces: 600, Start: simStart.Add(5 * time.Minute), Interval: 10 * time.Second, MaxLag: time.Second}
		sim := simulator.New(simulator.Config{ProjectID: simProject, Tokens: []simulator.Token{{Value: simToken}}, Seed: 7, Now: clk.Now, CTS: cfg})
		var h http.Handler = sim
		if late {
			h = lateTrace{sim, 6 * time.Hour, sim.CTSTraces(TypeSystem)[300].RequestID}
		}
		d := &countingDoer{d: windowtest.InProcess{H: h, Token: simToken}}
		scfg := Config{Enabled: true, TraceTypes: []string{TypeSystem}, Endpoint: "http://cts.sim", PageSize: 50, Lookback: 8 * time.Minute}
		s := NewStreams(scfg, d, "cn-north-4", simProject, Options{Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 1000}, Start: simStart, Now: clk.Now})[0]
		windowtest.CrashRuns(t, s, windowtest.CrashConfig{Clock: clk, Step: 10 * time.Minute, Until: simStart.Add(3 * time.Hour), Seed: 1, Retries: 5, ID: traceKey})
		return d.n.Load()
	}
	without, with := requests(false), requests(true)
	t.Logf("%d requests, %d with one trace recorded 6h late", without, with)
	if with > 3*without {
		t.Errorf("one late trace multiplied the requests by %.1f", float64(with)/float64(without))
	}
}

// lateTrace rewrites, in every answer, one trace's time to lag before its
// record_time (a trace recorded lag late).
type lateTrace struct {
	h      http.Handler
	lag    time.Duration
	target string // its request_id
}

func (l lateTrace) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	l.h.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	if rec.Code == http.StatusOK {
		var p map[string]any
		if json.Unmarshal(body, &p) == nil {
			if trs, _ := p["traces"].([]any); len(trs) > 0 {
				for _, x := range trs {
					tr, _ := x.(map[string]any)
					if id, _ := tr["request_id"].(string); id == l.target {
						rt, _ := tr["record_time"].(float64)
						tr["time"] = int64(rt) - l.lag.Milliseconds()
					}
				}
				body, _ = json.Marshal(p)
			}
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

// TestReviewMilliFullerThanAPageIsNamed reads, under the at-or-before
// marker, a millisecond holding more traces than a page: the reader fails
// (no marker pages past it) with an error that says why.
func TestReviewMilliFullerThanAPageIsNamed(t *testing.T) {
	clk := windowtest.NewClock(simStart)
	cfg := simulator.CTSConfig{Traces: 40, Start: simStart.Add(5 * time.Minute), Interval: 20 * time.Second, SameSecond: 30, SameMilli: 15, Marker: simulator.CTSMarkerAtOrBefore}
	sim := simulator.New(simulator.Config{ProjectID: simProject, Tokens: []simulator.Token{{Value: simToken}}, Seed: 7, Now: clk.Now, CTS: cfg})
	scfg := Config{Enabled: true, TraceTypes: []string{TypeSystem}, Endpoint: "http://cts.sim", PageSize: 10, Lookback: 8 * time.Minute}
	s := NewStreams(scfg, windowtest.InProcess{H: sim, Token: simToken}, "cn-north-4", simProject, Options{
		Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 100}, Start: simStart, Now: clk.Now,
	})[0]
	clk.Add(time.Hour)
	rd, err := s.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err = rd.Next(context.Background()); err != nil {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "share the millisecond") || !strings.Contains(err.Error(), s.Key()) {
		t.Errorf("error %v, want one naming the stream and the millisecond its page shares", err)
	}
}
