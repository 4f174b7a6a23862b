package artifact

import (
	"context"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
)

// Dataset is event.dataset for CodeArts Artifact audit logs.
const Dataset = "huaweicloud.artifact_audit"

// Stream reads the audit logs of one repository or file store.
type Stream struct {
	api      huaweiapi.Doer
	endpoint string
	project  string
	region   string
	tenant   string
	module   string
	repo     string
	loc      *time.Location
	pageSize int
	inFlight int // requests kept in flight while catching up
	start    time.Time
	end      time.Time // zero: no end
	now      func() time.Time
}

// Streams returns one stream per configured module/repo. start is where a
// stream without checkpoint begins; now stamps event.ingested. cfg must
// have passed Validate.
func Streams(cfg Config, api huaweiapi.Doer, region, project string, start time.Time, now func() time.Time) []*Stream {
	loc, err := parseZone(cfg.Timezone)
	if err != nil {
		loc = time.FixedZone("UTC+08:00", 8*3600)
	}
	var out []*Stream
	for _, r := range cfg.Repos {
		module, repo, err := splitRepo(r)
		if err != nil {
			continue
		}
		out = append(out, &Stream{
			api:      api,
			endpoint: cfg.endpoint(region),
			project:  project,
			region:   region,
			tenant:   cfg.TenantID,
			module:   module,
			repo:     repo,
			loc:      loc,
			pageSize: cfg.PageSize,
			inFlight: cfg.Concurrency,
			start:    start,
			now:      now,
		})
	}
	return out
}

// Key is "artifact/{module}/{repo}".
func (s *Stream) Key() string { return "artifact/" + s.module + "/" + s.repo }

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
