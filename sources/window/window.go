// Package window reads audit APIs that can only be asked for the records
// between two times, paged by offset and limit, with a total count: the
// TaurusDB audit-log list and the DBSS operation log, for instance.
//
// The cursor is a second boundary: every record whose time (its key) lies
// before it was delivered. A reader walks windows [from, to) from the
// cursor towards a target fixed when it opens (now − SettleDelay at open,
// or Options.End when that is earlier), so a run always ends and a window
// is read only once records for it had time to arrive.
//
// Each window's query starts 1s + Lookback before the window and ends at
// its end: the extra second makes the reader indifferent to whether the API
// treats start_time and end_time as inclusive or exclusive, and the
// look-back keeps a record listed whatever time of it the API filters on
// (a TaurusDB file may be filtered by its begin_time, its end_time or by
// overlap; the reader keys it by end_time). Of a query's records, those
// whose key lies in [from, to) are the window's; the others belong to
// other windows and are counted as skipped (or excluded, before the
// stream's start or at or after its end). A record whose time is unusable
// or implausible never decides a position: it goes to Page.Invalid.
//
// A window is paged until the pages end, never by the API's total, which
// is compared afterwards: a window is read again when the total changed
// while paging, an id was listed twice or the pages held fewer records
// than the total, and split when it holds more than Config.MaxRecords
// records or maxWindowBytes. Its records are sorted by (time, id) and
// delivered oldest first; the cursor moves to a second only once every
// record before it was delivered, so it needs no ids and a crash in the
// middle of a second delivers that second again (sinks dedupe by event id).
// A one-second window is streamed a page at a time in one pass: memory
// stays bounded however many records the second holds, and the second is
// read again only when its listing changed during the pass.
//
// An API paged by marker instead (Cloud Trace Service) is read the same
// way through Options.FetchMarker: a listing has no total and ends at a
// page without marker, repeats within it are skipped, and each followed
// marker is checked by a query of the marked record's millisecond (see
// Options.FetchMarker).
package window

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
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
	// MaxRecords caps the records of one window, 100..1000000: a window
	// that holds more is split, so memory and the time between checkpoints
	// stay bounded. A single second is never split: it is streamed a page
	// at a time. Default 5000.
	MaxRecords int `env:"HWCAUDIT_WINDOW_MAX_RECORDS,default=5000"`
	// Concurrency is how many pages of one window are requested at once;
	// the exporter sets it from HWCAUDIT_CONCURRENCY. Default 1.
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
	// Time is the record's key: the time it is windowed, ordered and
	// checkpointed by (a TaurusDB file's end_time). Zero: unknown; the
	// record goes to Page.Invalid.
	Time time.Time
	// Begin is when a record that covers a time range began (a TaurusDB
	// file's begin_time), which the API may filter on instead of Time.
	// Zero, implausible or after Time: the record has one time, span 0.
	Begin time.Time
	// Swapped says, in marker mode, that Time holds the API's begin field
	// and Begin its key field, the other way round from the stream's
	// other records (a CTS trace recorded before it happened is keyed by
	// its time, the later of its two): the API orders and marks by field,
	// so learning its order and the boundary queries take each time from
	// its field.
	Swapped bool
}

// fields returns rec's times by the API's fields: the key field's (Time,
// unless Swapped) and the begin field's, ok when that is a plausible time
// apart from the key.
func fields(rec Record) (key, beg time.Time, ok bool) {
	b, ok := begin(rec)
	switch {
	case !ok:
		return rec.Time, time.Time{}, false
	case rec.Swapped:
		return b, rec.Time, true
	}
	return rec.Time, b, true
}

// FetchFunc returns one page of the records the API lists between from
// and to, with the API's count of all of them. offset is a multiple of
// limit. An error is returned as it is, so it keeps its retryable or
// permanent class.
type FetchFunc func(ctx context.Context, from, to time.Time, offset, limit int) (recs []Record, total int64, err error)

// MarkerFunc returns one page of the records the API lists between from
// and to: the first page when marker is "", else the page that follows the
// page whose answer carried marker. next is the marker of the page after
// this one, "" when the listing ended. The API gives no total. An error is
// returned as it is, so it keeps its retryable or permanent class.
type MarkerFunc func(ctx context.Context, from, to time.Time, marker string, limit int) (recs []Record, next string, err error)

// Options describe one stream's reader.
type Options struct {
	// Key names the stream in errors.
	Key string
	// Start is where a stream without cursor begins. Zero: MaxSpan before
	// now − SettleDelay. Records before it that the API lists are counted
	// as Excluded.BeforeStart.
	Start time.Time
	// End, when not zero, is where the stream stops (backfill's range
	// end, exclusive): no window reaches past it, and records at or after
	// it that the last window's query lists are counted as
	// Excluded.AfterEnd.
	End time.Time
	// Config is the shared windowing configuration.
	Config Config
	// MaxSpan is the longest time range the API accepts in one query, e.g.
	// 30 days. Required.
	MaxSpan time.Duration
	// Lookback is how much earlier than its window each query starts: the
	// longest span (Time − Begin) a record may have, so that an API that
	// filters on Begin or by overlap still lists it in its key's window.
	// Zero for records with one time. The reader raises it when a record
	// spanning longer shows up ahead of its window, and keeps it in the
	// cursor; it is capped at MaxSpan/2.
	Lookback time.Duration
	// PageSize is the "limit" of each request, 1..the API's maximum.
	PageSize int
	// Now is the clock that fixes the run's target and judges which
	// record times are plausible; it is read once, when a reader opens.
	Now func() time.Time
	// Fetch reads one page of an API paged by offset. Exactly one of
	// Fetch and FetchMarker is set.
	Fetch FetchFunc
	// FetchMarker reads one page of an API paged by marker (Cloud Trace
	// Service traces). Such a listing has no total: it ends when a page
	// carries no marker; pages are requested one at a time; a record
	// listed again within one listing (same id, second and bytes) is
	// skipped, not a reason to read it again (a marker may resume at or
	// before the record it names); a page that brings no new record yet
	// carries a marker makes the window be read again, then an error
	// (the marker did not advance). Each page after the first is joined
	// by the records of the previous page's last record's millisecond,
	// for its Time and its Begin (queries of [t − 1ms, t + 1ms], each
	// paged on its own, and of [t − 1ms, t] too when the first needed
	// more than a page), so that an API whose marker resumes strictly
	// before the marked record's time loses none of the records sharing
	// it. The last record is the one whose ID is the marker, else the
	// oldest of the page. Once the pages show that the API does not list
	// newest first by one of the two times, its query is left out.
	FetchMarker MarkerFunc
}

// Cursor is a stream's checkpoint: every record whose key is before
// Through was delivered.
type Cursor struct {
	Through time.Time `json:"through"`
	// LookbackSeconds is the look-back the reader had learnt (see
	// Options.Lookback), 0 when it has none.
	LookbackSeconds int64 `json:"lookback_s,omitempty"`
}

// maxLookbackSeconds bounds a decoded look-back (a year).
const maxLookbackSeconds = 366 * 24 * 3600

// DecodeCursor parses a checkpoint. Errors are permanent: retrying cannot
// repair a checkpoint.
//
// A cursor of the earlier form that carried "seen_ids" (the ids delivered
// of the second before Through) resumes at that second, which is then
// delivered again: nothing is skipped, and sinks dedupe the repeats.
func DecodeCursor(raw []byte) (Cursor, error) {
	var c struct {
		Cursor
		SeenIDs json.RawMessage `json:"seen_ids"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return Cursor{}, pipeline.Permanent(fmt.Errorf("not a window cursor: %w", err))
	}
	if c.Through.IsZero() {
		return Cursor{}, pipeline.Permanent(errors.New("window cursor has no \"through\" time"))
	}
	if c.Through.Year() < 1970 || c.Through.Year() > 9999 {
		return Cursor{}, pipeline.Permanent(fmt.Errorf("window cursor \"through\" %s is out of range", c.Through))
	}
	if c.LookbackSeconds < 0 || c.LookbackSeconds > maxLookbackSeconds {
		return Cursor{}, pipeline.Permanent(fmt.Errorf("window cursor look-back %ds is out of range", c.LookbackSeconds))
	}
	out := c.Cursor
	out.Through = out.Through.UTC().Truncate(time.Second)
	if len(c.SeenIDs) > 0 && string(c.SeenIDs) != "null" {
		out.Through = out.Through.Add(-time.Second)
	}
	return out, nil
}

// Encode returns the cursor as JSON. Its size does not depend on how many
// records were read.
func (c Cursor) Encode() []byte {
	c.Through = c.Through.UTC()
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a time and an integer always encode
	}
	return b
}

const (
	// maxAttempts bounds the reads of one window whose listing keeps
	// changing.
	maxAttempts = 4
	// maxWindowBytes caps the raw bytes a window's records hold while it
	// is delivered; a window that holds more is split, as for MaxRecords.
	maxWindowBytes = 32 << 20
	// MaxListed is the most records one query may list: no window of this
	// reader can hold more (MaxRecords is at most 10^6, and a second
	// holding 10^7 records would take days to read). A total or a listing
	// above it is an error, not a reason to page on.
	MaxListed = 10_000_000
	// maxInvalidIDs bounds the ids of invalid records a reader remembers so
	// as to dead-letter each once although look-back queries list it again.
	maxInvalidIDs = 10_000
	// futureSlack is how far past the clock a record's time may lie.
	futureSlack = 24 * time.Hour
)

// ErrListingChanged, wrapped in an error a FetchFunc returns, says that
// the page it was asked for cannot be joined to the pages of the listing
// before it (the source switched to another path whose order may differ,
// say): the listing is read again from its first page, as when its total
// changed. Records of a streamed second already delivered are delivered
// again; sinks dedupe them.
var ErrListingChanged = errors.New("the listing changed while paging")

// errTooMany reports a window that holds more than MaxRecords records or
// maxWindowBytes.
var errTooMany = errors.New("window holds too many records")

// plausibleFrom is the earliest record time taken as true.
var plausibleFrom = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Reader reads one stream window by window. It implements pipeline.Reader.
type Reader struct {
	o      Options
	now    time.Time // the clock when the reader opened
	target time.Time // where this reader stops
	end    time.Time // Options.End, or zero
	floor  time.Time // records before it are excluded (the start time)
	// start is Options.Start when the reader opened without a cursor:
	// records of the floor's second before it are excluded too.
	start time.Time

	through  time.Time
	lookback time.Duration
	span     time.Duration // the next window's length, adapted to density

	// The window being delivered from memory.
	open    bool
	pending []Record // undelivered, sorted by (time, id)
	winTo   time.Time
	tally   tally // what the window's first page reports besides records

	// The one-second window being streamed, or nil.
	sec *secondPass

	fetched     int64 // Records + Invalid + Excluded of the pages returned
	invalidSeen map[string]bool

	// Pages of the window being listed that were answered, kept across a
	// failed page (a 429, a 503) so that the retry asks only for what is
	// missing: a window of many pages under a steady error rate would
	// otherwise never be read whole. A listing that does not add up is
	// read afresh; see readWindow.
	cacheMu    sync.Mutex // pages are requested concurrently
	cache      map[pageKey]fetched
	cacheBytes int
	// markers are, in marker mode, what the page at a key is asked with:
	// the marker of the page before it and that page's last record.
	markers map[pageKey]markerAt
	// keyUnsorted and beginUnsorted are set, in marker mode, once a page
	// listed a record whose Time (Begin) is newer than one of the page
	// before it: the API does not list newest first by that time, so its
	// marker cannot resume by it, and the boundary query of that time's
	// millisecond is not needed (while the other time is not unsorted too).
	keyUnsorted, beginUnsorted bool
}

// markerAt is how the page after an answered page is asked for, in
// marker mode.
type markerAt struct {
	marker string
	last   Record // the answered page's last record, as listed
	// minKey and minBegin are the oldest key-field and begin-field times
	// of the answered page's records (see fields; zero when none had
	// one).
	minKey, minBegin time.Time
}

type pageKey struct {
	from, to time.Time
	offset   int
}

// tally is what a listing held besides the window's records.
type tally struct {
	invalid  []pipeline.Invalid
	skipped  int64
	excluded pipeline.Excluded
}

// NewReader opens a reader after cursor, or at o.Start when cursor is nil.
func NewReader(o Options, cursor []byte) (*Reader, error) {
	if (o.Fetch == nil) == (o.FetchMarker == nil) || o.Now == nil || o.MaxSpan < 4*time.Second || o.PageSize < 1 || o.Lookback < 0 {
		return nil, pipeline.Permanent(fmt.Errorf("%s: window reader misconfigured", o.Key))
	}
	if o.Config.MaxRecords < 1 {
		o.Config.MaxRecords = 5000
	}
	r := &Reader{o: o, now: o.Now().UTC(), span: o.MaxSpan, invalidSeen: map[string]bool{}}
	r.lookback = min(o.Lookback, r.maxLookback())
	limit := r.now.Add(-o.Config.SettleDelay).Truncate(time.Second)
	r.target = limit
	if !o.End.IsZero() {
		r.end = o.End.UTC()
		// Windows are whole seconds: the last one holds End's second, of
		// which the records at or after End are excluded.
		ceil := r.end.Truncate(time.Second)
		if ceil.Before(r.end) {
			ceil = ceil.Add(time.Second)
		}
		if ceil.Before(r.target) {
			r.target = ceil
		}
	}
	if cursor == nil {
		start := o.Start
		if start.IsZero() {
			start = limit.Add(-o.MaxSpan)
		}
		r.through = start.UTC().Truncate(time.Second)
		r.floor = r.through
		r.start = start.UTC()
		return r, nil
	}
	c, err := DecodeCursor(cursor)
	if err != nil {
		return nil, fmt.Errorf("checkpoint of %s: %w", o.Key, err)
	}
	r.through = c.Through
	r.lookback = min(max(r.lookback, time.Duration(c.LookbackSeconds)*time.Second), r.maxLookback())
	return r, nil
}

// Target is where this reader stops: now − SettleDelay when it opened, or
// Options.End (rounded up to a second) when that is earlier.
func (r *Reader) Target() time.Time { return r.target }

// Lookback is the reader's look-back now (see Options.Lookback).
func (r *Reader) Lookback() time.Duration { return r.lookback }

func (r *Reader) maxLookback() time.Duration {
	return (r.o.MaxSpan / 2).Truncate(time.Second)
}

// maxWindow is the longest window whose query (1s and the look-back
// before it) fits in MaxSpan.
func (r *Reader) maxWindow() time.Duration {
	return max(r.o.MaxSpan-r.lookback-time.Second, time.Second).Truncate(time.Second)
}

// Cursor is the position after everything Next returned so far.
func (r *Reader) Cursor() Cursor {
	return Cursor{Through: r.through, LookbackSeconds: int64(r.lookback / time.Second)}
}

// Next returns the next records, oldest first, or io.EOF once the target
// was reached. After an error the cursor has not moved.
func (r *Reader) Next(ctx context.Context) (pipeline.Page, error) {
	if r.open {
		return r.emit(), nil
	}
	if r.sec != nil {
		return r.nextInSecond(ctx)
	}
	if !r.through.Before(r.target) {
		return pipeline.Page{}, io.EOF
	}
	from := r.through
	span := min(r.span, r.maxWindow(), r.target.Sub(from))
	for {
		span = max(span.Truncate(time.Second), time.Second)
		to := from.Add(span)
		if span == time.Second {
			r.sec = &secondPass{from: from, to: to, total: -1}
			return r.nextInSecond(ctx)
		}
		kept, t, err := r.readWindow(ctx, from, to)
		if errors.Is(err, errTooMany) {
			span /= 2
			// Kept across a failure: a retry after a 429 starts from
			// what this one learnt, or a dense stretch under a steady
			// error rate would never be split down far enough to read.
			r.span = span
			continue
		}
		if err != nil {
			return pipeline.Page{}, err
		}
		// Grow again after a sparse window, towards the longest.
		if len(kept) < r.o.Config.MaxRecords/4 {
			r.span = min(2*span, r.o.MaxSpan)
		} else {
			r.span = span
		}
		r.open, r.pending, r.winTo, r.tally = true, kept, to, t
		return r.emit(), nil
	}
}

// emit returns the next chunk of the open window; the cursor moves to the
// second of the first record not yet returned, or to the window's end
// after its last chunk.
func (r *Reader) emit() pipeline.Page {
	n := min(len(r.pending), r.o.PageSize)
	chunk := r.pending[:n]
	r.pending = r.pending[n:]
	page := pipeline.Page{
		Records:   make([][]byte, 0, n),
		Remaining: int64(len(r.pending)),
		Skipped:   r.tally.skipped,
		Invalid:   r.tally.invalid,
		Excluded:  r.tally.excluded,
	}
	r.tally = tally{}
	for _, rec := range chunk {
		page.Records = append(page.Records, rec.Raw)
	}
	if len(r.pending) > 0 {
		if next := r.pending[0].Time.Truncate(time.Second); next.After(r.through) {
			r.through = next
		}
	} else {
		r.open, r.pending = false, nil
		if r.winTo.After(r.through) {
			r.through = r.winTo
		}
	}
	return r.finish(page)
}

// finish counts page towards Total and sets its cursor.
func (r *Reader) finish(page pipeline.Page) pipeline.Page {
	r.fetched += int64(len(page.Records)+len(page.Invalid)) + page.Excluded.Total()
	page.Total = r.fetched
	page.Cursor = r.Cursor().Encode()
	return page
}

// query returns the range asked of the API for the window [from, to).
func (r *Reader) query(from, to time.Time) (time.Time, time.Time) {
	return from.Add(-time.Second - r.lookback), to
}

// readWindow reads the records of [from, to), sorted by (time, id), with
// what else the listing held.
func (r *Reader) readWindow(ctx context.Context, from, to time.Time) ([]Record, tally, error) {
	qFrom, qTo := r.query(from, to)
	var (
		problem       string
		total, listed int64
	)
	for range maxAttempts {
		l, err := r.list(ctx, from, to)
		if err != nil {
			if errors.Is(err, errTooMany) || pipeline.IsPermanent(err) {
				r.dropPages()
			}
			return nil, tally{}, err
		}
		r.dropPages() // a consistent listing is done with; another is read afresh
		if l.problem == "" {
			kept := l.kept
			slices.SortFunc(kept, func(a, b Record) int {
				if c := a.Time.Compare(b.Time); c != 0 {
					return c
				}
				return strings.Compare(a.ID, b.ID)
			})
			l.tally.invalid = r.firstSightings(l.tally.invalid, &l.tally)
			return kept, l.tally, nil
		}
		problem, total, listed = l.problem, l.total, l.listed
		if l.listed < l.total && absurd(l.total, l.listed, r.o.PageSize) {
			break // reading again will not make such a total true
		}
	}
	return nil, tally{}, r.inconsistent(qFrom, qTo, problem, total, listed)
}

// inconsistent is the error for a window whose listing never added up: a
// total far above what the pages held is permanent (the API lies; reading
// again will not help), anything else retryable (the listing may settle).
func (r *Reader) inconsistent(qFrom, qTo time.Time, problem string, total, listed int64) error {
	err := fmt.Errorf("%s: window %s..%s inconsistent (%s); page size %d",
		r.o.Key, qFrom.Format(time.RFC3339), qTo.Format(time.RFC3339), problem, r.o.PageSize)
	if listed < total && absurd(total, listed, r.o.PageSize) {
		return pipeline.Permanent(fmt.Errorf("%w: the API's total_count/total_num is not a count of what it lists; the stream cannot be read until the API answers consistently", err))
	}
	return err
}

// absurd reports a total that cannot be a count of a listing that held
// listed records: above MaxListed, or more than twice the listing and ten
// pages beyond it.
func absurd(total, listed int64, limit int) bool {
	return total > MaxListed || total > 2*listed+10*int64(limit)
}

// listing is one pass over a window's query.
type listing struct {
	kept    []Record
	tally   tally
	total   int64 // the first page's
	listed  int64
	problem string // why the pass is not a consistent listing, or ""
}

// list pages through the query of [from, to) until the pages end, keeping
// the window's records and tallying the rest. Pages are requested up to
// Config.Concurrency at a time, no further than the first page's total
// suggests (plus one page, to see the end).
func (r *Reader) list(ctx context.Context, from, to time.Time) (listing, error) {
	qFrom, qTo := r.query(from, to)
	size := r.o.PageSize
	var (
		l   = listing{total: -1}
		ids = map[string]bool{}
		// listedIDs are, in marker mode, the records the marker pages
		// listed (not the boundary queries), which a page must add to.
		listedIDs = map[string]bool{}
		bytes     int
	)
	for offset := 0; ; {
		n := 1
		if l.total >= 0 {
			ahead := int((max(l.total-int64(offset), 0) + int64(size) - 1) / int64(size))
			n = min(max(r.o.Config.Concurrency, 1), max(ahead, 1))
		}
		pages, err := r.pages(ctx, qFrom, qTo, offset, n)
		if errors.Is(err, ErrListingChanged) {
			// Not a total to judge: the listing was cut short.
			l.problem, l.total = err.Error(), -1
			return l, nil
		}
		if err != nil {
			return listing{}, err
		}
		for _, p := range pages {
			if r.marker() {
				if p.more && !p.fresh(listedIDs) {
					l.problem = "the marker did not advance"
					return l, nil
				}
				for _, rec := range p.recs[:p.listed] {
					listedIDs[repeatKey(rec)] = true
				}
			} else if l.total < 0 {
				l.total = p.total
				if r.lookback == 0 && p.total > int64(r.o.Config.MaxRecords) {
					// Without look-back the query is the window and a
					// second either side: the total, a hint, says split.
					return listing{}, errTooMany
				}
			} else if p.total != l.total {
				l.problem = "the total changed while paging"
				return l, nil
			}
			l.listed += int64(len(p.recs))
			if l.listed > MaxListed {
				return listing{}, pipeline.Permanent(fmt.Errorf("%s: window %s..%s: the API listed more than %d records, more than any window holds; it may ignore the time range or the offset",
					r.o.Key, qFrom.Format(time.RFC3339), qTo.Format(time.RFC3339), MaxListed))
			}
			for _, rec := range p.recs {
				if r.marker() {
					// A marker may resume at the record it names and the
					// boundary query lists its millisecond again: a
					// repeat (the same bytes) is skipped before it is
					// classified, so it is counted once.
					if at := repeatKey(rec); ids[at] {
						l.tally.skipped++
						continue
					} else {
						ids[at] = true
					}
				}
				if !r.classify(&rec, from, to, &l.tally) {
					continue
				}
				if rec.ID == "" {
					rec.ID = rawID(rec.Raw)
				}
				if !r.marker() {
					// The same id in two seconds is two records (ids are
					// only documented unique per time, if at all); in one
					// second, a listing that repeated itself.
					at := idAt(rec)
					if ids[at] {
						l.problem = fmt.Sprintf("id %q listed twice", rec.ID)
						return l, nil
					}
					ids[at] = true
				}
				rec.Raw = slices.Clone(rec.Raw) // the page body is not kept alive
				bytes += len(rec.Raw)
				l.kept = append(l.kept, rec)
				if len(l.kept)+len(l.tally.invalid) > r.o.Config.MaxRecords || bytes+invalidBytes(l.tally.invalid) > maxWindowBytes {
					return listing{}, errTooMany
				}
			}
			if !p.more {
				if l.listed < l.total {
					l.problem = fmt.Sprintf("pages held %d records, total %d", l.listed, l.total)
				}
				return l, nil
			}
			offset += size
		}
	}
}

func invalidBytes(inv []pipeline.Invalid) int {
	n := 0
	for _, x := range inv {
		n += len(x.Raw)
	}
	return n
}

type fetched struct {
	recs  []Record
	total int64 // -1 in marker mode
	more  bool  // another page follows
	// listed is how many of recs the page itself listed; the rest came
	// from the boundary query (marker mode).
	listed int
}

// fresh reports whether the page listed a record whose repeatKey is not
// in ids.
func (f fetched) fresh(ids map[string]bool) bool {
	for _, rec := range f.recs[:f.listed] {
		if !ids[repeatKey(rec)] {
			return true
		}
	}
	return false
}

// idAt is a record's id and second: the same id in two seconds is two
// records (ids are only documented unique per time, if at all).
func idAt(rec Record) string {
	id := rec.ID
	if id == "" {
		id = rawID(rec.Raw)
	}
	return id + "@" + rec.Time.UTC().Truncate(time.Second).Format(time.RFC3339)
}

// repeatKey identifies a record listed again in marker mode: its id,
// second and bytes. Two records that share an id and a second but differ
// are two records.
func repeatKey(rec Record) string {
	return idAt(rec) + "#" + rawID(rec.Raw)
}

// marker reports whether the API is paged by marker.
func (r *Reader) marker() bool { return r.o.FetchMarker != nil }

// pages requests n pages from offset on, concurrently, in order.
func (r *Reader) pages(ctx context.Context, from, to time.Time, offset, n int) ([]fetched, error) {
	if n == 1 || r.marker() {
		f, err := r.page(ctx, from, to, offset)
		return []fetched{f}, err
	}
	out := make([]fetched, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = r.page(ctx, from, to, offset+i*r.o.PageSize)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		// The pages answered before it cannot be joined to what follows:
		// another page's error (a 429) must not keep them for the retry.
		if errors.Is(err, ErrListingChanged) {
			return nil, err
		}
	}
	for i, err := range errs {
		if err != nil {
			// Pages before the failed one are kept only if one ended the
			// listing; otherwise the whole batch is asked again.
			for _, p := range out[:i] {
				if !p.more {
					return out[:i], nil
				}
			}
			return nil, err
		}
	}
	return out, nil
}

// page requests the records at offset and checks the answer's shape. An
// answer kept from an earlier attempt at the same listing is used again.
func (r *Reader) page(ctx context.Context, from, to time.Time, offset int) (fetched, error) {
	key := pageKey{from, to, offset}
	r.cacheMu.Lock()
	p, ok := r.cache[key]
	r.cacheMu.Unlock()
	if ok {
		return p, nil
	}
	f, err := r.fetchPage(ctx, from, to, offset)
	if err != nil {
		return fetched{}, err
	}
	n := 0
	for _, rec := range f.recs {
		n += len(rec.Raw)
	}
	r.cacheMu.Lock()
	if r.cacheBytes+n <= maxWindowBytes {
		if r.cache == nil {
			r.cache = map[pageKey]fetched{}
		}
		r.cache[key] = f
		r.cacheBytes += n
	}
	r.cacheMu.Unlock()
	return f, nil
}

// fetchPage requests the records at offset and checks the answer's shape.
func (r *Reader) fetchPage(ctx context.Context, from, to time.Time, offset int) (fetched, error) {
	if r.marker() {
		return r.fetchMarked(ctx, from, to, offset)
	}
	size := r.o.PageSize
	recs, t, err := r.o.Fetch(ctx, from, to, offset, size)
	if err != nil {
		return fetched{}, err
	}
	if t < 0 || len(recs) > size {
		return fetched{}, pipeline.Permanent(fmt.Errorf("%s: page at offset %d has %d records and total %d for limit %d", r.o.Key, offset, len(recs), t, size))
	}
	return fetched{recs: recs, total: t, more: len(recs) >= size, listed: len(recs)}, nil
}

// seenPages is how many pages' records a streamed second in marker mode
// remembers to skip their repeats (see secondPass.seen).
const seenPages = 3

// maxBoundaryPages bounds the pages of one boundary query: a millisecond
// holding more than this many pages of records is not a listing any API
// serves.
const maxBoundaryPages = 100

// fetchMarked requests the page at offset of a marker-paged listing: the
// first page, or the page after the one answered at offset − limit, asked
// with its marker and joined by the records of its last record's
// millisecond (see Options.FetchMarker).
func (r *Reader) fetchMarked(ctx context.Context, from, to time.Time, offset int) (fetched, error) {
	size := r.o.PageSize
	var at markerAt
	if offset > 0 {
		r.cacheMu.Lock()
		a, ok := r.markers[pageKey{from, to, offset}]
		r.cacheMu.Unlock()
		if !ok {
			return fetched{}, fmt.Errorf("%s: page %d of a marker listing asked before the page before it", r.o.Key, offset/size+1)
		}
		at = a
	}
	recs, next, err := r.o.FetchMarker(ctx, from, to, at.marker, size)
	if err != nil {
		return fetched{}, err
	}
	if len(recs) > size {
		return fetched{}, pipeline.Permanent(fmt.Errorf("%s: page %d has %d records for limit %d", r.o.Key, offset/size+1, len(recs), size))
	}
	if next != "" && next == at.marker {
		err := fmt.Errorf("%s: page %d carries the marker it was asked with, %q", r.o.Key, offset/size+1, next)
		if ms, ok := sharedMilli(recs); ok && len(recs) >= size {
			// An API whose marker resumes at the marked record's time
			// serves the same page again: no marker pages past it.
			err = fmt.Errorf("%w: its %d records share the millisecond %s, and the API's marker does not page past a millisecond fuller than a page", err, len(recs), ms.Format(time.RFC3339Nano))
		}
		return fetched{}, err
	}
	f := fetched{recs: recs, total: -1, more: next != "", listed: len(recs)}
	if offset > 0 {
		r.learnOrder(recs, at)
	}
	if offset > 0 && !at.last.Time.IsZero() {
		// The API may order and mark by the record's key or by its
		// begin: the millisecond of each is asked for, unless the pages
		// showed the API does not list by it.
		var edges []time.Time
		k, b, ok := fields(at.last)
		if !r.keyUnsorted || r.beginUnsorted {
			edges = append(edges, k)
		}
		if ok && !b.Equal(k) && (!r.beginUnsorted || r.keyUnsorted) {
			edges = append(edges, b)
		}
		for _, e := range edges {
			extra, err := r.boundary(ctx, e)
			if err != nil {
				return fetched{}, err
			}
			f.recs = append(slices.Clip(f.recs), extra...)
		}
	}
	if f.more {
		r.cacheMu.Lock()
		if r.markers == nil {
			r.markers = map[pageKey]markerAt{}
		}
		at := markerAt{marker: next}
		if i := markedRecord(recs, next); i >= 0 {
			m := recs[i]
			at.last = Record{ID: m.ID, Time: m.Time, Begin: m.Begin, Swapped: m.Swapped} // not the page body
		}
		for _, rec := range recs {
			k, b, ok := fields(rec)
			if !k.IsZero() && (at.minKey.IsZero() || k.Before(at.minKey)) {
				at.minKey = k
			}
			if ok && (at.minBegin.IsZero() || b.Before(at.minBegin)) {
				at.minBegin = b
			}
		}
		r.markers[pageKey{from, to, offset + size}] = at
		r.cacheMu.Unlock()
	}
	return f, nil
}

// sharedMilli reports the millisecond that every record of recs has by
// its key field or every record has by its begin field (see fields).
func sharedMilli(recs []Record) (time.Time, bool) {
	if len(recs) == 0 {
		return time.Time{}, false
	}
	same := func(at func(Record) (time.Time, bool)) (time.Time, bool) {
		first, ok := at(recs[0])
		if !ok {
			return time.Time{}, false
		}
		first = first.Truncate(time.Millisecond)
		for _, rec := range recs[1:] {
			t, ok := at(rec)
			if !ok || !t.Truncate(time.Millisecond).Equal(first) {
				return time.Time{}, false
			}
		}
		return first, true
	}
	if ms, ok := same(func(rec Record) (time.Time, bool) { k, _, _ := fields(rec); return k, !k.IsZero() }); ok {
		return ms, true
	}
	return same(func(rec Record) (time.Time, bool) { _, b, ok := fields(rec); return b, ok })
}

// learnOrder notes, from a page that followed the page at, a record newer
// by its key field or its begin field (see fields) than that page's
// oldest: the API does not list newest first by that field (see
// Reader.keyUnsorted).
func (r *Reader) learnOrder(recs []Record, at markerAt) {
	for _, rec := range recs {
		k, b, ok := fields(rec)
		if !at.minKey.IsZero() && k.After(at.minKey) {
			r.keyUnsorted = true
		}
		if ok && !at.minBegin.IsZero() && b.After(at.minBegin) {
			r.beginUnsorted = true
		}
	}
}

// begin returns rec's Begin when it is a plausible time not after Time.
func begin(rec Record) (time.Time, bool) {
	b := rec.Begin
	return b, !b.IsZero() && !b.Before(plausibleFrom) && !b.After(rec.Time)
}

// markedRecord returns the index of the record of recs that marker names
// (APIs whose marker is the id of the page's last record), else of the
// oldest record with a time (the last of a newest-first page, whatever
// order the page itself is in); -1 when no record has a time.
func markedRecord(recs []Record, marker string) int {
	oldest := -1
	for i, rec := range recs {
		if rec.ID == marker && !rec.Time.IsZero() {
			return i
		}
		if !rec.Time.IsZero() && (oldest < 0 || rec.Time.Before(recs[oldest].Time)) {
			oldest = i
		}
	}
	return oldest
}

// boundary lists the records of the millisecond e: those the API lists
// between e − 1ms and e + 1ms (so that e is in the range whether the
// bounds are inclusive or not), following markers.
//
// When that range fills more than a page, the API's marker may cut e
// itself short: with inclusive bounds the records of e + 1ms come first
// (newest first), a page may end inside e, and a marker that resumes
// strictly before the marked time skips the rest of e. The range that
// ends at e is then asked too: with an inclusive "to" it lists e first,
// ahead of e − 1ms, so a page ends inside e only when e alone fills it
// (the documented limit); with an exclusive "to" the first range already
// listed e first. Repeats of the two are skipped by the caller.
func (r *Reader) boundary(ctx context.Context, e time.Time) ([]Record, error) {
	out, paged, err := r.boundaryRange(ctx, e.Add(-time.Millisecond), e.Add(time.Millisecond))
	if err != nil || !paged {
		return out, err
	}
	more, _, err := r.boundaryRange(ctx, e.Add(-time.Millisecond), e)
	if err != nil {
		return nil, err
	}
	return append(out, more...), nil
}

// boundaryRange lists every record between from and to, following
// markers, and reports whether it took more than one page.
func (r *Reader) boundaryRange(ctx context.Context, from, to time.Time) (_ []Record, paged bool, _ error) {
	var out []Record
	marker := ""
	for range maxBoundaryPages {
		recs, next, err := r.o.FetchMarker(ctx, from, to, marker, r.o.PageSize)
		if err != nil {
			return nil, false, err
		}
		out = append(out, recs...)
		if next == "" || next == marker || len(recs) == 0 {
			return out, marker != "", nil
		}
		marker = next
	}
	return nil, false, pipeline.Permanent(fmt.Errorf("%s: the records of %s..%s fill more than %d pages; the API may ignore the marker or the time range",
		r.o.Key, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), maxBoundaryPages))
}

// dropPages forgets the answers kept for the listing being read.
func (r *Reader) dropPages() {
	r.cacheMu.Lock()
	defer r.cacheMu.Unlock()
	clear(r.cache)
	clear(r.markers)
	r.cacheBytes = 0
}

// classify reports whether rec is a record of the window [from, to) that
// can be delivered; otherwise it counts it in t: invalid, excluded by the
// start or end, or skipped as another window's. Any record whose span
// exceeds the look-back raises it: one ahead of the window, so that its
// own window's query reaches back to its begin; one inside it, so that a
// run resuming from a cursor in the middle of this window does too (the
// cursors of its pages carry the raised look-back).
func (r *Reader) classify(rec *Record, from, to time.Time, t *tally) bool {
	if why := r.implausible(rec.Time); why != "" {
		t.invalid = append(t.invalid, pipeline.Invalid{Raw: slices.Clone(rec.Raw), Reason: why})
		return false
	}
	rec.Time = rec.Time.UTC()
	sec := rec.Time.Truncate(time.Second)
	r.learn(rec)
	switch {
	case !sec.Before(to):
		if !r.end.IsZero() && !rec.Time.Before(r.end) && !to.Before(r.target) {
			t.excluded.AfterEnd++
			return false
		}
		t.skipped++
		return false
	case !r.end.IsZero() && !rec.Time.Before(r.end):
		// In the last window, after End within its second.
		t.excluded.AfterEnd++
		return false
	case from.Equal(r.floor) && sec.Equal(r.floor) && rec.Time.Before(r.start):
		// In the first window, before Start within its second (times
		// finer than a second).
		t.excluded.BeforeStart++
		return false
	case sec.Before(from):
		if sec.Before(r.floor) && from.Equal(r.floor) {
			t.excluded.BeforeStart++ // counted in the first window only
		} else {
			t.skipped++
		}
		return false
	}
	return true
}

// learn raises the look-back to rec's span when it spans longer: the
// query of any window holding its end must reach back to its begin,
// whichever time the API filters on (see classify).
func (r *Reader) learn(rec *Record) {
	if rec.Begin.IsZero() || rec.Begin.Before(plausibleFrom) || !rec.Begin.Before(rec.Time) {
		return
	}
	if span := rec.Time.Sub(rec.Begin); span > r.lookback {
		// Whole minutes, so a string of slightly longer files does not
		// raise it each time.
		r.lookback = min((span + time.Minute - 1).Truncate(time.Minute), r.maxLookback())
	}
}

// implausible returns why a record time cannot place a record, or "".
func (r *Reader) implausible(t time.Time) string {
	switch {
	case t.IsZero():
		return "record has no usable time, so it cannot be placed in a time window"
	case t.Before(plausibleFrom):
		return fmt.Sprintf("record time %s is before 2000, so it cannot be true", t.UTC().Format(time.RFC3339))
	case t.After(r.now.Add(futureSlack)):
		return fmt.Sprintf("record time %s is more than %s after the reader's clock (%s)", t.UTC().Format(time.RFC3339), futureSlack, r.now.Format(time.RFC3339))
	}
	return ""
}

// firstSightings returns the invalid records this reader did not report
// before; the others are counted as skipped in t (look-back queries list a
// record several times).
func (r *Reader) firstSightings(inv []pipeline.Invalid, t *tally) []pipeline.Invalid {
	out := inv[:0]
	for _, x := range inv {
		id := rawID(x.Raw)
		if r.invalidSeen[id] {
			t.skipped++
			continue
		}
		if len(r.invalidSeen) < maxInvalidIDs {
			r.invalidSeen[id] = true
		}
		out = append(out, x)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func rawID(raw []byte) string { return "raw:" + ecsdoc.ID(string(raw)) }

// secondPass streams the one-second window [from, to): each Next reads one
// page of its query and returns the second's records in it. The cursor
// stays at from until the pages ended and added up; a pass whose listing
// changed is started again.
type secondPass struct {
	from, to   time.Time
	qFrom, qTo time.Time // the pass's query, fixed when it starts
	offset     int
	total      int64 // the pass's first page's, -1 before it
	listed     int64
	kept       int64
	attempt    int
	restart    string   // why the pass starts again at the next Next, or ""
	prevIDs    []string // the ids of the previous page
	// seen are, in marker mode, the repeatKeys of the last pages'
	// records (boundary queries included), which the next page may list
	// again: a marker resuming at the record it names relists the page
	// before, and a boundary query with inclusive bounds relists the
	// millisecond after the page edge, whose records may lie up to two
	// pages back when a millisecond fills most of a page.
	seen []map[string]bool
	// listedIDs are the repeatKeys of the records the previous marker
	// page listed itself, which the next page must add to.
	listedIDs map[string]bool
	err       error // returned by the next Next, after the page that found it
}

func (r *Reader) nextInSecond(ctx context.Context) (pipeline.Page, error) {
	p := r.sec
	if p.err != nil {
		err := p.err
		// A retry reads the second afresh.
		*p = secondPass{from: p.from, to: p.to, total: -1}
		return pipeline.Page{}, err
	}
	if p.restart != "" {
		p.offset, p.total, p.listed, p.kept, p.prevIDs, p.seen, p.listedIDs, p.restart = 0, -1, 0, 0, nil, nil, nil, ""
	}
	if p.offset == 0 {
		p.qFrom, p.qTo = r.query(p.from, p.to)
		r.dropPages() // the markers of an earlier pass
	}
	qFrom, qTo := p.qFrom, p.qTo
	size := r.o.PageSize
	// A streamed page is delivered at once: nothing to keep.
	f, err := r.fetchPage(ctx, qFrom, qTo, p.offset)
	if errors.Is(err, ErrListingChanged) {
		// The pass starts again; what it delivered is delivered again.
		if p.attempt++; p.attempt >= maxAttempts {
			p.err = r.inconsistent(qFrom, qTo, err.Error(), -1, p.listed)
		}
		p.restart = err.Error()
		return r.finish(pipeline.Page{Remaining: -1}), nil
	}
	if err != nil {
		return pipeline.Page{}, err
	}
	recs, total := f.recs, f.total
	var (
		t    tally
		page = pipeline.Page{Remaining: -1}
		ids  = make([]string, 0, len(recs))
	)
	changed := ""
	switch {
	case p.total < 0:
		p.total = total
	case total != p.total:
		changed = "the total changed while paging"
	}
	if r.marker() && f.more && !f.fresh(p.listedIDs) {
		changed = "the marker did not advance"
	}
	seen := map[string]bool{}
	for _, rec := range recs {
		id := rec.ID
		if id == "" {
			id = rawID(rec.Raw)
		}
		if r.marker() {
			// A repeat of the page before or of this page (a marker
			// resuming at the record it names, the boundary query) is
			// skipped: repeats come from the page edges only.
			at := repeatKey(rec)
			if seen[at] || slices.ContainsFunc(p.seen, func(m map[string]bool) bool { return m[at] }) {
				t.skipped++
				continue
			}
			seen[at] = true
		} else if changed == "" && slices.Contains(p.prevIDs, id) {
			// An API that ignores offset serves the same page again.
			changed = fmt.Sprintf("id %q listed twice", id)
		}
		ids = append(ids, id)
		if !r.classify(&rec, p.from, p.to, &t) {
			continue
		}
		page.Records = append(page.Records, rec.Raw)
	}
	page.Invalid = r.firstSightings(t.invalid, &t)
	page.Skipped, page.Excluded = t.skipped, t.excluded
	p.prevIDs = ids
	if r.marker() {
		if p.seen = append(p.seen, seen); len(p.seen) > seenPages {
			p.seen = slices.Delete(p.seen, 0, 1)
		}
	}
	if r.marker() {
		p.listedIDs = map[string]bool{}
		for _, rec := range recs[:f.listed] {
			p.listedIDs[repeatKey(rec)] = true
		}
	}
	p.listed += int64(f.listed)
	p.kept += int64(len(page.Records))
	p.offset += size
	if p.listed > MaxListed {
		p.err = pipeline.Permanent(fmt.Errorf("%s: second %s: the API listed more than %d records, more than any second holds; it may ignore the time range or the offset",
			r.o.Key, p.from.Format(time.RFC3339), MaxListed))
		return r.finish(page), nil
	}
	ended := !f.more
	if !ended && changed == "" {
		return r.finish(page), nil
	}
	if changed == "" && p.listed < p.total {
		changed = fmt.Sprintf("pages held %d records, total %d", p.listed, p.total)
	}
	if changed == "" {
		// The second was delivered whole.
		if p.kept < int64(r.o.Config.MaxRecords)/4 {
			r.span = 2 * time.Second
		} else {
			r.span = time.Second
		}
		r.sec, r.through = nil, p.to
		return r.finish(page), nil
	}
	p.attempt++
	if p.listed < p.total && absurd(p.total, p.listed, size) {
		p.attempt = maxAttempts // reading again will not make such a total true
	}
	if p.attempt >= maxAttempts {
		p.err = r.inconsistent(qFrom, qTo, changed, p.total, p.listed)
	}
	p.restart = changed
	return r.finish(page), nil
}
