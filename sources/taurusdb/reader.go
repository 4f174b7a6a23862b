package taurusdb

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/jsonscan"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// queryLayout is the documented "yyyy-mm-ddThh:mm:ssZ" form, Z being an
// offset such as +0800. The '+' must reach the server escaped, which
// huaweiapi's query encoding does.
const queryLayout = "2006-01-02T15:04:05-0700"

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
		Path:     "/v3/" + url.PathEscape(s.project) + "/instances/" + url.PathEscape(s.instance) + "/audit-logs",
		Query:    q,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("taurusdb instance %s offset %d: %w", s.instance, offset, err)
	}
	return decodePage(body, s.instance, offset, limit)
}

// decodePage decodes a 200 body into records, which stay slices of body.
// A body that is not a page is a permanent error.
func decodePage(body []byte, instance string, offset, limit int) ([]window.Record, int64, error) {
	var p apiPage
	if err := jsonscan.Members(body, p.set); err != nil {
		return nil, 0, pipeline.Permanent(fmt.Errorf("taurusdb instance %s offset %d: response is not an audit-log page: %w (body starts %q)", instance, offset, err, head(body)))
	}
	if !p.HasTotal || p.Total < 0 {
		return nil, 0, pipeline.Permanent(fmt.Errorf("taurusdb instance %s offset %d: response has no valid \"total_count\" (body starts %q)", instance, offset, head(body)))
	}
	if len(p.AuditLogs) > limit {
		return nil, 0, pipeline.Permanent(fmt.Errorf("taurusdb instance %s offset %d: %d records for limit %d", instance, offset, len(p.AuditLogs), limit))
	}
	recs := make([]window.Record, len(p.AuditLogs))
	for i, v := range p.AuditLogs {
		recs[i] = keyOf(v)
	}
	return recs, p.Total, nil
}

// apiPage is what decodePage reads of the 200 response body. Member names
// match exactly; a member of another JSON type than documented is an
// error; null is taken as absent.
type apiPage struct {
	AuditLogs []jsonscan.Value
	Total     int64
	HasTotal  bool
}

func (p *apiPage) set(name []byte, v jsonscan.Value) error {
	switch n := jsonscan.Name(name); string(n) {
	case "audit_logs":
		var err error
		p.AuditLogs, err = v.List(string(n))
		return err
	case "total_count":
		var err error
		p.Total, p.HasTotal, err = v.OptionalInt(string(n))
		return err
	}
	return nil
}

// keyOf reads what windowing needs of a record the page decoder
// validated: the id, the key time (the file's end_time, or its begin_time
// when it has no usable end_time, as Map's @timestamp) and the begin_time
// the API may filter on instead. A record that is not an object of the
// documented shape has no time: the reader dead-letters it with the
// reason.
func keyOf(v jsonscan.Value) window.Record {
	rec := window.Record{Raw: v.Raw}
	if v.Kind != jsonscan.Object {
		return rec
	}
	var k auditLog
	// Only id and end_time: Map reads the rest.
	err := v.EachMember(func(name []byte, v jsonscan.Value) error {
		if n := string(jsonscan.Name(name)); n == "id" || n == "end_time" || n == "begin_time" {
			return k.set(name, v)
		}
		return nil
	})
	if err != nil {
		return rec
	}
	rec.ID, _ = k.ID.ID()
	end, hasEnd := parseTime(k.EndTime)
	begin, hasBegin := parseTime(k.BeginTime)
	switch {
	case hasEnd:
		rec.Time = end
		if hasBegin {
			rec.Begin = begin
		}
	case hasBegin:
		rec.Time = begin
	}
	return rec
}

func head(b []byte) string {
	if len(b) > 120 {
		return string(b[:120])
	}
	return string(b)
}
