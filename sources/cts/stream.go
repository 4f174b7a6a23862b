package cts

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// Dataset is event.dataset for CTS traces.
const Dataset = "huaweicloud.cts"

// Retention is how long CTS keeps traces: the last seven days.
const Retention = 7 * 24 * time.Hour

// MaxSpan bounds one query's time range. The API documents none beyond
// the seven days it keeps; a day keeps a sparse stream's queries few and
// the look-back (at most MaxSpan/2) long enough for any delay CTS has.
const MaxSpan = 24 * time.Hour

// Stream reads the traces of one trace type of one project. Its Key is
// "cts/{project_id}/{trace_type}"; Open starts after a window.Cursor, or
// at the start time when the cursor is nil, but never before the oldest
// trace CTS keeps (see Retention).
type Stream struct {
	window.Stream

	api       huaweiapi.Doer
	endpoint  string
	project   string
	region    string
	traceType string
	lookback  time.Duration // Config.Lookback
	now       func() time.Time

	mu  sync.Mutex
	log *slog.Logger
	// warnedTo is the oldest trace kept when the last retention warning
	// was logged (zero: none was): the traces before it were reported
	// gone, so a reopening only warns of those after it.
	warnedTo time.Time
	gap      [2]time.Time
}

// Options are the reading settings the streams of a run share.
type Options struct {
	// Window is the shared windowing configuration.
	Window window.Config
	// Start is where a stream without checkpoint begins (zero: MaxSpan
	// before the target); a start older than Retention begins at the
	// oldest trace kept.
	Start time.Time
	// End, when not zero, is where the streams stop, exclusive (backfill's
	// range end): see window.Options.End.
	End time.Time
	// Now fixes each run's target, judges the retention and stamps
	// event.ingested.
	Now func() time.Time
	// Logger receives the retention warning. Default: discard; SetLogger
	// sets it later.
	Logger *slog.Logger
}

// Streams returns one stream per configured trace type of project. win is
// the shared windowing configuration; start is where a stream without
// checkpoint begins; now decides which windows have settled and stamps
// event.ingested.
func Streams(cfg Config, win window.Config, api huaweiapi.Doer, region, project string, start time.Time, now func() time.Time) []*Stream {
	return NewStreams(cfg, api, region, project, Options{Window: win, Start: start, Now: now})
}

// NewStreams returns one stream per configured trace type, read as o says.
// It returns none when cfg is not Enabled.
func NewStreams(cfg Config, api huaweiapi.Doer, region, project string, o Options) []*Stream {
	if !cfg.Enabled {
		return nil
	}
	var out []*Stream
	for _, typ := range cfg.types() {
		s := &Stream{
			api:       api,
			endpoint:  cfg.endpoint(region),
			project:   project,
			region:    region,
			traceType: typ,
			lookback:  cfg.Lookback,
			now:       o.Now,
			log:       o.Logger,
		}
		s.Stream = window.NewStream(window.Options{
			Key:         "cts/" + project + "/" + typ,
			Start:       o.Start,
			End:         o.End,
			Config:      o.Window,
			MaxSpan:     MaxSpan,
			Lookback:    cfg.Lookback,
			PageSize:    cfg.PageSize,
			Now:         o.Now,
			FetchMarker: s.fetch,
		})
		out = append(out, s)
	}
	return out
}

// SetLogger sets where the retention warning goes.
func (s *Stream) SetLogger(l *slog.Logger) {
	s.mu.Lock()
	s.log = l
	s.mu.Unlock()
}

// TraceType is "system" or "data".
func (s *Stream) TraceType() string { return s.traceType }

// Open starts after cursor (a window.Cursor), or at Options.Start when
// cursor is nil. When that position is older than the oldest trace CTS
// keeps (now − Retention), the stream starts there instead and logs a
// warning naming the stream and the range whose traces can no longer be
// read, once per range (a later reopening warns of the traces that aged out
// since): nothing the API still lists is skipped, but what it dropped is
// gone.
func (s *Stream) Open(ctx context.Context, cursor []byte) (pipeline.Reader, error) {
	oldest := s.now().UTC().Add(-Retention).Truncate(time.Second).Add(time.Second)
	from, what := time.Time{}, "checkpoint"
	var c window.Cursor
	if cursor != nil {
		var err error
		if c, err = window.DecodeCursor(cursor); err != nil {
			// The window reader reports it, naming the stream.
			return s.Stream.Open(ctx, cursor)
		}
		from = c.Through
	} else {
		rd, err := s.Stream.Open(ctx, nil)
		if err != nil {
			return nil, err
		}
		wr := rd.(*window.Reader)
		from, what = wr.Cursor().Through, "start time"
		if !from.Before(oldest) {
			return rd, nil
		}
	}
	if !from.Before(oldest) {
		return s.Stream.Open(ctx, cursor)
	}
	s.warn(what, from, oldest)
	c.Through = oldest
	return s.Stream.Open(ctx, c.Encode())
}

// warn logs that the traces of [from, oldest) are gone, except those an
// earlier warning of this stream reported: a stream reopened at the same
// old position a moment later warns once, but one whose position stays
// behind while traces keep ageing out (its runs fail, or read slower than
// CTS drops traces) reports each new loss, with gap its length.
func (s *Stream) warn(what string, from, oldest time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gap = [2]time.Time{from, oldest}
	lost := from
	if s.warnedTo.After(lost) {
		lost = s.warnedTo
	}
	if !oldest.After(lost) || s.log == nil {
		return
	}
	s.warnedTo = oldest
	s.log.Warn("CTS keeps traces for 7 days only: the stream starts at the oldest trace kept; the traces before it can no longer be exported",
		"stream", s.Key(), "from", what, "position", from.Format(time.RFC3339), "oldest_kept", oldest.Format(time.RFC3339),
		"gap", oldest.Sub(lost).Round(time.Second).String())
}

// Gap is the last range Open found older than the traces CTS keeps
// (zero times when none): the traces of [from, to) could not be read.
func (s *Stream) Gap() (from, to time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gap[0], s.gap[1]
}
