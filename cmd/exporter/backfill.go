package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

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
}

var knownSources = []string{"swr", "artifact", "taurusdb", "dbss"}

func cmdBackfill(args []string, stdout, stderr io.Writer) int {
	br, err := parseBackfillArgs(args, time.Now(), stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "exporter backfill: %v\n(usage: exporter backfill --from <RFC3339|duration> [--to <RFC3339|now>] [--sources swr,artifact,taurusdb,dbss])\n", err)
		}
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
	log := newLogger(cfg, stderr)
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
	from := fs.String("from", "", "start of the range: RFC 3339 time or duration before now (72h, 7d)")
	to := fs.String("to", "now", "end of the range, inclusive: RFC 3339 time, duration before now, or now")
	sources := fs.String("sources", "", "comma list of sources to read: swr, artifact, taurusdb, dbss (default: every configured one)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *from == "" {
		return nil, errors.New("--from: required")
	}
	br := &backfillRange{}
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
func selectStreams(cfg *Config, streams []pipeline.Stream, log *slog.Logger) []pipeline.Stream {
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
			s = boundedStream{Stream: s, to: br.to}
		}
		out = append(out, s)
	}
	return out
}

// boundedStream delivers only records whose event time is at or before to,
// and ends once a page reaches past it. Sources read oldest first, so
// nothing after such a page can belong to the range.
type boundedStream struct {
	pipeline.Stream
	to time.Time
}

func (b boundedStream) Open(ctx context.Context, cursor []byte) (pipeline.Reader, error) {
	r, err := b.Stream.Open(ctx, cursor)
	if err != nil {
		return nil, err
	}
	return &boundedReader{r: r, s: b.Stream, to: b.to}, nil
}

type boundedReader struct {
	r    pipeline.Reader
	s    pipeline.Stream
	to   time.Time
	done bool
}

func (b *boundedReader) Next(ctx context.Context) (pipeline.Page, error) {
	if b.done {
		return pipeline.Page{}, io.EOF
	}
	page, err := b.r.Next(ctx)
	if err != nil {
		return page, err
	}
	kept := page.Records[:0:0]
	for _, raw := range page.Records {
		var ev pipeline.Event
		// A record that does not map is kept: the pipeline dead-letters it
		// with the reason.
		if err := b.s.Map(raw, &ev); err == nil && ev.Timestamp.After(b.to) {
			b.done = true
			continue
		}
		kept = append(kept, raw)
	}
	if b.done && len(kept) == 0 {
		// Nothing of this page is in the range: end without moving the
		// checkpoint past it.
		return pipeline.Page{}, io.EOF
	}
	page.Records = kept
	if b.done {
		page.Remaining = 0
	}
	return page, nil
}

// printBackfillReport is the completeness report of a backfill: per stream,
// what was fetched, written to each sink and dead-lettered, and whether the
// stream completed.
func printBackfillReport(w io.Writer, cfg *Config, sum *pipeline.Summary) {
	br := cfg.backfill
	fmt.Fprintf(w, "backfill %s .. %s (checkpoints under %s)\n", br.from.Format(time.RFC3339), br.to.Format(time.RFC3339), br.namespace)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	header := "STREAM\tSTATUS\tFETCHED"
	for _, s := range cfg.Sinks {
		header += "\tWRITTEN:" + strings.ToUpper(s)
	}
	fmt.Fprintln(tw, header+"\tDEAD-LETTERED\tCOMPLETE")
	incomplete := 0
	for _, r := range sum.Streams {
		line := fmt.Sprintf("%s\t%s\t%d", r.Stream, r.Status, r.Fetched)
		for _, s := range cfg.Sinks {
			line += fmt.Sprintf("\t%d", r.Written[s])
		}
		complete := "yes"
		if r.Status != pipeline.StatusDone {
			complete = "NO"
			incomplete++
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", line, r.DeadLettered, complete)
	}
	tw.Flush()
	for _, r := range sum.Streams {
		if r.Err != nil {
			fmt.Fprintf(w, "%s: %v\n", r.Stream, r.Err)
		}
	}
	t := sumUp(sum)
	fmt.Fprintf(w, "%d streams: %d records written, %d dead-lettered in %s\n",
		len(sum.Streams), t.written, t.dead, sum.Elapsed.Round(time.Millisecond))
	if incomplete > 0 {
		fmt.Fprintf(w, "INCOMPLETE: %d stream(s) did not complete; run the same command again to resume\n", incomplete)
	} else {
		fmt.Fprintln(w, "complete: every stream exported the whole range")
	}
}
