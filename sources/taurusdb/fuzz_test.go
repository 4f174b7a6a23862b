package taurusdb

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// FuzzParseTime feeds begin/end time values. A time that parses must be in
// UTC, within the years @timestamp can hold, and come back unchanged from
// its RFC 3339 form.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2019-11-06T09:03:34+0800", "2019-11-06T01:03:34Z", "2019-11-06T09:03:34.123+08:00",
		"2019-11-06T09:03:34.5+0800", "2019-11-06 01:03:34", "0001-01-01T00:00:00+0100",
		"9999-12-31T23:59:59-0100", "2019-02-30T00:00:00Z", "1573002214", "",
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
		if y := got.Year(); y < 1 || y > 9999 {
			t.Errorf("parseTime(%q) = %v, outside years 0001..9999", s, got)
		}
		formatted := got.Format(time.RFC3339Nano)
		if back, ok := parseTime(formatted); !ok || !back.Equal(got) {
			t.Errorf("parseTime(%q) = %v, but its RFC 3339 form %q parses as %v, %v", s, got, formatted, back, ok)
		}
	})
}

// FuzzParseSize feeds file sizes. An accepted size is a canonical JSON
// number of KB, not negative, whose byte count fits, and which parses to
// itself again, quoted or not.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{`1024`, `"1024"`, `0`, `1.5`, `"1.5"`, `-1`, `1e3`, `NaN`, `"Inf"`, `null`, `""`, `8796093022207`, `8796093022208`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		kb, n, ok := parseSize(raw)
		if !ok {
			if kb != nil || n != 0 {
				t.Errorf("parseSize(%q) failed but returned %s, %d", raw, kb, n)
			}
			return
		}
		var v float64
		if err := json.Unmarshal(kb, &v); err != nil {
			t.Fatalf("parseSize(%q) = %q, not a JSON number: %v", raw, kb, err)
		}
		if v < 0 || n < 0 || v > maxSizeKB {
			t.Errorf("parseSize(%q) = %s KB, %d bytes", raw, kb, n)
		}
		for _, again := range [][]byte{kb, []byte(strconv.Quote(string(kb)))} {
			kb2, n2, ok := parseSize(again)
			if !ok || string(kb2) != string(kb) || n2 != n {
				t.Errorf("parseSize(%q) = %s, %d, but parseSize(%q) = %s, %d, %v", raw, kb, n, again, kb2, n2, ok)
			}
		}
	})
}
