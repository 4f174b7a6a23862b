// Package egress holds what the sinks' outbound clients (Elasticsearch,
// S3/OBS, Kafka) and the S3 checkpoint store agree on about what leaves the
// process:
//
//   - CheckRedirect: a redirect is followed only to the very scheme, host
//     and port the request was sent to, so no credential header reaches
//     another server and no request drops from https to http;
//   - CheckEndpoint: a plain-text endpoint (http://, SASL without TLS) is
//     refused unless it is on loopback or the user opted in;
//   - CertError: a certificate that does not verify is a permanent error
//     naming the endpoint and the fix, not a network fault to retry;
//   - Secrets: every configured secret is removed from error text in raw,
//     JSON-escaped, URL-encoded and base64 form.
package egress

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// ErrRedirect is wrapped by the error CheckRedirect returns.
var ErrRedirect = errors.New("redirect refused")

// CheckRedirect is an http.Client CheckRedirect that follows a redirect
// only when it keeps the scheme, host and port of the first request of the
// chain (Go's own rule keeps Authorization for any port of the same host
// name and lets https fall to http, and forwards every other header, such
// as X-Amz-Security-Token, everywhere). At most 5 redirects are followed.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) == 0 {
		return nil
	}
	first := via[0].URL
	if !sameOrigin(first, req.URL) {
		return fmt.Errorf("%w: %s redirected to another server (%s); only the configured endpoint receives requests",
			ErrRedirect, Origin(first), Origin(req.URL))
	}
	if len(via) >= 5 {
		return fmt.Errorf("%w: %s: more than 5 redirects", ErrRedirect, Origin(first))
	}
	return nil
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// Origin is scheme://host[:port] of u, without user information, path or
// query: the part of a URL that is safe to print.
func Origin(u *url.URL) string {
	if u == nil {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
}

// RedactURL returns raw with its password, path and query left out, for
// messages; a value that does not parse is replaced by "(unparsable URL)".
func RedactURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return Origin(u)
}

// IsLoopback reports whether host (a name or address, with or without a
// port) is "localhost" or a loopback address.
func IsLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckEndpoint refuses an http:// URL whose host is not on loopback unless
// allowInsecure is set; variable and optIn name the environment variables
// for the message. https:// and loopback URLs pass. It does not check that
// raw parses as a URL; the caller's Validate does.
func CheckEndpoint(raw, variable, optIn string, allowInsecure bool) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || allowInsecure || !strings.EqualFold(u.Scheme, "http") || IsLoopback(u.Host) {
		return nil
	}
	return fmt.Errorf("%s: %s is plain http:// to a host that is not on loopback, so credentials and events would cross the network unencrypted; use https:// or set %s=true to accept it",
		variable, Origin(u), optIn)
}

// IsCertError reports whether err is a failure to verify a server's TLS
// certificate (unknown authority, wrong name, expired), which no retry can
// fix.
func IsCertError(err error) bool {
	if err == nil {
		return false
	}
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		cve *tls.CertificateVerificationError
	)
	return errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) || errors.As(err, &cve) ||
		// Some clients flatten the error to text.
		strings.Contains(err.Error(), "x509: certificate") || strings.Contains(err.Error(), "tls: failed to verify certificate")
}

// CertError returns nil when err is not a certificate failure (IsCertError),
// and otherwise a permanent error naming endpoint and the fix, wrapping err.
func CertError(err error, what, endpoint, fix string) error {
	if !IsCertError(err) {
		return nil
	}
	return pipeline.Permanent(fmt.Errorf("%s: the TLS certificate of %s could not be verified, so nothing was sent; retrying cannot fix this: %s: %w",
		what, endpoint, fix, err))
}
