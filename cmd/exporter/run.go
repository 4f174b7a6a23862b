package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

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
		Observer:      prog.observer(mx.m),
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
	logSummary(log, sum)
	if cfg.backfill != nil {
		saveBackfillStatus(ctx, store, cfg, sum, log)
		logBackfillReport(log, cfg, sum)
		printBackfillReport(out, cfg, sum)
	} else {
		printSummary(out, sum)
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
// pipeline alerts on, and one per failed stream.
func logSummary(log *slog.Logger, sum *pipeline.Summary) {
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

// printSummary is the human-readable report at the end of a run.
func printSummary(w io.Writer, sum *pipeline.Summary) {
	t := sumUp(sum)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tSTATUS\tFETCHED\tWRITTEN\tDEAD-LETTERED\tEXCLUDED\tREPEATS\tCHECKPOINT")
	for _, r := range sum.Streams {
		var least int64 = -1
		for _, n := range r.Written {
			if least < 0 || n < least {
				least = n
			}
		}
		cur := string(r.Cursor)
		if cur == "" {
			cur = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Stream, r.Status, r.Fetched, max(least, 0), r.DeadLettered, r.Excluded.Total(), r.Duplicates, cur)
	}
	tw.Flush()
	for _, r := range sum.Streams {
		if r.Err != nil {
			fmt.Fprintf(w, "%s: %v\n", r.Stream, r.Err)
		}
	}
	fmt.Fprintf(w, "%d streams: %d records written, %d dead-lettered, %d excluded by the start or end, %d repeats skipped in %s (%d records/s)\n",
		len(sum.Streams), t.written, t.dead, t.excluded.Total(), t.duplicates, sum.Elapsed.Round(time.Millisecond), rate(t.fetched, sum.Elapsed))
	if t.unaccounted > 0 {
		fmt.Fprintf(w, "%d stream(s) do not add up: fetched is not written + dead-lettered + excluded; see the log\n", t.unaccounted)
	}
	switch {
	case t.failed > 0:
		fmt.Fprintf(w, "%d stream(s) failed; their checkpoints hold the last delivered position\n", t.failed)
	case t.interrupted > 0:
		fmt.Fprintf(w, "interrupted: %d stream(s) did not catch up; the next run resumes from the checkpoints\n", t.interrupted)
	case t.fetched == 0:
		fmt.Fprintln(w, "nothing new: every stream is caught up")
	}
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
