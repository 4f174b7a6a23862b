package artifact

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/jsonscan"
	"github.com/hwcaudit/hwcaudit/sources/newestfirst"
)

// The audit list is newest first and pages by page_num/page_size, which is
// offset paging with offset = (page_num-1)*page_size; sources/newestfirst
// turns it into an oldest-first feed that survives records arriving while
// we page. Keys are the audit ids: digit strings, compared as numbers of
// any length. time has whole seconds, so several records share one; the id
// orders them.

// cursor is the checkpoint of one stream.
type cursor struct {
	// ID is the highest audit id delivered (the high-water mark), without
	// leading zeros.
	ID string `json:"id"`
	// Time is that record's time in UTC, for people reading the checkpoint.
	Time string `json:"time,omitempty"`
	// Skip counts records newer than ID that were delivered (dead-lettered)
	// although they carried no usable id.
	Skip int `json:"skip,omitempty"`
	// FromEnd is the high-water record's position counted from the oldest
	// record, a hint that saves the search on the next run.
	FromEnd int64 `json:"from_end"`
}

type record = newestfirst.Record[string]

// newReader opens the newestfirst reader of the stream after the Artifact
// cursor raw (nil: at the start time).
func (s *Stream) newReader(raw []byte) (pipeline.Reader, error) {
	cfg := newestfirst.Config[string]{
		Name:        s.Key(),
		Fetch:       s.fetch,
		MaxPageSize: s.pageSize,
		Concurrency: s.inFlight,
		Start:       s.start,
		End:         s.end,
		Now:         s.now,
		Compare:     compareIDs,
	}
	return newestfirst.Open(cfg, raw, decodeCursor, encodeCursor)
}

func decodeCursor(raw []byte) (newestfirst.Mark[string], error) {
	var c cursor
	if err := json.Unmarshal(raw, &c); err != nil {
		return newestfirst.Mark[string]{}, fmt.Errorf("not an Artifact cursor: %w", err)
	}
	id, ok := normalizeID(c.ID)
	if !ok {
		return newestfirst.Mark[string]{}, fmt.Errorf("id %q is not an audit id", c.ID)
	}
	m := newestfirst.Mark[string]{Key: id, Skip: c.Skip, FromEnd: c.FromEnd}
	m.Time, _ = time.Parse(time.RFC3339, c.Time)
	return m, nil
}

func encodeCursor(m newestfirst.Mark[string]) []byte {
	c := cursor{ID: m.Key, Skip: m.Skip, FromEnd: m.FromEnd}
	if !m.Time.IsZero() {
		c.Time = m.Time.UTC().Format(time.RFC3339)
	}
	b, _ := json.Marshal(c)
	return b
}

// fetch requests the page at offset (a multiple of limit) and decodes what
// paging needs of each record.
func (s *Stream) fetch(ctx context.Context, offset, limit int64) ([]record, int64, error) {
	if limit < 1 || offset%limit != 0 {
		return nil, 0, pipeline.Permanent(fmt.Errorf("%s: offset %d is not a multiple of page size %d", s.Key(), offset, limit))
	}
	q := url.Values{}
	q.Set("page_num", strconv.FormatInt(offset/limit+1, 10))
	q.Set("page_size", strconv.FormatInt(limit, 10))
	body, err := s.api.Do(ctx, huaweiapi.Request{
		Method:   http.MethodGet,
		Endpoint: s.endpoint,
		Path:     "/cloudartifact/v5/" + url.PathEscape(s.tenant) + "/" + url.PathEscape(s.project) + "/" + url.PathEscape(s.module) + "/" + url.PathEscape(s.repo) + "/audit",
		Query:    q,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("artifact %s/%s offset %d: %w", s.module, s.repo, offset, err)
	}
	return decodePage(body, s.loc, s.Key(), offset, limit)
}

// decodePage decodes one 200 response. The records stay slices of body.
func decodePage(body []byte, loc *time.Location, key string, offset, limit int64) ([]record, int64, error) {
	var p apiPage
	if err := jsonscan.Members(body, p.set); err != nil {
		return nil, 0, pipeline.Permanent(fmt.Errorf("%s offset %d: response is not an audit page: %w (body starts %q)", key, offset, err, head(body)))
	}
	if p.Status != "" && p.Status != "success" {
		// The service reports a failed request in the body; nothing says it
		// is permanent, so it is retried.
		return nil, 0, fmt.Errorf("%s offset %d: status %q (trace_id %s)", key, offset, p.Status, p.TraceID)
	}
	if !p.HasResult || !p.Result.HasTotal {
		return nil, 0, pipeline.Permanent(fmt.Errorf("%s offset %d: response has no result.total (body starts %q)", key, offset, head(body)))
	}
	list := p.Result.AuditInfoList
	if int64(len(list)) > limit {
		return nil, 0, pipeline.Permanent(fmt.Errorf("%s offset %d: %d records for page size %d", key, offset, len(list), limit))
	}
	recs := make([]record, len(list))
	for i, v := range list {
		recs[i] = keyOf(v, loc)
	}
	// Order is the paging's business: newestfirst dead-letters a record
	// whose id is out of order rather than failing the page.
	return recs, p.Result.Total, nil
}

// apiPage is what decodePage reads of the 200 response body. Member names
// match exactly; a member of another JSON type than documented is an
// error, and null is taken as encoding/json takes it into the struct this
// replaced: a string member keeps its value, result and its members are
// reset.
type apiPage struct {
	Status    string
	TraceID   string
	HasResult bool // result is an object
	Result    apiResult
}

type apiResult struct {
	AuditInfoList []jsonscan.Value
	Total         int64
	HasTotal      bool
}

func (p *apiPage) set(name []byte, v jsonscan.Value) error {
	switch n := jsonscan.Name(name); string(n) {
	case "status":
		return keepString(&p.Status, n, v)
	case "trace_id":
		return keepString(&p.TraceID, n, v)
	case "result":
		switch v.Kind {
		case jsonscan.Null:
			p.HasResult, p.Result = false, apiResult{}
			return nil
		case jsonscan.Object:
			// A repeated result adds to the first, as encoding/json does.
			p.HasResult = true
			return v.EachMember(p.Result.set)
		}
		return fmt.Errorf("result is a %s, want an object", v.Kind)
	}
	return nil
}

func (r *apiResult) set(name []byte, v jsonscan.Value) error {
	switch string(jsonscan.Name(name)) {
	case "auditInfoList":
		var err error
		r.AuditInfoList, err = v.List("result.auditInfoList")
		return err
	case "total":
		var err error
		r.Total, r.HasTotal, err = v.OptionalInt("result.total")
		return err
	}
	return nil
}

// keepString sets *dst to the string v, which member name holds; null
// leaves *dst as it is, as encoding/json leaves a string field.
func keepString(dst *string, name []byte, v jsonscan.Value) error {
	if v.Kind == jsonscan.Null {
		return nil
	}
	s, ok := v.String()
	if !ok {
		return fmt.Errorf("%s is a %s, want a string", name, v.Kind)
	}
	*dst = s
	return nil
}

// keyOf reads what paging needs of a record the page decoder validated:
// its id and time. A record that is not an object of the documented shape
// has neither; Map dead-letters it with the reason.
func keyOf(v jsonscan.Value, loc *time.Location) record {
	rec := record{Raw: v.Raw}
	if v.Kind != jsonscan.Object {
		return rec
	}
	var id jsonscan.Value
	var t string
	// Only id and time: Map reads the rest.
	err := v.EachMember(func(name []byte, v jsonscan.Value) error {
		switch n := jsonscan.Name(name); string(n) {
		case "id":
			id = v
		case "time":
			return keepString(&t, n, v)
		}
		return nil
	})
	if err != nil {
		return rec
	}
	switch id.Kind {
	case jsonscan.String:
		rec.Key, rec.HasKey = parseID(id)
	case 0, jsonscan.Null: // absent: Map dead-letters the record
	default:
		// Map would read digits, but paging must not trust a record that
		// already differs from the contract in its key: one numeric id
		// compared with its neighbours' digit strings once stopped a
		// whole stream.
		rec.Invalid = fmt.Sprintf("id %s is a JSON %s; the API documents a string", head(id.Raw), id.Kind)
	}
	rec.Time, rec.HasTime = parseTime(t, loc)
	return rec
}

// parseID accepts the documented digit string, or the same digits unquoted,
// and returns them without leading zeros.
func parseID(v jsonscan.Value) (string, bool) {
	if v.Kind == jsonscan.String {
		s, _ := v.String()
		return normalizeID(s)
	}
	return normalizeID(string(v.Raw))
}

// normalizeID checks that s is a non-empty digit string and trims its
// leading zeros.
func normalizeID(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	s = strings.TrimLeft(s, "0")
	if s == "" {
		s = "0"
	}
	return s, true
}

// compareIDs orders normalized ids numerically, whatever their length.
func compareIDs(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// timeLayouts are the forms "time" takes: the documented one first.
var timeLayouts = []string{"2006/01/02 15:04:05", "2006/01/02 15:04:05.999999999", "2006-01-02 15:04:05.999999999"}

// parseTime reads time: "2023/10/27 15:46:19" in loc, as documented; a
// value that carries its own zone (RFC 3339) keeps it.
func parseTime(s string, loc *time.Location) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	for _, layout := range timeLayouts {
		if err == nil {
			break
		}
		t, err = time.ParseInLocation(layout, s, loc)
	}
	// An offset can move a year-0000 or year-9999 time out of the four-digit
	// years that @timestamp (RFC 3339) can express.
	if t = t.UTC(); err != nil || t.Year() < 0 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t, true
}

var errNoID = errors.New("artifact audit log has no id")

func head(b []byte) string {
	if len(b) > 120 {
		return string(b[:120])
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}
