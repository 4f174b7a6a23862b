// Package ecsdoc writes Elastic Common Schema documents as JSON without
// reflection: every source's mapper appends fields straight into a byte
// slice, which keeps the transform stage allocation-light.
package ecsdoc

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Version is the ECS version the mappings follow (ecs.version).
const Version = "9.4.0"

// Writer appends one JSON object. Fields are written in call order; the
// caller opens and closes nested objects. The zero value is ready to use.
type Writer struct {
	buf []byte
	// first is true right after an opening brace or bracket, where the next
	// member needs no comma.
	first bool
}

// Reset starts a new document, reusing dst's storage.
func (w *Writer) Reset(dst []byte) {
	w.buf = append(dst[:0], '{')
	w.first = true
}

// Bytes closes the document and returns it.
func (w *Writer) Bytes() []byte {
	w.buf = append(w.buf, '}')
	return w.buf
}

func (w *Writer) key(k string) {
	if !w.first {
		w.buf = append(w.buf, ',')
	}
	w.first = false
	w.buf = append(w.buf, '"')
	w.buf = append(w.buf, k...) // keys are constants chosen by the mappers
	w.buf = append(w.buf, '"', ':')
}

// Open starts a nested object under k.
func (w *Writer) Open(k string) {
	w.key(k)
	w.buf = append(w.buf, '{')
	w.first = true
}

// Close ends the innermost nested object.
func (w *Writer) Close() {
	w.buf = append(w.buf, '}')
	w.first = false
}

// String writes k with a JSON string value.
func (w *Writer) String(k, v string) {
	w.key(k)
	w.buf = AppendString(w.buf, v)
}

// StringIf writes k only when v is not empty: ECS documents leave absent
// values out rather than storing empty strings.
func (w *Writer) StringIf(k, v string) {
	if v != "" {
		w.String(k, v)
	}
}

// Strings writes k with an array of strings.
func (w *Writer) Strings(k string, vs ...string) {
	w.key(k)
	w.buf = append(w.buf, '[')
	for i, v := range vs {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = AppendString(w.buf, v)
	}
	w.buf = append(w.buf, ']')
}

// Related writes the "related" object: "user", "ip" and "hash", each an
// array of its non-empty values without repeats, in the order given, and
// nothing when all are empty. Every mapping names its actors, addresses
// and digests here, so that a search of related.* finds the event.
func (w *Writer) Related(users, ips, hashes []string) {
	if !anyValue(users) && !anyValue(ips) && !anyValue(hashes) {
		return
	}
	w.Open("related")
	w.distinct("user", users)
	w.distinct("ip", ips)
	w.distinct("hash", hashes)
	w.Close()
}

func anyValue(vs []string) bool {
	for _, v := range vs {
		if v != "" {
			return true
		}
	}
	return false
}

// distinct writes k with the non-empty values of vs, each once; nothing
// when there is none.
func (w *Writer) distinct(k string, vs []string) {
	if !anyValue(vs) {
		return
	}
	w.key(k)
	w.buf = append(w.buf, '[')
	n := 0
	for i, v := range vs {
		if v == "" || slices.Contains(vs[:i], v) {
			continue
		}
		if n > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = AppendString(w.buf, v)
		n++
	}
	w.buf = append(w.buf, ']')
}

// Int writes k with an integer value.
func (w *Writer) Int(k string, v int64) {
	w.key(k)
	w.buf = strconv.AppendInt(w.buf, v, 10)
}

// Time writes k as an RFC 3339 UTC timestamp with millisecond precision,
// the form Elasticsearch's date type and every SIEM parse.
func (w *Writer) Time(k string, t time.Time) {
	w.key(k)
	w.buf = append(w.buf, '"')
	w.buf = appendTime(w.buf, t)
	w.buf = append(w.buf, '"')
}

// appendTime appends t in UTC as 2006-01-02T15:04:05.000Z, what
// AppendFormat with that layout writes, at a fraction of its cost: every
// document carries two times. Years outside 0000..9999 take AppendFormat.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	}
	hour, min, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	return append(dst,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+min/10), byte('0'+min%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// Raw writes k with v, which must already be valid JSON.
func (w *Writer) Raw(k string, v []byte) {
	w.key(k)
	w.buf = append(w.buf, v...)
}

// RawString writes k with the bytes v as a JSON string (event.original).
func (w *Writer) RawString(k string, v []byte) {
	w.key(k)
	w.buf = appendStringBytes(w.buf, v)
}

const hexDigits = "0123456789abcdef"

// safe reports bytes that can be copied into a JSON string as they are.
// '<', '>' and '&' are left alone: these documents are not embedded in HTML.
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD so
// that every document stays valid JSON whatever the API returned.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscaped(dst, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript consumers.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendStringBytes(dst []byte, b []byte) []byte {
	// AppendString only reads its argument, so viewing b as a string is safe.
	return AppendString(dst, unsafeString(b))
}

func appendEscaped(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	default:
		return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
	}
}

// ID derives a deterministic event.id from the parts that identify a record
// at its source: the same record always gets the same id, on every run and
// host, which is what lets sinks drop replayed duplicates.
func ID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Origin writes, inside the open "event" object, the fields that say where
// an event came from: event.dataset, event.module, event.provider, event.id.
func (w *Writer) Origin(dataset, provider, id string) {
	w.String("dataset", dataset)
	w.String("module", "huaweicloud")
	w.String("provider", provider)
	w.String("id", id)
}

// Cloud writes the cloud object every event carries: the provider, the
// region (when known), the project and the service that logged the event.
func (w *Writer) Cloud(region, projectID, service string) {
	w.Open("cloud")
	w.String("provider", "huaweicloud")
	w.StringIf("region", region)
	w.Open("project")
	w.String("id", projectID)
	w.Close()
	w.Open("service")
	w.String("name", service)
	w.Close()
	w.Close()
}

// Begin starts a document in dst's storage with the fields every event
// opens with (@timestamp, ecs.version, event.kind) and leaves the "event"
// object open for the source's categorization fields.
func (w *Writer) Begin(dst []byte, ts time.Time) {
	w.Reset(dst)
	w.Time("@timestamp", ts)
	w.Open("ecs")
	w.String("version", Version)
	w.Close()
	w.Open("event")
	w.String("kind", "event")
}
