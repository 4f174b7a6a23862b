package simulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/signer/algorithm"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/config"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/impl"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/request"
)

func TestTokenAuth(t *testing.T) {
	s := New(testConfig())
	tests := []struct {
		name   string
		token  string
		status int
		code   string
		msg    string
	}{
		{"valid", testToken, 200, "", ""},
		{"expired", testExpired, 401, codeTokenExpired, "The token must be updated."},
		{"unknown", "forged", 401, codeIAMAuth, "Incorrect IAM authentication information: decrypt token fail"},
		{"missing", "", 401, codeIAMAuth, "Incorrect IAM authentication information: x-auth-token not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, auditPath(testProject, testInstance)+"?operation=pull", nil)
			if tt.token != "" {
				r.Header.Set("X-Auth-Token", tt.token)
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.code == "" {
				return
			}
			e := decodeError(t, w.Body.Bytes())
			if e.ErrorCode != tt.code || e.ErrorMsg != tt.msg || e.RequestID != w.Header().Get(headerRequestID) || e.RequestID == "" {
				t.Errorf("error %+v (X-Request-Id %q), want %s %q", e, w.Header().Get(headerRequestID), tt.code, tt.msg)
			}
		})
	}
}

var sdkHTTPClient = sync.OnceValue(func() *impl.DefaultHttpClient {
	return impl.NewDefaultHttpClient(config.DefaultHttpConfig())
})

// sdkRequest builds a GET signed by the official SDK, the way an SDK service
// client does: X-Project-Id and X-Security-Token come from the credential,
// X-Sdk-Date and Authorization from the SDK's signer.
func sdkRequest(t testing.TB, base, path string, query, headers map[string]string, cred *auth.BasicCredentials) *http.Request {
	t.Helper()
	// SDK service clients set the algorithm from their HttpConfig; a bare
	// builder has none and the SDK then refuses to sign.
	b := request.NewHttpRequestBuilder().WithEndpoint(base).WithPath(path).WithMethod(http.MethodGet).
		WithSigningAlgorithm(algorithm.GetDefaultSigningAlgorithm())
	for k, v := range query {
		b.AddQueryParam(k, reflect.ValueOf(v))
	}
	for k, v := range headers {
		b.AddHeaderParam(k, v)
	}
	req, err := cred.ProcessAuthRequest(sdkHTTPClient(), b.Build())
	if err != nil {
		t.Fatal(err)
	}
	hr, err := req.ConvertRequest()
	if err != nil {
		t.Fatal(err)
	}
	return hr
}

func credential(ak, sk, project, secToken string) *auth.BasicCredentials {
	b := auth.NewBasicCredentialsBuilder().WithAk(ak).WithSk(sk)
	if project != "" {
		b = b.WithProjectId(project)
	}
	if secToken != "" {
		b = b.WithSecurityToken(secToken)
	}
	c, err := b.SafeBuild()
	if err != nil {
		panic(err)
	}
	return c
}

// send performs r and returns the status and the decoded error, if any.
func send(t testing.TB, r *http.Request) (int, testError) {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var e testError
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("status %d with body %s: %v", resp.StatusCode, body, err)
		}
	} else if !json.Valid(body) {
		t.Fatalf("invalid JSON: %s", body)
	}
	return resp.StatusCode, e
}

func startServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	s := New(cfg)
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s, base
}

func TestSDKSignatureVerifies(t *testing.T) {
	_, base := startServer(t, testConfig())
	path := auditPath(testProject, testInstance)
	host := strings.TrimPrefix(base, "http://")
	tests := []struct {
		name    string
		cred    *auth.BasicCredentials
		query   map[string]string
		headers map[string]string
	}{
		{"project and query", credential(testAK, testSK, testProject, ""),
			map[string]string{"operation": "pull", "limit": "10", "offset": "20"}, nil},
		{"no X-Project-Id", credential(testAK, testSK, "", ""),
			map[string]string{"operation": "create"}, nil},
		{"host and content type", credential(testAK, testSK, testProject, ""),
			map[string]string{"operation": "delete"},
			map[string]string{"Host": host, "Content-Type": "application/json", "User-Agent": "hwcaudit-test"}},
		{"query needing escapes", credential(testAK, testSK, testProject, ""),
			map[string]string{"operation": "pull", "note": "a b+c/d$e~f*张三", "a-key.with_chars~": ""}, nil},
		{"temporary credential", credential(testTempAK, testTempSK, testProject, testSecToken),
			map[string]string{"operation": "pull"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sdkRequest(t, base, path, tt.query, tt.headers, tt.cred)
			if status, e := send(t, r); status != http.StatusOK {
				t.Fatalf("status %d %+v", status, e)
			}
		})
	}
}

func TestSignatureRejected(t *testing.T) {
	path := auditPath(testProject, testInstance)
	query := map[string]string{"operation": "pull", "limit": "10"}
	good := credential(testAK, testSK, testProject, "")
	sdkDate := func(d time.Duration) map[string]string {
		return map[string]string{"X-Sdk-Date": time.Now().UTC().Add(d).Format(sdkDateLayout)}
	}
	tests := []struct {
		name     string
		cred     *auth.BasicCredentials
		headers  map[string]string
		signHost bool // sign the Host header too
		tamper   func(r *http.Request)
		msg      string // prefix of error_msg
	}{
		{name: "query value changed", cred: good, msg: msgSignature,
			tamper: func(r *http.Request) { r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "limit=10", "limit=20", 1) }},
		{name: "query parameter added", cred: good, msg: msgSignature,
			tamper: func(r *http.Request) { r.URL.RawQuery += "&offset=10" }},
		{name: "path changed", cred: good, msg: msgSignature,
			tamper: func(r *http.Request) { r.URL.Path = auditPath(testProject, testInstanceB) }},
		{name: "date changed", cred: good, msg: msgSignature,
			tamper: func(r *http.Request) {
				d, _ := time.Parse(sdkDateLayout, r.Header.Get("X-Sdk-Date"))
				r.Header.Set("X-Sdk-Date", d.Add(time.Second).Format(sdkDateLayout))
			}},
		{name: "signed header changed", cred: good, msg: msgSignature,
			tamper: func(r *http.Request) { r.Header.Set("X-Project-Id", testProject+"0") }},
		{name: "host changed", cred: good, msg: msgSignature, signHost: true,
			tamper: func(r *http.Request) { r.Host = "swr-api.cn-north-4.myhuaweicloud.com" }},
		{name: "wrong SK", cred: credential(testAK, "not-the-sk", testProject, ""), msg: msgSignature},
		{name: "unknown AK", cred: credential("AKUNKNOWN", testSK, testProject, ""),
			msg: msgIAMPrefix + "Get secretKey failed,ak:AKUNKNOWN,err:ak not exist"},
		{name: "signature missing", cred: good, msg: msgSignature,
			tamper: func(r *http.Request) {
				a := r.Header.Get("Authorization")
				r.Header.Set("Authorization", a[:strings.Index(a, ", Signature=")])
			}},
		{name: "signature not hex", cred: good, msg: msgSignature,
			tamper: func(r *http.Request) { r.Header.Set("Authorization", r.Header.Get("Authorization")+"zz") }},
		{name: "other algorithm", cred: good, msg: msgSignature,
			tamper: func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SDK-HMAC-SHA256", "SDK-HMAC-SM3", 1))
			}},
		{name: "date not signed", cred: good, msg: msgSignature,
			tamper: func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "x-sdk-date", "x-sdk-datf", 1))
			}},
		{name: "date missing", cred: good, msg: msgSignature,
			tamper: func(r *http.Request) { r.Header.Del("X-Sdk-Date") }},
		{name: "date 16 minutes old", cred: good, headers: sdkDate(-16 * time.Minute), msg: msgSignature},
		{name: "date 16 minutes ahead", cred: good, headers: sdkDate(16 * time.Minute), msg: msgSignature},
		{name: "unknown project in X-Project-Id", cred: credential(testAK, testSK, "0000", ""), msg: msgIAMPrefix + "project 0000"},
		{name: "temporary AK without security token", cred: credential(testTempAK, testTempSK, testProject, ""), msg: msgSignature},
		{name: "temporary AK with wrong security token", cred: credential(testTempAK, testTempSK, testProject, "other"), msg: msgSignature},
		{name: "security token not signed", cred: credential(testTempAK, testTempSK, testProject, ""), msg: msgSignature,
			tamper: func(r *http.Request) { r.Header.Set("X-Security-Token", testSecToken) }},
		{name: "security token with permanent AK", cred: credential(testAK, testSK, testProject, "stray"), msg: msgSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, base := startServer(t, testConfig())
			headers := tt.headers
			if tt.signHost {
				headers = map[string]string{"Host": strings.TrimPrefix(base, "http://")}
				if status, e := send(t, sdkRequest(t, base, path, query, headers, tt.cred)); status != http.StatusOK {
					t.Fatalf("untampered request: %d %+v", status, e)
				}
			}
			before := s.Stats()
			r := sdkRequest(t, base, path, query, headers, tt.cred)
			if tt.tamper != nil {
				tt.tamper(r)
			}
			status, e := send(t, r)
			if status != http.StatusUnauthorized || e.ErrorCode != codeIAMAuth || !strings.HasPrefix(e.ErrorMsg, tt.msg) {
				t.Errorf("got %d %+v, want 401 %s %q…", status, e, codeIAMAuth, tt.msg)
			}
			if st := s.Stats(); st.AuthFailures != before.AuthFailures+1 || st.Pages != before.Pages {
				t.Errorf("stats %+v after %+v", st, before)
			}
		})
	}

	t.Run("date 14 minutes old is accepted", func(t *testing.T) {
		_, base := startServer(t, testConfig())
		r := sdkRequest(t, base, path, query, sdkDate(-14*time.Minute), good)
		if status, e := send(t, r); status != http.StatusOK {
			t.Errorf("status %d %+v", status, e)
		}
	})
}

// TestSignatureFailureShowsCanonicalRequest checks the debugging aid: the
// error names the canonical request the server computed, as the gateway's
// does, so a client's signing bug can be diagnosed.
func TestSignatureFailureShowsCanonicalRequest(t *testing.T) {
	_, base := startServer(t, testConfig())
	r := sdkRequest(t, base, auditPath(testProject, testInstance), map[string]string{"operation": "pull"}, nil,
		credential(testAK, "wrong", testProject, ""))
	_, e := send(t, r)
	want := "canonicalRequest:GET|" + auditPath(testProject, testInstance) + "/|operation=pull|x-project-id:" + testProject + "|x-sdk-date:"
	if !strings.Contains(e.ErrorMsg, want) {
		t.Errorf("error_msg %q lacks %q", e.ErrorMsg, want)
	}
}

func TestAKLockout(t *testing.T) {
	var mu sync.Mutex
	now := time.Now().UTC().Truncate(time.Second)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	cfg := testConfig()
	cfg.Now = clock
	s, base := startServer(t, cfg)
	path := auditPath(testProject, testInstance)
	query := map[string]string{"operation": "pull"}
	signed := func(sk string) *http.Request {
		return sdkRequest(t, base, path, query, map[string]string{"X-Sdk-Date": clock().Format(sdkDateLayout)},
			credential(testAK, sk, testProject, ""))
	}

	// A success between failures resets the run.
	for range 4 {
		if status, _ := send(t, signed("wrong")); status != 401 {
			t.Fatalf("bad signature: status %d", status)
		}
	}
	if status, e := send(t, signed(testSK)); status != 200 {
		t.Fatalf("good signature after 4 failures: %d %+v", status, e)
	}
	for i := range 5 {
		if _, e := send(t, signed("wrong")); !strings.HasPrefix(e.ErrorMsg, msgSignature) {
			t.Fatalf("failure %d: %+v", i+1, e)
		}
	}
	st := s.Stats()
	if st.SignatureFailures[testAK] != 9 || len(st.LockedAKs) != 1 || st.LockedAKs[0] != testAK {
		t.Errorf("stats after 9 failures: %+v", st)
	}
	if status, e := send(t, signed(testSK)); status != 401 || e.ErrorMsg != msgAKLocked {
		t.Errorf("locked AK: %d %+v", status, e)
	}
	// Other AKs and tokens are unaffected.
	tr := sdkRequest(t, base, path, query, map[string]string{"X-Sdk-Date": clock().Format(sdkDateLayout)},
		credential(testTempAK, testTempSK, testProject, testSecToken))
	if status, e := send(t, tr); status != 200 {
		t.Errorf("other AK while one is locked: %d %+v", status, e)
	}

	advance(akLockDuration + time.Second)
	if status, e := send(t, signed(testSK)); status != 200 {
		t.Errorf("after the lock expired: %d %+v", status, e)
	}
	if st := s.Stats(); len(st.LockedAKs) != 0 || st.SignatureFailures[testAK] != 9 {
		t.Errorf("stats after unlock: %+v", st)
	}
}

func TestTokenWinsOverSignature(t *testing.T) {
	_, base := startServer(t, testConfig())
	r := sdkRequest(t, base, auditPath(testProject, testInstance), map[string]string{"operation": "pull"}, nil,
		credential(testAK, testSK, testProject, ""))
	r.Header.Set("X-Auth-Token", testExpired)
	if status, e := send(t, r); status != 401 || e.ErrorCode != codeTokenExpired {
		t.Errorf("got %d %+v, want the token's verdict", status, e)
	}
}

func TestCanonicalForms(t *testing.T) {
	tests := []struct{ in, uri, query string }{
		{"/v2/p/instances/i/audit-logs", "/v2/p/instances/i/audit-logs/", ""},
		{"/", "/", ""},
		{"/a%20b/c%2Fd/", "/a%20b/c%2Fd/", ""},
		{"/%E5%BC%A0", "/%E5%BC%A0/", ""},
	}
	for _, tt := range tests {
		if got := canonicalURI(tt.in); got != tt.uri {
			t.Errorf("canonicalURI(%q) = %q, want %q", tt.in, got, tt.uri)
		}
	}
	queries := []struct{ raw, want string }{
		{"", ""},
		{"b=2&a=1", "a=1&b=2"},
		{"a=2&a=1&a", "a=&a=1&a=2"},
		{"q=a+b&r=a%20b&s=%24~*", "q=a%20b&r=a%20b&s=%24~%2A"},
		{"k%20ey=v&&", "k%20ey=v"},
	}
	for _, tt := range queries {
		if got := canonicalQuery(tt.raw); got != tt.want {
			t.Errorf("canonicalQuery(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature=00ff")
	f.Add("SDK-HMAC-SHA256 Access=, SignedHeaders=, Signature=")
	f.Add("Bearer x")
	f.Fuzz(func(t *testing.T, v string) {
		a, err := parseAuthorization(v)
		if err == nil && (a.access == "" || len(a.signedHeaders) == 0) {
			t.Errorf("accepted %q as %+v", v, a)
		}
	})
}

func FuzzCanonicalQuery(f *testing.F) {
	f.Add("operation=pull&limit=10&offset=0")
	f.Add("a=%zz&b=%&=&&c")
	f.Fuzz(func(t *testing.T, raw string) {
		c := canonicalQuery(raw)
		// The canonical form is made of escaped pairs only, and is its own
		// canonical form.
		if strings.ContainsAny(c, " +") || canonicalQuery(c) != c {
			t.Errorf("canonicalQuery(%q) = %q is not canonical", raw, c)
		}
		if _, err := url.ParseQuery(c); err != nil {
			t.Errorf("canonicalQuery(%q) = %q does not parse: %v", raw, c, err)
		}
	})
}
