package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/summary")

// demoSummary is a run shaped like the demo's: long SWR and CodeArts
// Artifact keys, long JSON cursors, a failed stream.
func demoSummary() *pipeline.Summary {
	res := func(key string, status pipeline.Status, n int64, cursor string) pipeline.StreamResult {
		return pipeline.StreamResult{Stream: key, Status: status, Fetched: n, Written: map[string]int64{"file": n}, Delivered: n, Cursor: []byte(cursor)}
	}
	failed := res("dbss/9d1e6f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a", pipeline.StatusFailed, 0, "")
	failed.Err = errors.New("fetch: DBSS.0001 (HTTP 403): the instance is not authorized to list audit logs; check the IAM policy of the credentials")
	return &pipeline.Summary{Elapsed: 1234 * time.Millisecond, Streams: []pipeline.StreamResult{
		res("swr/7f3c2a10-5b8e-4d21-9c4f-0e6a1b2c3d4e/pull", pipeline.StatusDone, 3000, `{"id":9269,"op_time":"2026-12-06T20:28:58.897Z","skip":1,"from_end":2999}`),
		res("swr/7f3c2a10-5b8e-4d21-9c4f-0e6a1b2c3d4e/create", pipeline.StatusDone, 3000, `{"id":9271,"op_time":"2026-12-06T20:29:23.678Z","skip":1,"from_end":2999}`),
		res("artifact/repository/cn-north-4_5a775fdcb14f4431b6c0015618140bc3_npm_1_109", pipeline.StatusDone, 400, `{"id":"2484620","time":"2026-12-06T20:22:59Z","skip":1,"from_end":399}`),
		res("taurusdb/5e2b7c9a1d3f4e6b8a0c2d4f6e8a0b1cin07", pipeline.StatusInterrupted, 138, `{"through":"2026-12-06T20:54:53Z","lookback_s":86400}`),
		failed,
	}}
}

// The run report fits the terminal: at 80, 100 (not a terminal) and 200
// columns, against golden files (go test -run TestSummaryWidths -update
// rewrites them).
func TestSummaryWidths(t *testing.T) {
	for _, width := range []int{80, 100, 200} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			var buf bytes.Buffer
			printSummary(&buf, demoSummary(), width)
			for i, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
				if strings.HasPrefix(line, "dbss/9d1e6f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a: fetch:") {
					continue // a failed stream's reason is printed whole
				}
				if n := utf8.RuneCountInString(line); n > width {
					t.Errorf("line %d has %d columns, more than %d: %s", i+1, n, width, line)
				}
			}
			golden := filepath.Join("testdata", "summary", fmt.Sprintf("width-%d.txt", width))
			if *updateGolden {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if buf.String() != string(want) {
				t.Errorf("report at %d columns differs from %s:\n%s", width, golden, buf.String())
			}
			// The totals row is what scripts and tests read.
			if !summaryRE.MatchString(buf.String()) {
				t.Errorf("no totals row matching %s", summaryRE)
			}
		})
	}
}

func TestShortenKey(t *testing.T) {
	for _, c := range []struct {
		key  string
		n    int
		want string
	}{
		{"swr/abc/pull", 20, "swr/abc/pull"},
		{"swr/7f3c2a10-5b8e-4d21-9c4f-0e6a1b2c3d4e/create", 24, "swr/7f3c2a…2c3d4e/create"},
		{"dbss/9d1e6f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a", 20, "dbss/9d1e6f2…d0e1f2a"},
		{"nosource", 5, "no…ce"},
	} {
		got := shortenKey(c.key, c.n)
		if got != c.want || utf8.RuneCountInString(got) > c.n {
			t.Errorf("shortenKey(%q, %d) = %q, want %q", c.key, c.n, got, c.want)
		}
	}
}

// On a terminal the run summary log line leaves the counts to the table:
// no figure is printed twice. Elsewhere it holds every count.
func TestRunSummaryLogTerse(t *testing.T) {
	sum := demoSummary()
	var terse, full bytes.Buffer
	logSummary(slog.New(slog.NewTextHandler(&terse, nil)), sum, true)
	logSummary(slog.New(slog.NewTextHandler(&full, nil)), sum, false)
	line := func(s string) string {
		for _, l := range strings.Split(s, "\n") {
			if strings.Contains(l, "run summary") {
				return l
			}
		}
		t.Fatalf("no run summary line in:\n%s", s)
		return ""
	}
	for _, key := range []string{"written=", "fetched=", "dead_lettered=", "duplicates_skipped=", "streams=", "records_per_second="} {
		if strings.Contains(line(terse.String()), key) {
			t.Errorf("terse line repeats %s: %s", key, line(terse.String()))
		}
		if !strings.Contains(line(full.String()), key) {
			t.Errorf("full line lacks %s: %s", key, line(full.String()))
		}
	}
}
