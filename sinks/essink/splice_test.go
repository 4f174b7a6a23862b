package essink

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// FuzzAppendItem checks that for any JSON object the bulk source line is
// one line of valid JSON holding the original members plus exactly one
// data_stream member, and that the action line names the id.
func FuzzAppendItem(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { } `, `{"a":1}`, "{\n\"a\":\n[1,2]\n}", `{"data_stream":{"type":"x"}}`,
		`{"m":"\"data_stream\""}`, `{"a":{"data_stream":1}}`, `{"a":"}"}`, `{"é":"✓\u2028"}`,
	} {
		f.Add(s, "id-1")
	}
	f.Add(`{"a":1}`, "quote\"back\\slash\x00<&>\u2028\xff")
	t := target{index: "logs-x-default", dsField: []byte(`"data_stream":{"type":"logs","dataset":"x","namespace":"default"}`)}
	f.Fuzz(func(tt *testing.T, doc, id string) {
		var orig map[string]json.RawMessage
		if json.Unmarshal([]byte(doc), &orig) != nil || orig == nil {
			return
		}
		ev := pipeline.Event{ID: id, Doc: []byte(doc)}
		s := &Sink{cfg: Config{BulkMaxBytes: 1 << 20}}
		if reason := s.check(&ev); reason != "" {
			return
		}
		var buf bytes.Buffer
		if reason := appendItem(&buf, t, &ev); reason != "" {
			tt.Fatalf("valid object %q refused: %s", doc, reason)
		}
		lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
		if len(lines) != 2 {
			tt.Fatalf("%d lines: %q", len(lines), buf.Bytes())
		}
		var act struct {
			Create struct {
				Index string `json:"_index"`
				ID    string `json:"_id"`
			} `json:"create"`
		}
		if err := json.Unmarshal(lines[0], &act); err != nil || act.Create.Index != t.index {
			tt.Fatalf("action %q: %v", lines[0], err)
		}
		// Invalid UTF-8 becomes U+FFFD, as encoding/json does.
		var want string
		q, _ := json.Marshal(id)
		json.Unmarshal(q, &want)
		if act.Create.ID != want {
			tt.Fatalf("action id %q, want %q", act.Create.ID, want)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(lines[1], &got); err != nil {
			tt.Fatalf("source %q is not JSON: %v", lines[1], err)
		}
		_, had := orig["data_stream"]
		if !had {
			if _, ok := got["data_stream"]; !ok {
				tt.Fatalf("no data_stream in %q", lines[1])
			}
			delete(got, "data_stream")
		}
		if len(got) != len(orig) {
			tt.Fatalf("members changed: %q → %q", doc, lines[1])
		}
	})
}
