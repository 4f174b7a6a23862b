package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/hwcaudit/hwcaudit/checkpoint"
	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/deadletter"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 3
)

// closer is what export must close at the end of a run.
type closer interface{ Close(context.Context) error }

// export runs one export with cfg and returns the process exit code. The
// summary goes to out; logs go to log. reset, when not nil, runs under the
// run lock before anything is exported.
func export(ctx context.Context, cfg *Config, auth huaweiapi.Authorizer, log *slog.Logger, out io.Writer,
	reset func(context.Context, checkpoint.Store, []pipeline.Stream) error) (code int) {
	mx := startMetrics(cfg, log)
	defer func() { mx.finish(ctx, code) }()
	ckCfg := cfg.Checkpoint
	ckCfg.LockScope = lockScope(cfg)
	store, err := checkpoint.Open(ckCfg, version())
	if err != nil {
		log.Error("cannot open the checkpoint store", "error", err)
		return exitFailed
	}
	store = wrapStore(cfg, store)
	unlock, err := store.Lock(ctx)
	if errors.Is(err, checkpoint.ErrLocked) {
		// An overlapping run (a CronJob that outlived its schedule) is
		// already exporting these streams: leave it alone.
		log.Warn("another run is in progress; this one exits without exporting", "reason", err)
		fmt.Fprintf(out, "nothing done: %v\n", err)
		mx.skipped = true
		if cfg.backfill != nil {
			return exitFailed // the range was not exported
		}
		return exitOK
	}
	if err != nil {
		log.Error("cannot take the run lock", "error", err)
		return exitFailed
	}
	defer unlock()

	var closers []closer
	defer func() {
		// Close publishes what the sinks hold; it must not be cut short by
		// the signal that ended the run.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownGrace)
		defer cancel()
		code = closeAll(cctx, closers, code, log)
	}()

	dl, err := deadletter.Open(cfg.DeadLetter)
	if err != nil {
		log.Error("cannot open the dead-letter destination", "error", err)
		return exitFailed
	}
	closers = append(closers, dl)
	var outputs []pipeline.Output
	letters := redactingLetters{w: dl, secrets: cfg.secrets}
	for _, name := range cfg.Sinks {
		def, _ := sinkNamed(name) // loadConfig refused unknown names
		s, err := def.open(ctx, cfg)
		if err != nil {
			log.Error("cannot open sink", "sink", name, "error", err)
			return exitFailed
		}
		closers = append(closers, s)
		outputs = append(outputs, pipeline.Output{Name: name, Sink: s})
	}

	apiCfg := cfg.API
	apiCfg.OnResponse = mx.m.apiResponse // every HTTP attempt, for hwcaudit_api_requests_total
	api := huaweiapi.NewClient(apiCfg, auth)
	streams := selectStreams(cfg, allStreams(cfg, api, time.Now), log)

	if reset != nil {
		if err := reset(ctx, store, streams); err != nil {
			log.Error("cannot start over", "error", err)
			return exitFailed
		}
	}

	prog := newBackfillProgress(cfg, log)
	p, err := pipeline.New(pipeline.Config{
		Outputs:       outputs,
		DeadLetter:    letters,
		Store:         store,
		Backoff:       cfg.backoff(),
		MaxBatch:      cfg.BatchSize,
		Parallel:      cfg.ParallelStreams,
		MaxBytes:      cfg.MemoryBudget,
		ShutdownGrace: cfg.ShutdownGrace,
		Logger:        log,
		Observer:      prog.observer(mx.m.observer()),
	})
	if err != nil {
		log.Error("cannot build the pipeline", "error", err)
		return exitFailed
	}
	log.Info("export started", "streams", len(streams), "sinks", strings.Join(cfg.Sinks, ","), "start_from", cfg.start.Format(time.RFC3339))
	prog.start()
	runCtx, stop := ctx, context.CancelFunc(func() {})
	if cfg.MaxRunDuration > 0 {
		runCtx, stop = context.WithTimeoutCause(ctx, cfg.MaxRunDuration, errMaxRunDuration)
	}
	sum := p.Run(runCtx, streams)
	stop()
	prog.stop()
	timedOut := ctx.Err() == nil && errors.Is(context.Cause(runCtx), errMaxRunDuration)
	if timedOut {
		log.Warn("HWCAUDIT_MAX_RUN_DURATION reached: what was delivered is committed, the next run continues from there",
			"max_run_duration", cfg.MaxRunDuration.String())
	}
	mx.sum = sum
	// A person at a terminal reads the table; the log line beside it
	// would print every figure twice.
	logSummary(log, sum, cfg.backfill == nil && cfg.textLogsOnTerminal && isTerminal(unwrapRedacting(out)))
	if cfg.backfill != nil {
		saveBackfillStatus(ctx, store, cfg, sum, log)
		logBackfillReport(log, cfg, sum)
		printBackfillReport(out, cfg, sum, reportWidth(out))
	} else {
		printSummary(out, sum, tableWidth(out))
	}
	code = exitCode(sum)
	if timedOut && code == exitInterrupted && cfg.backfill == nil {
		// Stopped on purpose, not by a signal: a steady feed is on
		// schedule, only behind; alerting watches the checkpoint lag.
		fmt.Fprintf(out, "stopped after HWCAUDIT_MAX_RUN_DURATION (%s); the next run continues\n", cfg.MaxRunDuration)
		return exitOK
	}
	return code
}

// errMaxRunDuration is the cause of a run stopped by HWCAUDIT_MAX_RUN_DURATION.
var errMaxRunDuration = errors.New("HWCAUDIT_MAX_RUN_DURATION reached")

// closeAll closes every closer, each even when an earlier one failed, and
// returns the exit code with the failures counted: a Close that fails can
// leave delivered records unpublished (a file sink's last file stays
// hidden until the next run), so a run that would otherwise have succeeded
// fails, and alerting on the exit code or the last-success metric sees it.
// A failed or interrupted run keeps its own code.
func closeAll(ctx context.Context, closers []closer, code int, log *slog.Logger) int {
	failed := false
	for _, c := range closers {
		if err := c.Close(ctx); err != nil {
			log.Error("closing a destination failed", "error", err)
			failed = true
		}
	}
	if failed && code == exitOK {
		return exitFailed
	}
	return code
}

func exitCode(sum *pipeline.Summary) int {
	code := exitOK
	for _, r := range sum.Streams {
		switch r.Status {
		case pipeline.StatusFailed:
			return exitFailed
		case pipeline.StatusInterrupted:
			code = exitInterrupted
		}
	}
	return code
}

type totals struct {
	fetched, written, dead int64
	excluded               pipeline.Excluded
	failed, interrupted    int
	// unaccounted counts streams that are done yet whose fetched records
	// do not add up to delivered, dead-lettered and excluded ones.
	unaccounted int
	// apiTotal sums the streams' APITotal; apiTotalKnown when every
	// stream had one.
	apiTotal      int64
	apiTotalKnown bool
	duplicates    int64
	discrepancies int // streams whose fetched differs from a known APITotal
}

func sumUp(sum *pipeline.Summary) totals {
	t := totals{apiTotalKnown: len(sum.Streams) > 0}
	for _, r := range sum.Streams {
		t.fetched += r.Fetched
		t.dead += r.DeadLettered
		t.apiTotal += r.APITotal
		t.apiTotalKnown = t.apiTotalKnown && r.APITotal > 0
		t.duplicates += r.Duplicates
		t.excluded.BeforeStart += r.Excluded.BeforeStart
		t.excluded.AfterEnd += r.Excluded.AfterEnd
		if r.Status == pipeline.StatusDone && !r.Accounted() {
			t.unaccounted++
		}
		if discrepancy(r) {
			t.discrepancies++
		}
		// Records count as written once every sink took them; report the
		// least any sink took.
		first := true
		var least int64
		for _, n := range r.Written {
			if first || n < least {
				least, first = n, false
			}
		}
		t.written += least
		switch r.Status {
		case pipeline.StatusFailed:
			t.failed++
		case pipeline.StatusInterrupted:
			t.interrupted++
		}
	}
	return t
}

// logSummary writes one structured line for the run, the line a log
// pipeline alerts on, and one per failed stream. When terse, the table on
// the same terminal shows the counts: the line holds only what the table
// does not (discrepancies, and the API's total when it is not what was
// fetched).
func logSummary(log *slog.Logger, sum *pipeline.Summary, terse bool) {
	t := sumUp(sum)
	for _, r := range sum.Streams {
		if r.Status == pipeline.StatusFailed {
			log.Error("stream failed", "stream", r.Stream, "error", r.Err, "cursor", string(r.Cursor))
		}
		if r.Status == pipeline.StatusDone && !r.Accounted() {
			log.Error("records unaccounted for: fetched is not delivered + dead-lettered + excluded", "stream", r.Stream,
				"fetched", r.Fetched, "delivered", r.Delivered, "dead_lettered", r.DeadLettered, "excluded", r.Excluded.Total())
		}
	}
	if terse {
		var attrs []any
		if t.apiTotalKnown && t.apiTotal != t.fetched {
			attrs = append(attrs, "api_total", t.apiTotal)
		}
		attrs = append(attrs, "discrepancies", t.discrepancies)
		log.Info("run summary (the counts are in the table)", attrs...)
		return
	}
	attrs := []any{
		"streams", len(sum.Streams), "failed", t.failed, "interrupted", t.interrupted,
		"fetched", t.fetched,
	}
	if t.apiTotalKnown {
		// Only when every stream's source could tell.
		attrs = append(attrs, "api_total", t.apiTotal)
	}
	attrs = append(attrs, "written", t.written, "dead_lettered", t.dead, "duplicates_skipped", t.duplicates,
		"excluded_before_start", t.excluded.BeforeStart, "excluded_after_end", t.excluded.AfterEnd,
		"unaccounted_streams", t.unaccounted, "discrepancies", t.discrepancies,
		"elapsed", sum.Elapsed.Round(time.Millisecond).String(), "records_per_second", rate(t.fetched, sum.Elapsed))
	log.Info("run summary", attrs...)
}

func rate(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

// printSummary is the human-readable report at the end of a run: a table
// of at most width columns (see summaryTable), then what needs attention;
// only a failed stream's reason, one line each, may be longer.
func printSummary(w io.Writer, sum *pipeline.Summary, width int) {
	t := sumUp(sum)
	for _, line := range summaryTable(sum, t, width) {
		fmt.Fprintln(w, line)
	}
	for _, r := range sum.Streams {
		if r.Err != nil {
			// Whole, on one line each: the reason is what one greps for.
			fmt.Fprintf(w, "%s: %v\n", r.Stream, r.Err)
		}
	}
	fmt.Fprintf(w, "%d records in %s (%d records/s)\n", t.fetched, sum.Elapsed.Round(time.Millisecond), rate(t.fetched, sum.Elapsed))
	if t.unaccounted > 0 {
		writeWrapped(w, fmt.Sprintf("%d stream(s) do not add up: fetched is not written + dead-lettered + excluded; see the log", t.unaccounted), "", width)
	}
	switch {
	case t.failed > 0:
		writeWrapped(w, fmt.Sprintf("%d stream(s) failed; their checkpoints hold the last delivered position", t.failed), "", width)
	case t.interrupted > 0:
		writeWrapped(w, fmt.Sprintf("interrupted: %d stream(s) did not catch up; the next run resumes from the checkpoints", t.interrupted), "", width)
	case t.fetched == 0:
		fmt.Fprintln(w, "nothing new: every stream is caught up")
	}
}

// minStreamWidth is the narrowest the stream column gets on a narrow
// terminal: enough for a source, "…" and an operation.
const minStreamWidth = 20

// summaryTable renders one row per stream and a row of totals, "N streams",
// in at most width columns when it can: the checkpoint column is shortened
// or left out first (the checkpoint in full is one `exporter checkpoints
// show` away, which a line under the table says), then the stream keys lose
// their middle, down to minStreamWidth.
func summaryTable(sum *pipeline.Summary, t totals, width int) []string {
	header := []string{"STREAM", "STATUS", "FETCHED", "WRITTEN", "DEAD-LETTERED", "EXCLUDED", "REPEATS", "CHECKPOINT"}
	rows := make([][]string, 0, len(sum.Streams)+1)
	for _, r := range sum.Streams {
		var least int64 = -1
		for _, n := range r.Written {
			if least < 0 || n < least {
				least = n
			}
		}
		cur := compactJSON(r.Cursor)
		if cur == "" {
			cur = "(none)"
		}
		rows = append(rows, []string{r.Stream, string(r.Status), itoa(r.Fetched), itoa(max(least, 0)), itoa(r.DeadLettered),
			itoa(r.Excluded.Total()), itoa(r.Duplicates), cur})
	}
	rows = append(rows, []string{fmt.Sprintf("%d streams", len(sum.Streams)), "", itoa(t.fetched), itoa(t.written), itoa(t.dead),
		itoa(t.excluded.Total()), itoa(t.duplicates), ""})
	const gap = 2
	var colW []int
	var fixed int // every column but the stream and the checkpoint, with their gaps
	measure := func() {
		colW = make([]int, len(header))
		for _, row := range append([][]string{header}, rows...) {
			for i, c := range row {
				colW[i] = max(colW[i], utf8.RuneCountInString(c))
			}
		}
		fixed = 0
		for _, n := range colW[1:7] {
			fixed += n + gap
		}
	}
	measure()
	if width-fixed < 30 {
		// Narrow: shorter headings leave the keys more room.
		header[4], header[5] = "DEAD", "EXCL"
		measure()
	}
	last := len(header)
	full := colW[0] + fixed + gap + colW[7]
	shortened := false
	switch {
	case full <= width:
	case colW[0]+fixed+gap+len("CHECKPOINT") <= width:
		// Room for the full keys and part of each checkpoint.
		colW[7] = width - colW[0] - fixed - gap
		shortened = true
	default:
		last = 7
		colW[0] = max(min(colW[0], width-fixed), minStreamWidth)
		shortened = true
	}
	lines := make([]string, 0, len(rows)+2)
	for i, row := range append([][]string{header}, rows...) {
		var b strings.Builder
		for j, c := range row[:last] {
			if j > 0 {
				b.WriteString(strings.Repeat(" ", gap))
			}
			switch {
			case j == 0:
				b.WriteString(padRight(shortenKey(c, colW[j]), colW[j]))
			case j == 7:
				b.WriteString(ellipsize(c, colW[j]))
			case j >= 2 && i > 0: // counts, right-aligned
				b.WriteString(strings.Repeat(" ", colW[j]-utf8.RuneCountInString(c)) + c)
			default:
				b.WriteString(padRight(c, colW[j]))
			}
		}
		lines = append(lines, strings.TrimRight(b.String(), " "))
	}
	if shortened {
		note := "(checkpoints in full: exporter checkpoints show STREAM; every key: exporter checkpoints list)"
		if utf8.RuneCountInString(note) > width {
			note = "(checkpoints in full: exporter checkpoints list)"
		}
		lines = append(lines, note)
	}
	return lines
}

// shortenKey fits a stream key into n columns by shortening its middle
// part: the source before the first "/" and the last part (an operation,
// an instance) stay whole when they fit, as they tell streams apart.
func shortenKey(key string, n int) string {
	if utf8.RuneCountInString(key) <= n {
		return key
	}
	first, rest, ok := strings.Cut(key, "/")
	if !ok {
		return shortenMiddle(key, n)
	}
	middle, last := "", rest
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		middle, last = rest[:i], rest[i+1:]
	}
	if middle == "" {
		// source/ID: the id loses its middle.
		if room := n - utf8.RuneCountInString(first) - 1; room >= 5 {
			return first + "/" + shortenMiddle(last, room)
		}
		return shortenMiddle(key, n)
	}
	if room := n - utf8.RuneCountInString(first) - utf8.RuneCountInString(last) - 2; room >= 3 {
		return first + "/" + shortenMiddle(middle, room) + "/" + last
	}
	return shortenMiddle(key, n)
}

// unwrapRedacting is the writer a redactingWriter writes to.
func unwrapRedacting(w io.Writer) io.Writer {
	if r, ok := w.(redactingWriter); ok {
		return r.w
	}
	return w
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// reportWidth is the width a backfill report fits: the terminal's, or no
// limit when it goes to a file or a pipe, where whole stream keys serve
// the record of what was exported better than a tidy line.
func reportWidth(out io.Writer) int {
	if !isTerminal(unwrapRedacting(out)) {
		return 0
	}
	return tableWidth(out)
}

// tableWidth is the width of the terminal out writes to, 100 columns when
// it is not a terminal (a log file, a pipe) or cannot tell.
func tableWidth(out io.Writer) int {
	out = unwrapRedacting(out)
	if f, ok := out.(*os.File); ok && isTerminal(f) {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			return w
		}
	}
	return 100
}

// lockScope separates the run locks of exports whose streams cannot
// overlap: each shard, and each backfill range (which has its own
// checkpoints), so that they run side by side on one checkpoint store.
func lockScope(cfg *Config) string {
	var parts []string
	if cfg.backfill != nil {
		parts = append(parts, strings.TrimSuffix(cfg.backfill.namespace, "/"))
	}
	if cfg.shard.count > 1 {
		parts = append(parts, fmt.Sprintf("shard-%d-of-%d", cfg.shard.index, cfg.shard.count))
	}
	return strings.Join(parts, "/")
}
