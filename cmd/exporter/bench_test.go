package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/cts"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/swr"
	"github.com/hwcaudit/hwcaudit/sources/taurusdb"
)

// The whole-exporter benchmarks run the real binary against the simulator,
// which runs in the benchmark's own process so that the exporter's CPU time
// and peak RSS (read from the child's rusage) are the exporter's alone. The
// simulator serves one SWR instance, and the exporter reads its "pull"
// operation: one stream, SWR-shaped records, written to the NDJSON file
// sink with file checkpoints, as a CronJob run or a backfill would. The
// cts case reads CTS management traces instead, and the taurusdb case the
// SQL statements of one TaurusDB audit log file of about 100 MB
// (HWCAUDIT_GAUSSDB_SQL=true).
//
//	go test ./cmd/exporter -run '^$' -bench Exporter -benchtime 1x
//
// HWCAUDIT_BENCH_RECORDS overrides the records of each case;
// HWCAUDIT_PPROF_DIR is passed to the exporter, which then writes its CPU
// and allocation profiles there. Each case
// reports:
//
//	records/s        records exported per second of wall time
//	cpu-s            the exporter's user+system CPU time
//	cpu-µs/record    the same per record
//	peak-RSS-MiB     the exporter's peak resident set (VmHWM)
//	records/request  records exported per API request (the quota's cost)
//	ceiling-ratio    records/s over concurrency × 100 / latency (cases
//	                 with latency only)
//	file-MB          the size of the file downloaded (taurusdb case only)
//
// docs/benchmarks.md records the figures and the targets.
func BenchmarkExporter(b *testing.B) {
	cases := []struct {
		name        string
		records     int
		latency     time.Duration
		concurrency int
		backfill    bool // `exporter backfill` from before the first record, instead of `run`
		drift       int  // records the simulator inserts at the head after every page it serves
		cts         bool // CTS traces instead of SWR audit logs
		taurusSQL   bool // the SQL statements of one TaurusDB audit log file instead
	}{
		{"run/latency=0/concurrency=1", 200_000, 0, 1, false, 0, false, false},
		{"run/latency=0/concurrency=4", 200_000, 0, 4, false, 0, false, false},
		{"run/latency=20ms/concurrency=8", 200_000, 20 * time.Millisecond, 8, false, 0, false, false},
		{"run/latency=20ms/concurrency=8/drift=1", 200_000, 20 * time.Millisecond, 8, false, 1, false, false},
		{"backfill/records=1M/latency=0/concurrency=4", 1_000_000, 0, 4, true, 0, false, false},
		{"cts/run/traces=50k/latency=0", 50_000, 0, 4, false, 0, true, false},
		// 870,000 statements of about 115 bytes: a 100 MB file, the
		// largest TaurusDB writes.
		{"taurusdb/sql/file=100MB/latency=0", 870_000, 0, 4, false, 0, false, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			n := c.records
			if v, err := strconv.Atoi(os.Getenv("HWCAUDIT_BENCH_RECORDS")); err == nil && v > 0 {
				n = v
			}
			var res benchResult
			for range b.N {
				switch {
				case c.cts:
					res = runCTSBench(b, n)
				case c.taurusSQL:
					res = runTaurusSQLBench(b, n)
				default:
					res = runExporterBench(b, n, c.latency, c.concurrency, c.backfill, c.drift)
				}
			}
			b.ReportMetric(float64(res.records)/res.wall.Seconds(), "records/s")
			b.ReportMetric(res.cpu.Seconds(), "cpu-s")
			b.ReportMetric(float64(res.cpu.Microseconds())/float64(res.records), "cpu-µs/record")
			b.ReportMetric(float64(res.maxRSS)/(1<<20), "peak-RSS-MiB")
			// On a real API the request quota is the limit.
			b.ReportMetric(float64(res.records)/float64(res.requests), "records/request")
			if res.fileBytes > 0 {
				b.ReportMetric(float64(res.fileBytes)/1e6, "file-MB")
			}
			if c.latency > 0 {
				ceiling := float64(c.concurrency) * 100 / c.latency.Seconds()
				b.ReportMetric(float64(res.records)/res.wall.Seconds()/ceiling, "ceiling-ratio")
			}
			// Silence the default ns/op: one op is a whole run.
			b.ReportMetric(0, "ns/op")
		})
	}
}

type benchResult struct {
	records  int64
	wall     time.Duration
	cpu      time.Duration
	maxRSS   int64 // bytes
	requests int64 // the simulator answered, head checks and probes included
	// fileBytes is the size of the file the exporter downloaded (TaurusDB
	// SQL case only).
	fileBytes int64
}

// runExporterBench exports n fresh records once and measures the process.
// With drift, records keep arriving at the head of the list while the run
// pages; it reads at least the n that were there when it started.
func runExporterBench(b *testing.B, n int, latency time.Duration, concurrency int, backfill bool, drift int) benchResult {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	const instance = "5d1f0c2e-7a43-4b8e-9f10-2c3d4e5f6a7b"
	// Three operations share one id sequence: 3n records, 1 ms apart, all
	// after the start time.
	start := time.Now().Add(-time.Duration(3*n+1000) * time.Millisecond).UTC().Truncate(time.Second)
	sim := simulator.New(simulator.Config{
		ProjectID:   simulator.DemoProjectID,
		Credentials: []simulator.Credential{{AK: simulator.DemoAK, SK: simulator.DemoSK}},
		Seed:        1,
		SWR:         simulator.SWRConfig{Instances: []string{instance}, RecordsPerOperation: n, Start: start, Interval: time.Millisecond},
		Faults:      simulator.Faults{Latency: latency, DriftPerPage: drift},
	})
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	dir := b.TempDir()
	env := benchEnv(dir, start.Add(-time.Minute))
	env["HWCAUDIT_SWR_INSTANCES"] = instance
	env["HWCAUDIT_SWR_OPERATIONS"] = "pull"
	env["HWCAUDIT_SWR_ENDPOINT"] = url
	env["HWCAUDIT_CONCURRENCY"] = strconv.Itoa(concurrency)
	args := []string{"run"}
	if backfill {
		args = []string{"backfill", "--from", start.Add(-time.Minute).Format(time.RFC3339), "--progress", "none"}
	}
	res, _ := runMeasured(b, dir, env, args...)
	st := sim.Stats()
	if st.Records < int64(n) {
		b.Fatalf("the simulator served %d records, want at least %d", st.Records, n)
	}
	lines := int64(countLines(b, filepath.Join(dir, "out", swr.Dataset)))
	if lines != int64(n) && (drift == 0 || lines < int64(n)) {
		b.Fatalf("the exporter wrote %d events, want %d", lines, n)
	}
	res.records, res.requests = lines, st.Requests
	return res
}

// benchEnv is the environment every benchmark run shares: the demo's
// credentials, the file sink, checkpoints and dead letters under dir,
// streams starting at start, no rate limit, warnings only.
func benchEnv(dir string, start time.Time) map[string]string {
	return map[string]string{
		"HUAWEICLOUD_SDK_AK":         simulator.DemoAK,
		"HUAWEICLOUD_SDK_SK":         simulator.DemoSK,
		"HUAWEICLOUD_SDK_PROJECT_ID": simulator.DemoProjectID,
		"HWCAUDIT_CREDENTIALS":       "env,profile",
		"HWCAUDIT_REGION":            "cn-north-4",
		"HWCAUDIT_START_FROM":        start.Format(time.RFC3339),
		"HWCAUDIT_FILE_DIR":          filepath.Join(dir, "out"),
		"HWCAUDIT_CHECKPOINT_URL":    "file://" + filepath.Join(dir, "state"),
		"HWCAUDIT_DEADLETTER":        "file://" + filepath.Join(dir, "deadletter"),
		"HWCAUDIT_MAX_RPS":           "1000000",
		"HWCAUDIT_LOG_FORMAT":        "json",
		"HWCAUDIT_LOG_LEVEL":         "warn",
	}
}

// runMeasured runs the exporter with args in dir, with PATH, HOME and env
// as its whole environment (HWCAUDIT_PPROF_DIR and GODEBUG are passed on,
// to profile the exporter rather than the benchmark: see
// docs/benchmarks.md), and measures it: wall time, user+system CPU time
// and peak RSS. A failed run fails the benchmark. It returns the
// exporter's stderr.
func runMeasured(b *testing.B, dir string, env map[string]string, args ...string) (benchResult, string) {
	b.Helper()
	cmd := exec.Command(exporterBin(b), args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, k := range []string{"HWCAUDIT_PPROF_DIR", "GODEBUG"} {
		if v := os.Getenv(k); v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
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
	err := cmd.Wait()
	wall := time.Since(began)
	peak := hwm()
	if err != nil {
		b.Fatalf("exporter %s: %v\n%s%s", args[0], err, stdout.String(), tail(stderr.String(), 4000))
	}
	if os.Getenv("HWCAUDIT_BENCH_STDERR") != "" {
		os.Stderr.Write(stderr.Bytes())
	}
	if peak == 0 {
		b.Fatal("no VmHWM sampled from /proc: cannot measure peak RSS here")
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		b.Fatal("no rusage for the exporter process")
	}
	return benchResult{wall: wall, cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), maxRSS: peak}, stderr.String()
}

// runCTSBench exports n fresh CTS management traces once (about 100 ms
// apart, the trail of a busy account, recorded up to 30 s after they
// happened, read with the default 10m look-back, which lists about 6,000
// traces again for every window) and measures the process.
func runCTSBench(b *testing.B, n int) benchResult {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	start := time.Now().Add(-10*time.Minute - time.Duration(n)*110*time.Millisecond).UTC().Truncate(time.Second)
	sim := simulator.New(simulator.Config{
		ProjectID:   simulator.DemoProjectID,
		Credentials: []simulator.Credential{{AK: simulator.DemoAK, SK: simulator.DemoSK}},
		Seed:        1,
		CTS:         simulator.CTSConfig{Traces: n, Start: start, Interval: 50 * time.Millisecond, MaxLag: 30 * time.Second},
	})
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	dir := b.TempDir()
	env := benchEnv(dir, start.Add(-time.Minute))
	env["HWCAUDIT_CTS_ENABLED"] = "true"
	env["HWCAUDIT_CTS_ENDPOINT"] = url
	res, stderr := runMeasured(b, dir, env, "run")
	lines := int64(countLines(b, filepath.Join(dir, "out", cts.Dataset)))
	if lines != int64(n) {
		b.Fatalf("the exporter wrote %d CTS events, want %d\n%s", lines, n, tail(stderr, 4000))
	}
	res.records, res.requests = lines, sim.Stats().Requests
	return res
}

// runTaurusSQLBench exports the n SQL statements of one fresh TaurusDB
// audit log file (CSV with a header row, as the demo serves, generated
// while the simulator writes it) once, with HWCAUDIT_GAUSSDB_SQL=true and
// the default SQL page of 1,000 statements, and measures the process.
// Requests count the file listing, the link and the download; the file's
// one audit-file event is not among the records.
func runTaurusSQLBench(b *testing.B, n int) benchResult {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	const instance = "5e2b7c9a1d3f4e6b8a0c2d4f6e8a0b1cin07"
	start := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)
	sim := simulator.New(simulator.Config{
		ProjectID:   simulator.DemoProjectID,
		Credentials: []simulator.Credential{{AK: simulator.DemoAK, SK: simulator.DemoSK}},
		Seed:        1,
		TaurusDB: simulator.TaurusDBConfig{
			Instances: []string{instance},
			Files:     1,
			Start:     start,
			SQL:       simulator.TaurusDBSQLConfig{Records: n, Format: simulator.SQLCSVHeader},
		},
	})
	files := sim.TaurusDBRecords(instance)
	if len(files) != 1 {
		b.Fatalf("the simulator lists %d files, want 1", len(files))
	}
	size := &byteCounter{}
	if err := sim.WriteTaurusDBSQLFile(size, instance, files[0].ID); err != nil {
		b.Fatal(err)
	}
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	dir := b.TempDir()
	env := benchEnv(dir, start.Add(-2*time.Hour))
	env["HWCAUDIT_GAUSSDB_INSTANCES"] = instance
	env["HWCAUDIT_GAUSSDB_ENDPOINT"] = url
	env["HWCAUDIT_GAUSSDB_SQL"] = "true"
	res, stderr := runMeasured(b, dir, env, "run")
	if st := sim.TaurusDBSQLStats(); st.Downloads != 1 {
		b.Fatalf("the exporter downloaded the file %d times, want once (%+v)", st.Downloads, st)
	}
	if got := countLines(b, filepath.Join(dir, "out", taurusdb.Dataset)); got != 1 {
		b.Fatalf("the exporter wrote %d TaurusDB file events, want 1", got)
	}
	lines := int64(countLines(b, filepath.Join(dir, "out", taurusdb.SQLDataset)))
	if lines != int64(n) {
		b.Fatalf("the exporter wrote %d TaurusDB SQL events, want %d\n%s", lines, n, tail(stderr, 4000))
	}
	res.records, res.requests, res.fileBytes = lines, sim.Stats().Requests, size.n
	return res
}

// byteCounter counts what is written to it.
type byteCounter struct{ n int64 }

func (c *byteCounter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// watchHWM samples the kernel's high-water mark of the process's resident
// set (VmHWM in /proc/PID/status) every 10 ms, and returns what reports the
// highest value seen once the process has ended. The rusage of a child is
// no use here: Go starts it sharing the parent's memory until exec, and
// Linux counts the parent's resident set into the child's maxrss.
func watchHWM(pid int) func() int64 {
	var peak atomic.Int64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		path := fmt.Sprintf("/proc/%d/status", pid)
		for {
			if data, err := os.ReadFile(path); err == nil {
				for _, line := range strings.Split(string(data), "\n") {
					if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
						kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
						if kb*1024 > peak.Load() {
							peak.Store(kb * 1024)
						}
					}
				}
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() int64 {
		close(done)
		<-stopped
		return peak.Load()
	}
}
