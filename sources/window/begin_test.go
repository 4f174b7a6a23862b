package window

import "time"

// Setters for the fields that issue 10 added, kept apart so that the tests
// can be run against the reader as it was before (with no-op setters) to
// show that they fail there.

func setBegin(r *Record, b time.Time)         { r.Begin = b }
func setEnd(o *Options, end time.Time)        { o.End = end }
func setLookback(o *Options, d time.Duration) { o.Lookback = d }
