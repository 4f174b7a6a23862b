package window

import (
	"context"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// Stream is the Key and Open half of a pipeline.Stream whose records a
// Reader delivers. Sources embed it and add their Map, so that every
// windowed source names its checkpoint and encodes its cursor the same way.
type Stream struct {
	o Options
}

// NewStream returns a stream keyed o.Key whose readers are NewReader(o, …).
// o.Fetch is typically a method value of the embedding source stream.
func NewStream(o Options) Stream { return Stream{o: o} }

// Key is Options.Key: the stream's checkpoint key.
func (s *Stream) Key() string { return s.o.Key }

// Open starts after cursor (a Cursor), or at Options.Start when cursor is
// nil.
func (s *Stream) Open(_ context.Context, cursor []byte) (pipeline.Reader, error) {
	return NewReader(s.o, cursor)
}

// EndAt bounds the stream's range (a backfill's --to): it sets
// Options.End for the readers opened after it.
func (s *Stream) EndAt(end time.Time) { s.o.End = end }

// Probe asks the API for the first window a reader without cursor would
// read, with the page shrunk to one record, through the stream's own
// Fetch: `exporter check` proves the request a run makes. It returns the
// API's count of records in that window (-1 for an API paged by marker,
// which gives none); asked is false when there is nothing to ask yet (the
// start lies within the settle delay).
func (s *Stream) Probe(ctx context.Context) (total int64, asked bool, err error) {
	r, err := NewReader(s.o, nil)
	if err != nil {
		return 0, false, err
	}
	from := r.through
	span := min(r.span, r.maxWindow(), r.target.Sub(from))
	if span <= 0 {
		return 0, false, nil
	}
	qFrom, qTo := r.query(from, from.Add(span))
	if s.o.FetchMarker != nil {
		// A marker-paged API gives no count: total is -1.
		_, _, err = s.o.FetchMarker(ctx, qFrom, qTo, "", 1)
		return -1, true, err
	}
	_, total, err = s.o.Fetch(ctx, qFrom, qTo, 0, 1)
	return total, err == nil, err
}
