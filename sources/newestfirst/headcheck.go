package newestfirst

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// headWatch is what the head checks (proof 3 of the package comment)
// know. clock stamps order the sending and answering of requests.
type headWatch[K any] struct {
	// head is the newest key of the run's first response and at its index
	// there (key-less records may sit above it); empty says the list was
	// empty then. Every arrival moves head one index down, and nothing
	// else moves it: retention deletes the oldest records, and head would
	// go last. Without known nothing can be checked and the list is
	// treated as moving.
	head    K
	raw     []byte // the head record as it came, so that a second record with the same odd key cannot pass for it
	at      int64
	known   bool
	empty   bool
	judged  int64      // the latest answer stamp of the responses judged
	stillTo int64      // head checks sent before this stamp found the head unchanged
	check   *flight[K] // the head check in flight, nil when none
	err     error      // the last head check's failure, kept for confirmStill
	errSent int64      // when that failed check was sent
}

// noteHead keeps the newest key of the run's first response and its
// index, the head that later checks compare with.
func (r *Reader[K]) noteHead(recs []Record[K]) {
	if len(recs) == 0 {
		r.still.known, r.still.empty = true, true
		return
	}
	for i, rec := range recs {
		if rec.HasKey {
			r.still.known, r.still.head, r.still.raw, r.still.at = true, rec.Key, bytes.Clone(rec.Raw), int64(i)
			return
		}
	}
	// A first page without a key cannot be compared: only pages that
	// prove their place by keys will do.
	r.moving = true
}

// checkAhead starts a head check when pages ahead that abut their
// predecessors have been answered since the last check was sent, so that
// their confirmation is on its way before they are judged.
func (r *Reader[K]) checkAhead(ctx context.Context) {
	if r.still.check != nil || r.moving || !r.still.known {
		return
	}
	if r.unconfirmed() >= checkEvery {
		r.startCheck(ctx)
	}
}

// checkEvery is how many answered abutting pages a head check waits for:
// one check confirms them all, so that checks cost one request per 32
// pages (97 records per request at most with pages of 100), whatever
// the Concurrency (with one check per round of pages, 8 in flight gave
// 88, as many as overlapping pages). Waiting costs no throughput while
// the pages ahead have room for them and the requests in flight (see
// refill), and memory is bounded by MaxAheadBytes, not by this.
const checkEvery = 32

// unconfirmed counts the answered abutting pages ahead that no head check
// covers yet.
func (r *Reader[K]) unconfirmed() int {
	n := 0
	for _, f := range r.ahead {
		select {
		case <-f.done:
			if f.abut && f.at >= r.still.stillTo {
				n++
			}
		default:
		}
	}
	return n
}

// startCheck sends the head check: the page at offset 0 that reaches the
// head's index (limit 1 when the newest record has a key).
func (r *Reader[K]) startCheck(ctx context.Context) {
	cctx, cancel := context.WithCancel(ctx)
	c := &flight[K]{limit: r.still.at + 1, cancel: cancel, done: make(chan struct{}), sent: r.clock.Add(1)}
	r.still.check = c
	go func() {
		c.recs, c.total, c.err = r.cfg.Fetch(cctx, 0, c.limit)
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
	c := r.still.check
	if c == nil {
		return
	}
	select {
	case <-c.done:
	default:
		return
	}
	r.still.check = nil
	c.cancel()
	switch {
	case c.err != nil:
		r.still.err, r.still.errSent = c.err, c.sent
	case int64(len(c.recs)) > c.limit:
		r.still.err, r.still.errSent = pipeline.Permanent(fmt.Errorf("%s offset 0: %d records for limit %d", r.cfg.Name, len(c.recs), c.limit)), c.sent
	case r.still.empty && len(c.recs) == 0,
		!r.still.empty && int64(len(c.recs)) == c.limit && r.isHead(c.recs[r.still.at]):
		r.still.err = nil
		r.still.stillTo = max(r.still.stillTo, c.sent)
	default:
		// Records arrived (or the newest went): positions shifted at some
		// point since the run began.
		r.still.err = nil
		r.moving = true
	}
}

// isHead reports whether rec is the head record of the run's first
// response.
func (r *Reader[K]) isHead(rec Record[K]) bool {
	return rec.HasKey && r.cfg.Compare(rec.Key, r.still.head) == 0 && bytes.Equal(rec.Raw, r.still.raw)
}

// checkTries is how often confirmStill sends a head check that fails.
const checkTries = 3

// confirmStill reports whether a head check sent after the stamp need
// found the head unchanged since the run's first response, waiting for
// one (and starting it) when none has answered yet. It returns false as
// soon as the list is known to move. A check that fails is sent again,
// up to checkTries times, so that one failed request does not cost the
// pages waiting for it (and requests failing at a fixed rhythm cannot
// make every round of pages end in a failed check); after that, or when
// the error is permanent, it returns the error as Next returns a page's.
func (r *Reader[K]) confirmStill(ctx context.Context, need int64) (bool, error) {
	var err error
	for failed := 0; err == nil; {
		r.settleCheck()
		switch {
		case r.moving || !r.still.known:
			return false, nil
		case r.still.stillTo > need:
			return true, nil
		case r.still.check != nil:
			// Wait for this check, keeping pages in flight meanwhile.
			err = r.await(ctx, r.still.check)
		case r.still.err != nil && r.still.errSent > need:
			err = r.checkAgain(ctx, &failed)
		case r.unanswered() > 0 && r.unconfirmed()+1 < checkEvery:
			// Let more pages be answered first, so that one check
			// confirms them all.
			err = r.awaitAny(ctx)
		default:
			r.startCheck(ctx)
		}
	}
	return false, err
}

// checkAgain takes in the failure of a check sent for confirmStill, which
// counts the failures in a row in failed: it sends the check again, or
// returns the error.
func (r *Reader[K]) checkAgain(ctx context.Context, failed *int) error {
	err := r.still.err
	r.still.err = nil
	if errors.Is(err, context.Canceled) && ctx.Err() == nil {
		return nil // started under a Next whose context has ended: send another
	}
	if *failed++; pipeline.IsPermanent(err) || ctx.Err() != nil || *failed >= checkTries {
		return err
	}
	r.startCheck(ctx)
	return nil
}

// stopCheck cancels the head check in flight, if any.
func (r *Reader[K]) stopCheck() {
	if r.still.check != nil {
		r.still.check.cancel()
		r.still.check = nil
	}
}
