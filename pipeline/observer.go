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
