package pipeline

import "time"

// Observer is told what a run does, for metrics. Every method may be called
// from several goroutines at once and must return quickly. Config.Observer
// is optional: nil observes nothing.
type Observer interface {
	// Fetched reports one page read from stream's API with n records.
	Fetched(stream string, n int)
	// FetchFailed reports one failed attempt to read a page, whether it
	// will be retried or not.
	FetchFailed(stream string, err error)
	// Retried reports a failure of op ("fetch", "write to NAME", "dead
	// letter", "save checkpoint", "load checkpoint") that will be retried.
	Retried(stream, op string, err error)
	// Written reports n events sink accepted.
	Written(stream, sink string, n int)
	// DeadLettered reports n records stored as dead letters at stage
	// ("map" or "sink:NAME").
	DeadLettered(stream, stage string, n int)
	// BatchDelivered reports a batch of n events written to every sink and
	// its dead letters stored, d after its delivery began.
	BatchDelivered(stream string, n int, d time.Duration)
	// Committed reports a checkpoint saved for records more records; newest
	// is the newest event time they hold (zero when none was mapped).
	Committed(stream string, records int64, newest time.Time)
}

type nopObserver struct{}

func (nopObserver) Fetched(string, int)                       {}
func (nopObserver) FetchFailed(string, error)                 {}
func (nopObserver) Retried(string, string, error)             {}
func (nopObserver) Written(string, string, int)               {}
func (nopObserver) DeadLettered(string, string, int)          {}
func (nopObserver) BatchDelivered(string, int, time.Duration) {}
func (nopObserver) Committed(string, int64, time.Time)        {}

// ProgressObserver is an Observer that also follows how much each stream
// has left to read. The pipeline calls Progress when the Observer
// implements it (as http.Flusher extends a ResponseWriter), so observers
// that only count, such as metrics, need not.
type ProgressObserver interface {
	// Progress reports the source's estimate of the records of stream
	// still to read (Page.Remaining) after each page, -1 when the source
	// cannot tell, and 0 once the stream is caught up.
	Progress(stream string, remaining int64)
}

// Observers returns an Observer that reports to each of obs in turn, and
// forwards Progress to those that implement ProgressObserver. Nil entries
// are left out.
func Observers(obs ...Observer) Observer {
	var t tee
	for _, o := range obs {
		if o != nil {
			t = append(t, o)
		}
	}
	return t
}

type tee []Observer

var _ ProgressObserver = tee(nil)

func (t tee) Fetched(stream string, n int) {
	for _, o := range t {
		o.Fetched(stream, n)
	}
}

func (t tee) FetchFailed(stream string, err error) {
	for _, o := range t {
		o.FetchFailed(stream, err)
	}
}

func (t tee) Retried(stream, op string, err error) {
	for _, o := range t {
		o.Retried(stream, op, err)
	}
}

func (t tee) Written(stream, sink string, n int) {
	for _, o := range t {
		o.Written(stream, sink, n)
	}
}

func (t tee) DeadLettered(stream, stage string, n int) {
	for _, o := range t {
		o.DeadLettered(stream, stage, n)
	}
}

func (t tee) BatchDelivered(stream string, n int, d time.Duration) {
	for _, o := range t {
		o.BatchDelivered(stream, n, d)
	}
}

func (t tee) Committed(stream string, records int64, newest time.Time) {
	for _, o := range t {
		o.Committed(stream, records, newest)
	}
}

func (t tee) Progress(stream string, remaining int64) {
	for _, o := range t {
		if p, ok := o.(ProgressObserver); ok {
			p.Progress(stream, remaining)
		}
	}
}
