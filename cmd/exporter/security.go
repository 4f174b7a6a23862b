package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress"
)

// What leaves the process and what is printed, in one place for the
// command: secrets read from files, the one set of secrets every log line,
// report and check line is redacted of, and the insecure settings in force.

// fileVariables are the variables that may hold a secret (or a URL with a
// password in it). Each may instead be given as NAME_FILE, the path of a
// file holding the value (the *_FILE convention of official images, which
// the chart's credentials.mountAsFiles uses): one trailing newline is
// removed; setting both is an error.
var fileVariables = []string{
	"HUAWEICLOUD_SDK_AK",
	"HUAWEICLOUD_SDK_SK",
	"HUAWEICLOUD_SDK_SECURITY_TOKEN",
	"HUAWEICLOUD_SDK_PROJECT_ID",
	"HWCAUDIT_PROJECT_ID",
	"HWCAUDIT_AUTH_TOKEN",
	"HWCAUDIT_KAFKA_SASL_USERNAME",
	"HWCAUDIT_KAFKA_SASL_PASSWORD",
	"ELASTICSEARCH_URL",
	"HWCAUDIT_ELASTICSEARCH_API_KEY",
	"HWCAUDIT_ELASTICSEARCH_USERNAME",
	"HWCAUDIT_ELASTICSEARCH_PASSWORD",
	"HWCAUDIT_PUSHGATEWAY_URL",
	"AWS_ACCESS_KEY_ID",
	"AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN",
}

// processEnvSecrets are the secret variables that the Huawei Cloud and AWS
// SDKs read from the process environment themselves: a value read from
// NAME_FILE is exported to the environment before they look.
var processEnvSecrets = []string{
	"HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN", "HUAWEICLOUD_SDK_PROJECT_ID",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
}

// readSecretFiles returns the value of every secret variable given as
// NAME_FILE. The error names the variable; it never holds the value.
func readSecretFiles(lookup envconfig.Lookuper) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range fileVariables {
		path, ok := lookup.Lookup(name + "_FILE")
		if !ok || path == "" {
			continue
		}
		if v, ok := lookup.Lookup(name); ok && v != "" {
			return nil, fmt.Errorf("%s_FILE: %s is set too; set one of them", name, name)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("%s_FILE: cannot read %s: %v", name, path, err)
		}
		v := strings.TrimSuffix(string(data), "\n")
		v = strings.TrimSuffix(v, "\r")
		out[name] = v
	}
	return out, nil
}

// exportSecretFiles puts the values read from files that the SDKs read
// from the process environment into it; it runs before any credential
// provider or S3 client is built.
func exportSecretFiles(cfg *Config) error {
	for _, name := range processEnvSecrets {
		if v, ok := cfg.fileSecrets[name]; ok {
			if err := os.Setenv(name, v); err != nil {
				return fmt.Errorf("%s_FILE: %w", name, err)
			}
		}
	}
	return nil
}

// collectSecrets is every configured secret, for redaction: the Huawei
// Cloud keys and tokens, the sinks' passwords and keys (with their basic
// and API-key encodings), the AWS keys and passwords written into URLs.
// The API client adds temporary credentials as it receives them.
func collectSecrets(cfg *Config, lookup envconfig.Lookuper) *egress.Secrets {
	s := &egress.Secrets{}
	get := func(name string) string {
		if v, ok := cfg.fileSecrets[name]; ok {
			return v
		}
		v, _ := lookup.Lookup(name)
		return v
	}
	for _, name := range []string{"HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		s.Add(get(name))
	}
	s.Add(cfg.API.AuthToken)
	s.AddBasic(cfg.Kafka.SASLUsername, cfg.Kafka.SASLPassword)
	s.AddBasic(cfg.ES.Username, cfg.ES.Password)
	s.Add(cfg.ES.APIKey)
	if dec, err := base64.StdEncoding.DecodeString(cfg.ES.APIKey); err == nil {
		if _, key, ok := strings.Cut(string(dec), ":"); ok {
			s.Add(string(dec), key)
		}
	}
	urls := append([]string{cfg.PushgatewayURL, cfg.Checkpoint.URL, cfg.DeadLetter.URL}, cfg.ES.URLs...)
	for _, raw := range urls {
		if u, err := url.Parse(strings.TrimSpace(raw)); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok {
				s.AddBasic(u.User.Username(), pw)
			}
		}
	}
	return s
}

// userinfoRE matches the user information of a URL in text: scheme://
// (or its JSON-escaped scheme:\/\/) then user[:password]@.
var userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*:(?://|\\/\\/))[^/\\?#@\s"'<>]*@`)

// redactText removes every configured secret in every form, and the user
// information of every URL, from text.
func redactText(s *egress.Secrets, text string) string {
	text = s.Redact(text)
	if strings.Contains(text, `\`) {
		// A message that quotes a body with %q doubles the backslash of a
		// JSON-escaped secret ("\/" becomes "\\/") and escapes its
		// quotes. When the unquoted view holds a secret, it is printed
		// redacted instead: a little less exact, never the secret.
		un := goUnquoter.Replace(text)
		if red := s.Redact(un); red != un {
			text = red
		}
	}
	if strings.Contains(text, "@") {
		text = userinfoRE.ReplaceAllString(text, "${1}"+egress.Redacted+"@")
	}
	return text
}

var goUnquoter = strings.NewReplacer(`\\`, `\`, `\"`, `"`)

// redactingWriter redacts what is written to w. Each Write is redacted on
// its own: the command writes whole lines.
type redactingWriter struct {
	w       io.Writer
	secrets *egress.Secrets
}

func (r redactingWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, redactText(r.secrets, string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// redactingHandler redacts the message and every attribute of each log
// record (strings, errors, Stringers and any value whose printed form
// holds a secret) before w's handler sees it.
// redactingLetters stores dead letters with their reasons redacted like
// every log line: a reason quotes what an API or a sink answered.
type redactingLetters struct {
	w       pipeline.DeadLetterWriter
	secrets *egress.Secrets
}

func (r redactingLetters) Put(ctx context.Context, letters []pipeline.DeadLetter) error {
	out := make([]pipeline.DeadLetter, len(letters))
	for i, l := range letters {
		l.Reason = redactText(r.secrets, l.Reason)
		out[i] = l
	}
	return r.w.Put(ctx, out)
}

type redactingHandler struct {
	h       slog.Handler
	secrets *egress.Secrets
}

func (r redactingHandler) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r redactingHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, redactText(r.secrets, rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(r.attr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r redactingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = r.attr(a)
	}
	return redactingHandler{h: r.h.WithAttrs(out), secrets: r.secrets}
}

func (r redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{h: r.h.WithGroup(name), secrets: r.secrets}
}

func (r redactingHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, redactText(r.secrets, v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, m := range g {
			out[i] = r.attr(m)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		var s string
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, redactText(r.secrets, x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, redactText(r.secrets, x.String()))
		default:
			s = fmt.Sprint(x)
		}
		if red := redactText(r.secrets, s); red != s {
			return slog.String(a.Key, red)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// insecureSettings lists every setting in force that weakens transport
// security: the sinks' own (InsecureSettings of each sink in use and of
// the dead letters' S3 connection), plain http:// API endpoints and
// Pushgateway off loopback, and the global opt-in itself.
func insecureSettings(cfg *Config) []string {
	var out []string
	if cfg.AllowInsecure {
		out = append(out, "HWCAUDIT_ALLOW_INSECURE=true: plain http:// endpoints and SASL without TLS are accepted off loopback")
	}
	for _, e := range apiEndpoints(cfg) {
		if u, err := url.Parse(e.url); err == nil && strings.EqualFold(u.Scheme, "http") && !egress.IsLoopback(u.Host) {
			out = append(out, e.variable+" "+egress.Origin(u)+" is plain http://: credentials and audit logs cross the network unencrypted")
		}
	}
	if u, err := url.Parse(cfg.PushgatewayURL); err == nil && cfg.PushgatewayURL != "" && strings.EqualFold(u.Scheme, "http") && !egress.IsLoopback(u.Host) {
		out = append(out, "HWCAUDIT_PUSHGATEWAY_URL "+egress.Origin(u)+" is plain http://")
	}
	for _, name := range cfg.Sinks {
		if s, ok := sinkNamed(name); ok && s.insecure != nil {
			out = append(out, s.insecure(cfg)...)
		}
	}
	if s3cfg, ok, err := cfg.DeadLetter.S3Location(); err == nil && ok && !slices.Contains(cfg.Sinks, "s3") {
		for _, s := range s3cfg.InsecureSettings() {
			out = append(out, s+" (dead letters)")
		}
	}
	return out
}

// apiEndpoint is one configured Huawei Cloud API endpoint override.
type apiEndpoint struct{ variable, url string }

func apiEndpoints(cfg *Config) []apiEndpoint {
	var out []apiEndpoint
	for _, src := range sourceTable {
		if src.endpoint == nil {
			continue
		}
		if variable, url := src.endpoint(cfg); url != "" {
			out = append(out, apiEndpoint{variable, url})
		}
	}
	return out
}

// applyAllowInsecure passes the global opt-in to every sink's own.
func applyAllowInsecure(cfg *Config) {
	if !cfg.AllowInsecure {
		return
	}
	cfg.ES.AllowInsecure = true
	cfg.S3.AllowInsecure = true
	cfg.Kafka.AllowInsecure = true
	if cfg.DeadLetter.S3 != nil {
		cfg.DeadLetter.S3.AllowInsecure = true
	}
}

// validateAPIEndpoints refuses a plain http:// API endpoint off loopback
// unless HWCAUDIT_ALLOW_INSECURE is set: the IAM token or the signed
// requests and the audit logs would cross the network unencrypted. The
// same holds for a Pushgateway URL with a password in it.
func validateAPIEndpoints(cfg *Config) error {
	for _, e := range apiEndpoints(cfg) {
		if err := egress.CheckEndpoint(e.url, e.variable, "HWCAUDIT_ALLOW_INSECURE", cfg.AllowInsecure); err != nil {
			return err
		}
	}
	// A Pushgateway receives only metrics, commonly over http:// inside a
	// cluster: refused only when the URL carries a password.
	if u, err := url.Parse(cfg.PushgatewayURL); err == nil && u.User != nil {
		return egress.CheckEndpoint(cfg.PushgatewayURL, "HWCAUDIT_PUSHGATEWAY_URL", "HWCAUDIT_ALLOW_INSECURE", cfg.AllowInsecure)
	}
	return nil
}

// warnInsecure logs each insecure setting in force, once, at start.
func warnInsecure(cfg *Config, log *slog.Logger) {
	if cfg.warned {
		return
	}
	cfg.warned = true
	for _, s := range insecureSettings(cfg) {
		log.Warn("insecure setting in force", "setting", s)
	}
}
