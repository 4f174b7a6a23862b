// Package newestfirst reads an audit list that an API serves newest first
// with offset paging (offset a multiple of limit) and delivers it oldest
// first, each record once, while new records keep arriving at its head.
//
// # Positions and the boundary
//
// A record's index is its position counted from the head, 0 the newest.
// Records arrive only at the head and retention deletes only at the tail,
// so the order of the records never changes and no record is ever put
// between two others: two records adjacent in one response stay adjacent.
// Indexes do not stay: every arrival shifts them all by one, and a first
// run or a backfill may be millions of records behind the head.
//
// What a run delivered is recorded in the high-water Mark: the greatest
// key delivered, and Skip, the key-less records delivered right above it.
// On a first run, before a key is confirmed, records older than
// Config.Start count as delivered instead. The boundary is the index of
// the newest delivered record; every record above it is new.
//
// # The invariant: nothing between what was delivered and what is emitted
//
// Every page the Reader emits is the run of records directly above the
// boundary, oldest first, and emitting it moves the boundary to the page's
// newest record (emit). Each page holds this on one of four proofs, all
// checked in evaluate; a response that proves none is used only to learn
// where to look next, so positions are hints and never decide.
//
//  1. Keys. The response holds the boundary record itself (the mark, or
//     the newest record at or below it, confirmed by the record below it:
//     see firstDelivered), and the page is the records above it in that
//     response. One response lists them adjacent, so they are adjacent.
//  2. The end of the list. The response reaches the oldest record and
//     holds no delivered one: everything the list holds is new (a first
//     run, or retention deleted the mark and everything below it).
//  3. Stillness. While the list stands still, pages ahead (Concurrency
//     above one) are whole aligned pages that end right above the page
//     before them (they abut) and share no record with it, and so is the
//     page plan takes when no page can hold the mark with a new record
//     (many key-less records above the mark); keys cannot prove them. Indexes shift only when records arrive, and an
//     arrival moves the newest keyed record one index down. So an abutting
//     page is accepted only once a head check (the page at offset 0 down
//     to that record: limit 1 when the newest record has a key), sent
//     after this response and the one that placed the boundary were
//     answered, shows the newest keyed record of the run's first response
//     at the same index: no record arrived while both were served, so both
//     counted indexes alike (confirmStill). The total cannot tell this: a
//     list capped at a number of records deletes one at the tail for every
//     one inserted, and its total never moves.
//  4. Positions, on a first run whose new records carry no key to mark
//     them, while every total stands still. Such pages carry no Mark: a
//     run that ends or stops here starts from Config.Start again, so these
//     pages can be delivered twice but never lost.
//
// The mark moves only to a key that a greater key above it in the same
// response confirms (emit): one odd key at the top of a response, with
// nothing above it to contradict it, is delivered but never hides the
// records after it. For the same reason sanitize dead-letters, per
// response, every key out of order with the others and every time that
// cannot be true: no single record decides where the boundary is.
//
// # Finding the boundary and walking to the head
//
// A checkpoint's FromEnd places the boundary in one request when the list
// lost no record since; otherwise (and on a first run) a search over pages
// finds it, holding one page in memory at a time, with Concurrency
// above one several probes at once (probe). From there the walk goes
// toward the head, each page chosen so that it holds the boundary record
// (plan, overlap) or, while the list stands still, abuts the page before
// it. A run ends at the newest record of its first response, however fast
// records keep arriving; the next run reads on from its mark.
//
// Requests ahead (Concurrency above one) are the pages that would follow
// if the list stays as it is. They are judged in order, exactly as if
// each had been requested alone, so nothing but speed depends on the
// guess; a guess the list proved wrong is dropped and the walk plans again
// from what it knows. A page that holds the boundary record as well as
// new ones has an offset that is a multiple of its limit, and no chain of
// such pages carries more than 88 new records per request of 100 (87.6
// over 200,000 records, even when each holds one record of the page
// before). Abutting pages carry 100, and one head check confirms every
// page answered before it was sent, so a check waits for 32 of them
// (checkEvery). Once two totals differ or a check finds the head moved,
// the list is moving and every page ahead overlaps the one before it by
// the margin arrivals need.
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
// concurrent use. The package comment states what it guarantees and why.
type Reader[K any] struct {
	cfg Config[K]

	// What was delivered: mark (Key, Time, Skip) when hasMark; without
	// it, on a first run, the records older than cfg.Start.
	hasMark  bool
	mark     Mark[K]
	hint     int64 // the checkpoint's FromEnd, tried once before a search; -1 none
	firstRun bool  // opened without a mark: records before Start are excluded
	pastEnd  int   // consecutive records, oldest first, at or after End
	base     int64 // records below the first page emitted, counted from the end; -1 before it

	// Where the boundary is (see knowledge). Indexes count from the head
	// of a list of total records, and follow shifts them by its growth.
	know   knowledge
	b      int64 // estimated or proven: the boundary (the mark's index less its Skip)
	lo, hi int64 // searching: the mark's index lies in [lo, hi]
	total  int64
	growth int64 // how much the total grew between the last two responses
	// slack is a margin learnt from pages the list moved away from
	// although its total stood still: records were deleted as they were
	// inserted.
	slack int64
	done  bool

	// Requests ahead (ahead.go) and the head checks that prove abutting
	// pages (headcheck.go). moving: the list was seen to move in this run.
	ahead    []*flight[K]  // in the order they are judged
	depth    int           // how many may be in flight now, 1..Concurrency
	answered chan struct{} // a request ahead got its answer
	largest  atomic.Int64  // bytes of the largest page answered ahead
	clock    atomic.Int64  // orders the sending and answering of requests
	moving   bool
	still    headWatch[K]
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
	r := &Reader[K]{cfg: cfg, hint: -1, base: -1, depth: max(cfg.Concurrency, 1), answered: make(chan struct{}, 1)}
	if from != nil {
		r.hasMark, r.mark, r.hint = true, Mark[K]{Key: from.Key, Time: from.Time, Skip: from.Skip}, from.FromEnd
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
		r.stopCheck()
		return Page[K]{}, io.EOF
	}
	// Every answer judged counts, probes and pages ahead included.
	for range maxProbes * max(r.cfg.Concurrency, 1) {
		f, err := r.take(ctx)
		if err != nil {
			r.drop()
			return Page[K]{}, err
		}
		if f == nil {
			r.drop()
			continue
		}
		page, ok, err := r.judge(ctx, f)
		switch {
		case err != nil:
			r.drop()
			return Page[K]{}, err
		case ok:
			if f.probe {
				r.drop() // found: the walk takes over from the other probes
			}
			r.adapt(f, ok)
			r.refill(ctx)
			return page, nil
		case f.probe && r.know == searching && !r.done:
			continue // each probe narrows the search: judge the next
		}
		r.adapt(f, ok)
		r.drop()
		if r.done {
			return Page[K]{}, io.EOF
		}
	}
	r.drop()
	return Page[K]{}, fmt.Errorf("%s: could not find the next page within %d requests (list changing too fast?)", r.cfg.Name, maxProbes*max(r.cfg.Concurrency, 1))
}

// take returns the response to judge next: that of the oldest request
// ahead, or, when none is ahead, of the request plan picks, sent now. It
// returns nil when the request ahead was cancelled by the context of an
// earlier Next, which this one's is not: the walk plans again.
func (r *Reader[K]) take(ctx context.Context) (*flight[K], error) {
	if len(r.ahead) == 0 {
		r.refill(ctx)
	}
	if len(r.ahead) == 0 {
		offset, limit, abut := r.plan()
		f := &flight[K]{offset: offset, limit: limit, abut: abut, sent: r.clock.Add(1)}
		f.recs, f.total, f.err = r.cfg.Fetch(ctx, offset, limit)
		f.at = r.clock.Add(1)
		r.noteSize(f)
		return f, nil
	}
	f := r.ahead[0]
	if err := r.await(ctx, f); err != nil {
		return nil, err
	}
	r.ahead = r.ahead[1:]
	f.cancel()
	if f.err != nil && ctx.Err() == nil && errors.Is(f.err, context.Canceled) {
		return nil, nil
	}
	return f, nil
}

// judge admits f's response and evaluates it: a page to emit, or false
// when the response only taught the Reader where to look next.
func (r *Reader[K]) judge(ctx context.Context, f *flight[K]) (Page[K], bool, error) {
	if err := r.admit(f); err != nil {
		return Page[K]{}, false, err
	}
	if r.know == unknown && f.offset == 0 {
		r.noteHead(f.recs)
	}
	abut := false
	if f.abut {
		var err error
		if abut, err = r.confirmStill(ctx, max(f.at, r.still.judged)); err != nil {
			return Page[K]{}, false, err
		}
	}
	r.still.judged = max(r.still.judged, f.at)
	page, ok := r.evaluate(f.recs, f.offset, f.total, abut)
	return page, ok, nil
}

// admit returns why paging cannot use f's response, nil when it can.
func (r *Reader[K]) admit(f *flight[K]) error {
	n := int64(len(f.recs))
	switch {
	case f.err != nil:
		return f.err
	case n > f.limit:
		return pipeline.Permanent(fmt.Errorf("%s offset %d: %d records for limit %d", r.cfg.Name, f.offset, n, f.limit))
	case n < f.limit && f.total-(f.offset+n) > 10*f.limit:
		// The list ended in the same response that counted f.total: the
		// total is not a count of the list (retention between requests
		// cannot explain a single response).
		return pipeline.Permanent(fmt.Errorf("%s offset %d: the list ends at %d records but the same response claims a total of %d; "+
			"the API's total is not a count of what it lists, and the stream cannot be read until it answers consistently", r.cfg.Name, f.offset, f.offset+n, f.total))
	}
	if err := r.sanitize(f.recs); err != nil {
		return pipeline.Permanent(fmt.Errorf("%s offset %d: %w", r.cfg.Name, f.offset, err))
	}
	return nil
}

// adapt sets how many requests the walk keeps in flight from how its
// guess fared. A list that keeps moving makes guesses cost requests (and
// every request it answers may find more records), so the walk guesses
// one page ahead after a wrong guess, and doubles that while responses
// show the list standing still.
func (r *Reader[K]) adapt(f *flight[K], ok bool) {
	switch {
	case f.cancel == nil || f.probe:
		// Not a guess: planned when it was sent, or a probe.
	case !ok:
		r.depth = 1
	case r.growth == 0:
		r.depth = min(2*r.depth, max(r.cfg.Concurrency, 1))
	}
}
