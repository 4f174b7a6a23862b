package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkHostileAPI runs the exporter binary against an API that lies or
// floods, and reports the process's peak resident set and how long the
// run took to end by itself. Every case must end without a kill and stay
// under the chart's default memory limit (charts/hwcaudit/values.yaml,
// resources.limits.memory); docs/benchmarks.md records the figures.
//
//	go test ./cmd/exporter -run '^$' -bench HostileAPI -benchtime 1x
//
// Cases:
//
//	oversized-pages   4 SWR streams whose every page is ~15 MiB (100
//	                  records of 150 KB, just under the 16 MiB body cap)
//	absurd-total      DBSS claims total_num 10^12; SWR claims a total of
//	                  10^12 over 300 records
//	same-second       DBSS: 200,000 records in one second
//	endless-growth    SWR grows by 60 records per request at the head,
//	                  and DBSS's total grows with every request
//
// Each reports peak-RSS-MiB, wall-s and the exit code (0: done; 1: a
// stream failed with a clear error, as a lying API must make it).
func BenchmarkHostileAPI(b *testing.B) {
	for _, c := range hostileCases {
		b.Run(c.name, func(b *testing.B) {
			var res hostileResult
			for range b.N {
				res = runHostile(b, c)
			}
			b.ReportMetric(float64(res.peak)/(1<<20), "peak-RSS-MiB")
			b.ReportMetric(res.wall.Seconds(), "wall-s")
			b.ReportMetric(float64(res.code), "exit-code")
			b.ReportMetric(float64(res.requests), "requests")
			b.ReportMetric(0, "ns/op")
			if testing.Verbose() {
				b.Logf("%s\n%s", res.stdout, tail(res.stderr, 1500))
			}
		})
	}
}

type hostileCase struct {
	name string
	// swr and dbss serve the lists; nil leaves the source out.
	swr  func(req int, instance string, offset, limit int) (recs []string, total int64)
	dbss func(req int, from, to time.Time, page, size int) (recs []string, total int64)
	// swrInstances streams of SWR.
	swrInstances int
	env          map[string]string
}

type hostileResult struct {
	peak     int64
	wall     time.Duration
	code     int
	requests int64
	stdout   string
	stderr   string
}

// benchBase is where the hostile lists' records are, an hour ago.
var benchBase = time.Now().Add(-time.Hour).UTC().Truncate(time.Second)

func swrRecord(id int64, pad int) string {
	return fmt.Sprintf(`{"id":%d,"op_time":%q,"operation":"pull","resource":"library/app:1","resource_type":"artifact","username":"u","x":"%s"}`,
		id, benchBase.Add(time.Duration(id)*time.Millisecond).Format(time.RFC3339Nano), strings.Repeat("a", pad))
}

func dbssRecord(i int, t time.Time) string {
	return fmt.Sprintf(`{"id":"r%08d","user":"u","time":%q,"function":"f","action":"a","name":"n","description":"d","result":"success"}`,
		i, t.Format("2006-01-02 15:04:05"))
}

var hostileCases = []hostileCase{
	{
		name:         "oversized-pages",
		swrInstances: 4,
		swr: func(_ int, _ string, offset, limit int) ([]string, int64) {
			const n = 600
			var recs []string
			for i := offset; i < offset+limit && i < n; i++ {
				recs = append(recs, swrRecord(int64(n-i), 150_000))
			}
			return recs, n
		},
	},
	{
		name:         "absurd-total",
		swrInstances: 1,
		swr: func(_ int, _ string, offset, limit int) ([]string, int64) {
			const n = 300
			var recs []string
			for i := offset; i < offset+limit && i < n; i++ {
				recs = append(recs, swrRecord(int64(n-i), 100))
			}
			return recs, 1e12
		},
		dbss: func(_ int, from, to time.Time, page, size int) ([]string, int64) {
			recs, _ := dbssPage(300, from, to, page, size)
			return recs, 1e12
		},
	},
	{
		name: "same-second",
		dbss: func(_ int, from, to time.Time, page, size int) ([]string, int64) {
			const n = 200_000
			if benchBase.Before(from) || benchBase.After(to) {
				return nil, 0
			}
			var recs []string
			for i := (page - 1) * size; i < page*size && i < n; i++ {
				recs = append(recs, dbssRecord(i, benchBase))
			}
			return recs, n
		},
	},
	{
		name:         "endless-growth",
		swrInstances: 1,
		swr: func(req int, _ string, offset, limit int) ([]string, int64) {
			n := 2000 + 60*req
			var recs []string
			for i := offset; i < offset+limit && i < n; i++ {
				recs = append(recs, swrRecord(int64(n-i), 100))
			}
			return recs, int64(n)
		},
		dbss: func(req int, from, to time.Time, page, size int) ([]string, int64) {
			recs, total := dbssPage(2000, from, to, page, size)
			return recs, total + int64(req)
		},
	},
}

// dbssPage is page of size of the n records one second apart from
// benchBase that lie in [from, to], newest first, with their count.
func dbssPage(n int, from, to time.Time, page, size int) ([]string, int64) {
	var in []string
	for i := n - 1; i >= 0; i-- {
		t := benchBase.Add(time.Duration(i) * time.Second)
		if !t.Before(from) && !t.After(to) {
			in = append(in, dbssRecord(i, t))
		}
	}
	lo, hi := min((page-1)*size, len(in)), min(page*size, len(in))
	return in[lo:hi], int64(len(in))
}

// hostileServer serves the case's lists without checking signatures.
func hostileServer(c hostileCase) (*httptest.Server, *int64) {
	var mu sync.Mutex
	var requests int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		req := int(requests)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.Contains(r.URL.Path, "/audit-logs") && c.swr != nil:
			offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
			limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			recs, total := c.swr(req, strings.Split(r.URL.Path, "/")[4], offset, limit)
			fmt.Fprintf(w, `{"audit_logs":[%s],"total":%d}`, strings.Join(recs, ","), total)
		case strings.Contains(r.URL.Path, "operation-log") && c.dbss != nil:
			var body struct {
				Time struct {
					StartTime string `json:"start_time"`
					EndTime   string `json:"end_time"`
				} `json:"time"`
				Page string `json:"page"`
				Size string `json:"size"`
			}
			data, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(data, &body)
			from, _ := time.Parse("2006-01-02 15:04:05", body.Time.StartTime)
			to, _ := time.Parse("2006-01-02 15:04:05", body.Time.EndTime)
			page, _ := strconv.Atoi(body.Page)
			size, _ := strconv.Atoi(body.Size)
			recs, total := c.dbss(req, from, to, page, size)
			fmt.Fprintf(w, `{"total_num":%d,"operate_log":[%s]}`, total, strings.Join(recs, ","))
		default:
			http.NotFound(w, r)
		}
	})
	return httptest.NewServer(h), &requests
}

func runHostile(b *testing.B, c hostileCase) hostileResult {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	srv, requests := hostileServer(c)
	defer srv.Close()
	dir := b.TempDir()
	env := map[string]string{
		"HUAWEICLOUD_SDK_AK":         "HOSTILEAKEXAMPLE0000",
		"HUAWEICLOUD_SDK_SK":         "hostile-sk-example-0000000000000000000000",
		"HUAWEICLOUD_SDK_PROJECT_ID": "0a6c3d5e9f1b4c2d8e7f6a5b4c3d2e1f",
		"HWCAUDIT_CREDENTIALS":       "env",
		"HWCAUDIT_REGION":            "cn-north-4",
		"HWCAUDIT_SINKS":             "file",
		"HWCAUDIT_START_FROM":        benchBase.Add(-time.Hour).Format(time.RFC3339),
		"HWCAUDIT_FILE_DIR":          filepath.Join(dir, "out"),
		"HWCAUDIT_CHECKPOINT_URL":    "file://" + filepath.Join(dir, "state"),
		"HWCAUDIT_DEADLETTER":        "file://" + filepath.Join(dir, "deadletter"),
		"HWCAUDIT_MAX_RPS":           "1000000",
		"HWCAUDIT_SETTLE_DELAY":      "1m",
		"HWCAUDIT_RETRY_INITIAL":     "5ms",
		"HWCAUDIT_RETRY_MAX":         "50ms",
		"HWCAUDIT_RETRY_MAX_ELAPSED": "5s",
		"HWCAUDIT_MAX_RUN_DURATION":  "2m",
		"HWCAUDIT_LOG_FORMAT":        "json",
		"HWCAUDIT_LOG_LEVEL":         "warn",
	}
	if c.swr != nil {
		var ins []string
		for i := range c.swrInstances {
			ins = append(ins, fmt.Sprintf("5d1f0c2e-7a43-4b8e-9f10-2c3d4e5f6a%02d", i))
		}
		env["HWCAUDIT_SWR_INSTANCES"] = strings.Join(ins, ",")
		env["HWCAUDIT_SWR_OPERATIONS"] = "pull"
		env["HWCAUDIT_SWR_ENDPOINT"] = srv.URL
	}
	if c.dbss != nil {
		env["HWCAUDIT_DBSS_INSTANCES"] = "6c1e6f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a"
		env["HWCAUDIT_DBSS_ENDPOINT"] = srv.URL
	}
	for k, v := range c.env {
		env[k] = v
	}
	for _, k := range []string{"GOMEMLIMIT", "GOGC", "HWCAUDIT_MEMORY_BUDGET", "HWCAUDIT_CONCURRENCY"} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	cmd := exec.Command(exporterBin(b), "run")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	hwm := watchHWM(cmd.Process.Pid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		b.Fatalf("%s: the run did not end by itself within 5 minutes\n%s", c.name, tail(stderr.String(), 3000))
	}
	res := hostileResult{wall: time.Since(began), peak: hwm(), code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	res.requests = *requests
	if res.code != exitOK && res.code != exitFailed {
		b.Fatalf("%s: exit %d, want 0 or 1 (a clear stream failure)\n%s%s", c.name, res.code, res.stdout, tail(res.stderr, 3000))
	}
	return res
}
