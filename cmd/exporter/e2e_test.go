package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/simulator"
)

// The end-to-end tests run the real binary (built by TestMain) against an
// in-test simulator and read back what it stored.

var killSeed = flag.Uint64("kill-seed", 20240501, "seed of the moments TestKillAndResume and TestKillAndResumeEverySource kill the exporter")

// summaryRE matches the summary's totals line.
// (the table's last row: streams, fetched, written, dead-lettered, ...).
var summaryRE = regexp.MustCompile(`(?m)^(\d+) streams +\d+ +(\d+) +(\d+) +\d+ +\d+$`)

// summaryTotals returns the streams, written and dead-lettered counts of a
// run's report.
func summaryTotals(t *testing.T, report string) (streams, written, dead int) {
	t.Helper()
	m := summaryRE.FindStringSubmatch(report)
	if m == nil {
		t.Fatalf("no summary totals line in:\n%s", report)
	}
	streams, _ = strconv.Atoi(m[1])
	written, _ = strconv.Atoi(m[2])
	dead, _ = strconv.Atoi(m[3])
	return streams, written, dead
}

func TestRunExportsEveryRecordOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, simConfig(1, 300))
	good, _ := totalRecords(h.sim)

	r := h.mustRun(exitOK, "run")
	streams, written, dead := summaryTotals(t, r.stdout)
	if streams != len(testInstances)*len(testOps) || written != good || dead != 0 {
		t.Errorf("summary: %d streams, %d written, %d dead-lettered; want %d, %d, 0\n%s",
			streams, written, dead, len(testInstances)*len(testOps), good, r.stdout)
	}
	if strings.Count(r.stdout, " done ") != streams {
		t.Errorf("want every stream done:\n%s", r.stdout)
	}
	out := readOutput(t, h.datasetDir(), false)
	checkExported(t, h.sim, out, exactlyOnce)
	if out.lines != good {
		t.Errorf("%d lines stored, want %d", out.lines, good)
	}
	if len(out.leftover) > 0 {
		t.Errorf("in-progress files left after a clean run: %v", out.leftover)
	}
	marks := readCheckpoints(t, h.stateDir())
	for _, ins := range testInstances {
		for _, op := range testOps {
			recs := h.sim.SWRRecords(ins, op)
			key := "swr/" + ins + "/" + op
			// The newest record has no greater key above it to confirm
			// its own: the mark is the record below it, and the cursor's
			// skip counts the newest as delivered.
			if got, want := marks[key], recs[len(recs)-2].ID; got != want {
				t.Errorf("checkpoint of %s: id %d, want the record below the newest, %d", key, got, want)
			}
		}
	}

	// A second run finds nothing new and stores nothing.
	r = h.mustRun(exitOK, "run")
	if _, written, _ := summaryTotals(t, r.stdout); written != 0 {
		t.Errorf("second run wrote %d records", written)
	}
	if !strings.Contains(r.stdout, "nothing new: every stream is caught up") {
		t.Errorf("second run does not say nothing new:\n%s", r.stdout)
	}
	again := readOutput(t, h.datasetDir(), false)
	if !slices.Equal(again.files, out.files) || again.lines != out.lines {
		t.Errorf("second run changed the output: files %v → %v, lines %d → %d", out.files, again.files, out.lines, again.lines)
	}
}

func TestRunRidesOutThrottlingAndServerErrors(t *testing.T) {
	t.Parallel()
	cfg := simConfig(2, 200)
	cfg.Faults = simulator.Faults{ThrottleEvery: 5, ServerErrorEvery: 7, ServerErrorStatus: 503}
	h := newHarness(t, cfg)
	h.env["HWCAUDIT_SWR_PAGE_SIZE"] = "20"

	r := h.mustRun(exitOK, "run")
	if !strings.Contains(r.stderr, `"msg":"retrying"`) {
		t.Errorf("no retry was logged; were the faults injected?\n%s", tail(r.stderr, 2000))
	}
	st := h.sim.Stats()
	if st.Throttled == 0 || st.ServerErrors == 0 {
		t.Errorf("simulator stats %+v: want throttled and failed requests", st)
	}
	checkExported(t, h.sim, readOutput(t, h.datasetDir(), false), exactlyOnce)
}

// TestKillAndResume kills the exporter with SIGKILL at random moments, then
// lets it finish: nothing is lost, no published file holds a torn line, the
// checkpoints never pass what was stored, and the copies a replay leaves
// carry the same event.id.
func TestKillAndResume(t *testing.T) {
	t.Parallel()
	cfg := simConfig(3, 500)
	cfg.Faults.Latency = 15 * time.Millisecond
	h := newHarness(t, cfg)
	h.env["HWCAUDIT_SWR_PAGE_SIZE"] = "20"
	h.env["HWCAUDIT_BATCH_SIZE"] = "7"
	h.env["HWCAUDIT_FILE_MAX_BYTES"] = "16384"

	rng := rand.New(rand.NewPCG(*killSeed, 0))
	t.Logf("kill seed %d (-kill-seed to repeat)", *killSeed)
	const maxKills = 10
	kills := 0
	finished := false
	for range maxKills {
		p := h.start("run")
		time.Sleep(time.Duration(rng.Int64N(int64(250 * time.Millisecond))))
		p.cmd.Process.Kill()
		r := p.wait(t, 30*time.Second)
		if !r.signaled {
			// It finished before the kill.
			if r.code != exitOK {
				t.Fatalf("run between kills failed:\n%v", r)
			}
			finished = true
			break
		}
		kills++
		// What the killed run committed must be durable already: published
		// or in an in-progress file that the next start publishes.
		checkCovered(t, h.sim, readCheckpoints(t, h.stateDir()), readOutput(t, h.datasetDir(), true))
	}
	t.Logf("killed %d runs", kills)
	if kills == 0 {
		t.Errorf("every run finished before its kill: the test exercised no crash")
	}
	if !finished {
		h.mustRun(exitOK, "run")
	}

	out := readOutput(t, h.datasetDir(), false)
	checkExported(t, h.sim, out, atLeastOnce)
	if len(out.leftover) > 0 {
		t.Errorf("in-progress files left after the final clean run: %v", out.leftover)
	}
	readCheckpoints(t, h.stateDir())
	if tmp, _ := filepath.Glob(filepath.Join(h.stateDir(), ".tmp-*")); len(tmp) > 0 {
		t.Errorf("checkpoint temporaries left after a clean run: %v", tmp)
	}
	good, _ := totalRecords(h.sim)
	t.Logf("%d records, %d lines stored (%d duplicates from replays)", good, out.lines, out.lines-good)

	// Caught up: one more run adds nothing.
	r := h.mustRun(exitOK, "run")
	if !strings.Contains(r.stdout, "nothing new") {
		t.Errorf("run after recovery is not caught up:\n%s", r.stdout)
	}
}

// TestSinkFailure makes the file sink fail part way: the dataset directory
// is moved away and a file put in its place. The run gives up with exit 1
// and one line of reason per stream, no checkpoint passes what was stored,
// and once the directory is back the next run completes the export.
func TestSinkFailure(t *testing.T) {
	t.Parallel()
	cfg := simConfig(4, 300)
	cfg.Faults.Latency = 10 * time.Millisecond
	h := newHarness(t, cfg)
	h.env["HWCAUDIT_SWR_PAGE_SIZE"] = "20"
	h.env["HWCAUDIT_BATCH_SIZE"] = "10"
	h.env["HWCAUDIT_FILE_MAX_BYTES"] = "4096"
	h.env["HWCAUDIT_RETRY_MAX_ELAPSED"] = "300ms"

	const n = 60
	p := h.start("run")
	waitFor(t, 30*time.Second, fmt.Sprintf("%d records published", n), func() bool {
		if p.exited() {
			t.Fatalf("the run ended before the sink could be broken:\n%v", p.res)
		}
		return readOutput(t, h.datasetDir(), false).lines >= n
	})
	dir, aside := h.datasetDir(), h.datasetDir()+".aside"
	if err := os.Rename(dir, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := p.wait(t, 30*time.Second)
	if r.code != exitFailed {
		t.Fatalf("want exit %d once the sink fails, got\n%v", exitFailed, r)
	}
	checkJSONLogs(t, r.stderr)
	failed := 0
	for _, ln := range strings.Split(r.stdout, "\n") {
		for _, ins := range testInstances {
			for _, op := range testOps {
				prefix := "swr/" + ins + "/" + op + ": "
				if strings.HasPrefix(ln, prefix) {
					failed++
					if !strings.Contains(ln, "sink file: ") {
						t.Errorf("reason does not name the sink: %q", ln)
					}
				}
			}
		}
	}
	if want := strings.Count(r.stdout, " failed "); failed == 0 || failed != want {
		t.Errorf("want one reason line per failed stream (%d failed), got %d:\n%s", want, failed, r.stdout)
	}
	if !strings.Contains(r.stdout, "stream(s) failed; their checkpoints hold the last delivered position") {
		t.Errorf("summary does not report the failure:\n%s", r.stdout)
	}

	// Repair, then check before the next run: every checkpoint is covered
	// by what the failed run stored (published or durable in progress).
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, dir); err != nil {
		t.Fatal(err)
	}
	marks := readCheckpoints(t, h.stateDir())
	stored := readOutput(t, dir, true)
	checkCovered(t, h.sim, marks, stored)
	if good, _ := totalRecords(h.sim); len(stored.docs) >= good {
		t.Errorf("the failed run stored all %d records; the sink did not fail part way", good)
	}

	h.mustRun(exitOK, "run")
	out := readOutput(t, dir, false)
	checkExported(t, h.sim, out, atLeastOnce)
	if len(out.leftover) > 0 {
		t.Errorf("in-progress files left after the repaired run: %v", out.leftover)
	}
}

// TestGracefulShutdown interrupts a slow run with SIGTERM (or SIGINT): it
// exits 3 within the grace period, publishes what it stored, and the next
// run completes the export with no record lost or repeated.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			cfg := simConfig(5+100*int64(i), 200)
			cfg.Faults.Latency = 50 * time.Millisecond
			h := newHarness(t, cfg)
			h.env["HWCAUDIT_SWR_PAGE_SIZE"] = "20"
			h.env["HWCAUDIT_BATCH_SIZE"] = "10"

			p := h.start("run")
			waitFor(t, 30*time.Second, "a first checkpoint", func() bool {
				if p.exited() {
					t.Fatalf("the run ended before the signal:\n%v", p.res)
				}
				m, _ := filepath.Glob(filepath.Join(h.stateDir(), "swr~*.json"))
				return len(m) > 0
			})
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			r := p.wait(t, 5*time.Second+20*time.Second) // HWCAUDIT_SHUTDOWN_GRACE plus slack
			if r.code != exitInterrupted {
				t.Fatalf("want exit %d after %s, got\n%v", exitInterrupted, sig, r)
			}
			checkJSONLogs(t, r.stderr)
			if !strings.Contains(r.stdout, "interrupted: ") {
				t.Errorf("summary does not say the run was interrupted:\n%s", r.stdout)
			}
			if left := append(hiddenFiles(t, h.datasetDir()), hiddenFiles(t, h.deadLetterDir())...); len(left) > 0 {
				t.Errorf("in-progress files left after a graceful shutdown: %v", left)
			}
			stored := readOutput(t, h.datasetDir(), false)
			checkCovered(t, h.sim, readCheckpoints(t, h.stateDir()), stored)
			if good, _ := totalRecords(h.sim); len(stored.docs) >= good {
				t.Errorf("the interrupted run stored all %d records; the signal came too late to test anything", good)
			}

			h.mustRun(exitOK, "run")
			checkExported(t, h.sim, readOutput(t, h.datasetDir(), false), exactlyOnce)
		})
	}
}

// TestDrift inserts records at the head of every list while the exporter
// pages through it: nothing may be skipped or repeated.
func TestDrift(t *testing.T) {
	t.Parallel()
	cfg := simConfig(6, 300)
	cfg.Faults.DriftPerPage = 2
	h := newHarness(t, cfg)
	h.env["HWCAUDIT_SWR_PAGE_SIZE"] = "20"

	h.mustRun(exitOK, "run")
	h.sim.SetFaults(simulator.Faults{})
	h.mustRun(exitOK, "run") // picks up what arrived during the last pages

	good, _ := totalRecords(h.sim)
	if initial := len(testInstances) * len(testOps) * 300; good <= initial {
		t.Fatalf("no drift happened: %d records", good)
	}
	out := readOutput(t, h.datasetDir(), false)
	checkExported(t, h.sim, out, exactlyOnce)
	if out.lines != good {
		t.Errorf("%d lines stored, want %d", out.lines, good)
	}
}

// deadLetter is one line of the dead-letter directory.
type deadLetter struct {
	Timestamp string  `json:"@timestamp"`
	Stream    string  `json:"stream"`
	Stage     string  `json:"stage"`
	Reason    string  `json:"reason"`
	Original  *string `json:"original"`
}

func TestMalformedRecordsAreDeadLettered(t *testing.T) {
	t.Parallel()
	cfg := simConfig(7, 300)
	cfg.Faults.MalformedRate = 0.05
	h := newHarness(t, cfg)
	h.env["HWCAUDIT_SWR_PAGE_SIZE"] = "50"

	r := h.mustRun(exitOK, "run")
	good, bad := totalRecords(h.sim)
	if bad == 0 {
		t.Fatal("the simulator served no malformed record")
	}
	_, written, dead := summaryTotals(t, r.stdout)
	if written != good || dead != bad {
		t.Errorf("summary: %d written, %d dead-lettered; want %d and %d\n%s", written, dead, good, bad, r.stdout)
	}
	checkExported(t, h.sim, readOutput(t, h.datasetDir(), false), exactlyOnce)

	// Every malformed record is in the dead letters once, as served.
	letters := make(map[string][]deadLetter) // by original
	files, _ := filepath.Glob(filepath.Join(h.deadLetterDir(), "*.ndjson"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, ln := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			var dl deadLetter
			if err := json.Unmarshal([]byte(ln), &dl); err != nil || dl.Original == nil {
				t.Errorf("dead letter %q: not JSON with an original (%v)", ln, err)
				continue
			}
			letters[*dl.Original] = append(letters[*dl.Original], dl)
		}
	}
	if left := hiddenFiles(t, h.deadLetterDir()); len(left) > 0 {
		t.Errorf("in-progress dead-letter files left: %v", left)
	}
	reasons := map[string]string{
		simulator.MalformedIDString: `id "not-a-number" is a JSON string; the API documents an integer`,
		simulator.MalformedNoID:     "has no id",
		simulator.MalformedOpTime:   "is not a timestamp",
	}
	// An id of the wrong JSON type is refused by the reader, before Map.
	stages := map[string]string{simulator.MalformedIDString: "read"}
	n := 0
	kinds := map[string]int{}
	for _, ins := range testInstances {
		for _, op := range testOps {
			for _, rec := range h.sim.SWRRecords(ins, op) {
				if rec.Malformed == "" {
					continue
				}
				n++
				kinds[rec.Malformed]++
				raw := servedJSON(rec)
				got := letters[raw]
				if len(got) != 1 {
					t.Errorf("malformed record (%s) dead-lettered %d times, want once: %s", rec.Malformed, len(got), raw)
					continue
				}
				dl := got[0]
				stage := cmp.Or(stages[rec.Malformed], "map")
				if dl.Stream != "swr/"+ins+"/"+op || dl.Stage != stage || !strings.Contains(dl.Reason, reasons[rec.Malformed]) {
					t.Errorf("dead letter of %s: stream %q stage %q reason %q; want stream %s, stage %s, reason about %q",
						raw, dl.Stream, dl.Stage, dl.Reason, "swr/"+ins+"/"+op, stage, reasons[rec.Malformed])
				}
				delete(letters, raw)
			}
		}
	}
	for raw := range letters {
		t.Errorf("dead letter for a record the simulator did not serve malformed: %s", raw)
	}
	if len(kinds) != len(reasons) {
		t.Errorf("malformed records by kind: %v; want every kind served", kinds)
	}
	t.Logf("%d malformed records by kind: %v", n, kinds)
}

// TestOverlappingRuns starts a second run while a first holds the lock: the
// second leaves at once, exit 0, and the first is not disturbed.
func TestOverlappingRuns(t *testing.T) {
	t.Parallel()
	cfg := simConfig(8, 200)
	cfg.Faults.Latency = 50 * time.Millisecond
	h := newHarness(t, cfg)
	h.env["HWCAUDIT_SWR_PAGE_SIZE"] = "20"

	first := h.start("run")
	pid := first.cmd.Process.Pid
	lock := filepath.Join(h.stateDir(), ".lock")
	waitFor(t, 30*time.Second, "the first run to take the lock", func() bool {
		if first.exited() {
			t.Fatalf("the first run ended early:\n%v", first.res)
		}
		data, _ := os.ReadFile(lock)
		return strings.Contains(string(data), fmt.Sprintf(`"pid":%d,`, pid))
	})

	second := h.start("run").wait(t, 10*time.Second)
	if second.code != exitOK {
		t.Fatalf("overlapping run: want exit 0, got\n%v", second)
	}
	want := fmt.Sprintf("nothing done: another run holds the lock on %s (pid %d", h.stateDir(), pid)
	if !strings.Contains(second.stdout, want) {
		t.Errorf("overlapping run's stdout does not contain %q:\n%s", want, second.stdout)
	}
	if first.exited() {
		t.Fatalf("the first run had ended before the second started; the lock was not contended:\n%v", first.res)
	}

	r := first.wait(t, 60*time.Second)
	if r.code != exitOK {
		t.Fatalf("first run: want exit 0, got\n%v", r)
	}
	out := readOutput(t, h.datasetDir(), false)
	checkExported(t, h.sim, out, exactlyOnce)
	if len(out.leftover) > 0 {
		t.Errorf("in-progress files left: %v", out.leftover)
	}
}

// TestStdoutSink exports to stdout and to files at once. Whatever reads
// stdout gets NDJSON events only, every record once; the human-readable
// report goes to stderr instead.
func TestStdoutSink(t *testing.T) {
	t.Parallel()
	h := newHarness(t, simConfig(9, 200))
	h.env["HWCAUDIT_SINKS"] = "file,stdout"
	good, _ := totalRecords(h.sim)

	r := h.run("run")
	if r.code != exitOK {
		t.Fatalf("want exit 0, got\n%v", r)
	}
	stdout := output{docs: make(map[recKey][]outDoc)}
	stdout.add(t, "stdout", []byte(r.stdout))
	checkExported(t, h.sim, stdout, exactlyOnce)
	checkExported(t, h.sim, readOutput(t, h.datasetDir(), false), exactlyOnce)
	if _, written, _ := summaryTotals(t, r.stderr); written != good {
		t.Errorf("the report on stderr says %d records written, want %d", written, good)
	}
}

// TestFailingStreamsDoNotStopOthers adds an instance the API does not know:
// its streams fail at once with the API's 404, exit 1, while every other
// stream exports everything.
func TestFailingStreamsDoNotStopOthers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, simConfig(10, 200))
	const missing = "00000000-0000-4000-8000-000000000000"
	h.env["HWCAUDIT_SWR_INSTANCES"] = strings.Join(append([]string{missing}, testInstances...), ",")

	r := h.mustRun(exitFailed, "run")
	for _, op := range testOps {
		key := "swr/" + missing + "/" + op
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `: .*HTTP 404`).MatchString(r.stdout) {
			t.Errorf("no reason line with the 404 for %s:\n%s", key, r.stdout)
		}
	}
	if n := strings.Count(r.stdout, " failed "); n != len(testOps) {
		t.Errorf("%d streams failed, want %d:\n%s", n, len(testOps), r.stdout)
	}
	checkExported(t, h.sim, readOutput(t, h.datasetDir(), false), exactlyOnce)
	if m, _ := filepath.Glob(filepath.Join(h.stateDir(), "swr~"+missing+"~*")); len(m) > 0 {
		t.Errorf("failed streams saved checkpoints: %v", m)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	t.Run("token", func(t *testing.T) {
		t.Parallel()
		cfg := simConfig(11, 100)
		cfg.Tokens = []simulator.Token{{Value: simulator.DemoToken}}
		h := newHarness(t, cfg)
		delete(h.env, "HUAWEICLOUD_SDK_AK")
		delete(h.env, "HUAWEICLOUD_SDK_SK")
		h.env["HWCAUDIT_AUTH_TOKEN"] = simulator.DemoToken
		h.mustRun(exitOK, "run")
		checkExported(t, h.sim, readOutput(t, h.datasetDir(), false), exactlyOnce)
	})
	// Refused credentials are permanent: the run ends at once (not after
	// HWCAUDIT_RETRY_MAX_ELAPSED) with exit 1, and never prints a secret.
	for name, env := range map[string]map[string]string{
		"expired token": {"HWCAUDIT_AUTH_TOKEN": "expired-token"},
		"wrong SK":      {"HUAWEICLOUD_SDK_SK": "not-the-secret-key"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := simConfig(12, 100)
			cfg.Tokens = []simulator.Token{{Value: "expired-token", Expired: true}}
			h := newHarness(t, cfg)
			h.env["HWCAUDIT_RETRY_MAX_ELAPSED"] = "5m"
			for k, v := range env {
				h.env[k] = v
			}
			r := h.mustRun(exitFailed, "run")
			if n := strings.Count(r.stdout, "HTTP 401"); n != len(testInstances)*len(testOps) {
				t.Errorf("%d of %d streams report the 401:\n%s", n, len(testInstances)*len(testOps), r.stdout)
			}
			for _, secret := range env {
				if strings.Contains(r.stdout+r.stderr, secret) {
					t.Errorf("output contains the credential %q", secret)
				}
			}
			if out := readOutput(t, h.datasetDir(), false); out.lines > 0 {
				t.Errorf("%d records stored without valid credentials", out.lines)
			}
			st := h.sim.Stats()
			t.Logf("signature failures %v, locked AKs %v, auth failures %d", st.SignatureFailures, st.LockedAKs, st.AuthFailures)
		})
	}
}

// TestMaxRunDuration: against an API too slow to catch up within
// HWCAUDIT_MAX_RUN_DURATION, a run stops by itself, commits what it
// delivered and exits 0 with a warning; the next run continues, and in the
// end every record arrived once. Before, such a run went on until the
// CronJob's deadline killed it.
func TestMaxRunDuration(t *testing.T) {
	t.Parallel()
	cfg := simConfig(41, 200)
	cfg.Faults.Latency = 40 * time.Millisecond
	h := newHarness(t, cfg)
	h.env["HWCAUDIT_SWR_PAGE_SIZE"] = "20"
	h.env["HWCAUDIT_CONCURRENCY"] = "1"
	h.env["HWCAUDIT_MAX_RUN_DURATION"] = "1500ms"
	began := time.Now()
	r := h.mustRun(exitOK, "run")
	if d := time.Since(began); d > 1500*time.Millisecond+5*time.Second+10*time.Second {
		t.Errorf("the run took %s with HWCAUDIT_MAX_RUN_DURATION=1500ms", d)
	}
	if !strings.Contains(r.stdout, "stopped after HWCAUDIT_MAX_RUN_DURATION (1.5s); the next run continues") ||
		!strings.Contains(r.stderr, "HWCAUDIT_MAX_RUN_DURATION reached") {
		t.Fatalf("no word that the run stopped on its time limit:\n%v", r)
	}
	stored := readOutput(t, h.datasetDir(), false)
	checkCovered(t, h.sim, readCheckpoints(t, h.stateDir()), stored)
	if good, _ := totalRecords(h.sim); len(stored.docs) == 0 || len(stored.docs) >= good {
		t.Fatalf("the limited run stored %d of %d records; the test needs a part", len(stored.docs), good)
	}
	delete(h.env, "HWCAUDIT_MAX_RUN_DURATION")
	h.env["HWCAUDIT_CONCURRENCY"] = "4"
	h.mustRun(exitOK, "run")
	checkExported(t, h.sim, readOutput(t, h.datasetDir(), false), exactlyOnce)
}
