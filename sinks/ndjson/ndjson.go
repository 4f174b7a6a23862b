// Package ndjson holds what the sinks writing newline-delimited JSON share.
package ndjson

import (
	"bytes"
	"encoding/json"
)

// Line returns doc as a single NDJSON line, or why it cannot be one (the
// sinks then reject the event to the dead letters with that reason).
// Encoders emit compact JSON, so the common case costs one byte scan.
func Line(doc []byte) ([]byte, string) {
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, "empty document"
	}
	if bytes.IndexByte(doc, '\n') < 0 {
		return doc, ""
	}
	// Valid JSON has newlines only as whitespace between tokens.
	var buf bytes.Buffer
	if err := json.Compact(&buf, doc); err != nil {
		return nil, "document spans several lines and is not valid JSON: " + err.Error()
	}
	return buf.Bytes(), ""
}
