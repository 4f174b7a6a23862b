package window

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// TestErrListingChangedReadsTheListingAgain: a Fetch that reports
// ErrListingChanged at a later page (its source switched to a path that
// lists in another order) has the listing read again from its first page,
// in a window of many seconds and in a streamed second; the pages before
// the switch are not joined to those after it. A Fetch that keeps
// reporting it fails the window with a retryable error, the cursor before
// it.
func TestErrListingChangedReadsTheListingAgain(t *testing.T) {
	for _, perSecond := range []int{1, 40} {
		t.Run(fmt.Sprintf("per-second=%d", perSecond), func(t *testing.T) {
			a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
			var want []string
			for i := range 30 {
				id := fmt.Sprintf("r%02d", i)
				a.add(rec(id, t0.Add(10*time.Second+time.Duration(i/perSecond)*time.Second)))
				want = append(want, id)
			}
			c := &clock{t: t0.Add(time.Hour)}
			o := newOpts(a, c, 10, 100)
			switched := false
			o.Fetch = func(ctx context.Context, from, to time.Time, offset, limit int) ([]Record, int64, error) {
				if switched {
					// The other path lists oldest first.
					_, total, err := a.fetch(ctx, from, to, 0, limit)
					hi := int(total) - offset
					if err != nil || hi <= 0 {
						return nil, total, err
					}
					lo := max(hi-limit, 0)
					recs, _, err := a.fetch(ctx, from, to, lo, hi-lo)
					slices.Reverse(recs)
					return recs, total, err
				}
				recs, total, err := a.fetch(ctx, from, to, offset, limit)
				if err != nil {
					return recs, total, err
				}
				if offset > 0 {
					// From now on another path serves the list, and the
					// records of the first page are unknowable by id:
					// only a fresh listing keeps them all.
					switched = true
					return nil, 0, fmt.Errorf("path switched: %w", ErrListingChanged)
				}
				return recs, total, nil
			}
			ids, _, eof, err := rvWindowRun(t, o, nil, 0)
			if !eof {
				t.Fatalf("no end: %v", err)
			}
			for _, id := range want {
				if !slices.Contains(ids, id) {
					t.Errorf("%s never delivered", id)
				}
			}
		})
	}
	t.Run("for-ever", func(t *testing.T) {
		for _, perSecond := range []int{1, 40} {
			a := &fakeAPI{maxSpan: 30 * 24 * time.Hour}
			for i := range 30 {
				a.add(rec(fmt.Sprintf("r%02d", i), t0.Add(10*time.Second+time.Duration(i/perSecond)*time.Second)))
			}
			o := newOpts(a, &clock{t: t0.Add(time.Hour)}, 10, 100)
			o.Fetch = func(ctx context.Context, from, to time.Time, offset, limit int) ([]Record, int64, error) {
				if offset > 0 {
					return nil, 0, fmt.Errorf("path switched: %w", ErrListingChanged)
				}
				return a.fetch(ctx, from, to, offset, limit)
			}
			r, err := NewReader(o, nil)
			if err != nil {
				t.Fatal(err)
			}
			var last error
			for range 20 {
				p, err := r.Next(context.Background())
				if err != nil {
					last = err
					break
				}
				if c, _ := DecodeCursor(p.Cursor); c.Through.After(t0.Add(10 * time.Second)) {
					t.Fatalf("per-second=%d: cursor %s passed records never listed whole", perSecond, c.Through)
				}
			}
			if last == nil || pipeline.IsPermanent(last) {
				t.Errorf("per-second=%d: got %v, want a retryable error", perSecond, last)
			}
		}
	})
}
