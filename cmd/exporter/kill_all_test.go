package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/checkpoint"
	"github.com/hwcaudit/hwcaudit/sources/artifact"
	"github.com/hwcaudit/hwcaudit/sources/cts"
	"github.com/hwcaudit/hwcaudit/sources/dbss"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/swr"
	"github.com/hwcaudit/hwcaudit/sources/taurusdb"
)

// TestKillAndResumeEverySource is TestKillAndResume over all 15 demo
// streams at once: SWR, CodeArts Artifact, TaurusDB files and the SQL
// statements inside them, DBSS operation, SQL and alarm logs, CTS
// management and data traces. The real binary is killed with SIGKILL at
// seeded random moments of a run (-kill-seed repeats them), several
// times, then a last run finishes. After every kill each checkpoint file
// is a whole checkpoint and SWR's marks are covered by what was stored; at
// the end every dataset directory holds exactly the events an
// uninterrupted run stores (by event.id; replays may repeat lines), as
// many as the simulator config holds, and nothing was dead-lettered.
func TestKillAndResumeEverySource(t *testing.T) {
	t.Parallel()
	cfg := killAllConfig(time.Now())
	cfg.Faults.Latency = 25 * time.Millisecond
	h := newHarness(t, cfg)
	for _, kv := range demoSources(cfg, h.env["HWCAUDIT_SWR_ENDPOINT"]) {
		h.env[kv[0]] = kv[1]
	}
	// Every stream at once, small pages, batches and files, so that a
	// kill lands between the commits of each stream, and inside a
	// TaurusDB file's statements.
	for k, v := range map[string]string{
		"HWCAUDIT_PARALLEL_STREAMS":         strconv.Itoa(demoStreams),
		"HWCAUDIT_SWR_PAGE_SIZE":            "20",
		"HWCAUDIT_ARTIFACT_PAGE_SIZE":       "20",
		"HWCAUDIT_GAUSSDB_PAGE_SIZE":        "10",
		"HWCAUDIT_GAUSSDB_SQL_PAGE_RECORDS": "20",
		"HWCAUDIT_DBSS_PAGE_SIZE":           "25",
		"HWCAUDIT_CTS_PAGE_SIZE":            "25",
		"HWCAUDIT_BATCH_SIZE":               "7",
		"HWCAUDIT_FILE_MAX_BYTES":           "16384",
	} {
		h.env[k] = v
	}
	want := killAllExpected(cfg)

	// The reference: one uninterrupted run into directories of its own.
	// Its duration scales the kill moments, so that they fall inside a
	// run on a fast machine and a loaded one alike.
	refDir := t.TempDir()
	refEnv := maps.Clone(h.env)
	refEnv["HWCAUDIT_FILE_DIR"] = filepath.Join(refDir, "out")
	refEnv["HWCAUDIT_CHECKPOINT_URL"] = "file://" + filepath.Join(refDir, "state")
	refEnv["HWCAUDIT_DEADLETTER"] = "file://" + filepath.Join(refDir, "deadletter")
	exporterBin(t) // built before the clock starts
	began := time.Now()
	r := startExporter(t, refDir, refEnv, "run").wait(t, 60*time.Second)
	runTime := time.Since(began)
	if r.code != exitOK {
		t.Fatalf("reference run: %v", r)
	}
	checkJSONLogs(t, r.stderr)
	if streams, written, dead := summaryTotals(t, r.stdout); streams != demoStreams || dead != 0 {
		t.Fatalf("reference run: %d streams, %d written, %d dead-lettered; want %d streams, none dead-lettered\n%s",
			streams, written, dead, demoStreams, r.stdout)
	}
	ref := make(map[string]map[string]int)
	for ds, n := range want {
		ref[ds] = eventIDs(t, filepath.Join(refDir, "out", ds), false)
		if len(ref[ds]) != n {
			t.Errorf("reference run stored %d distinct %s events, the simulator config holds %d", len(ref[ds]), ds, n)
		}
	}
	checkNoDeadLetters(t, filepath.Join(refDir, "deadletter"))
	t.Logf("reference run: %s, %d events", runTime.Round(time.Millisecond), summed(want))

	rng := rand.New(rand.NewPCG(*killSeed, 1))
	t.Logf("kill seed %d (-kill-seed to repeat)", *killSeed)
	const maxKills = 5
	kills := 0
	finished := false
	for range maxKills {
		// Within the first half of an uninterrupted run: resumed runs
		// have less left to do, and later kills should land in them too.
		after := time.Duration((0.05 + 0.4*rng.Float64()) * float64(runTime))
		p := h.start("run")
		time.Sleep(after)
		p.cmd.Process.Kill()
		r := p.wait(t, 60*time.Second)
		if !r.signaled {
			if r.code != exitOK {
				t.Fatalf("run between kills failed:\n%v", r)
			}
			checkJSONLogs(t, r.stderr)
			finished = true
			break
		}
		kills++
		marks, saved := checkCheckpointFiles(t, h.stateDir())
		// The SWR cursors name their high-water audit id: every record up
		// to it must be stored already (published or in an in-progress
		// file that the next start publishes).
		checkCovered(t, h.sim, marks, readOutput(t, h.datasetDir(), true))
		stored := 0
		for ds := range want {
			stored += len(eventIDs(t, filepath.Join(h.dir, "out", ds), true))
		}
		t.Logf("kill %d after %s: %d streams checkpointed, %d of %d events stored", kills, after.Round(time.Millisecond), saved, stored, summed(want))
	}
	if kills == 0 {
		t.Fatalf("every run finished before its kill: the test exercised no crash")
	}
	if !finished {
		h.mustRun(exitOK, "run")
	}

	for _, ds := range slices.Sorted(maps.Keys(want)) {
		dir := filepath.Join(h.dir, "out", ds)
		got := eventIDs(t, dir, false)
		lines := 0
		for _, n := range got {
			lines += n
		}
		var missing, extra []string
		for id := range ref[ds] {
			if got[id] == 0 {
				missing = append(missing, id)
			}
		}
		for id := range got {
			if ref[ds][id] == 0 {
				extra = append(extra, id)
			}
		}
		if len(got) != want[ds] || len(missing) > 0 || len(extra) > 0 {
			slices.Sort(missing)
			slices.Sort(extra)
			t.Errorf("%s: %d distinct events (%d lines), want %d; %d missing, e.g. %v; %d not in the uninterrupted run, e.g. %v",
				ds, len(got), lines, want[ds], len(missing), missing[:min(5, len(missing))], len(extra), extra[:min(5, len(extra))])
		}
		if left := hiddenFiles(t, dir); len(left) > 0 {
			t.Errorf("%s: in-progress files left after the final clean run: %v", ds, left)
		}
		t.Logf("%-26s %5d events, %5d lines", ds, len(got), lines)
	}
	checkNoDeadLetters(t, h.deadLetterDir())
	checkCheckpointFiles(t, h.stateDir())
	checkExported(t, h.sim, readOutput(t, h.datasetDir(), false), atLeastOnce)
	t.Logf("killed %d runs", kills)

	// Caught up: one more run adds nothing.
	r = h.mustRun(exitOK, "run")
	if !strings.Contains(r.stdout, "nothing new") {
		t.Errorf("run after recovery is not caught up:\n%s", r.stdout)
	}
}

// killAllConfig is the demo dataset shrunk to a few thousand events, its
// times spread as the demo's are (over 23 hours ending 30 minutes before
// now). The SWR instances are the test's, so that the SWR checks of the
// other end-to-end tests apply.
func killAllConfig(now time.Time) simulator.Config {
	cfg := simulator.DemoConfig(now)
	const span = 23 * time.Hour
	cfg.SWR.Instances = testInstances
	cfg.SWR.RecordsPerOperation = 100
	cfg.SWR.Interval = span / time.Duration(len(testOps)*cfg.SWR.RecordsPerOperation)
	cfg.Artifact.RecordsPerRepo = 120
	cfg.Artifact.Interval = span / time.Duration(cfg.Artifact.RecordsPerRepo)
	cfg.TaurusDB.Files = 30
	cfg.TaurusDB.Interval = span / time.Duration(cfg.TaurusDB.Files)
	cfg.TaurusDB.SQL.Records = 40
	cfg.DBSS.Records = 300
	cfg.DBSS.Interval = span / time.Duration(cfg.DBSS.Records)
	cfg.DBSS.SQLRecords = 500
	cfg.DBSS.SQLInterval = span / time.Duration(cfg.DBSS.SQLRecords)
	cfg.DBSS.Alarms = 30
	cfg.DBSS.AlarmInterval = span / time.Duration(cfg.DBSS.Alarms)
	cfg.CTS.Traces = 400
	cfg.CTS.DataTraces = 150
	cfg.CTS.Interval = span / time.Duration(cfg.CTS.Traces)
	return cfg
}

// killAllExpected is the number of events each dataset holds for cfg.
func killAllExpected(cfg simulator.Config) map[string]int {
	taurusFiles := len(cfg.TaurusDB.Instances) * cfg.TaurusDB.Files
	return map[string]int{
		swr.Dataset:         len(cfg.SWR.Instances) * len(testOps) * cfg.SWR.RecordsPerOperation,
		artifact.Dataset:    len(cfg.Artifact.Repos) * cfg.Artifact.RecordsPerRepo,
		taurusdb.Dataset:    taurusFiles,
		taurusdb.SQLDataset: taurusFiles * cfg.TaurusDB.SQL.Records,
		dbss.Dataset:        len(cfg.DBSS.Instances) * cfg.DBSS.Records,
		dbss.DatasetSQL:     len(cfg.DBSS.Instances) * cfg.DBSS.SQLRecords,
		dbss.DatasetAlarm:   len(cfg.DBSS.Instances) * cfg.DBSS.Alarms,
		cts.Dataset:         cfg.CTS.Traces + cfg.CTS.DataTraces,
	}
}

func summed(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// eventIDs counts the lines of each event.id in a dataset directory's
// published files (with inProgress, the complete lines of in-progress
// files too). Every line must be a JSON document with an event.id and the
// directory's event.dataset, and the copies a replay left of one event
// must agree on everything but event.ingested.
func eventIDs(t *testing.T, dir string, inProgress bool) map[string]int {
	t.Helper()
	ids := make(map[string]int)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return ids
	}
	if err != nil {
		t.Fatal(err)
	}
	dataset := filepath.Base(dir)
	first := make(map[string][]byte) // each event's first copy
	for _, e := range entries {
		name := e.Name()
		hidden := strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".ndjson.inprogress")
		if !strings.HasSuffix(name, ".ndjson") && !(hidden && inProgress) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if hidden {
			data = data[:bytes.LastIndexByte(data, '\n')+1]
		}
		for n, ln := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			if len(ln) == 0 && len(data) == 0 {
				break
			}
			var d struct {
				Event struct {
					ID      string `json:"id"`
					Dataset string `json:"dataset"`
				} `json:"event"`
			}
			if err := json.Unmarshal(ln, &d); err != nil || d.Event.ID == "" || d.Event.Dataset != dataset {
				t.Errorf("%s/%s line %d: not an event of %s with an event.id (%v): %.200q", dataset, name, n+1, dataset, err, ln)
				continue
			}
			ids[d.Event.ID]++
			if ids[d.Event.ID] == 1 {
				first[d.Event.ID] = ln
				continue
			}
			if a, b := withoutIngested(t, first[d.Event.ID]), withoutIngested(t, ln); a != b {
				t.Errorf("%s: copies of event %s differ beyond event.ingested:\n%s\n%s", dataset, d.Event.ID, a, b)
			}
		}
	}
	return ids
}

// checkNoDeadLetters fails the test if the dead-letter directory holds a
// record.
func checkNoDeadLetters(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if info, err := d.Info(); err == nil && !d.IsDir() && info.Size() > 0 {
			data, _ := os.ReadFile(path)
			t.Errorf("dead letter file %s: %.500s", path, data)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
}

// checkCheckpointFiles asserts that every checkpoint file in dir is a
// whole checkpoint (valid JSON naming its stream, with a JSON cursor) and
// that the store lists as many, and returns the high-water audit id of
// each SWR stream and the number of checkpoints. A kill must never leave a
// torn checkpoint behind.
func checkCheckpointFiles(t *testing.T, dir string) (swrMarks map[string]int64, files int) {
	t.Helper()
	swrMarks = make(map[string]int64)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return swrMarks, 0 // killed before it opened the store
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue // the lock, and temporaries of a save cut short
		}
		files++
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var cp checkpoint.Checkpoint
		if err := json.Unmarshal(data, &cp); err != nil || cp.Stream == "" || !json.Valid(cp.Cursor) {
			t.Errorf("checkpoint %s is not a whole checkpoint (%v):\n%s", name, err, data)
			continue
		}
		if !strings.HasPrefix(cp.Stream, "swr/") {
			continue
		}
		var cur struct {
			ID *int64 `json:"id"`
		}
		if err := json.Unmarshal(cp.Cursor, &cur); err != nil || cur.ID == nil {
			t.Errorf("checkpoint %s: SWR cursor %s has no id (%v)", name, cp.Cursor, err)
			continue
		}
		swrMarks[cp.Stream] = *cur.ID
	}
	store, err := checkpoint.NewFileStore(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	cps, err := store.List(t.Context())
	if err != nil {
		t.Errorf("checkpoint store List: %v", err)
	}
	if len(cps) != files {
		t.Errorf("checkpoint store lists %d checkpoints, the directory holds %d files", len(cps), files)
	}
	if files > demoStreams {
		t.Errorf("%d checkpoint files for %d streams", files, demoStreams)
	}
	return swrMarks, files
}
