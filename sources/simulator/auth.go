package simulator

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// The gateway accepts a request carrying either a configured IAM token in
// X-Auth-Token or an SDK-HMAC-SHA256 signature by a configured AK/SK. The
// signature is verified from the published algorithm (API Gateway "AK/SK
// signing" guide) and cross-checked in the tests against the official Go
// SDK's signer, so a client that gets 200 here signs like the SDK.

const (
	signAlgorithm   = "SDK-HMAC-SHA256"
	sdkDateLayout   = "20060102T150405Z"
	headerSdkDate   = "X-Sdk-Date"
	headerBodyHash  = "X-Sdk-Content-Sha256"
	headerSecToken  = "X-Security-Token"
	headerProjectID = "X-Project-Id"
	headerAuthToken = "X-Auth-Token"

	// The gateway refuses an X-Sdk-Date more than 15 minutes from its clock
	// (documented in the APIG FAQ on "verify aksk signature fail").
	maxClockSkew = 15 * time.Minute
	// Documented: "AK/SK authentication fails for more than five consecutive
	// times, and the AK/SK pair is locked for five minutes."
	akLockThreshold = 5
	akLockDuration  = 5 * time.Minute

	maxSignedBody = 10 << 20
)

// akState tracks signature failures of one AK.
type akState struct {
	failures    int // since New, reported in Stats
	consecutive int // since the last success or lock
	lockedUntil time.Time
}

// authenticate answers 401 and returns false unless r carries valid
// credentials.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) bool {
	if tok := r.Header.Get(headerAuthToken); tok != "" {
		return s.checkToken(w, tok)
	}
	if authz := r.Header.Get("Authorization"); authz != "" {
		return s.checkSignature(w, r, authz)
	}
	s.gatewayError(w, http.StatusUnauthorized, codeIAMAuth, msgNoToken)
	return false
}

func (s *Server) checkToken(w http.ResponseWriter, tok string) bool {
	for _, t := range s.cfg.Tokens {
		if subtle.ConstantTimeCompare([]byte(t.Value), []byte(tok)) != 1 {
			continue
		}
		if t.Expired {
			s.gatewayError(w, http.StatusUnauthorized, codeTokenExpired, msgTokenExpiry)
			return false
		}
		return true
	}
	s.gatewayError(w, http.StatusUnauthorized, codeIAMAuth, msgBadToken)
	return false
}

func (s *Server) checkSignature(w http.ResponseWriter, r *http.Request, authz string) bool {
	auth, err := parseAuthorization(authz)
	if err != nil {
		s.gatewayError(w, http.StatusUnauthorized, codeIAMAuth, msgSignature+", "+err.Error())
		return false
	}
	var cred *Credential
	for i := range s.cfg.Credentials {
		if s.cfg.Credentials[i].AK == auth.access {
			cred = &s.cfg.Credentials[i]
			break
		}
	}
	now := s.now()
	if cred == nil {
		s.recordSignature(auth.access, now, false)
		s.gatewayError(w, http.StatusUnauthorized, codeIAMAuth,
			msgIAMPrefix+"Get secretKey failed,ak:"+auth.access+",err:ak not exist") // documented wording
		return false
	}
	if s.akLocked(auth.access, now) {
		s.gatewayError(w, http.StatusUnauthorized, codeIAMAuth, msgAKLocked)
		return false
	}
	if err := verifySignature(r, auth, cred, now); err != nil {
		s.recordSignature(auth.access, now, false)
		s.gatewayError(w, http.StatusUnauthorized, codeIAMAuth, msgSignature+", "+err.Error())
		return false
	}
	s.recordSignature(auth.access, now, true)

	// IAM resolves the AK to a token scoped to X-Project-Id; a project the
	// simulator does not know cannot be scoped to. The wording is ours.
	if pid := r.Header.Get(headerProjectID); pid != "" && pid != s.cfg.ProjectID {
		s.gatewayError(w, http.StatusUnauthorized, codeIAMAuth,
			msgIAMPrefix+"project "+pid+" in X-Project-Id is not accessible with ak "+auth.access)
		return false
	}
	return true
}

func (s *Server) akLocked(ak string, now time.Time) bool {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	a := s.aks[ak]
	return a != nil && now.Before(a.lockedUntil)
}

// recordSignature counts a verification outcome and locks the AK after
// akLockThreshold failures in a row.
func (s *Server) recordSignature(ak string, now time.Time, ok bool) {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	a := s.aks[ak]
	if a == nil {
		a = &akState{}
		s.aks[ak] = a
	}
	if ok {
		a.consecutive = 0
		return
	}
	a.failures++
	a.consecutive++
	if a.consecutive >= akLockThreshold {
		a.consecutive = 0
		a.lockedUntil = now.Add(akLockDuration)
	}
}

// authorization is a parsed "SDK-HMAC-SHA256 Access=…, SignedHeaders=…,
// Signature=…" header.
type authorization struct {
	access        string
	signedHeaders []string // as sent: lower case, ';'-separated on the wire
	signature     []byte
}

func parseAuthorization(v string) (authorization, error) {
	var a authorization
	rest, ok := strings.CutPrefix(v, signAlgorithm+" ")
	if !ok {
		return a, fmt.Errorf("unsupported algorithm, want %s", signAlgorithm)
	}
	var signed, sig string
	for _, part := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, fmt.Errorf("malformed Authorization element %q", part)
		}
		switch k {
		case "Access":
			a.access = val
		case "SignedHeaders":
			signed = val
		case "Signature":
			sig = val
		}
	}
	if a.access == "" || signed == "" || sig == "" {
		return a, errors.New("the Authorization header must carry Access, SignedHeaders and Signature")
	}
	a.signedHeaders = strings.Split(signed, ";")
	b, err := hex.DecodeString(sig)
	if err != nil {
		return a, errors.New("signature is not hex")
	}
	a.signature = b
	return a, nil
}

// verifySignature recomputes the signature of r. Its error explains the
// failure the way the gateway's message does, including the canonical
// request the gateway computed, with newlines shown as '|'.
func verifySignature(r *http.Request, a authorization, cred *Credential, now time.Time) error {
	date := r.Header.Get(headerSdkDate)
	t, err := time.Parse(sdkDateLayout, date)
	if err != nil {
		return fmt.Errorf("%s %q is not in the form %s", headerSdkDate, date, sdkDateLayout)
	}
	if d := now.Sub(t); d > maxClockSkew || d < -maxClockSkew {
		return fmt.Errorf("%s %s differs from the server time by more than 15 minutes", headerSdkDate, date)
	}
	if !contains(a.signedHeaders, "x-sdk-date") {
		return errors.New("x-sdk-date is not a signed header")
	}
	tok := r.Header.Get(headerSecToken)
	switch {
	case cred.SecurityToken == "" && tok != "":
		return errors.New("X-Security-Token sent with a permanent AK")
	case cred.SecurityToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(cred.SecurityToken)) != 1:
		return errors.New("X-Security-Token missing or not valid for this temporary AK")
	case cred.SecurityToken != "" && !contains(a.signedHeaders, "x-security-token"):
		return errors.New("x-security-token is not a signed header")
	}

	bodyHash := r.Header.Get(headerBodyHash)
	if bodyHash == "" {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxSignedBody))
		if err != nil {
			return fmt.Errorf("reading body: %v", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.Sum256(body)
		bodyHash = hex.EncodeToString(sum[:])
	}

	cr := canonicalRequest(r, a.signedHeaders, bodyHash)
	crSum := sha256.Sum256([]byte(cr))
	stringToSign := signAlgorithm + "\n" + date + "\n" + hex.EncodeToString(crSum[:])
	mac := hmac.New(sha256.New, []byte(cred.SK))
	mac.Write([]byte(stringToSign))
	if !hmac.Equal(mac.Sum(nil), a.signature) {
		return errors.New("canonicalRequest:" + strings.ReplaceAll(cr, "\n", "|"))
	}
	return nil
}

// canonicalRequest is METHOD \n URI \n query \n headers \n signed headers \n
// body hash, as defined by SDK-HMAC-SHA256.
func canonicalRequest(r *http.Request, signedHeaders []string, bodyHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL.EscapedPath()))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	b.WriteString(canonicalHeaders(r, signedHeaders))
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(bodyHash)
	return b.String()
}

// canonicalURI escapes each path segment and always ends with '/'.
func canonicalURI(escapedPath string) string {
	segs := strings.Split(escapedPath, "/")
	for i, seg := range segs {
		if u, err := url.PathUnescape(seg); err == nil {
			seg = u
		}
		segs[i] = escapeRFC3986(seg)
	}
	p := strings.Join(segs, "/")
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// canonicalQuery sorts the decoded parameters by key, then each key's values,
// and escapes both as key=value pairs joined by '&'. A parameter without '='
// has the empty value.
func canonicalQuery(rawQuery string) string {
	params := make(map[string][]string)
	for _, part := range strings.Split(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if u, err := url.QueryUnescape(k); err == nil {
			k = u
		}
		if u, err := url.QueryUnescape(v); err == nil {
			v = u
		}
		params[k] = append(params[k], v)
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		vs := params[k]
		sort.Strings(vs)
		for _, v := range vs {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(escapeRFC3986(k))
			b.WriteByte('=')
			b.WriteString(escapeRFC3986(v))
		}
	}
	return b.String()
}

// canonicalHeaders writes "name:value" lines for the signed headers, in the
// signed order; a header with several values gets one line per value,
// sorted. The host header is the request's Host.
func canonicalHeaders(r *http.Request, signed []string) string {
	var lines []string
	for _, name := range signed {
		name = strings.ToLower(name)
		var vals []string
		if name == "host" {
			vals = []string{r.Host}
		} else {
			vals = append(vals, r.Header.Values(name)...)
		}
		sort.Strings(vals)
		for _, v := range vals {
			lines = append(lines, name+":"+strings.TrimSpace(v))
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// escapeRFC3986 percent-encodes every byte except the RFC 3986 unreserved
// characters, with upper-case hex.
func escapeRFC3986(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if strings.EqualFold(s, v) {
			return true
		}
	}
	return false
}
