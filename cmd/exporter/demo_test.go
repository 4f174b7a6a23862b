package main

import (
	"bytes"
	"os"
	"path/filepath"
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

// TestDemo runs `exporter demo` in an empty directory with nothing
// configured: the first run exports the whole demo dataset, the second
// finds nothing new, and --fresh starts over.
func TestDemo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"HWCAUDIT_LOG_FORMAT": "json"}
	// SWR: 2 instances × 3 operations × 3000; TaurusDB files; DBSS logs.
	const swrTotal = 2 * 3 * 3000
	const artifactTotal = 2 * simulator.DemoArtifactRecords
	const ctsTotal = simulator.DemoCTSTraces + simulator.DemoCTSDataTraces
	const total = swrTotal + artifactTotal + simulator.DemoTaurusDBFiles + simulator.DemoDBSSRecords + ctsTotal
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
	for ds, want := range map[string]int{artifact.Dataset: artifactTotal, taurusdb.Dataset: simulator.DemoTaurusDBFiles, dbss.Dataset: simulator.DemoDBSSRecords, cts.Dataset: ctsTotal} {
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
	if !strings.Contains(r.stdout, "demo: --fresh: forgot 12 checkpoints, removed 5 output files") {
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
