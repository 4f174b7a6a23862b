// Package window reads audit APIs that can only be asked for the records
// between two times, paged by offset and limit, with a total count: the
// TaurusDB audit-log list and the DBSS operation log, for instance.
//
// The cursor is a position in time. A reader walks windows [from, to) from
// the cursor towards now − SettleDelay, so a window is read only once
// records for it have had time to arrive. Each window is enumerated
// completely and checked against the API's total; it is read again when
// the total changed while paging or the pages did not add up to it, and
// split when it would hold more than Config.MaxRecords records or span more
// than the API allows. The window's records are sorted by (time, id) and
// delivered oldest first.
//
// Records that share one second are neither lost nor doubled at window and
// page boundaries: every query starts one second before its window, and the
// cursor keeps the ids already delivered in its last second (seen_ids),
// which that overlap is deduplicated against. The one-second overlap also
// makes the reader indifferent to whether the API treats start_time and
// end_time as inclusive or exclusive.
package window

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc"
)

// Config is shared by every source that reads by time window.
type Config struct {
	// SettleDelay is how long after a second a window containing it is
	// read: records may be listed a few minutes after they happened, and a
	// window is never read again once the cursor passed it. Default 5m.
	SettleDelay time.Duration `env:"HWCAUDIT_SETTLE_DELAY,default=5m"`
	// MaxRecords caps the records of one window: a window that holds more
	// is split, so memory and the time between checkpoints stay bounded.
	// A single second is never split, whatever it holds. Default 5000.
	MaxRecords int `env:"HWCAUDIT_WINDOW_MAX_RECORDS,default=5000"`
	// Concurrency is how many pages of one window are requested at once,
	// once the first page told the window's total; the exporter sets it
	// from HWCAUDIT_CONCURRENCY. Default 1.
	Concurrency int
}

// Validate reports the first invalid setting, naming its variable.
func (c *Config) Validate() error {
	if c.SettleDelay < 0 {
		return fmt.Errorf("HWCAUDIT_SETTLE_DELAY: must not be negative, got %s", c.SettleDelay)
	}
	if c.MaxRecords < 100 || c.MaxRecords > 1_000_000 {
		return fmt.Errorf("HWCAUDIT_WINDOW_MAX_RECORDS: must be 100..1000000, got %d", c.MaxRecords)
	}
	return nil
}

// Record is one raw API record and what windowing needs of it.
type Record struct {
	Raw []byte
	// ID identifies the record at its source. Empty: the record is
	// identified by its bytes.
	ID string
	// Time is when the record happened, the time the API filters on. Zero:
	// unknown; the record is placed in its window's first second (and its
	// mapping will dead-letter it).
	Time time.Time
}

// FetchFunc returns one page of the records whose time lies between from
// and to, with the API's count of all of them. offset is a multiple of
// limit. An error is returned as it is, so it keeps its retryable or
// permanent class.
type FetchFunc func(ctx context.Context, from, to time.Time, offset, limit int) (recs []Record, total int64, err error)

// Options describe one stream's reader.
type Options struct {
	// Key names the stream in errors.
	Key string
	// Start is where a stream without cursor begins. Zero: MaxSpan before
	// now − SettleDelay.
	Start time.Time
	// Config is the shared windowing configuration.
	Config Config
	// MaxSpan is the longest time range the API accepts in one query, e.g.
	// 30 days. Required.
	MaxSpan time.Duration
	// PageSize is the "limit" of each request, 1..the API's maximum.
	PageSize int
	// Now is the clock that decides which windows have settled.
	Now func() time.Time
	// Fetch reads one page.
	Fetch FetchFunc
}

// Cursor is a stream's checkpoint: every record whose second is before
// Through−1s was delivered, and of the second Through−1s exactly SeenIDs.
type Cursor struct {
	Through time.Time `json:"through"`
	SeenIDs []string  `json:"seen_ids"`
}

// maxSeenIDs bounds the ids a cursor may carry (a corrupt checkpoint must
// not make the reader allocate without limit).
const maxSeenIDs = 1_000_000

// DecodeCursor parses a checkpoint. Errors are permanent: retrying cannot
// repair a checkpoint.
func DecodeCursor(raw []byte) (Cursor, error) {
	var c Cursor
	if err := json.Unmarshal(raw, &c); err != nil {
		return Cursor{}, pipeline.Permanent(fmt.Errorf("not a window cursor: %w", err))
	}
	if c.Through.IsZero() {
		return Cursor{}, pipeline.Permanent(errors.New("window cursor has no \"through\" time"))
	}
	if c.Through.Year() < 1970 || c.Through.Year() > 9999 {
		return Cursor{}, pipeline.Permanent(fmt.Errorf("window cursor \"through\" %s is out of range", c.Through))
	}
	if len(c.SeenIDs) > maxSeenIDs {
		return Cursor{}, pipeline.Permanent(fmt.Errorf("window cursor has %d seen ids, more than %d", len(c.SeenIDs), maxSeenIDs))
	}
	c.Through = c.Through.UTC().Truncate(time.Second)
	return c, nil
}

// Encode returns the cursor as JSON, seen ids sorted.
func (c Cursor) Encode() []byte {
	c.Through = c.Through.UTC()
	if c.SeenIDs == nil {
		c.SeenIDs = []string{}
	}
	slices.Sort(c.SeenIDs)
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a time and strings always encode
	}
	return b
}

// Reader reads one stream window by window. It implements pipeline.Reader.
type Reader struct {
	o     Options
	floor time.Time // records before it are not delivered (the start time)

	through time.Time
	seen    map[string]bool

	span    time.Duration // the next window's length, adapted to density
	pending []Record      // the current window's undelivered records, sorted
	winTo   time.Time     // the current window's end

	listed  int64 // records the API's totals put in the windows read, each once
	skipped int64 // records of the current window delivered before, not yet reported
}

// errTooMany reports a window that holds more than MaxRecords records.
var errTooMany = errors.New("window holds too many records")

// maxAttempts bounds the reads of one window whose total keeps changing.
const maxAttempts = 4

// NewReader opens a reader after cursor, or at o.Start when cursor is nil.
func NewReader(o Options, cursor []byte) (*Reader, error) {
	if o.Fetch == nil || o.Now == nil || o.MaxSpan < 2*time.Second || o.PageSize < 1 {
		return nil, pipeline.Permanent(fmt.Errorf("%s: window reader misconfigured", o.Key))
	}
	if o.Config.MaxRecords < 1 {
		o.Config.MaxRecords = 5000
	}
	r := &Reader{o: o, seen: map[string]bool{}, span: o.MaxSpan}
	if cursor == nil {
		start := o.Start
		if start.IsZero() {
			start = r.limit().Add(-o.MaxSpan)
		}
		r.through = start.UTC().Truncate(time.Second)
		r.floor = r.through
		return r, nil
	}
	c, err := DecodeCursor(cursor)
	if err != nil {
		return nil, fmt.Errorf("checkpoint of %s: %w", o.Key, err)
	}
	r.through = c.Through
	for _, id := range c.SeenIDs {
		r.seen[id] = true
	}
	return r, nil
}

// limit is the end of the newest window that has settled.
func (r *Reader) limit() time.Time {
	return r.o.Now().Add(-r.o.Config.SettleDelay).UTC().Truncate(time.Second)
}

// Cursor is the position after everything Next returned so far.
func (r *Reader) Cursor() Cursor {
	return Cursor{Through: r.through, SeenIDs: slices.Sorted(maps.Keys(r.seen))}
}

// Next returns the next records, oldest first, or io.EOF once every
// settled window was read. After an error nothing has moved.
func (r *Reader) Next(ctx context.Context) (pipeline.Page, error) {
	if len(r.pending) > 0 {
		return r.emit(), nil
	}
	limit := r.limit()
	if !r.through.Before(limit) {
		return pipeline.Page{}, io.EOF
	}
	from := r.through
	span := min(r.span, r.o.MaxSpan-time.Second, limit.Sub(from))
	for {
		to := from.Add(max(span, time.Second)).Truncate(time.Second)
		recs, total, err := r.readWindow(ctx, from, to)
		if errors.Is(err, errTooMany) {
			span = max(span/2, time.Second)
			continue
		}
		if err != nil {
			return pipeline.Page{}, err
		}
		// Grow again after a sparse window, towards MaxSpan.
		if total < int64(r.o.Config.MaxRecords)/4 {
			r.span = min(2*span, r.o.MaxSpan)
		} else {
			r.span = span
		}
		r.pending, r.winTo = recs, to
		return r.emit(), nil
	}
}

// emit returns the next chunk of the pending window and moves the cursor
// past it; the window's last chunk moves it to the window's end.
func (r *Reader) emit() pipeline.Page {
	n := min(len(r.pending), r.o.PageSize)
	chunk := r.pending[:n]
	r.pending = r.pending[n:]
	page := pipeline.Page{
		Records:   make([][]byte, 0, n),
		Remaining: int64(len(r.pending)),
		Total:     r.listed - int64(len(r.pending)),
		Skipped:   r.skipped,
	}
	r.skipped = 0
	for _, rec := range chunk {
		page.Records = append(page.Records, rec.Raw)
		// A record without a time of its own stands at its window's first
		// second here (see keep); bounding the page by it keeps the record,
		// as mapping it would (it is dead-lettered either way).
		if rec.Time.After(page.Newest) {
			page.Newest = rec.Time
		}
		next := rec.Time.Truncate(time.Second).Add(time.Second)
		if next.After(r.through) {
			r.through = next
			clear(r.seen)
		}
		r.seen[rec.ID] = true
	}
	if len(r.pending) == 0 {
		r.pending = nil
		if r.winTo.After(r.through) {
			r.through = r.winTo
			clear(r.seen)
		}
	}
	page.Cursor = r.Cursor().Encode()
	return page
}

// readWindow reads every record of [from, to) that was not delivered,
// sorted by (time, id). It queries from one second earlier, the second
// the cursor's seen ids belong to.
func (r *Reader) readWindow(ctx context.Context, from, to time.Time) ([]Record, int64, error) {
	qFrom := from.Add(-time.Second)
	size := r.o.PageSize
	var problem string
	for range maxAttempts {
		all, total, err := r.readAll(ctx, qFrom, to, to.Sub(from) > time.Second)
		if err != nil {
			return nil, 0, err
		}
		if problem = r.check(all, total); problem != "" {
			continue
		}
		kept, outside, skipped := r.keep(all, from, to)
		// The API's count, less what belongs to other windows and what was
		// delivered before: check made sure the pages add up to it.
		r.listed += total - outside - skipped
		r.skipped += skipped
		return kept, total, nil
	}
	return nil, 0, fmt.Errorf("%s: window %s..%s read %d times, inconsistent every time (%s); page size %d",
		r.o.Key, qFrom.Format(time.RFC3339), to.Format(time.RFC3339), maxAttempts, problem, size)
}

// readAll pages through one query. With capped, it stops with errTooMany
// when the total exceeds MaxRecords. Once the first page told the total,
// the other pages are requested Config.Concurrency at a time. A total of -1
// means the listing changed while paging: read the window again.
func (r *Reader) readAll(ctx context.Context, from, to time.Time, capped bool) ([]Record, int64, error) {
	size := r.o.PageSize
	first, total, err := r.page(ctx, from, to, 0)
	if err != nil {
		return nil, 0, err
	}
	if capped && total > int64(r.o.Config.MaxRecords) {
		return nil, total, errTooMany
	}
	if len(first) == 0 && total > 0 {
		return nil, -1, nil
	}
	pages := int((total + int64(size) - 1) / int64(size))
	if pages <= 1 {
		return first, total, nil
	}
	results := make([][]Record, pages)
	results[0] = first

	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next    atomic.Int64
		mu      sync.Mutex
		failure error
		changed bool
		wg      sync.WaitGroup
	)
	next.Store(1)
	for range min(max(r.o.Config.Concurrency, 1), pages-1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= pages || pctx.Err() != nil {
					return
				}
				recs, t, err := r.page(pctx, from, to, i*size)
				mu.Lock()
				switch {
				case err != nil && pctx.Err() != nil && ctx.Err() == nil:
					// Cancelled because another page failed or saw a change.
				case err != nil:
					if failure == nil {
						failure = err
					}
					cancel()
				case t != total || len(recs) == 0:
					changed = true
					cancel()
				default:
					results[i] = recs
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	switch {
	case failure != nil:
		return nil, 0, failure
	case changed:
		return nil, -1, nil
	}
	all := make([]Record, 0, total)
	for _, recs := range results {
		all = append(all, recs...)
	}
	return all, total, nil
}

// page requests the records at offset and checks the answer's shape.
func (r *Reader) page(ctx context.Context, from, to time.Time, offset int) ([]Record, int64, error) {
	size := r.o.PageSize
	recs, t, err := r.o.Fetch(ctx, from, to, offset, size)
	if err != nil {
		return nil, 0, err
	}
	if t < 0 || len(recs) > size {
		return nil, 0, pipeline.Permanent(fmt.Errorf("%s: page at offset %d has %d records and total %d for limit %d", r.o.Key, offset, len(recs), t, size))
	}
	return recs, t, nil
}

// check returns why a window's pages are not a consistent listing, or "".
func (r *Reader) check(all []Record, total int64) string {
	if total < 0 {
		return "the total changed while paging"
	}
	if int64(len(all)) != total {
		return fmt.Sprintf("pages held %d records, total %d", len(all), total)
	}
	ids := make(map[string]bool, len(all))
	for i := range all {
		if all[i].ID == "" {
			all[i].ID = "raw:" + ecsdoc.ID(string(all[i].Raw))
		}
		if ids[all[i].ID] {
			return fmt.Sprintf("id %q listed twice", all[i].ID)
		}
		ids[all[i].ID] = true
	}
	return ""
}

// keep keeps the records of [from−1s, to) that were not delivered and
// sorts them by (time, id). It counts the records that belong to other
// windows and those delivered before.
func (r *Reader) keep(all []Record, from, to time.Time) (out []Record, outside, skipped int64) {
	out = all[:0]
	for _, rec := range all {
		if rec.Time.IsZero() {
			// First, not last: the cursor must not pass the record's true
			// second (unknown) before it is delivered, or a run cut short
			// there would resume after it and never see it again.
			rec.Time = from
		}
		rec.Time = rec.Time.UTC()
		sec := rec.Time.Truncate(time.Second)
		switch {
		case sec.Before(from.Add(-time.Second)), !sec.Before(to), sec.Before(r.floor):
			outside++ // another window's record
			continue
		case sec.Before(from) && r.seen[rec.ID]:
			skipped++ // delivered before the cursor
			continue
		}
		out = append(out, rec)
	}
	slices.SortFunc(out, func(a, b Record) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return slices.Clip(out), outside, skipped
}
