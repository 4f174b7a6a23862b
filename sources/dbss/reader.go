package dbss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// bodyLayout is the documented yyyy-MM-dd HH:mm:ss request form, in UTC.
const bodyLayout = "2006-01-02 15:04:05"

type timeRange struct {
	StartTime string `json:"start_time"`
	EndTime   string `json:"end_time"`
}

// request is the documented body; page and size are strings.
type request struct {
	Time timeRange `json:"time"`
	Page string    `json:"page"`
	Size string    `json:"size"`
}

// apiPage is the 200 response body.
type apiPage struct {
	Total *int64            `json:"total_num"`
	Logs  []json.RawMessage `json:"operate_log"`
}

func (s *Stream) currentPath() string {
	return "/v1/" + s.project + "/audit/" + s.instance + "/operation-log"
}

func (s *Stream) legacyPath() string {
	return "/v1/" + s.project + "/" + s.instance + "/dbss/audit/operate-log"
}

// fetch reads one page of the operation logs of [from, to].
func (s *Stream) fetch(ctx context.Context, from, to time.Time, offset, limit int) ([]window.Record, int64, error) {
	body, err := json.Marshal(request{
		Time: timeRange{StartTime: from.UTC().Format(bodyLayout), EndTime: to.UTC().Format(bodyLayout)},
		Page: strconv.Itoa(offset/limit + 1),
		Size: strconv.Itoa(limit),
	})
	if err != nil {
		return nil, 0, pipeline.Permanent(err)
	}
	req := huaweiapi.Request{Method: http.MethodPost, Endpoint: s.endpoint, Path: s.currentPath(), Body: body}
	if s.legacy.Load() {
		req.Path = s.legacyPath()
	}
	resp, err := s.api.Do(ctx, req)
	if err != nil && !s.legacy.Load() && isNotFound(err) {
		req.Path = s.legacyPath()
		if old, oldErr := s.api.Do(ctx, req); oldErr == nil {
			s.legacy.Store(true)
			resp, err = old, nil
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("dbss instance %s page %d: %w", s.instance, offset/limit+1, err)
	}
	return decodePage(resp, s.instance, offset, limit)
}

func isNotFound(err error) bool {
	var e *huaweiapi.APIError
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// decodePage decodes a 200 body into records. A body that is not a page is
// a permanent error.
func decodePage(body []byte, instance string, offset, limit int) ([]window.Record, int64, error) {
	var p apiPage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, 0, pipeline.Permanent(fmt.Errorf("dbss instance %s offset %d: response is not an operation-log page: %w (body starts %q)", instance, offset, err, head(body)))
	}
	if p.Total == nil || *p.Total < 0 {
		return nil, 0, pipeline.Permanent(fmt.Errorf("dbss instance %s offset %d: response has no valid \"total_num\" (body starts %q)", instance, offset, head(body)))
	}
	if len(p.Logs) > limit {
		return nil, 0, pipeline.Permanent(fmt.Errorf("dbss instance %s offset %d: %d records for size %d", instance, offset, len(p.Logs), limit))
	}
	recs := make([]window.Record, len(p.Logs))
	for i, raw := range p.Logs {
		recs[i] = decodeKey(raw)
	}
	return recs, *p.Total, nil
}

// decodeKey reads what windowing needs: id and time.
func decodeKey(raw json.RawMessage) window.Record {
	rec := window.Record{Raw: raw}
	var k struct {
		ID   json.RawMessage `json:"id"`
		Time json.RawMessage `json:"time"`
	}
	if json.Unmarshal(raw, &k) != nil {
		return rec
	}
	rec.ID, _ = parseID(k.ID)
	rec.Time, _ = parseTime(k.Time)
	return rec
}

func head(b []byte) string {
	if len(b) > 120 {
		return string(b[:120])
	}
	return string(b)
}
