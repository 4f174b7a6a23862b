package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwcaudit/hwcaudit/sources/cts"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
)

// TestCTSStartOlderThanRetention runs the exporter with a start time nine
// days ago: the CTS stream starts at the oldest trace CTS keeps, the run
// logs one warning naming the stream and the gap, and every trace is
// exported; the next run, from its checkpoint, does not warn.
func TestCTSStartOlderThanRetention(t *testing.T) {
	t.Parallel()
	h := newOtherSourcesHarness(t, 31)
	for _, k := range []string{"HWCAUDIT_ARTIFACT_REPOS", "HWCAUDIT_GAUSSDB_INSTANCES", "HWCAUDIT_DBSS_INSTANCES"} {
		delete(h.env, k)
	}
	h.env["HWCAUDIT_START_FROM"] = "9d"
	stream := "cts/" + simulator.DemoProjectID + "/system"
	warnings := func(stderr string) (n int) {
		for _, ln := range strings.Split(stderr, "\n") {
			var l struct {
				Level, Msg, Stream, Gap string
			}
			if json.Unmarshal([]byte(ln), &l) == nil && l.Level == "WARN" && strings.Contains(l.Msg, "7 days") {
				if l.Stream != stream || !strings.HasPrefix(l.Gap, "48h") {
					t.Errorf("retention warning %s: want stream %s and a gap of about 48h", ln, stream)
				}
				n++
			}
		}
		return n
	}
	r := h.mustRun(exitOK, "run")
	if n := warnings(r.stderr); n != 1 {
		t.Errorf("%d retention warnings, want 1:\n%s", n, r.stderr)
	}
	if n, want := countLines(t, filepath.Join(h.dir, "out", cts.Dataset)), len(h.sim.CTSTraces("system")); n != want {
		t.Errorf("exported %d traces, want %d", n, want)
	}
	r = h.mustRun(exitOK, "run")
	if n := warnings(r.stderr); n != 0 {
		t.Errorf("the run from the checkpoint warned %d times", n)
	}
}
