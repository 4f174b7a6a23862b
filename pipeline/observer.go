package pipeline

import "time"

// Observer is told what a run does, for metrics and progress: a set of
// optional hooks, as net/http/httptrace.ClientTrace is. A consumer sets the
// hooks it cares about; the pipeline skips the nil ones, so the zero
// Observer observes nothing. Every hook may be called from several
// goroutines at once and must return quickly. Observers combines several.
type Observer struct {
	// Fetched reports one page read from stream's API with n records.
	Fetched func(stream string, n int)
	// FetchFailed reports one failed attempt to read a page, whether it
	// will be retried or not.
	FetchFailed func(stream string, err error)
	// Progress reports the source's estimate of the records of stream
	// still to read (Page.Remaining) after each page, -1 when the source
	// cannot tell, and 0 once the stream is caught up.
	Progress func(stream string, remaining int64)
	// Retried reports a failure of op ("fetch", "write to NAME", "dead
	// letter", "save checkpoint", "load checkpoint") that will be retried.
	Retried func(stream, op string, err error)
	// Written reports n events sink accepted.
	Written func(stream, sink string, n int)
	// DeadLettered reports n records stored as dead letters at stage
	// ("map" or "sink:NAME").
	DeadLettered func(stream, stage string, n int)
	// BatchDelivered reports a batch of n events written to every sink and
	// its dead letters stored, d after its delivery began.
	BatchDelivered func(stream string, n int, d time.Duration)
	// Committed reports a checkpoint saved for records more records; newest
	// is the newest event time they hold (zero when none was mapped).
	Committed func(stream string, records int64, newest time.Time)
}

// Observers returns an Observer whose every hook calls that hook of each of
// obs in turn; a hook none of them sets stays nil.
func Observers(obs ...Observer) Observer {
	return Observer{
		Fetched:        join(obs, func(o Observer) func(string, int) { return o.Fetched }),
		FetchFailed:    join(obs, func(o Observer) func(string, error) { return o.FetchFailed }),
		Progress:       join(obs, func(o Observer) func(string, int64) { return o.Progress }),
		Retried:        join3(obs, func(o Observer) func(string, string, error) { return o.Retried }),
		Written:        join3(obs, func(o Observer) func(string, string, int) { return o.Written }),
		DeadLettered:   join3(obs, func(o Observer) func(string, string, int) { return o.DeadLettered }),
		BatchDelivered: join3(obs, func(o Observer) func(string, int, time.Duration) { return o.BatchDelivered }),
		Committed:      join3(obs, func(o Observer) func(string, int64, time.Time) { return o.Committed }),
	}
}

// join combines the two-argument hooks of obs; nil when none is set.
func join[A, B any](obs []Observer, get func(Observer) func(A, B)) func(A, B) {
	var hs []func(A, B)
	for _, o := range obs {
		if h := get(o); h != nil {
			hs = append(hs, h)
		}
	}
	switch len(hs) {
	case 0:
		return nil
	case 1:
		return hs[0]
	}
	return func(a A, b B) {
		for _, h := range hs {
			h(a, b)
		}
	}
}

// join3 combines the three-argument hooks of obs; nil when none is set.
func join3[A, B, C any](obs []Observer, get func(Observer) func(A, B, C)) func(A, B, C) {
	var hs []func(A, B, C)
	for _, o := range obs {
		if h := get(o); h != nil {
			hs = append(hs, h)
		}
	}
	switch len(hs) {
	case 0:
		return nil
	case 1:
		return hs[0]
	}
	return func(a A, b B, c C) {
		for _, h := range hs {
			h(a, b, c)
		}
	}
}

// The pipeline calls its observer through these, which skip nil hooks.

func (o *Observer) fetched(stream string, n int) {
	if o.Fetched != nil {
		o.Fetched(stream, n)
	}
}

func (o *Observer) fetchFailed(stream string, err error) {
	if o.FetchFailed != nil {
		o.FetchFailed(stream, err)
	}
}

func (o *Observer) progress(stream string, remaining int64) {
	if o.Progress != nil {
		o.Progress(stream, remaining)
	}
}

func (o *Observer) retried(stream, op string, err error) {
	if o.Retried != nil {
		o.Retried(stream, op, err)
	}
}

func (o *Observer) written(stream, sink string, n int) {
	if o.Written != nil {
		o.Written(stream, sink, n)
	}
}

func (o *Observer) deadLettered(stream, stage string, n int) {
	if o.DeadLettered != nil {
		o.DeadLettered(stream, stage, n)
	}
}

func (o *Observer) batchDelivered(stream string, n int, d time.Duration) {
	if o.BatchDelivered != nil {
		o.BatchDelivered(stream, n, d)
	}
}

func (o *Observer) committed(stream string, records int64, newest time.Time) {
	if o.Committed != nil {
		o.Committed(stream, records, newest)
	}
}
