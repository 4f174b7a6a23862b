package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/checkpoint"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
)

func TestCheckAllGood(t *testing.T) {
	h := newHarness(t, simConfig(1, 30))
	r := h.mustRun(exitOK, "check")
	for _, ins := range testInstances {
		for _, op := range testOps {
			want := "ok    source swr/" + ins + "/" + op + ": 1 request, total 30 records"
			if !strings.Contains(r.stdout, want+"\n") {
				t.Errorf("missing %q in\n%s", want, r.stdout)
			}
		}
	}
	for _, want := range []string{"ok    configuration:", "ok    credentials:", "ok    sink file:", "ok    dead letter:", "ok    checkpoint store:", "ok    run lock: free", "all checks passed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("missing %q in\n%s", want, r.stdout)
		}
	}
	// Nothing exported, no checkpoint written.
	if out := readOutput(t, h.datasetDir(), true); out.lines != 0 {
		t.Errorf("check exported %d records", out.lines)
	}
	if cps := readCheckpoints(t, h.stateDir()); len(cps) != 0 {
		t.Errorf("check wrote checkpoints: %v", cps)
	}
}

func TestCheckWrongSecret(t *testing.T) {
	h := newHarness(t, simConfig(1, 5))
	const secret = "wrong-secret-key-0123456789abcdef"
	h.env["HUAWEICLOUD_SDK_SK"] = secret
	r := h.mustRun(exitFailed, "check")
	if !regexp.MustCompile(`(?m)^FAIL  source swr/`).MatchString(r.stdout) {
		t.Errorf("no FAIL line for the sources:\n%v", r)
	}
	if strings.Contains(r.stdout+r.stderr, secret) {
		t.Errorf("the secret key appears in the output:\n%v", r)
	}
}

func TestCheckDeadKafka(t *testing.T) {
	h := newHarness(t, simConfig(1, 5))
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	h.env["HWCAUDIT_SINKS"] = "file,kafka"
	h.env["HWCAUDIT_KAFKA_BROKERS"] = addr
	r := h.mustRun(exitFailed, "check")
	if !regexp.MustCompile(`(?m)^FAIL  sink kafka: .*` + regexp.QuoteMeta(addr)).MatchString(r.stdout) {
		t.Errorf("no FAIL line for the kafka sink naming %s:\n%v", addr, r)
	}
	if !strings.Contains(r.stdout, "ok    sink file:") {
		t.Errorf("no ok line for the file sink:\n%v", r)
	}
}

func TestCheckConfigError(t *testing.T) {
	h := newHarness(t, simConfig(1, 5))
	h.env["HWCAUDIT_SINKS"] = "nope"
	r := h.run("check")
	if r.code != exitUsage || !strings.Contains(r.stderr, "HWCAUDIT_SINKS") {
		t.Errorf("want exit 2 naming HWCAUDIT_SINKS, got\n%v", r)
	}
}

func TestCheckpointsListShowReset(t *testing.T) {
	h := newHarness(t, simConfig(1, 30))
	h.mustRun(exitOK, "run")
	key := "swr/" + testInstances[0] + "/pull"

	// Only the checkpoint configuration is needed.
	env := map[string]string{"HWCAUDIT_CHECKPOINT_URL": h.env["HWCAUDIT_CHECKPOINT_URL"]}
	cp := func(code int, args ...string) result {
		t.Helper()
		r := startExporter(t, h.dir, env, append([]string{"checkpoints"}, args...)...).wait(t, 20*1e9)
		if r.code != code {
			t.Fatalf("checkpoints %v: want exit %d, got\n%v", args, code, r)
		}
		return r
	}
	r := cp(exitOK, "list")
	if n := strings.Count(r.stdout, "\n"); n != 1+len(testInstances)*len(testOps) {
		t.Errorf("list: want a header and %d lines, got\n%s", len(testInstances)*len(testOps), r.stdout)
	}
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + ` +\S+Z +\{"id":\d+`).MatchString(r.stdout) {
		t.Errorf("list: no line for %s:\n%s", key, r.stdout)
	}
	r = cp(exitOK, "show", key)
	if !strings.Contains(r.stdout, `"stream": "`+key+`"`) || !strings.Contains(r.stdout, `"cursor"`) {
		t.Errorf("show:\n%s", r.stdout)
	}
	r = cp(exitFailed, "show", "swr/nope/pull")
	if !strings.Contains(r.stderr, "no checkpoint") {
		t.Errorf("show of a missing stream:\n%v", r)
	}
	cp(exitOK, "reset", key)
	r = cp(exitFailed, "reset", key)
	if !strings.Contains(r.stderr, "has no checkpoint") {
		t.Errorf("second reset:\n%v", r)
	}
	cp(exitUsage, "frobnicate")
	cp(exitUsage, "show")

	// The next run re-exports the reset stream, and only it.
	before := readOutput(t, h.datasetDir(), true).lines
	r = h.mustRun(exitOK, "run")
	if got := readOutput(t, h.datasetDir(), true).lines - before; got != 30 {
		t.Errorf("after reset the run exported %d records, want the stream's 30\n%v", got, r)
	}
}

func TestCheckpointsResetLocked(t *testing.T) {
	h := newHarness(t, simConfig(1, 5))
	h.mustRun(exitOK, "run")
	store, err := checkpoint.NewFileStore(h.stateDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := store.Lock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	r := h.run("checkpoints", "reset", "swr/"+testInstances[0]+"/pull")
	if r.code != exitFailed || !strings.Contains(r.stderr, "another run holds the lock") || !strings.Contains(r.stderr, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("want exit 1 naming the lock holder, got\n%v", r)
	}
	if marks := readCheckpoints(t, h.stateDir()); len(marks) != len(testInstances)*len(testOps) {
		t.Errorf("reset under a held lock deleted a checkpoint: %v", marks)
	}
	// check reports the held lock without failing.
	r = h.mustRun(exitOK, "check")
	if !strings.Contains(r.stdout, "ok    run lock: held") {
		t.Errorf("check did not report the held lock:\n%s", r.stdout)
	}
}

func TestCheckKafkaUp(t *testing.T) {
	h := newHarness(t, simConfig(1, 5))
	b := newKafkaBroker(t)
	h.env["HWCAUDIT_SINKS"] = "kafka"
	h.env["HWCAUDIT_KAFKA_BROKERS"] = b.addr()
	r := h.mustRun(exitOK, "check")
	if !strings.Contains(r.stdout, "ok    sink kafka: "+b.addr()+" answered") {
		t.Errorf("no ok line for the kafka sink:\n%v", r)
	}
}

// TestCheckProbesEverySource runs check's source probes against the demo
// simulator, which serves all four sources: each stream's own request code
// asks for one record and reports the API's count.
func TestCheckProbesEverySource(t *testing.T) {
	now := time.Now()
	demo := simulator.DemoConfig(now)
	sim := simulator.New(demo)
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	dir := t.TempDir()
	// The SDK's credential provider reads the process environment.
	t.Setenv("HUAWEICLOUD_SDK_AK", simulator.DemoAK)
	t.Setenv("HUAWEICLOUD_SDK_SK", simulator.DemoSK)
	env := map[string]string{
		"HWCAUDIT_CREDENTIALS":        "env",
		"HWCAUDIT_PROJECT_ID":         simulator.DemoProjectID,
		"HWCAUDIT_REGION":             "cn-north-4",
		"HWCAUDIT_SWR_INSTANCES":      strings.Join(demo.SWR.Instances, ","),
		"HWCAUDIT_SWR_ENDPOINT":       url,
		"HWCAUDIT_ARTIFACT_TENANT_ID": demo.Artifact.TenantID,
		"HWCAUDIT_ARTIFACT_REPOS":     artifactRepos(demo.Artifact.Repos),
		"HWCAUDIT_ARTIFACT_ENDPOINT":  url,
		"HWCAUDIT_GAUSSDB_INSTANCES":  strings.Join(demo.TaurusDB.Instances, ","),
		"HWCAUDIT_GAUSSDB_ENDPOINT":   url,
		"HWCAUDIT_GAUSSDB_SQL":        "true",
		"HWCAUDIT_DBSS_INSTANCES":     strings.Join(demo.DBSS.Instances, ","),
		"HWCAUDIT_DBSS_ENDPOINT":      url,
		"HWCAUDIT_DBSS_STREAMS":       "operation,sql,alarm",
		"HWCAUDIT_CTS_ENABLED":        "true",
		"HWCAUDIT_CTS_TRACE_TYPES":    "system,data",
		"HWCAUDIT_CTS_ENDPOINT":       url,
		"HWCAUDIT_FILE_DIR":           filepath.Join(dir, "out"),
		"HWCAUDIT_CHECKPOINT_URL":     "file://" + filepath.Join(dir, "state"),
		"HWCAUDIT_DEADLETTER":         "file://" + filepath.Join(dir, "deadletter"),
	}
	cfg, err := loadConfig(t.Context(), envconfig.MapLookuper(env), now)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if code := runChecks(t.Context(), cfg, &out); code != exitOK {
		t.Fatalf("check exited %d:\n%s", code, out.String())
	}
	probed := regexp.MustCompile(`(?m)^ok    source (\S+): 1 request, (?:total ([0-9]+) records|the API gives no count)$`)
	seen := map[string]bool{}
	lines := probed.FindAllStringSubmatch(out.String(), -1)
	// One page of one record per stream: the probes shrink their page.
	if st := sim.Stats(); st.Pages != int64(len(lines)) || st.Records != int64(len(lines)) {
		t.Errorf("%d streams probed, the simulator answered %d pages with %d records", len(lines), st.Pages, st.Records)
	}
	for _, m := range lines {
		if m[2] == "0" || (m[2] == "" && !strings.HasPrefix(m[1], "cts/")) {
			t.Errorf("%s: the probe saw no records, the simulator holds some", m[1])
		}
		seen[strings.SplitN(m[1], "/", 2)[0]] = true
	}
	for _, src := range sourceNames() {
		if !seen[src] {
			t.Errorf("no probe line for source %s:\n%s", src, out.String())
		}
	}
}

// TestCheckDBSSSQLAndAlarm: check probes the DBSS SQL audit and alarm
// streams too, with the page shrunk in the JSON type each API takes
// (numbers there, strings for the operation logs).
func TestCheckDBSSSQLAndAlarm(t *testing.T) {
	cfg := otherSourcesConfig(3)
	cfg.DBSS.SQLRecords, cfg.DBSS.Alarms = 50, 10
	h := newHarness(t, cfg)
	url := h.env["HWCAUDIT_SWR_ENDPOINT"]
	delete(h.env, "HWCAUDIT_SWR_INSTANCES")
	h.env["HWCAUDIT_DBSS_INSTANCES"] = testDBSSInstance
	h.env["HWCAUDIT_DBSS_ENDPOINT"] = url
	h.env["HWCAUDIT_DBSS_STREAMS"] = "operation,sql,alarm"
	h.env["HWCAUDIT_START_FROM"] = "13h"
	r := h.mustRun(exitOK, "check")
	for _, want := range []string{
		"ok    source dbss/" + testDBSSInstance + ": 1 request, total 400 records",
		"ok    source dbss/" + testDBSSInstance + "/sql: 1 request, total 50 records",
		"ok    source dbss/" + testDBSSInstance + "/alarm: 1 request, total 10 records",
	} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("missing %q in\n%s", want, r.stdout)
		}
	}
}
