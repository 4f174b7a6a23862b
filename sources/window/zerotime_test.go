package window

import (
	"context"
	"io"
	"strconv"
	"testing"
	"time"
)

// TestZeroTimeRecordSurvivesResume: a record served without a usable time
// must be handed over (as Page.Invalid, to be dead-lettered) before the
// cursor passes its true second, or a run cut short in its window resumes
// after it and never lists it again. Placed in the window's last second it
// was lost exactly so (found by cmd/exporter's TestHostileKillAndResume).
func TestZeroTimeRecordSurvivesResume(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	type rec struct {
		id  string
		sec int
		bad bool
	}
	var all []rec
	for i := 0; i < 10; i++ {
		all = append(all, rec{id: "r" + strconv.Itoa(i), sec: 10 + i})
	}
	all[2].bad = true // true time 12s, served without a usable time
	fetch := func(ctx context.Context, from, to time.Time, offset, limit int) ([]Record, int64, error) {
		var m []Record
		for i := len(all) - 1; i >= 0; i-- {
			r := all[i]
			ts := base.Add(time.Duration(r.sec) * time.Second)
			if ts.Before(from) || ts.After(to) {
				continue
			}
			rr := Record{Raw: []byte(r.id), ID: r.id, Time: ts}
			if r.bad {
				rr.Time = time.Time{}
			}
			m = append(m, rr)
		}
		end := min(offset+limit, len(m))
		return m[min(offset, len(m)):end], int64(len(m)), nil
	}
	o := Options{Key: "k", Start: base, Config: Config{MaxRecords: 100}, MaxSpan: 30 * 24 * time.Hour, PageSize: 2,
		Now: func() time.Time { return base.Add(time.Hour) }, Fetch: fetch}
	got := map[string]bool{}
	r, err := NewReader(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cursor []byte
	for i := 0; i < 3; i++ { // deliver three chunks, then "crash"
		p, err := r.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range p.Records {
			got[string(b)] = true
		}
		for _, inv := range p.Invalid {
			got[string(inv.Raw)] = true
		}
		cursor = p.Cursor
	}
	t.Logf("cursor after the crash: %s", cursor)
	r, err = NewReader(o, cursor)
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := r.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range p.Records {
			got[string(b)] = true
		}
		for _, inv := range p.Invalid {
			got[string(inv.Raw)] = true
		}
	}
	for _, x := range all {
		if !got[x.id] {
			t.Errorf("record %s (second %d, bad time %v) never delivered", x.id, x.sec, x.bad)
		}
	}
}
