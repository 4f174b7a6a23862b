package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
)

// pushgateway is an httptest stand-in for a Prometheus Pushgateway that
// keeps every push it receives.
type pushgateway struct {
	srv    *httptest.Server
	mu     sync.Mutex
	pushes []pushed
}

type pushed struct {
	method, path, contentType string
	body                      []byte
}

func newPushgateway(t *testing.T) *pushgateway {
	pg := &pushgateway{}
	pg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		pg.mu.Lock()
		pg.pushes = append(pg.pushes, pushed{r.Method, r.URL.Path, r.Header.Get("Content-Type"), body})
		pg.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(pg.srv.Close)
	return pg
}

func (pg *pushgateway) received() []pushed {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	return slices.Clone(pg.pushes)
}

// families decodes one pushed body (any exposition format the pusher uses).
func families(t *testing.T, p pushed) map[string]*dto.MetricFamily {
	t.Helper()
	dec := expfmt.NewDecoder(bytes.NewReader(p.body), expfmt.ResponseFormat(http.Header{"Content-Type": {p.contentType}}))
	out := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("decoding a push (%s): %v", p.contentType, err)
		}
		out[mf.GetName()] = mf
	}
}

// sumOf adds up the values of name's series whose labels include want.
func sumOf(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, int) {
	var total float64
	n := 0
	mf := mfs[name]
	if mf == nil {
		return 0, 0
	}
series:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue series
			}
		}
		n++
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total, n
}

// runWithPush runs the exporter against a simulator with throttling,
// server errors and malformed records, pushing to a test Pushgateway, and
// returns the pushed metric families.
func runWithPush(t *testing.T) (*harness, map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	cfg := simConfig(7, 120)
	cfg.Faults.ThrottleEvery = 5
	cfg.Faults.ServerErrorEvery = 7
	cfg.Faults.ServerErrorStatus = 503
	cfg.Faults.MalformedRate = 0.05
	h := newHarness(t, cfg)
	h.env["HWCAUDIT_SWR_PAGE_SIZE"] = "20"
	// One request in flight per stream: with more, a stream that ends
	// abandons pages it read ahead, which the simulator may have answered
	// (and counted) although the exporter never saw the answer, so the
	// counts below could not be compared exactly.
	h.env["HWCAUDIT_CONCURRENCY"] = "1"
	pg := newPushgateway(t)
	h.env["HWCAUDIT_PUSHGATEWAY_URL"] = pg.srv.URL
	h.mustRun(exitOK, "run")

	pushes := pg.received()
	if len(pushes) != 1 {
		t.Fatalf("want one push, got %d", len(pushes))
	}
	p := pushes[0]
	// An unsharded run has a group of its own: shards and backfills push
	// beside it without replacing it.
	if job, groups := groupingOf(t, p.path); job != pushJob || !maps.Equal(groups, map[string]string{"shard": "all", "mode": "run"}) {
		t.Errorf("pushed to %s %s: job %q, grouping %v; want job %s, shard all, mode run", p.method, p.path, job, groups, pushJob)
	}
	return h, families(t, p), p.body
}

func TestMetricsPushedAfterRun(t *testing.T) {
	t.Parallel()
	h, mfs, body := runWithPush(t)
	for _, name := range []string{"hwcaudit_records_fetched_total", "hwcaudit_records_written_total", "hwcaudit_last_success_timestamp_seconds"} {
		if !bytes.Contains(body, []byte(name)) {
			t.Errorf("pushed body does not name %s", name)
		}
	}

	good, bad := totalRecords(h.sim)
	if got, _ := sumOf(mfs, "hwcaudit_records_fetched_total", nil); int(got) != good+bad {
		t.Errorf("records fetched: %v, want %d", got, good+bad)
	}
	if got, _ := sumOf(mfs, "hwcaudit_records_written_total", map[string]string{"sink": "file"}); int(got) != good {
		t.Errorf("records written to file: %v, want %d", got, good)
	}
	// Records whose id has the wrong JSON type are refused by the reader
	// (stage read), the other malformed ones by Map.
	mapped, _ := sumOf(mfs, "hwcaudit_records_dead_lettered_total", map[string]string{"stage": "map"})
	read, _ := sumOf(mfs, "hwcaudit_records_dead_lettered_total", map[string]string{"stage": "read"})
	if int(mapped+read) != bad || mapped == 0 || read == 0 {
		t.Errorf("records dead-lettered: %v at map and %v at read, want %d in all, some at each", mapped, read, bad)
	}
	if got, _ := sumOf(mfs, "hwcaudit_records_committed_total", nil); int(got) != good+bad {
		t.Errorf("records committed: %v, want %d", got, good+bad)
	}
	st := h.sim.Stats()
	if got, _ := sumOf(mfs, "hwcaudit_api_requests_total", map[string]string{"code": "429"}); got == 0 || int64(got) != st.Throttled {
		t.Errorf("429 responses: %v, simulator throttled %d", got, st.Throttled)
	}
	if got, _ := sumOf(mfs, "hwcaudit_api_throttled_total", nil); got == 0 || int64(got) != st.Throttled {
		t.Errorf("throttled: %v, simulator throttled %d", got, st.Throttled)
	}
	if got, _ := sumOf(mfs, "hwcaudit_api_requests_total", map[string]string{"code": "503"}); got == 0 || int64(got) != st.ServerErrors {
		t.Errorf("503 responses: %v, simulator failed %d", got, st.ServerErrors)
	}
	// Every HTTP attempt is counted, by status, against the endpoint.
	if got, _ := sumOf(mfs, "hwcaudit_api_requests_total", nil); got == 0 || int64(got) != st.Requests {
		t.Errorf("API requests: %v, the simulator received %d", got, st.Requests)
	}
	if got, _ := sumOf(mfs, "hwcaudit_api_requests_total", map[string]string{"code": "200", "endpoint": h.env["HWCAUDIT_SWR_ENDPOINT"]}); int64(got) != st.Pages {
		t.Errorf("200 responses from %s: %v, the simulator answered %d pages", h.env["HWCAUDIT_SWR_ENDPOINT"], got, st.Pages)
	}
	if got, _ := sumOf(mfs, "hwcaudit_retries_total", map[string]string{"op": "fetch"}); int64(got) != st.Throttled+st.ServerErrors {
		t.Errorf("fetch retries: %v, want %d", got, st.Throttled+st.ServerErrors)
	}
	streams := len(testInstances) * len(testOps)
	if _, n := sumOf(mfs, "hwcaudit_batch_duration_seconds", nil); n != streams {
		t.Errorf("batch latency histograms: %d, want one per stream (%d)", n, streams)
	}
	if got, _ := sumOf(mfs, "hwcaudit_streams", map[string]string{"status": "done"}); int(got) != streams {
		t.Errorf("streams done: %v, want %d", got, streams)
	}
	// The newest simulated record is at most a few minutes old... the
	// dataset spans perOp*10s from 12h ago.
	lag, n := sumOf(mfs, "hwcaudit_checkpoint_lag_seconds", nil)
	if n != streams || lag/float64(n) < 11*3600 || lag/float64(n) > 13*3600 {
		t.Errorf("checkpoint lag: %d series averaging %vs, want %d around 12h", n, lag/float64(max(n, 1)), streams)
	}
	now := float64(time.Now().Unix())
	if got, _ := sumOf(mfs, "hwcaudit_last_success_timestamp_seconds", nil); got < now-60 || got > now+1 {
		t.Errorf("last success %v, want about %v", got, now)
	}
	if got, _ := sumOf(mfs, "hwcaudit_run_duration_seconds", nil); got <= 0 {
		t.Errorf("run duration %v", got)
	}
}

func TestMetricsPushedAfterFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, simConfig(3, 20))
	pg := newPushgateway(t)
	h.env["HWCAUDIT_PUSHGATEWAY_URL"] = pg.srv.URL
	h.env["HWCAUDIT_AUTH_TOKEN"] = "wrong"
	h.env["HWCAUDIT_RETRY_MAX_ELAPSED"] = "1s"
	r := h.run("run")
	if r.code != exitFailed {
		t.Fatalf("want exit %d, got\n%v", exitFailed, r)
	}
	pushes := pg.received()
	if len(pushes) != 1 {
		t.Fatalf("want one push after a failed run, got %d", len(pushes))
	}
	mfs := families(t, pushes[0])
	if got, _ := sumOf(mfs, "hwcaudit_streams", map[string]string{"status": "failed"}); got == 0 {
		t.Errorf("no failed stream in the push")
	}
	if _, n := sumOf(mfs, "hwcaudit_last_success_timestamp_seconds", nil); n != 0 {
		t.Errorf("a failed run pushed a last-success time")
	}
	st := h.sim.Stats()
	if got, _ := sumOf(mfs, "hwcaudit_api_requests_total", map[string]string{"code": "401"}); got == 0 || int64(got) != st.AuthFailures {
		t.Errorf("401 responses: %v, the simulator refused %d", got, st.AuthFailures)
	}
	if got, _ := sumOf(mfs, "hwcaudit_api_requests_total", nil); int64(got) != st.Requests {
		t.Errorf("API requests: %v, the simulator received %d", got, st.Requests)
	}
}

func TestMetricsAddrServesWhileRunning(t *testing.T) {
	t.Parallel()
	// run, and backfill (the long-running command), serve /metrics alike.
	for i, args := range [][]string{
		{"run", "--metrics-addr", "127.0.0.1:0"},
		{"backfill", "--from", "24h", "--progress", "log", "--metrics-addr", "127.0.0.1:0"},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			cfg := simConfig(int64(4+i), 200)
			cfg.Faults.Latency = 40 * time.Millisecond
			h := newHarness(t, cfg)
			h.env["HWCAUDIT_SWR_PAGE_SIZE"] = "20"
			p := h.start(args...)

			addrRE := regexp.MustCompile(`"msg":"serving metrics","addr":"([^"]+)"`)
			var addr string
			waitFor(t, 10*time.Second, "the metrics listener", func() bool {
				if m := addrRE.FindStringSubmatch(p.stderr.String()); m != nil {
					addr = m[1]
					return true
				}
				return p.exited()
			})
			if addr == "" {
				t.Fatalf("no metrics listener logged:\n%v", p.wait(t, time.Second))
			}
			var body string
			waitFor(t, 10*time.Second, "fetched records on /metrics", func() bool {
				resp, err := http.Get("http://" + addr + "/metrics")
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				body = string(b)
				return resp.StatusCode == http.StatusOK && strings.Contains(body, "hwcaudit_records_fetched_total{")
			})
			if p.exited() {
				t.Fatalf("%s ended before /metrics was read; make it slower", args[0])
			}
			if !strings.Contains(body, "hwcaudit_checkpoint_lag_seconds") && !strings.Contains(body, "hwcaudit_pages_fetched_total") {
				t.Errorf("/metrics lacks hwcaudit metrics:\n%s", tail(body, 2000))
			}
			if r := p.wait(t, 60*time.Second); r.code != exitOK {
				t.Fatalf("%s: %v", args[0], r)
			}
		})
	}
}

func TestRunArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		addr string
		err  string
	}{
		{nil, "", ""},
		{[]string{"--metrics-addr", "127.0.0.1:9464"}, "127.0.0.1:9464", ""},
		{[]string{"--metrics-addr=:9464"}, ":9464", ""},
		{[]string{"--metrics-addr"}, "", "needs a host:port"},
		{[]string{"--now"}, "", `unexpected argument "--now"`},
	} {
		addr, err := runArgs(tc.args)
		if addr != tc.addr || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("runArgs(%q) = %q, %v; want %q, %q", tc.args, addr, err, tc.addr, tc.err)
		}
	}
}

func TestThrottled(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pipeline.RetryAfterError{After: time.Second, Err: errors.New("x")}, true},
		{fmt.Errorf("fetch: %w", &huaweiapi.APIError{Status: 429}), true},
		{&huaweiapi.APIError{Status: 400, Code: "APIG.0308", Message: "flow control"}, true},
		{&huaweiapi.APIError{Status: 503}, false},
		{errors.New("connection reset"), false},
	} {
		if got := throttled(tc.err); got != tc.want {
			t.Errorf("throttled(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// promQLMetric finds metric names in a PromQL expression: identifiers
// starting with hwcaudit_.
var promQLMetric = regexp.MustCompile(`\bhwcaudit_[a-zA-Z0-9_]+`)

// TestDashboardNamesOnlyRealMetrics checks every panel query of the Grafana
// dashboard against the metrics a real run registers.
func TestDashboardNamesOnlyRealMetrics(t *testing.T) {
	t.Parallel()
	_, mfs, _ := runWithPush(t)
	real := map[string]bool{}
	for name, mf := range mfs {
		real[name] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				real[name+s] = true
			}
		}
	}
	data, err := os.ReadFile(filepath.Join("..", "..", "charts", "hwcaudit", "dashboards", "hwcaudit.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []dashPanel `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	exprs := 0
	var walk func([]dashPanel)
	walk = func(panels []dashPanel) {
		for _, p := range panels {
			walk(p.Panels)
			for _, tg := range p.Targets {
				exprs++
				names := promQLMetric.FindAllString(tg.Expr, -1)
				if len(names) == 0 {
					t.Errorf("panel %q: expr %q names no hwcaudit metric", p.Title, tg.Expr)
				}
				for _, n := range names {
					if !real[n] {
						t.Errorf("panel %q: expr %q names %s, which the exporter does not register", p.Title, tg.Expr, n)
					}
				}
			}
		}
	}
	walk(dash.Panels)
	if exprs == 0 {
		t.Error("the dashboard has no queries")
	}
}

type dashPanel struct {
	Title   string      `json:"title"`
	Panels  []dashPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}
