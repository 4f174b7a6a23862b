package taurusdb

import (
	"context"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
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

// Stream reads the audit log files of one TaurusDB instance.
type Stream struct {
	api      Doer
	endpoint string
	project  string
	region   string
	instance string
	pageSize int
	win      window.Config
	start    time.Time
	now      func() time.Time
}

// Streams returns one stream per configured instance. win is the shared
// windowing configuration; start is where a stream without checkpoint
// begins; now decides which windows have settled and stamps event.ingested.
func Streams(cfg Config, win window.Config, api Doer, region, project string, start time.Time, now func() time.Time) []*Stream {
	var out []*Stream
	for _, ins := range cfg.Instances {
		out = append(out, &Stream{
			api:      api,
			endpoint: cfg.endpoint(region),
			project:  project,
			region:   region,
			instance: ins,
			pageSize: cfg.PageSize,
			win:      win,
			start:    start,
			now:      now,
		})
	}
	return out
}

// Key is "taurusdb/{instance}".
func (s *Stream) Key() string { return "taurusdb/" + s.instance }

// Open starts after cursor (a window.Cursor), or at the start time when
// cursor is nil.
func (s *Stream) Open(_ context.Context, cursor []byte) (pipeline.Reader, error) {
	return window.NewReader(window.Options{
		Key:      s.Key(),
		Start:    s.start,
		Config:   s.win,
		MaxSpan:  MaxSpan,
		PageSize: s.pageSize,
		Now:      s.now,
		Fetch:    s.fetch,
	}, cursor)
}
