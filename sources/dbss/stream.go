package dbss

import (
	"sync/atomic"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// Dataset is event.dataset for DBSS operation logs.
const Dataset = "huaweicloud.dbss_operation"

// MaxSpan bounds one query's time range. The API documents no limit; its
// largest preset range is a month, so windows stay within 30 days.
const MaxSpan = 30 * 24 * time.Hour

// Stream reads one kind of log of one DBSS instance. Its Key is
// "dbss/{instance}" for the operation logs, "dbss/{instance}/sql" and
// "dbss/{instance}/alarm" for the others; Open starts after a
// window.Cursor, or at the start time when the cursor is nil.
type Stream struct {
	window.Stream

	api      huaweiapi.Doer
	endpoint string
	project  string
	region   string
	instance string
	kind     Kind
	now      func() time.Time

	// legacy is set once the current path could not serve a request (see
	// cannotServe) and the documented one worked; the stream then keeps
	// using the documented path.
	legacy atomic.Bool
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
	// Now fixes each run's target and stamps event.ingested.
	Now func() time.Time
}

// Streams returns one stream per configured instance and kind (see
// Config.Streams), instance by instance in the order operation, sql, alarm. win is the shared
// windowing configuration; start is where a stream without checkpoint
// begins; now decides which windows have settled and stamps event.ingested.
func Streams(cfg Config, win window.Config, api huaweiapi.Doer, region, project string, start time.Time, now func() time.Time) []*Stream {
	return NewStreams(cfg, api, region, project, Options{Window: win, Start: start, Now: now})
}

// NewStreams returns one stream per configured instance and kind, read as
// o says. cfg must have passed Validate: with Streams invalid, only the
// operation streams are built.
func NewStreams(cfg Config, api huaweiapi.Doer, region, project string, o Options) []*Stream {
	kinds, err := cfg.kinds()
	if err != nil {
		kinds = []Kind{Operation}
	}
	var out []*Stream
	for _, ins := range cfg.Instances {
		for _, k := range kinds {
			out = append(out, newStream(cfg, api, region, project, o, ins, k))
		}
	}
	return out
}

// ListCap is the most records the SQL audit and alarm lists are taken to
// return of one query (the console: "a maximum of 10,000 records can be
// retrieved in a query"), their total possibly capped at it too.
const ListCap = 10_000

func newStream(cfg Config, api huaweiapi.Doer, region, project string, o Options, ins string, k Kind) *Stream {
	now := o.Now
	if k != Operation && o.Window.MaxRecords >= ListCap {
		// A window is split when its total is above MaxRecords: below the
		// cap, a window the API cannot list whole (or whose total was cut
		// to the cap) is split instead of failing for ever or looking
		// whole. Only a single second holding more stays unreadable.
		o.Window.MaxRecords = ListCap - 1
	}
	s := &Stream{
		api:      api,
		endpoint: cfg.endpoint(region),
		project:  project,
		region:   region,
		instance: ins,
		kind:     k,
		now:      now,
	}
	s.Stream = window.NewStream(window.Options{
		Key:      k.key(ins),
		Start:    o.Start,
		End:      o.End,
		Config:   o.Window,
		MaxSpan:  MaxSpan,
		PageSize: cfg.PageSize,
		Now:      now,
		Fetch:    s.fetch,
	})
	return s
}

// Kind is the kind of log the stream reads.
func (s *Stream) Kind() Kind { return s.kind }

// Dataset is the event.dataset of the stream's events.
func (s *Stream) Dataset() string { return s.kind.dataset() }

// UsesLegacyPath reports whether the stream fell back to its kind's older
// path (for the operation logs the retiring
// /v1/{project_id}/{instance_id}/dbss/audit/operate-log).
func (s *Stream) UsesLegacyPath() bool { return s.legacy.Load() }
