package huaweiapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// Huawei's common request headers mark Content-Type required, and the
// official SDK sends it on GET requests too (sdkwitness compares the whole
// request per API; this pins the header for both authorizers).
func TestClientSendsContentType(t *testing.T) {
	signer := newSigner(t, basicCred(testAK, testSK, ""))
	for _, tc := range []struct {
		name string
		auth Authorizer
		req  Request
		want string
	}{
		{"GET signed", signer, Request{Method: http.MethodGet, Path: "/v2/p/instances/i/audit-logs", Query: url.Values{"limit": {"10"}}}, "application/json"},
		{"GET token", TokenAuth{Token: testToken}, Request{Method: http.MethodGet, Path: "/v3/p/instances/i/audit-logs"}, "application/json"},
		{"POST signed", signer, Request{Method: http.MethodPost, Path: "/v1/p/audit/i/operation-log", Body: []byte(`{"page":"1"}`)}, "application/json;charset=UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r.Header.Values("Content-Type")
				_, _ = w.Write([]byte(`{}`))
			}))
			defer srv.Close()
			tc.req.Endpoint = srv.URL
			if _, err := NewClient(testConfig(), tc.auth).Do(context.Background(), tc.req); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("Content-Type %q, want exactly %q", got, tc.want)
			}
		})
	}
}

// The simulator's gateway verifies signatures on its own; a GET that
// carries Content-Type must still verify (Content-Type is never a signed
// header).
func TestClientGETWithContentTypeVerifies(t *testing.T) {
	_, base := startSim(t, simConfig())
	c := NewClient(testConfig(), newSigner(t, basicCred(testAK, testSK, "")))
	body, err := c.Do(context.Background(), auditLogs(base, url.Values{"operation": {"pull"}, "offset": {"0"}, "limit": {"10"}}))
	if err != nil {
		t.Fatal(err)
	}
	checkPage(t, body, 10)
}
