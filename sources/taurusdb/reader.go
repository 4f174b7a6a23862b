package taurusdb

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// queryLayout is the documented "yyyy-mm-ddThh:mm:ssZ" form, Z being an
// offset such as +0800. The '+' must reach the server escaped, which
// huaweiapi's query encoding does.
const queryLayout = "2006-01-02T15:04:05-0700"

// apiPage is the 200 response body.
type apiPage struct {
	AuditLogs []json.RawMessage `json:"audit_logs"`
	Total     *int64            `json:"total_count"`
}

// fetch reads one page of the files listed for [from, to].
func (s *Stream) fetch(ctx context.Context, from, to time.Time, offset, limit int) ([]window.Record, int64, error) {
	q := url.Values{}
	q.Set("start_time", from.UTC().Format(queryLayout))
	q.Set("end_time", to.UTC().Format(queryLayout))
	q.Set("offset", strconv.Itoa(offset))
	q.Set("limit", strconv.Itoa(limit))
	body, err := s.api.Do(ctx, huaweiapi.Request{
		Method:   http.MethodGet,
		Endpoint: s.endpoint,
		Path:     "/v3/" + s.project + "/instances/" + s.instance + "/audit-logs",
		Query:    q,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("taurusdb instance %s offset %d: %w", s.instance, offset, err)
	}
	return decodePage(body, s.instance, offset, limit)
}

// decodePage decodes a 200 body into records. A body that is not a page is
// a permanent error.
func decodePage(body []byte, instance string, offset, limit int) ([]window.Record, int64, error) {
	var p apiPage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, 0, pipeline.Permanent(fmt.Errorf("taurusdb instance %s offset %d: response is not an audit-log page: %w (body starts %q)", instance, offset, err, head(body)))
	}
	if p.Total == nil || *p.Total < 0 {
		return nil, 0, pipeline.Permanent(fmt.Errorf("taurusdb instance %s offset %d: response has no valid \"total_count\" (body starts %q)", instance, offset, head(body)))
	}
	if len(p.AuditLogs) > limit {
		return nil, 0, pipeline.Permanent(fmt.Errorf("taurusdb instance %s offset %d: %d records for limit %d", instance, offset, len(p.AuditLogs), limit))
	}
	recs := make([]window.Record, len(p.AuditLogs))
	for i, raw := range p.AuditLogs {
		recs[i] = decodeKey(raw)
	}
	return recs, *p.Total, nil
}

// decodeKey reads what windowing needs: the id and the time the list is
// filtered on, the file's end_time.
func decodeKey(raw json.RawMessage) window.Record {
	rec := window.Record{Raw: raw}
	var k struct {
		ID      json.RawMessage `json:"id"`
		EndTime string          `json:"end_time"`
	}
	if json.Unmarshal(raw, &k) != nil {
		return rec
	}
	rec.ID, _ = parseID(k.ID)
	rec.Time, _ = parseTime(k.EndTime)
	return rec
}

func head(b []byte) string {
	if len(b) > 120 {
		return string(b[:120])
	}
	return string(b)
}
