package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/checkpoint"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/swr"
)

// The real binary is built the first time a test asks for it, so that
// the package's unit tests (and a `go test -run` of one of them) do not
// wait for a build they do not use.
var (
	binOnce  sync.Once
	binDir   string
	binPath  string
	binError error
)

// exporterBin is the path of the real binary, built once per test process.
func exporterBin(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() {
		binDir, binError = os.MkdirTemp("", "hwcaudit-exporter-test-")
		if binError != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			// go test runs with GOROOT set; its go is the one under test.
			goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		}
		binPath = filepath.Join(binDir, "exporter")
		build := exec.Command(goTool, "build", "-o", binPath, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			binError = fmt.Errorf("building the exporter: %v\n%s", err, out)
		}
	})
	if binError != nil {
		tb.Fatal(binError)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// The simulated SWR Enterprise instances every end-to-end test reads.
var (
	testInstances = []string{"5d1f0c2e-7a43-4b8e-9f10-2c3d4e5f6a7b", "9e8d7c6b-5a49-4382-a716-0f1e2d3c4b5a"}
	testOps       = []string{"pull", "create", "delete"}
)

// simConfig is a small dataset: perOp records for each instance and
// operation, all within the exporter's default start window (24h).
func simConfig(seed int64, perOp int) simulator.Config {
	return simulator.Config{
		ProjectID:   simulator.DemoProjectID,
		Credentials: []simulator.Credential{{AK: simulator.DemoAK, SK: simulator.DemoSK}},
		Seed:        seed,
		SWR: simulator.SWRConfig{
			Instances:           testInstances,
			RecordsPerOperation: perOp,
			Start:               time.Now().Add(-12 * time.Hour).UTC().Truncate(time.Second),
			Interval:            10 * time.Second,
		},
	}
}

// harness runs the exporter binary against an in-test simulator, with every
// directory under one temporary working directory.
type harness struct {
	t   *testing.T
	dir string // the subprocess's working directory
	sim *simulator.Server
	env map[string]string
}

func newHarness(t *testing.T, cfg simulator.Config) *harness {
	t.Helper()
	sim := simulator.New(cfg)
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, sim: sim}
	h.env = map[string]string{
		"HUAWEICLOUD_SDK_AK": simulator.DemoAK,
		// Never the metadata service: it is not on loopback.
		"HWCAUDIT_CREDENTIALS":       "env,profile",
		"HUAWEICLOUD_SDK_SK":         simulator.DemoSK,
		"HUAWEICLOUD_SDK_PROJECT_ID": simulator.DemoProjectID,
		"HWCAUDIT_REGION":            "cn-north-4",
		"HWCAUDIT_SWR_INSTANCES":     strings.Join(testInstances, ","),
		"HWCAUDIT_SWR_ENDPOINT":      url,
		"HWCAUDIT_FILE_DIR":          filepath.Join(dir, "out"),
		"HWCAUDIT_CHECKPOINT_URL":    "file://" + filepath.Join(dir, "state"),
		"HWCAUDIT_DEADLETTER":        "file://" + filepath.Join(dir, "deadletter"),
		"HWCAUDIT_MAX_RPS":           "100000",
		"HWCAUDIT_RETRY_INITIAL":     "5ms",
		"HWCAUDIT_RETRY_MAX":         "50ms",
		"HWCAUDIT_RETRY_MAX_ELAPSED": "10s",
		"HWCAUDIT_SHUTDOWN_GRACE":    "5s",
		"HWCAUDIT_LOG_FORMAT":        "json",
	}
	return h
}

func (h *harness) datasetDir() string    { return filepath.Join(h.dir, "out", swr.Dataset) }
func (h *harness) stateDir() string      { return filepath.Join(h.dir, "state") }
func (h *harness) deadLetterDir() string { return filepath.Join(h.dir, "deadletter") }

// result is how a finished exporter process ended.
type result struct {
	code     int // exit code; -1 when a signal ended the process
	signaled bool
	stdout   string
	stderr   string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, tail(r.stderr, 4000))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// syncBuffer is written by the process's output copier while the test may
// read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// proc is a running exporter process.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{}
	res            result
}

// start runs the exporter with h's environment (nothing else but PATH and
// HOME) in h.dir. The process is killed when the test ends.
func (h *harness) start(args ...string) *proc {
	h.t.Helper()
	return startExporter(h.t, h.dir, h.env, args...)
}

func startExporter(t *testing.T, dir string, env map[string]string, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(exporterBin(t), args...)
	p.cmd.Dir = dir
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		err := p.cmd.Wait()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			p.res.code = -2
		} else {
			p.res.code = p.cmd.ProcessState.ExitCode()
			if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
				p.res.signaled = ws.Signaled()
			}
		}
		p.res.stdout, p.res.stderr = p.stdout.String(), p.stderr.String()
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns once the process ended; the test fails if that takes longer
// than timeout (a hang, not a slow run).
func (p *proc) wait(t *testing.T, timeout time.Duration) result {
	t.Helper()
	select {
	case <-p.done:
		return p.res
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("exporter %v did not exit within %s; killed it\n%v", p.cmd.Args[1:], timeout, p.res)
		return result{}
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// run runs the exporter to its end.
func (h *harness) run(args ...string) result {
	h.t.Helper()
	return h.start(args...).wait(h.t, 20*time.Second)
}

// mustRun runs the exporter and fails the test unless it exits with code.
func (h *harness) mustRun(code int, args ...string) result {
	h.t.Helper()
	r := h.run(args...)
	if r.code != code {
		h.t.Fatalf("exporter %s: want exit %d, got\n%v", strings.Join(args, " "), code, r)
	}
	checkJSONLogs(h.t, r.stderr)
	return r
}

// checkJSONLogs asserts that with HWCAUDIT_LOG_FORMAT=json every line the
// exporter logs is one JSON object, and that every stream that finished
// accounted for each record it fetched (delivered, dead-lettered or
// excluded): the run summary counts the streams that did not.
func checkJSONLogs(t *testing.T, stderr string) {
	t.Helper()
	for i, ln := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if ln == "" && i == 0 {
			continue
		}
		if !json.Valid([]byte(ln)) {
			t.Errorf("stderr line %d is not a JSON log line: %q", i+1, ln)
			continue
		}
		var l struct {
			Msg         string `json:"msg"`
			Unaccounted *int   `json:"unaccounted_streams"`
		}
		_ = json.Unmarshal([]byte(ln), &l)
		switch {
		case l.Msg == "run summary" && (l.Unaccounted == nil || *l.Unaccounted != 0):
			t.Errorf("run summary without unaccounted_streams 0: %s", ln)
		case strings.HasPrefix(l.Msg, "records unaccounted for"):
			t.Errorf("a stream does not add up: %s", ln)
		}
	}
}

// outDoc is what the tests read back from one NDJSON line of the file sink.
type outDoc struct {
	file string
	line []byte

	Timestamp string `json:"@timestamp"`
	Event     struct {
		ID       string `json:"id"`
		Dataset  string `json:"dataset"`
		Action   string `json:"action"`
		Original string `json:"original"`
	} `json:"event"`
	Huaweicloud struct {
		SWR struct {
			InstanceID string `json:"instance_id"`
			AuditID    string `json:"audit_id"`
			Operation  string `json:"operation"`
		} `json:"swr"`
	} `json:"huaweicloud"`
}

// recKey identifies an SWR record: audit ids are unique per instance.
type recKey struct {
	instance string
	id       int64
}

// output is everything the file sink stored, by record.
type output struct {
	docs     map[recKey][]outDoc
	lines    int
	files    []string // visible *.ndjson files
	leftover []string // hidden in-progress files
}

// readOutput reads the dataset directory. Every line of a visible *.ndjson
// file must be one complete JSON document (a torn line fails the test).
// With inProgress, the complete lines of hidden in-progress files count
// too: they are durable, and the next run's recovery publishes them.
func readOutput(t *testing.T, dir string, inProgress bool) output {
	t.Helper()
	out := output{docs: make(map[recKey][]outDoc)}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		hidden := strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".ndjson.inprogress")
		switch {
		case strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".inprogress.new"):
			// Created and not yet locked and named: it holds nothing.
			continue
		case hidden:
			out.leftover = append(out.leftover, name)
			if !inProgress {
				continue
			}
		case strings.HasSuffix(name, ".ndjson"):
			out.files = append(out.files, name)
		default:
			t.Errorf("unexpected file %s in %s", name, dir)
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if hidden {
			data = data[:bytes.LastIndexByte(data, '\n')+1]
		} else if len(data) == 0 || data[len(data)-1] != '\n' {
			t.Errorf("published file %s is empty or does not end with a newline", name)
		}
		out.add(t, name, data)
	}
	return out
}

// add parses data, complete NDJSON lines from source, into out. A line
// that is not a JSON document fails the test.
func (out *output) add(t *testing.T, source string, data []byte) {
	t.Helper()
	if len(data) == 0 {
		return
	}
	for n, ln := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		d := outDoc{file: source, line: ln}
		if err := json.Unmarshal(ln, &d); err != nil {
			t.Errorf("%s line %d is not a JSON document (%v): %.200q", source, n+1, err, ln)
			continue
		}
		id, err := strconv.ParseInt(d.Huaweicloud.SWR.AuditID, 10, 64)
		if err != nil {
			t.Errorf("%s line %d: huaweicloud.swr.audit_id %q: %v", source, n+1, d.Huaweicloud.SWR.AuditID, err)
			continue
		}
		k := recKey{d.Huaweicloud.SWR.InstanceID, id}
		out.docs[k] = append(out.docs[k], d)
		out.lines++
	}
}

// servedJSON is the exact record the simulator serves for rec (its
// documented member order), so that tests can compare event.original and
// dead letters byte for byte.
func servedJSON(rec simulator.SWRRecord) string {
	var b strings.Builder
	b.WriteByte('{')
	switch rec.Malformed {
	case simulator.MalformedIDString:
		b.WriteString(`"id":"not-a-number",`)
	case simulator.MalformedNoID:
	default:
		fmt.Fprintf(&b, `"id":%d,`, rec.ID)
	}
	opTime := rec.OpTime.UTC().Format("2006-01-02T15:04:05.000Z")
	if rec.Malformed == simulator.MalformedOpTime {
		opTime = rec.OpTime.UTC().Format("02/01/2006 15:04:05")
	}
	fmt.Fprintf(&b, `"op_time":%q,"operation":%q,"resource":%q,"resource_type":%q,"username":"%s"}`,
		opTime, rec.Operation, rec.Resource, rec.ResourceType, rec.Username)
	return b.String()
}

// checkMode says how often each simulator record must appear.
type checkMode int

const (
	exactlyOnce checkMode = iota
	atLeastOnce
)

// checkExported asserts that every well-formed record the simulator holds
// now is in out (exactly or at least once), mapped faithfully, that copies
// of one record agree on everything but event.ingested, and that out holds
// nothing else.
func checkExported(t *testing.T, sim *simulator.Server, out output, mode checkMode) {
	t.Helper()
	var problems []string
	report := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	expected := make(map[recKey]bool)
	for _, ins := range testInstances {
		for _, op := range testOps {
			for _, rec := range sim.SWRRecords(ins, op) {
				if rec.Malformed != "" {
					continue
				}
				k := recKey{ins, rec.ID}
				expected[k] = true
				docs := out.docs[k]
				switch {
				case len(docs) == 0:
					report("missing: instance %s %s record %d", ins, op, rec.ID)
					continue
				case len(docs) > 1 && mode == exactlyOnce:
					report("duplicate: instance %s %s record %d stored %d times (files %s, %s)", ins, op, rec.ID, len(docs), docs[0].file, docs[1].file)
				}
				wantID := ecsdoc.ID("swr", ins, strconv.FormatInt(rec.ID, 10))
				for _, d := range docs {
					if d.Event.ID != wantID {
						report("record %s/%d: event.id %s, want %s (deterministic)", ins, rec.ID, d.Event.ID, wantID)
					}
					ts, err := time.Parse(time.RFC3339Nano, d.Timestamp)
					if err != nil || !ts.Equal(rec.OpTime) || !strings.HasSuffix(d.Timestamp, "Z") {
						report("record %s/%d: @timestamp %q, want op_time %s in UTC", ins, rec.ID, d.Timestamp, rec.OpTime.Format(time.RFC3339Nano))
					}
					if d.Huaweicloud.SWR.Operation != op || d.Event.Action != op {
						report("record %s/%d: operation %q, action %q, want %q", ins, rec.ID, d.Huaweicloud.SWR.Operation, d.Event.Action, op)
					}
					if d.Event.Dataset != swr.Dataset {
						report("record %s/%d: event.dataset %q", ins, rec.ID, d.Event.Dataset)
					}
					if want := servedJSON(rec); d.Event.Original != want {
						report("record %s/%d: event.original\n got %s\nwant %s", ins, rec.ID, d.Event.Original, want)
					}
				}
				for _, d := range docs[1:] {
					if a, b := withoutIngested(t, docs[0].line), withoutIngested(t, d.line); a != b {
						report("record %s/%d: copies differ beyond event.ingested:\n%s\n%s", ins, rec.ID, a, b)
					}
				}
			}
		}
	}
	for k, docs := range out.docs {
		if !expected[k] {
			report("unexpected: instance %s record %d (%d copies) is not a well-formed simulator record", k.instance, k.id, len(docs))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		shown := problems[:min(len(problems), 15)]
		t.Errorf("%d problem(s) with the exported records (%d expected, %d lines read); first %d:\n%s",
			len(problems), len(expected), out.lines, len(shown), strings.Join(shown, "\n"))
	}
}

// withoutIngested re-encodes doc without event.ingested, the one field that
// legitimately differs between two runs' copies of a record.
func withoutIngested(t *testing.T, doc []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	if ev, ok := m["event"].(map[string]any); ok {
		delete(ev, "ingested")
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readCheckpoints parses every checkpoint file and returns the high-water
// audit id by stream key. Each file must be valid JSON for its stream; the
// store's own List must agree.
func readCheckpoints(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		// A run killed before it opened the store saved nothing.
		return map[string]int64{}
	}
	if err != nil {
		t.Fatal(err)
	}
	marks := make(map[string]int64)
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue // the lock, and temporaries of a save cut short
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var cp checkpoint.Checkpoint
		if err := json.Unmarshal(data, &cp); err != nil {
			t.Errorf("checkpoint %s is not valid JSON: %v\n%s", name, err, data)
			continue
		}
		var cur struct {
			ID *int64 `json:"id"`
		}
		if err := json.Unmarshal(cp.Cursor, &cur); err != nil || cur.ID == nil {
			t.Errorf("checkpoint %s: cursor %s has no id (%v)", name, cp.Cursor, err)
			continue
		}
		marks[cp.Stream] = *cur.ID
	}
	store, err := checkpoint.NewFileStore(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	cps, err := store.List(t.Context())
	if err != nil {
		t.Errorf("checkpoint store List: %v", err)
	}
	if len(cps) != len(marks) {
		t.Errorf("checkpoint store lists %d checkpoints, the directory holds %d", len(cps), len(marks))
	}
	return marks
}

// checkCovered asserts the promise of commit-after-ack: every record at or
// below a stream's checkpoint is in out.
func checkCovered(t *testing.T, sim *simulator.Server, marks map[string]int64, out output) {
	t.Helper()
	var missing []string
	for _, ins := range testInstances {
		for _, op := range testOps {
			key := "swr/" + ins + "/" + op
			mark, ok := marks[key]
			if !ok {
				continue
			}
			for _, rec := range sim.SWRRecords(ins, op) {
				if rec.ID <= mark && rec.Malformed == "" && len(out.docs[recKey{ins, rec.ID}]) == 0 {
					missing = append(missing, fmt.Sprintf("%s record %d (checkpoint %d)", key, rec.ID, mark))
				}
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d record(s) at or below their stream's checkpoint were never stored, e.g.\n%s",
			len(missing), strings.Join(missing[:min(10, len(missing))], "\n"))
	}
}

// totalRecords counts the simulator's well-formed and malformed records.
func totalRecords(sim *simulator.Server) (good, bad int) {
	for _, ins := range testInstances {
		for _, op := range testOps {
			for _, rec := range sim.SWRRecords(ins, op) {
				if rec.Malformed == "" {
					good++
				} else {
					bad++
				}
			}
		}
	}
	return good, bad
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hiddenFiles lists in-progress files left in dir.
func hiddenFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".inprogress") {
			names = append(names, e.Name())
		}
	}
	return names
}
