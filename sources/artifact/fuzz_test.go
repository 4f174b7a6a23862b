package artifact

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// FuzzParseTime feeds time values in the zone-less documented form and
// others. A time that parses must be in UTC, within four-digit years, and
// come back unchanged from its RFC 3339 form; a zone-less value must not
// depend on anything but the configured zone.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2023/10/27 15:46:19", "2023/10/27 15:46:19.5", "2023-10-27 15:46:19", "2023-10-27T07:46:19Z",
		"2023-10-27T15:46:19+08:00", "0000/01/01 00:00:00", "9999/12/31 23:59:59", "2023/02/30 00:00:00",
		"27/10/2023 15:46:19", "", "2023/10/27",
	} {
		f.Add(s)
	}
	zones := []*time.Location{time.UTC, time.FixedZone("UTC+08:00", 8*3600), time.FixedZone("UTC-12:00", -12*3600)}
	f.Fuzz(func(t *testing.T, s string) {
		for _, loc := range zones {
			got, ok := parseTime(s, loc)
			again, ok2 := parseTime(s, loc)
			if ok != ok2 || !got.Equal(again) {
				t.Fatalf("parseTime(%q, %s) is not deterministic: %v %v, then %v %v", s, loc, got, ok, again, ok2)
			}
			if !ok {
				if !got.IsZero() {
					t.Errorf("parseTime(%q, %s) failed but returned %v", s, loc, got)
				}
				continue
			}
			if got.Location() != time.UTC {
				t.Errorf("parseTime(%q, %s) = %v, not in UTC", s, loc, got)
			}
			if y := got.Year(); y < 0 || y > 9999 {
				t.Errorf("parseTime(%q, %s) = %v, outside years 0000..9999", s, loc, got)
			}
			formatted := got.Format(time.RFC3339Nano)
			if back, ok := parseTime(formatted, loc); !ok || !back.Equal(got) {
				t.Errorf("parseTime(%q, %s) = %v, but its RFC 3339 form %q parses as %v, %v", s, loc, got, formatted, back, ok)
			}
		}
	})
}

// FuzzParseZone feeds HWCAUDIT_ARTIFACT_TIMEZONE values: an accepted one
// is a whole-minute offset of at most 23:59 whose name gives it back.
func FuzzParseZone(f *testing.F) {
	for _, s := range []string{"+08:00", "-03:30", "+00:00", "+14:00", "08:00", "+8:00", "+08:60", "UTC", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		loc, err := parseZone(s)
		if err != nil {
			if loc != nil {
				t.Errorf("parseZone(%q) failed (%v) but returned %v", s, err, loc)
			}
			return
		}
		_, off := time.Date(2024, 1, 1, 0, 0, 0, 0, loc).Zone()
		if off%60 != 0 || off > 23*3600+59*60 || off < -(23*3600+59*60) {
			t.Errorf("parseZone(%q) = offset %ds", s, off)
		}
		if loc.String() != "UTC"+s {
			t.Errorf("parseZone(%q) named %q", s, loc.String())
		}
	})
}

// FuzzCursor feeds checkpoints to Open: a cursor is either refused with a
// permanent error or read to a reader that delivers records in id order
// and never panics, whatever the list holds.
func FuzzCursor(f *testing.F) {
	for _, c := range []string{
		`{"id":"7","time":"2023-10-27T07:46:19Z","from_end":3}`, `{"id":"7","skip":2,"from_end":3}`,
		`{"id":"007","skip":0}`, `{"id":"7","skip":-1}`, `{"id":"x"}`, `{"id":""}`, `{}`, `null`, `"x"`,
		`{"id":"99999999999999999999999","skip":9223372036854775807,"from_end":-9223372036854775808}`,
	} {
		f.Add([]byte(c))
	}
	body, _ := json.Marshal(map[string]any{"status": "success", "result": map[string]any{
		"total": 3,
		"auditInfoList": []map[string]any{
			{"id": "9", "time": "2023/10/27 15:46:21"}, {"id": "8", "time": "2023/10/27 15:46:20"}, {"id": "7", "time": "2023/10/27 15:46:19"},
		},
	}})
	f.Fuzz(func(t *testing.T, cur []byte) {
		s := goldenStream(ModuleFile)
		s.api = bodyDoer{body}
		rd, err := s.Open(context.Background(), cur)
		if err != nil {
			if !pipeline.IsPermanent(err) {
				t.Errorf("a cursor that does not decode gave a retryable error: %v", err)
			}
			return
		}
		last := ""
		for range 5 {
			p, err := rd.Next(context.Background())
			if err != nil {
				return
			}
			for _, raw := range p.Records {
				var k struct{ ID string }
				_ = json.Unmarshal(raw, &k)
				if last != "" && compareIDs(k.ID, last) <= 0 {
					t.Fatalf("record %s delivered after %s", k.ID, last)
				}
				last = k.ID
			}
			if len(p.Records) == 0 {
				return
			}
		}
	})
}
