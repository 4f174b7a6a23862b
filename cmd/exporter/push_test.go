package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/checkpoint"
)

// groupingOf reads a Pushgateway push path, /metrics/job/J/L1/V1/…, into
// the job and the grouping labels, decoding the @base64 form the push
// client uses for values holding a slash.
func groupingOf(t *testing.T, path string) (string, map[string]string) {
	t.Helper()
	rest, ok := strings.CutPrefix(path, "/metrics/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts)%2 != 0 {
		t.Fatalf("push path %q is not /metrics/job/NAME[/LABEL/VALUE…]", path)
	}
	var job string
	labels := map[string]string{}
	for i := 0; i < len(parts); i += 2 {
		name, value := parts[i], parts[i+1]
		if n, ok := strings.CutSuffix(name, "@base64"); ok {
			name = n
			b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(value, "="))
			if err != nil {
				t.Fatalf("push path %q: %s: %v", path, name, err)
			}
			value = string(b)
		}
		if name == "job" {
			job = value
			continue
		}
		labels[name] = value
	}
	return job, labels
}

func TestPushGrouping(t *testing.T) {
	for _, tc := range []struct {
		name     string
		shard    string
		backfill *backfillRange
		want     map[string]string
	}{
		{"run", "", nil, map[string]string{"shard": "all", "mode": "run"}},
		{"one shard of one", "0/1", nil, map[string]string{"shard": "all", "mode": "run"}},
		{"shard", "1/4", nil, map[string]string{"shard": "1-of-4", "mode": "run"}},
		{"backfill", "", &backfillRange{namespace: "backfill/2026-11-01T00:00:00Z_now/"},
			map[string]string{"shard": "all", "mode": "backfill", "backfill_range": "2026-11-01T00:00:00Z_now"}},
		{"backfill shard", "3/8", &backfillRange{namespace: "backfill/72h_now/"},
			map[string]string{"shard": "3-of-8", "mode": "backfill", "backfill_range": "72h_now"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := parseShard(tc.shard)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, kv := range pushGrouping(&Config{shard: spec, backfill: tc.backfill}) {
				if _, dup := got[kv[0]]; dup {
					t.Errorf("label %s twice", kv[0])
				}
				got[kv[0]] = kv[1]
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("grouping %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLockHeldPushesNoSuccess runs while another process holds the run
// lock: the run must not push a last-success time or stream counts that
// would replace those of the run holding the lock, only when it was
// skipped, to the group of the run it stood aside for.
func TestLockHeldPushesNoSuccess(t *testing.T) {
	t.Parallel()
	const from, to = "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"
	for _, tc := range []struct {
		name   string
		shard  string
		args   []string
		code   int
		groups map[string]string
	}{
		{"run", "", []string{"run"}, exitOK, map[string]string{"shard": "all", "mode": "run"}},
		{"shard", "1/3", []string{"run"}, exitOK, map[string]string{"shard": "1-of-3", "mode": "run"}},
		{"backfill", "", []string{"backfill", "--from", from, "--to", to, "--progress", "none"}, exitFailed,
			map[string]string{"shard": "all", "mode": "backfill", "backfill_range": from + "_" + to}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, simConfig(71, 10))
			pg := newPushgateway(t)
			h.env["HWCAUDIT_PUSHGATEWAY_URL"] = pg.srv.URL
			cfg := &Config{}
			if tc.shard != "" {
				h.env["HWCAUDIT_SHARD"] = tc.shard
				cfg.shard, _ = parseShard(tc.shard)
			}
			if tc.args[0] == "backfill" {
				br, err := parseBackfillArgs(tc.args[1:], time.Now(), io.Discard)
				if err != nil {
					t.Fatal(err)
				}
				cfg.backfill = br
			}
			store, err := checkpoint.Open(checkpoint.Config{URL: "file://" + h.stateDir(), LockScope: lockScope(cfg)}, "test")
			if err != nil {
				t.Fatal(err)
			}
			unlock, err := store.Lock(t.Context())
			if err != nil {
				t.Fatal(err)
			}

			r := h.run(tc.args...)
			if r.code != tc.code || !strings.Contains(r.stdout, "nothing done") {
				t.Fatalf("with the lock held: want exit %d and nothing done, got\n%v", tc.code, r)
			}
			pushes := pg.received()
			if len(pushes) != 1 {
				t.Fatalf("want one push, got %d", len(pushes))
			}
			if _, groups := groupingOf(t, pushes[0].path); !maps.Equal(groups, tc.groups) {
				t.Errorf("pushed to %s, grouping %v; want %v", pushes[0].path, groups, tc.groups)
			}
			mfs := families(t, pushes[0])
			if names := slices.Sorted(maps.Keys(mfs)); !slices.Equal(names, []string{"hwcaudit_last_skipped_timestamp_seconds"}) {
				t.Errorf("a skipped run pushed %v; want hwcaudit_last_skipped_timestamp_seconds alone", names)
			}
			now := float64(time.Now().Unix())
			if got, _ := sumOf(mfs, "hwcaudit_last_skipped_timestamp_seconds", nil); got < now-60 || got > now+1 {
				t.Errorf("last skipped %v, want about %v", got, now)
			}

			if tc.args[0] != "run" {
				return
			}
			// Once the lock is free, the run exports and pushes a success
			// to the same group, and no skip.
			if err := unlock(); err != nil {
				t.Fatal(err)
			}
			h.mustRun(exitOK, tc.args...)
			pushes = pg.received()
			if len(pushes) != 2 {
				t.Fatalf("want a second push, got %d in all", len(pushes))
			}
			if _, groups := groupingOf(t, pushes[1].path); !maps.Equal(groups, tc.groups) {
				t.Errorf("pushed to %s, grouping %v; want %v", pushes[1].path, groups, tc.groups)
			}
			mfs = families(t, pushes[1])
			if _, n := sumOf(mfs, "hwcaudit_last_success_timestamp_seconds", nil); n != 1 {
				t.Errorf("the run after the skip pushed %d last-success series, want 1", n)
			}
			if _, n := sumOf(mfs, "hwcaudit_last_skipped_timestamp_seconds", nil); n != 0 {
				t.Errorf("a run that exported pushed a skip time")
			}
		})
	}
}

// fakeCloser is a destination whose Close fails with err.
type fakeCloser struct {
	err    error
	closed *int
}

func (c fakeCloser) Close(context.Context) error {
	*c.closed++
	return c.err
}

// TestCloseAll: a destination that cannot close fails a run that would
// otherwise succeed, and every destination is still closed. export has no
// seam to swap its sinks, and no real sink's Close can be made to fail
// from outside at a chosen moment, so this drives closeAll, which export
// returns through, directly.
func TestCloseAll(t *testing.T) {
	boom := errors.New("could not publish")
	for _, tc := range []struct {
		name string
		errs []error // one closer each
		code int
		want int
	}{
		{"all close", []error{nil, nil}, exitOK, exitOK},
		{"nothing to close", nil, exitOK, exitOK},
		{"dead letter fails", []error{boom, nil}, exitOK, exitFailed},
		{"last sink fails", []error{nil, nil, boom}, exitOK, exitFailed},
		{"failed run stays failed", []error{boom}, exitFailed, exitFailed},
		{"interrupted stays interrupted", []error{boom}, exitInterrupted, exitInterrupted},
		{"interrupted, closes fine", []error{nil}, exitInterrupted, exitInterrupted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			closed := 0
			var closers []closer
			for _, err := range tc.errs {
				closers = append(closers, fakeCloser{err, &closed})
			}
			var logs strings.Builder
			got := closeAll(t.Context(), closers, tc.code, slog.New(slog.NewTextHandler(&logs, nil)))
			if got != tc.want {
				t.Errorf("exit %d, want %d", got, tc.want)
			}
			if closed != len(tc.errs) {
				t.Errorf("closed %d of %d destinations", closed, len(tc.errs))
			}
			if failed := slices.ContainsFunc(tc.errs, func(e error) bool { return e != nil }); failed != strings.Contains(logs.String(), boom.Error()) {
				t.Errorf("log does not match the close failures:\n%s", logs.String())
			}
		})
	}
}

func TestValidatePushgatewayURL(t *testing.T) {
	const password = "pg-s3cret-pw"
	for _, tc := range []struct {
		url  string
		want string // "" when valid
	}{
		{"", ""},
		{"http://pushgateway:9091", ""},
		{"https://pushgateway.monitoring.svc/prefix/", ""},
		{"http://user:" + password + "@pushgateway:9091", ""},
		{"::bad", "not a URL"},
		{"pushgateway:9091", `scheme "pushgateway"`},
		{"ftp://user:" + password + "@host", `scheme "ftp"`},
		{"http://", "no host"},
		{"http://:9091", "no host"},
		{"http:pushgateway", "no host"},
		{"http://user:" + password + "@", "no host"},
		{"http://pushgateway:9091?x=1", "query"},
		{"http://user:" + password + "@pushgateway:9091/#frag", "query or fragment"},
		{"http://user:" + password + "@[::1", "not a URL"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			err := validatePushgatewayURL(tc.url)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want an error containing %q", tc.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "HWCAUDIT_PUSHGATEWAY_URL: ") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want it to name HWCAUDIT_PUSHGATEWAY_URL and contain %q", msg, tc.want)
			}
			if strings.Contains(msg, password) {
				t.Errorf("error %q prints the password", msg)
			}
		})
	}
}

// TestPushgatewayURLCheckedByCheck: `exporter check` must not call a bad
// Pushgateway URL valid, and must not print its password.
func TestPushgatewayURLCheckedByCheck(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"::bad", "ftp://user:pg-s3cret-pw@host"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			env := validEnv()
			env["HWCAUDIT_PUSHGATEWAY_URL"] = v
			r := startExporter(t, t.TempDir(), env, "check").wait(t, 30*time.Second)
			if r.code != exitUsage || !strings.Contains(r.stderr, "HWCAUDIT_PUSHGATEWAY_URL") {
				t.Errorf("want exit %d naming HWCAUDIT_PUSHGATEWAY_URL, got\n%v", exitUsage, r)
			}
			if strings.Contains(r.stdout+r.stderr, "pg-s3cret-pw") {
				t.Errorf("the password was printed:\n%v", r)
			}
		})
	}
}

func TestBackfillMetricsAddrArg(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		args []string
		addr string
		err  string
	}{
		{[]string{"--from", "24h"}, "", ""},
		{[]string{"--from", "24h", "--metrics-addr", "127.0.0.1:9464"}, "127.0.0.1:9464", ""},
		{[]string{"--metrics-addr=:9464", "--from", "24h"}, ":9464", ""},
		{[]string{"--from", "24h", "--metrics-addr="}, "", "--metrics-addr needs a host:port"},
		{[]string{"--from", "24h", "--metrics-addr"}, "", "metrics-addr"},
	} {
		br, err := parseBackfillArgs(tc.args, now, io.Discard)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.err)
			continue
		}
		if err == nil && br.metricsAddr != tc.addr {
			t.Errorf("%q: metrics address %q, want %q", tc.args, br.metricsAddr, tc.addr)
		}
	}
}

// perRunGauges are gauges every push of a group replaces: on a dashboard
// they must come from the scheduled runs only, or a backfill's push would
// pass for the CronJob's.
var perRunGauges = []string{
	"hwcaudit_last_success_timestamp_seconds",
	"hwcaudit_run_duration_seconds",
	"hwcaudit_streams",
	"hwcaudit_checkpoint_event_timestamp_seconds",
}

// TestDashboardReadsPushedMetrics checks the dashboard against how the
// metrics reach Prometheus: one Pushgateway group per shard and mode.
func TestDashboardReadsPushedMetrics(t *testing.T) {
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
	lagFromEventTime := 0
	var walk func([]dashPanel)
	walk = func(panels []dashPanel) {
		for _, p := range panels {
			walk(p.Panels)
			for _, tg := range p.Targets {
				// Computed at push time, it stops growing in the
				// Pushgateway exactly when exports stall.
				if strings.Contains(tg.Expr, "hwcaudit_checkpoint_lag_seconds") {
					t.Errorf("panel %q: %q reads hwcaudit_checkpoint_lag_seconds; use time() - hwcaudit_checkpoint_event_timestamp_seconds", p.Title, tg.Expr)
				}
				for _, g := range perRunGauges {
					if strings.Contains(tg.Expr, g) && !strings.Contains(tg.Expr, g+`{mode="run"}`) {
						t.Errorf("panel %q: %q reads %s from every mode; want %s{mode=\"run\"}", p.Title, tg.Expr, g, g)
					}
				}
				if strings.Contains(p.Title, "lag") {
					if !strings.HasPrefix(tg.Expr, "time() - ") || !strings.Contains(tg.Expr, "hwcaudit_checkpoint_event_timestamp_seconds") {
						t.Errorf("panel %q: %q; want lag as time() - hwcaudit_checkpoint_event_timestamp_seconds", p.Title, tg.Expr)
					}
					lagFromEventTime++
				}
			}
		}
	}
	walk(dash.Panels)
	if lagFromEventTime == 0 {
		t.Error("the dashboard has no lag panel")
	}
}

// TestDocsMatchCode checks what the help and README say against the code:
// every limit they state is the one validation enforces, and every flag
// they name exists.
func TestDocsMatchCode(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]string{}
	for _, v := range variables {
		doc[v.name] = v.doc
	}
	readmeRow := func(name string) string {
		for _, line := range strings.Split(string(readme), "\n") {
			if strings.HasPrefix(line, "| `"+name+"` |") {
				return line
			}
		}
		return ""
	}
	for _, tc := range []struct {
		name, bad, limit string
		env              map[string]string // extra settings the check needs
	}{
		{"HWCAUDIT_WINDOW_MAX_RECORDS", "99", "100..1000000", nil},
		{"HWCAUDIT_WINDOW_MAX_RECORDS", "1000001", "100..1000000", nil},
		{"HWCAUDIT_HTTP_MAX_BODY_BYTES", "1023", "1024", nil},
		{"HWCAUDIT_S3_PART_SIZE", "5242879", "5242880", map[string]string{"HWCAUDIT_SINKS": "s3", "HWCAUDIT_S3_BUCKET": "b"}},
		{"HWCAUDIT_MAX_RPS", "0", "greater than 0", nil},
		{"HWCAUDIT_CONCURRENCY", "65", "1..64", nil},
	} {
		t.Run(tc.name+"="+tc.bad, func(t *testing.T) {
			env := map[string]string{"HWCAUDIT_SWR_INSTANCES": "ins-1", "HWCAUDIT_REGION": "cn-north-4", "HWCAUDIT_PROJECT_ID": "p", tc.name: tc.bad}
			maps.Copy(env, tc.env)
			_, err := loadConfig(t.Context(), envconfig.MapLookuper(env), time.Now())
			if err == nil || !strings.HasPrefix(err.Error(), tc.name+":") || !strings.Contains(err.Error(), tc.limit) {
				t.Fatalf("%s=%s: %v; want an error naming the variable and %q", tc.name, tc.bad, err, tc.limit)
			}
			if !strings.Contains(doc[tc.name], tc.limit) {
				t.Errorf("help for %s does not state the limit %q: %q", tc.name, tc.limit, doc[tc.name])
			}
			if row := readmeRow(tc.name); !strings.Contains(strings.ReplaceAll(row, "`", ""), tc.limit) {
				t.Errorf("README row for %s does not state the limit %q: %q", tc.name, tc.limit, row)
			}
		})
	}

	var help strings.Builder
	printHelp(&help)
	for _, tc := range []struct{ flag, in string }{
		{"--latency", "exporter demo"},
		{"--fresh", "exporter demo"},
		{"--metrics-addr", "exporter backfill"},
		{"--metrics-addr", "exporter run"},
	} {
		usageOf := usageBlock(help.String(), tc.in)
		if !strings.Contains(usageOf, tc.flag) {
			t.Errorf("help does not give %s for %s:\n%s", tc.flag, tc.in, usageOf)
		}
		if !strings.Contains(string(readme), tc.in) || !regexp.MustCompile(regexp.QuoteMeta(strings.TrimPrefix(tc.in, "exporter "))+`[^\n]*`+regexp.QuoteMeta(tc.flag)).Match(readme) {
			t.Errorf("README.md does not mention %s %s", tc.in, tc.flag)
		}
	}
	if !strings.Contains(doc["HWCAUDIT_PPROF_DIR"], "heap-peak.pprof") || !strings.Contains(readmeRow("HWCAUDIT_PPROF_DIR"), "heap-peak.pprof") {
		t.Error("help or README leaves heap-peak.pprof out of HWCAUDIT_PPROF_DIR")
	}
}

// usageBlock returns the usage entry of cmd: its line and the indented
// lines after it, up to the next command.
func usageBlock(help, cmd string) string {
	lines := strings.Split(help, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "  "+cmd) {
			continue
		}
		block := []string{l}
		for _, next := range lines[i+1:] {
			if strings.HasPrefix(next, "  exporter ") || strings.TrimSpace(next) == "" {
				break
			}
			block = append(block, next)
		}
		return strings.Join(block, "\n")
	}
	return ""
}
