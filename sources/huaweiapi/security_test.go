package huaweiapi

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress"
	"github.com/hwcaudit/hwcaudit/sinks/egress/egresstest"
)

// headerRecorder is a second server that records the credential headers
// of every request it receives.
type headerRecorder struct {
	mu   sync.Mutex
	seen []http.Header
}

func (h *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.seen = append(h.seen, r.Header.Clone())
	h.mu.Unlock()
	_, _ = w.Write([]byte(`{"total":0,"audit_logs":[]}`))
}

func (h *headerRecorder) requests() []http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen
}

// TestRedirectCarriesNoCredential: a 302 (or 307) from the configured
// endpoint to another server, another port or plain http is refused, so
// that neither X-Auth-Token (IAM-token mode) nor X-Security-Token and
// Authorization (temporary AK/SK) reach it; the refusal is permanent.
func TestRedirectCarriesNoCredential(t *testing.T) {
	modes := []struct {
		name string
		auth func(t *testing.T) Authorizer
	}{
		{"IAM token", func(*testing.T) Authorizer { return TokenAuth{Token: testToken} }},
		{"temporary AK/SK", func(t *testing.T) Authorizer { return newSigner(t, basicCred(testTempAK, testTempSK, testSecToken)) }},
	}
	rec := &headerRecorder{}
	other := httptest.NewServer(rec)
	defer other.Close()
	otherTLS := httptest.NewTLSServer(rec)
	defer otherTLS.Close()
	// Another host name for the same listener: "localhost" instead of
	// 127.0.0.1 is another origin.
	otherName := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)

	targets := []struct {
		name, to string
		status   int
		tls      bool
	}{
		{"302 to another port", other.URL, http.StatusFound, false},
		{"307 to another port", other.URL, http.StatusTemporaryRedirect, false},
		{"302 to another host name", otherName, http.StatusFound, false},
		{"302 from https to http", other.URL, http.StatusFound, true},
	}
	for _, m := range modes {
		for _, tt := range targets {
			t.Run(m.name+"/"+tt.name, func(t *testing.T) {
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, tt.to+r.URL.RequestURI(), tt.status)
				})
				var srv *httptest.Server
				if tt.tls {
					srv = httptest.NewTLSServer(h)
				} else {
					srv = httptest.NewServer(h)
				}
				defer srv.Close()
				before := len(rec.requests())
				c := NewClient(testConfig(), m.auth(t))
				if tt.tls {
					c.http.Transport = srv.Client().Transport
				}
				_, err := c.Do(context.Background(), auditLogs(srv.URL, nil))
				if err == nil || !errors.Is(err, egress.ErrRedirect) || !pipeline.IsPermanent(err) {
					t.Errorf("redirect gave %v, want a permanent redirect refusal", err)
				}
				for _, hd := range rec.requests()[before:] {
					for _, k := range []string{"X-Auth-Token", "X-Security-Token", "Authorization"} {
						if v := hd.Get(k); v != "" {
							t.Errorf("the other server received %s: %.20s…", k, v)
						}
					}
				}
				if n := len(rec.requests()) - before; n != 0 {
					t.Errorf("the other server received %d request(s)", n)
				}
			})
		}
	}
}

// TestRedirectOnTheSameOriginIsFollowed: a redirect that keeps scheme, host
// and port (an API moved to another path) still works.
func TestRedirectOnTheSameOriginIsFollowed(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/moved" {
			http.Redirect(w, r, srv.URL+"/moved", http.StatusFound)
			return
		}
		_, _ = w.Write([]byte(`{"total":0}`))
	}))
	defer srv.Close()
	if _, err := NewClient(testConfig(), TokenAuth{Token: testToken}).Do(context.Background(), auditLogs(srv.URL, nil)); err != nil {
		t.Fatal(err)
	}
}

// Secrets with '/' and '+', so that their JSON-escaped, URL-encoded and
// base64 forms differ from the raw value.
const (
	slashToken    = "MIIEslash/Token+x7Qk2Vn9/Lp4Zr8Tb1Wc-do-not-log"
	slashSK       = "slash/SK+Hc5Jm2Xq8/Rv4Nd7Yt0Uw-do-not-log"
	slashSecToken = "slash/SecTok+Bf6Kg3Ls9/Pe1Ma4Qh7-do-not-log"
	slashAK       = "AKSLASHTEST000000009"
)

// TestClientRedactsEveryForm: whatever a gateway or proxy echoes back of
// what the client sent or holds (the IAM token, the AK, the SK, the
// security token, the Authorization header and its signature), in raw,
// JSON-escaped (also "\/"), URL-encoded or base64 form, is removed from the
// error.
func TestClientRedactsEveryForm(t *testing.T) {
	type echo func(r *http.Request) []string // the secrets the server echoes
	modes := []struct {
		name    string
		auth    func(t *testing.T) Authorizer
		echoes  echo
		secrets func(r *http.Request) []string
	}{
		{"IAM token", func(*testing.T) Authorizer { return TokenAuth{Token: slashToken} },
			func(r *http.Request) []string { return []string{r.Header.Get("X-Auth-Token")} },
			func(*http.Request) []string { return []string{slashToken} }},
		{"temporary AK/SK", func(t *testing.T) Authorizer { return newSigner(t, basicCred(slashAK, slashSK, slashSecToken)) },
			func(r *http.Request) []string {
				a := r.Header.Get("Authorization")
				_, sig, _ := strings.Cut(a, "Signature=")
				return []string{a, sig, r.Header.Get("X-Security-Token"), slashSK, slashAK}
			},
			func(r *http.Request) []string {
				a := r.Header.Get("Authorization")
				_, sig, _ := strings.Cut(a, "Signature=")
				return []string{a, sig, slashSecToken, slashSK, slashAK}
			}},
	}
	bodies := []struct {
		name   string
		status int
		body   func(secret string) string
	}{
		{"400 JSON, escaped slashes, no error fields", 400, func(s string) string {
			return `{"detail":"` + egresstest.SecretForms(s)["json slashes"][1:len(egresstest.SecretForms(s)["json slashes"])-1] + `"}`
		}},
		{"400 error_msg raw", 400, func(s string) string { return `{"error_code":"APIG.0301","error_msg":"echo ` + s + `"}` }},
		{"403 HTML", 403, func(s string) string { return "<html>" + s + "</html>" }},
		{"400 URL-encoded", 400, func(s string) string { return "bad request: " + egresstest.SecretForms(s)["query escaped"] }},
		{"401 base64", 401, func(s string) string { return "who is " + base64.StdEncoding.EncodeToString([]byte(s)) }},
		{"502 base64 inside", 502, func(s string) string { return "x: " + egresstest.SecretForms(s)["base64 offset 1"] }},
	}
	for _, m := range modes {
		for _, b := range bodies {
			t.Run(m.name+"/"+b.name, func(t *testing.T) {
				var mu sync.Mutex
				var secrets []string
				base := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					secrets = append(secrets, m.secrets(r)...)
					mu.Unlock()
					var parts []string
					for _, s := range m.echoes(r) {
						parts = append(parts, b.body(s))
					}
					w.WriteHeader(b.status)
					_, _ = w.Write([]byte(strings.Join(parts, " | ")))
				})
				cfg := testConfig()
				_, err := NewClient(cfg, m.auth(t)).Do(context.Background(), auditLogs(base, nil))
				if err == nil {
					t.Fatal("no error")
				}
				msg := err.Error()
				mu.Lock()
				defer mu.Unlock()
				for _, s := range secrets {
					for form, v := range egresstest.SecretForms(s) {
						if len(v) >= 12 && strings.Contains(msg, v) {
							t.Errorf("error holds %s form of %.12s…: %s", form, s, msg)
						}
					}
				}
				if !strings.Contains(msg, egress.Redacted) {
					t.Errorf("nothing was redacted: %s", msg)
				}
			})
		}
	}
}

// TestClientSharesItsSecrets: the client adds what it sends to the
// configured Secrets, so that the rest of the program redacts the same
// values (a 200 page quoting a token is printed by a source's reader, not
// by the client).
func TestClientSharesItsSecrets(t *testing.T) {
	base := fakeServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"total":0}`)) })
	cfg := testConfig()
	cfg.Secrets = &egress.Secrets{}
	c := NewClient(cfg, newSigner(t, basicCred(slashAK, slashSK, slashSecToken)))
	if _, err := c.Do(context.Background(), auditLogs(base, nil)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{slashSK, slashSecToken, slashAK} {
		if got := cfg.Secrets.Redact("body starts <html>" + s); strings.Contains(got, s) {
			t.Errorf("the shared secrets do not redact %.10s…: %s", s, got)
		}
	}
}

// TestPathRefusesDotSegments: a path whose segment is "." or ".." (an id
// from configuration that escaped validation) is never signed nor sent.
func TestPathRefusesDotSegments(t *testing.T) {
	var hits int
	var mu sync.Mutex
	base := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		_, _ = w.Write([]byte(`{"total":0}`))
	})
	for _, p := range []string{
		"/v2/" + testProject + "/instances/../audit-logs",
		"/v2/../../v3/x/audit-logs",
		"/v2/" + testProject + "/instances/./audit-logs",
		"/v2/" + testProject + "/instances/a%2F..%2Fb/audit-logs",
		"/v2//instances/x/audit-logs",
	} {
		req := auditLogs(base, nil)
		req.Path = p
		_, err := NewClient(testConfig(), TokenAuth{Token: testToken}).Do(context.Background(), req)
		if err == nil || !pipeline.IsPermanent(err) {
			t.Errorf("path %q gave %v, want a permanent error", p, err)
		}
	}
	if hits != 0 {
		t.Errorf("%d request(s) were sent", hits)
	}
}

// TestSharedSecretsDoNotGrowPerRequest: each request's signature is
// redacted from that request's errors only. Added to the shared set, it
// grew the set by one secret per request: a backfill's thousands of
// requests made every redaction, and every further request, slower (the
// exporter's CPU per record doubled) and held them all in memory.
func TestSharedSecretsDoNotGrowPerRequest(t *testing.T) {
	var mu sync.Mutex
	var sigs []string
	base := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sigs = append(sigs, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = w.Write([]byte(`{"total":0}`))
	})
	cfg := testConfig()
	cfg.Secrets = &egress.Secrets{}
	c := NewClient(cfg, newSigner(t, basicCred(slashAK, slashSK, slashSecToken)))
	for range 20 {
		if _, err := c.Do(context.Background(), auditLogs(base, nil)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sigs) != 20 {
		t.Fatalf("%d requests reached the server", len(sigs))
	}
	// The AK stays a secret; a past request's whole Authorization value
	// is not kept (its AK part is still removed).
	if got := cfg.Secrets.Redact(sigs[0]); got == egress.Redacted || !strings.Contains(got, "Signature=") {
		t.Errorf("the shared set holds request 1's Authorization header: %q", got)
	}
}
