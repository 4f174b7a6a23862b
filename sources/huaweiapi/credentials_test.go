package huaweiapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/simulator"
)

// podIdentity stands in for CCE's pod identity endpoint, which the SDK's
// provider calls with the projected service-account token: POST {} with
// the token in Authorization, answered with temporary credentials.
type podIdentity struct {
	mu      sync.Mutex
	calls   int
	token   string
	expires func() time.Time
	creds   []simulator.Credential // handed out in turn, the last one repeated
}

func (p *podIdentity) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Authorization") != p.token {
		http.Error(w, `{"error_msg":"bad token"}`, http.StatusUnauthorized)
		return
	}
	c := p.creds[min(p.calls, len(p.creds)-1)]
	p.calls++
	json.NewEncoder(w).Encode(map[string]any{"credentials": map[string]string{
		"access": c.AK, "secret": c.SK, "securitytoken": c.SecurityToken,
		"expires_at": p.expires().UTC().Format("2006-01-02T15:04:05Z"),
	}})
}

func (p *podIdentity) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// usePodIdentity points the SDK's pod-identity provider at p.
func usePodIdentity(t *testing.T, p *podIdentity) {
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(p.token), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HC_CONTAINER_CREDENTIALS_FULL_URI", srv.URL+"/v1/credentials")
	t.Setenv("HC_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokenFile)
}

func TestPodIdentityCredentialsSignRequests(t *testing.T) {
	// The env provider comes first but finds nothing; pod identity then
	// supplies temporary credentials, which the simulator only accepts with
	// their security token.
	t.Setenv("HUAWEICLOUD_SDK_AK", "")
	t.Setenv("HUAWEICLOUD_SDK_SK", "")
	temp := simulator.Credential{AK: "PODAK000000000000001", SK: "pod-secret-1", SecurityToken: "pod-sts-token-1"}
	p := &podIdentity{token: "sa-token", creds: []simulator.Credential{temp},
		expires: func() time.Time { return time.Now().Add(6 * time.Hour) }}
	usePodIdentity(t, p)

	cfg := simConfig()
	cfg.Credentials = []simulator.Credential{temp}
	sim, base := startSim(t, cfg)
	signer, err := NewSDKSigner(CredentialChain([]string{"env", "pod-identity"}))
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(testConfig(), signer)
	for range 3 {
		body, err := c.Do(context.Background(), auditLogs(base, nil))
		if err != nil {
			t.Fatal(err)
		}
		checkPage(t, body, 10)
	}
	if n := p.callCount(); n != 1 {
		t.Errorf("pod identity endpoint called %d times for long-lived credentials, want 1", n)
	}
	if f := sim.Stats().AuthFailures; f != 0 {
		t.Errorf("%d authentication failures", f)
	}
}

func TestExpiringCredentialsAreRenewed(t *testing.T) {
	// Credentials that expire within the SDK's renewal margin are fetched
	// again before a request is signed; the renewed pair signs it.
	t.Setenv("HUAWEICLOUD_SDK_AK", "")
	first := simulator.Credential{AK: "PODAK000000000000001", SK: "pod-secret-1", SecurityToken: "pod-sts-token-1"}
	second := simulator.Credential{AK: "PODAK000000000000002", SK: "pod-secret-2", SecurityToken: "pod-sts-token-2"}
	p := &podIdentity{token: "sa-token", creds: []simulator.Credential{first, second},
		expires: func() time.Time { return time.Now().Add(10 * time.Minute) }}
	usePodIdentity(t, p)

	cfg := simConfig()
	cfg.Credentials = []simulator.Credential{second} // only the renewed pair verifies
	_, base := startSim(t, cfg)
	signer, err := NewSDKSigner(CredentialChain([]string{"pod-identity"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(testConfig(), signer).Do(context.Background(), auditLogs(base, nil)); err != nil {
		t.Fatalf("request with renewed credentials: %v", err)
	}
	if n := p.callCount(); n < 2 {
		t.Errorf("pod identity endpoint called %d times; expiring credentials were not renewed", n)
	}
}

func TestNoCredentialsNamesEveryProviderTried(t *testing.T) {
	t.Setenv("HUAWEICLOUD_SDK_AK", "")
	t.Setenv("HUAWEICLOUD_SDK_SK", "")
	t.Setenv("HC_CONTAINER_CREDENTIALS_FULL_URI", "")
	t.Setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "absent"))
	_, err := NewSDKSigner(CredentialChain([]string{"env", "profile", "pod-identity"}))
	if err == nil {
		t.Fatal("no error without any credentials")
	}
	if want := "no credentials found (tried env, profile, pod-identity)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}
