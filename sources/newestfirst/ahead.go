package newestfirst

import (
	"context"
)

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

// refill starts requests for the pages that follow the boundary, or the
// last page in flight, until Concurrency are in flight. It plans only on
// the walk toward the head, where the next pages are known.
func (r *Reader[K]) refill(ctx context.Context) {
	if r.cfg.Concurrency <= 1 || r.done {
		return
	}
	r.settleCheck()
	switch {
	case r.know == searching && len(r.ahead) == 0:
		r.probe(ctx)
		return
	case r.know != proven || !r.hasMark:
		// Pages ahead are planned from b; one that a response has not
		// proven (a checkpoint's position hint, a search's narrowing)
		// may be stale, and a page ending right above it would prove
		// nothing.
		return
	}
	top, skip := r.b, int64(r.mark.Skip)
	if n := len(r.ahead); n > 0 {
		top, skip = r.ahead[n-1].offset, 0
	}
	if top+skip >= r.total {
		return // the next page must reach the list's end: plan takes it alone
	}
	for top > 0 && r.roomAhead() {
		offset, limit, abut := r.pageAbove(top, skip)
		if limit == 0 {
			break
		}
		r.launch(ctx, offset, limit, abut)
		// The page's top record will be delivered above the mark (see
		// emit), so the next page must reach one record further down.
		top, skip = offset, 1
	}
	r.checkAhead(ctx)
}

// roomAhead reports whether another page may be requested ahead. It
// keeps depth requests unanswered; answers not yet judged wait beside
// them, up to as many again, so a consumer that falls behind for a moment
// does not leave the API idle. Abutting pages also wait, answered, for
// the head check that confirms them, which waits for checkEvery of them:
// room for those and three rounds more. All within MaxAheadBytes.
func (r *Reader[K]) roomAhead() bool {
	room := 2 * r.depth
	if !r.moving {
		room = checkEvery + 3*r.depth
	}
	return r.unanswered() < r.depth && len(r.ahead) < room && (len(r.ahead) == 0 || r.heldAhead() < MaxAheadBytes)
}

// pageAbove plans the page that follows a page whose newest record is at
// index top, with skip records between that one and the mark: while the
// list stands still, the aligned page that abuts it (proof 3 of the
// package comment), or the one overlapping it once to land on the
// alignment; once it moves, the page that holds its mark with the
// margin arrivals need (proof 1). limit 0: no page can.
func (r *Reader[K]) pageAbove(top, skip int64) (offset, limit int64, abut bool) {
	lmax := int64(r.cfg.MaxPageSize)
	switch {
	case !r.moving && top%lmax == 0:
		return top - lmax, lmax, true
	case !r.moving && top%lmax+skip+1 < lmax:
		return top - top%lmax, lmax, false
	}
	n, l := r.overlap(top, skip, r.margin())
	if n == 0 {
		return 0, 0, false
	}
	return top - n, l, false
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

// drop cancels the requests ahead and forgets them.
func (r *Reader[K]) drop() {
	for _, f := range r.ahead {
		f.cancel()
	}
	r.ahead = nil
}
