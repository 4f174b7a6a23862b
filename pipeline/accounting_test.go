package pipeline

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// accountingStream serves pages that mix every fate a record can have:
// records to map (some malformed), records the reader refused, records a
// rule excluded and records listed again.
type accountingStream struct {
	fakeStream
	pages int
}

func (s *accountingStream) Open(context.Context, []byte) (Reader, error) {
	return &accountingReader{s: s}, nil
}

type accountingReader struct {
	s *accountingStream
	i int
}

func (r *accountingReader) Next(context.Context) (Page, error) {
	if r.i >= r.s.pages {
		return Page{}, io.EOF
	}
	r.i++
	base := r.i * 10
	p := Page{Cursor: []byte(strconv.Itoa(r.i)), Skipped: 2, Excluded: Excluded{BeforeStart: 1, AfterEnd: int64(r.i % 2)}}
	for k := base; k < base+5; k++ {
		p.Records = append(p.Records, []byte(strconv.Itoa(k)))
	}
	p.Invalid = []Invalid{{Raw: []byte(`{"id":1e99}`), Reason: fmt.Sprintf("id out of order on page %d", r.i)}}
	return p, nil
}

func TestEveryRecordIsAccountedFor(t *testing.T) {
	// Every page: 5 records (record 10k+3 malformed, and the sink refuses
	// 10k+4), 1 refused by the reader, 1 or 2 excluded, 2 listed again.
	rejectAll := func(_ int, b *Batch) error {
		rej := &RejectedError{Reasons: map[int]string{}}
		for i, ev := range b.Events {
			if ev.ID[len(ev.ID)-1] == '4' {
				rej.Reasons[i] = "too large"
			}
		}
		if len(rej.Reasons) == 0 {
			return nil
		}
		return rej
	}
	s := &accountingStream{fakeStream: fakeStream{key: "acc", bad: map[int]bool{}}, pages: 9}
	for i := 1; i <= s.pages; i++ {
		s.bad[i*10+3] = true
	}
	store, dlq := newMemStore(), &memDLQ{}
	// Two sinks that both refuse the same events: each refused record is
	// still one record.
	sum := newTestPipeline(t, store, dlq, newMemSink(rejectAll), newMemSink(rejectAll)).Run(context.Background(), []Stream{s})
	if err := sum.Err(); err != nil {
		t.Fatal(err)
	}
	r := sum.Streams[0]
	want := StreamResult{Fetched: 9*(5+1) + 9 + 5, Delivered: 9 * 3, DeadLettered: 9 * 3, Duplicates: 18,
		Excluded: Excluded{BeforeStart: 9, AfterEnd: 5}}
	if r.Fetched != want.Fetched || r.Delivered != want.Delivered || r.DeadLettered != want.DeadLettered ||
		r.Duplicates != want.Duplicates || r.Excluded != want.Excluded {
		t.Fatalf("result %+v, want counts %+v", r, want)
	}
	if !r.Accounted() {
		t.Fatalf("fetched %d != delivered %d + dead-lettered %d + excluded %d", r.Fetched, r.Delivered, r.DeadLettered, r.Excluded.Total())
	}
	if r.Committed != r.Fetched {
		t.Errorf("committed %d, fetched %d", r.Committed, r.Fetched)
	}
	stages := map[string]int{}
	for _, l := range dlq.letters {
		stages[l.Stage]++
		if l.Stage == "read" && (string(l.Original) != `{"id":1e99}` || l.Reason == "") {
			t.Errorf("read dead letter %+v", l)
		}
	}
	if stages["read"] != 9 || stages["map"] != 9 || stages["sink:sink0"] != 9 || stages["sink:sink1"] != 9 {
		t.Errorf("dead letters by stage %v", stages)
	}
}

// bigStream serves pages of size records of 1 MiB each.
type bigStream struct {
	key   string
	pages int
}

func (s *bigStream) Key() string { return s.key }
func (s *bigStream) Open(context.Context, []byte) (Reader, error) {
	return &bigReader{s: s}, nil
}
func (s *bigStream) Map(raw []byte, ev *Event) error {
	ev.ID = s.key + "-" + strconv.Itoa(int(raw[0]))
	ev.Doc = append(ev.Doc, raw...)
	return nil
}

type bigReader struct {
	s *bigStream
	i int
}

func (r *bigReader) Next(context.Context) (Page, error) {
	if r.i >= r.s.pages {
		return Page{}, io.EOF
	}
	r.i++
	rec := make([]byte, 1<<20)
	rec[0] = byte(r.i)
	return Page{Records: [][]byte{rec}, Cursor: []byte(strconv.Itoa(r.i))}, nil
}

// heldSink tracks the largest number of bytes of events it held at once
// while writes are slow.
type heldSink struct {
	cur, peak atomic.Int64
	mu        sync.Mutex
	gate      chan struct{}
}

func (s *heldSink) Write(_ context.Context, b *Batch) error {
	var n int64
	for _, ev := range b.Events {
		n += int64(len(ev.Doc))
	}
	c := s.cur.Add(n)
	s.mu.Lock()
	s.peak.Store(max(s.peak.Load(), c))
	s.mu.Unlock()
	<-s.gate
	s.cur.Add(-n)
	return nil
}
func (s *heldSink) Close(context.Context) error { return nil }

func TestByteBudgetBoundsPagesInFlightAcrossStreams(t *testing.T) {
	// Pages of 1 MiB records weigh 3 MiB each against the budget: with
	// 8 MiB, at most two pages of all streams together may be past the
	// fetch stage, whatever Queue and InFlight allow.
	sink := &heldSink{gate: make(chan struct{})}
	go func() {
		for range 4 * 6 {
			sink.gate <- struct{}{}
		}
	}()
	p, err := New(Config{Outputs: []Output{{"held", sink}}, Store: newMemStore(), DeadLetter: &memDLQ{}, Backoff: fastBackoff,
		MaxBatch: 1, InFlight: 4, Queue: 8, Parallel: 4, MaxBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var streams []Stream
	for i := range 4 {
		streams = append(streams, &bigStream{key: "big" + strconv.Itoa(i), pages: 6})
	}
	sum := p.Run(context.Background(), streams)
	if err := sum.Err(); err != nil {
		t.Fatal(err)
	}
	for _, r := range sum.Streams {
		if r.Delivered != 6 || !r.Accounted() {
			t.Errorf("stream %s: %+v", r.Stream, r)
		}
	}
	if peak := sink.peak.Load(); peak > 2<<20 {
		t.Errorf("sinks held %d MiB at once, budget allows 2 pages of 1 MiB", peak>>20)
	}
}

func TestPageLargerThanTheBudgetStillPasses(t *testing.T) {
	p, err := New(Config{Outputs: []Output{{"m", newMemSink(nil)}}, Store: newMemStore(), DeadLetter: &memDLQ{}, Backoff: fastBackoff, MaxBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	sum := p.Run(context.Background(), []Stream{&bigStream{key: "huge", pages: 3}, &bigStream{key: "huge2", pages: 3}})
	if err := sum.Err(); err != nil {
		t.Fatal(err)
	}
	for _, r := range sum.Streams {
		if r.Delivered != 3 {
			t.Errorf("%s delivered %d of 3", r.Stream, r.Delivered)
		}
	}
}
