package pipeline

import "sync"

// tracker hands out sequence numbers to batches in the order they were read
// and tells which is the newest batch that may be committed: one that is
// resolved together with every batch before it. Batches resolve in any order
// when several are written at once; the commit never passes an unresolved one.
type tracker struct {
	mu       sync.Mutex
	next     uint64          // sequence number of the next batch
	low      uint64          // every batch below low is resolved
	resolved map[uint64]bool // resolved batches at or above low
}

func newTracker() *tracker {
	return &tracker{resolved: make(map[uint64]bool)}
}

// add registers a new batch and returns its sequence number.
func (t *tracker) add() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	seq := t.next
	t.next++
	return seq
}

// unresolved reports whether a batch was registered and not resolved yet.
func (t *tracker) unresolved() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.next > t.low
}

// resolve marks seq delivered. It returns the highest sequence number whose
// batch and all predecessors are delivered, and whether that moved forward.
func (t *tracker) resolve(seq uint64) (commit uint64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if seq < t.low {
		return 0, false
	}
	t.resolved[seq] = true
	start := t.low
	for t.resolved[t.low] {
		delete(t.resolved, t.low)
		t.low++
	}
	if t.low == start {
		return 0, false
	}
	return t.low - 1, true
}
