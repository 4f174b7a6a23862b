package swr

import (
	"context"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
)

// Dataset is event.dataset for SWR audit logs.
const Dataset = "huaweicloud.swr_audit"

// Stream reads one operation's audit logs of one SWR instance.
type Stream struct {
	api       huaweiapi.Doer
	endpoint  string
	project   string
	region    string
	instance  string
	operation string
	pageSize  int
	inFlight  int // requests kept in flight while catching up
	start     time.Time
	end       time.Time // zero: no end
	now       func() time.Time
}

// Streams returns one stream per configured instance and operation.
// start is where a stream without checkpoint begins; now stamps
// event.ingested.
func Streams(cfg Config, api huaweiapi.Doer, region, project string, start time.Time, now func() time.Time) []*Stream {
	var out []*Stream
	for _, ins := range cfg.Instances {
		for _, op := range cfg.Operations {
			out = append(out, &Stream{
				api:       api,
				endpoint:  cfg.endpoint(region),
				project:   project,
				region:    region,
				instance:  ins,
				operation: op,
				pageSize:  cfg.PageSize,
				inFlight:  cfg.Concurrency,
				start:     start,
				now:       now,
			})
		}
	}
	return out
}

// Key is "swr/{instance}/{operation}".
func (s *Stream) Key() string { return "swr/" + s.instance + "/" + s.operation }

// EndAt bounds the stream's range: records at or after end are counted as
// excluded, and the reader stops soon after it (a backfill's --to). The
// reader decides by every record's time, so one record stamped wrongly
// cannot end the range early.
func (s *Stream) EndAt(end time.Time) { s.end = end }

// Probe asks for the newest record with the request code a run uses, so
// that `exporter check` proves what a run needs; it returns the API's
// count of the stream's records.
func (s *Stream) Probe(ctx context.Context) (total int64, asked bool, err error) {
	_, total, err = s.fetch(ctx, 0, 1)
	return total, err == nil, err
}

// Open starts after cursor, or at the start time when cursor is nil.
func (s *Stream) Open(_ context.Context, cursor []byte) (pipeline.Reader, error) {
	return s.newReader(cursor)
}
