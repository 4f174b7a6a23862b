package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// Progress modes of `exporter backfill --progress`.
const (
	progressAuto = "auto" // bar on a terminal, log lines otherwise
	progressBar  = "bar"  // live display redrawn in place
	progressLog  = "log"  // one log line per stream every progressLogEvery
	progressNone = "none" // neither
)

const (
	// progressRedraw paces the live display: at most four frames a second.
	progressRedraw = 250 * time.Millisecond
	// progressLogEvery is how often log mode reports each stream.
	progressLogEvery = 10 * time.Second
	// rateSample is the shortest interval a rate is measured over; rateTau
	// is the time constant of its exponential smoothing, so that the rate
	// and ETA do not jump with every batch.
	rateSample = time.Second
	rateTau    = 10 * time.Second
	// barWidth is the number of cells of a bar, down to minBarWidth on a
	// narrow terminal.
	barWidth    = 24
	minBarWidth = 10
)

// resolveProgress turns --progress into bar, log or none: auto picks the
// bar when stderr is a terminal, as newLogger picks text logs.
func resolveProgress(mode string, stderr io.Writer) (string, error) {
	switch mode {
	case progressAuto:
		if isTerminal(stderr) {
			return progressBar, nil
		}
		return progressLog, nil
	case progressBar, progressLog, progressNone:
		return mode, nil
	}
	return "", fmt.Errorf("--progress: want auto, bar, log or none, got %q", mode)
}

// progressTracker follows each stream through the pipeline's observer
// hooks (see observer): records fetched and committed, and the source's
// estimate of what remains. Every method is safe for concurrent use.
type progressTracker struct {
	now func() time.Time

	mu      sync.Mutex
	streams map[string]*streamProgress
}

type streamProgress struct {
	started            time.Time
	fetched, committed int64
	remaining          int64 // after the last page; -1 unknown

	rate            float64 // smoothed committed records per second
	measured        bool    // rate holds a measurement
	final           bool    // caught up: rate is the stream's last
	sampleAt        time.Time
	sampleCommitted int64
}

func newProgressTracker(now func() time.Time) *progressTracker {
	return &progressTracker{now: now, streams: map[string]*streamProgress{}}
}

// stream returns key's entry, creating it; t.mu must be held.
func (t *progressTracker) stream(key string) *streamProgress {
	s := t.streams[key]
	if s == nil {
		now := t.now()
		s = &streamProgress{started: now, sampleAt: now, remaining: -1}
		t.streams[key] = s
	}
	return s
}

func (t *progressTracker) Fetched(stream string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stream(stream).fetched += int64(n)
}

func (t *progressTracker) Progress(stream string, remaining int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stream(stream).remaining = remaining
}

func (t *progressTracker) Committed(stream string, records int64, _ time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stream(stream).committed += records
}

// observer is the pipeline's hooks into t: the three it follows.
func (t *progressTracker) observer() pipeline.Observer {
	return pipeline.Observer{Fetched: t.Fetched, Progress: t.Progress, Committed: t.Committed}
}

// streamStatus is one stream's progress at one moment.
type streamStatus struct {
	Stream    string
	Committed int64
	// Total is what the stream will have committed once caught up:
	// fetched plus the source's estimate of what remains; -1 unknown.
	Total int64
	// Rate is the smoothed committed records per second.
	Rate float64
	// ETA is the time left at Rate; -1 unknown.
	ETA time.Duration
}

// Left is Total − Committed, -1 when unknown.
func (s streamStatus) Left() int64 {
	if s.Total < 0 {
		return -1
	}
	return max(s.Total-s.Committed, 0)
}

// done tells a stream that has caught up and committed all it read.
func (s streamStatus) done() bool { return s.Total >= 0 && s.Committed >= s.Total }

// snapshot measures every stream's rate at now and returns their status,
// sorted by stream.
func (t *progressTracker) snapshot() []streamStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	out := make([]streamStatus, 0, len(t.streams))
	for key, s := range t.streams {
		if dt := now.Sub(s.sampleAt); dt >= rateSample && !s.final {
			inst := float64(s.committed-s.sampleCommitted) / dt.Seconds()
			if s.measured {
				s.rate += (1 - math.Exp(-dt.Seconds()/rateTau.Seconds())) * (inst - s.rate)
			} else {
				s.rate, s.measured = inst, true
			}
			s.sampleAt, s.sampleCommitted = now, s.committed
		}
		st := streamStatus{Stream: key, Committed: s.committed, Total: -1, Rate: s.rate, ETA: -1}
		if !s.measured {
			// Until a full sample: the average since the stream began.
			if el := now.Sub(s.started); el > 0 {
				st.Rate = float64(s.committed) / el.Seconds()
			}
		}
		if s.remaining >= 0 {
			st.Total = s.fetched + s.remaining
		}
		if st.done() && !s.final {
			// A stream that caught up keeps the rate it ended with.
			s.rate, s.measured, s.final = st.Rate, true, true
		}
		switch left := st.Left(); {
		case left == 0:
			st.ETA = 0
		case left > 0 && st.Rate > 0:
			st.ETA = time.Duration(float64(left) / st.Rate * float64(time.Second)).Round(time.Second)
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b streamStatus) int { return strings.Compare(a.Stream, b.Stream) })
	return out
}

// renderFrame renders one line per stream, each at most width-1 columns so
// that the terminal never wraps one (wrapped lines would break the cursor
// movement of the redraw). Stream keys too long for the line lose their
// middle, so that both the source and the operation stay readable.
func renderFrame(sts []streamStatus, width int) []string {
	width = max(width, 40)
	nameW := 0
	for _, s := range sts {
		nameW = max(nameW, utf8.RuneCountInString(s.Stream))
	}
	// On a narrow terminal the bar shrinks first, then the stream keys.
	bar := barWidth
	rests := make([]string, len(sts))
	for {
		restW := 0
		for i, s := range sts {
			rests[i] = renderProgress(s, bar)
			restW = max(restW, utf8.RuneCountInString(rests[i]))
		}
		over := nameW + 2 + restW - (width - 1)
		if over <= 0 || bar == minBarWidth {
			nameW = min(nameW, max(width-1-2-restW, 16))
			break
		}
		bar = max(bar-over, minBarWidth)
	}
	lines := make([]string, 0, len(sts))
	for i, s := range sts {
		line := padRight(shortenKey(s.Stream, nameW), nameW) + "  " + rests[i]
		lines = append(lines, ellipsize(line, width-1))
	}
	return lines
}

// renderProgress is a line without the stream: bar, percentage, counts,
// rate and ETA.
func renderProgress(s streamStatus, barWidth int) string {
	var b strings.Builder
	b.WriteString("[")
	switch {
	case s.Total > 0:
		filled := int(float64(barWidth) * float64(min(s.Committed, s.Total)) / float64(s.Total))
		b.WriteString(strings.Repeat("#", filled))
		b.WriteString(strings.Repeat("-", barWidth-filled))
		fmt.Fprintf(&b, "] %3d%%  %d/%d", int(100*min(s.Committed, s.Total)/s.Total), s.Committed, s.Total)
	case s.Total == 0:
		b.WriteString(strings.Repeat("#", barWidth))
		fmt.Fprintf(&b, "] 100%%  %d/%d", s.Committed, s.Total)
	default:
		// Unknown total: no bar, only the count.
		b.WriteString(strings.Repeat(" ", barWidth))
		fmt.Fprintf(&b, "]    ?  %d", s.Committed)
	}
	fmt.Fprintf(&b, "  %s  ETA %s", formatRate(s.Rate), formatETA(s.ETA))
	if s.done() {
		b.WriteString("  done")
	}
	return b.String()
}

// formatRate is records per second, short.
func formatRate(r float64) string {
	switch {
	case r < 10:
		return fmt.Sprintf("%.1f rec/s", r)
	case r < 10000:
		return fmt.Sprintf("%.0f rec/s", r)
	default:
		return fmt.Sprintf("%.1fk rec/s", r/1000)
	}
}

// formatETA is 42s, 3m05s or 2h03m; "--" when unknown.
func formatETA(d time.Duration) string {
	if d < 0 {
		return "--"
	}
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

func ellipsize(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return string([]rune(s)[:max(n, 0)])
	}
	return string([]rune(s)[:n-1]) + "…"
}

// shortenMiddle replaces the middle of s with "…" to fit n columns.
func shortenMiddle(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return ellipsize(s, n)
	}
	head := (n - 1) / 2
	return string(r[:head]) + "…" + string(r[len(r)-(n-1-head):])
}

func padRight(s string, n int) string {
	if k := utf8.RuneCountInString(s); k < n {
		return s + strings.Repeat(" ", n-k)
	}
	return s
}

// progressDisplay draws every stream's progress on a terminal, redrawn in
// place with ANSI cursor movement. Log output must reach the terminal
// through Write, which lifts the display, writes the log line above it and
// puts the display back, so that no line is ever broken.
type progressDisplay struct {
	out   io.Writer // the terminal
	t     *progressTracker
	width func() int

	mu     sync.Mutex
	active bool   // between start and stop
	frame  []byte // the frame on screen, to put back after a log line
	lines  int    // lines of frame

	stopCh chan struct{}
	doneCh chan struct{}
}

func newProgressDisplay(out io.Writer, t *progressTracker) *progressDisplay {
	return &progressDisplay{out: out, t: t, width: terminalWidth(out)}
}

// terminalWidth returns out's column count, asked again at every frame
// (the window may be resized); 80 when it cannot tell.
func terminalWidth(out io.Writer) func() int {
	return func() int {
		if f, ok := out.(*os.File); ok {
			if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
				return w
			}
		}
		return 80
	}
}

// Write writes a log line above the display.
func (d *progressDisplay) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.active || d.lines == 0 {
		return d.out.Write(p)
	}
	var b bytes.Buffer
	d.erase(&b)
	b.Write(p)
	if len(p) > 0 && p[len(p)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.Write(d.frame)
	if _, err := d.out.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// isActive tells whether the display is on screen.
func (d *progressDisplay) isActive() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.active
}

// erase moves the cursor to the display's first line and clears to the end
// of the screen; d.mu must be held.
func (d *progressDisplay) erase(b *bytes.Buffer) {
	if d.lines > 0 {
		fmt.Fprintf(b, "\x1b[%dA\r\x1b[J", d.lines)
	}
}

// draw replaces the display with a fresh frame, in one write.
func (d *progressDisplay) draw() {
	lines := renderFrame(d.t.snapshot(), d.width())
	d.mu.Lock()
	defer d.mu.Unlock()
	var frame bytes.Buffer
	for _, l := range lines {
		frame.WriteString(l)
		frame.WriteByte('\n')
	}
	var b bytes.Buffer
	d.erase(&b)
	b.Write(frame.Bytes())
	d.out.Write(b.Bytes())
	d.frame, d.lines = frame.Bytes(), len(lines)
}

// start shows the display and redraws it every progressRedraw until stop.
func (d *progressDisplay) start() {
	d.mu.Lock()
	d.active = true
	d.mu.Unlock()
	d.stopCh, d.doneCh = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(d.doneCh)
		tick := time.NewTicker(progressRedraw)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				d.draw()
			case <-d.stopCh:
				return
			}
		}
	}()
}

// stop draws the final frame and leaves it on screen, below everything
// logged, so that what is printed next starts on a line of its own.
func (d *progressDisplay) stop() {
	if d.stopCh != nil {
		close(d.stopCh)
		<-d.doneCh
		d.stopCh = nil
	}
	if !d.isActive() {
		return
	}
	d.draw()
	d.mu.Lock()
	d.active = false
	d.frame, d.lines = nil, 0
	d.mu.Unlock()
}

// quietHandler passes only warnings and errors while the display is on
// screen: its lines say what info lines would, and stay readable.
type quietHandler struct {
	slog.Handler
	d *progressDisplay
}

func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if l < slog.LevelWarn && h.d.isActive() {
		return false
	}
	return h.Handler.Enabled(ctx, l)
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(as), h.d}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name), h.d}
}

// logProgress logs one line per stream: committed, remaining, rate and ETA.
// last holds each stream's previous line, so that a stream that finished is
// reported once and then left out.
func logProgress(log *slog.Logger, sts []streamStatus, last map[string]streamStatus) {
	for _, s := range sts {
		if prev, ok := last[s.Stream]; ok && prev.done() && prev.Committed == s.Committed && prev.Total == s.Total {
			continue
		}
		last[s.Stream] = s
		eta := "unknown"
		if s.ETA >= 0 {
			eta = s.ETA.String()
		}
		log.Info("stream progress", "stream", s.Stream, "committed", s.Committed, "remaining", s.Left(),
			"rate", math.Round(s.Rate*10)/10, "eta", eta)
	}
}

// backfillProgress shows a backfill's progress while its pipeline runs:
// the live display on a terminal, log lines otherwise. A nil
// *backfillProgress shows nothing.
type backfillProgress struct {
	t       *progressTracker
	display *progressDisplay // bar mode
	log     *slog.Logger     // log mode
	every   time.Duration

	stopCh, doneCh chan struct{}
}

// newBackfillProgress returns what cfg's backfill asks for (for `run`, log
// lines), or nil.
func newBackfillProgress(cfg *Config, log *slog.Logger) *backfillProgress {
	br := cfg.backfill
	if br == nil {
		switch {
		case cfg.display != nil:
			// `exporter demo` on a terminal.
			return &backfillProgress{t: cfg.display.t, display: cfg.display}
		case cfg.progressOff:
			return nil
		}
		// `run`: a long catch-up logs where each stream is; a short run
		// ends before the first line.
		return &backfillProgress{t: newProgressTracker(time.Now), log: log, every: progressLogEvery}
	}
	switch {
	case br.display != nil:
		return &backfillProgress{t: br.display.t, display: br.display}
	case br.progress == progressLog:
		return &backfillProgress{t: newProgressTracker(time.Now), log: log, every: progressLogEvery}
	}
	return nil
}

// observer is the pipeline's observer: base, and the progress tracker.
func (p *backfillProgress) observer(base pipeline.Observer) pipeline.Observer {
	if p == nil {
		return base
	}
	return pipeline.Observers(base, p.t.observer())
}

func (p *backfillProgress) start() {
	if p == nil {
		return
	}
	if p.display != nil {
		p.display.start()
		return
	}
	p.stopCh, p.doneCh = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.doneCh)
		tick := time.NewTicker(p.every)
		defer tick.Stop()
		last := map[string]streamStatus{}
		for {
			select {
			case <-tick.C:
				logProgress(p.log, p.t.snapshot(), last)
			case <-p.stopCh:
				return
			}
		}
	}()
}

func (p *backfillProgress) stop() {
	if p == nil {
		return
	}
	if p.display != nil {
		p.display.stop()
		return
	}
	if p.stopCh != nil {
		close(p.stopCh)
		<-p.doneCh
		p.stopCh = nil
	}
}
