package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeStream serves records 1..n in pages of size, oldest first. Its cursor
// is the last record number; record number k listed in bad fails to map.
type fakeStream struct {
	key        string
	n, size    int
	bad        map[int]bool
	failFetch  func(call int) error
	mu         sync.Mutex
	fetchCalls int
}

func (s *fakeStream) Key() string { return s.key }

func (s *fakeStream) Open(_ context.Context, cursor []byte) (Reader, error) {
	pos := 0
	if cursor != nil {
		if err := json.Unmarshal(cursor, &pos); err != nil {
			return nil, err
		}
	}
	return &fakeReader{s: s, pos: pos}, nil
}

func (s *fakeStream) Map(raw []byte, ev *Event) error {
	k, err := strconv.Atoi(string(raw))
	if err != nil {
		return err
	}
	if s.bad[k] {
		return fmt.Errorf("record %d is malformed", k)
	}
	ev.ID = s.key + "-" + string(raw)
	ev.Dataset = "test"
	ev.Doc = []byte(`{"n":` + string(raw) + `}`)
	return nil
}

type fakeReader struct {
	s   *fakeStream
	pos int
}

func (r *fakeReader) Next(context.Context) (Page, error) {
	r.s.mu.Lock()
	r.s.fetchCalls++
	call := r.s.fetchCalls
	r.s.mu.Unlock()
	if r.s.failFetch != nil {
		if err := r.s.failFetch(call); err != nil {
			return Page{}, err
		}
	}
	if r.pos >= r.s.n {
		return Page{}, io.EOF
	}
	var p Page
	for i := 0; i < r.s.size && r.pos < r.s.n; i++ {
		r.pos++
		p.Records = append(p.Records, []byte(strconv.Itoa(r.pos)))
	}
	p.Cursor = []byte(strconv.Itoa(r.pos))
	return p, nil
}

// memSink records event ids; fail decides the outcome of each Write call.
type memSink struct {
	mu    sync.Mutex
	calls int
	ids   map[string]int
	fail  func(call int, b *Batch) error
}

func newMemSink(fail func(int, *Batch) error) *memSink {
	return &memSink{ids: map[string]int{}, fail: fail}
}

func (s *memSink) Write(_ context.Context, b *Batch) error {
	s.mu.Lock()
	s.calls++
	call := s.calls
	s.mu.Unlock()
	var err error
	if s.fail != nil {
		err = s.fail(call, b) // unlocked: it may block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		if err != nil {
			var rej *RejectedError
			if !errors.As(err, &rej) {
				return err
			}
			for i, ev := range b.Events {
				if _, bad := rej.Reasons[i]; !bad {
					s.ids[ev.ID]++
				}
			}
			return err
		}
	}
	for _, ev := range b.Events {
		s.ids[ev.ID]++
	}
	return nil
}

func (s *memSink) Close(context.Context) error { return nil }

func (s *memSink) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id] > 0
}

type memStore struct {
	mu      sync.Mutex
	cursors map[string][]byte
	saves   []string // stream=cursor, in order
	fail    error
}

func newMemStore() *memStore { return &memStore{cursors: map[string][]byte{}} }

func (m *memStore) Load(_ context.Context, stream string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cursors[stream], nil
}

func (m *memStore) Save(_ context.Context, stream string, cursor []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.cursors[stream] = append([]byte(nil), cursor...)
	m.saves = append(m.saves, stream+"="+string(cursor))
	return nil
}

func (m *memStore) cursor(stream string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, _ := strconv.Atoi(string(m.cursors[stream]))
	return n
}

type memDLQ struct {
	mu      sync.Mutex
	letters []DeadLetter
	fail    error
}

func (d *memDLQ) Put(_ context.Context, ls []DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	d.letters = append(d.letters, ls...)
	return nil
}

var fastBackoff = Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond, MaxElapsed: 50 * time.Millisecond}

func newTestPipeline(t *testing.T, store Store, dlq DeadLetterWriter, sinks ...*memSink) *Pipeline {
	t.Helper()
	var outs []Output
	for i, s := range sinks {
		outs = append(outs, Output{Name: "sink" + strconv.Itoa(i), Sink: s})
	}
	p, err := New(Config{Outputs: outs, Store: store, DeadLetter: dlq, Backoff: fastBackoff, MaxBatch: 7, InFlight: 3})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunDeliversEverythingAndCommitsTheEnd(t *testing.T) {
	store, dlq, sink := newMemStore(), &memDLQ{}, newMemSink(nil)
	streams := []Stream{&fakeStream{key: "a", n: 95, size: 10}, &fakeStream{key: "b", n: 3, size: 10}, &fakeStream{key: "c", size: 10}}
	sum := newTestPipeline(t, store, dlq, sink).Run(context.Background(), streams)
	if err := sum.Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range streams {
		fs := s.(*fakeStream)
		for k := 1; k <= fs.n; k++ {
			if !sink.has(fmt.Sprintf("%s-%d", fs.key, k)) {
				t.Errorf("record %s-%d not delivered", fs.key, k)
			}
		}
		if got := store.cursor(fs.key); got != fs.n {
			t.Errorf("stream %s committed %d, want %d", fs.key, got, fs.n)
		}
	}
	if r := sum.Streams[0]; r.Fetched != 95 || r.Written["sink0"] != 95 || r.Committed != 95 || r.Status != StatusDone {
		t.Errorf("result %+v", r)
	}
}

func TestCheckpointNeverPassesAFailedWrite(t *testing.T) {
	// The sink fails for good at its 4th write: the checkpoint must stop at
	// the end of the 3rd batch, and a rerun with a healthy sink delivers
	// the rest.
	for _, n := range []int{1, 2, 4, 6} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			store, dlq := newMemStore(), &memDLQ{}
			var delivered int
			sink := newMemSink(func(call int, b *Batch) error {
				if call >= n {
					return Permanent(errors.New("disk on fire"))
				}
				delivered += len(b.Events)
				return nil
			})
			s := &fakeStream{key: "a", n: 100, size: 5}
			p, _ := New(Config{Outputs: []Output{{"file", sink}}, Store: store, DeadLetter: dlq, Backoff: fastBackoff, MaxBatch: 5, InFlight: 1})
			sum := p.Run(context.Background(), []Stream{s})
			if sum.Streams[0].Status != StatusFailed || sum.Err() == nil {
				t.Fatalf("status %s, want failed", sum.Streams[0].Status)
			}
			if got := store.cursor("a"); got > delivered {
				t.Fatalf("checkpoint %d passed the %d delivered records", got, delivered)
			}
			healthy := newMemSink(nil)
			if err := newTestPipeline(t, store, dlq, healthy).Run(context.Background(), []Stream{s}).Err(); err != nil {
				t.Fatal(err)
			}
			for k := 1; k <= 100; k++ {
				id := fmt.Sprintf("a-%d", k)
				if !sink.has(id) && !healthy.has(id) {
					t.Errorf("record %d lost", k)
				}
			}
		})
	}
}

func TestConcurrentWritesCommitInOrder(t *testing.T) {
	// Batch 2 fails while batches 3.. succeed: nothing past batch 1 may be
	// committed even though later batches resolved first.
	store, dlq := newMemStore(), &memDLQ{}
	release := make(chan struct{})
	sink := newMemSink(func(call int, b *Batch) error {
		if b.Events[0].ID == "a-8" {
			<-release
			return Permanent(errors.New("refused"))
		}
		return nil
	})
	go func() {
		// Let the later batches finish first.
		for {
			sink.mu.Lock()
			calls := sink.calls
			sink.mu.Unlock()
			if calls >= 3 {
				close(release)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	s := &fakeStream{key: "a", n: 40, size: 7}
	p, _ := New(Config{Outputs: []Output{{"s", sink}}, Store: store, DeadLetter: dlq, Backoff: fastBackoff, MaxBatch: 7, InFlight: 4, Queue: 1})
	sum := p.Run(context.Background(), []Stream{s})
	if sum.Streams[0].Status != StatusFailed {
		t.Fatalf("status %s", sum.Streams[0].Status)
	}
	if got := store.cursor("a"); got > 7 {
		t.Fatalf("committed %d, past the failed batch starting at 8", got)
	}
}

func TestRetryableErrorsAreRetried(t *testing.T) {
	store, dlq := newMemStore(), &memDLQ{}
	sink := newMemSink(func(call int, _ *Batch) error {
		if call%2 == 1 {
			return &RetryAfterError{After: time.Millisecond, Err: errors.New("429")}
		}
		return nil
	})
	s := &fakeStream{key: "a", n: 30, size: 10, failFetch: func(call int) error {
		if call%3 == 0 {
			return errors.New("connection reset")
		}
		return nil
	}}
	if err := newTestPipeline(t, store, dlq, sink).Run(context.Background(), []Stream{s}).Err(); err != nil {
		t.Fatal(err)
	}
	if store.cursor("a") != 30 {
		t.Fatalf("cursor %d", store.cursor("a"))
	}
}

func TestDeadLetters(t *testing.T) {
	store, dlq := newMemStore(), &memDLQ{}
	sink := newMemSink(func(_ int, b *Batch) error {
		for i, ev := range b.Events {
			if ev.ID == "a-5" {
				return &RejectedError{Reasons: map[int]string{i: "too large"}}
			}
		}
		return nil
	})
	s := &fakeStream{key: "a", n: 12, size: 4, bad: map[int]bool{3: true, 11: true}}
	sum := newTestPipeline(t, store, dlq, sink).Run(context.Background(), []Stream{s})
	if err := sum.Err(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range dlq.letters {
		got[string(l.Original)] = l.Stage + ": " + l.Reason
	}
	want := map[string]string{
		"3":       "map: record 3 is malformed",
		"11":      "map: record 11 is malformed",
		`{"n":5}`: "sink:sink0: too large",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("dead letters %v, want %v", got, want)
	}
	if r := sum.Streams[0]; r.DeadLettered != 3 || r.Written["sink0"] != 9 || store.cursor("a") != 12 {
		t.Fatalf("result %+v cursor %d", r, store.cursor("a"))
	}
}

func TestFailedDeadLetterHoldsTheCheckpoint(t *testing.T) {
	store, dlq := newMemStore(), &memDLQ{fail: Permanent(errors.New("dlq down"))}
	s := &fakeStream{key: "a", n: 12, size: 4, bad: map[int]bool{6: true}}
	sum := newTestPipeline(t, store, dlq, newMemSink(nil)).Run(context.Background(), []Stream{s})
	if sum.Streams[0].Status != StatusFailed {
		t.Fatalf("status %s", sum.Streams[0].Status)
	}
	if got := store.cursor("a"); got >= 6 {
		t.Fatalf("checkpoint %d passed the record whose dead letter was not stored", got)
	}
}

func TestOneFailingStreamDoesNotStopOthers(t *testing.T) {
	store, dlq, sink := newMemStore(), &memDLQ{}, newMemSink(nil)
	bad := &fakeStream{key: "bad", n: 10, size: 5, failFetch: func(int) error { return Permanent(errors.New("HTTP 403")) }}
	good := &fakeStream{key: "good", n: 50, size: 5}
	sum := newTestPipeline(t, store, dlq, sink).Run(context.Background(), []Stream{bad, good})
	if sum.Streams[0].Status != StatusFailed || sum.Streams[1].Status != StatusDone {
		t.Fatalf("statuses %s %s", sum.Streams[0].Status, sum.Streams[1].Status)
	}
	if store.cursor("good") != 50 {
		t.Fatalf("good stream committed %d", store.cursor("good"))
	}
}

func TestCancelStopsFetchingAndCommitsOnlyDelivered(t *testing.T) {
	store, dlq := newMemStore(), &memDLQ{}
	ctx, cancel := context.WithCancel(context.Background())
	sink := newMemSink(func(call int, _ *Batch) error {
		if call == 3 {
			cancel()
		}
		return nil
	})
	s := &fakeStream{key: "a", n: 1000, size: 5}
	p, _ := New(Config{Outputs: []Output{{"s", sink}}, Store: store, DeadLetter: dlq, Backoff: fastBackoff, MaxBatch: 5, InFlight: 1, Queue: 1})
	sum := p.Run(ctx, []Stream{s})
	if sum.Streams[0].Status != StatusInterrupted {
		t.Fatalf("status %s, want interrupted", sum.Streams[0].Status)
	}
	got := store.cursor("a")
	for k := 1; k <= got; k++ {
		if !sink.has(fmt.Sprintf("a-%d", k)) {
			t.Fatalf("checkpoint %d covers undelivered record %d", got, k)
		}
	}
	if got == 0 || got >= 1000 {
		t.Fatalf("checkpoint %d: want the delivered prefix", got)
	}
}

func TestShutdownGraceAbandonsStuckWrites(t *testing.T) {
	store, dlq := newMemStore(), &memDLQ{}
	ctx, cancel := context.WithCancel(context.Background())
	stuck := &blockingSink{started: make(chan struct{})}
	s := &fakeStream{key: "a", n: 100, size: 5}
	p, _ := New(Config{Outputs: []Output{{"s", stuck}}, Store: store, DeadLetter: dlq, Backoff: fastBackoff, ShutdownGrace: 20 * time.Millisecond})
	go func() { <-stuck.started; cancel() }()
	sum := p.Run(ctx, []Stream{s})
	if sum.Streams[0].Status != StatusInterrupted {
		t.Fatalf("status %s, want interrupted", sum.Streams[0].Status)
	}
	if len(store.saves) != 0 {
		t.Fatalf("saved %v though nothing was delivered", store.saves)
	}
}

// blockingSink never finishes a write until its context ends.
type blockingSink struct {
	once    sync.Once
	started chan struct{}
}

func (b *blockingSink) Write(ctx context.Context, _ *Batch) error {
	b.once.Do(func() { close(b.started) })
	<-ctx.Done()
	return ctx.Err()
}
func (b *blockingSink) Close(context.Context) error { return nil }

func TestTrackerCommitsOnlyContiguous(t *testing.T) {
	tr := newTracker()
	for range 5 {
		tr.add()
	}
	steps := []struct {
		resolve uint64
		commit  uint64
		ok      bool
	}{
		{2, 0, false}, {1, 0, false}, {0, 2, true}, {4, 0, false}, {3, 4, true},
	}
	for _, s := range steps {
		c, ok := tr.resolve(s.resolve)
		if c != s.commit || ok != s.ok {
			t.Fatalf("resolve(%d) = %d,%v; want %d,%v", s.resolve, c, ok, s.commit, s.ok)
		}
	}
}

func TestBackoffHonoursRetryAfterAndGivesUp(t *testing.T) {
	b := Backoff{Initial: time.Millisecond, Max: time.Second, MaxElapsed: time.Minute}.withDefaults()
	err := &RetryAfterError{After: 700 * time.Millisecond, Err: errors.New("429")}
	for attempt := range 5 {
		if d := b.wait(attempt, err); d < 700*time.Millisecond || d > time.Second {
			t.Fatalf("wait %s ignores Retry-After 700ms", d)
		}
	}
	for attempt := range 30 {
		if d := b.wait(attempt, errors.New("x")); d <= 0 || d > time.Second {
			t.Fatalf("attempt %d waits %s, outside (0, Max]", attempt, d)
		}
	}
	calls := 0
	short := Backoff{Initial: time.Millisecond, Max: time.Millisecond, MaxElapsed: 10 * time.Millisecond}
	if err := short.Retry(context.Background(), func() error { calls++; return errors.New("down") }, nil); err == nil || calls < 2 {
		t.Fatalf("Retry = %v after %d calls; want a give-up error after several", err, calls)
	}
	calls = 0
	if err := short.Retry(context.Background(), func() error { calls++; return Permanent(errors.New("400")) }, nil); !IsPermanent(err) || calls != 1 {
		t.Fatalf("permanent error retried %d times", calls)
	}
}

// appendMapper writes a document of n bytes, or refuses records "bad".
type appendMapper struct{ n int }

func (m appendMapper) Map(raw []byte, ev *Event) error {
	if string(raw) == "bad" {
		return errors.New("bad record")
	}
	ev.ID = string(raw)
	ev.Doc = append(ev.Doc[:0], raw...)
	for len(ev.Doc) < m.n {
		ev.Doc = append(ev.Doc, '.')
	}
	return nil
}

func TestMapRecordsDocumentsDoNotOverlap(t *testing.T) {
	recs := [][]byte{[]byte("a"), []byte("bad"), []byte("b"), []byte("c")}
	for _, n := range []int{1, 100, 5000} { // in place, and outgrowing the guess
		evs, letters := MapRecords(appendMapper{n: n}, "s", recs, time.Unix(0, 0), nil, nil)
		if len(evs) != 3 || len(letters) != 1 || letters[0].Reason != "bad record" || string(letters[0].Original) != "bad" {
			t.Fatalf("n=%d: %d events, letters %+v", n, len(evs), letters)
		}
		// Appending to one document must not change the next.
		for i := range evs {
			evs[i].Doc = append(evs[i].Doc, '!')
		}
		for i, want := range []string{"a", "b", "c"} {
			d := string(evs[i].Doc)
			if len(d) != max(n, 1)+1 || d[0] != want[0] || d[len(d)-1] != '!' || strings.Count(d, "!") != 1 {
				t.Fatalf("n=%d: document %d is %.20q… (%d bytes)", n, i, d, len(d))
			}
		}
	}
}

func TestCheckpointSavesAreCoalesced(t *testing.T) {
	// Many small batches while later ones are on their way: with a clock
	// that does not move, the checkpoint is saved only when no batch is
	// pending, and always at the end, on the last record.
	store, dlq := newMemStore(), &memDLQ{}
	now := time.Unix(1e9, 0)
	s := &fakeStream{key: "a", n: 2000, size: 5}
	slow := newMemSink(func(int, *Batch) error { time.Sleep(100 * time.Microsecond); return nil })
	p, _ := New(Config{Outputs: []Output{{"s", slow}}, Store: store, DeadLetter: dlq, Backoff: fastBackoff,
		MaxBatch: 5, InFlight: 4, Now: func() time.Time { return now }})
	sum := p.Run(context.Background(), []Stream{s})
	if sum.Streams[0].Status != StatusDone || sum.Streams[0].Committed != 2000 {
		t.Fatalf("status %s, committed %d", sum.Streams[0].Status, sum.Streams[0].Committed)
	}
	if got := store.cursor("a"); got != 2000 {
		t.Fatalf("checkpoint at %d, want 2000", got)
	}
	store.mu.Lock()
	saves := len(store.saves)
	store.mu.Unlock()
	if saves >= 400 {
		t.Errorf("%d saves for 400 batches: none coalesced", saves)
	}

	// With SaveEvery elapsed at every batch, every batch is saved.
	store2 := newMemStore()
	var hours atomic.Int64
	p2, _ := New(Config{Outputs: []Output{{"s", newMemSink(nil)}}, Store: store2, DeadLetter: dlq, Backoff: fastBackoff,
		MaxBatch: 5, InFlight: 1, Now: func() time.Time { return now.Add(time.Duration(hours.Add(1)) * time.Hour) }})
	p2.Run(context.Background(), []Stream{&fakeStream{key: "a", n: 100, size: 5}})
	if len(store2.saves) < 20 || store2.cursor("a") != 100 {
		t.Errorf("%d saves, checkpoint %d; want one per batch of 5, ending at 100", len(store2.saves), store2.cursor("a"))
	}
}

func TestFailureStillSavesTheDeliveredPrefix(t *testing.T) {
	// A batch fails while the checkpoint of those before it waits for the
	// next save: the end of the stream saves what was delivered.
	store, dlq := newMemStore(), &memDLQ{}
	sink := newMemSink(func(call int, b *Batch) error {
		if b.Events[0].ID == "a-51" {
			return Permanent(errors.New("refused"))
		}
		return nil
	})
	p, _ := New(Config{Outputs: []Output{{"s", sink}}, Store: store, DeadLetter: dlq, Backoff: fastBackoff,
		MaxBatch: 10, InFlight: 1, Now: func() time.Time { return time.Unix(1e9, 0) }})
	sum := p.Run(context.Background(), []Stream{&fakeStream{key: "a", n: 100, size: 10}})
	if sum.Streams[0].Status != StatusFailed {
		t.Fatalf("status %s", sum.Streams[0].Status)
	}
	if got := store.cursor("a"); got != 50 {
		t.Fatalf("checkpoint at %d, want 50: everything before the failed batch", got)
	}
}

// closingStream's readers implement io.Closer and count their closes.
type closingStream struct {
	fakeStream
	opened, closed atomic.Int32
}

type closingReader struct {
	*fakeReader
	s *closingStream
}

func (r closingReader) Close() error { r.s.closed.Add(1); return nil }

func (s *closingStream) Open(ctx context.Context, cursor []byte) (Reader, error) {
	rd, err := s.fakeStream.Open(ctx, cursor)
	if err != nil {
		return nil, err
	}
	s.opened.Add(1)
	return closingReader{fakeReader: rd.(*fakeReader), s: s}, nil
}

// TestReadersThatHoldSomethingAreClosed: a reader that implements
// io.Closer (a download between pages) is closed once the stream asks no
// more of it, whether it reached the end or failed.
func TestReadersThatHoldSomethingAreClosed(t *testing.T) {
	done := &closingStream{fakeStream: fakeStream{key: "done", n: 20, size: 5}}
	failed := &closingStream{fakeStream: fakeStream{key: "failed", n: 20, size: 5, failFetch: func(call int) error {
		if call > 2 {
			return Permanent(errors.New("HTTP 403"))
		}
		return nil
	}}}
	sum := newTestPipeline(t, newMemStore(), &memDLQ{}, newMemSink(nil)).Run(context.Background(), []Stream{done, failed})
	if sum.Streams[0].Status != StatusDone || sum.Streams[1].Status != StatusFailed {
		t.Fatalf("statuses %s %s", sum.Streams[0].Status, sum.Streams[1].Status)
	}
	for _, s := range []*closingStream{done, failed} {
		if s.opened.Load() == 0 || s.opened.Load() != s.closed.Load() {
			t.Errorf("stream %s: %d readers opened, %d closed", s.key, s.opened.Load(), s.closed.Load())
		}
	}
}
