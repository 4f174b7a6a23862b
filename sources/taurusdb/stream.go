package taurusdb

import (
	"cmp"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// Dataset is event.dataset for TaurusDB audit log files.
const Dataset = "huaweicloud.taurusdb_audit"

// MaxSpan is the longest start_time..end_time range the API accepts.
const MaxSpan = 30 * 24 * time.Hour

// DefaultLookback is how far before each window a query starts when
// Options.Lookback is zero: the longest audit log file (end_time −
// begin_time) the reader expects. The documents do not say whether the
// start_time/end_time filter applies to a file's begin_time, its end_time
// or to any overlap; the reader keys files by end_time, so under a
// begin_time filter a file is listed in its own window only if the query
// reaches back to its begin. A file seen spanning longer raises the
// look-back (kept in the checkpoint); files longer than 15 days can be
// missed under a begin_time filter.
const DefaultLookback = 24 * time.Hour

// Stream reads the audit log files of one TaurusDB instance. Its Key is
// "taurusdb/{instance}"; Open starts after a window.Cursor, or at the
// start time when the cursor is nil.
type Stream struct {
	window.Stream

	api      huaweiapi.Doer
	endpoint string
	project  string
	region   string
	instance string
	now      func() time.Time
}

// Options are the reading settings the streams of a run share.
type Options struct {
	// Window is the shared windowing configuration.
	Window window.Config
	// Start is where a stream without checkpoint begins (zero: MaxSpan
	// before the target).
	Start time.Time
	// End, when not zero, is where the streams stop, exclusive (backfill's
	// range end): see window.Options.End.
	End time.Time
	// Lookback is how far before each window a query starts. Zero:
	// DefaultLookback.
	Lookback time.Duration
	// Now fixes each run's target and stamps event.ingested.
	Now func() time.Time
}

// Streams returns one stream per configured instance. win is the shared
// windowing configuration; start is where a stream without checkpoint
// begins; now decides which windows have settled and stamps event.ingested.
func Streams(cfg Config, win window.Config, api huaweiapi.Doer, region, project string, start time.Time, now func() time.Time) []*Stream {
	return NewStreams(cfg, api, region, project, Options{Window: win, Start: start, Now: now})
}

// NewStreams returns one stream per configured instance, read as o says.
func NewStreams(cfg Config, api huaweiapi.Doer, region, project string, o Options) []*Stream {
	if o.Lookback <= 0 {
		o.Lookback = cmp.Or(cfg.Lookback, DefaultLookback)
	}
	now := o.Now
	var out []*Stream
	for _, ins := range cfg.Instances {
		s := &Stream{
			api:      api,
			endpoint: cfg.endpoint(region),
			project:  project,
			region:   region,
			instance: ins,
			now:      now,
		}
		s.Stream = window.NewStream(window.Options{
			Key:      "taurusdb/" + ins,
			Start:    o.Start,
			End:      o.End,
			Config:   o.Window,
			MaxSpan:  MaxSpan,
			Lookback: o.Lookback,
			PageSize: cfg.PageSize,
			Now:      now,
			Fetch:    s.fetch,
		})
		out = append(out, s)
	}
	return out
}
