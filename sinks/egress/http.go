package egress

import (
	"context"
	"crypto/tls"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// HTTPClient returns a client for one configured endpoint: redirects are
// checked by CheckRedirect (a redirect that changes the method, such as a
// 302 answering a PUT, is returned as the answer instead of followed),
// every request including the reading of its answer ends after timeout
// (none when 0), and tc, when not nil, configures TLS.
func HTTPClient(timeout time.Duration, tc *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tc != nil {
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: CheckRedirectKeepMethod}
}

// CheckRedirectKeepMethod is CheckRedirect for a client that also sends
// POST and PUT: a redirect that would turn one into a GET without its body
// is returned as the answer (an error status) instead of followed.
func CheckRedirectKeepMethod(req *http.Request, via []*http.Request) error {
	if err := CheckRedirect(req, via); err != nil {
		return err
	}
	if m := via[0].Method; m != http.MethodGet && m != http.MethodHead && req.Response != nil {
		switch req.Response.StatusCode {
		case http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			// Go would resend it as a GET without its body.
			return http.ErrUseLastResponse
		}
	}
	return nil
}

// AWSCredentials wraps an AWS credentials provider so that every key it
// hands out (access key id, secret key, session token) is added to secrets
// before it is used. Nil and anonymous providers are returned as they are.
func AWSCredentials(p aws.CredentialsProvider, secrets *Secrets) aws.CredentialsProvider {
	switch p.(type) {
	case nil, aws.AnonymousCredentials, *aws.AnonymousCredentials:
		return p
	}
	return recordingProvider{p: p, secrets: secrets}
}

type recordingProvider struct {
	p       aws.CredentialsProvider
	secrets *Secrets
}

func (r recordingProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := r.p.Retrieve(ctx)
	if err == nil {
		r.secrets.Add(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	}
	return c, err
}
