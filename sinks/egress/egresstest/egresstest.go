// Package egresstest holds what the sinks' secret-leak tests share: the
// forms in which a hostile or careless server echoes a secret.
package egresstest

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
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
