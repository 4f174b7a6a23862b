package huaweiapi

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/provider"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/signer/algorithm"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/config"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/impl"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/request"
)

// SDKSigner signs requests with AK/SK (SDK-HMAC-SHA256) using the official
// Huawei Cloud SDK, so the canonical form, X-Sdk-Date, X-Project-Id and
// X-Security-Token handling are exactly the SDK's.
type SDKSigner struct {
	mu      sync.Mutex // the SDK credential refreshes itself in place
	cred    auth.ICredential
	sdkHTTP *impl.DefaultHttpClient
	resolve func() (auth.ICredential, error)
}

// NewSDKSigner signs with credentials from resolve, which it calls again
// when the gateway answers 401, to pick up rotated credentials.
func NewSDKSigner(resolve func() (auth.ICredential, error)) (*SDKSigner, error) {
	cred, err := resolve()
	if err != nil {
		return nil, err
	}
	return &SDKSigner{
		cred:    cred,
		sdkHTTP: impl.NewDefaultHttpClient(config.DefaultHttpConfig()),
		resolve: resolve,
	}, nil
}

// credentialProviders are the names HWCAUDIT_CREDENTIALS accepts.
var credentialProviders = []string{"env", "profile", "metadata", "pod-identity"}

// CredentialChain resolves AK/SK with the SDK's providers, tried in the
// order given (names from HWCAUDIT_CREDENTIALS, already validated):
//   - env: HUAWEICLOUD_SDK_AK, _SK, _SECURITY_TOKEN, _PROJECT_ID;
//   - profile: the SDK credentials file;
//   - metadata: the ECS metadata service (an agency bound to the server);
//   - pod-identity: CCE workload identity (HC_CONTAINER_CREDENTIALS_FULL_URI
//     and HC_CONTAINER_AUTHORIZATION_TOKEN_FILE).
//
// Credentials from metadata and pod identity are temporary; the SDK renews
// them before they expire when a request is signed.
func CredentialChain(names []string) func() (auth.ICredential, error) {
	var providers []provider.ICredentialProvider
	for _, n := range names {
		switch n {
		case "env":
			providers = append(providers, provider.BasicCredentialEnvProvider())
		case "profile":
			providers = append(providers, provider.BasicCredentialProfileProvider())
		case "metadata":
			providers = append(providers, provider.BasicCredentialMetadataProvider())
		case "pod-identity":
			providers = append(providers, provider.BasicCredentialPodIdentityProvider())
		}
	}
	chain := provider.NewCredentialProviderChain(providers)
	return func() (auth.ICredential, error) {
		cred, err := chain.GetCredentials()
		if err != nil {
			return nil, fmt.Errorf("no credentials found (tried %s): %w", strings.Join(names, ", "), err)
		}
		return cred, nil
	}
}

// Authorize adds X-Sdk-Date, X-Project-Id, X-Security-Token (temporary
// credentials) and the Authorization header to req.
func (s *SDKSigner) Authorize(req *http.Request, body []byte) error {
	b := request.NewHttpRequestBuilder().
		WithEndpoint(req.URL.Scheme + "://" + req.URL.Host).
		WithPath(req.URL.Path).
		WithMethod(req.Method).
		WithSigningAlgorithm(algorithm.GetDefaultSigningAlgorithm())
	for k, vs := range req.URL.Query() {
		if len(vs) > 0 {
			b.AddQueryParam(k, reflect.ValueOf(vs[0]))
		}
	}
	// The signer sees the Content-Type the client sends (it is never a
	// signed header, but a non-JSON one would make the payload unsigned).
	if ct := req.Header.Get("Content-Type"); ct != "" {
		b.AddHeaderParam("Content-Type", ct)
	}
	if body != nil {
		b.WithBody("application/json", string(body))
	}
	sdkReq := b.Build()

	s.mu.Lock()
	signed, err := s.cred.ProcessAuthRequest(s.sdkHTTP, sdkReq)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	for k, v := range signed.GetHeaderParams() {
		if http.CanonicalHeaderKey(k) == "Content-Type" {
			continue
		}
		req.Header.Set(k, v)
	}
	if req.Header.Get("Authorization") == "" {
		return errors.New("the SDK produced no Authorization header")
	}
	return nil
}

// Refresh resolves the credentials again after a 401. It returns false
// when they did not change: sending the same signature again would only
// count another failure against the AK.
func (s *SDKSigner) Refresh() bool {
	cred, err := s.resolve()
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sameCredentials(s.cred, cred) {
		return false
	}
	s.cred = cred
	return true
}

// secrets are the AK, SK and security token the signer signs with now.
func (s *SDKSigner) secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cred.(*auth.BasicCredentials); ok {
		return []string{c.AK, c.SK, c.SecurityToken}
	}
	return nil
}

func (t TokenAuth) secrets() []string { return []string{t.Token} }

func sameCredentials(a, b auth.ICredential) bool {
	x, ok1 := a.(*auth.BasicCredentials)
	y, ok2 := b.(*auth.BasicCredentials)
	return ok1 && ok2 && x.AK == y.AK && x.SK == y.SK && x.SecurityToken == y.SecurityToken
}

func (s *SDKSigner) String() string { return "AK/SK signature" }

// TokenAuth sends a static IAM token as X-Auth-Token.
type TokenAuth struct{ Token string }

// Authorize sets X-Auth-Token.
func (t TokenAuth) Authorize(req *http.Request, _ []byte) error {
	req.Header.Set("X-Auth-Token", t.Token)
	return nil
}

// Refresh returns false: a static token cannot be renewed here.
func (TokenAuth) Refresh() bool { return false }

func (TokenAuth) String() string { return "IAM token from HWCAUDIT_AUTH_TOKEN" }
