package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
)

// pushJob is the Pushgateway job every run pushes under.
const pushJob = "hwcaudit"

// Grouping labels of a push. The Pushgateway keeps one group per distinct
// key and a push replaces what its own group held, so every process that
// runs at the same time as another (a shard, a backfill beside the
// CronJob) needs a key of its own, or the last to push hides the others.
const (
	groupShard = "shard"          // "1-of-4", or "all" when unsharded
	groupMode  = "mode"           // "run" or "backfill"
	groupRange = "backfill_range" // a backfill's range as its checkpoints name it
)

// metrics holds the Prometheus metrics of one process, in a registry of
// its own. Its observer hooks count what the pipeline does.
type metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	fetched      *prometheus.CounterVec
	pages        *prometheus.CounterVec
	apiRequests  *prometheus.CounterVec
	written      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	retries      *prometheus.CounterVec
	throttled    *prometheus.CounterVec
	committed    *prometheus.CounterVec
	excluded     *prometheus.CounterVec
	repeated     *prometheus.CounterVec
	batch        *prometheus.HistogramVec
	checkpointTS *prometheus.GaugeVec
	streams      *prometheus.GaugeVec
	runDuration  prometheus.Gauge
	lastRun      prometheus.Gauge
	lastSuccess  prometheus.Gauge
	lastSkipped  prometheus.Gauge

	mu     sync.Mutex
	newest map[string]time.Time // newest committed event time, by stream
}

// observer is the pipeline's hooks into m: every one of them.
func (m *metrics) observer() pipeline.Observer {
	return pipeline.Observer{
		Fetched: m.Fetched, FetchFailed: m.FetchFailed, Retried: m.Retried, Written: m.Written,
		DeadLettered: m.DeadLettered, BatchDelivered: m.BatchDelivered, Committed: m.Committed,
	}
}

func newMetrics(now func() time.Time) *metrics {
	m := &metrics{
		reg:    prometheus.NewRegistry(),
		now:    now,
		newest: map[string]time.Time{},
		fetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hwcaudit_records_fetched_total", Help: "Audit records read from the API.",
		}, []string{"stream"}),
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hwcaudit_pages_fetched_total", Help: "API pages read.",
		}, []string{"stream"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hwcaudit_api_requests_total",
			Help: "HTTP requests sent to the Huawei Cloud APIs, every attempt, by endpoint and status code (\"error\" when no answer came).",
		}, []string{"endpoint", "code"}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hwcaudit_records_written_total", Help: "Events a sink accepted.",
		}, []string{"stream", "sink"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hwcaudit_records_dead_lettered_total", Help: "Records stored as dead letters, by stage (map or sink:NAME).",
		}, []string{"stream", "stage"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hwcaudit_retries_total", Help: "Failures that were retried, by operation (fetch, write, dead_letter, save_checkpoint, load_checkpoint).",
		}, []string{"stream", "op"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hwcaudit_api_throttled_total", Help: "Page reads of a stream that rate limiting refused (HTTP 429, APIG.0308); a read several requests ahead counts once, every refused request is in hwcaudit_api_requests_total{code=\"429\"}.",
		}, []string{"stream"}),
		excluded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hwcaudit_records_excluded_total", Help: "Records the API returned that a rule the user set left out, by rule (before_start, after_end); counted when a stream's run ends.",
		}, []string{"stream", "rule"}),
		repeated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hwcaudit_records_repeated_total", Help: "Records the API listed again that had been delivered before and were skipped; counted when a stream's run ends.",
		}, []string{"stream"}),
		committed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hwcaudit_records_committed_total", Help: "Records covered by saved checkpoints.",
		}, []string{"stream"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hwcaudit_batch_duration_seconds",
			Help:    "Time to write a batch to every sink and store its dead letters.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
		}, []string{"stream"}),
		checkpointTS: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hwcaudit_checkpoint_event_timestamp_seconds", Help: "Event time of the newest record a saved checkpoint covers.",
		}, []string{"stream"}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hwcaudit_streams", Help: "Streams of the last run, by how they ended (done, failed, interrupted).",
		}, []string{"status"}),
		runDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hwcaudit_run_duration_seconds", Help: "Duration of the last run.",
		}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hwcaudit_last_run_timestamp_seconds", Help: "When the last run ended.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hwcaudit_last_success_timestamp_seconds", Help: "When the last run that exported every stream ended.",
		}),
		lastSkipped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hwcaudit_last_skipped_timestamp_seconds", Help: "When a run last exported nothing because another run held the run lock.",
		}),
	}
	m.reg.MustRegister(m.fetched, m.pages, m.apiRequests, m.written, m.deadLettered, m.retries,
		m.throttled, m.committed, m.excluded, m.repeated, m.batch, m.checkpointTS, m.streams, m.runDuration, m.lastRun,
		lagCollector{m})
	return m
}

// lagDesc is computed at every scrape or push: now minus the newest
// committed event time. A Pushgateway keeps the value of the push, which
// no longer grows once the runs stop committing; alert on
// time() - hwcaudit_checkpoint_event_timestamp_seconds instead.
var lagDesc = prometheus.NewDesc("hwcaudit_checkpoint_lag_seconds",
	"Seconds between now and the event time of the newest record a saved checkpoint covers, as of this process's last commit for the stream; frozen once pushed: use time() - hwcaudit_checkpoint_event_timestamp_seconds.", []string{"stream"}, nil)

type lagCollector struct{ m *metrics }

func (c lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc }

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	now := c.m.now()
	for stream, t := range c.m.newest {
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, now.Sub(t).Seconds(), stream)
	}
}

func (m *metrics) Fetched(stream string, n int) {
	m.fetched.WithLabelValues(stream).Add(float64(n))
	m.pages.WithLabelValues(stream).Inc()
}

// apiResponse is huaweiapi.Config.OnResponse: it counts each HTTP attempt
// where it happens, in the client, because one page read can take several
// (a 401 is sent again after a credential refresh) and the pipeline sees
// only the outcome of each.
func (m *metrics) apiResponse(endpoint string, status int) {
	code := "error"
	if status > 0 {
		code = strconv.Itoa(status)
	}
	// An endpoint URL could carry user info; the label never does.
	if u, err := url.Parse(endpoint); err == nil && u.User != nil {
		u.User = nil
		endpoint = u.String()
	}
	m.apiRequests.WithLabelValues(endpoint, code).Inc()
}

func (m *metrics) FetchFailed(stream string, err error) {
	if throttled(err) {
		m.throttled.WithLabelValues(stream).Inc()
	}
}

// throttled tells a rate-limit refusal: a 429 (with or without Retry-After)
// or API Gateway's flow-control error code.
func throttled(err error) bool {
	if _, ok := pipeline.RetryAfter(err); ok {
		return true
	}
	var apiErr *huaweiapi.APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusTooManyRequests {
		return true
	}
	return strings.Contains(err.Error(), "APIG.0308")
}

func (m *metrics) Retried(stream, op string, _ error) {
	m.retries.WithLabelValues(stream, retryOp(op)).Inc()
}

// retryOp turns the pipeline's operation names into label values.
func retryOp(op string) string {
	if strings.HasPrefix(op, "write to ") {
		return "write"
	}
	return strings.ReplaceAll(op, " ", "_")
}

func (m *metrics) Written(stream, sink string, n int) {
	m.written.WithLabelValues(stream, sink).Add(float64(n))
}

func (m *metrics) DeadLettered(stream, stage string, n int) {
	m.deadLettered.WithLabelValues(stream, stage).Add(float64(n))
}

func (m *metrics) BatchDelivered(stream string, _ int, d time.Duration) {
	m.batch.WithLabelValues(stream).Observe(d.Seconds())
}

func (m *metrics) Committed(stream string, records int64, newest time.Time) {
	m.committed.WithLabelValues(stream).Add(float64(records))
	if newest.IsZero() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if newest.After(m.newest[stream]) {
		m.newest[stream] = newest
		m.checkpointTS.WithLabelValues(stream).Set(float64(newest.UnixNano()) / 1e9)
	}
}

// runDone records how a run ended. sum is nil when the run failed before
// the pipeline started.
func (m *metrics) runDone(sum *pipeline.Summary, elapsed time.Duration, code int) {
	m.runDuration.Set(elapsed.Seconds())
	end := m.now()
	m.lastRun.Set(float64(end.UnixNano()) / 1e9)
	if code == exitOK {
		// Registered only now: a failed run must not push a zero that
		// would replace the Pushgateway's last success time.
		if err := m.reg.Register(m.lastSuccess); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			panic(err)
		}
		m.lastSuccess.Set(float64(end.UnixNano()) / 1e9)
	}
	for _, s := range []pipeline.Status{pipeline.StatusDone, pipeline.StatusFailed, pipeline.StatusInterrupted} {
		m.streams.WithLabelValues(string(s)).Set(0)
	}
	if sum != nil {
		for _, r := range sum.Streams {
			m.streams.WithLabelValues(string(r.Status)).Inc()
			m.excluded.WithLabelValues(r.Stream, "before_start").Add(float64(r.Excluded.BeforeStart))
			m.excluded.WithLabelValues(r.Stream, "after_end").Add(float64(r.Excluded.AfterEnd))
			m.repeated.WithLabelValues(r.Stream).Add(float64(r.Duplicates))
		}
	}
}

// runSkipped records a run that exported nothing because another run held
// the lock. It stands apart from runDone: that run is still working, and
// a last-success time or zeroed stream counts from this one would make a
// hung run look healthy.
func (m *metrics) runSkipped() {
	if err := m.reg.Register(m.lastSkipped); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		panic(err)
	}
	m.lastSkipped.Set(float64(m.now().UnixNano()) / 1e9)
}

// metricsRun is the metrics side of one export: an optional /metrics
// listener and an optional push at the end.
type metricsRun struct {
	m        *metrics
	log      *slog.Logger
	push     string
	grouping [][2]string // label, value: see pushGrouping
	start    time.Time
	srv      *http.Server
	sum      *pipeline.Summary
	// skipped is set when the run lock was held by another run.
	skipped bool
}

// pushGrouping is the Pushgateway grouping key of cfg's export besides the
// job: its shard and mode, and a backfill's range, so that concurrent
// shards, backfills of other ranges and the CronJob keep separate groups.
func pushGrouping(cfg *Config) [][2]string {
	shard := "all"
	if cfg.shard.count > 1 {
		shard = fmt.Sprintf("%d-of-%d", cfg.shard.index, cfg.shard.count)
	}
	if cfg.backfill == nil {
		return [][2]string{{groupShard, shard}, {groupMode, "run"}}
	}
	rng := strings.TrimSuffix(strings.TrimPrefix(cfg.backfill.namespace, "backfill/"), "/")
	return [][2]string{{groupShard, shard}, {groupMode, "backfill"}, {groupRange, rng}}
}

// startMetrics starts the /metrics listener when cfg asks for one. A
// listener that cannot start is logged, never fatal: metrics must not stop
// an export.
func startMetrics(cfg *Config, log *slog.Logger) *metricsRun {
	mr := &metricsRun{m: newMetrics(time.Now), log: log, push: cfg.PushgatewayURL, grouping: pushGrouping(cfg), start: time.Now()}
	if cfg.metricsAddr == "" {
		return mr
	}
	ln, err := net.Listen("tcp", cfg.metricsAddr)
	if err != nil {
		log.Error("cannot serve metrics", "addr", cfg.metricsAddr, "error", err)
		return mr
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(mr.m.reg, promhttp.HandlerOpts{}))
	mr.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go mr.srv.Serve(ln)
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return mr
}

// finish records the run's outcome, pushes to the Pushgateway when one is
// configured (after failures too) and stops the listener. A skipped run
// pushes hwcaudit_last_skipped_timestamp_seconds alone: with Add, the
// families it leaves out keep the values the run holding the lock pushed.
func (mr *metricsRun) finish(ctx context.Context, code int) {
	var g prometheus.Gatherer = mr.m.reg
	if mr.skipped {
		mr.m.runSkipped()
		only := prometheus.NewRegistry()
		only.MustRegister(mr.m.lastSkipped)
		g = only
	} else {
		mr.m.runDone(mr.sum, time.Since(mr.start), code)
	}
	if mr.push != "" {
		mr.pushMetrics(ctx, g)
	}
	if mr.srv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		mr.srv.Shutdown(sctx)
		cancel()
	}
}

// pushMetrics pushes the registry to the Pushgateway. The URL may carry
// basic-auth credentials (http://user:password@host): they are sent as an
// Authorization header rather than left in the URL, because the push
// client quotes its URL in errors ("unexpected status code 401 while
// pushing to …") and errors are logged. Only the redacted URL is logged.
func (mr *metricsRun) pushMetrics(ctx context.Context, g prometheus.Gatherer) {
	u, err := url.Parse(mr.push)
	if err != nil {
		// url.Error quotes the value, which may hold a password.
		mr.log.Error("cannot push metrics: HWCAUDIT_PUSHGATEWAY_URL is not a URL")
		return
	}
	redacted := u.Redacted()
	user := u.User
	u.User = nil
	// Redirects only on the Pushgateway's own origin: Go would forward
	// the basic-auth header to another port of the same host, and follow
	// https to http.
	p := push.New(u.String(), pushJob).Gatherer(g).Client(egress.HTTPClient(10*time.Second, nil))
	for _, kv := range mr.grouping {
		p = p.Grouping(kv[0], kv[1])
	}
	if user != nil {
		pass, _ := user.Password()
		p = p.BasicAuth(user.Username(), pass)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// Add (POST) keeps hwcaudit_last_success_timestamp_seconds of an
	// earlier push when this run failed.
	if err := p.AddContext(pctx); err != nil {
		mr.log.Error("cannot push metrics", "url", redacted, "error", err)
	}
}

// runArgs parses the flags of `exporter run`: only --metrics-addr.
func runArgs(args []string) (metricsAddr string, err error) {
	fl := runFlags(io.Discard)
	addr := fl.Lookup("metrics-addr").Value
	if err := parseFlags(fl, args); err != nil {
		if strings.HasSuffix(err.Error(), "flag needs an argument: -metrics-addr") {
			err = errors.New("--metrics-addr needs a host:port, e.g. 127.0.0.1:9464")
		}
		return "", err
	}
	if fl.NArg() > 0 {
		return "", fmt.Errorf("unexpected argument %q (configuration comes from the environment; see 'exporter help')", fl.Arg(0))
	}
	metricsAddr = addr.String()
	if flagSet(fl, "metrics-addr") && metricsAddr == "" {
		return "", errors.New("--metrics-addr needs a host:port, e.g. 127.0.0.1:9464")
	}
	return metricsAddr, checkMetricsAddr(metricsAddr)
}

// runFlags is the flag set of `exporter run`, its usage written to w.
func runFlags(w io.Writer) *flag.FlagSet {
	fl := flag.NewFlagSet("exporter run", flag.ContinueOnError)
	fl.SetOutput(w)
	fl.String("metrics-addr", "", "serve Prometheus /metrics on `HOST:PORT` while the run lasts, e.g. 127.0.0.1:9464")
	fl.Usage = func() {
		fmt.Fprint(fl.Output(), "usage: exporter run [--metrics-addr HOST:PORT]\n\n"+
			"Exports what is new since each stream's checkpoint and exits: 0 when every\n"+
			"stream caught up (or HWCAUDIT_MAX_RUN_DURATION stopped it cleanly), 1 when a\n"+
			"stream failed, 2 on a configuration error, 3 when a signal cut it short.\n\n")
		printFlags(fl.Output(), fl)
		fmt.Fprint(fl.Output(), "\nConfiguration comes from the environment; 'exporter help' lists it.\n")
	}
	return fl
}

// checkMetricsAddr refuses a --metrics-addr that cannot be listened on as
// written, before any work starts: "" (none) or HOST:PORT.
func checkMetricsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		var n int
		if n, err = strconv.Atoi(port); err == nil && (n < 0 || n > 65535) {
			err = errors.New("port out of range")
		}
	}
	if err != nil {
		return fmt.Errorf("--metrics-addr %q: want HOST:PORT, e.g. 127.0.0.1:9464 (%v)", addr, err)
	}
	return nil
}
