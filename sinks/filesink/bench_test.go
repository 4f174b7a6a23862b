package filesink

import (
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sinks/sinktest"
)

// BenchmarkWrite measures Write of batches of 2000 events of about 1.2 KB
// into b.TempDir with the default file size and age limits. These are
// durable writes: each Write returns only after its lines are fsynced, so
// the figures are bound by the disk's fsync latency, not by the sink's
// CPU; the sub-benchmark is named "fsync" to say so in the output.
func BenchmarkWrite(b *testing.B) {
	b.Run("fsync", func(b *testing.B) {
		s, err := New(Config{Dir: b.TempDir(), MaxBytes: 64 << 20, MaxAge: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		sinktest.Benchmark(b, s, sinktest.Batches(8, 2000))
	})
}
