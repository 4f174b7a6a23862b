package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
}

func statusOf(t *testing.T, sts []streamStatus, stream string) streamStatus {
	t.Helper()
	for _, s := range sts {
		if s.Stream == stream {
			return s
		}
	}
	t.Fatalf("no status for %s in %+v", stream, sts)
	return streamStatus{}
}

func TestProgressBarRateAndETA(t *testing.T) {
	clk := newFakeClock()
	tr := newProgressTracker(clk.now)
	// a: 500 fetched, 700 more to read: 1200 in all.
	tr.Fetched("swr/a/pull", 500)
	tr.Progress("swr/a/pull", 700)
	// b: the source cannot tell what remains.
	tr.Fetched("dbss/b", 50)
	tr.Progress("dbss/b", -1)
	// c: caught up and everything committed.
	tr.Fetched("taurusdb/c", 10)
	tr.Progress("taurusdb/c", 0)

	clk.advance(2 * time.Second)
	tr.Committed("swr/a/pull", 200, time.Time{})
	tr.Committed("dbss/b", 50, time.Time{})
	tr.Committed("taurusdb/c", 10, time.Time{})
	sts := tr.snapshot()
	a := statusOf(t, sts, "swr/a/pull")
	if a.Committed != 200 || a.Total != 1200 || a.Left() != 1000 || a.Rate != 100 || a.ETA != 10*time.Second {
		t.Errorf("a after 2s: %+v; want 200 of 1200 at 100/s, ETA 10s", a)
	}
	lines := renderFrame(sts, 120)
	want := []string{
		"dbss/b      [                        ]    ?  50  25 rec/s  ETA --",
		"swr/a/pull  [####--------------------]  16%  200/1200  100 rec/s  ETA 10s",
		"taurusdb/c  [########################] 100%  10/10  5.0 rec/s  ETA 0s  done",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("frame:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	// The rate is smoothed: 150/s over the next 2s moves it a little
	// (time constant 10s), not all the way.
	clk.advance(2 * time.Second)
	tr.Committed("swr/a/pull", 300, time.Time{})
	a = statusOf(t, tr.snapshot(), "swr/a/pull")
	if a.Rate < 109 || a.Rate > 109.1 {
		t.Errorf("smoothed rate %.3f, want 100 + (1-e^-0.2)·50 ≈ 109.06", a.Rate)
	}
	if a.ETA != 6*time.Second { // 700 left at 109/s
		t.Errorf("ETA %s, want 6s", a.ETA)
	}
	line := renderFrame([]streamStatus{a}, 120)[0]
	if !strings.Contains(line, "[##########--------------]  41%  500/1200  109 rec/s  ETA 6s") {
		t.Errorf("line %q", line)
	}

	// Within rateSample of the last measurement the rate stays put.
	clk.advance(500 * time.Millisecond)
	tr.Committed("swr/a/pull", 600, time.Time{})
	if b := statusOf(t, tr.snapshot(), "swr/a/pull"); b.Rate != a.Rate {
		t.Errorf("rate moved to %.2f after 0.5s", b.Rate)
	}
	// A stream that is done keeps the rate it ended with.
	clk.advance(time.Minute)
	if c := statusOf(t, tr.snapshot(), "taurusdb/c"); c.Rate != 5 || c.ETA != 0 {
		t.Errorf("done stream: %+v", c)
	}
}

func TestProgressLinesFitTheTerminal(t *testing.T) {
	sts := []streamStatus{{Stream: "swr/5d1f0c2e-7a43-4b8e-9f10-2c3d4e5f6a7b/create", Committed: 12345, Total: 99999, Rate: 12345.6, ETA: 2*time.Hour + 3*time.Minute}}
	for _, width := range []int{40, 60, 80, 200} {
		for _, l := range renderFrame(sts, width) {
			if n := len([]rune(l)); n > width-1 {
				t.Errorf("width %d: line of %d columns: %q", width, n, l)
			}
		}
	}
	if l := renderFrame(sts, 200)[0]; !strings.Contains(l, "12.3k rec/s  ETA 2h03m") {
		t.Errorf("line %q", l)
	}
	// Too narrow for the key: its middle goes, its source and operation stay.
	// The bar shrinks first, then the key loses its middle; the source,
	// the operation, the rate and the ETA stay.
	for _, width := range []int{80, 100} {
		l := renderFrame(sts, width)[0]
		if !strings.HasPrefix(l, "swr/5d1f") || !strings.Contains(l, "…") || !strings.Contains(l, "/create  [#---------]  12%") ||
			!strings.HasSuffix(l, "12.3k rec/s  ETA 2h03m") || len([]rune(l)) > width-1 {
			t.Errorf("width %d: line %q", width, l)
		}
	}
	for d, want := range map[time.Duration]string{-1: "--", 0: "0s", 59 * time.Second: "59s", 65 * time.Second: "1m05s", 3*time.Hour + 7*time.Minute: "3h07m"} {
		if got := formatETA(d); got != want {
			t.Errorf("formatETA(%s) = %q, want %q", d, got, want)
		}
	}
}

// The display redraws in place, and a log line written while it is shown
// goes above it, whole, with the display put back below.
func TestProgressDisplayRedrawsAndKeepsLogLinesWhole(t *testing.T) {
	clk := newFakeClock()
	tr := newProgressTracker(clk.now)
	var buf bytes.Buffer
	d := newProgressDisplay(&buf, tr)
	d.width = func() int { return 100 }
	tr.Fetched("s/1", 10)
	tr.Progress("s/1", 10)
	tr.Fetched("s/2", 5)
	tr.Progress("s/2", -1)

	d.mu.Lock()
	d.active = true // as start does, without its ticker
	d.mu.Unlock()
	d.draw()
	first := buf.String()
	if strings.Contains(first, "\x1b[") || strings.Count(first, "\n") != 2 {
		t.Fatalf("first frame: %q", first)
	}
	buf.Reset()
	clk.advance(time.Second)
	tr.Committed("s/1", 10, time.Time{})
	d.draw()
	redraw := buf.String()
	if !strings.HasPrefix(redraw, "\x1b[2A\r\x1b[J") || !strings.Contains(redraw, " 50%  10/20") {
		t.Errorf("redraw: %q", redraw)
	}
	frame := strings.TrimPrefix(redraw, "\x1b[2A\r\x1b[J")

	buf.Reset()
	log := slog.New(quietHandler{slog.NewTextHandler(d, nil), d})
	log.Info("hidden while the display is shown")
	log.Warn("retrying", "op", "fetch")
	got := buf.String()
	if strings.Contains(got, "hidden") {
		t.Errorf("info line shown under the display: %q", got)
	}
	rest, ok := strings.CutPrefix(got, "\x1b[2A\r\x1b[J")
	logLine, after, ok2 := strings.Cut(rest, "\n")
	if !ok || !ok2 || !strings.Contains(logLine, "level=WARN msg=retrying op=fetch") || after != frame {
		t.Errorf("log line not written whole above the display: %q", got)
	}

	buf.Reset()
	d.stop()
	final := buf.String()
	if !strings.HasPrefix(final, "\x1b[2A\r\x1b[J") || strings.Count(final, "\n") != 2 {
		t.Errorf("final frame: %q", final)
	}
	buf.Reset()
	log.Info("after the display")
	if got := buf.String(); strings.Contains(got, "\x1b[") || !strings.Contains(got, "after the display") {
		t.Errorf("after stop: %q", got)
	}
}

// Not on a terminal: one JSON line per stream with committed, remaining,
// rate and eta; a finished stream is reported once more, then left out.
func TestProgressLogLines(t *testing.T) {
	clk := newFakeClock()
	tr := newProgressTracker(clk.now)
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	tr.Fetched("swr/a/pull", 100)
	tr.Progress("swr/a/pull", 300)
	tr.Fetched("dbss/b", 7)
	tr.Progress("dbss/b", -1)
	clk.advance(10 * time.Second)
	tr.Committed("swr/a/pull", 100, time.Time{})
	tr.Committed("dbss/b", 7, time.Time{})
	last := map[string]streamStatus{}
	logProgress(log, tr.snapshot(), last)

	type line struct {
		Msg       string  `json:"msg"`
		Stream    string  `json:"stream"`
		Committed int64   `json:"committed"`
		Remaining int64   `json:"remaining"`
		Rate      float64 `json:"rate"`
		ETA       string  `json:"eta"`
	}
	parse := func() []line {
		var out []line
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var x line
			if err := json.Unmarshal([]byte(l), &x); err != nil {
				t.Fatalf("not a JSON line: %q", l)
			}
			out = append(out, x)
		}
		buf.Reset()
		return out
	}
	got := parse()
	want := []line{
		{"stream progress", "dbss/b", 7, -1, 0.7, "unknown"},
		{"stream progress", "swr/a/pull", 100, 300, 10, "30s"},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("log lines %+v, want %+v", got, want)
	}

	clk.advance(10 * time.Second)
	tr.Fetched("swr/a/pull", 300) // the rest, up to the end
	tr.Progress("swr/a/pull", 0)
	tr.Committed("swr/a/pull", 300, time.Time{})
	logProgress(log, tr.snapshot(), last)
	got = parse()
	if len(got) != 2 || got[1].Stream != "swr/a/pull" || got[1].Remaining != 0 || got[1].ETA != "0s" {
		t.Errorf("second round: %+v", got)
	}
	clk.advance(10 * time.Second)
	logProgress(log, tr.snapshot(), last)
	if got = parse(); len(got) != 1 || got[0].Stream != "dbss/b" {
		t.Errorf("a finished stream logged again: %+v", got)
	}
}

func TestResolveProgress(t *testing.T) {
	var buf bytes.Buffer
	for mode, want := range map[string]string{"auto": "log", "bar": "bar", "log": "log", "none": "none"} {
		if got, err := resolveProgress(mode, &buf); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", mode, got, err, want)
		}
	}
	if _, err := resolveProgress("fancy", &buf); err == nil || !strings.Contains(err.Error(), "--progress") {
		t.Errorf("fancy: %v", err)
	}
}

// progressStream serves pages of records "0", "1", … with Remaining set
// as a source would, through the real pipeline.
type progressStream struct{ pages []pipeline.Page }

func (s progressStream) Key() string { return "test/s" }
func (s progressStream) Open(context.Context, []byte) (pipeline.Reader, error) {
	return &fakeReader{pages: s.pages}, nil
}
func (s progressStream) Map(raw []byte, ev *pipeline.Event) error {
	ev.ID, ev.Doc = string(raw), raw
	return nil
}

type memStore struct{}

func (memStore) Load(context.Context, string) ([]byte, error)     { return nil, nil }
func (memStore) Save(context.Context, string, []byte) error       { return nil }
func (memStore) Write(context.Context, *pipeline.Batch) error     { return nil }
func (memStore) Close(context.Context) error                      { return nil }
func (memStore) Put(context.Context, []pipeline.DeadLetter) error { return nil }

// The pipeline reports Remaining through Observers to the tracker, and 0
// once the stream is caught up; other observers still see everything.
func TestPipelineReportsProgress(t *testing.T) {
	var pages []pipeline.Page
	n := 0
	for i := range 5 {
		var recs [][]byte
		for range 3 {
			recs = append(recs, []byte(strconv.Itoa(n)))
			n++
		}
		pages = append(pages, pipeline.Page{Records: recs, Cursor: []byte(strconv.Itoa(i)), Remaining: int64(100 - 3*(i+1))})
	}
	tr := newProgressTracker(time.Now)
	counter := newProgressTracker(time.Now) // a second observer
	p, err := pipeline.New(pipeline.Config{
		Outputs:    []pipeline.Output{{Name: "mem", Sink: memStore{}}},
		DeadLetter: memStore{},
		Store:      memStore{},
		Observer:   pipeline.Observers(pipeline.Observer{}, tr.observer(), counter.observer()),
	})
	if err != nil {
		t.Fatal(err)
	}
	sum := p.Run(t.Context(), []pipeline.Stream{progressStream{pages}})
	if sum.Streams[0].Status != pipeline.StatusDone {
		t.Fatalf("%+v", sum.Streams[0])
	}
	for _, o := range []*progressTracker{tr, counter} {
		st := statusOf(t, o.snapshot(), "test/s")
		if st.Committed != 15 || st.Total != 15 || !st.done() {
			t.Errorf("after the run: %+v, want 15 of 15 committed", st)
		}
	}
}
