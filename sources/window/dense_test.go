package window

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"
)

// denseAPI serves one second holding n records, newest first, without
// holding them: record i is computed when a page asks for it. After
// insertAt records were served in one pass, it inserts one more at the
// head of the listing (once), shifting later pages.
type denseAPI struct {
	sec      time.Time
	n        int
	calls    int
	insertAt int
	inserted bool
	served   int
}

func (d *denseAPI) fetch(_ context.Context, from, to time.Time, offset, limit int) ([]Record, int64, error) {
	d.calls++
	if d.sec.Before(from) || d.sec.After(to) {
		return nil, 0, nil
	}
	n := d.n
	if d.inserted {
		n++
	}
	var out []Record
	for i := offset; i < min(offset+limit, n); i++ {
		id := n - 1 - i // newest first
		out = append(out, Record{ID: "d" + strconv.Itoa(id), Time: d.sec.Add(time.Duration(id%1000) * time.Millisecond), Raw: []byte(strconv.Itoa(id))})
	}
	d.served += len(out)
	if d.insertAt > 0 && !d.inserted && d.served >= d.insertAt {
		d.inserted = true
	}
	return out, int64(n), nil
}

// readDense reads the dense second and returns the distinct ids delivered,
// the most records the reader held in memory at once and the longest
// cursor.
func readDense(tb testing.TB, d *denseAPI, pageSize, maxRecords int) (distinct map[string]int, held, cursorLen int) {
	tb.Helper()
	o := Options{Key: "dense", Start: d.sec.Add(-time.Hour), Config: Config{SettleDelay: time.Minute, MaxRecords: maxRecords},
		MaxSpan: 30 * 24 * time.Hour, PageSize: pageSize, Now: func() time.Time { return d.sec.Add(time.Hour) }, Fetch: d.fetch}
	r, err := NewReader(o, nil)
	if err != nil {
		tb.Fatal(err)
	}
	distinct = map[string]int{}
	for {
		p, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			tb.Fatal(err)
		}
		held = max(held, len(r.pending)+len(p.Records))
		cursorLen = max(cursorLen, len(p.Cursor))
		if cur, _ := DecodeCursor(p.Cursor); cur.Through.After(d.sec) && r.sec != nil && r.sec.from.Equal(d.sec) {
			tb.Fatalf("cursor %s passed the second before it was read whole", p.Cursor)
		}
		for _, raw := range p.Records {
			distinct[string(raw)]++
		}
	}
}

// TestDenseSecondBoundedAndLinear: 50,000 records in one second, pages of
// 100, windows of at most 100 records. The second is read in one pass, a
// page per request (linear; its neighbours' overlapping queries list it
// once more each), each record is delivered once, the reader holds at
// most a page of it, and every checkpoint is a few bytes. Before, each page re-encoded every id
// of the second into the cursor (quadratic) and held the whole second.
func TestDenseSecondBoundedAndLinear(t *testing.T) {
	const n, page = 50_000, 100
	d := &denseAPI{sec: t0.Add(30 * time.Minute), n: n}
	got, held, curLen := readDense(t, d, page, 100)
	if len(got) != n {
		t.Fatalf("%d of %d records delivered", len(got), n)
	}
	for id, k := range got {
		if k > 1 {
			t.Fatalf("record %s delivered %d times in one pass", id, k)
		}
	}
	if held > page {
		t.Errorf("held %d records at once, want at most a page (%d)", held, page)
	}
	if curLen > 64 {
		t.Errorf("a checkpoint of %d bytes", curLen)
	}
	// The second's own pass (n/page + the page that ends it), a pass by
	// each neighbouring one-second window, whose query overlaps it by a
	// second so as not to depend on inclusive or exclusive bounds, and the
	// halvings from a 30-day window down to a second, one request each.
	if limit := 3*(n/page+1) + 80; d.calls > limit {
		t.Errorf("%d requests for %d records in pages of %d, want at most %d", d.calls, n, page, limit)
	}
	t.Logf("%d requests, at most %d records held, checkpoints of at most %d bytes", d.calls, held, curLen)
}

// TestDenseSecondListingChangesMidPass: a record appears at the head of
// the second's listing while it is paged, shifting later pages; the pass
// sees the total change and reads the second again, so nothing is missed.
func TestDenseSecondListingChangesMidPass(t *testing.T) {
	d := &denseAPI{sec: t0.Add(30 * time.Minute), n: 1000, insertAt: 500}
	got, _, _ := readDense(t, d, 100, 100)
	for i := range d.n + 1 {
		if got[strconv.Itoa(i)] == 0 {
			t.Fatalf("record %d never delivered", i)
		}
	}
}

// BenchmarkDenseSecond reads one second holding b.N-independent 100,000
// records: the cost per record and the memory held stay flat whatever the
// second holds (compare -benchmem across sizes).
func BenchmarkDenseSecond(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			var held, calls int
			for range b.N {
				d := &denseAPI{sec: t0.Add(30 * time.Minute), n: n}
				_, h, _ := readDense(b, d, 100, 5000)
				held, calls = h, d.calls
			}
			b.ReportMetric(float64(held), "max-held-records")
			b.ReportMetric(float64(calls)/float64(n), "requests/record")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
	}
}
