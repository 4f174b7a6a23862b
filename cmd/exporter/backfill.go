package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/checkpoint"
	"github.com/hwcaudit/hwcaudit/pipeline"
)

// backfillRange is what `exporter backfill` asks export to do differently
// from `exporter run`: start at from, deliver nothing after to, keep its
// checkpoints apart from the run's, and read only some sources.
type backfillRange struct {
	from, to time.Time
	// namespace prefixes every checkpoint key: "backfill/<from>_<to>/".
	namespace string
	// sources, when not empty, limits the streams to these sources.
	sources []string
	// progress is how progress is shown: bar, log or none (--progress
	// resolved); display is the live display in bar mode.
	progress string
	display  *progressDisplay
	// metricsAddr is --metrics-addr: a backfill runs for hours, long
	// enough to be scraped.
	metricsAddr string
}

var knownSources = sourceNames()

func cmdBackfill(args []string, stdout, stderr io.Writer) int {
	br, err := parseBackfillArgs(args, time.Now(), stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "exporter backfill: %v\n(usage: exporter backfill --from TIME [--to TIME|now] [flags]; see exporter backfill --help)\n", err)
		}
		return exitUsage
	}
	if br.progress, err = resolveProgress(br.progress, stderr); err != nil {
		fmt.Fprintf(stderr, "exporter backfill: %v\n", err)
		return exitUsage
	}
	ctx, stop := signalContext()
	defer stop()
	cfg, err := loadConfig(ctx, envconfig.OsLookuper(), time.Now())
	if err != nil {
		return configError(stderr, err)
	}
	cfg.start = br.from
	cfg.backfill = br
	cfg.metricsAddr = br.metricsAddr
	var log *slog.Logger
	if br.progress == progressBar {
		// Logs reach the terminal through the display, which keeps its
		// lines whole, and only warnings and errors while it is shown.
		br.display = newProgressDisplay(stderr, newProgressTracker(time.Now))
		if cfg.LogFormat == "auto" && isTerminal(stderr) {
			cfg.LogFormat = "text"
		}
		log = slog.New(quietHandler{newLogger(cfg, br.display).Handler(), br.display})
	} else {
		log = newLogger(cfg, stderr)
	}
	auth, err := authorizer(cfg)
	if err != nil {
		return configError(stderr, err)
	}
	log.Info("backfill", "from", br.from.Format(time.RFC3339Nano), "to", br.to.Format(time.RFC3339Nano), "checkpoints", br.namespace)
	return export(ctx, cfg, auth, log, reportWriter(cfg, stdout, stderr), nil)
}

// parseBackfillArgs reads the backfill flags. Every error names the flag.
func parseBackfillArgs(args []string, now time.Time, stderr io.Writer) (*backfillRange, error) {
	fs := flag.NewFlagSet("exporter backfill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage of exporter backfill:\n"+
			"  exporter backfill --from TIME [--to TIME|now] [--sources LIST] [--progress MODE]\n"+
			"                    [--metrics-addr HOST:PORT]\n\n"+
			"Exports the records with @timestamp in [from, to] once, under checkpoints of its own;\n"+
			"the same command again resumes it. Ends with a completeness report.\n\n")
		printFlags(fs.Output(), fs)
	}
	from := fs.String("from", "", "start of the range: RFC 3339 time or duration before now (72h, 7d)")
	to := fs.String("to", "now", "end of the range, inclusive: RFC 3339 time, duration before now, or now")
	sources := fs.String("sources", "", "comma list of sources to read: "+strings.Join(sourceNames(), ", ")+" (default: every configured one)")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus /metrics on this host:port while the backfill runs, e.g. 127.0.0.1:9464")
	progress := fs.String("progress", progressAuto, "how progress is shown: bar (live, on a terminal), log (a log line per stream every 10s), none, or auto (bar on a terminal, log otherwise)")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
		}
		return nil, err
	}
	if flagSet(fs, "metrics-addr") && *metricsAddr == "" {
		return nil, errors.New("--metrics-addr needs a host:port, e.g. 127.0.0.1:9464")
	}
	if err := checkMetricsAddr(*metricsAddr); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *from == "" {
		return nil, errors.New("--from: required")
	}
	switch *progress {
	case progressAuto, progressBar, progressLog, progressNone:
	default:
		return nil, fmt.Errorf("--progress: want auto, bar, log or none, got %q", *progress)
	}
	br := &backfillRange{progress: *progress, metricsAddr: *metricsAddr}
	var err error
	if br.from, err = parseStart(*from, now); err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	if *to == "now" {
		br.to = now.UTC()
	} else if br.to, err = parseStart(*to, now); err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	if br.from.After(br.to) {
		return nil, fmt.Errorf("--from %s is after --to %s", br.from.Format(time.RFC3339Nano), br.to.Format(time.RFC3339Nano))
	}
	if *sources != "" {
		for _, s := range strings.Split(*sources, ",") {
			s = strings.TrimSpace(s)
			if !slices.Contains(knownSources, s) {
				return nil, fmt.Errorf("--sources: unknown source %q (known: %s)", s, strings.Join(knownSources, ", "))
			}
			br.sources = append(br.sources, s)
		}
	}
	// The namespace must come out the same when the same command is run
	// again, so that it resumes: absolute times are keyed by their value,
	// relative ones (72h, now) by what was typed.
	br.namespace = "backfill/" + rangeKey(*from, br.from) + "_" + rangeKey(*to, br.to) + "/"
	return br, nil
}

func rangeKey(flagValue string, t time.Time) string {
	if _, err := time.Parse(time.RFC3339Nano, flagValue); err == nil {
		return t.Format(time.RFC3339Nano)
	}
	return flagValue
}

// wrapStore returns the checkpoint store export uses: the configured one,
// or for a backfill a view of it under the backfill's own namespace.
func wrapStore(cfg *Config, s checkpoint.Store) checkpoint.Store {
	if cfg.backfill == nil {
		return s
	}
	return prefixStore{Store: s, prefix: cfg.backfill.namespace}
}

// prefixStore keeps a backfill's checkpoints apart from the run's by
// prefixing every stream key. The run lock is shared: a backfill and a run
// never export at the same time.
type prefixStore struct {
	checkpoint.Store
	prefix string
}

func (p prefixStore) Load(ctx context.Context, stream string) ([]byte, error) {
	return p.Store.Load(ctx, p.prefix+stream)
}

func (p prefixStore) Save(ctx context.Context, stream string, cursor []byte) error {
	return p.Store.Save(ctx, p.prefix+stream, cursor)
}

func (p prefixStore) Delete(ctx context.Context, stream string) error {
	return p.Store.Delete(ctx, p.prefix+stream)
}

func (p prefixStore) List(ctx context.Context) ([]checkpoint.Checkpoint, error) {
	all, err := p.Store.List(ctx)
	var out []checkpoint.Checkpoint
	for _, c := range all {
		if rest, ok := strings.CutPrefix(c.Stream, p.prefix); ok {
			c.Stream = rest
			out = append(out, c)
		}
	}
	return out, err
}

// shardSpec is HWCAUDIT_SHARD parsed; count 0 means no sharding.
type shardSpec struct{ index, count uint32 }

func parseShard(v string) (shardSpec, error) {
	if v == "" {
		return shardSpec{}, nil
	}
	i, c, ok := strings.Cut(v, "/")
	index, err1 := strconv.ParseUint(i, 10, 32)
	count, err2 := strconv.ParseUint(c, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return shardSpec{}, fmt.Errorf("HWCAUDIT_SHARD: want index/count, e.g. 0/3, got %q", v)
	}
	if count < 1 {
		return shardSpec{}, fmt.Errorf("HWCAUDIT_SHARD: count must be at least 1, got %q", v)
	}
	if index >= count {
		return shardSpec{}, fmt.Errorf("HWCAUDIT_SHARD: index must be less than count (0..%d), got %q", count-1, v)
	}
	return shardSpec{index: uint32(index), count: uint32(count)}, nil
}

// shardOf is the shard a stream belongs to: FNV-1a (32 bit) of its key
// modulo count, stable across runs, versions and hosts.
func shardOf(key string, count uint32) uint32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32() % count
}

// selectStreams drops the streams of other shards and, for a backfill, of
// other sources, and bounds a backfill's streams at its end.
func selectStreams(cfg *Config, streams []rangedStream, log *slog.Logger) []pipeline.Stream {
	var out []pipeline.Stream
	for _, s := range streams {
		key := s.Key()
		if cfg.shard.count > 0 {
			if sh := shardOf(key, cfg.shard.count); sh != cfg.shard.index {
				log.Info("stream skipped: it belongs to another shard", "stream", key, "shard", fmt.Sprintf("%d/%d", sh, cfg.shard.count), "this_shard", cfg.Shard)
				continue
			}
		}
		if br := cfg.backfill; br != nil {
			source, _, _ := strings.Cut(key, "/")
			if len(br.sources) > 0 && !slices.Contains(br.sources, source) {
				log.Info("stream skipped: its source is not in --sources", "stream", key)
				continue
			}
			// --to is inclusive; a reader's end is not.
			s.EndAt(br.to.Add(time.Nanosecond))
		}
		if l, ok := s.(interface{ SetLogger(*slog.Logger) }); ok {
			l.SetLogger(log) // a stream's own warnings (CTS: traces past retention)
		}
		out = append(out, s)
	}
	return out
}

// rangedStream is a stream whose reader bounds a range itself, deciding
// by every record's time, so that one record stamped wrongly can neither
// end the range early nor be delivered outside it. Every source's stream
// is one.
type rangedStream interface {
	pipeline.Stream
	EndAt(end time.Time)
	prober
}

// printBackfillReport is the completeness report of a backfill: per stream,
// what was fetched and what the API's counts say the range holds, what was
// written to each sink, dead-lettered and skipped as already delivered, and
// whether the stream completed.
func printBackfillReport(w io.Writer, cfg *Config, sum *pipeline.Summary, width int) {
	br := cfg.backfill
	writeWrapped(w, fmt.Sprintf("backfill %s .. %s (checkpoints under %s)", br.from.Format(time.RFC3339), br.to.Format(time.RFC3339), br.namespace), "", width)
	// The table as wide as its notes make it; on a terminal too narrow for
	// them the notes shrink to "*" (the lines under the table say what
	// each means).
	table := func(notes bool) ([]string, int, int) {
		header := []string{"STREAM", "STATUS", "FETCHED", "API"}
		for _, s := range cfg.Sinks {
			if len(cfg.Sinks) == 1 {
				header = append(header, "WRITTEN")
			} else {
				header = append(header, "WRITTEN:"+strings.ToUpper(s))
			}
		}
		header = append(header, "DEAD", "EXCL", "REPEATS", "COMPLETE")
		var rows [][]string
		incomplete, discrepancies := 0, 0
		for _, r := range sum.Streams {
			row := []string{r.Stream, string(r.Status), itoa(r.Fetched), apiTotal(r)}
			for _, s := range cfg.Sinks {
				row = append(row, itoa(r.Written[s]))
			}
			complete, flagged := "yes", false
			if r.Status != pipeline.StatusDone {
				complete = "NO"
				incomplete++
			}
			if discrepancy(r) {
				discrepancies++
				flagged = true
				if notes {
					complete += " (DISCREPANCY)"
				}
			}
			if r.Status == pipeline.StatusDone && !r.Accounted() {
				flagged = true
				if notes {
					complete += " (UNACCOUNTED)"
				}
			}
			if flagged && !notes {
				complete += "*"
			}
			rows = append(rows, append(row, itoa(r.DeadLettered), itoa(r.Excluded.Total()), itoa(r.Duplicates), complete))
		}
		return fitTable(header, rows, width), incomplete, discrepancies
	}
	lines, incomplete, discrepancies := table(true)
	if width > 0 && slices.ContainsFunc(lines, func(l string) bool { return utf8.RuneCountInString(l) > width }) {
		lines, _, _ = table(false)
	}
	for _, line := range lines {
		fmt.Fprintln(w, line)
	}
	for _, r := range sum.Streams {
		if r.Err != nil {
			fmt.Fprintf(w, "%s: %v\n", r.Stream, r.Err)
		}
	}
	for _, r := range sum.Streams {
		if discrepancy(r) {
			writeWrapped(w, fmt.Sprintf("%s: DISCREPANCY: fetched %d records, the API counted %d in the range read", r.Stream, r.Fetched, r.APITotal), "", width)
		}
	}
	t := sumUp(sum)
	var dups int64
	for _, r := range sum.Streams {
		dups += r.Duplicates
	}
	writeWrapped(w, fmt.Sprintf("%d streams: %d records written, %d dead-lettered, %d outside the range, %d duplicates skipped in %s",
		len(sum.Streams), t.written, t.dead, t.excluded.Total(), dups, sum.Elapsed.Round(time.Millisecond)), "", width)
	if t.unaccounted > 0 {
		writeWrapped(w, fmt.Sprintf("WARNING (UNACCOUNTED): %d stream(s) do not add up: fetched is not written + dead-lettered + excluded; see the log", t.unaccounted), "", width)
	}
	if discrepancies > 0 {
		writeWrapped(w, fmt.Sprintf("WARNING: %d stream(s) fetched a different number of records than the API counted; check them (this warning does not change the exit code)", discrepancies), "", width)
	}
	if incomplete > 0 {
		writeWrapped(w, fmt.Sprintf("INCOMPLETE: %d stream(s) did not complete; run the same command again to resume", incomplete), "", width)
	} else {
		fmt.Fprintln(w, "complete: every stream exported the whole range")
	}
	writeWrapped(w, "(API: records the API's counts put in the range this run read, - when the source cannot tell; "+
		"DEAD: dead-lettered with the reason; EXCL: records the API returned from before --from or after --to; "+
		"REPEATS: records listed again and skipped as already delivered; "+
		"the exit code is non-zero only when a stream did not complete)", "", width)
}

// fitTable renders header and rows in columns two spaces apart, counts
// right-aligned, in at most width columns when it can: the first column
// (stream keys) loses its middle, down to 12 columns (a source, "…" and
// the key's end); the last column is left as long as it is. width 0: no
// limit.
func fitTable(header []string, rows [][]string, width int) []string {
	const gap = 2
	colW := make([]int, len(header))
	for _, row := range append([][]string{header}, rows...) {
		for i, c := range row {
			colW[i] = max(colW[i], utf8.RuneCountInString(c))
		}
	}
	if width > 0 {
		rest := 0
		for _, n := range colW[1:] {
			rest += n + gap
		}
		colW[0] = max(min(colW[0], width-rest), min(colW[0], 12))
	}
	numeric := func(c string) bool {
		_, err := strconv.ParseInt(c, 10, 64)
		return err == nil || c == "-"
	}
	lines := make([]string, 0, len(rows)+1)
	for i, row := range append([][]string{header}, rows...) {
		var b strings.Builder
		for j, c := range row {
			if j > 0 {
				b.WriteString(strings.Repeat(" ", gap))
			}
			switch {
			case j == 0:
				b.WriteString(padRight(shortenKey(c, colW[0]), colW[0]))
			case i > 0 && j < len(row)-1 && numeric(c):
				b.WriteString(strings.Repeat(" ", colW[j]-utf8.RuneCountInString(c)) + c)
			default:
				b.WriteString(padRight(c, colW[j]))
			}
		}
		lines = append(lines, strings.TrimRight(b.String(), " "))
	}
	return lines
}

// apiTotal is the API-TOTAL cell: "-" when the source cannot tell.
func apiTotal(r pipeline.StreamResult) string {
	if r.APITotal <= 0 {
		return "-"
	}
	return strconv.FormatInt(r.APITotal, 10)
}

// discrepancy tells a stream whose records fetched do not add up to the
// API's count of the range it read.
func discrepancy(r pipeline.StreamResult) bool {
	return r.APITotal > 0 && r.Fetched != r.APITotal
}

// logBackfillReport logs the completeness report, one JSON line per
// stream, for log pipelines: api_total is left out when the source cannot
// tell. A discrepancy is logged as a warning.
func logBackfillReport(log *slog.Logger, cfg *Config, sum *pipeline.Summary) {
	br := cfg.backfill
	for _, r := range sum.Streams {
		attrs := []any{
			"stream", r.Stream, "status", string(r.Status), "from", br.from.Format(time.RFC3339Nano), "to", br.to.Format(time.RFC3339Nano),
			"fetched", r.Fetched,
		}
		if r.APITotal > 0 {
			attrs = append(attrs, "api_total", r.APITotal)
		}
		written := make([]any, 0, len(cfg.Sinks))
		for _, s := range cfg.Sinks {
			written = append(written, slog.Int64(s, r.Written[s]))
		}
		attrs = append(attrs, slog.Group("written", written...), "dead_lettered", r.DeadLettered,
			"excluded_before_start", r.Excluded.BeforeStart, "excluded_after_end", r.Excluded.AfterEnd, "duplicates_skipped", r.Duplicates,
			"complete", r.Status == pipeline.StatusDone, "discrepancy", discrepancy(r))
		if discrepancy(r) {
			log.Warn("backfill stream report: fetched differs from the API's count", attrs...)
		} else {
			log.Info("backfill stream report", attrs...)
		}
	}
}

// statusKey is where a backfill records which of its streams completed,
// inside its namespace: "status", or "status-shard-I-of-N" for a shard.
// Stream keys always hold a "/", so no stream can be named so.
func statusKey(cfg *Config) string {
	if cfg.shard.count > 1 {
		return fmt.Sprintf("status-shard-%d-of-%d", cfg.shard.index, cfg.shard.count)
	}
	return "status"
}

// backfillStatus is the document saved under statusKey at the end of every
// backfill run; `exporter checkpoints list` reads it to tell a finished
// backfill from one still to resume.
type backfillStatus struct {
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Done       []string  `json:"done"`
	Incomplete []string  `json:"incomplete"`
}

// saveBackfillStatus records which streams of this run completed. store
// is the backfill's own view of the checkpoint store. A failure is logged:
// the range was exported all the same.
func saveBackfillStatus(ctx context.Context, store pipeline.Store, cfg *Config, sum *pipeline.Summary, log *slog.Logger) {
	st := backfillStatus{From: cfg.backfill.from, To: cfg.backfill.to, Done: []string{}, Incomplete: []string{}}
	for _, r := range sum.Streams {
		if r.Status == pipeline.StatusDone {
			st.Done = append(st.Done, r.Stream)
		} else {
			st.Incomplete = append(st.Incomplete, r.Stream)
		}
	}
	doc, err := json.Marshal(st)
	if err != nil {
		panic(err) // times and strings always encode
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := store.Save(sctx, statusKey(cfg), doc); err != nil {
		log.Error("cannot record the backfill's status; 'exporter checkpoints list' will show it incomplete", "error", err)
	}
}
