package window

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// markerAPI lists fakeAPI's records as a marker-paged API: those whose
// time lies in [from, to] (to the millisecond), newest first, a page
// followed by the records strictly older than the marked one (the
// documented CTS "earlier than"), the marker being the last record's id.
type markerAPI struct {
	*fakeAPI
	// mode: "" as above; "ignore" serves the first page whatever the
	// marker; "same" answers with the marker it was asked with.
	mode     string
	requests int
}

func (a *markerAPI) fetch(_ context.Context, from, to time.Time, marker string, limit int) ([]Record, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests++
	var in []Record
	for _, r := range a.recs {
		if !r.Time.Before(from) && !r.Time.After(to) {
			in = append(in, r)
		}
	}
	slices.SortStableFunc(in, func(x, y Record) int { return y.Time.Compare(x.Time) })
	if marker != "" && a.mode != "ignore" {
		i := slices.IndexFunc(a.recs, func(r Record) bool { return r.ID == marker })
		if i < 0 {
			return nil, "", fmt.Errorf("unknown marker %q", marker)
		}
		mt := a.recs[i].Time
		in = slices.DeleteFunc(in, func(r Record) bool { return !r.Time.Before(mt) })
	}
	page := slices.Clone(in[:min(limit, len(in))])
	next := ""
	if len(in) > limit {
		next = page[len(page)-1].ID
	}
	if a.mode == "same" && marker != "" {
		next = marker
	}
	return page, next, nil
}

// TestMarkerEdgeMillisecondsNotLost reads records in runs sharing one
// millisecond, many runs straddling page edges, from an API whose marker
// resumes strictly before the marked record's time: every record arrives
// once, thanks to the boundary queries.
func TestMarkerEdgeMillisecondsNotLost(t *testing.T) {
	for _, maxRecords := range []int{5, 1000} { // one-second windows streamed; whole windows
		t.Run(fmt.Sprint(maxRecords), func(t *testing.T) {
			a := &markerAPI{fakeAPI: &fakeAPI{maxSpan: time.Hour}}
			var want []Record
			at := t0.Add(time.Second)
			for i := range 120 {
				if i%3 == 0 {
					at = at.Add(time.Duration(1+i%7) * 37 * time.Millisecond)
				}
				want = append(want, rec(fmt.Sprintf("r%03d", i), at))
			}
			a.add(want...)
			c := &clock{t: at.Add(time.Hour)}
			o := newOpts(a.fakeAPI, c, 4, maxRecords)
			o.Fetch, o.FetchMarker = nil, a.fetch
			ids, _, _ := drain(t, o, nil)
			checkOnce(t, ids, want)
			t.Logf("%d records in %d requests", len(ids), a.requests)
		})
	}
}

// TestMarkerThatDoesNotAdvanceIsAnError serves an API that ignores the
// marker, and one that hands back the marker it was asked with: the reader
// reports an error naming the stream instead of looping.
func TestMarkerThatDoesNotAdvanceIsAnError(t *testing.T) {
	for _, mode := range []string{"ignore", "same"} {
		t.Run(mode, func(t *testing.T) {
			a := &markerAPI{fakeAPI: &fakeAPI{maxSpan: time.Hour}, mode: mode}
			for i := range 30 {
				a.add(rec(fmt.Sprintf("r%02d", i), t0.Add(time.Duration(10+i)*time.Second)))
			}
			c := &clock{t: t0.Add(time.Hour)}
			o := newOpts(a.fakeAPI, c, 4, 1000)
			o.Fetch, o.FetchMarker = nil, a.fetch
			r, err := NewReader(o, nil)
			if err != nil {
				t.Fatal(err)
			}
			var last error
			for range 20 {
				_, err := r.Next(context.Background())
				if errors.Is(err, io.EOF) {
					t.Fatal("read to the end through a marker that does not advance")
				}
				if err != nil {
					last = err
					break
				}
			}
			if last == nil || !strings.Contains(last.Error(), "test") || !strings.Contains(last.Error(), "marker") {
				t.Errorf("error %v, want one naming the stream and the marker", last)
			}
			if a.requests > 200 {
				t.Errorf("%d requests before giving up", a.requests)
			}
		})
	}
}

func TestMarkerOptions(t *testing.T) {
	a := &markerAPI{fakeAPI: &fakeAPI{maxSpan: time.Hour}}
	o := newOpts(a.fakeAPI, &clock{t: t0}, 4, 100)
	o.FetchMarker = a.fetch // both set
	if _, err := NewReader(o, nil); err == nil {
		t.Error("a reader with Fetch and FetchMarker opened")
	}
	o.Fetch, o.FetchMarker = nil, nil
	if _, err := NewReader(o, nil); err == nil {
		t.Error("a reader without a fetch function opened")
	}
}

// TestStartWithinASecond starts a stream at a time finer than a second:
// the records of that second before it are excluded, the others
// delivered.
func TestStartWithinASecond(t *testing.T) {
	start := t0.Add(10*time.Second + 500*time.Millisecond)
	a := &fakeAPI{maxSpan: time.Hour}
	a.add(rec("before", start.Add(-3*time.Millisecond)), rec("at", start), rec("after", start.Add(3*time.Millisecond)), rec("next", start.Add(time.Second)))
	o := newOpts(a, &clock{t: t0.Add(time.Hour)}, 10, 100)
	o.Start = start
	r, err := NewReader(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var excluded int64
	for {
		p, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		excluded += p.Excluded.BeforeStart
		for _, raw := range p.Records {
			ids = append(ids, string(raw))
		}
	}
	if len(ids) != 3 || excluded != 1 || slices.ContainsFunc(ids, func(s string) bool { return strings.Contains(s, `"before"`) }) {
		t.Errorf("delivered %v, %d excluded; want at, after, next and one excluded", ids, excluded)
	}
}
