package essink

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress/egresstest"
)

// plainConfig is testConfig for a bare test server.
func plainConfig(url string) Config {
	return Config{
		URLs: []string{url}, Target: "logs-{dataset}-{namespace}", Namespace: "default",
		BulkMaxBytes: 5 << 20, BulkMaxDocs: 1000, ItemRetries: 0, RetryBackoff: time.Millisecond, Timeout: 30 * time.Second,
	}
}

// TestRedirectsStayOnEndpoint: an Elasticsearch (or a proxy before it)
// that redirects to another server gets an error; the other server
// receives nothing, least of all the credentials.
func TestRedirectsStayOnEndpoint(t *testing.T) {
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		for _, auth := range []string{"apikey", "basic"} {
			t.Run(fmt.Sprint(code, auth), func(t *testing.T) {
				var mu sync.Mutex
				var got []http.Header
				other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					got = append(got, r.Header.Clone())
					mu.Unlock()
					w.Header().Set("Content-Type", "application/json")
					w.Header().Set("X-Elastic-Product", "Elasticsearch")
					fmt.Fprint(w, `{"errors":false,"items":[{"create":{"status":201}}]}`)
				}))
				defer other.Close()
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Elastic-Product", "Elasticsearch")
					http.Redirect(w, r, other.URL+r.URL.RequestURI(), code)
				}))
				defer srv.Close()
				cfg := plainConfig(srv.URL)
				if auth == "apikey" {
					cfg.APIKey = "aWQ6c2VjcmV0LWFwaS1rZXk="
				} else {
					cfg.Username, cfg.Password = "writer", "hunter2-pass"
				}
				err := newSink(t, cfg).Write(t.Context(), batchOf("a"))
				if err == nil {
					t.Error("Write through a redirect to another server succeeded")
				}
				mu.Lock()
				defer mu.Unlock()
				if len(got) > 0 {
					t.Errorf("the other server received %d request(s), first with headers %v", len(got), got[0])
				}
			})
		}
	}
}

// TestErrorsHoldNoSecret: an Elasticsearch echoing the credentials in a
// 401 body, in every form, never gets them into the sink's error.
func TestErrorsHoldNoSecret(t *testing.T) {
	const apiKey = "aWQtMTIzOnNlY3JldC1hcGkta2V5LXZhbHVl" // id-123:secret-api-key-value
	const user, pass = "writer", "hunter2/pass+word"
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	cases := map[string]struct {
		cfg     func(*Config)
		secrets []string
	}{
		"api key": {func(c *Config) { c.APIKey = apiKey }, []string{apiKey, "secret-api-key-value"}},
		"basic":   {func(c *Config) { c.Username, c.Password = user, pass }, []string{pass, basic}},
	}
	for name, tc := range cases {
		for _, secret := range tc.secrets {
			for form, echo := range egresstest.SecretForms(secret) {
				for _, status := range []int{http.StatusUnauthorized, http.StatusBadRequest, http.StatusInternalServerError} {
					t.Run(fmt.Sprintf("%s/%.8s/%s/%d", name, secret, form, status), func(t *testing.T) {
						srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
							io.Copy(io.Discard, r.Body)
							w.Header().Set("Content-Type", "application/json")
							w.Header().Set("X-Elastic-Product", "Elasticsearch")
							w.WriteHeader(status)
							fmt.Fprintf(w, `{"error":{"type":"security_exception","reason":"unable to authenticate with %s (header %s)"},"status":%d}`,
								echo, r.Header.Get("Authorization"), status)
						}))
						defer srv.Close()
						cfg := plainConfig(srv.URL)
						tc.cfg(&cfg)
						err := newSink(t, cfg).Write(t.Context(), batchOf("a"))
						if err == nil {
							t.Fatal("Write succeeded")
						}
						for _, s := range append(tc.secrets, echo) {
							if strings.Contains(err.Error(), s) {
								t.Errorf("error shows %q: %v", s, err)
							}
						}
					})
				}
			}
		}
	}
}

// TestItemReasonsHoldNoSecret: item errors become dead-letter reasons;
// they are redacted too.
func TestItemReasonsHoldNoSecret(t *testing.T) {
	const apiKey = "aWQtMTIzOnNlY3JldC1hcGkta2V5LXZhbHVl"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		fmt.Fprintf(w, `{"errors":true,"items":[{"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"bad %s"}}}]}`, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	cfg := plainConfig(srv.URL)
	cfg.APIKey = apiKey
	err := newSink(t, cfg).Write(t.Context(), batchOf("a"))
	rej, ok := err.(*pipeline.RejectedError)
	if !ok {
		t.Fatalf("Write = %v, want a *RejectedError", err)
	}
	if r := rej.Reasons[0]; strings.Contains(r, apiKey) || !strings.Contains(r, "mapper_parsing_exception") {
		t.Errorf("reason %q", r)
	}
}

// TestTimeoutBoundsTricklingCluster: a cluster that sends headers and then
// one byte a second cannot hold a Write past HWCAUDIT_ELASTICSEARCH_TIMEOUT.
func TestTimeoutBoundsTricklingCluster(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"errors":false,"items":[`))
		w.(http.Flusher).Flush()
		for range 120 {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			w.Write([]byte(" "))
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	defer close(stop)
	cfg := plainConfig(srv.URL)
	cfg.Timeout = time.Second
	s := newSink(t, cfg)
	done := make(chan error, 1)
	go func() { done <- s.Write(t.Context(), batchOf("a")) }()
	select {
	case err := <-done:
		if err == nil || pipeline.IsPermanent(err) {
			t.Errorf("Write = %v, want a retryable error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Write still running after 20s with HWCAUDIT_ELASTICSEARCH_TIMEOUT=1s")
	}
}

// TestResponseReadIsBounded: an endless bulk response is cut, not read
// into memory until the process dies.
func TestResponseReadIsBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Write([]byte(`{"errors":false,"took":1,"items":[{"create":{"status":201,"error":{"type":"x","reason":"`))
		chunk := []byte(strings.Repeat("x", 1<<20))
		for range 256 { // 256 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	err := newSink(t, plainConfig(srv.URL)).Write(t.Context(), batchOf("a"))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Write = %v, want an error about the response size", err)
	}
}

// TestCertificateErrorIsPermanent: a cluster whose certificate does not
// verify is a permanent error naming the node and the fix.
func TestCertificateErrorIsPermanent(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	err := newSink(t, plainConfig(srv.URL)).Write(t.Context(), batchOf("a"))
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), "HWCAUDIT_ELASTICSEARCH_CA_FILE") {
		t.Errorf("Write = %v, want a permanent error naming %s and HWCAUDIT_ELASTICSEARCH_CA_FILE", err, srv.URL)
	}
}

// TestPlainHTTPNeedsOptIn: http:// is accepted on loopback only, unless
// HWCAUDIT_ELASTICSEARCH_ALLOW_INSECURE; there is no default URL.
func TestPlainHTTPNeedsOptIn(t *testing.T) {
	c := plainConfig("http://es.internal:9200")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "HWCAUDIT_ELASTICSEARCH_ALLOW_INSECURE") {
		t.Errorf("Validate(http://es.internal:9200) = %v, want a refusal naming the opt-in", err)
	}
	c.AllowInsecure = true
	if err := c.Validate(); err != nil {
		t.Errorf("with the opt-in: %v", err)
	}
	c = plainConfig("http://u:pw-secret@10.1.2.3:9200")
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "pw-secret") {
		t.Errorf("Validate = %v, want a refusal without the password", err)
	}
	for _, u := range []string{"http://127.0.0.1:9200", "http://localhost:9200", "https://es.internal:9200"} {
		if err := plainConfig(u).Validate(); err != nil {
			t.Errorf("Validate(%s) = %v", u, err)
		}
	}
	c = plainConfig("https://es:9200")
	c.TLSInsecureSkipVerify = true
	if got := c.InsecureSettings(); len(got) != 1 || !strings.Contains(got[0], "HWCAUDIT_ELASTICSEARCH_TLS_INSECURE_SKIP_VERIFY") {
		t.Errorf("InsecureSettings = %q", got)
	}
}
