package stdoutsink

import (
	"io"
	"testing"

	"github.com/hwcaudit/hwcaudit/sinks/sinktest"
)

// BenchmarkWrite measures Write of batches of 2000 events of about 1.2 KB
// into io.Discard: the cost of framing NDJSON lines, without any I/O.
func BenchmarkWrite(b *testing.B) {
	sinktest.Benchmark(b, New(io.Discard), sinktest.Batches(8, 2000))
}
