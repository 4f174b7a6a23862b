package window

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// TestStreamKeyAndOpen checks that a Stream is a thin pipeline face of
// NewReader: its key is Options.Key, and Open reads and resumes as
// NewReader does.
func TestStreamKeyAndOpen(t *testing.T) {
	a := &fakeAPI{maxSpan: 24 * time.Hour}
	a.add(rec("a", t0.Add(time.Minute)), rec("b", t0.Add(2*time.Minute)))
	c := &clock{t: t0.Add(time.Hour)}
	o := newOpts(a, c, 10, 100)
	o.Key = "src/ins-1"
	var s pipeline.Stream = &struct {
		Stream
		pipeline.Mapper
	}{Stream: NewStream(o)}
	if s.Key() != "src/ins-1" {
		t.Fatalf("key %q", s.Key())
	}
	rd, err := s.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := rd.Next(context.Background())
	if err != nil || len(p.Records) != 2 {
		t.Fatalf("%d records, %v", len(p.Records), err)
	}
	if _, err := rd.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("got %v, want io.EOF", err)
	}
	if _, err := s.Open(context.Background(), []byte("{")); !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "checkpoint of src/ins-1") {
		t.Fatalf("bad cursor: %v", err)
	}
}
