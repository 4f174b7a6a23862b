package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestShardsShareOneStore runs two shards side by side on one checkpoint
// store, as the chart's Indexed Job does: each takes its own run lock, so
// neither stops the other, and together they export everything once.
func TestShardsShareOneStore(t *testing.T) {
	t.Parallel()
	cfg := simConfig(61, 150)
	cfg.Faults.Latency = 100 * time.Millisecond
	h := newHarness(t, cfg)
	h.env["HWCAUDIT_SWR_PAGE_SIZE"] = "20"

	h.env["HWCAUDIT_SHARD"] = "0/2"
	first := h.start("run")
	pid := first.cmd.Process.Pid
	lock := filepath.Join(h.stateDir(), ".lock-shard-0-of-2")
	waitFor(t, 30*time.Second, "shard 0 to take its lock", func() bool {
		if first.exited() {
			t.Fatalf("shard 0 ended early:\n%v", first.res)
		}
		data, _ := os.ReadFile(lock)
		return strings.Contains(string(data), fmt.Sprintf(`"pid":%d,`, pid))
	})

	// Shard 0 was running a moment ago (waitFor checked), so with one
	// shared lock shard 1 would exit at once with "nothing done".
	h.env["HWCAUDIT_SHARD"] = "1/2"
	second := h.start("run").wait(t, 60*time.Second)
	if second.code != exitOK || strings.Contains(second.stdout, "nothing done") {
		t.Fatalf("shard 1 beside shard 0: want a full export, got\n%v", second)
	}
	if r := first.wait(t, 60*time.Second); r.code != exitOK {
		t.Fatalf("shard 0: want exit 0, got\n%v", r)
	}
	checkExported(t, h.sim, readOutput(t, h.datasetDir(), false), exactlyOnce)
}
