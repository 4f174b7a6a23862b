package newestfirst

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// TestKilledRunsLoseNothing: runs stopped after a random number of pages
// resume from the mark of the last page they returned (as a checkpoint
// saved after that page's delivery would), while records arrive at the
// head, requests fail, and some records carry no key (malformed, dead-
// lettered by Map), and some keys are far off their neighbours'. Every
// record is delivered (or, odd, dead-lettered) at least once.
func TestKilledRunsLoseNothing(t *testing.T) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for seed := range uint64(400) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			// The list's own randomness, used under its lock: requests a
			// finished run cancelled may still be running.
			lrng := rand.New(rand.NewPCG(seed, 98))
			a := newListAPI(200+rng.IntN(800), base)
			keyless := map[int64]bool{}
			a.keyless = func(id int64) bool {
				if v, ok := keyless[id]; ok {
					return v
				}
				keyless[id] = lrng.IntN(20) == 0
				return keyless[id]
			}
			a.insert = func(int) int { return lrng.IntN(6) }
			odd := map[int64]bool{}
			if seed%3 == 0 {
				// Keys far above or below their neighbours, now or later.
				a.oddKey = map[int64]int64{}
				for _, id := range []int64{a.ids[rng.IntN(len(a.ids))], a.nextID + 40} { // before any request
					a.oddKey[id] = []int64{1 << 40, -5}[rng.IntN(2)]
					odd[id] = true
				}
			}
			a.fail = func(int) bool { return lrng.IntN(9) == 0 }
			conc := []int{1, 2, 4, 8}[seed%4]
			page := []int{20, 37, 100}[seed%3]
			delivered := map[int64]int{}
			var mark *Mark[int64]
			for run := range 40 {
				rd := New(Config[int64]{Name: "kill", Fetch: a.fetch, MaxPageSize: page, Start: base, Compare: cmp.Compare[int64], Concurrency: conc}, mark)
				pages := 1 + rng.IntN(6)
				if run >= 30 {
					pages = 1 << 30 // the last runs finish
					a.mu.Lock()
					a.insert = nil
					a.mu.Unlock()
				}
				eof := false
				for p := 0; p < pages; {
					pg, err := rd.Next(context.Background())
					if errors.Is(err, io.EOF) {
						eof = true
						break
					}
					if err != nil {
						if pipeline.IsPermanent(err) {
							t.Fatalf("run %d: %v", run, err)
						}
						continue
					}
					p++
					countPage(pg, delivered, delivered) // dead-lettered: accounted for
					if pg.Mark != nil {
						mark = pg.Mark
					}
				}
				if eof && run >= 30 {
					break
				}
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			for _, id := range a.ids {
				if delivered[id] == 0 {
					t.Fatalf("record %d never delivered (conc %d, page %d, keyless %v, odd %v)", id, conc, page, keyless[id], odd[id])
				}
			}
		})
	}
}
