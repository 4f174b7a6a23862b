package egress

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Redacted replaces every form of a secret in text.
const Redacted = "[REDACTED]"

// minFormLen is the shortest derived form (escaped, encoded) that is
// redacted; the raw secret is always redacted, whatever its length.
const minFormLen = 6

// Secrets is a set of configured secrets whose every form is removed from
// error text. Add may be called while others Redact (credential providers
// add keys as they hand them out). The zero value is empty and ready; a nil
// *Secrets redacts nothing.
type Secrets struct {
	mu    sync.RWMutex
	seen  map[string]bool
	forms []string // longest first
}

// NewSecrets returns a set holding secrets (empty ones are ignored).
func NewSecrets(secrets ...string) *Secrets {
	s := &Secrets{}
	s.Add(secrets...)
	return s
}

// Add adds secrets to the set: each in raw form, JSON-escaped (with and
// without "\/" and HTML escapes), URL-encoded (query and path escaping,
// either hex case) and base64 (standard and URL alphabets, padded or not,
// and at each of the three alignments it can take inside a longer
// encoding).
func (s *Secrets) Add(secrets ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = make(map[string]bool)
	}
	changed := false
	for _, sec := range secrets {
		if sec == "" || s.seen[sec] {
			continue
		}
		s.seen[sec] = true
		for _, f := range forms(sec) {
			if !slices.Contains(s.forms, f) {
				s.forms = append(s.forms, f)
				changed = true
			}
		}
	}
	if changed {
		// Longest first, so that a form containing another is removed whole.
		slices.SortStableFunc(s.forms, func(a, b string) int { return len(b) - len(a) })
	}
}

// With returns a new set holding s's secrets and extra, for what one
// request alone carries (a signature): adding those to s would grow it
// with every request, and every redaction with it.
func (s *Secrets) With(extra ...string) *Secrets {
	out := &Secrets{}
	if s != nil {
		s.mu.RLock()
		out.seen = make(map[string]bool, len(s.seen)+len(extra))
		for k := range s.seen {
			out.seen[k] = true
		}
		out.forms = slices.Clone(s.forms)
		s.mu.RUnlock()
	}
	out.Add(extra...)
	return out
}

// AddBasic adds password, user:password, and the base64 user:password of
// an HTTP basic Authorization header as a secret of its own (so that an
// echoed header is removed in every form too).
func (s *Secrets) AddBasic(user, password string) {
	if password == "" {
		return
	}
	s.Add(password, user+":"+password, base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
}

func forms(sec string) []string {
	out := []string{sec}
	add := func(f string) {
		if len(f) >= minFormLen && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	// JSON: encoding/json escapes <, > and & by default; some encoders
	// also escape "/".
	if b, err := json.Marshal(sec); err == nil {
		j := string(b[1 : len(b)-1])
		add(j)
		add(strings.ReplaceAll(j, "/", `\/`))
	}
	var plain strings.Builder
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	if enc.Encode(sec) == nil {
		j := strings.TrimSuffix(plain.String(), "\n")
		j = j[1 : len(j)-1]
		add(j)
		add(strings.ReplaceAll(j, "/", `\/`))
	}
	for _, u := range []string{url.QueryEscape(sec), url.PathEscape(sec), strings.ReplaceAll(url.QueryEscape(sec), "+", "%20")} {
		add(u)
		add(lowerHex(u))
	}
	for _, e := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		add(e.EncodeToString([]byte(sec)))
		for k := range 3 {
			// The characters that depend only on sec when it starts k
			// bytes into a 3-byte group of a longer encoding.
			b := append(make([]byte, k), sec...)
			full := e.EncodeToString(b)
			start := 0
			if k > 0 {
				start = 4
			}
			end := len(b) / 3 * 4
			if end > start {
				add(full[start:end])
			}
		}
	}
	return out
}

// lowerHex lowercases the hex digits of %XX escapes.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1] = lower(b[i+1])
			b[i+2] = lower(b[i+2])
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// Redact returns text with every form of every secret replaced by
// [REDACTED], each occurrence widened to whole UTF-8 characters.
func (s *Secrets) Redact(text string) string {
	if s == nil {
		return text
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, f := range s.forms {
		text = replace(text, f)
	}
	if strings.Contains(text, `"`) {
		for _, f := range s.forms {
			text = replaceCut(text, f)
		}
	}
	return text
}

// minCut is the shortest beginning of a secret that replaceCut removes.
const minCut = 8

// replaceCut removes a secret that an excerpt cut short: messages quote
// the first bytes of a body (`body starts "…"`), and a secret straddling
// the cut would leave its beginning, right before the closing quote.
//
// Only beginnings longer than half the secret, and past the user of a
// "user:password" form, are taken: a shorter one is mostly not the
// secret (a user name quoted alone is not one).
func replaceCut(text, secret string) string {
	least := max(minCut, len(secret)/2+1)
	if i := strings.IndexByte(secret, ':'); i >= 0 {
		least = max(least, i+2)
	}
	if least >= len(secret) || !strings.Contains(text, secret[:least]) {
		return text // no longer beginning can be there either
	}
	for k := len(secret) - 1; k >= least; k-- {
		if cut := secret[:k] + `"`; strings.Contains(text, cut) {
			text = strings.ReplaceAll(text, cut, Redacted+`"`)
		}
	}
	return text
}

func replace(text, secret string) string {
	if !strings.Contains(text, secret) {
		return text
	}
	var b strings.Builder
	for {
		i := strings.Index(text, secret)
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		start, end := i, i+len(secret)
		for start > 0 && !utf8.RuneStart(text[start]) {
			start--
		}
		for end < len(text) && !utf8.RuneStart(text[end]) {
			end++
		}
		b.WriteString(text[:start])
		b.WriteString(Redacted)
		text = text[end:]
	}
}

// Error returns err with its text redacted; errors.Is and errors.As still
// see the errors it wraps (so pipeline.IsPermanent keeps working). Nil
// stays nil.
func (s *Secrets) Error(err error) error {
	if err == nil || s == nil {
		return err
	}
	return &redactedError{msg: s.Redact(err.Error()), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
