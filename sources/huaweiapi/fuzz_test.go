package huaweiapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress"
)

// FuzzClassify feeds error answers: any status outside 2xx, any body, any
// Retry-After, and a credential the request carried. The error must keep
// the status, be retryable exactly for 429 and 5xx, never carry the
// credential (the gateway quotes requests back), stay valid UTF-8 when the
// body is, and keep a raw body short.
func FuzzClassify(f *testing.F) {
	f.Add(401, []byte(`{"error_code":"APIG.0301","error_msg":"Incorrect IAM authentication information: verify aksk signature fail, canonicalRequest:GET|/v2/|x-security-token:tok-0123456789abcdef|"}`), "", "tok-0123456789abcdef")
	f.Add(429, []byte(`{"error_code":"APIG.0308","error_msg":"The request is throttled."}`), "3", "")
	f.Add(503, []byte(`<html><body>503 Service Unavailable</body></html>`), "Wed, 21 Oct 2015 07:28:00 GMT", "")
	f.Add(500, []byte(`{"errorCode":"SVCSTG.SWR.5000008","errorMessage":"internal"}`), "-1", "")
	f.Add(400, []byte(`{"error_code":"SWR.0001","error_msg":"offset must be a multiple of limit"}`), "", "")
	f.Add(404, []byte(strings.Repeat("é", 150)+"secret-token-value"), "", "secret-token-value")
	f.Add(502, []byte("a"+strings.Repeat("é", 150)), "", "") // cut inside a rune
	f.Add(429, []byte(``), "99999999999999999", "")
	f.Add(302, []byte(`null`), " 7 ", "")
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfterHeader, secret string) {
		status = 300 + (status%300+300)%300 // 300..599: what reaches classify
		resp := &http.Response{StatusCode: status, Header: http.Header{}}
		if retryAfterHeader != "" {
			resp.Header.Set("Retry-After", retryAfterHeader)
		}
		var secrets []string
		// A credential sharing bytes with the placeholder could be rebuilt
		// from it; real tokens are long base64url-like strings.
		checkSecret := len(secret) >= 4 && !strings.ContainsAny(secret, "[REDACTED]…")
		if checkSecret {
			secrets = []string{secret}
		}
		err := classify(resp, body, egress.NewSecrets(secrets...))
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != status {
			t.Fatalf("classify(%d) = %v, not an APIError with the status", status, err)
		}
		if retryable := status == 429 || status >= 500; pipeline.IsPermanent(err) == retryable {
			t.Errorf("classify(%d): permanent %v", status, pipeline.IsPermanent(err))
		}
		if ra, ok := pipeline.RetryAfter(err); ok && ra <= 0 {
			t.Errorf("classify(%d, Retry-After %q): wait %v", status, retryAfterHeader, ra)
		}
		msg := err.Error()
		// The parts taken from the answer; the fixed text around them
		// ("HTTP 401: ") could spell a short fuzzed credential by itself.
		if checkSecret && (strings.Contains(apiErr.Code, secret) || strings.Contains(apiErr.Message, secret)) {
			t.Errorf("the error quotes the request's credential %q: %s", secret, msg)
		}
		if utf8.Valid(body) && !utf8.ValidString(msg) {
			t.Errorf("a valid UTF-8 body gave an invalid UTF-8 error: %q", msg)
		}
		if apiErr.Code == "" && len(body) > 0 && len(apiErr.Message) > 200+len("…") {
			t.Errorf("a raw body was kept at %d bytes", len(apiErr.Message))
		}
		// The wait of an HTTP-date Retry-After depends on the clock; the
		// error itself must not.
		var againErr *APIError
		if errors.As(classify(resp, body, egress.NewSecrets(secrets...)), &againErr) && againErr.Error() != apiErr.Error() {
			t.Errorf("classify is not deterministic: %q, then %q", apiErr.Error(), againErr.Error())
		}
	})
}

// FuzzRetryAfter feeds Retry-After headers: the wait is never negative,
// and delay-seconds mean exactly that many seconds (however many: a
// number too large for a Duration waits as long as one can).
func FuzzRetryAfter(f *testing.F) {
	for _, v := range []string{"0", "3", " 120 ", "-1", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", "Sun, 06 Nov 2994 08:49:37 GMT",
		"9223372036", "9223372037", "18446744074", "99999999999999999999", ""} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := retryAfter(v)
		if d < 0 {
			t.Fatalf("retryAfter(%q) = %v", v, d)
		}
		if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && s >= 0 {
			want := time.Duration(1<<63 - 1)
			if s <= int64(want/time.Second) {
				want = time.Duration(s) * time.Second
			}
			if d != want {
				t.Errorf("retryAfter(%q) = %v, want %v", v, d, want)
			}
		}
	})
}
