package newestfirst

import (
	"github.com/hwcaudit/hwcaudit/pipeline"
)

// knowledge is what the Reader knows of where the boundary is.
type knowledge int

const (
	// unknown: no response yet; the total is not known either.
	unknown knowledge = iota
	// searching: the mark's index lies in [lo, hi].
	searching
	// estimated: b is a guess (a checkpoint's hint, or a search closed
	// in on it) that a page holding the boundary record must prove.
	estimated
	// proven: a response proved b (see the package comment); pages ahead
	// may be planned from it.
	proven
)

// markIndex is the mark's index: Skip records above the boundary.
func (r *Reader[K]) markIndex() int64 { return r.b + int64(r.mark.Skip) }

// prove places the boundary at b, as a response proved it.
func (r *Reader[K]) prove(b int64) { r.know, r.b = proven, b }

// estimate places the boundary at b, to be proven.
func (r *Reader[K]) estimate(b int64) { r.know, r.b = estimated, b }

// boundaryAbove notes that the boundary is above index at (a response
// starting there holds delivered records only).
func (r *Reader[K]) boundaryAbove(at int64) {
	if r.know != searching {
		r.know, r.lo = searching, 0
	}
	r.hi = min(r.hi, at)
	r.closeIn()
}

// boundaryBelow notes that the boundary is at or below index at (the
// records above it are all new).
func (r *Reader[K]) boundaryBelow(at int64) {
	if r.know != searching {
		r.know, r.lo, r.hi = searching, at, r.total
	}
	r.lo = max(r.lo, at)
	r.closeIn()
}

// closeIn ends a search that has narrowed to one index.
func (r *Reader[K]) closeIn() {
	if r.lo >= r.hi {
		r.estimate(r.hi - int64(r.mark.Skip))
	}
}

// follow takes in a response's total: records arrive at the head, so
// every index shifts by the growth since the last response. It returns
// that growth.
func (r *Reader[K]) follow(total int64) (d int64) {
	if r.know == unknown {
		r.know, r.lo, r.hi = searching, 0, total
	} else {
		d = total - r.total
		r.b, r.lo, r.hi = max(0, r.b+d), max(0, r.lo+d), max(0, r.hi+d)
		r.growth = max(0, d)
		if d != 0 {
			r.moving = true
		}
	}
	r.total = total
	return d
}

// plan picks the next request: offset and limit (offset a multiple of
// limit), and whether the page abuts the boundary without holding it
// (proof 3 of the package comment).
func (r *Reader[K]) plan() (offset, limit int64, abut bool) {
	lmax := int64(r.cfg.MaxPageSize)
	switch {
	case r.know == unknown || (r.know != searching && r.b <= 0):
		// One page from the top tells the total and holds the newest records.
		return 0, lmax, false
	case r.know == searching:
		mid := r.lo + (r.hi-r.lo)/2
		return mid - mid%lmax, lmax, false
	}
	g := r.markIndex()
	if g >= r.total {
		// Nothing delivered is left in the list: the page must reach its end.
		best, bestNew := lmax, int64(0)
		for l := lmax; l >= 1; l-- {
			if n := r.total - (r.total-1)/l*l; n > bestNew {
				best, bestNew = l, n
			}
		}
		return (r.total - 1) / best * best, best, false
	}
	// The page must contain the mark (index g), which proves by keys that
	// nothing lies between it and the records above it (proof 1); pick the
	// limit that leaves the most new records above b.
	// Leave room below g for as many records as arrived last time, so that
	// a page still contains g when the list grows in between.
	for _, margin := range []int64{r.margin(), 0} {
		if n, l := r.overlap(r.b, int64(r.mark.Skip), margin); n > 0 {
			return r.b - n, l, false
		}
	}
	// b is a multiple of every limit that could hold g with records above
	// it (for limits of 20 and more, b would be a multiple of 232792560),
	// or so many records above the mark were delivered without a key to
	// confirm that no page holds them all: take the full page above b (the
	// whole head when b is shorter than a page) and accept it only if the
	// list did not change since b was established.
	if r.know != proven {
		// Only keys may prove b first: the aligned page holding the mark.
		return g - g%lmax, lmax, false
	}
	// The largest limit whose page ends right at b: offsets must be a
	// multiple of the limit.
	for l := min(lmax, r.b); l >= 1; l-- {
		if r.b%l == 0 {
			return r.b - l, l, true
		}
	}
	return 0, r.b, true // not reached: 1 divides b
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

// evaluate judges one response (recs at offset, the list's total): it
// returns the page to emit on one of the proofs of the package comment,
// or false after learning where to look next (or that the walk is done).
// abut says the page was planned to abut the boundary and a head check
// confirmed the list still since the boundary was placed.
func (r *Reader[K]) evaluate(recs []Record[K], offset, total int64, abut bool) (Page[K], bool) {
	d := r.follow(total)
	n := int64(len(recs))
	atEnd := offset+n >= total
	if abut && r.know == proven && r.growth == 0 && offset+n == r.b {
		// Proof 3: it ends right at b, and the list stood still.
		if _, found := r.firstDelivered(recs, atEnd); !found {
			return r.emit(recs, len(recs), offset, 0), true
		}
	}
	if r.base >= 0 && !r.hasMark {
		// Proof 4: a first run emitted records down to b without a key
		// to mark them. Those at and below b were delivered, the ones
		// above are new. Positions hold only while the list stands still (a
		// total that moved may be records arriving at the head or leaving
		// at the tail, and only keys could tell which): then the run
		// ends, and the next starts from the start time again.
		if d != 0 {
			r.done = true
			return Page[K]{}, false
		}
		if r.know != searching && offset < r.b && r.b <= offset+n {
			return r.emit(recs, int(r.b-offset), offset, n-(r.b-offset)), true
		}
	}
	if i, found := r.firstDelivered(recs, atEnd); found {
		return r.withDelivered(recs, i, offset)
	}
	return r.withoutDelivered(recs, offset, total)
}

// withDelivered judges a response whose record i is the newest delivered.
func (r *Reader[K]) withDelivered(recs []Record[K], i int, offset int64) (Page[K], bool) {
	if offset == 0 || r.isMark(recs[i]) || r.newAbove(recs[:i]) {
		// Proof 1. The record above it is new (or there is none), or it
		// is the mark itself, with the records Skip counts above it: the
		// boundary is exact. Key-less records alone above a delivered one
		// prove nothing: they may be delivered ones of a page deep below
		// the boundary.
		r.prove(offset + int64(i) - int64(r.mark.Skip))
		switch {
		case r.b > offset:
			return r.emit(recs, int(r.b-offset), offset, int64(len(recs))-(r.b-offset)), true
		case offset == 0:
			r.done = true // nothing above the boundary
		}
		return Page[K]{}, false
	}
	// The boundary is at or above this page's first record.
	if r.know != searching && r.markIndex() <= offset {
		return Page[K]{}, false // as estimated: plan again
	}
	r.boundaryAbove(offset)
	return Page[K]{}, false
}

// withoutDelivered judges a response that holds no delivered record.
func (r *Reader[K]) withoutDelivered(recs []Record[K], offset, total int64) (Page[K], bool) {
	n := int64(len(recs))
	if offset+n >= total {
		// No delivered record down to the list's end.
		switch {
		case n == 0 && offset == 0:
			r.done = true // the list is empty
		case n == 0:
			// The list ends above this page: search it whole.
			r.know, r.lo, r.hi = searching, 0, total
		case !r.hasMark || offset == 0 || hasKey(recs):
			// Proof 2: a first run, or retention removed the high-water
			// record. All of it is new.
			return r.emit(recs, len(recs), offset, 0), true
		default:
			// Key-less records alone at the list's end prove nothing: they
			// may be old ones below the mark, which a search after
			// retention lands on. The boundary is at or above them.
			r.boundaryAbove(offset)
		}
		return Page[K]{}, false
	}
	g := r.markIndex()
	exact := r.know != searching
	if exact && g < offset+n && r.growth == 0 {
		// The page spans where g should be and holds no delivered
		// record: the list moved although its total stood still (as
		// many records deleted at the tail as inserted at the head).
		// Totals alone cannot size the margin any more.
		r.slack = min(max(2*r.slack, 4), int64(r.cfg.MaxPageSize)/2)
	}
	switch {
	case exact && g >= offset+n:
		// The list grew since the plan and g slid below the page.
	case r.hint >= 0:
		// Try the checkpoint's position once before searching.
		r.estimate(min(max(total-1-r.hint, offset+n-int64(r.mark.Skip)), total))
		r.hint = -1
	default:
		r.boundaryBelow(offset + n)
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
			return rec.HasKey, rec.HasKey && r.cfg.Compare(rec.Key, r.mark.Key) <= 0
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
	return r.hasMark && rec.HasKey && r.cfg.Compare(rec.Key, r.mark.Key) == 0
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
	if r.base < 0 {
		// The records below the first page emitted are the start.
		r.base = r.total - (offset + int64(len(recs)))
	}
	page := Page[K]{Skipped: skipped, Total: r.total - offset - r.base, Remaining: offset}
	r.sort(&page, recs)
	r.moveMark(resp, fresh)
	r.prove(offset)
	if !r.hasMark {
		// No key confirmed yet (a first run whose new records so far lack
		// keys, or hold one): nothing to checkpoint. The walk goes on by
		// times, delivering these again with the next page; a run that
		// ends so resumes from the start time.
		r.done = offset == 0
		return page
	}
	if offset == 0 || r.pastEnd >= 2 || r.reachedHead(recs) {
		r.done = true
	}
	m := r.mark
	m.FromEnd = r.total - 1 - offset
	page.Mark = &m
	return page
}

// sort puts each of recs (newest first) into page, oldest first:
// delivered, refused with its reason, or excluded before Start (on a
// first run) or at or after End.
func (r *Reader[K]) sort(page *Page[K], recs []Record[K]) {
	page.Records = make([][]byte, 0, len(recs))
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
}

// moveMark moves the mark to the newest record above it whose key a
// greater key above it in resp confirms, Skip counting the records above
// that one; without such a record, Skip grows by the fresh records.
func (r *Reader[K]) moveMark(resp []Record[K], fresh int) {
	// Above the old mark: the new records, then those Skip counted.
	above := fresh
	if r.hasMark {
		// Written so that no Skip, however large a checkpoint says it is,
		// overflows.
		above = fresh + min(r.mark.Skip, len(resp)-fresh)
	}
	keyed := 0
	for i, rec := range resp[:above] {
		if !rec.HasKey {
			continue
		}
		if keyed++; keyed == 2 {
			r.hasMark, r.mark = true, Mark[K]{Key: rec.Key, Skip: i}
			if rec.HasTime {
				r.mark.Time = rec.Time
			}
			return
		}
	}
	if r.hasMark {
		r.mark.Skip += fresh
	}
}

// reachedHead reports whether recs hold the newest record of the run's
// first response, when that record has a key: the run has read what the
// list held when it started, and ends there, however fast records keep
// arriving; the next run reads on from its mark.
func (r *Reader[K]) reachedHead(recs []Record[K]) bool {
	if !r.still.known || r.still.empty || r.still.at > 0 {
		// Key-less records above the newest key are read too.
		return false
	}
	for _, rec := range recs {
		if rec.HasKey && r.cfg.Compare(rec.Key, r.still.head) >= 0 {
			return true
		}
	}
	return false
}
