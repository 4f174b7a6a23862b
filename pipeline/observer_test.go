package pipeline

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

// countingObserver sums what the pipeline reports.
type countingObserver struct {
	mu                         sync.Mutex
	fetched, pages, fetchFails int
	retries                    map[string]int
	written                    map[string]int
	dead                       map[string]int
	batches, batchEvents       int
	committed                  int64
	newest                     time.Time
}

func newCountingObserver() *countingObserver {
	return &countingObserver{retries: map[string]int{}, written: map[string]int{}, dead: map[string]int{}}
}

func (o *countingObserver) Fetched(_ string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fetched += n
	o.pages++
}
func (o *countingObserver) FetchFailed(string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fetchFails++
}
func (o *countingObserver) Retried(_, op string, _ error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.retries[op]++
}
func (o *countingObserver) Written(_, sink string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.written[sink] += n
}
func (o *countingObserver) DeadLettered(_, stage string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dead[stage] += n
}
func (o *countingObserver) BatchDelivered(_ string, n int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.batches++
	o.batchEvents += n
}
func (o *countingObserver) Committed(_ string, records int64, newest time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.committed += records
	if newest.After(o.newest) {
		o.newest = newest
	}
}

// tsStream gives record k the event time base + k seconds.
type tsStream struct {
	*fakeStream
	base time.Time
}

func (s tsStream) Map(raw []byte, ev *Event) error {
	if err := s.fakeStream.Map(raw, ev); err != nil {
		return err
	}
	k, _ := strconv.Atoi(string(raw))
	ev.Timestamp = s.base.Add(time.Duration(k) * time.Second)
	return nil
}

func TestObserverSeesEverything(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	store, dlq := newMemStore(), &memDLQ{}
	writes := 0
	sink := newMemSink(func(_ int, b *Batch) error {
		writes++
		if writes == 1 {
			return errors.New("broker away")
		}
		for i, ev := range b.Events {
			if ev.ID == "a-5" {
				return &RejectedError{Reasons: map[int]string{i: "too large"}}
			}
		}
		return nil
	})
	s := tsStream{&fakeStream{key: "a", n: 40, size: 4, bad: map[int]bool{3: true}, failFetch: func(call int) error {
		if call == 2 {
			return errors.New("connection reset")
		}
		return nil
	}}, base}
	obs := newCountingObserver()
	p, err := New(Config{Outputs: []Output{{Name: "mem", Sink: sink}}, Store: store, DeadLetter: dlq,
		Backoff: fastBackoff, MaxBatch: 7, InFlight: 1, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background(), []Stream{s}).Err(); err != nil {
		t.Fatal(err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.fetched != 40 || obs.pages != 10 || obs.fetchFails != 1 {
		t.Errorf("fetched %d records in %d pages with %d failures; want 40, 10, 1", obs.fetched, obs.pages, obs.fetchFails)
	}
	if obs.retries["fetch"] != 1 || obs.retries["write to mem"] != 1 {
		t.Errorf("retries %v", obs.retries)
	}
	if obs.written["mem"] != 38 {
		t.Errorf("written %v, want mem: 38", obs.written)
	}
	if obs.dead["map"] != 1 || obs.dead["sink:mem"] != 1 {
		t.Errorf("dead letters %v", obs.dead)
	}
	if obs.batches == 0 || obs.batchEvents != 39 {
		t.Errorf("%d batches of %d events, want 39 events", obs.batches, obs.batchEvents)
	}
	if obs.committed != 40 || !obs.newest.Equal(base.Add(40*time.Second)) {
		t.Errorf("committed %d up to %s; want 40 up to %s", obs.committed, obs.newest, base.Add(40*time.Second))
	}
}
