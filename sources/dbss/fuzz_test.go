package dbss

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// FuzzParseTime feeds the time member as it comes in a record: a string in
// several layouts or epoch seconds or milliseconds, quoted or not. A time
// that parses must be in UTC, within the years @timestamp can hold, and
// come back unchanged from its RFC 3339 form; a number and the same digits
// quoted must agree.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		`"2021-04-22 06:40:52"`, `"2021-04-22T06:40:52Z"`, `"2021-04-22T14:40:52+08:00"`,
		`"2021-04-22 06:40:52.123"`, `"2021-04-22T06:40:52.5Z"`, `1619073652`, `1619073652123`,
		`"1619073652"`, `253402300799999`, `253402300800000`, `-1`, `99999999999`, `null`, `""`,
		`" 2021-04-22 06:40:52 "`, `"0001-01-01T00:00:00+01:00"`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := parseTime(raw)
		again, ok2 := parseTime(raw)
		if ok != ok2 || !got.Equal(again) {
			t.Fatalf("parseTime(%q) is not deterministic: %v %v, then %v %v", raw, got, ok, again, ok2)
		}
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			quoted, qok := parseTime([]byte(strconv.Quote(strconv.FormatInt(n, 10))))
			if qok != ok || !quoted.Equal(got) {
				t.Errorf("parseTime(%s) = %v, %v but quoted it is %v, %v", raw, got, ok, quoted, qok)
			}
		}
		if !ok {
			if !got.IsZero() {
				t.Errorf("parseTime(%q) failed but returned %v", raw, got)
			}
			return
		}
		if got.Location() != time.UTC {
			t.Errorf("parseTime(%q) = %v, not in UTC", raw, got)
		}
		if y := got.Year(); y < 1 || y > 9999 {
			t.Errorf("parseTime(%q) = %v, outside years 0001..9999", raw, got)
		}
		formatted, _ := json.Marshal(got.Format(time.RFC3339Nano))
		if back, ok := parseTime(formatted); !ok || !back.Equal(got) {
			t.Errorf("parseTime(%q) = %v, but its RFC 3339 form %s parses as %v, %v", raw, got, formatted, back, ok)
		}
	})
}
