package stdoutsink

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/sinktest"
)

// switchWriter is a buffer that can be made to fail, to stand in for a
// closed pipe. The Sink serializes calls, but Down/Up come from the test.
type switchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	down bool
	// tear makes a failing write store half of its input first.
	tear bool
}

func (w *switchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.down {
		if w.tear {
			n := len(p) / 2
			w.buf.Write(p[:n])
			return n, errors.New("broken pipe")
		}
		return 0, errors.New("broken pipe")
	}
	return w.buf.Write(p)
}

func (w *switchWriter) set(down bool) {
	w.mu.Lock()
	w.down = down
	w.mu.Unlock()
}

func (w *switchWriter) lines() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out [][]byte
	for ln := range bytes.Lines(w.buf.Bytes()) {
		out = append(out, bytes.TrimSuffix(ln, []byte("\n")))
	}
	return out
}

func TestConformance(t *testing.T) {
	var current *switchWriter
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) (pipeline.Sink, sinktest.ReadAll) {
			w := &switchWriter{}
			current = w
			return New(w), func(t *testing.T) [][]byte { return w.lines() }
		},
		Ordered: true,
		Down:    func(t *testing.T) { current.set(true) },
		Up:      func(t *testing.T) { current.set(false) },
	})
}

func TestConformanceBuffered(t *testing.T) {
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) (pipeline.Sink, sinktest.ReadAll) {
			var buf bytes.Buffer
			bw := bufio.NewWriterSize(&buf, 256)
			return New(bw), func(t *testing.T) [][]byte {
				var out [][]byte
				for ln := range bytes.Lines(buf.Bytes()) {
					out = append(out, bytes.TrimSuffix(ln, []byte("\n")))
				}
				return out
			}
		},
		Ordered: true,
	})
}

func TestLines(t *testing.T) {
	tests := []struct {
		name     string
		docs     []string
		want     string
		rejected []int
	}{
		{"one per line", []string{`{"a":1}`, `{"b":2}`}, "{\"a\":1}\n{\"b\":2}\n", nil},
		{"multi-line JSON is compacted", []string{"{\n \"a\": [1, 2]\n}"}, "{\"a\":[1,2]}\n", nil},
		{"multi-line invalid is rejected", []string{`{"a":1}`, "{\n\"a\"", `{"c":3}`}, "{\"a\":1}\n{\"c\":3}\n", []int{1}},
		{"empty is rejected", []string{"", `{"b":2}`}, "{\"b\":2}\n", []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := New(&buf)
			b := &pipeline.Batch{Stream: "s"}
			for _, d := range tt.docs {
				b.Events = append(b.Events, pipeline.Event{ID: d, Doc: []byte(d)})
			}
			err := s.Write(context.Background(), b)
			var rej *pipeline.RejectedError
			switch {
			case tt.rejected == nil && err != nil:
				t.Fatalf("Write = %v", err)
			case tt.rejected != nil:
				if !errors.As(err, &rej) || len(rej.Reasons) != len(tt.rejected) {
					t.Fatalf("Write = %v, want rejection of %v", err, tt.rejected)
				}
				for _, i := range tt.rejected {
					if rej.Reasons[i] == "" {
						t.Errorf("event %d not rejected: %v", i, rej.Reasons)
					}
				}
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("output %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTornWriteIsTerminated checks that a write that failed half-way does not
// glue its fragment to the next document.
func TestTornWriteIsTerminated(t *testing.T) {
	w := &switchWriter{tear: true}
	s := New(w)
	b := &pipeline.Batch{Stream: "s", Events: []pipeline.Event{{ID: "a", Doc: []byte(`{"a":"0123456789"}`)}}}
	w.set(true)
	if err := s.Write(context.Background(), b); err == nil {
		t.Fatal("Write to a failing writer returned nil")
	}
	w.set(false)
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	lines := w.lines()
	if len(lines) != 2 || string(lines[1]) != `{"a":"0123456789"}` {
		t.Errorf("lines %q: want the fragment, then the whole document on its own line", lines)
	}
}

func TestNilWriterIsStdout(t *testing.T) {
	if s := New(nil); s.w == nil {
		t.Error("New(nil) has no writer")
	}
}
