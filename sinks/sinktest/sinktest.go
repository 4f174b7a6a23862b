// Package sinktest checks that a pipeline.Sink keeps the Sink contract, in
// the spirit of testing/slogtest: every sink's tests call Run with a Harness
// that creates the sink and reads back what its destination holds.
//
//	func TestConformance(t *testing.T) {
//		sinktest.Run(t, sinktest.Harness{
//			New: func(t *testing.T) (pipeline.Sink, sinktest.ReadAll) {
//				dir := t.TempDir()
//				s, err := filesink.New(filesink.Config{Dir: dir, MaxBytes: 1 << 20})
//				…
//				return s, func(t *testing.T) [][]byte { return readFiles(t, dir) }
//			},
//			Ordered: true,
//		})
//	}
//
// The suite writes JSON documents of its own shape,
//
//	{"@timestamp":"…","event":{"id":"…","dataset":"…"},"message":"…","sinktest":{"stream":"…","seq":N}}
//
// and finds them again by event.id. Read-back documents are compared as
// JSON values, so a sink may re-serialize them.
package sinktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// ReadAll returns every document the destination holds, in the order the
// destination keeps them (for sinks that promise order). The suite calls it
// only after the sink's Close returned nil.
type ReadAll func(t *testing.T) [][]byte

// Harness describes the sink under test.
type Harness struct {
	// New returns a sink writing to a fresh, empty destination (a new
	// directory, index or topic) and a function that reads it back. It is
	// called once per test case; the suite closes the sink.
	New func(t *testing.T) (pipeline.Sink, ReadAll)

	// Dedupes is set for sinks that store an event.id at most once, so that
	// re-sent batches must not create duplicates. Otherwise re-sent events
	// may be stored again, but every copy must be identical.
	Dedupes bool

	// Ordered is set for sinks that keep the events of one stream in the
	// order they were written (ReadAll returns them in that order).
	Ordered bool

	// MaxEventBytes is the largest document the sink accepts, or 0 if it has
	// no limit. A larger one must be refused with a *pipeline.RejectedError
	// naming just that event.
	MaxEventBytes int

	// Down and Up, when both set, make the destination unreachable and
	// reachable again (stop and restart a server, block a port). While down,
	// Write must fail; after Up, the same batch must go through.
	Down, Up func(t *testing.T)
}

// Run runs every conformance case as a subtest of t.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("sinktest: Harness.New is nil")
	}
	cases := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyBatch", testEmptyBatch},
		{"Resend", testResend},
		{"CancelledBeforeWrite", testCancelledBeforeWrite},
		{"CancelledDuringWrite", testCancelledDuringWrite},
		{"Oversized", testOversized},
		{"Concurrent", testConcurrent},
		{"CloseMakesVisible", testCloseMakesVisible},
		{"DownUp", testDownUp},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, h) })
	}
}

// batch builds events seq from..to-1 of stream, with documents of about
// size bytes (at least the envelope).
func batch(stream string, from, to, size int) *pipeline.Batch {
	b := &pipeline.Batch{Stream: stream}
	ds := "sinktest." + strings.NewReplacer("/", "_", "-", "_").Replace(stream)
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := from; i < to; i++ {
		id := fmt.Sprintf("%s#%06d", stream, i)
		ts := base.Add(time.Duration(i) * time.Millisecond)
		// The message exercises escaping and non-ASCII text that a sink
		// must carry through unchanged.
		msg := fmt.Sprintf("event %d of %s: \"quoted\", <tag> & ünïcödé ✓ \\ tab\t", i, stream)
		if pad := size - len(msg) - 200; pad > 0 {
			msg += strings.Repeat("x", pad)
		}
		doc, err := json.Marshal(map[string]any{
			"@timestamp": ts.Format(time.RFC3339Nano),
			"event":      map[string]any{"id": id, "dataset": ds},
			"message":    msg,
			"sinktest":   map[string]any{"stream": stream, "seq": i},
		})
		if err != nil {
			panic(err)
		}
		b.Events = append(b.Events, pipeline.Event{ID: id, Timestamp: ts, Dataset: ds, Doc: doc})
	}
	return b
}

// stored is one read-back document.
type stored struct {
	id     string
	stream string
	seq    int
	value  any // the whole document, decoded
}

func readBack(t *testing.T, read ReadAll) []stored {
	t.Helper()
	docs := read(t)
	out := make([]stored, 0, len(docs))
	for i, d := range docs {
		var v any
		if err := json.Unmarshal(d, &v); err != nil {
			t.Fatalf("read-back document %d is not JSON (torn or corrupted?): %v: %.200q", i, err, d)
		}
		var doc struct {
			Event struct {
				ID string `json:"id"`
			} `json:"event"`
			Sinktest struct {
				Stream string `json:"stream"`
				Seq    int    `json:"seq"`
			} `json:"sinktest"`
		}
		json.Unmarshal(d, &doc)
		if doc.Event.ID == "" {
			t.Fatalf("read-back document %d has no event.id: %.200q", i, d)
		}
		out = append(out, stored{id: doc.Event.ID, stream: doc.Sinktest.Stream, seq: doc.Sinktest.Seq, value: v})
	}
	return out
}

// check verifies that the destination holds exactly the events of want
// (each at least once, or exactly once when exact), with identical
// documents, nothing else, and in order per stream if the sink is Ordered.
// Events in maybe may be present too (writes that failed or were cancelled).
func check(t *testing.T, h Harness, got []stored, want, maybe []*pipeline.Batch, exact bool) {
	t.Helper()
	expected := make(map[string]any)
	required := make(map[string]bool)
	add := func(bs []*pipeline.Batch, req bool) {
		for _, b := range bs {
			for _, ev := range b.Events {
				var v any
				if err := json.Unmarshal(ev.Doc, &v); err != nil {
					t.Fatalf("sinktest bug: %v", err)
				}
				expected[ev.ID] = v
				if req {
					required[ev.ID] = true
				}
			}
		}
	}
	add(maybe, false)
	add(want, true)

	count := make(map[string]int)
	for _, s := range got {
		v, ok := expected[s.id]
		if !ok {
			t.Errorf("destination holds unexpected event %q", s.id)
			continue
		}
		if !reflect.DeepEqual(v, s.value) {
			t.Errorf("event %q: stored document differs:\n got %v\nwant %v", s.id, s.value, v)
		}
		count[s.id]++
	}
	missing := 0
	for _, id := range slices.Sorted(maps.Keys(required)) {
		if count[id] == 0 {
			if missing < 5 {
				t.Errorf("event %q was acknowledged but is missing", id)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d acknowledged event(s) missing of %d", missing, len(required))
	}
	if exact || h.Dedupes {
		for id, n := range count {
			if n > 1 {
				t.Errorf("event %q stored %d times, want once", id, n)
			}
		}
	}
	if h.Ordered {
		// Within a stream, the first copy of each event must appear in
		// sequence order; duplicates from re-sends may follow anywhere.
		last := make(map[string]int)
		seen := make(map[string]bool)
		for _, s := range got {
			if seen[s.id] {
				continue
			}
			seen[s.id] = true
			if prev, ok := last[s.stream]; ok && s.seq < prev {
				t.Errorf("stream %s: event seq %d stored after seq %d", s.stream, s.seq, prev)
			}
			last[s.stream] = s.seq
		}
	}
}

func closeSink(t *testing.T, s pipeline.Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// write writes b and checks that the sink left it as it was: the pipeline
// hands one batch to every sink at once, so a sink must not modify it.
func write(t *testing.T, s pipeline.Sink, b *pipeline.Batch) {
	t.Helper()
	before := cloneBatch(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Write(ctx, b); err != nil {
		t.Fatalf("Write(%s, %d events): %v", b.Stream, len(b.Events), err)
	}
	if !reflect.DeepEqual(before, b) {
		t.Fatalf("Write(%s) modified the batch", b.Stream)
	}
}

func cloneBatch(b *pipeline.Batch) *pipeline.Batch {
	c := &pipeline.Batch{Stream: b.Stream, Events: slices.Clone(b.Events)}
	for i := range c.Events {
		c.Events[i].Doc = slices.Clone(c.Events[i].Doc)
	}
	return c
}

func testRoundTrip(t *testing.T, h Harness) {
	s, read := h.New(t)
	a := batch("rt/a", 0, 10, 0)
	b := batch("rt/b", 0, 3, 0)
	a2 := batch("rt/a", 10, 25, 0)
	big := batch("rt/big", 0, 2, 64<<10)
	if h.MaxEventBytes > 0 && 64<<10 > h.MaxEventBytes {
		big = batch("rt/big", 0, 2, h.MaxEventBytes*3/4)
	}
	single := batch("rt/single", 0, 1, 0)
	all := []*pipeline.Batch{a, b, a2, big, single}
	for _, x := range all {
		write(t, s, x)
	}
	closeSink(t, s)
	check(t, h, readBack(t, read), all, nil, true)
}

func testEmptyBatch(t *testing.T, h Harness) {
	s, read := h.New(t)
	if err := s.Write(context.Background(), &pipeline.Batch{Stream: "empty/a"}); err != nil {
		t.Errorf("Write(empty batch) = %v, want nil", err)
	}
	if err := s.Write(context.Background(), &pipeline.Batch{Stream: "empty/b", Events: []pipeline.Event{}}); err != nil {
		t.Errorf("Write(batch with zero-length Events) = %v, want nil", err)
	}
	closeSink(t, s)
	if got := readBack(t, read); len(got) != 0 {
		t.Errorf("destination holds %d events after empty writes, want 0", len(got))
	}
}

func testResend(t *testing.T, h Harness) {
	s, read := h.New(t)
	b1 := batch("resend/a", 0, 20, 0)
	b2 := batch("resend/a", 20, 30, 0)
	write(t, s, b1)
	write(t, s, b1) // as after a crash before the checkpoint moved
	write(t, s, b2)
	write(t, s, batch("resend/a", 10, 30, 0)) // overlapping re-send
	closeSink(t, s)
	got := readBack(t, read)
	check(t, h, got, []*pipeline.Batch{b1, b2}, nil, false)
	if !h.Dedupes && len(got) < 30 {
		t.Errorf("got %d documents, want at least 30", len(got))
	}
}

func testCancelledBeforeWrite(t *testing.T, h Harness) {
	s, read := h.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	lost := batch("cancel/a", 0, 10, 0)
	if err := s.Write(ctx, lost); err == nil {
		t.Error("Write with a cancelled context returned nil: it must not acknowledge")
	}
	after := batch("cancel/a", 10, 20, 0)
	write(t, s, after)
	closeSink(t, s)
	check(t, h, readBack(t, read), []*pipeline.Batch{after}, []*pipeline.Batch{lost}, false)
}

func testCancelledDuringWrite(t *testing.T, h Harness) {
	s, read := h.New(t)
	var acked, maybe []*pipeline.Batch
	// Cancel at a few different moments; whatever Write answers must be
	// true: nil means all of the batch is stored.
	for i, delay := range []time.Duration{0, 50 * time.Microsecond, time.Millisecond, 5 * time.Millisecond} {
		b := batch(fmt.Sprintf("midcancel/%d", i), 0, 500, 300)
		ctx, cancel := context.WithCancel(context.Background())
		timer := time.AfterFunc(delay, cancel)
		err := s.Write(ctx, b)
		timer.Stop()
		cancel()
		if err == nil {
			acked = append(acked, b)
		} else {
			maybe = append(maybe, b)
			if !errors.Is(err, context.Canceled) {
				t.Logf("Write cancelled after %s: %v (not wrapping context.Canceled)", delay, err)
			}
		}
	}
	t.Logf("%d of 4 writes were cancelled", len(maybe))
	after := batch("midcancel/after", 0, 10, 0)
	write(t, s, after)
	acked = append(acked, after)
	closeSink(t, s)
	check(t, h, readBack(t, read), acked, maybe, false)
}

func testOversized(t *testing.T, h Harness) {
	if h.MaxEventBytes <= 0 {
		t.Skip("harness declares no MaxEventBytes")
	}
	s, read := h.New(t)
	b := batch("oversized/a", 0, 5, 0)
	huge := batch("oversized/a", 2, 3, h.MaxEventBytes+1024).Events[0]
	b.Events[2] = huge
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.Write(ctx, b)
	var rej *pipeline.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("Write with an oversized event = %v, want *pipeline.RejectedError", err)
	}
	if len(rej.Reasons) != 1 || rej.Reasons[2] == "" {
		t.Errorf("RejectedError.Reasons = %v, want just index 2 with a reason", rej.Reasons)
	}
	closeSink(t, s)
	rest := &pipeline.Batch{Stream: b.Stream, Events: slices.Delete(slices.Clone(b.Events), 2, 3)}
	got := readBack(t, read)
	check(t, h, got, []*pipeline.Batch{rest}, nil, true)
	for _, g := range got {
		if g.id == huge.ID {
			t.Errorf("rejected event %q was stored", huge.ID)
		}
	}
}

func testConcurrent(t *testing.T, h Harness) {
	s, read := h.New(t)
	const writers, batches, per = 8, 20, 25
	var all []*pipeline.Batch
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		stream := fmt.Sprintf("concurrent/%d", w)
		var mine []*pipeline.Batch
		for i := range batches {
			mine = append(mine, batch(stream, i*per, (i+1)*per, 0))
		}
		all = append(all, mine...)
		wg.Go(func() {
			for _, b := range mine {
				if err := s.Write(context.Background(), b); err != nil {
					errs <- fmt.Errorf("Write(%s): %w", b.Stream, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	closeSink(t, s)
	check(t, h, readBack(t, read), all, nil, true)
}

func testCloseMakesVisible(t *testing.T, h Harness) {
	s, read := h.New(t)
	b := batch("close/a", 0, 7, 0)
	write(t, s, b)
	closeSink(t, s)
	check(t, h, readBack(t, read), []*pipeline.Batch{b}, nil, true)
}

func testDownUp(t *testing.T, h Harness) {
	if h.Down == nil || h.Up == nil {
		t.Skip("harness has no Down/Up hooks")
	}
	s, read := h.New(t)
	before := batch("downup/a", 0, 5, 0)
	write(t, s, before)

	h.Down(t)
	during := batch("downup/a", 5, 10, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := s.Write(ctx, during)
	cancel()
	if err == nil {
		h.Up(t)
		t.Fatal("Write while the destination is down returned nil")
	}
	h.Up(t)
	write(t, s, during) // the pipeline's retry
	after := batch("downup/a", 10, 15, 0)
	write(t, s, after)
	closeSink(t, s)
	check(t, h, readBack(t, read), []*pipeline.Batch{before, during, after}, nil, false)
}
