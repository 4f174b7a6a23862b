package cts

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/jsonscan"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// path is the ListTraces path of the stream's project.
func (s *Stream) path() string {
	return "/v3/" + url.PathEscape(s.project) + "/traces"
}

// query is the ListTraces query for the traces between from and to (UTC
// milliseconds, documented as exclusive; window makes the reader
// indifferent to that), after marker.
func (s *Stream) query(from, to time.Time, marker string, limit int) url.Values {
	q := url.Values{
		"trace_type": {s.traceType},
		"limit":      {strconv.Itoa(limit)},
		"from":       {strconv.FormatInt(from.UnixMilli(), 10)},
		"to":         {strconv.FormatInt(to.UnixMilli(), 10)},
	}
	if marker != "" {
		q.Set("next", marker)
	}
	return q
}

// fetch reads one page of the traces between from and to after marker.
func (s *Stream) fetch(ctx context.Context, from, to time.Time, marker string, limit int) ([]window.Record, string, error) {
	req := huaweiapi.Request{Method: http.MethodGet, Endpoint: s.endpoint, Path: s.path(), Query: s.query(from, to, marker, limit)}
	body, err := s.api.Do(ctx, req)
	if err != nil {
		return nil, "", fmt.Errorf("%s traces %s..%s: %w", s.Key(), from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), err)
	}
	return decodePage(body, s.Key(), limit, s.lookback)
}

// decodePage decodes a 200 body into records, which stay slices of body,
// and the marker of the next page ("" when the listing ended). skew is the
// stream's look-back (see keyOf). A body that is not a trace page is a
// permanent error.
func decodePage(body []byte, stream string, limit int, skew time.Duration) ([]window.Record, string, error) {
	var p apiPage
	if err := jsonscan.Members(body, p.set); err != nil {
		return nil, "", pipeline.Permanent(fmt.Errorf("%s: response is not a trace page: %w (body starts %q)", stream, err, head(body)))
	}
	if !p.hasTraces && !p.hasMeta {
		return nil, "", pipeline.Permanent(fmt.Errorf("%s: response has neither \"traces\" nor \"meta_data\" (body starts %q)", stream, head(body)))
	}
	if len(p.traces) > limit {
		return nil, "", pipeline.Permanent(fmt.Errorf("%s: %d traces for limit %d", stream, len(p.traces), limit))
	}
	recs := make([]window.Record, len(p.traces))
	for i, v := range p.traces {
		recs[i] = keyOf(v, skew)
	}
	return recs, p.marker, nil
}

// apiPage is what decodePage reads of the 200 response body. Member names
// match exactly; a member of another JSON type than the SDK's model is an
// error; null is taken as absent.
type apiPage struct {
	traces             []jsonscan.Value
	marker             string
	hasTraces, hasMeta bool
}

func (p *apiPage) set(name []byte, v jsonscan.Value) error {
	switch n := jsonscan.Name(name); string(n) {
	case "traces":
		var err error
		p.traces, err = v.List(string(n))
		p.hasTraces = true
		return err
	case "meta_data":
		if v.Kind == jsonscan.Null {
			return nil
		}
		if v.Kind != jsonscan.Object {
			return fmt.Errorf("meta_data is a %s, want an object", v.Kind)
		}
		p.hasMeta = true
		return v.EachMember(func(name []byte, v jsonscan.Value) error {
			switch n := jsonscan.Name(name); string(n) {
			case "marker":
				switch v.Kind {
				case jsonscan.Null:
				case jsonscan.String:
					p.marker, _ = v.String()
				default:
					return fmt.Errorf("meta_data.marker is a %s, want a string", v.Kind)
				}
			case "count":
				if _, _, err := v.OptionalInt("meta_data.count"); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return nil
}

// keyOf reads what windowing needs of a trace: trace_id, and record_time
// as its key (when CTS recorded it, which is when it can be listed), with
// time (when the operation happened) as its begin. A trace recorded before
// it happened, by up to skew (the stream's look-back), is keyed by time,
// with record_time as its begin. A trace without a usable record_time is
// keyed by time. A record that is not an object has
// neither; the reader dead-letters it with the reason.
func keyOf(v jsonscan.Value, skew time.Duration) window.Record {
	rec := window.Record{Raw: v.Raw}
	var id, t, rt jsonscan.Value
	_ = v.EachMember(func(name []byte, v jsonscan.Value) error {
		switch string(jsonscan.Name(name)) {
		case "trace_id":
			id = v
		case "time":
			t = v
		case "record_time":
			rt = v
		}
		return nil
	})
	rec.ID, _ = id.ID()
	at, atOK := millis(t)
	rec.Time, _ = millis(rt)
	switch {
	case rec.Time.IsZero():
		rec.Time = at
	case !atOK:
	case at.After(rec.Time) && at.Sub(rec.Time) <= skew:
		// Recorded before it happened (the reporting service's clock runs
		// ahead of CTS's): keyed by record_time, such a trace would be
		// missed under a time filter, whose query of the record_time's
		// window ends before the time. Keyed by the later of the two, the
		// trace is listed in its window's query whichever time the API
		// filters on, the look-back reaching back to the earlier one.
		// Only within the look-back: a larger skew (a clock hours off)
		// would raise the reader's look-back to it for good, and every
		// later query would list hours of traces again. Swapped tells the
		// reader which time is which field, as it learns the API's order
		// by field.
		rec.Time, rec.Begin, rec.Swapped = at, rec.Time, true
	default:
		rec.Begin = at
	}
	return rec
}

// millis reads a trace time: UTC milliseconds, as a JSON number (the
// SDK's int64) or its digits quoted, not before 2000.
func millis(v jsonscan.Value) (time.Time, bool) {
	s := string(v.Raw)
	switch v.Kind {
	case jsonscan.Number:
	case jsonscan.String:
		s, _ = v.String()
		s = strings.TrimSpace(s)
	default:
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < plausibleMillis || n > 253402300799999 { // after 9999-12-31
		return time.Time{}, false
	}
	return time.UnixMilli(n).UTC(), true
}

// plausibleMillis is 2000-01-01T00:00:00Z in UTC milliseconds: a trace time
// before it (0 standing for "not recorded", say) is taken as absent, so
// that a trace with a usable time and a record_time of 0 is keyed by its
// time instead of being dead-lettered for a record_time that cannot be
// true. window.Reader refuses such times as keys for the same reason.
const plausibleMillis = 946684800000

func head(b []byte) string {
	if len(b) > 120 {
		return string(b[:120])
	}
	return string(b)
}
