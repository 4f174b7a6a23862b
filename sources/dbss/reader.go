package dbss

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/jsonscan"
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

func itoa(n int) string { return strconv.Itoa(n) }

// fetch reads one page of the stream's kind of log of [from, to].
func (s *Stream) fetch(ctx context.Context, from, to time.Time, offset, limit int) ([]window.Record, int64, error) {
	body, err := s.kind.body(from, to, offset/limit+1, limit)
	if err != nil {
		return nil, 0, pipeline.Permanent(err)
	}
	current, legacy := s.kind.paths(s.project, s.instance)
	req := huaweiapi.Request{Method: http.MethodPost, Endpoint: s.endpoint, Path: current, Body: body}
	wasLegacy := s.legacy.Load()
	if wasLegacy {
		req.Path = legacy
	}
	resp, err := s.api.Do(ctx, req)
	// Whether or not a page asked at the same time switched already: this
	// one's answer must then come from the older path too, and be known
	// as a switch (below).
	if err != nil && !wasLegacy && cannotServe(err) {
		req.Path = legacy
		if old, oldErr := s.api.Do(ctx, req); oldErr == nil {
			s.legacy.Store(true)
			resp, err = old, nil
		}
	}
	if err == nil && offset > 0 && (req.Path == legacy) != wasLegacy {
		// The pages before this one came from the other path, whose
		// order may differ: SQL records and alarms without id are known
		// by their position, so such a listing could hold some records
		// twice and others never. It is read again on this path alone.
		return nil, 0, fmt.Errorf("%s: page %d came from %s, the pages before it from the other path: %w", s.Key(), offset/limit+1, req.Path, window.ErrListingChanged)
	}
	if err != nil {
		err = fmt.Errorf("dbss instance %s %s log page %d: %w", s.instance, s.kind, offset/limit+1, err)
		var e *huaweiapi.APIError
		if s.kind != Operation && errors.As(err, &e) && e.Status == http.StatusBadRequest {
			// The SDK documents no largest size for these lists.
			err = fmt.Errorf("%w (HWCAUDIT_DBSS_PAGE_SIZE is %d: the API may accept less)", err, limit)
		}
		return nil, 0, err
	}
	recs, total, err := s.kind.decoder()(resp, s.instance, offset, limit)
	if err != nil && s.kind != Operation {
		err = fmt.Errorf("%s: %w", s.Key(), err) // which of the instance's streams
	}
	return recs, total, err
}

// cannotServe reports an answer of the current path that says it cannot
// serve the request here, whatever the reason (not published in the region:
// 404; not granted to the caller's policy: 403; not accepting the
// request's shape: 400; method not published: 405, 501), for which the
// documented path is tried. Throttling and other server errors are
// retried on the same path instead.
func cannotServe(err error) bool {
	var e *huaweiapi.APIError
	if !errors.As(err, &e) {
		return false
	}
	switch e.Status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return true
	}
	return false
}

// decodePage decodes a 200 body into records, which stay slices of body.
// A body that is not a page is a permanent error.
func decodePage(body []byte, instance string, offset, limit int) ([]window.Record, int64, error) {
	var p apiPage
	if err := jsonscan.Members(body, p.set); err != nil {
		return nil, 0, pipeline.Permanent(fmt.Errorf("dbss instance %s offset %d: response is not an operation-log page: %w (body starts %q)", instance, offset, err, head(body)))
	}
	if !p.HasTotal || p.Total < 0 {
		return nil, 0, pipeline.Permanent(fmt.Errorf("dbss instance %s offset %d: response has no valid \"total_num\" (body starts %q)", instance, offset, head(body)))
	}
	if len(p.Logs) > limit {
		return nil, 0, pipeline.Permanent(fmt.Errorf("dbss instance %s offset %d: %d records for size %d", instance, offset, len(p.Logs), limit))
	}
	recs := make([]window.Record, len(p.Logs))
	for i, v := range p.Logs {
		recs[i] = keyOf(v, "time")
	}
	return recs, p.Total, nil
}

// apiPage is what decodePage reads of the 200 response body. Member names
// match exactly; a member of another JSON type than documented is an
// error; null is taken as absent.
type apiPage struct {
	Total    int64
	HasTotal bool
	Logs     []jsonscan.Value // operate_log
}

func (p *apiPage) set(name []byte, v jsonscan.Value) error {
	switch n := jsonscan.Name(name); string(n) {
	case "operate_log":
		var err error
		p.Logs, err = v.List(string(n))
		return err
	case "total_num":
		var err error
		p.Total, p.HasTotal, err = v.OptionalInt(string(n))
		return err
	}
	return nil
}

// keyOf reads what windowing needs of a record the page decoder
// validated: its "id" and its time, in member timeName ("time" for
// operation logs, "alarm_time" for alarms). Both take any JSON type: Map
// reads the rest. A record that is not an object has neither; Map
// dead-letters it with the reason.
func keyOf(v jsonscan.Value, timeName string) window.Record {
	rec := window.Record{Raw: v.Raw}
	var id, t jsonscan.Value
	_ = v.EachMember(func(name []byte, m jsonscan.Value) error {
		switch string(jsonscan.Name(name)) {
		case "id":
			id = m
		case timeName:
			t = m
		}
		return nil
	})
	rec.ID, _ = id.ID()
	rec.Time, _ = timeOf(t)
	return rec
}

func head(b []byte) string {
	if len(b) > 120 {
		return string(b[:120])
	}
	return string(b)
}
