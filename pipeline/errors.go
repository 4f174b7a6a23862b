package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Errors are retryable unless marked otherwise: a transient network fault,
// a 429 or a 5xx must never lose data, so the default is to back off and try
// again. Code that knows a failure cannot heal (a 400, a record that does not
// parse, a credential the gateway refused twice) wraps it with Permanent.

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// RetryAfterError is a retryable error whose origin asked for a minimum wait,
// such as an HTTP 429 with a Retry-After header.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns the wait that err asks for, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}

// RejectedError reports events of a batch that a sink will never accept.
// The other events of the batch were stored.
type RejectedError struct {
	// Reasons maps an index into Batch.Events to why the sink refused it.
	Reasons map[int]string
}

func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d event(s) rejected", len(e.Reasons))
	if len(e.Reasons) > 0 {
		first := slices.Min(slices.Collect(maps.Keys(e.Reasons)))
		fmt.Fprintf(&b, "; first, event %d: %s", first, e.Reasons[first])
	}
	return b.String()
}
