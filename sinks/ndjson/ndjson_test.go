package ndjson

import "testing"

func TestLine(t *testing.T) {
	for _, c := range []struct {
		doc, want, reason string
	}{
		{`{"a":1}`, `{"a":1}`, ""},
		{"{\n  \"a\": 1\n}", `{"a":1}`, ""},
		{"{\"a\":\n", "", "document spans several lines and is not valid JSON: unexpected end of JSON input"},
		{"  \n\t", "", "empty document"},
		{"", "", "empty document"},
	} {
		got, reason := Line([]byte(c.doc))
		if string(got) != c.want || reason != c.reason {
			t.Errorf("Line(%q) = %q, %q; want %q, %q", c.doc, got, reason, c.want, c.reason)
		}
	}
}
