package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/artifact"
	"github.com/hwcaudit/hwcaudit/sources/cts"
	"github.com/hwcaudit/hwcaudit/sources/dbss"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/swr"
	"github.com/hwcaudit/hwcaudit/sources/taurusdb"
)

// The demo's dataset: SWR 2 instances × 3 operations × 3000, 2 Artifact
// repositories, TaurusDB files and their SQL statements, DBSS operation
// logs, SQL audit records and alarms, CTS management and data traces; 15
// streams.
const (
	swrTotal      = 2 * 3 * 3000
	artifactTotal = 2 * simulator.DemoArtifactRecords
	sqlTotal      = simulator.DemoTaurusDBFiles * simulator.DemoTaurusDBSQLRecords
	ctsTotal      = simulator.DemoCTSTraces + simulator.DemoCTSDataTraces
	demoTotal     = swrTotal + artifactTotal + simulator.DemoTaurusDBFiles + sqlTotal + simulator.DemoDBSSRecords + simulator.DemoDBSSSQLRecords + simulator.DemoDBSSAlarms + ctsTotal
	demoStreams   = 6 + 2 + 2 + 3 + 2
)

// TestDemo runs `exporter demo` in an empty directory with nothing
// configured: the first run exports the whole demo dataset, the second
// finds nothing new, and --fresh starts over.
func TestDemo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"HWCAUDIT_LOG_FORMAT": "json"}
	const total = demoTotal
	dataset := filepath.Join(dir, "out", swr.Dataset)
	demo := func(args ...string) result {
		t.Helper()
		r := startExporter(t, dir, env, append([]string{"demo"}, args...)...).wait(t, 60*time.Second)
		if r.code != exitOK {
			t.Fatalf("demo %v: %v", args, r)
		}
		checkJSONLogs(t, r.stderr)
		return r
	}
	// distinct counts the stored events by event.id.
	distinct := func(out output) int {
		ids := make(map[string]bool)
		for _, docs := range out.docs {
			for _, d := range docs {
				ids[d.Event.ID] = true
			}
		}
		return len(ids)
	}

	r := demo()
	if _, written, dead := summaryTotals(t, r.stdout); written != total || dead != 0 {
		t.Errorf("first demo: %d written, %d dead-lettered; want %d, 0\n%s", written, dead, total, r.stdout)
	}
	out := readOutput(t, dataset, false)
	if out.lines != swrTotal || distinct(out) != swrTotal {
		t.Errorf("first demo stored %d SWR lines, %d distinct events; want %d", out.lines, distinct(out), swrTotal)
	}
	for ds, want := range map[string]int{artifact.Dataset: artifactTotal, taurusdb.Dataset: simulator.DemoTaurusDBFiles, taurusdb.SQLDataset: sqlTotal, dbss.Dataset: simulator.DemoDBSSRecords,
		dbss.DatasetSQL: simulator.DemoDBSSSQLRecords, dbss.DatasetAlarm: simulator.DemoDBSSAlarms, cts.Dataset: ctsTotal} {
		if n := countLines(t, filepath.Join(dir, "out", ds)); n != want {
			t.Errorf("first demo stored %d %s events, want %d", n, ds, want)
		}
	}
	for _, d := range []string{"out/deadletter", "state"} {
		if m, _ := filepath.Glob(filepath.Join(dir, d)); len(m) == 0 {
			t.Errorf("demo did not create ./%s", d)
		}
	}

	r = demo()
	if !strings.Contains(r.stdout, "nothing new: every stream is caught up") {
		t.Errorf("second demo is not caught up:\n%s", r.stdout)
	}
	if again := readOutput(t, dataset, false); again.lines != swrTotal {
		t.Errorf("second demo changed the output: %d lines", again.lines)
	}

	r = demo("--fresh")
	if !strings.Contains(r.stdout, "demo: --fresh: forgot 15 checkpoints, removed 8 output files") {
		t.Errorf("--fresh does not report what it reset:\n%s", r.stdout)
	}
	if _, written, _ := summaryTotals(t, r.stdout); written != total {
		t.Errorf("demo --fresh wrote %d records, want %d", written, total)
	}
	out = readOutput(t, dataset, false)
	if out.lines != swrTotal || distinct(out) != swrTotal || len(out.files) != 1 {
		t.Errorf("after --fresh: %d lines, %d distinct events in %d files; want %d in one file", out.lines, distinct(out), len(out.files), swrTotal)
	}
}

// countLines counts the NDJSON lines in a dataset directory's published files.
func countLines(t testing.TB, dir string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n += bytes.Count(data, []byte("\n"))
	}
	return n
}

// TestDemoServe starts `exporter demo --serve 127.0.0.1:0`, reads the
// variables it prints, and runs `check` and `run` with exactly those: both
// succeed, and the run exports the whole demo dataset. SIGINT then stops
// the simulator with exit 0.
func TestDemoServe(t *testing.T) {
	t.Parallel()
	serve := exec.Command(exporterBin(t), "demo", "--serve", "127.0.0.1:0")
	serve.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	serve.Dir = t.TempDir()
	stdout, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	serve.Stderr = &stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		serve.Process.Kill()
		<-exited
	})
	lines := make(chan string)
	rest := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "unset HWCAUDIT_AUTH_TOKEN" {
				close(lines)
				var b strings.Builder
				for sc.Scan() {
					b.WriteString(sc.Text() + "\n")
				}
				rest <- b.String()
				exited <- serve.Wait()
				return
			}
			lines <- sc.Text()
		}
		close(lines)
		rest <- ""
		exited <- serve.Wait()
	}()

	env := map[string]string{"HWCAUDIT_LOG_FORMAT": "json"}
	exportRE := regexp.MustCompile(`^export (HWCAUDIT_[A-Z_]+|HUAWEICLOUD_SDK_[A-Z_]+)=(\S+)$`)
	var addr string
	timeout := time.After(30 * time.Second)
read:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				break read
			}
			if m := regexp.MustCompile(`on http://(127\.0\.0\.1:\d+) `).FindStringSubmatch(line); m != nil {
				addr = m[1]
			}
			if m := exportRE.FindStringSubmatch(line); m != nil {
				env[m[1]] = strings.Trim(m[2], "'")
			} else if strings.HasPrefix(line, "export ") {
				t.Errorf("export line not understood: %s", line)
			}
		case <-timeout:
			t.Fatalf("demo --serve printed no variables in 30s; stderr: %s", stderr.String())
		}
	}
	if addr == "" || strings.HasSuffix(addr, ":0") {
		t.Fatalf("demo --serve did not print the address it listens on; variables %v", env)
	}
	for _, name := range []string{"HWCAUDIT_SWR_ENDPOINT", "HWCAUDIT_DBSS_ENDPOINT", "HUAWEICLOUD_SDK_AK", "HWCAUDIT_PROJECT_ID"} {
		if env[name] == "" {
			t.Errorf("demo --serve does not export %s", name)
		}
	}
	if env["HWCAUDIT_SWR_ENDPOINT"] != "http://"+addr {
		t.Errorf("HWCAUDIT_SWR_ENDPOINT=%s, the simulator is on %s", env["HWCAUDIT_SWR_ENDPOINT"], addr)
	}

	dir := t.TempDir()
	if r := startExporter(t, dir, env, "check").wait(t, 60*time.Second); r.code != exitOK || !strings.Contains(r.stdout, "all checks passed") {
		t.Fatalf("check against demo --serve: %v", r)
	}
	r := startExporter(t, dir, env, "run").wait(t, 60*time.Second)
	if r.code != exitOK {
		t.Fatalf("run against demo --serve: %v", r)
	}
	if streams, written, dead := summaryTotals(t, r.stdout); streams != demoStreams || written != demoTotal || dead != 0 {
		t.Errorf("run against demo --serve: %d streams, %d written, %d dead-lettered; want %d, %d, 0\n%s", streams, written, dead, demoStreams, demoTotal, r.stdout)
	}

	if err := serve.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case out := <-rest:
		if err := <-exited; err != nil {
			t.Errorf("demo --serve after SIGINT: %v; stderr: %s", err, stderr.String())
		}
		exited <- nil // for the cleanup
		if !strings.Contains(out, "simulator stopped") {
			t.Errorf("demo --serve did not say it stopped: %q", out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo --serve did not stop within 30s of SIGINT")
	}
}

// On a terminal `exporter demo` shows the live progress display, redrawn in
// place while the paced export runs, and ends with the report. The
// terminal is the pseudo-terminal of util-linux's script(1).
func TestDemoTerminalProgress(t *testing.T) {
	t.Parallel()
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) is not installed: no pseudo-terminal to run the demo on")
	}
	cmd := exec.Command(scriptBin, "-qec", exporterBin(t)+" demo --pace 100", "/dev/null")
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo on a terminal: %v\n%s", err, out)
	}
	text := string(out)
	// Each redraw moves the cursor up over the previous frame.
	if n := len(regexp.MustCompile(`\x1b\[\d+A`).FindAllString(text, -1)); n < 2 {
		t.Errorf("the progress display was drawn %d times; want it redrawn while the demo runs:\n%q", n, tail(text, 2000))
	}
	if !strings.Contains(text, "[##########] 100%") || !strings.Contains(text, "done") {
		t.Errorf("no finished progress bar in:\n%q", tail(text, 2000))
	}
	if _, written, _ := summaryTotals(t, strings.ReplaceAll(text, "\r", "")); written != demoTotal {
		t.Errorf("demo on a terminal wrote %d records", written)
	}
}
