package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzParseCheckpoint feeds checkpoint documents as a file or an S3 object
// may hold them after a crash, an operator's edit or another version. A
// document is either refused with ErrCorrupt naming where it came from,
// or gives a stream and a valid, compact cursor that survive being written
// and read again unchanged.
func FuzzParseCheckpoint(f *testing.F) {
	for _, doc := range []string{
		`{"stream":"swr/ins-1/pull","cursor":{"id":120,"op_time":"2026-11-01T00:02:00Z","from_end":80},"updated_at":"2026-11-01T00:03:00.123456789Z","exporter_version":"1.2.3"}`,
		`{"stream":"taurusdb/ins-2","cursor":{ "from" : "2026-11-01T00:00:00Z", "ids" : ["a", "b"] },"updated_at":"2026-11-01T08:03:00+08:00"}`,
		`{"stream":"backfill/2026-10-01T00:00:00Z_now/dbss/i","cursor":"plain string"}`,
		`{"stream":"s","cursor":null}`, `{"stream":"","cursor":{}}`, `{"stream":"s"}`, `{"stream":"s","cursor":[1,2,{"x":"ü"}]}`,
		`{"stream":"s","cursor":{},"updated_at":"not a time"}`, `{"stream":1,"cursor":{}}`, `{"stream":"s","cursor":{}} trailing`,
		`{"stream":"s\ud800","cursor":{"a":"\u0000"}}`, ``, `null`, `[]`, "\xff",
	} {
		f.Add([]byte(doc))
	}
	const where = "state/swr%2Fins-1%2Fpull.json"
	f.Fuzz(func(t *testing.T, data []byte) {
		cp, err := parseCheckpoint(data, where)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), where) {
				t.Errorf("parseCheckpoint error %q does not wrap ErrCorrupt and name %s", err, where)
			}
			return
		}
		if cp.Stream == "" || !json.Valid(cp.Cursor) {
			t.Fatalf("parseCheckpoint(%q) = stream %q cursor %q", data, cp.Stream, cp.Cursor)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, cp.Cursor); err != nil || !bytes.Equal(compact.Bytes(), cp.Cursor) {
			t.Errorf("cursor %q is not compact", cp.Cursor)
		}
		again, err := parseCheckpoint(data, where)
		if err != nil || again.Stream != cp.Stream || !bytes.Equal(again.Cursor, cp.Cursor) || !again.UpdatedAt.Equal(cp.UpdatedAt) {
			t.Fatalf("parseCheckpoint is not deterministic: %+v, then %+v, %v", cp, again, err)
		}
		// Written as the stores write it (indented, HTML characters kept
		// as they are), it reads back the same.
		var out bytes.Buffer
		enc := json.NewEncoder(&out)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(cp); err != nil {
			return // an updated_at past year 9999 cannot be written back
		}
		back, err := parseCheckpoint(out.Bytes(), where)
		if err != nil {
			t.Fatalf("%s was parsed, but written back as %s it is refused: %v", data, out.Bytes(), err)
		}
		if back.Stream != cp.Stream || !bytes.Equal(back.Cursor, cp.Cursor) || !back.UpdatedAt.Equal(cp.UpdatedAt) || back.ExporterVersion != cp.ExporterVersion {
			t.Errorf("round trip changed the checkpoint:\n%+v\n%+v", cp, back)
		}
	})
}
