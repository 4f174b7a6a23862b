// Package newestfirst reads an audit list that an API serves newest first
// with offset paging (offset a multiple of limit) and delivers it oldest
// first, each record once, while new records keep arriving at its head.
//
// New records shift every offset while we page, and a first run or a
// backfill may be millions of records behind. The Reader therefore:
//
//   - locates the boundary between delivered and new records (the newest
//     record at or below the high-water mark) with a binary search over pages,
//     holding one page in memory at a time;
//   - walks from there toward the head, each request choosing a limit and an
//     offset whose page contains the boundary record itself, so the page
//     proves by keys that nothing lies between what was delivered and what it
//     emits, however much the list moved in between;
//   - emits only records newer than the high-water mark, oldest first.
//
// Positions are only hints; keys decide. This holds through head inserts,
// retention deleting the oldest records, and pages that fail and are retried.
//
// With Config.Concurrency above one, the walk toward the head keeps several
// requests in flight: the pages that would follow if the list stays as it
// is. They are judged in order, exactly as if each had been requested
// alone, so nothing but speed depends on the guess; a guess the list
// proved wrong is dropped and the walk plans again from what it knows.
//
// While the list stands still, the pages ahead are whole aligned pages
// (offset a multiple of the largest limit), each accepted when it abuts
// the last one: a full page per request, where overlapping pages carry 88
// new records per 100 at best. An abutting page holds no record it shares
// with the page below it, so keys cannot prove it; the head of the list
// does. Positions shift only when records are inserted at the head
// (retention deleting the oldest records moves no position counted from
// the head), and an insert changes the newest key. So an abutting page is
// accepted only once a head check (the page of limit 1 at offset 0), sent
// after it and the page below it were answered, shows the same newest key
// as the run's first response: no record arrived while both were served.
// The total alone cannot tell this: a list capped at a number of records
// deletes one at the tail for every one inserted, and its total never
// moves. Head checks run one at a time beside the pages, each covering
// every page answered before it was sent, so they cost about one request
// per round of pages and no round trips. Once a check or two responses'
// totals show the list moving, every page ahead overlaps the one before it
// by the margin arrivals need, so that keys prove every step.
package newestfirst

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// MaxSkip bounds Mark.Skip in a checkpoint: it counts records above the
// mark that a run delivered, and no list holds more. Sources refuse a
// checkpoint beyond it (only a hand-edited one can carry it).
const MaxSkip = 1 << 40

// MinPageSize is the smallest MaxPageSize the Reader accepts: below it the
// reader could not always choose a page that overlaps what it delivered.
const MinPageSize = 20

// Record is one entry of a page, with what paging needs to know of it.
type Record[K any] struct {
	// Raw is the record as the API sent it; it is what a Page delivers.
	Raw []byte
	// Key orders the list: newer records have greater keys. HasKey is false
	// when the record carries no usable key; such a record is delivered but
	// cannot serve as a high-water mark.
	Key    K
	HasKey bool
	// Time is the record's event time, used on a first run to tell
	// records before the start time and with Config.End to tell records
	// after the end. HasTime is false when it has none.
	Time    time.Time
	HasTime bool
	// Invalid, when set, is why the source refuses the record (a key of
	// the wrong JSON type, say): it is dead-lettered with this reason
	// and never used as a key or a time.
	Invalid string
}

// Fetch requests the page of limit records at offset (a multiple of limit)
// and returns them newest first, with the list's current total. It must
// return at most limit records. An error leaves the Reader unchanged; it is
// returned by Next as it is, so mark it pipeline.Permanent where retrying
// cannot help.
type Fetch[K any] func(ctx context.Context, offset, limit int64) (recs []Record[K], total int64, err error)

// Config parameterises a Reader.
type Config[K any] struct {
	// Name identifies the list in errors, e.g. the stream key.
	Name string
	// Fetch requests one page.
	Fetch Fetch[K]
	// MaxPageSize is the largest limit a request may use, MinPageSize or
	// more (the API's maximum is best: fewer requests).
	MaxPageSize int
	// Start is where a run without Mark begins: records whose time is
	// before Start count as delivered.
	Start time.Time
	// Compare orders keys: negative when a < b, zero when equal, positive
	// when a > b.
	Compare func(a, b K) int
	// Concurrency is how many requests the walk toward the head keeps in
	// flight. Fetch must then be safe for concurrent use. Default 1.
	Concurrency int
	// End, when set, ends the range: records whose time is at or after
	// End are counted as excluded, not delivered, and the walk stops once
	// two consecutive records (oldest first) show it passed End, so that
	// one record with a wrong time cannot end the range early.
	End time.Time
	// Now is the clock that tells a time from the future. Default
	// time.Now.
	Now func() time.Time
}

// Mark is the high-water mark, what a checkpoint must keep to resume.
type Mark[K any] struct {
	// Key is the greatest key delivered.
	Key K
	// Time is that record's time, zero when it had none; it is for people
	// reading the checkpoint.
	Time time.Time
	// Skip counts records newer than Key that were delivered although they
	// carried no usable key.
	Skip int
	// FromEnd is the mark's position counted from the oldest record, a hint
	// that saves the search on the next run.
	FromEnd int64
}

// Page is what one call of Next delivers.
type Page[K any] struct {
	// Records are the raw records, oldest first.
	Records [][]byte
	// Mark is the high-water mark after Records, nil when no record so far
	// had a key (a first run must then start from Start again).
	Mark *Mark[K]
	// Remaining counts the records still to read after this page.
	Remaining int64
	// Total counts, by the list's positions and totals, the new records
	// from where this Reader started up to and including this page: what
	// the records delivered so far add up to when nothing went missing.
	// Retention deleting records during the run makes it drift.
	Total int64
	// Skipped counts the records of this page's response that had been
	// delivered before (the overlap that proves contiguity).
	Skipped int64
	// Invalid are the records of this page that the source or the
	// Reader refused, with the reason: a key out of order with its
	// response, a time that cannot be true, what Record.Invalid said.
	Invalid []pipeline.Invalid
	// Excluded counts the records of this page before Config.Start (on a
	// first run) or at or after Config.End.
	Excluded pipeline.Excluded
}

// maxProbes bounds the requests one Next may spend locating its page.
const maxProbes = 128

// Reader delivers a newest-first list oldest first. It is not safe for
// concurrent use.
//
// The boundary g is the index of the newest record already delivered: the
// first record whose key is at or below the high-water mark (or, on a first
// run, whose time is before the start time). Records above index
// b = g - skip are new. Indexes are relative to a list of total records and
// shift by the growth of total between responses.
type Reader[K any] struct {
	cfg Config[K]

	hasMark bool // false on a first run: "delivered" means older than start
	mark    K    // high-water key
	skip    int  // key-less records above the mark that were delivered
	markAt  time.Time

	started bool // total is known
	total   int64
	exact   bool // g is known: b is the boundary to walk up from
	proven  bool // with exact: keys proved b (not a hint or a search's narrowing)
	// positional: a first run delivered records down to b without a key
	// to mark them; positions, not keys, say what is new above b.
	positional bool
	b          int64 // with exact: index of the newest delivered record
	lo, hi     int64 // without exact: g lies in [lo, hi]
	hint       int64 // position of the mark counted from the end, from the checkpoint; -1 none
	growth     int64 // how much the list grew between the last two responses
	blind      bool  // the planned page cannot contain g; see plan
	done       bool

	// moving: two responses of this run reported different totals. From
	// then on pages ahead overlap the page before them (see refill).
	moving bool
	// slack is a margin learnt from pages the list moved away from
	// although its total stood still: records were deleted as they were
	// inserted.
	slack int64

	hasBase bool  // base is set: the first page was emitted
	base    int64 // records at or below the start, counted from the end

	firstRun bool // opened without a mark: records before Start are excluded
	pastEnd  int  // consecutive records, oldest first, at or after End

	ahead    []*flight[K]  // requests in flight, in the order they are judged
	depth    int           // how many may be in flight now, 1..Concurrency
	answered chan struct{} // a request ahead got its answer

	// The head check; see the package comment. clock orders the sending
	// and answering of requests, which run concurrently.
	clock atomic.Int64
	// head is the newest key of the run's first response; headEmpty says
	// the list was empty then. Without headKnown nothing can be checked
	// and the list is treated as moving.
	head      K
	headKnown bool
	headEmpty bool
	judged    int64        // the latest answer stamp of the responses judged
	stillTo   int64        // head checks sent before this stamp found the head unchanged
	check     *flight[K]   // the head check in flight, nil when none
	largest   atomic.Int64 // bytes of the largest page answered ahead
	checkErr  error        // the last head check's failure, kept for confirmStill
	checkSent int64        // when that failed check was sent
}

// flight is a request started ahead of its turn.
type flight[K any] struct {
	offset, limit int64
	// abut: the page was planned to end right above the page before it,
	// without overlap; see evaluate.
	abut bool
	// probe: one of several pages requested at once to find the boundary.
	probe bool
	// sent and at stamp, on the Reader's clock, when the request was sent
	// and when its answer arrived.
	sent, at int64
	cancel   context.CancelFunc
	done     chan struct{}
	bytes    int64 // of recs' raw records, set with them
	recs     []Record[K]
	total    int64
	err      error
}

// New returns a Reader that delivers the records after from, or those from
// cfg.Start on when from is nil. It panics if cfg lacks Fetch or Compare or
// its MaxPageSize is below MinPageSize: those are programming errors.
func New[K any](cfg Config[K], from *Mark[K]) *Reader[K] {
	if cfg.Fetch == nil || cfg.Compare == nil || cfg.MaxPageSize < MinPageSize {
		panic(fmt.Sprintf("newestfirst: invalid Config for %s (page size %d)", cfg.Name, cfg.MaxPageSize))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Reader[K]{cfg: cfg, hint: -1, depth: max(cfg.Concurrency, 1), answered: make(chan struct{}, 1)}
	if from != nil {
		r.hasMark, r.mark, r.skip, r.markAt, r.hint = true, from.Key, from.Skip, from.Time, from.FromEnd
	}
	r.firstRun = from == nil
	return r
}

// Next returns the next records after the high-water mark, oldest first,
// or io.EOF once the head of the list is reached. After any other error the
// Reader is as it was (what it learnt about positions is kept), so Next may
// be called again.
func (r *Reader[K]) Next(ctx context.Context) (Page[K], error) {
	if r.done {
		r.drop()
		if r.check != nil {
			r.check.cancel()
			r.check = nil
		}
		return Page[K]{}, io.EOF
	}
	// Every answer judged counts, probes and pages ahead included.
	for range maxProbes * max(r.cfg.Concurrency, 1) {
		if len(r.ahead) == 0 {
			r.refill(ctx)
		}
		var f *flight[K]
		if len(r.ahead) > 0 {
			f = r.ahead[0]
			if err := r.await(ctx, f); err != nil {
				r.drop()
				return Page[K]{}, err
			}
			r.ahead = r.ahead[1:]
			f.cancel()
			if f.err != nil && ctx.Err() == nil && errors.Is(f.err, context.Canceled) {
				// Started under a context that has ended since; this one
				// has not: plan again.
				r.drop()
				continue
			}
		} else {
			offset, limit := r.plan()
			f = &flight[K]{offset: offset, limit: limit, abut: r.blind, sent: r.clock.Add(1)}
			r.blind = false
			f.recs, f.total, f.err = r.cfg.Fetch(ctx, offset, limit)
			f.at = r.clock.Add(1)
			r.noteSize(f)
		}
		if f.err != nil {
			r.drop()
			return Page[K]{}, f.err
		}
		if int64(len(f.recs)) > f.limit {
			r.drop()
			return Page[K]{}, pipeline.Permanent(fmt.Errorf("%s offset %d: %d records for limit %d", r.cfg.Name, f.offset, len(f.recs), f.limit))
		}
		if end := f.offset + int64(len(f.recs)); int64(len(f.recs)) < f.limit && f.total-end > 10*f.limit {
			// The list ended at end in the same response that counted
			// f.total: the total is not a count of the list (retention
			// between requests cannot explain a single response).
			r.drop()
			return Page[K]{}, pipeline.Permanent(fmt.Errorf("%s offset %d: the list ends at %d records but the same response claims a total of %d; "+
				"the API's total is not a count of what it lists, and the stream cannot be read until it answers consistently", r.cfg.Name, f.offset, end, f.total))
		}
		if err := r.sanitize(f.recs); err != nil {
			r.drop()
			return Page[K]{}, pipeline.Permanent(fmt.Errorf("%s offset %d: %w", r.cfg.Name, f.offset, err))
		}
		if !r.started && f.offset == 0 {
			r.noteHead(f.recs)
		}
		abut := false
		if f.abut {
			var err error
			if abut, err = r.confirmStill(ctx, max(f.at, r.judged)); err != nil {
				r.drop()
				return Page[K]{}, err
			}
		}
		r.judged = max(r.judged, f.at)
		page, ok := r.evaluate(f.recs, f.offset, f.total, abut)
		switch {
		case ok && f.probe:
			r.drop() // found: the walk takes over from the other probes
		case ok && f.cancel != nil && r.growth == 0:
			r.depth = min(2*r.depth, max(r.cfg.Concurrency, 1))
		case f.probe && !r.exact && !r.done:
			continue // each probe narrows the search: judge the next
		}
		if ok {
			r.refill(ctx)
			return page, nil
		}
		if f.cancel != nil && !f.probe {
			// The list proved the guess wrong: what is in flight was planned
			// on it. A list that keeps moving makes guesses cost requests
			// (and every request it answers may find more records), so guess
			// one page ahead until a response shows the list standing still.
			r.depth = 1
		}
		r.drop()
		if r.done {
			return Page[K]{}, io.EOF
		}
	}
	r.drop()
	return Page[K]{}, fmt.Errorf("%s: could not find the next page within %d requests (list changing too fast?)", r.cfg.Name, maxProbes*max(r.cfg.Concurrency, 1))
}

// refill starts requests for the pages that follow the boundary, or the
// last page in flight, until Concurrency are in flight. It plans only on
// the walk toward the head, where the next pages are known.
func (r *Reader[K]) refill(ctx context.Context) {
	if r.cfg.Concurrency <= 1 || r.done {
		return
	}
	r.settleCheck()
	if !r.exact {
		if r.started && len(r.ahead) == 0 {
			r.probe(ctx)
		}
		return
	}
	if !r.hasMark || !r.proven {
		// Pages ahead are planned from b; one that keys have not proven
		// (a checkpoint's position hint, a search's narrowing) may be
		// stale, and a page ending right above it would prove nothing.
		return
	}
	lmax := int64(r.cfg.MaxPageSize)
	top, skip := r.b, int64(r.skip)
	if n := len(r.ahead); n > 0 {
		top, skip = r.ahead[n-1].offset, 0
	}
	if top+skip >= r.total {
		return // the next page must reach the list's end: plan takes it alone
	}
	// Keep depth requests unanswered; answers not yet judged wait beside
	// them, up to as many again, so a consumer that falls behind for a
	// moment does not leave the API idle. Abutting pages also wait,
	// answered, one to two round trips for the head check that confirms
	// them; room for about three rounds measured best (ceiling ratio 0.908
	// at 8 in flight and 20 ms, against 0.900 with two).
	room := 2 * r.depth
	if !r.moving {
		room = r.checkEvery() + 3*r.depth
	}
	for r.unanswered() < r.depth && len(r.ahead) < room && top > 0 && (len(r.ahead) == 0 || r.heldAhead() < MaxAheadBytes) {
		var offset, limit int64
		abut := false
		switch {
		case !r.moving && top%lmax == 0:
			offset, limit, abut = top-lmax, lmax, true
		case !r.moving && top%lmax+skip+1 < lmax:
			// Overlap once, landing on a multiple of lmax for the pages after.
			offset, limit = top-top%lmax, lmax
		default:
			n, l := r.overlap(top, skip, r.margin())
			if n == 0 {
				return
			}
			offset, limit = top-n, l
		}
		r.launch(ctx, offset, limit, abut)
		// The page's top record will be delivered above the mark (see
		// emit), so the next page must reach one record further down.
		top, skip = offset, 1
	}
	r.checkAhead(ctx)
}

// probe requests Concurrency pages spread evenly over the range the
// boundary lies in, judged in order from the head: one round narrows the
// range Concurrency+1-fold where plan's binary search halves it.
func (r *Reader[K]) probe(ctx context.Context) {
	lmax := int64(r.cfg.MaxPageSize)
	n := int64(r.cfg.Concurrency)
	if big := r.largest.Load(); big > 0 {
		// As many probes as MaxAheadBytes holds at the largest page seen.
		n = max(1, min(n, MaxAheadBytes/big))
	}
	prev := int64(-1)
	for j := int64(1); j <= n; j++ {
		at := r.lo + (r.hi-r.lo)*j/(n+1)
		at -= at % lmax
		if at <= prev || at+lmax <= r.lo || at >= r.hi {
			continue
		}
		prev = at
		r.launch(ctx, at, lmax, false)
		r.ahead[len(r.ahead)-1].probe = true
	}
}

// await waits for f's answer. Meanwhile, as other requests ahead get
// theirs, it starts the next ones, so that Concurrency requests stay in
// flight even while f, at the head, is slow to answer.
func (r *Reader[K]) await(ctx context.Context, f *flight[K]) error {
	for {
		select {
		case <-f.done:
			return nil
		case <-r.answered:
			r.refill(ctx)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// awaitAny waits for the next answer of a request ahead, then starts the
// next requests.
func (r *Reader[K]) awaitAny(ctx context.Context) error {
	select {
	case <-r.answered:
		r.refill(ctx)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unanswered counts the requests in flight that have no answer yet.
func (r *Reader[K]) unanswered() int {
	n := 0
	for _, f := range r.ahead {
		select {
		case <-f.done:
		default:
			n++
		}
	}
	return n
}

// MaxAheadBytes bounds what the pages requested ahead of their turn may
// hold, answered or expected (at the size of the largest page seen so
// far): with pages of a few hundred kilobytes the walk keeps Concurrency
// requests in flight, with pages near the API client's body cap one.
const MaxAheadBytes = 8 << 20

// heldAhead is what the pages ahead hold or are expected to.
func (r *Reader[K]) heldAhead() int64 {
	var n int64
	for _, f := range r.ahead {
		select {
		case <-f.done:
			n += f.bytes
		default:
			n += r.largest.Load()
		}
	}
	return n
}

// noteSize sets f.bytes from its answer and keeps the largest seen.
func (r *Reader[K]) noteSize(f *flight[K]) {
	for _, rec := range f.recs {
		f.bytes += int64(len(rec.Raw))
	}
	for old := r.largest.Load(); f.bytes > old && !r.largest.CompareAndSwap(old, f.bytes); old = r.largest.Load() {
	}
}

// launch starts a request ahead of its turn.
func (r *Reader[K]) launch(ctx context.Context, offset, limit int64, abut bool) {
	fctx, cancel := context.WithCancel(ctx)
	f := &flight[K]{offset: offset, limit: limit, abut: abut, cancel: cancel, done: make(chan struct{})}
	f.sent = r.clock.Add(1)
	go func() {
		f.recs, f.total, f.err = r.cfg.Fetch(fctx, offset, limit)
		r.noteSize(f)
		f.at = r.clock.Add(1)
		close(f.done)
		select {
		case r.answered <- struct{}{}:
		default: // a wake-up is pending already
		}
	}()
	r.ahead = append(r.ahead, f)
}

// noteHead keeps the newest key of the run's first response, the head
// that later checks compare with.
func (r *Reader[K]) noteHead(recs []Record[K]) {
	switch {
	case len(recs) == 0:
		r.headKnown, r.headEmpty = true, true
	case recs[0].HasKey:
		r.headKnown, r.head = true, recs[0].Key
	default:
		// A newest record without a key cannot be compared: only pages
		// that prove their place by keys will do.
		r.moving = true
	}
}

// checkAhead starts a head check when pages ahead that abut their
// predecessors have been answered since the last check was sent, so that
// their confirmation is on its way before they are judged.
func (r *Reader[K]) checkAhead(ctx context.Context) {
	if r.check != nil || r.moving || !r.headKnown {
		return
	}
	if r.unconfirmed() >= r.checkEvery() {
		r.startCheck(ctx)
	}
}

// checkEvery is how many answered abutting pages a head check waits for:
// one check confirms them all, so that checks cost a request per several
// rounds of pages, not one per round.
func (r *Reader[K]) checkEvery() int { return 4 * r.depth }

// unconfirmed counts the answered abutting pages ahead that no head check
// covers yet.
func (r *Reader[K]) unconfirmed() int {
	n := 0
	for _, f := range r.ahead {
		select {
		case <-f.done:
			if f.abut && f.at >= r.stillTo {
				n++
			}
		default:
		}
	}
	return n
}

// startCheck sends the head check: the page of limit 1 at offset 0.
func (r *Reader[K]) startCheck(ctx context.Context) {
	cctx, cancel := context.WithCancel(ctx)
	c := &flight[K]{limit: 1, cancel: cancel, done: make(chan struct{}), sent: r.clock.Add(1)}
	r.check = c
	go func() {
		c.recs, c.total, c.err = r.cfg.Fetch(cctx, 0, 1)
		c.at = r.clock.Add(1)
		close(c.done)
		select {
		case r.answered <- struct{}{}:
		default:
		}
	}()
}

// settleCheck takes in the head check's answer, if it has come.
func (r *Reader[K]) settleCheck() {
	c := r.check
	if c == nil {
		return
	}
	select {
	case <-c.done:
	default:
		return
	}
	r.check = nil
	c.cancel()
	switch {
	case c.err != nil:
		r.checkErr, r.checkSent = c.err, c.sent
	case len(c.recs) > 1:
		r.checkErr, r.checkSent = pipeline.Permanent(fmt.Errorf("%s offset 0: %d records for limit 1", r.cfg.Name, len(c.recs))), c.sent
	case r.headEmpty && len(c.recs) == 0,
		!r.headEmpty && len(c.recs) == 1 && c.recs[0].HasKey && r.cfg.Compare(c.recs[0].Key, r.head) == 0:
		r.checkErr = nil
		r.stillTo = max(r.stillTo, c.sent)
	default:
		// Records arrived (or the newest went): positions shifted at some
		// point since the run began.
		r.checkErr = nil
		r.moving = true
	}
}

// confirmStill reports whether a head check sent after the stamp need
// found the head unchanged since the run's first response, waiting for
// one (and starting it) when none has answered yet. It returns false as
// soon as the list is known to move, and a head check's error as Next
// returns a page's.
func (r *Reader[K]) confirmStill(ctx context.Context, need int64) (bool, error) {
	for {
		r.settleCheck()
		switch {
		case r.moving || !r.headKnown:
			return false, nil
		case r.stillTo > need:
			return true, nil
		}
		c := r.check
		if c == nil {
			if err := r.checkErr; err != nil && r.checkSent > need {
				r.checkErr = nil
				if errors.Is(err, context.Canceled) && ctx.Err() == nil {
					continue // started under a Next whose context has ended
				}
				return false, err
			}
			if r.unanswered() > 0 && r.unconfirmed()+1 < r.checkEvery() {
				// Let more pages be answered first, so that one check
				// confirms them all.
				if err := r.awaitAny(ctx); err != nil {
					return false, err
				}
				continue
			}
			r.startCheck(ctx)
			c = r.check
		}
		// Wait for this check, keeping pages in flight meanwhile.
		if err := r.await(ctx, c); err != nil {
			return false, err
		}
	}
}

func (r *Reader[K]) drop() {
	for _, f := range r.ahead {
		f.cancel()
	}
	r.ahead = nil
}

// Times before this cannot be an audit record's: the services are younger.
var earliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// future is how far ahead of the clock a record's time may be: clocks
// differ, but not by a day.
const future = 24 * time.Hour

// sanitize takes out of one response what paging must not rely on, so
// that no single record decides the fate of others. A record the source
// refused, or whose time cannot be true (before 2000, a day or more ahead),
// keeps its place but loses its key and time, and is dead-lettered when
// emitted. Keys must strictly decrease down the response: of the keyed
// records, the longest strictly decreasing run is kept and every record
// off it loses its key and is dead-lettered as out of order. One odd key,
// far above or below its neighbours, thus costs that record, never the
// page, the stream or the records around it.
//
// A response in which most records are refused is not a few odd records
// but an API that no longer answers as documented: sanitize returns an
// error then, which fails the stream (not the others) with the first
// reason, rather than dead-letter a whole list.
func (r *Reader[K]) sanitize(recs []Record[K]) error {
	now := r.cfg.Now()
	for i := range recs {
		rec := &recs[i]
		switch {
		case rec.Invalid != "":
			rec.HasKey, rec.HasTime = false, false
		case rec.HasTime && (rec.Time.Before(earliest) || !rec.Time.Before(now.Add(future))):
			rec.Invalid = fmt.Sprintf("time %s cannot be true (before 2000 or a day or more ahead of %s)",
				rec.Time.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
			rec.HasKey, rec.HasTime = false, false
		}
	}
	keep := decreasing(recs, r.cfg.Compare)
	refused, first := 0, ""
	for i := range recs {
		rec := &recs[i]
		if rec.HasKey && !keep[i] {
			rec.HasKey, rec.HasTime = false, false
			rec.Invalid = fmt.Sprintf("key %v is out of order with the records around it (the list is newest first by key)", rec.Key)
		}
		if rec.Invalid != "" {
			refused++
			if first == "" {
				first = rec.Invalid
			}
		}
	}
	if len(recs) >= minSystematic && 2*refused > len(recs) {
		return fmt.Errorf("%d of %d records refused, first: %s; the API no longer answers as documented: "+
			"check for a newer hwcaudit or report the response", refused, len(recs), first)
	}
	return nil
}

// minSystematic is the smallest response in which a majority of refused
// records fails the stream rather than fill the dead letters.
const minSystematic = 10

// decreasing marks the keyed records of the longest strictly decreasing
// run of keys in recs. Between runs of the same length it keeps, at each
// step, the record with the greater key below the one before, and starts
// from the smallest first key: an odd record far above its neighbours or
// far below them is the one left out. Pages hold at most a few hundred
// records, so the quadratic search costs little next to the request.
func decreasing[K any](recs []Record[K], cmp func(a, b K) int) []bool {
	n := len(recs)
	length := make([]int, n) // longest run starting at i, going down the list
	next := make([]int, n)
	for i := n - 1; i >= 0; i-- {
		next[i] = -1
		if !recs[i].HasKey {
			continue
		}
		length[i] = 1
		for j := i + 1; j < n; j++ {
			if !recs[j].HasKey || cmp(recs[j].Key, recs[i].Key) >= 0 {
				continue
			}
			if l := length[j] + 1; l > length[i] || (l == length[i] && cmp(recs[j].Key, recs[next[i]].Key) > 0) {
				length[i], next[i] = l, j
			}
		}
	}
	start := -1
	for i := range recs {
		if length[i] == 0 {
			continue
		}
		if start < 0 || length[i] > length[start] || (length[i] == length[start] && cmp(recs[i].Key, recs[start].Key) < 0) {
			start = i
		}
	}
	keep := make([]bool, n)
	for i := start; i >= 0; i = next[i] {
		keep[i] = true
	}
	return keep
}

// plan picks the next request: offset and limit (offset a multiple of limit).
func (r *Reader[K]) plan() (offset, limit int64) {
	lmax := int64(r.cfg.MaxPageSize)
	switch {
	case !r.started || (r.exact && r.b <= 0):
		// One page from the top tells the total and holds the newest records.
		return 0, lmax
	case !r.exact:
		mid := r.lo + (r.hi-r.lo)/2
		return mid - mid%lmax, lmax
	}
	g := r.b + int64(r.skip)
	if g >= r.total {
		// Nothing delivered is left in the list: the page must reach its end.
		best, bestNew := lmax, int64(0)
		for l := lmax; l >= 1; l-- {
			if n := r.total - (r.total-1)/l*l; n > bestNew {
				best, bestNew = l, n
			}
		}
		return (r.total - 1) / best * best, best
	}
	// The page must contain the boundary record g, which proves by keys that
	// nothing lies between it and the records above it; pick the limit that
	// leaves the most new records above b.
	// Leave room below g for as many records as arrived last time, so that
	// a page still contains g when the list grows in between.
	for _, margin := range []int64{r.margin(), 0} {
		if n, l := r.overlap(r.b, int64(r.skip), margin); n > 0 {
			return r.b - n, l
		}
	}
	// b is a multiple of every limit that could hold g with records above
	// it (for limits of 20 and more, b would be a multiple of 232792560),
	// or so many records above the mark were delivered without a key to
	// confirm that no page holds them all: take the full page above b (the
	// whole head when b is shorter than a page) and accept it only if the
	// list did not change since b was established.
	if !r.proven {
		// Only keys may prove b first: the aligned page holding the mark.
		return g - g%lmax, lmax
	}
	r.blind = true
	// The largest limit whose page ends right at b: offsets must be a
	// multiple of the limit.
	for l := min(lmax, r.b); l >= 1; l-- {
		if r.b%l == 0 {
			return r.b - l, l
		}
	}
	return 0, r.b // not reached: 1 divides b
}

// margin is the room a page leaves below the boundary for records that
// may arrive before it is answered.
func (r *Reader[K]) margin() int64 {
	return min(max(r.growth, r.slack), int64(r.cfg.MaxPageSize)/2)
}

// overlap picks the limit whose aligned page holds the most records above
// index b while still holding b+skip+margin and the record below it (see
// firstDelivered), and returns how many records above b it holds (0 when
// no limit does) with the limit.
func (r *Reader[K]) overlap(b, skip, margin int64) (n, limit int64) {
	lmax := int64(r.cfg.MaxPageSize)
	best, bestNew := lmax, int64(0)
	for l := lmax; l >= 2; l-- {
		n := b % l
		if n > bestNew && n+skip+margin+1 < l {
			best, bestNew = l, n
		}
	}
	return bestNew, best
}

// evaluate inspects one response. It returns a page to emit, or false after
// refining the position (or setting done) for another request.
//
// abut marks a page planned to end right above b without containing it.
// Such a page proves nothing by keys; it is accepted only when it ends
// exactly at b and the list's total did not change since the response
// that established b, i.e. both responses listed the same records.
func (r *Reader[K]) evaluate(recs []Record[K], offset, total int64, abut bool) (Page[K], bool) {
	var d int64 // how the total changed since the last response
	if r.started {
		// Records arrive at the head: every index shifts by the growth.
		d = total - r.total
		r.b, r.lo, r.hi = max(0, r.b+d), max(0, r.lo+d), max(0, r.hi+d)
		r.growth = max(0, d)
		if d != 0 {
			r.moving = true
		}
	} else {
		r.lo, r.hi = 0, total
	}
	r.started, r.total = true, total
	n := int64(len(recs))
	g := r.b + int64(r.skip) // the estimate, when exact
	if abut {
		if _, found := r.firstDelivered(recs, offset+n >= total); !found && r.exact && r.proven && r.growth == 0 && offset+n == r.b {
			return r.emit(recs, len(recs), offset, 0), true
		}
	}

	if r.positional && !r.hasMark {
		// A first run that delivered records without a key to mark them
		// walks on by positions: those at and below b were delivered, the
		// ones above are new. Positions hold only while the list stands
		// still (a total that moved may be records arriving at the head
		// or leaving at the tail, and only keys could tell which): then
		// the run ends, and the next starts from the start time again.
		if d != 0 {
			r.done = true
			return Page[K]{}, false
		}
		if r.exact && offset < r.b && r.b <= offset+n {
			return r.emit(recs, int(r.b-offset), offset, n-(r.b-offset)), true
		}
	}
	if i, found := r.firstDelivered(recs, offset+n >= total); found {
		if offset == 0 || r.isMark(recs[i]) || r.newAbove(recs[:i]) {
			// The record above it is new (or there is none), or it is the
			// mark itself, with the records Skip counts above it: g is
			// exact. Key-less records alone above a delivered one prove
			// nothing: they may be delivered ones of a page deep below
			// the boundary.
			r.exact, r.b, r.proven = true, offset+int64(i)-int64(r.skip), true
			switch {
			case r.b > offset:
				return r.emit(recs, int(r.b-offset), offset, int64(len(recs))-(r.b-offset)), true
			case offset == 0:
				r.done = true
			}
			return Page[K]{}, false
		}
		// g is at or above this page's first record.
		if r.exact && g <= offset {
			return Page[K]{}, false // as estimated: plan again
		}
		if r.exact {
			r.exact, r.lo = false, 0
		}
		r.hi = min(r.hi, offset)
	} else {
		if offset+n >= total {
			// No delivered record down to the list's end: a first run, or
			// retention removed the high-water record. All of it is new.
			if n == 0 {
				if offset == 0 {
					r.done = true
					return Page[K]{}, false
				}
				r.exact, r.lo, r.hi = false, 0, total
				return Page[K]{}, false
			}
			if !r.hasMark || offset == 0 || hasKey(recs) {
				return r.emit(recs, len(recs), offset, 0), true
			}
			// Key-less records alone at the list's end prove nothing: they
			// may be old ones below the mark, which a search after
			// retention lands on. The boundary is at or above them.
			if r.exact {
				r.exact, r.lo = false, 0
			}
			r.hi = min(r.hi, offset)
			if r.lo >= r.hi {
				r.exact, r.b, r.proven = true, r.hi-int64(r.skip), false
			}
			return Page[K]{}, false
		}
		if r.exact && g < offset+n && r.growth == 0 {
			// The page spans where g should be and holds no delivered
			// record: the list moved although its total stood still (as
			// many records deleted at the tail as inserted at the head).
			// Totals alone cannot size the margin any more.
			r.slack = min(max(2*r.slack, 4), int64(r.cfg.MaxPageSize)/2)
		}
		if r.exact && g >= offset+n {
			// The list grew since the plan and g slid below the page.
			return Page[K]{}, false
		}
		if r.hint >= 0 {
			// Try the checkpoint's position once before searching.
			r.exact, r.b, r.proven = true, min(max(total-1-r.hint, offset+n-int64(r.skip)), total), false
			r.hint = -1
			return Page[K]{}, false
		}
		if r.exact {
			r.exact, r.lo, r.hi = false, offset+n, total
		}
		r.lo = max(r.lo, offset+n)
	}
	if r.lo >= r.hi {
		r.exact, r.b, r.proven = true, r.hi-int64(r.skip), false
	}
	return Page[K]{}, false
}

// firstDelivered returns the index within recs (newest first) of the first
// record that was already delivered, or false when recs holds none. atEnd
// says recs reaches the oldest record of the list.
//
// A record counts only when the next record below it that can be judged
// agrees (or it is the list's oldest): one record whose key or time is
// wrong then never makes the records around it look delivered. On a first
// run, where times decide, a time before the start followed by one after
// it is such a record, and the search goes on below it; with a mark, keys
// were made to decrease (see sanitize), so the record below always agrees
// when there is one.
func (r *Reader[K]) firstDelivered(recs []Record[K], atEnd bool) (int, bool) {
	delivered := func(rec Record[K]) (judged, yes bool) {
		if r.hasMark {
			return rec.HasKey, rec.HasKey && r.cfg.Compare(rec.Key, r.mark) <= 0
		}
		return rec.HasTime, rec.HasTime && rec.Time.Before(r.cfg.Start)
	}
	for i, rec := range recs {
		if _, yes := delivered(rec); !yes {
			continue
		}
		// The mark itself needs no witness: keys are unique. (A page the
		// list's growth pushed down so that the mark is its last record
		// would otherwise send the search below it.)
		confirmed := atEnd || r.isMark(rec)
		for _, below := range recs[i+1:] {
			if judged, yes := delivered(below); judged {
				confirmed = yes
				break
			}
		}
		if confirmed {
			return i, true
		}
	}
	return 0, false
}

// hasKey reports whether any of recs has a key.
func hasKey[K any](recs []Record[K]) bool {
	for _, rec := range recs {
		if rec.HasKey {
			return true
		}
	}
	return false
}

// isMark reports whether rec is the high-water record itself.
func (r *Reader[K]) isMark(rec Record[K]) bool {
	return r.hasMark && rec.HasKey && r.cfg.Compare(rec.Key, r.mark) == 0
}

// newAbove reports whether recs, above a delivered record, hold two
// records whose keys (times, on a first run) show them new. One is not
// enough: an odd key at the top of a page deep in the list, with nothing
// above it to contradict it, would pass an old page off as the boundary.
func (r *Reader[K]) newAbove(recs []Record[K]) bool {
	n := 0
	for _, rec := range recs {
		if (r.hasMark && rec.HasKey) || (!r.hasMark && rec.HasTime && !rec.Time.Before(r.cfg.Start)) {
			n++
		}
	}
	return n >= 2
}

// emit turns the new records of a response (newest first, resp[0] at
// offset, the first fresh of them new) into a page, oldest first, and moves
// the high-water mark past them. skipped counts the delivered records of
// the same response.
//
// The mark moves only to a record whose key is confirmed by a greater key
// above it in the same response; the records above it are counted in
// Skip. A record at the top of a response has nothing above it to agree
// with, so an odd key there (far above the keys that will follow it) is
// delivered but never becomes the mark: the next response shows it out of
// order, and the mark below it keeps every record that comes after it new.
// The records Skip counted before are below the new ones in the response,
// so a key among them that the new records now confirm takes the mark.
func (r *Reader[K]) emit(resp []Record[K], fresh int, offset, skipped int64) Page[K] {
	recs := resp[:fresh]
	if !r.hasBase {
		// The records below the first page emitted are the start.
		r.hasBase, r.base = true, r.total-(offset+int64(len(recs)))
	}
	page := Page[K]{Records: make([][]byte, 0, len(recs)), Skipped: skipped, Total: r.total - offset - r.base}
	hasEnd := !r.cfg.End.IsZero()
	for i := len(recs) - 1; i >= 0; i-- {
		rec := recs[i]
		switch {
		case rec.Invalid != "":
			page.Invalid = append(page.Invalid, pipeline.Invalid{Raw: rec.Raw, Reason: rec.Invalid})
		case r.firstRun && rec.HasTime && rec.Time.Before(r.cfg.Start):
			page.Excluded.BeforeStart++
		case hasEnd && rec.HasTime && !rec.Time.Before(r.cfg.End):
			page.Excluded.AfterEnd++
			r.pastEnd++
		default:
			page.Records = append(page.Records, rec.Raw)
			if hasEnd && rec.HasTime {
				r.pastEnd = 0
			}
		}
	}
	// Above the old mark: the new records, then those Skip counted.
	above := fresh
	if r.hasMark {
		// Written so that no Skip, however large a checkpoint says it is,
		// overflows.
		above = fresh + min(r.skip, len(resp)-fresh)
	}
	markAt := -1 // the newest record whose key a greater key above confirms
	first := -1
	for i, rec := range resp[:above] {
		if !rec.HasKey {
			continue
		}
		if first >= 0 {
			markAt = i
			break
		}
		first = i
	}
	switch {
	case markAt >= 0:
		rec := resp[markAt]
		r.hasMark, r.mark, r.skip, r.markAt = true, rec.Key, markAt, time.Time{}
		if rec.HasTime {
			r.markAt = rec.Time
		}
	case r.hasMark:
		r.skip += len(recs)
	}
	r.exact, r.b, r.proven = true, offset, true
	r.positional = !r.hasMark
	page.Remaining = offset
	if !r.hasMark {
		// No key confirmed yet (a first run whose new records so far lack
		// keys, or hold one): nothing to checkpoint. The walk goes on by
		// times, delivering these again with the next page; a run that
		// ends so resumes from the start time.
		if offset == 0 {
			r.done = true
		}
		return page
	}
	if offset == 0 || r.pastEnd >= 2 || r.reachedHead(recs) {
		r.done = true
	}
	page.Mark = &Mark[K]{Key: r.mark, Time: r.markAt, Skip: r.skip, FromEnd: r.total - 1 - offset}
	return page
}

// reachedHead reports whether recs hold the newest record of the run's
// first response: the run has read what the list held when it started,
// and ends there, however fast records keep arriving; the next run reads
// on from its mark.
func (r *Reader[K]) reachedHead(recs []Record[K]) bool {
	if !r.headKnown || r.headEmpty {
		return false
	}
	for _, rec := range recs {
		if rec.HasKey && r.cfg.Compare(rec.Key, r.head) >= 0 {
			return true
		}
	}
	return false
}
