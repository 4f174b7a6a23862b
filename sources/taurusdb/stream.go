package taurusdb

import (
	"context"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// Dataset is event.dataset for TaurusDB audit log files.
const Dataset = "huaweicloud.taurusdb_audit"

// MaxSpan is the longest start_time..end_time range the API accepts.
const MaxSpan = 30 * 24 * time.Hour

// Doer sends one API request; *huaweiapi.Client implements it.
type Doer interface {
	Do(ctx context.Context, req huaweiapi.Request) ([]byte, error)
}

// Stream reads the audit log files of one TaurusDB instance. Its Key is
// "taurusdb/{instance}"; Open starts after a window.Cursor, or at the
// start time when the cursor is nil.
type Stream struct {
	window.Stream

	api      Doer
	endpoint string
	project  string
	region   string
	instance string
	now      func() time.Time
}

// Streams returns one stream per configured instance. win is the shared
// windowing configuration; start is where a stream without checkpoint
// begins; now decides which windows have settled and stamps event.ingested.
func Streams(cfg Config, win window.Config, api Doer, region, project string, start time.Time, now func() time.Time) []*Stream {
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
			Start:    start,
			Config:   win,
			MaxSpan:  MaxSpan,
			PageSize: cfg.PageSize,
			Now:      now,
			Fetch:    s.fetch,
		})
		out = append(out, s)
	}
	return out
}
