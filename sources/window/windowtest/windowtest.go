// Package windowtest holds the test scaffolding of the sources read through
// package window (DBSS, TaurusDB): a settable clock, draining a stream the
// way the exporter runs it on a schedule, and the page-decoder checks every
// such source runs.
package windowtest

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// Clock is a clock the test moves; the simulator and the stream read it
// from other goroutines.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time; pass it where a func() time.Time is wanted.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Drain reads s from cursor until io.EOF and returns the raw records and
// the last cursor. A retryable error is retried at once, as the pipeline
// would after its backoff; a permanent one fails t.
func Drain(t testing.TB, s pipeline.Stream, cursor []byte) ([][]byte, []byte) {
	t.Helper()
	rd, err := s.Open(context.Background(), cursor)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for range 100000 {
		p, err := rd.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out, cursor
		}
		if err != nil {
			if pipeline.IsPermanent(err) {
				t.Fatalf("permanent error: %v", err)
			}
			continue
		}
		out = append(out, p.Records...)
		cursor = p.Cursor
	}
	t.Fatal("no io.EOF")
	return nil, nil
}

// KeyFunc reads a delivered record's id and the time the API filters on.
type KeyFunc func(raw []byte) (id string, at time.Time, err error)

// DrainEvery runs s as the exporter does on a schedule: until clk passes
// until, it moves clk by step and drains s from the last cursor. It fails
// t when a record is delivered twice or after a newer one, and returns the
// ids delivered, the last cursor and the number of runs.
func DrainEvery(t testing.TB, s pipeline.Stream, clk *Clock, step time.Duration, until time.Time, key KeyFunc) (seen map[string]bool, cursor []byte, runs int) {
	t.Helper()
	seen = map[string]bool{}
	var prev time.Time
	for clk.Now().Before(until) {
		clk.Add(step)
		var recs [][]byte
		recs, cursor = Drain(t, s, cursor)
		runs++
		for _, raw := range recs {
			id, at, err := key(raw)
			if err != nil {
				t.Fatal(err)
			}
			if at.Before(prev) {
				t.Fatalf("record %s at %s delivered after one at %s", id, at, prev)
			}
			prev = at
			if seen[id] {
				t.Fatalf("record %s delivered twice", id)
			}
			seen[id] = true
		}
	}
	return seen, cursor, runs
}

// DecodeFunc is a source's page decoder: the records of one 200 body
// asked for at offset with limit, and the API's total.
type DecodeFunc func(body []byte, instance string, offset, limit int) ([]window.Record, int64, error)

// Raw returns the records' raw bytes, as the reader delivers them.
func Raw(recs []window.Record) [][]byte {
	out := make([][]byte, len(recs))
	for i, r := range recs {
		out[i] = r.Raw
	}
	return out
}

// PageRecords returns the records of a page file (see ecstest.PageFiles)
// as decode splits them, in the form ecstest.MapGolden wants.
func PageRecords(decode DecodeFunc) func(testing.TB, string) [][]byte {
	return func(t testing.TB, path string) [][]byte {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		recs, _, err := decode(data, "test", 0, 100)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return Raw(recs)
	}
}

// FuzzDecodePage fuzzes decode with the page files and seeds as corpus. A
// body it refuses must be a permanent error; one it accepts must hold at
// most limit records and a total not below 0, and a reader of serve(body),
// a stream whose API answers body to every request, must neither panic nor
// loop.
func FuzzDecodePage(f *testing.F, decode DecodeFunc, serve func(body []byte) pipeline.Stream, seeds ...string) {
	f.Helper()
	for _, p := range ecstest.PageFiles(f) {
		data, _ := os.ReadFile(p)
		f.Add(data)
	}
	for _, b := range seeds {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, total, err := decode(body, "i", 0, 100)
		if err != nil {
			if !pipeline.IsPermanent(err) {
				t.Fatalf("retryable error for a bad body: %v", err)
			}
			return
		}
		if len(recs) > 100 || total < 0 {
			t.Fatalf("%d records, total %d", len(recs), total)
		}
		rd, err := serve(body).Open(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := rd.Next(context.Background()); err != nil {
				break
			}
		}
	})
}
