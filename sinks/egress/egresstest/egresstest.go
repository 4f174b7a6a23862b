// Package egresstest holds what the clients' egress tests share: the
// forms in which a hostile or careless server echoes a secret, and a
// server that redirects elsewhere.
package egresstest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// SecretForms is every way a test server echoes secret: raw, JSON-escaped
// (also with "\/"), URL-encoded and base64 (padded, raw URL alphabet, and
// inside a longer encoding at the two other alignments).
func SecretForms(secret string) map[string]string {
	j, _ := json.Marshal(secret)
	return map[string]string{
		"raw":             secret,
		"json":            string(j),
		"json slashes":    strings.ReplaceAll(string(j), "/", `\/`),
		"query escaped":   url.QueryEscape(secret),
		"path escaped":    url.PathEscape(secret),
		"base64":          base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64 raw url":  base64.RawURLEncoding.EncodeToString([]byte(secret)),
		"base64 offset 1": base64.StdEncoding.EncodeToString([]byte("x" + secret + "tail")),
		"base64 offset 2": base64.StdEncoding.EncodeToString([]byte("xy" + secret + "tail")),
	}
}

// Redirector starts two servers: the one whose URL it returns redirects
// every request with code to the other, which records the headers it
// receives and answers with answer (nil: an empty 200). received returns
// what the other server got so far: a client that keeps its credentials
// on its endpoint sends it nothing.
func Redirector(t testing.TB, code int, answer http.HandlerFunc) (url string, received func() []http.Header) {
	t.Helper()
	var mu sync.Mutex
	var got []http.Header
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		if answer != nil {
			answer(w, r)
		}
	}))
	t.Cleanup(other.Close)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), code)
	}))
	t.Cleanup(front.Close)
	return front.URL, func() []http.Header {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}
