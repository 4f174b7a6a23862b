package huaweiapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth"
	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
)

// Credentials the test simulator accepts. The secret values are long and
// distinctive so that a leak into an error string cannot go unnoticed.
const (
	testProject  = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
	testInstance = "ins-client-test"
	testAK       = "AKCLIENTTEST000000001"
	testSK       = "client-test-SK-7c1f0e93-do-not-log"
	testTempAK   = "AKCLIENTTEMP000000002"
	testTempSK   = "client-test-temp-SK-5a0b2e77-do-not-log"
	testSecToken = "client-test-security-token-3d9f14c2-do-not-log"
	testToken    = "client-test-iam-token-b41e8a06-do-not-log"
	testExpired  = "client-test-expired-token-0c77e2d5-do-not-log"
	wrongSK      = "client-test-WRONG-SK-e6d20b5f-do-not-log"
	wrongToken   = "client-test-WRONG-token-91a3cc48-do-not-log"
)

// secrets are every secret value the tests use; none may appear in an error.
var secrets = []string{testSK, testTempSK, testSecToken, testToken, testExpired, wrongSK, wrongToken}

func simConfig() simulator.Config {
	return simulator.Config{
		ProjectID: testProject,
		Credentials: []simulator.Credential{
			{AK: testAK, SK: testSK},
			{AK: testTempAK, SK: testTempSK, SecurityToken: testSecToken},
		},
		Tokens: []simulator.Token{{Value: testToken}, {Value: testExpired, Expired: true}},
		Seed:   7,
		SWR: simulator.SWRConfig{
			Instances:           []string{testInstance},
			RecordsPerOperation: 30,
			Start:               time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
			Interval:            time.Second,
		},
	}
}

// startSim serves cfg on a loopback port for the duration of the test.
func startSim(t *testing.T, cfg simulator.Config) (*simulator.Server, string) {
	t.Helper()
	s := simulator.New(cfg)
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, base
}

func testConfig() Config {
	return Config{ProjectID: testProject, MaxRPS: 10_000, Timeout: 10 * time.Second, MaxBodyBytes: 16 << 20}
}

// auditLogs is a page request of the SWR audit-log API.
func auditLogs(base string, query url.Values) Request {
	if query == nil {
		query = url.Values{"operation": {"pull"}, "offset": {"0"}, "limit": {"10"}}
	}
	return Request{
		Method:   http.MethodGet,
		Endpoint: base,
		Path:     "/v2/" + testProject + "/instances/" + testInstance + "/audit-logs",
		Query:    query,
	}
}

// basicCred builds an SDK credential the way the exporter does.
func basicCred(ak, sk, secToken string) func() (auth.ICredential, error) {
	return func() (auth.ICredential, error) {
		b := auth.NewBasicCredentialsBuilder().WithAk(ak).WithSk(sk).WithProjectId(testProject)
		if secToken != "" {
			b = b.WithSecurityToken(secToken)
		}
		return b.SafeBuild()
	}
}

func newSigner(t *testing.T, resolve func() (auth.ICredential, error)) *SDKSigner {
	t.Helper()
	s, err := NewSDKSigner(resolve)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkPage fails unless body is an audit-log page of n records.
func checkPage(t *testing.T, body []byte, n int) {
	t.Helper()
	var p struct {
		AuditLogs []json.RawMessage `json:"audit_logs"`
		Total     *int64            `json:"total"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Total == nil {
		t.Fatalf("body is not an audit-log page (%v): %.200s", err, body)
	}
	if len(p.AuditLogs) != n {
		t.Fatalf("page has %d records, want %d", len(p.AuditLogs), n)
	}
}

// checkNoSecrets fails if err's message holds any secret of the tests.
func checkNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error message leaks secret %q: %v", s, err)
		}
	}
}

func TestClientAuthenticates(t *testing.T) {
	tests := []struct {
		name string
		auth func(t *testing.T) Authorizer
	}{
		{"AK/SK signed by the SDK", func(t *testing.T) Authorizer {
			return newSigner(t, basicCred(testAK, testSK, ""))
		}},
		{"temporary AK/SK with security token", func(t *testing.T) Authorizer {
			return newSigner(t, basicCred(testTempAK, testTempSK, testSecToken))
		}},
		{"IAM token", func(*testing.T) Authorizer { return TokenAuth{Token: testToken} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, base := startSim(t, simConfig())
			c := NewClient(testConfig(), tt.auth(t))
			body, err := c.Do(context.Background(), auditLogs(base, nil))
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			checkPage(t, body, 10)
			// Query values that need escaping must be signed as sent: the
			// simulator ignores the parameter but verifies the signature
			// over it.
			q := url.Values{"operation": {"create"}, "offset": {"20"}, "limit": {"20"}, "marker": {"a b+c/ä&=?"}}
			body, err = c.Do(context.Background(), auditLogs(base, q))
			if err != nil {
				t.Fatalf("Do with escaped query: %v", err)
			}
			checkPage(t, body, 10)
			if st := sim.Stats(); st.AuthFailures != 0 || st.Pages != 2 {
				t.Errorf("simulator saw %d auth failures and %d pages, want 0 and 2", st.AuthFailures, st.Pages)
			}
		})
	}
}

func TestClientConcurrentSigning(t *testing.T) {
	// The SDK credential is shared; run under -race this checks the lock.
	sim, base := startSim(t, simConfig())
	c := NewClient(testConfig(), newSigner(t, basicCred(testTempAK, testTempSK, testSecToken)))
	const n = 24
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := c.Do(context.Background(), auditLogs(base, nil))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if st := sim.Stats(); st.Pages != n {
		t.Errorf("simulator served %d pages, want %d", st.Pages, n)
	}
}

func TestClientRefusedCredentials(t *testing.T) {
	// A 401 is retried once, and only when resolving the credentials again
	// gives different ones: the same signature would only count another
	// failure against the AK, which the gateway locks after five.
	tests := []struct {
		name      string
		auth      func(t *testing.T, resolves *atomic.Int32) Authorizer
		code      string
		attempts  int64 // requests the simulator saw
		sigFailAK string
	}{
		{
			name: "wrong SK, unchanged on refresh: no second attempt",
			auth: func(t *testing.T, resolves *atomic.Int32) Authorizer {
				return newSigner(t, counted(resolves, basicCred(testAK, wrongSK, "")))
			},
			code: "APIG.0301", attempts: 1, sigFailAK: testAK,
		},
		{
			name: "wrong SK, rotated to another wrong SK: one refresh, then permanent",
			auth: func(t *testing.T, resolves *atomic.Int32) Authorizer {
				return newSigner(t, func() (auth.ICredential, error) {
					n := resolves.Add(1)
					return basicCred(testAK, fmt.Sprintf("%s-%d", wrongSK, n), "")()
				})
			},
			code: "APIG.0301", attempts: 2, sigFailAK: testAK,
		},
		{
			// The gateway's message quotes the canonical request, security
			// token header included: it must not reach the error string.
			name: "temporary AK with wrong SK",
			auth: func(t *testing.T, resolves *atomic.Int32) Authorizer {
				return newSigner(t, counted(resolves, basicCred(testTempAK, wrongSK, testSecToken)))
			},
			code: "APIG.0301", attempts: 1, sigFailAK: testTempAK,
		},
		{
			name: "temporary AK with wrong security token",
			auth: func(t *testing.T, resolves *atomic.Int32) Authorizer {
				return newSigner(t, counted(resolves, basicCred(testTempAK, testTempSK, wrongToken)))
			},
			code: "APIG.0301", attempts: 1, sigFailAK: testTempAK,
		},
		{
			name: "unknown IAM token",
			auth: func(*testing.T, *atomic.Int32) Authorizer { return TokenAuth{Token: wrongToken} },
			code: "APIG.0301", attempts: 1,
		},
		{
			name: "expired IAM token",
			auth: func(*testing.T, *atomic.Int32) Authorizer { return TokenAuth{Token: testExpired} },
			code: "APIG.0307", attempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, base := startSim(t, simConfig())
			var resolves atomic.Int32
			c := NewClient(testConfig(), tt.auth(t, &resolves))
			_, err := c.Do(context.Background(), auditLogs(base, nil))
			if err == nil {
				t.Fatal("Do succeeded with refused credentials")
			}
			if !pipeline.IsPermanent(err) {
				t.Errorf("error is retryable, want permanent: %v", err)
			}
			if !strings.Contains(err.Error(), tt.code) {
				t.Errorf("error does not mention %s: %v", tt.code, err)
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
				t.Errorf("error does not wrap a 401 *APIError: %#v", err)
			}
			checkNoSecrets(t, err)
			st := sim.Stats()
			if st.Requests != tt.attempts || st.AuthFailures != tt.attempts {
				t.Errorf("client made %d requests (%d refused), want %d: no loop on 401", st.Requests, st.AuthFailures, tt.attempts)
			}
			if tt.sigFailAK != "" {
				if got := st.SignatureFailures[tt.sigFailAK]; got != int(tt.attempts) {
					t.Errorf("simulator counted %d signature failures for %s, want %d", got, tt.sigFailAK, tt.attempts)
				}
				if got := resolves.Load(); got != 2 {
					t.Errorf("credentials resolved %d times, want 2 (signer, one refresh)", got)
				}
			}

			// The refusal is definitive: later calls, from any stream, fail
			// the same way without spending more of the AK's failures.
			for range 3 {
				_, err2 := c.Do(context.Background(), auditLogs(base, nil))
				if err2 == nil || !pipeline.IsPermanent(err2) {
					t.Fatalf("call after a definitive 401 gave %v, want a permanent error", err2)
				}
				checkNoSecrets(t, err2)
			}
			if got := sim.Stats().Requests; got != tt.attempts {
				t.Errorf("calls after a definitive 401 reached the server: %d requests in all, want %d", got, tt.attempts)
			}
		})
	}
}

func TestClientWrongSecretFromManyStreams(t *testing.T) {
	// Every stream starts at once. With a wrong SK the client must not send
	// a burst of failing signatures: the gateway locks the AK after five.
	sim, base := startSim(t, simConfig())
	c := NewClient(testConfig(), newSigner(t, basicCred(testAK, wrongSK, "")))
	const n = 12
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := c.Do(context.Background(), auditLogs(base, nil))
			if err == nil || !pipeline.IsPermanent(err) {
				t.Errorf("got %v, want a permanent error", err)
			}
			checkNoSecrets(t, err)
		})
	}
	wg.Wait()
	st := sim.Stats()
	if got := st.SignatureFailures[testAK]; got != 1 {
		t.Errorf("%d concurrent calls cost %d signature failures, want 1", n, got)
	}
	if len(st.LockedAKs) != 0 {
		t.Errorf("the gateway locked %v", st.LockedAKs)
	}
}

func TestClientTransientErrorBeforeAuthentication(t *testing.T) {
	// A 5xx on the very first call says nothing about the credentials: the
	// next call must go out and succeed.
	cfg := simConfig()
	cfg.Faults.ServerErrorEvery = 1
	sim, base := startSim(t, cfg)
	c := NewClient(testConfig(), newSigner(t, basicCred(testAK, testSK, "")))
	if _, err := c.Do(context.Background(), auditLogs(base, nil)); err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("injected 500 gave %v, want a retryable error", err)
	}
	sim.SetFaults(simulator.Faults{})
	if _, err := c.Do(context.Background(), auditLogs(base, nil)); err != nil {
		t.Fatalf("call after a 500: %v", err)
	}
}

func counted(n *atomic.Int32, resolve func() (auth.ICredential, error)) func() (auth.ICredential, error) {
	return func() (auth.ICredential, error) {
		n.Add(1)
		return resolve()
	}
}

func TestClientRefreshPicksUpRotatedCredentials(t *testing.T) {
	sim, base := startSim(t, simConfig())
	var resolves atomic.Int32
	signer := newSigner(t, func() (auth.ICredential, error) {
		if resolves.Add(1) == 1 {
			return basicCred(testAK, wrongSK, "")() // stale key, rotated since
		}
		return basicCred(testAK, testSK, "")()
	})
	c := NewClient(testConfig(), signer)
	body, err := c.Do(context.Background(), auditLogs(base, nil))
	if err != nil {
		t.Fatalf("Do after rotation: %v", err)
	}
	checkPage(t, body, 10)
	if st := sim.Stats(); st.SignatureFailures[testAK] != 1 || st.Pages != 1 {
		t.Errorf("simulator: %d signature failures, %d pages; want 1 and 1", st.SignatureFailures[testAK], st.Pages)
	}
}

func TestClientClassifiesAPIErrors(t *testing.T) {
	okQuery := url.Values{"operation": {"pull"}, "offset": {"0"}, "limit": {"10"}}
	tests := []struct {
		name       string
		faults     simulator.Faults
		req        func(base string) Request
		permanent  bool
		status     int
		code       string
		retryAfter time.Duration // wanted from pipeline.RetryAfter; 0: none
	}{
		{
			name:   "429 with Retry-After",
			faults: simulator.Faults{ThrottleEvery: 1, RetryAfter: 3 * time.Second},
			status: 429, code: "APIG.0308", retryAfter: 3 * time.Second,
		},
		{
			name:   "429 without Retry-After",
			faults: simulator.Faults{ThrottleEvery: 1},
			status: 429, code: "APIG.0308",
		},
		{
			name:   "500 from the service",
			faults: simulator.Faults{ServerErrorEvery: 1},
			status: 500, code: "SVCSTG.SWR.5000008",
		},
		{
			name:   "502 from the gateway",
			faults: simulator.Faults{ServerErrorEvery: 1, ServerErrorStatus: 502},
			status: 502, code: "APIG.0201",
		},
		{
			name:   "503 from the gateway",
			faults: simulator.Faults{ServerErrorEvery: 1, ServerErrorStatus: 503},
			status: 503, code: "APIG.0201",
		},
		{
			name:   "504 from the gateway",
			faults: simulator.Faults{ServerErrorEvery: 1, ServerErrorStatus: 504},
			status: 504, code: "APIG.0201",
		},
		{
			name: "400 offset not a multiple of limit",
			req: func(base string) Request {
				return auditLogs(base, url.Values{"operation": {"pull"}, "offset": {"5"}, "limit": {"10"}})
			},
			permanent: true, status: 400, code: "SVCSTG.SWR.4000014",
		},
		{
			name: "400 limit above 100",
			req: func(base string) Request {
				return auditLogs(base, url.Values{"operation": {"pull"}, "limit": {"101"}})
			},
			permanent: true, status: 400, code: "SVCSTG.SWR.4000014",
		},
		{
			name: "403 other project",
			req: func(base string) Request {
				r := auditLogs(base, okQuery)
				r.Path = "/v2/00000000000000000000000000000000/instances/" + testInstance + "/audit-logs"
				return r
			},
			permanent: true, status: 403, code: "SVCSTG.SWR.4030170",
		},
		{
			name: "404 unknown instance",
			req: func(base string) Request {
				r := auditLogs(base, okQuery)
				r.Path = "/v2/" + testProject + "/instances/no-such-instance/audit-logs"
				return r
			},
			permanent: true, status: 404,
		},
		{
			name: "404 unknown API",
			req: func(base string) Request {
				r := auditLogs(base, okQuery)
				r.Path = "/v2/" + testProject + "/no-such-api"
				return r
			},
			permanent: true, status: 404, code: "APIG.0101",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := simConfig()
			cfg.Faults = tt.faults
			_, base := startSim(t, cfg)
			c := NewClient(testConfig(), newSigner(t, basicCred(testAK, testSK, "")))
			req := auditLogs(base, okQuery)
			if tt.req != nil {
				req = tt.req(base)
			}
			_, err := c.Do(context.Background(), req)
			if err == nil {
				t.Fatal("Do succeeded")
			}
			if got := pipeline.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v: %v", got, tt.permanent, err)
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error does not wrap *APIError: %v", err)
			}
			if apiErr.Status != tt.status || apiErr.Code != tt.code && tt.code != "" {
				t.Errorf("got status %d code %q, want %d %q", apiErr.Status, apiErr.Code, tt.status, tt.code)
			}
			if tt.code != "" && !strings.Contains(err.Error(), tt.code) {
				t.Errorf("error message does not name %s: %v", tt.code, err)
			}
			if apiErr.RequestID == "" {
				t.Errorf("error lost the gateway's X-Request-Id: %v", err)
			}
			ra, ok := pipeline.RetryAfter(err)
			if tt.retryAfter > 0 && (!ok || ra != tt.retryAfter) {
				t.Errorf("RetryAfter = %v, %v; want %v, true", ra, ok, tt.retryAfter)
			}
			if tt.retryAfter == 0 && ok {
				t.Errorf("RetryAfter = %v, true; want none when the answer named no wait", ra)
			}
		})
	}
}

// fakeServer answers every request with h.
func fakeServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestClientRetryAfterDate(t *testing.T) {
	when := time.Now().Add(time.Hour).UTC()
	base := fakeServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", when.Format(http.TimeFormat))
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	_, err := NewClient(testConfig(), TokenAuth{Token: testToken}).Do(context.Background(), auditLogs(base, nil))
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("503 gave %v, want a retryable error", err)
	}
	// An HTTP date counts from now; allow for the date's whole seconds.
	if ra, ok := pipeline.RetryAfter(err); !ok || ra <= 50*time.Minute || ra > time.Hour {
		t.Errorf("RetryAfter = %v, %v; want about an hour", ra, ok)
	}
}

func TestClientBodyLimit(t *testing.T) {
	const limit = 1024
	page := func(size int) []byte {
		// A valid JSON document of exactly size bytes.
		pad := size - len(`{"audit_logs":[],"total":0,"pad":""}`)
		return []byte(`{"audit_logs":[],"total":0,"pad":"` + strings.Repeat("x", pad) + `"}`)
	}
	tests := []struct {
		name      string
		status    int
		body      []byte
		wantErr   bool
		permanent bool
		mention   string
	}{
		{name: "exactly the limit", status: 200, body: page(limit)},
		{name: "one byte over", status: 200, body: page(limit + 1), wantErr: true, permanent: true, mention: "HWCAUDIT_HTTP_MAX_BODY_BYTES"},
		{name: "far over", status: 200, body: page(64 * limit), wantErr: true, permanent: true, mention: "HWCAUDIT_HTTP_MAX_BODY_BYTES"},
		{
			// A proxy's error page may be larger than a small cap; the status
			// still decides, or one 502 page would end the stream for good.
			name: "large 502 page stays retryable", status: 502,
			body:    []byte("<html><body>" + strings.Repeat("Bad Gateway ", 400) + "</body></html>"),
			wantErr: true, mention: "HTTP 502",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := fakeServer(t, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write(tt.body)
			})
			cfg := testConfig()
			cfg.MaxBodyBytes = limit
			body, err := NewClient(cfg, TokenAuth{Token: testToken}).Do(context.Background(), auditLogs(base, nil))
			if !tt.wantErr {
				if err != nil || len(body) != len(tt.body) {
					t.Fatalf("got %d bytes, %v; want %d bytes", len(body), err, len(tt.body))
				}
				return
			}
			if err == nil {
				t.Fatalf("got %d bytes, want an error", len(body))
			}
			if pipeline.IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v: %v", !tt.permanent, tt.permanent, err)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error does not mention %s: %v", tt.mention, err)
			}
			if len(err.Error()) > 1000 {
				t.Errorf("error message is %d bytes long; the body should be truncated", len(err.Error()))
			}
		})
	}
}

func TestClientTransportErrorsAreRetryable(t *testing.T) {
	t.Run("connection dropped", func(t *testing.T) {
		base := fakeServer(t, func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		})
		_, err := NewClient(testConfig(), TokenAuth{Token: testToken}).Do(context.Background(), auditLogs(base, nil))
		if err == nil || pipeline.IsPermanent(err) {
			t.Fatalf("dropped connection gave %v, want a retryable error", err)
		}
		checkNoSecrets(t, err)
	})
	t.Run("request timeout", func(t *testing.T) {
		cfg := simConfig()
		cfg.Faults.Latency = time.Minute // the simulator gives up when the client does
		_, base := startSim(t, cfg)
		ccfg := testConfig()
		ccfg.Timeout = 50 * time.Millisecond
		_, err := NewClient(ccfg, TokenAuth{Token: testToken}).Do(context.Background(), auditLogs(base, nil))
		if err == nil || pipeline.IsPermanent(err) {
			t.Fatalf("timeout gave %v, want a retryable error", err)
		}
	})
	t.Run("bad endpoint is permanent", func(t *testing.T) {
		_, err := NewClient(testConfig(), TokenAuth{Token: testToken}).Do(context.Background(), auditLogs("not a url", nil))
		if err == nil || !pipeline.IsPermanent(err) {
			t.Fatalf("bad endpoint gave %v, want a permanent error", err)
		}
	})
}

func TestClientRateLimit(t *testing.T) {
	// Timing is not asserted. At 0.001 requests per second the bucket holds
	// one token and the next arrives 1000s later, so within a deadline of a
	// minute exactly one request may pass and rate.Limiter refuses the rest
	// at once, without consuming tokens. The count the simulator saw shows
	// that every request of the client, from any goroutine, goes through
	// one limiter per host.
	sim, base := startSim(t, simConfig())
	cfg := testConfig()
	cfg.MaxRPS = 0.001
	c := NewClient(cfg, TokenAuth{Token: testToken})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const n = 8
	var wg sync.WaitGroup
	var ok, limited atomic.Int32
	for range n {
		wg.Go(func() {
			_, err := c.Do(ctx, auditLogs(base, nil))
			switch {
			case err == nil:
				ok.Add(1)
			case pipeline.IsPermanent(err):
				t.Errorf("rate-limited request failed permanently: %v", err)
			default:
				limited.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || limited.Load() != n-1 {
		t.Errorf("%d requests passed and %d were held back, want 1 and %d", ok.Load(), limited.Load(), n-1)
	}
	if st := sim.Stats(); st.Requests != 1 {
		t.Errorf("simulator received %d requests, want 1", st.Requests)
	}

	// Another endpoint has its own bucket.
	_, other := startSim(t, simConfig())
	if _, err := c.Do(ctx, auditLogs(other, nil)); err != nil {
		t.Errorf("first request to another host: %v", err)
	}
	if _, err := c.Do(ctx, auditLogs(other, nil)); err == nil {
		t.Error("second request to the other host was not held back")
	}

	// The bucket lets a burst of MaxRPS requests through (at least one).
	for _, tt := range []struct {
		rps   float64
		burst int
	}{{0.5, 1}, {1, 1}, {2.5, 2}, {10, 10}} {
		l := NewClient(Config{MaxRPS: tt.rps, Timeout: time.Second, MaxBodyBytes: 1024}, TokenAuth{}).limiter("h")
		if float64(l.Limit()) != tt.rps || l.Burst() != tt.burst {
			t.Errorf("MaxRPS %v: limiter %v/s burst %d, want %v/s burst %d", tt.rps, l.Limit(), l.Burst(), tt.rps, tt.burst)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	valid := Config{MaxRPS: 10, Timeout: 30 * time.Second, MaxBodyBytes: 16 << 20, Credentials: []string{"env", "pod-identity"}}
	tests := []struct {
		name   string
		change func(*Config)
		want   string // variable named in the error; "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"smallest body cap", func(c *Config) { c.MaxBodyBytes = 1024 }, ""},
		{"fractional rate", func(c *Config) { c.MaxRPS = 0.2 }, ""},
		{"zero rate", func(c *Config) { c.MaxRPS = 0 }, "HWCAUDIT_MAX_RPS"},
		{"negative rate", func(c *Config) { c.MaxRPS = -1 }, "HWCAUDIT_MAX_RPS"},
		{"NaN rate", func(c *Config) { c.MaxRPS = math.NaN() }, "HWCAUDIT_MAX_RPS"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "HWCAUDIT_HTTP_TIMEOUT"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "HWCAUDIT_HTTP_TIMEOUT"},
		{"zero body cap", func(c *Config) { c.MaxBodyBytes = 0 }, "HWCAUDIT_HTTP_MAX_BODY_BYTES"},
		{"body cap below 1 KiB", func(c *Config) { c.MaxBodyBytes = 1023 }, "HWCAUDIT_HTTP_MAX_BODY_BYTES"},
		{"negative body cap", func(c *Config) { c.MaxBodyBytes = -1 }, "HWCAUDIT_HTTP_MAX_BODY_BYTES"},
		{"no credential provider", func(c *Config) { c.Credentials = nil }, "HWCAUDIT_CREDENTIALS"},
		{"unknown credential provider", func(c *Config) { c.Credentials = []string{"env", "vault"} }, "HWCAUDIT_CREDENTIALS"},
		{"credential provider twice", func(c *Config) { c.Credentials = []string{"env", "env"} }, "HWCAUDIT_CREDENTIALS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && err == nil:
				t.Errorf("Validate() = nil, want an error naming %s", tt.want)
			case tt.want != "" && !strings.HasPrefix(err.Error(), tt.want+":"):
				t.Errorf("Validate() = %q, want it to start with %s", err, tt.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	// The defaults documented on the fields are the ones the tags give.
	var c Config
	err := envconfig.ProcessWith(context.Background(), &envconfig.Config{Target: &c, Lookuper: envconfig.MapLookuper(nil)})
	if err != nil {
		t.Fatal(err)
	}
	// go-envconfig allocates the untagged Secrets pointer; an empty set.
	want := Config{MaxRPS: 10, Timeout: 30 * time.Second, MaxBodyBytes: 16 << 20,
		Credentials: []string{"env", "profile", "metadata", "pod-identity"}, Secrets: &egress.Secrets{}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestAuthorizersDoNotPrintSecrets(t *testing.T) {
	signer := newSigner(t, basicCred(testTempAK, testTempSK, testSecToken))
	for _, a := range []any{signer, TokenAuth{Token: testToken}, &TokenAuth{Token: testToken}} {
		for _, s := range []string{testTempSK, testSecToken, testToken} {
			for _, verb := range []string{"%v", "%s", "%+v"} {
				if strings.Contains(fmt.Sprintf(verb, a), s) {
					t.Errorf("%T formatted with %s shows a secret", a, verb)
				}
			}
		}
	}
}

func TestClientRedactsEchoedCredentials(t *testing.T) {
	// Some gateways and proxies quote request headers back in their error
	// bodies, as JSON or as plain text; neither may carry a secret onward.
	tests := []struct {
		name string
		body func(token string) string
	}{
		{"JSON error_msg", func(tok string) string {
			return `{"error_code":"APIG.0301","error_msg":"bad token ` + tok + `"}`
		}},
		{"plain text", func(tok string) string { return "denied: X-Auth-Token=" + tok }},
		{"plain text cut at the secret", func(tok string) string { return strings.Repeat(".", 190) + tok }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(tt.body(r.Header.Get("X-Auth-Token"))))
			})
			_, err := NewClient(testConfig(), TokenAuth{Token: testToken}).Do(context.Background(), auditLogs(base, nil))
			if err == nil || !pipeline.IsPermanent(err) {
				t.Fatalf("401 gave %v, want a permanent error", err)
			}
			checkNoSecrets(t, err)
			if strings.Contains(err.Error(), testToken[:12]) {
				t.Errorf("error message holds a prefix of the token: %v", err)
			}
		})
	}
}

// TestClientOnResponse checks that the hook sees every attempt on the wire:
// the answer's status each time, the retry after a 401 that refreshed the
// credentials, and 0 for an attempt that got no answer, but not an attempt
// the caller abandoned.
func TestClientOnResponse(t *testing.T) {
	statuses := []int{http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusOK, http.StatusNotFound}
	var n atomic.Int32
	base := fakeServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(statuses[int(n.Add(1)-1)%len(statuses)])
		_, _ = w.Write([]byte(`{}`))
	})
	type call struct {
		endpoint string
		status   int
	}
	var mu sync.Mutex
	var got []call
	cfg := testConfig()
	cfg.OnResponse = func(endpoint string, status int) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, call{endpoint, status})
	}
	c := NewClient(cfg, TokenAuth{Token: testToken})
	for range statuses {
		_, _ = c.Do(context.Background(), auditLogs(base, nil))
	}
	dead := "http://" + closedAddr(t)
	_, _ = c.Do(context.Background(), auditLogs(dead, nil))

	// A 401 is sent again once after a refresh that changed something.
	unauthorized := fakeServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	})
	refreshing := NewClient(cfg, &refreshOnce{})
	_, _ = refreshing.Do(context.Background(), auditLogs(unauthorized, nil))

	// A request the caller abandons is not reported; one the client's own
	// timeout ends is, as no answer.
	slow := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, _ = c.Do(ctx, auditLogs(slow, nil))
	cancel()
	short := cfg
	short.Timeout = 50 * time.Millisecond
	_, _ = NewClient(short, TokenAuth{Token: testToken}).Do(context.Background(), auditLogs(slow, nil))

	want := []call{{base, 429}, {base, 503}, {base, 200}, {base, 404}, {dead, 0}, {unauthorized, 401}, {unauthorized, 401}, {slow, 0}}
	if !slices.Equal(got, want) {
		t.Errorf("OnResponse calls:\n got %v\nwant %v", got, want)
	}
}

// refreshOnce is an Authorizer whose first Refresh finds new credentials.
type refreshOnce struct{ refreshed bool }

func (a *refreshOnce) Authorize(req *http.Request, _ []byte) error {
	req.Header.Set("X-Auth-Token", "t")
	return nil
}

func (a *refreshOnce) Refresh() bool {
	if a.refreshed {
		return false
	}
	a.refreshed = true
	return true
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
