// Package huaweiapi is the HTTP client every audit source uses to call Huawei
// Cloud APIs: it signs requests (AK/SK through the official SDK, or a static
// IAM token), limits the request rate, caps response sizes and classifies
// failures once, as retryable or permanent, for the pipeline's retry loop.
package huaweiapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress"
	"github.com/hwcaudit/hwcaudit/sources/jsonscan"
)

// Config holds the settings shared by every source's API calls.
type Config struct {
	// ProjectID is the Huawei Cloud project whose audit logs are read.
	// Default: HUAWEICLOUD_SDK_PROJECT_ID, the SDK's own variable.
	ProjectID string `env:"HWCAUDIT_PROJECT_ID"`
	// AuthToken is a static IAM token sent as X-Auth-Token instead of AK/SK
	// signing. Tokens expire after 24h: fit for short runs only.
	AuthToken string `env:"HWCAUDIT_AUTH_TOKEN"`
	// Credentials are the places AK/SK credentials are looked for, in
	// order, the Huawei Cloud SDK's provider chain: env (HUAWEICLOUD_SDK_*),
	// profile (~/.huaweicloud/credentials), metadata (the ECS metadata
	// service, for an agency bound to the server) and pod-identity (CCE
	// workload identity). Temporary credentials are refreshed before they
	// expire. Default env,profile,metadata,pod-identity.
	Credentials []string `env:"HWCAUDIT_CREDENTIALS,default=env,profile,metadata,pod-identity"`
	// MaxRPS caps requests per second to one endpoint, across all streams;
	// greater than 0, fractions allowed. Default 10, a fraction of the
	// gateway's usual per-API quota.
	MaxRPS float64 `env:"HWCAUDIT_MAX_RPS,default=10"`
	// Timeout bounds one request, from dial to the end of the body. Default 30s.
	Timeout time.Duration `env:"HWCAUDIT_HTTP_TIMEOUT,default=30s"`
	// MaxBodyBytes caps a response body, at least 1024; a larger body is
	// an error, never a silent truncation. Default 16 MiB.
	MaxBodyBytes int64 `env:"HWCAUDIT_HTTP_MAX_BODY_BYTES,default=16777216"`

	// OnResponse, when not nil, is called once for every HTTP attempt the
	// client makes, retries after a 401 included, with the request's
	// Endpoint and the response's status code, or 0 when no response came
	// (a network failure or timeout). An attempt the caller abandoned (its
	// context ended, e.g. a page read ahead that is no longer needed) is
	// not reported: it is no failure, and whether the server saw it is
	// unknown. Do's errors count page reads after classification; this
	// counts what went over the wire, for metrics. It is called from many
	// goroutines at once and must not block.
	OnResponse func(endpoint string, status int)

	// Secrets, when not nil, is the set of secrets the rest of the program
	// redacts from what it prints: the client adds to it every credential
	// it sends or signs with (IAM token, AK, SK, security token, the
	// Authorization header and its signature), as it uses them, so that
	// temporary credentials fetched later are known too. When nil the
	// client keeps a set of its own. Its errors are always redacted.
	Secrets *egress.Secrets
}

// Validate reports the first invalid setting, naming its variable.
func (c *Config) Validate() error {
	if len(c.Credentials) == 0 {
		return fmt.Errorf("HWCAUDIT_CREDENTIALS: name at least one of %s", strings.Join(credentialProviders, ","))
	}
	for i, name := range c.Credentials {
		if !slices.Contains(credentialProviders, name) {
			return fmt.Errorf("HWCAUDIT_CREDENTIALS: unknown provider %q (known: %s)", name, strings.Join(credentialProviders, ","))
		}
		if slices.Contains(c.Credentials[:i], name) {
			return fmt.Errorf("HWCAUDIT_CREDENTIALS: %q is listed twice", name)
		}
	}
	switch {
	case !(c.MaxRPS > 0): // also refuses NaN, which ParseFloat accepts
		return fmt.Errorf("HWCAUDIT_MAX_RPS: must be greater than 0, got %v", c.MaxRPS)
	case c.Timeout <= 0:
		return fmt.Errorf("HWCAUDIT_HTTP_TIMEOUT: must be a positive duration such as 30s, got %s", c.Timeout)
	case c.MaxBodyBytes < 1024:
		return fmt.Errorf("HWCAUDIT_HTTP_MAX_BODY_BYTES: must be at least 1024, got %d", c.MaxBodyBytes)
	}
	return nil
}

// Authorizer adds credentials to a request that is ready to be sent.
type Authorizer interface {
	// Authorize signs or otherwise authenticates req, whose body is body.
	Authorize(req *http.Request, body []byte) error
	// Refresh is called once after a 401; it returns false when there is
	// nothing to refresh, so the 401 is final.
	Refresh() bool
}

// Doer sends one API request and returns the body of its 200 answer; an
// error keeps its class (pipeline.Permanent or retryable). *Client
// implements it; the sources take a Doer so that tests can answer in
// place of the API.
type Doer interface {
	Do(ctx context.Context, req Request) ([]byte, error)
}

// Client calls Huawei Cloud APIs. It is safe for concurrent use.
type Client struct {
	cfg     Config
	auth    Authorizer
	http    *http.Client
	mu      sync.Mutex
	rates   map[string]*rate.Limiter // by endpoint host
	refused error                    // a definitive 401: every later call fails with it

	authMu sync.Mutex  // serializes calls until one authenticated
	authOK atomic.Bool // a call got past authentication
}

// NewClient returns a client that authenticates with auth.
func NewClient(cfg Config, auth Authorizer) *Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	if cfg.Secrets == nil {
		cfg.Secrets = &egress.Secrets{}
	}
	return &Client{
		cfg:  cfg,
		auth: auth,
		// Go would otherwise forward X-Auth-Token and X-Security-Token to
		// any host a redirect names, and follow https to http.
		http:  &http.Client{Transport: tr, Timeout: cfg.Timeout, CheckRedirect: egress.CheckRedirectKeepMethod},
		rates: make(map[string]*rate.Limiter),
	}
}

// secretHolder is an Authorizer that knows the secrets it signs with.
type secretHolder interface {
	secrets() []string
}

// ProjectID is the project the client reads.
func (c *Client) ProjectID() string { return c.cfg.ProjectID }

// Request is one API call.
type Request struct {
	Method   string
	Endpoint string // scheme and host, e.g. https://swr-api.cn-north-4.myhuaweicloud.com
	Path     string // already escaped, e.g. /v2/{project}/instances/{id}/audit-logs
	Query    url.Values
	Body     []byte // JSON, or nil
}

// APIError is a non-2xx answer, with the error code and message the API gave.
type APIError struct {
	Status    int
	Code      string
	Message   string
	RequestID string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	return b.String()
}

// Do sends req and returns the body of a 2xx answer. Errors are classified:
// network failures, 429 and 5xx are retryable (a 429 carries the server's
// Retry-After); a 401 is retried once after refreshing credentials and is
// permanent after that, because the gateway locks an AK after repeated
// signature failures; every other 4xx is permanent.
func (c *Client) Do(ctx context.Context, req Request) ([]byte, error) {
	if err := c.refusedErr(); err != nil {
		return nil, err
	}
	// Until one request has authenticated, send one at a time: with a wrong
	// secret every stream would otherwise fail its signature at once, and
	// the gateway locks an AK after a handful of failures.
	if !c.authOK.Load() {
		c.authMu.Lock()
		defer c.authMu.Unlock()
		if err := c.refusedErr(); err != nil {
			return nil, err
		}
	}
	body, err := c.do(ctx, req)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized && c.auth.Refresh() {
		body, err = c.do(ctx, req)
	}
	switch {
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized:
		err = pipeline.Permanent(fmt.Errorf("authentication with %v refused: %w", c.auth, err))
		// Every later request would be refused too: stop them all here
		// rather than spend the AK's few allowed failures.
		c.mu.Lock()
		c.refused = err
		c.mu.Unlock()
	case err == nil || errors.As(err, &apiErr):
		c.authOK.Store(true)
	}
	return body, err
}

func (c *Client) refusedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused
}

func (c *Client) do(ctx context.Context, req Request) ([]byte, error) {
	u, err := url.Parse(req.Endpoint)
	if err != nil || u.Host == "" {
		return nil, pipeline.Permanent(fmt.Errorf("bad endpoint %q", req.Endpoint))
	}
	if err := c.limiter(u.Host).Wait(ctx); err != nil {
		return nil, err
	}
	if err := setPath(u, req.Path); err != nil {
		return nil, pipeline.Permanent(err)
	}
	u.RawQuery = encodeQuery(req.Query)

	var rd io.Reader
	if req.Body != nil {
		rd = strings.NewReader(string(req.Body))
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, u.String(), rd)
	if err != nil {
		return nil, pipeline.Permanent(err)
	}
	hr.Header.Set("Content-Type", contentType(req))
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", "hwcaudit")
	if err := c.auth.Authorize(hr, req.Body); err != nil {
		return nil, pipeline.Permanent(c.cfg.Secrets.Error(fmt.Errorf("sign request: %w", err)))
	}
	// The set this request's errors are redacted of: the shared one, and
	// the signature that only this request carries.
	sec := c.cfg.Secrets.With(c.learnSecrets(hr.Header)...)

	resp, err := c.http.Do(hr)
	if err != nil {
		if ctx.Err() == nil {
			c.observe(req.Endpoint, 0)
		}
		err = sec.Error(fmt.Errorf("%s %s: %w", req.Method, req.Path, err))
		if errors.Is(err, egress.ErrRedirect) {
			return nil, pipeline.Permanent(err)
		}
		if cerr := egress.CertError(err, req.Method+" "+req.Path, egress.Origin(u),
			"add the CA that signed it to the system trust store (or SSL_CERT_FILE), or fix the endpoint variable"); cerr != nil {
			return nil, cerr
		}
		// Transport errors (refused, reset, timeout) heal on their own.
		return nil, err
	}
	c.observe(req.Endpoint, resp.StatusCode)
	defer resp.Body.Close()
	data, err := readBody(resp, c.cfg.MaxBodyBytes+1)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", req.Method, req.Path, err)
	}
	tooLarge := int64(len(data)) > c.cfg.MaxBodyBytes
	if resp.StatusCode/100 == 2 {
		if tooLarge {
			return nil, pipeline.Permanent(fmt.Errorf("%s %s: response body larger than %d bytes (HWCAUDIT_HTTP_MAX_BODY_BYTES)", req.Method, req.Path, c.cfg.MaxBodyBytes))
		}
		return data, nil
	}
	// The status decides an error's class, whatever its body's size: a
	// proxy's large 502 page must stay retryable.
	if tooLarge {
		data = data[:c.cfg.MaxBodyBytes]
	}
	return nil, classify(resp, data, sec)
}

// setPath sets u's path from an escaped API path. A path with an empty,
// "." or ".." segment (once unescaped) is refused: an id from
// configuration must never move a signed request to another API.
func setPath(u *url.URL, escaped string) error {
	p, err := url.PathUnescape(escaped)
	if err != nil || !strings.HasPrefix(p, "/") {
		return fmt.Errorf("request path %q is not an escaped absolute path", escaped)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("request path %q has an empty, \".\" or \"..\" segment; an id in it is not valid", escaped)
		}
	}
	u.Path, u.RawPath = p, escaped
	return nil
}

// learnSecrets adds the credentials a request carries, and those its
// authorizer signs with, to the secrets every message is redacted of, and
// returns those only this request carries (the Authorization header and
// its signature), which would grow the shared set with every request.
// Gateways quote them back: a failed AK/SK signature's message holds the
// canonical request, X-Security-Token included.
func (c *Client) learnSecrets(h http.Header) (once []string) {
	var out []string
	for _, k := range []string{"X-Auth-Token", "X-Security-Token"} {
		if v := h.Get(k); v != "" {
			out = append(out, v)
		}
	}
	if v := h.Get("Authorization"); v != "" {
		once = append(once, v)
	}
	// The AK and the signature of "SDK-HMAC-SHA256 Access=…,
	// SignedHeaders=…, Signature=…", each echoed alone too.
	if a := h.Get("Authorization"); a != "" {
		for _, part := range strings.Split(a, ",") {
			part = strings.TrimSpace(part)
			if i := strings.LastIndex(part, " "); i >= 0 {
				part = part[i+1:]
			}
			switch k, v, _ := strings.Cut(part, "="); k {
			case "Access":
				out = append(out, v)
			case "Signature":
				once = append(once, v)
			}
		}
	}
	if s, ok := c.auth.(secretHolder); ok {
		out = append(out, s.secrets()...)
	}
	c.cfg.Secrets.Add(out...)
	return once
}

// contentType is the Content-Type the official SDK sends for req, and
// Huawei's common request headers mark required on every request, GET
// included: application/json;charset=UTF-8 with a JSON body (the DBSS
// APIs), application/json without one. It is not among the signed headers
// (the SDK-HMAC-SHA256 signer leaves it out), so it does not change the
// signature.
func contentType(req Request) string {
	if req.Body != nil {
		return "application/json;charset=UTF-8"
	}
	return "application/json"
}

func (c *Client) observe(endpoint string, status int) {
	if c.cfg.OnResponse != nil {
		c.cfg.OnResponse(endpoint, status)
	}
}

func classify(resp *http.Response, body []byte, secrets *egress.Secrets) error {
	e := &APIError{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	if v, err := jsonscan.Parse(body); err == nil {
		e.Code, e.Message = errorFields(v, 0)
	}
	raw := e.Code == "" && e.Message == "" && len(body) > 0
	if raw {
		e.Message = string(body)
	}
	e.Code = secrets.Redact(e.Code)
	e.Message = secrets.Redact(e.Message)
	if raw {
		// Truncated after redaction, so no prefix of a secret survives.
		e.Message = truncate(e.Message, 200)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		if ra := retryAfter(resp.Header.Get("Retry-After")); ra > 0 {
			return &pipeline.RetryAfterError{After: ra, Err: e}
		}
		return e
	case resp.StatusCode >= 500:
		if ra := retryAfter(resp.Header.Get("Retry-After")); ra > 0 {
			return &pipeline.RetryAfterError{After: ra, Err: e}
		}
		return e
	default:
		return pipeline.Permanent(e)
	}
}

// errorFields finds an error body's code and message where the official
// SDK looks for them (sdkerr.NewServiceResponseError): error_code and
// error_msg (API Gateway, SWR, TaurusDB), else code and message, else the
// first nested object that holds either pair, as DBSS nests them in
// {"error": {...}}. Members are visited in the body's order, so the
// result is deterministic.
func errorFields(v jsonscan.Value, depth int) (code, msg string) {
	if v.Kind != jsonscan.Object || depth > 3 {
		return "", ""
	}
	var c, m string
	var nested []jsonscan.Value
	_ = v.EachMember(func(name []byte, v jsonscan.Value) error {
		s, _ := v.String()
		switch string(jsonscan.Name(name)) {
		case "error_code":
			code = s
		case "error_msg":
			msg = s
		case "code":
			c = s
		case "message":
			m = s
		default:
			if v.Kind == jsonscan.Object {
				nested = append(nested, v)
			}
		}
		return nil
	})
	switch {
	case code != "" || msg != "":
		return code, msg
	case c != "" && m != "":
		return c, m
	}
	for _, n := range nested {
		if code, msg = errorFields(n, depth+1); code != "" || msg != "" {
			return code, msg
		}
	}
	return "", ""
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && s >= 0 {
		// More seconds than a Duration holds must not wrap around to a
		// short or negative wait: wait as long as one can (the retry loop
		// caps it).
		if s > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

func (c *Client) limiter(host string) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.rates[host]
	if !ok {
		l = rate.NewLimiter(rate.Limit(c.cfg.MaxRPS), max(1, int(c.cfg.MaxRPS)))
		c.rates[host] = l
	}
	return l
}

// encodeQuery encodes like url.Values.Encode but with %20 for spaces, the
// form Huawei's gateway canonicalizes; '+' in a value becomes %2B, as the
// TaurusDB time format requires.
func encodeQuery(q url.Values) string {
	return strings.ReplaceAll(q.Encode(), "+", "%20")
}

// truncate cuts s to at most n bytes, at a rune boundary, so that a
// valid UTF-8 body stays valid in logs.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// readBody reads up to limit bytes of resp's body. A body that announces
// its length is read into one buffer of that size: growing a buffer by
// doubling, as io.ReadAll does, leaves up to twice a large page behind as
// garbage, and pages near the body cap come four streams at a time.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n < limit {
		buf := make([]byte, n)
		_, err := io.ReadFull(resp.Body, buf)
		return buf, err
	}
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}

var (
	projectIDRE = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)
	idRE        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)
)

// ValidProjectID reports whether id has the documented shape of a project
// id: 32 letters or digits.
func ValidProjectID(id string) bool { return projectIDRE.MatchString(id) }

// ValidID reports whether id can be an instance or repository id for APIs
// whose documents give no shape (SWR, DBSS, CodeArts Artifact
// repositories): 1 to 128 letters, digits, '-' and '_', starting with a
// letter or digit. Nothing in it needs escaping in a path, and it can be
// neither "." nor "..".
func ValidID(id string) bool { return idRE.MatchString(id) }
