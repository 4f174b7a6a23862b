package swr

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/jsonscan"
	"github.com/hwcaudit/hwcaudit/sources/newestfirst"
)

// The audit-log list is newest first and only offers offset paging, with
// offset a multiple of limit; sources/newestfirst turns it into an
// oldest-first feed that survives records arriving while we page. Keys are
// the audit ids.

// cursor is the checkpoint of one stream.
type cursor struct {
	// ID is the highest audit id delivered (the high-water mark).
	ID int64 `json:"id"`
	// OpTime is that record's op_time, for people reading the checkpoint.
	OpTime string `json:"op_time,omitempty"`
	// Skip counts records newer than ID that were delivered (dead-lettered)
	// although they carried no usable id.
	Skip int `json:"skip,omitempty"`
	// FromEnd is the high-water record's position counted from the oldest
	// record, a hint that saves the search on the next run.
	FromEnd int64 `json:"from_end"`
}

type record = newestfirst.Record[int64]

// newReader opens the newestfirst reader of the stream after the SWR
// cursor raw (nil: at the start time).
func (s *Stream) newReader(raw []byte) (pipeline.Reader, error) {
	cfg := newestfirst.Config[int64]{
		Name:        s.Key(),
		Fetch:       s.fetch,
		MaxPageSize: s.pageSize,
		Concurrency: s.inFlight,
		Start:       s.start,
		End:         s.end,
		Now:         s.now,
		Compare:     cmp.Compare[int64],
	}
	return newestfirst.Open(cfg, raw, decodeCursor, encodeCursor)
}

func decodeCursor(raw []byte) (newestfirst.Mark[int64], error) {
	var c cursor
	if err := json.Unmarshal(raw, &c); err != nil {
		return newestfirst.Mark[int64]{}, fmt.Errorf("not an SWR cursor: %w", err)
	}
	m := newestfirst.Mark[int64]{Key: c.ID, Skip: c.Skip, FromEnd: c.FromEnd}
	// op_time is informational; one that does not parse is left out of the
	// next cursor.
	m.Time, _ = time.Parse(time.RFC3339Nano, c.OpTime)
	return m, nil
}

func encodeCursor(m newestfirst.Mark[int64]) []byte {
	c := cursor{ID: m.Key, Skip: m.Skip, FromEnd: m.FromEnd}
	if !m.Time.IsZero() {
		c.OpTime = m.Time.UTC().Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(c)
	return b
}

// fetch requests one page and decodes what paging needs of each record.
func (s *Stream) fetch(ctx context.Context, offset, limit int64) ([]record, int64, error) {
	q := url.Values{}
	q.Set("operation", s.operation)
	q.Set("offset", strconv.FormatInt(offset, 10))
	q.Set("limit", strconv.FormatInt(limit, 10))
	body, err := s.api.Do(ctx, huaweiapi.Request{
		Method:   http.MethodGet,
		Endpoint: s.endpoint,
		Path:     "/v2/" + url.PathEscape(s.project) + "/instances/" + url.PathEscape(s.instance) + "/audit-logs",
		Query:    q,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("instance %s operation %s offset %d: %w", s.instance, s.operation, offset, err)
	}
	logs, total, err := splitPage(body)
	if err != nil {
		return nil, 0, pipeline.Permanent(fmt.Errorf("instance %s offset %d: response is not an audit-log page: %w (body starts %q)", s.instance, offset, err, head(body)))
	}
	if total < 0 {
		return nil, 0, pipeline.Permanent(fmt.Errorf("instance %s offset %d: response has no \"total\" (body starts %q)", s.instance, offset, head(body)))
	}
	if int64(len(logs)) > limit {
		return nil, 0, pipeline.Permanent(fmt.Errorf("instance %s offset %d: %d records for limit %d", s.instance, offset, len(logs), limit))
	}
	recs := make([]record, len(logs))
	for i, v := range logs {
		recs[i] = keyOf(v)
	}
	// Order is the paging's business: newestfirst dead-letters a record
	// whose id is out of order rather than failing the page.
	return recs, total, nil
}

// splitPage splits a 200 response body into its records, validated JSON
// values that stay slices of body, and returns its total, -1 when it has
// none.
func splitPage(body []byte) (logs []jsonscan.Value, total int64, err error) {
	total = -1
	err = jsonscan.Members(body, func(name []byte, v jsonscan.Value) error {
		switch string(jsonscan.Name(name)) {
		case "audit_logs":
			var err error
			logs, err = v.List("audit_logs")
			return err
		case "total":
			n, ok, err := v.OptionalInt("total")
			total = -1
			if ok {
				total = n
			}
			return err
		}
		return nil
	})
	return logs, total, err
}

// keyOf reads what paging needs of a record the page decoder validated:
// its id and op_time. A record that is not an object of the documented
// shape has neither; Map dead-letters it with the reason.
func keyOf(v jsonscan.Value) record {
	rec := record{Raw: v.Raw}
	var k auditLog
	// Only id and op_time: Map reads the rest.
	err := v.EachMember(func(name []byte, v jsonscan.Value) error {
		if n := string(jsonscan.Name(name)); n == "id" || n == "op_time" {
			return k.set(name, v)
		}
		return nil
	})
	if v.Kind != jsonscan.Object || err != nil {
		return rec
	}
	var ok bool
	rec.Key, ok = parseID(k.ID)
	switch {
	case len(k.ID) > 0 && k.ID[0] == '"':
		// Map would read the digits, but paging must not trust a record
		// that already differs from the contract in its key.
		rec.Invalid = fmt.Sprintf("id %s is a JSON string; the API documents an integer", head(k.ID))
	case ok:
		rec.HasKey = true
	}
	rec.Time, rec.HasTime = parseTime(k.OpTime)
	return rec
}

// parseID accepts the documented integer, or the same digits quoted, as
// Map reads it.
func parseID(raw json.RawMessage) (int64, bool) {
	raw = bytes.Trim(raw, `"`)
	id, err := strconv.ParseInt(string(raw), 10, 64)
	return id, err == nil && id >= 0
}

func head(b []byte) string {
	if len(b) > 120 {
		return string(b[:120])
	}
	return string(b)
}
