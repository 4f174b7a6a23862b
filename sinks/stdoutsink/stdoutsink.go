// Package stdoutsink writes ECS events as NDJSON to standard output (or any
// io.Writer), one document per line, for container log collectors and
// piping into other tools.
//
// Durability is the reader's: Write returns once the bytes are handed to the
// writer (and flushed, if it buffers). A batch re-sent after a failure is
// written again, so readers see duplicates with the same event.id.
package stdoutsink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/ndjson"
)

// Sink is a pipeline.Sink writing NDJSON lines. It is safe for concurrent
// use; each batch is written with one call to the underlying writer, so the
// lines of concurrent batches never interleave within a line.
type Sink struct {
	mu   sync.Mutex
	w    io.Writer
	buf  bytes.Buffer
	torn bool // the last write failed part-way, leaving a line unterminated
}

var _ pipeline.Sink = (*Sink)(nil)

// New returns a Sink writing to w, or to os.Stdout when w is nil. If w has a
// Flush() error method (like *bufio.Writer) it is called before Write
// returns.
func New(w io.Writer) *Sink {
	if w == nil {
		w = os.Stdout
	}
	return &Sink{w: w}
}

// Write writes one line per event and returns nil once the writer accepted
// (and flushed) all of them. A document with a newline is compacted onto one
// line if it is valid JSON; an empty or multi-line invalid document is
// rejected with a *pipeline.RejectedError and the others are written.
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	if b == nil || len(b.Events) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stdoutsink: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Reset()
	if s.torn {
		// Terminate the fragment an earlier failed write left behind, so it
		// cannot merge with the next document into one unparsable line.
		s.buf.WriteByte('\n')
	}
	var rejected map[int]string
	for i := range b.Events {
		doc := b.Events[i].Doc
		if reason := appendLine(&s.buf, doc); reason != "" {
			if rejected == nil {
				rejected = make(map[int]string)
			}
			rejected[i] = reason
		}
	}
	if err := s.write(s.buf.Bytes()); err != nil {
		return fmt.Errorf("stdoutsink: stream %s: %w", b.Stream, err)
	}
	if s.buf.Cap() > 4<<20 {
		s.buf = bytes.Buffer{}
	}
	if rejected != nil {
		return &pipeline.RejectedError{Reasons: rejected}
	}
	return nil
}

func (s *Sink) write(p []byte) error {
	if len(p) == 0 {
		return s.flush()
	}
	n, err := s.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		// Anything written ends mid-line unless it ended exactly on a newline.
		s.torn = n > 0 && p[n-1] != '\n' || s.torn && n == 0
		return err
	}
	s.torn = false
	return s.flush()
}

func (s *Sink) flush() error {
	if f, ok := s.w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

// appendLine appends doc as one NDJSON line (see ndjson.Line, the check
// the file and S3 sinks use too), or returns why it cannot be one.
func appendLine(buf *bytes.Buffer, doc []byte) (reason string) {
	line, reason := ndjson.Line(doc)
	if reason != "" {
		return reason
	}
	buf.Write(line)
	buf.WriteByte('\n')
	return ""
}

// Close flushes the writer if it buffers. It does not close the writer.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.flush(); err != nil {
		return fmt.Errorf("stdoutsink: %w", err)
	}
	return nil
}
