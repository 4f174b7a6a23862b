package swr

import (
	"testing"
	"time"
)

// FuzzParseTime feeds op_time values. A time that parses must be in UTC,
// within the four-digit years @timestamp can hold, and come back unchanged
// from its own RFC 3339 form, the form it is written out in.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2020-12-24T11:19:54.907Z", "2025-06-01T07:00:00Z", "2025-06-01T15:00:00+08:00",
		"2025-06-01T07:00:00.123456789", "2025-06-01 07:00:00", "2025-06-01 07:00:00.5",
		"0000-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "24/12/2020 11:19:54",
		"2025-02-30T00:00:00Z", "", " 2025-06-01T07:00:00Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTime(s)
		again, ok2 := parseTime(s)
		if ok != ok2 || !got.Equal(again) {
			t.Fatalf("parseTime(%q) is not deterministic: %v %v, then %v %v", s, got, ok, again, ok2)
		}
		if !ok {
			if !got.IsZero() {
				t.Errorf("parseTime(%q) failed but returned %v", s, got)
			}
			return
		}
		if got.Location() != time.UTC {
			t.Errorf("parseTime(%q) = %v, not in UTC", s, got)
		}
		if y := got.Year(); y < 0 || y > 9999 {
			t.Errorf("parseTime(%q) = %v, outside years 0000..9999", s, got)
		}
		formatted := got.Format(time.RFC3339Nano)
		back, ok := parseTime(formatted)
		if !ok || !back.Equal(got) {
			t.Errorf("parseTime(%q) = %v, but its RFC 3339 form %q parses as %v, %v", s, got, formatted, back, ok)
		}
	})
}
