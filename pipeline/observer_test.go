package pipeline

import (
	"context"
	"errors"
	"strconv"
	"strings"
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

// observer sets every hook but Progress.
func (o *countingObserver) observer() Observer {
	return Observer{
		Fetched: func(_ string, n int) {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.fetched += n
			o.pages++
		},
		FetchFailed: func(string, error) {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.fetchFails++
		},
		Retried: func(_, op string, _ error) {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.retries[op]++
		},
		Written: func(_, sink string, n int) {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.written[sink] += n
		},
		DeadLettered: func(_, stage string, n int) {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.dead[stage] += n
		},
		BatchDelivered: func(_ string, n int, _ time.Duration) {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.batches++
			o.batchEvents += n
		},
		Committed: func(_ string, records int64, newest time.Time) {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.committed += records
			if newest.After(o.newest) {
				o.newest = newest
			}
		},
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
		Backoff: fastBackoff, MaxBatch: 7, InFlight: 1, Observer: obs.observer()})
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

// Observers calls each observer's hook in turn, skips hooks an observer
// leaves nil, and leaves a hook nil when no observer sets it; a pipeline
// with only some hooks set (or none) runs.
func TestObserversCombine(t *testing.T) {
	var calls []string
	a := Observer{Fetched: func(s string, n int) { calls = append(calls, "a.Fetched "+s+" "+strconv.Itoa(n)) }}
	b := Observer{
		Fetched:  func(s string, n int) { calls = append(calls, "b.Fetched "+s+" "+strconv.Itoa(n)) },
		Progress: func(s string, left int64) { calls = append(calls, "b.Progress "+s+" "+strconv.FormatInt(left, 10)) },
	}
	o := Observers(a, Observer{}, b)
	o.fetched("s", 3)
	o.progress("s", 7)
	o.committed("s", 1, time.Time{}) // no observer has Committed: skipped
	want := []string{"a.Fetched s 3", "b.Fetched s 3", "b.Progress s 7"}
	if strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Errorf("calls %q, want %q", calls, want)
	}
	if o.Committed != nil || o.Written != nil {
		t.Error("a hook no observer sets is not nil")
	}
	if Observers().Fetched != nil {
		t.Error("Observers() sets a hook")
	}

	for _, obs := range []Observer{{}, {Committed: func(string, int64, time.Time) {}}} {
		p, err := New(Config{Outputs: []Output{{Name: "mem", Sink: newMemSink(nil)}}, Store: newMemStore(), DeadLetter: &memDLQ{},
			Backoff: fastBackoff, Observer: obs})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Run(context.Background(), []Stream{&fakeStream{key: "a", n: 10, size: 4}}).Err(); err != nil {
			t.Errorf("run with observer %+v: %v", obs, err)
		}
	}
}
