package newestfirst

import (
	"fmt"
	"time"
)

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
