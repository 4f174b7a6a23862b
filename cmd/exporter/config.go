package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/checkpoint"
	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/deadletter"
	"github.com/hwcaudit/hwcaudit/sinks/egress"
	"github.com/hwcaudit/hwcaudit/sinks/essink"
	"github.com/hwcaudit/hwcaudit/sinks/filesink"
	"github.com/hwcaudit/hwcaudit/sinks/kafkasink"
	"github.com/hwcaudit/hwcaudit/sinks/s3sink"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// Config is the whole exporter configuration, read from the environment.
// Each package owns the part it uses; this struct only gathers them.
type Config struct {
	// Sinks are the destinations, a comma list of file, stdout, kafka,
	// elasticsearch and s3; every batch is written to all of them.
	// Default "file".
	Sinks []string `env:"HWCAUDIT_SINKS,default=file"`
	// Region is the Huawei Cloud region, e.g. cn-north-4. It builds default
	// endpoints and fills cloud.region.
	Region string `env:"HWCAUDIT_REGION"`
	// StartFrom is where a stream without a checkpoint starts: an RFC 3339
	// time or a duration before now (72h, 7d). Default 24h.
	StartFrom string `env:"HWCAUDIT_START_FROM,default=24h"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `env:"HWCAUDIT_LOG_LEVEL,default=info"`
	// LogFormat is json, text, or auto (text on a terminal). Default auto.
	LogFormat string `env:"HWCAUDIT_LOG_FORMAT,default=auto"`

	// BatchSize caps events per sink write. Default 2000.
	BatchSize int `env:"HWCAUDIT_BATCH_SIZE,default=2000"`
	// ParallelStreams is how many streams run at once. Default 4.
	ParallelStreams int `env:"HWCAUDIT_PARALLEL_STREAMS,default=4"`
	// PprofDir, when set, receives a CPU profile (cpu.pprof), an
	// allocation profile at exit (heap.pprof) and the heap at its peak
	// (heap-peak.pprof) of the run, for go tool pprof.
	//
	// main reads it before configuration loads (see profile.go), so that
	// the profile covers everything; it is listed here to be documented
	// with the other variables.
	PprofDir string `env:"HWCAUDIT_PPROF_DIR"`
	// Concurrency is how many API requests one stream keeps in flight
	// while it catches up (pages of SWR and CodeArts Artifact, pages of a
	// TaurusDB or DBSS window), 1..64. HWCAUDIT_MAX_RPS still caps the
	// rate. Default 4.
	Concurrency int `env:"HWCAUDIT_CONCURRENCY,default=4"`
	// ShutdownGrace is how long in-flight writes may finish after SIGTERM.
	// Default 10s.
	ShutdownGrace time.Duration `env:"HWCAUDIT_SHUTDOWN_GRACE,default=10s"`
	// MaxRunDuration bounds a run: once it has passed, fetching stops,
	// what is on its way is delivered and committed, and the run exits 0
	// with a warning that the next run continues (a backfill exits 3, as
	// when interrupted, so that its Job tries again). Keep it well under
	// the CronJob's activeDeadlineSeconds (3600 in the chart), which kills
	// the pod without that grace. 0 disables it. Default 45m.
	MaxRunDuration time.Duration `env:"HWCAUDIT_MAX_RUN_DURATION,default=45m"`
	// MemoryBudget bounds, in bytes, the fetched pages and their ECS
	// documents held between the API and the sinks, across all streams.
	// Default 64 MiB (67108864); the chart's 256Mi limit has room for it,
	// the readers' own pages and the Go runtime.
	MemoryBudget int64 `env:"HWCAUDIT_MEMORY_BUDGET,default=67108864"`
	// RetryInitial is the first backoff after a retryable failure
	// (network, 429, 5xx); each next one doubles, with jitter. Default 500ms.
	RetryInitial time.Duration `env:"HWCAUDIT_RETRY_INITIAL,default=500ms"`
	// RetryMax is the longest single backoff. Default 30s.
	RetryMax time.Duration `env:"HWCAUDIT_RETRY_MAX,default=30s"`
	// RetryMaxElapsed is how long one operation is retried before the
	// stream fails; its checkpoint stays where delivery stopped. Default 5m.
	RetryMaxElapsed time.Duration `env:"HWCAUDIT_RETRY_MAX_ELAPSED,default=5m"`
	// PushgatewayURL, when set, is where each run pushes its metrics at
	// the end (job "hwcaudit", grouped by shard and mode), after failures
	// too. http or https, checked at start.
	PushgatewayURL string `env:"HWCAUDIT_PUSHGATEWAY_URL"`
	// Shard is index/count: this process exports only the streams whose
	// key hashes (FNV-1a 32) to index modulo count. Default: every stream.
	Shard string `env:"HWCAUDIT_SHARD"`
	// AllowInsecure is the one opt-in to plain-text transport: it sets
	// every sink's own AllowInsecure (Elasticsearch, S3 and the S3 dead
	// letters, Kafka SASL without TLS) and accepts http:// Huawei Cloud API
	// endpoint overrides (and a Pushgateway URL with a password) on hosts
	// that are not on loopback. Every insecure setting in force is logged
	// at start and shown by `exporter check`. Default false.
	AllowInsecure bool `env:"HWCAUDIT_ALLOW_INSECURE,default=false"`

	Checkpoint checkpoint.Config
	DeadLetter deadletter.Config
	File       filesink.Config
	Kafka      kafkasink.Config
	S3         s3sink.Config
	ES         essink.Config
	API        huaweiapi.Config
	Window     window.Config
	SourcesConfig

	// start is StartFrom resolved against the clock at load time.
	start time.Time
	// metricsAddr is --metrics-addr of `exporter run` or `exporter backfill`.
	metricsAddr string
	// shard is Shard parsed.
	shard shardSpec
	// backfill is set by `exporter backfill`.
	backfill *backfillRange
	// fileSecrets are the secret variables read from NAME_FILE.
	fileSecrets map[string]string
	// secrets is every configured secret, which every log line, report
	// and check line is redacted of; the API client adds the credentials
	// it signs with.
	secrets *egress.Secrets
	// display, when set, is the live progress display of `exporter
	// demo` on a terminal (a backfill's is backfill.display).
	display *progressDisplay
	// progressOff is `exporter demo --progress none`.
	progressOff bool
	// textLogsOnTerminal is set by newLogger when logs are text on a
	// terminal: a person reads them, beside the report.
	textLogsOnTerminal bool
	// warned is set once the insecure settings were logged.
	warned bool
}

// loadConfig reads the environment through lookup and validates it. Every
// error names the variable at fault.
func loadConfig(ctx context.Context, lookup envconfig.Lookuper, now time.Time) (*Config, error) {
	var cfg Config
	fromFiles, err := readSecretFiles(lookup)
	if err != nil {
		return nil, err
	}
	cfg.fileSecrets = fromFiles
	if len(fromFiles) > 0 {
		lookup = envconfig.MultiLookuper(envconfig.MapLookuper(fromFiles), lookup)
	}
	// envconfig reports a bad value by struct field; remember which
	// variable was read last so that the message can name it instead.
	var lastKey string
	err = envconfig.ProcessWith(ctx, &envconfig.Config{
		Target:   &cfg,
		Lookuper: lookup,
		Mutators: []envconfig.Mutator{envconfig.MutatorFunc(func(_ context.Context, key, _, _, v string) (string, bool, error) {
			lastKey = key
			return v, false, nil
		})},
	})
	if err != nil {
		if lastKey == "" {
			return nil, err
		}
		v, _ := lookup.Lookup(lastKey)
		return nil, fmt.Errorf("%s: invalid value %q: %v", lastKey, v, errors.Unwrap(err))
	}
	if cfg.API.ProjectID == "" {
		cfg.API.ProjectID, _ = lookup.Lookup("HUAWEICLOUD_SDK_PROJECT_ID")
	}
	applyAllowInsecure(&cfg)
	cfg.secrets = collectSecrets(&cfg, lookup)
	cfg.API.Secrets = cfg.secrets
	if err := cfg.validate(now); err != nil {
		return nil, err
	}
	cfg.SWR.Concurrency = cfg.Concurrency
	cfg.Artifact.Concurrency = cfg.Concurrency
	cfg.Window.Concurrency = cfg.Concurrency
	return &cfg, nil
}

// validate checks every setting and reports every one at fault at once,
// each error naming its variable.
func (c *Config) validate(now time.Time) error {
	var errs []error
	if len(c.Sinks) == 0 {
		errs = append(errs, fmt.Errorf("HWCAUDIT_SINKS: name at least one of %s", strings.Join(sinkNames(), ",")))
	}
	seen := map[string]bool{}
	for _, s := range c.Sinks {
		if !slices.Contains(sinkNames(), s) {
			errs = append(errs, fmt.Errorf("HWCAUDIT_SINKS: unknown sink %q (known: %s)", s, strings.Join(sinkNames(), ", ")))
		}
		if seen[s] {
			errs = append(errs, fmt.Errorf("HWCAUDIT_SINKS: %q is listed twice", s))
		}
		seen[s] = true
	}
	start, err := parseStart(c.StartFrom, now)
	if err != nil {
		errs = append(errs, fmt.Errorf("HWCAUDIT_START_FROM: %w", err))
	}
	c.start = start
	if c.shard, err = parseShard(c.Shard); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("HWCAUDIT_LOG_LEVEL: %w", err))
	}
	if !slices.Contains([]string{"auto", "json", "text"}, c.LogFormat) {
		errs = append(errs, fmt.Errorf("HWCAUDIT_LOG_FORMAT: want auto, json or text, got %q", c.LogFormat))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("HWCAUDIT_BATCH_SIZE: must be at least 1, got %d", c.BatchSize))
	}
	if c.ParallelStreams < 1 {
		errs = append(errs, fmt.Errorf("HWCAUDIT_PARALLEL_STREAMS: must be at least 1, got %d", c.ParallelStreams))
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		errs = append(errs, fmt.Errorf("HWCAUDIT_CONCURRENCY: must be 1..64, got %d", c.Concurrency))
	}
	if c.ShutdownGrace <= 0 {
		errs = append(errs, fmt.Errorf("HWCAUDIT_SHUTDOWN_GRACE: must be positive, got %s", c.ShutdownGrace))
	}
	if c.MaxRunDuration < 0 {
		errs = append(errs, fmt.Errorf("HWCAUDIT_MAX_RUN_DURATION: must not be negative (0 disables it), got %s", c.MaxRunDuration))
	}
	if c.MemoryBudget < 1<<20 {
		errs = append(errs, fmt.Errorf("HWCAUDIT_MEMORY_BUDGET: must be at least 1048576 (1 MiB), got %d", c.MemoryBudget))
	}
	if c.RetryInitial <= 0 {
		errs = append(errs, fmt.Errorf("HWCAUDIT_RETRY_INITIAL: must be positive, got %s", c.RetryInitial))
	}
	if c.RetryMax < c.RetryInitial {
		errs = append(errs, fmt.Errorf("HWCAUDIT_RETRY_MAX: must be at least HWCAUDIT_RETRY_INITIAL (%s), got %s", c.RetryInitial, c.RetryMax))
	}
	if c.RetryMaxElapsed < c.RetryMax {
		errs = append(errs, fmt.Errorf("HWCAUDIT_RETRY_MAX_ELAPSED: must be at least HWCAUDIT_RETRY_MAX (%s), got %s", c.RetryMax, c.RetryMaxElapsed))
	}
	if err := validatePushgatewayURL(c.PushgatewayURL); err != nil {
		errs = append(errs, err)
	}
	if err := validateAPIEndpoints(c); err != nil {
		errs = append(errs, err)
	}
	validators := []interface{ Validate() error }{c.Checkpoint, c.DeadLetter, &c.API}
	// A sink's settings are checked only when the sink is used: an unused
	// sink's required variables are not required.
	for _, v := range validators {
		if err := v.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range c.Sinks {
		if s, ok := sinkNamed(name); ok && s.validate != nil {
			if err := s.validate(c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	configured := false
	for _, src := range sourceTable {
		if err := src.validate(c); err != nil {
			errs = append(errs, err)
		}
		configured = configured || src.configured(c)
	}
	if err := c.Window.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !configured {
		errs = append(errs, errors.New(sourceVariables()+": no source is configured; name at least one instance or repository to read"))
	}
	switch {
	case c.API.ProjectID == "":
		errs = append(errs, errors.New("HWCAUDIT_PROJECT_ID: required (or HUAWEICLOUD_SDK_PROJECT_ID): the project whose audit logs are read"))
	case !huaweiapi.ValidProjectID(c.API.ProjectID):
		// It goes into every request path.
		errs = append(errs, fmt.Errorf("HWCAUDIT_PROJECT_ID: a project id is 32 letters or digits, got %q (or fix HUAWEICLOUD_SDK_PROJECT_ID)", c.API.ProjectID))
	}
	return errors.Join(errs...)
}

// validatePushgatewayURL checks the URL at start, since the push happens
// only at the end of a run, maybe hours later. The messages never quote
// the value: it may carry a password (http://user:password@host).
func validatePushgatewayURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil {
		return errors.New("HWCAUDIT_PUSHGATEWAY_URL: not a URL; want http(s)://HOST[:PORT][/PATH]")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("HWCAUDIT_PUSHGATEWAY_URL: want an http:// or https:// URL, got scheme %q", u.Scheme)
	case u.Opaque != "" || u.Hostname() == "":
		return errors.New("HWCAUDIT_PUSHGATEWAY_URL: no host; want http(s)://HOST[:PORT][/PATH]")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		// The push client appends /metrics/job/… to the URL as a string.
		return errors.New("HWCAUDIT_PUSHGATEWAY_URL: must not have a query or fragment")
	}
	return nil
}

func (c *Config) backoff() pipeline.Backoff {
	return pipeline.Backoff{Initial: c.RetryInitial, Max: c.RetryMax, MaxElapsed: c.RetryMaxElapsed}
}

// parseStart reads an RFC 3339 time or a duration before now. Besides Go
// durations (90m, 72h) it accepts whole days (7d), the unit people use for
// backfills.
func parseStart(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		if t.After(now) {
			return time.Time{}, fmt.Errorf("%q is in the future", v)
		}
		return t.UTC(), nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time (2026-11-01T00:00:00Z) or a duration (72h, 7d), got %q", v)
	}
	if d < 0 {
		return time.Time{}, fmt.Errorf("duration %q is negative; give how long ago, e.g. 24h", v)
	}
	return now.Add(-d).UTC(), nil
}

func parseDuration(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, err
		}
		// A time.Duration holds about 292 years; more days would wrap
		// around to an arbitrary start time instead of failing.
		const day = 24 * time.Hour
		if int64(n) > math.MaxInt64/int64(day) || int64(n) < math.MinInt64/int64(day) {
			return 0, fmt.Errorf("%d days is out of range", n)
		}
		return time.Duration(n) * day, nil
	}
	return time.ParseDuration(v)
}
