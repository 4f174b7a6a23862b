package swr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
)

// The audit-log list is newest first and only offers offset paging, with
// offset a multiple of limit. New records arrive at the head, shifting every
// offset while we page, and a first run or a backfill may be millions of
// records behind. The reader therefore:
//
//   - locates the boundary between delivered and new records (the newest
//     record at or below the high-water mark) with a binary search over pages,
//     holding one page in memory at a time;
//   - walks from there toward the head, each request choosing a limit and an
//     offset whose page contains the boundary record itself, so the page
//     proves by ids that nothing lies between what was delivered and what it
//     emits, however much the list moved in between;
//   - emits only records newer than the high-water mark, oldest first.
//
// Positions are only hints; ids decide. This holds through head inserts,
// retention deleting the oldest records, and pages that fail and are retried.

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

// Doer sends one API request; *huaweiapi.Client implements it.
type Doer interface {
	Do(ctx context.Context, req huaweiapi.Request) ([]byte, error)
}

// maxProbes bounds the requests one Next may spend locating its page.
const maxProbes = 128

// The boundary g is the index of the newest record already delivered: the
// first record whose id is at or below the high-water mark (or, on a first
// run, whose op_time is before the start time). Records above index
// b = g - skip are new. Indexes are relative to a list of total records and
// shift by the growth of total between responses.
type reader struct {
	s *Stream

	hasMark bool  // false on a first run: "delivered" means older than start
	mark    int64 // high-water id
	skip    int   // id-less records above the mark that were delivered
	markAt  string

	started bool // total is known
	total   int64
	exact   bool  // g is known: b is the boundary to walk up from
	b       int64 // with exact: index of the newest delivered record
	lo, hi  int64 // without exact: g lies in [lo, hi]
	hint    int64 // position of the mark counted from the end, from the checkpoint; -1 none
	growth  int64 // how much the list grew between the last two responses
	blind   bool  // the planned page cannot contain g; see plan
	done    bool
}

type record struct {
	raw   []byte
	id    int64
	hasID bool
	time  time.Time
	hasT  bool
}

func (s *Stream) newReader(raw []byte) (*reader, error) {
	r := &reader{s: s, hint: -1}
	if raw == nil {
		return r, nil
	}
	var c cursor
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, pipeline.Permanent(fmt.Errorf("checkpoint of %s is not an SWR cursor: %w", s.Key(), err))
	}
	r.hasMark, r.mark, r.skip, r.markAt, r.hint = true, c.ID, c.Skip, c.OpTime, c.FromEnd
	return r, nil
}

// Next returns the next records after the high-water mark, oldest first.
func (r *reader) Next(ctx context.Context) (pipeline.Page, error) {
	if r.done {
		return pipeline.Page{}, io.EOF
	}
	// A failed request returns nothing and moves no mark, so the pipeline
	// can call Next again; what the probes learnt about positions is kept.
	for range maxProbes {
		offset, limit := r.plan()
		recs, total, err := r.s.fetch(ctx, offset, limit)
		if err != nil {
			return pipeline.Page{}, err
		}
		page, ok := r.evaluate(recs, offset, total)
		if ok {
			return page, nil
		}
		if r.done {
			return pipeline.Page{}, io.EOF
		}
	}
	return pipeline.Page{}, fmt.Errorf("%s: could not find the next page within %d requests (list changing too fast?)", r.s.Key(), maxProbes)
}

// plan picks the next request: offset and limit (offset a multiple of limit).
func (st *reader) plan() (offset, limit int64) {
	lmax := int64(st.s.pageSize)
	switch {
	case !st.started || (st.exact && st.b <= 0):
		// One page from the top tells the total and holds the newest records.
		return 0, lmax
	case !st.exact:
		mid := st.lo + (st.hi-st.lo)/2
		return mid - mid%lmax, lmax
	}
	g := st.b + int64(st.skip)
	if g >= st.total {
		// Nothing delivered is left in the list: the page must reach its end.
		best, bestNew := lmax, int64(0)
		for l := lmax; l >= 1; l-- {
			if n := st.total - (st.total-1)/l*l; n > bestNew {
				best, bestNew = l, n
			}
		}
		return (st.total - 1) / best * best, best
	}
	// The page must contain the boundary record g, which proves by ids that
	// nothing lies between it and the records above it; pick the limit that
	// leaves the most new records above b.
	// Leave room below g for as many records as arrived last time, so that
	// a page still contains g when the list grows in between.
	for _, margin := range []int64{min(st.growth, lmax/2), 0} {
		best, bestNew := lmax, int64(0)
		for l := lmax; l >= 2; l-- {
			n := st.b % l
			if n > bestNew && n+int64(st.skip)+margin < l {
				best, bestNew = l, n
			}
		}
		if bestNew > 0 {
			return st.b - bestNew, best
		}
	}
	// b is a multiple of every limit that could hold g with records above
	// it (for limits of 20 and more, b would be a multiple of 232792560):
	// take the full page above b and accept it only if the list did not
	// change since b was established.
	st.blind = true
	return st.b - lmax, lmax
}

// evaluate inspects one response. It returns a page to emit, or false after
// refining the position (or setting done) for another request.
func (st *reader) evaluate(recs []record, offset, total int64) (pipeline.Page, bool) {
	if st.started {
		// Records arrive at the head: every index shifts by the growth.
		d := total - st.total
		st.b, st.lo, st.hi = max(0, st.b+d), max(0, st.lo+d), max(0, st.hi+d)
		st.growth = max(0, d)
	} else {
		st.lo, st.hi = 0, total
	}
	st.started, st.total = true, total
	n := int64(len(recs))
	g := st.b + int64(st.skip) // the estimate, when exact
	if st.blind {
		st.blind = false
		if _, found := st.firstDelivered(recs); !found && st.exact && st.growth == 0 && offset+n == st.b {
			return st.emit(recs, offset), true
		}
	}

	if i, found := st.firstDelivered(recs); found {
		if i > 0 || offset == 0 {
			// The record above it is new (or there is none): g is exact.
			st.exact, st.b = true, offset+int64(i)-int64(st.skip)
			switch {
			case st.b > offset:
				return st.emit(recs[:st.b-offset], offset), true
			case offset == 0:
				st.done = true
			}
			return pipeline.Page{}, false
		}
		// g is at or above this page's first record.
		if st.exact && g <= offset {
			return pipeline.Page{}, false // as estimated: plan again
		}
		if st.exact {
			st.exact, st.lo = false, 0
		}
		st.hi = min(st.hi, offset)
	} else {
		if offset+n >= total {
			// No delivered record down to the list's end: a first run, or
			// retention removed the high-water record. All of it is new.
			if n == 0 {
				if offset == 0 {
					st.done = true
					return pipeline.Page{}, false
				}
				st.exact, st.lo, st.hi = false, 0, total
				return pipeline.Page{}, false
			}
			return st.emit(recs, offset), true
		}
		if st.exact && g >= offset+n {
			// The list grew since the plan and g slid below the page.
			return pipeline.Page{}, false
		}
		if st.hint >= 0 {
			// Try the checkpoint's position once before searching.
			st.exact, st.b = true, min(max(total-1-st.hint, offset+n-int64(st.skip)), total)
			st.hint = -1
			return pipeline.Page{}, false
		}
		if st.exact {
			st.exact, st.lo, st.hi = false, offset+n, total
		}
		st.lo = max(st.lo, offset+n)
	}
	if st.lo >= st.hi {
		st.exact, st.b = true, st.hi-int64(st.skip)
	}
	return pipeline.Page{}, false
}

// firstDelivered returns the index within recs (newest first) of the first
// record that was already delivered, or false when recs holds none.
func (st *reader) firstDelivered(recs []record) (int, bool) {
	for i, rec := range recs {
		if st.hasMark {
			if rec.hasID && rec.id <= st.mark {
				return i, true
			}
		} else if rec.hasT && rec.time.Before(st.s.start) {
			return i, true
		}
	}
	return 0, false
}

// emit turns the new records recs (newest first, the first at offset) into
// a page, oldest first, and moves the high-water mark past them.
func (st *reader) emit(recs []record, offset int64) pipeline.Page {
	page := pipeline.Page{Records: make([][]byte, 0, len(recs))}
	for i := len(recs) - 1; i >= 0; i-- {
		rec := recs[i]
		page.Records = append(page.Records, rec.raw)
		switch {
		case rec.hasID:
			st.hasMark, st.mark, st.skip, st.markAt = true, rec.id, 0, ""
			if rec.hasT {
				st.markAt = rec.time.UTC().Format(time.RFC3339Nano)
			}
		case st.hasMark:
			st.skip++
		}
	}
	st.exact, st.b = true, offset
	page.Remaining = offset
	if !st.hasMark {
		// A first page of records that all lack an id leaves nothing to
		// compare the rest of the list with; stop here, the next run resumes
		// from the start time again.
		st.done = true
		return page
	}
	if offset == 0 {
		st.done = true
	}
	page.Cursor, _ = json.Marshal(cursor{ID: st.mark, OpTime: st.markAt, Skip: st.skip, FromEnd: st.total - 1 - offset})
	return page
}

// apiPage is the 200 response body.
type apiPage struct {
	AuditLogs []json.RawMessage `json:"audit_logs"`
	Total     *int64            `json:"total"`
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
		Path:     "/v2/" + s.project + "/instances/" + s.instance + "/audit-logs",
		Query:    q,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("instance %s operation %s offset %d: %w", s.instance, s.operation, offset, err)
	}
	var p apiPage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, 0, pipeline.Permanent(fmt.Errorf("instance %s offset %d: response is not an audit-log page: %w (body starts %q)", s.instance, offset, err, head(body)))
	}
	if p.Total == nil {
		return nil, 0, pipeline.Permanent(fmt.Errorf("instance %s offset %d: response has no \"total\" (body starts %q)", s.instance, offset, head(body)))
	}
	if int64(len(p.AuditLogs)) > limit {
		return nil, 0, pipeline.Permanent(fmt.Errorf("instance %s offset %d: %d records for limit %d", s.instance, offset, len(p.AuditLogs), limit))
	}
	recs := make([]record, len(p.AuditLogs))
	for i, raw := range p.AuditLogs {
		recs[i] = decodeKey(raw)
	}
	if err := checkOrder(recs); err != nil {
		return nil, 0, pipeline.Permanent(fmt.Errorf("instance %s offset %d: %w", s.instance, offset, err))
	}
	return recs, *p.Total, nil
}

// checkOrder verifies the newest-first order the paging relies on.
func checkOrder(recs []record) error {
	last := int64(-1)
	for _, r := range recs {
		if !r.hasID {
			continue
		}
		if last >= 0 && r.id >= last {
			return errors.New("audit logs are not ordered newest first by id")
		}
		last = r.id
	}
	return nil
}

// keyFields are what paging reads from a record; Map parses it fully.
type keyFields struct {
	ID     json.RawMessage `json:"id"`
	OpTime string          `json:"op_time"`
}

func decodeKey(raw json.RawMessage) record {
	rec := record{raw: slices.Clip(raw)}
	var k keyFields
	if json.Unmarshal(raw, &k) != nil {
		return rec
	}
	rec.id, rec.hasID = parseID(k.ID)
	rec.time, rec.hasT = parseTime(k.OpTime)
	return rec
}

// parseID accepts the documented integer, or the same digits quoted.
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
