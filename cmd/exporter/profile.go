package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	runtimemetrics "runtime/metrics"
	"runtime/pprof"
	"time"
)

// profileEnv names a directory where the exporter writes a CPU profile of
// the whole process (cpu.pprof), an allocation profile at exit
// (heap.pprof) and the heap as it was when the most memory was in use
// (heap-peak.pprof, sampled every 100 ms), for `go tool pprof`. It is read straight from the environment, before
// configuration, so that a profile covers configuration loading too.
const profileEnv = "HWCAUDIT_PPROF_DIR"

// startProfiling starts the CPU profile when HWCAUDIT_PPROF_DIR is set and
// returns what stops it and writes the heap profile.
func startProfiling(stderr io.Writer) (stop func()) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", profileEnv, err)
		return func() {}
	}
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", profileEnv, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", profileEnv, err)
		cpu.Close()
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go watchPeak(filepath.Join(dir, "heap-peak.pprof"), done, stopped)
	return func() {
		close(done)
		<-stopped
		pprof.StopCPUProfile()
		cpu.Close()
		heap, err := os.Create(filepath.Join(dir, "heap.pprof"))
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", profileEnv, err)
			return
		}
		defer heap.Close()
		runtime.GC()
		if err := pprof.Lookup("allocs").WriteTo(heap, 0); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", profileEnv, err)
		}
	}
}

// watchPeak writes the in-use heap profile to path whenever the heap in use
// reaches a new high, until done is closed.
func watchPeak(path string, done <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	sample := []runtimemetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		runtimemetrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > peak+peak/10 {
			peak = v
			f, err := os.Create(path)
			if err != nil {
				return
			}
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
}
