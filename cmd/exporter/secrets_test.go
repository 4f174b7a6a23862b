package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hwcaudit/hwcaudit/sinks/essink/estest"
	"github.com/hwcaudit/hwcaudit/sinks/s3sink/s3test"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/swr"
)

// Distinctive secrets: each is long enough that a 16-byte window of it can
// only come from the secret itself, and holds '+' and '/' so that its
// base64, URL and JSON forms differ from the raw value.
const (
	leakAK        = "HWCPROBEAKNOTSECRET0" // an access key id is not secret: gateways quote it
	leakSK        = "SkLeakProbe+7Vq/9XzR2mW4tN8pK3jH6c"
	leakWrongSK   = "WrongSkLeakProbe+Qe5/Rt8Yu1Io4Pa7Sd"
	leakSecToken  = "SecTokLeakProbe-gQ4fV7bN2xC9mZ1kL8pR5tW3yH6jD0s+/x"
	leakIAMToken  = "IamTokLeakProbe-MIIEd8Fq2Zr/Wk5Tn7Yb3Lc9Vh1Xs4Pg6Mj0+"
	leakBadIAM    = "BadIamTokLeakProbe-Zx8Cv5Bn2Mq7Wl4Ek1Rj9Th6Yg3"
	leakKafkaUser = "probe-kafka-user"
	leakKafkaPass = "KafkaPassLeakProbe!n4Qz7Wr2Xb9Mk/+s"
	leakESUser    = "probe-es-user"
	leakESPass    = "EsPassLeakProbe#t6Yh3Vd8Jc1Ns5/+Qa"
	leakESAPIKey  = "EsApiKeyLeakProbe+Ud3Gh6Jk9Lz2Xc5/Vb"
	leakESURLPass = "EsUrlPassLeakProbe2Gk7Lm4Np8Qr"
	leakS3Secret  = "S3SecretLeakProbe/q8Rm2Tz5Wx+Kv7Nb4Pj"
	leakS3Session = "S3SessionLeakProbe/Hy6Gt3Fr9De2Ws5+Qa"
	leakPushPass  = "PushPassLeakProbe9Hd3Fs6Jk1Lq4"
	leakS3Key     = "S3KEYLEAKPROBE7QW2ER"
)

// secret is one value that must never be written anywhere, with the user
// it is paired with for HTTP basic auth, if any.
type secret struct {
	name, value, user string
}

var leakSecrets = []secret{
	// The AK too: it is not a secret on its own, but it is half of the
	// pair and names the account; the exporter redacts it like the rest.
	{"HUAWEICLOUD_SDK_AK", leakAK, ""},
	{"HUAWEICLOUD_SDK_SK", leakSK, ""},
	{"HUAWEICLOUD_SDK_SK (wrong)", leakWrongSK, ""},
	{"HUAWEICLOUD_SDK_SECURITY_TOKEN", leakSecToken, ""},
	{"HWCAUDIT_AUTH_TOKEN", leakIAMToken, ""},
	{"HWCAUDIT_AUTH_TOKEN (refused)", leakBadIAM, ""},
	{"HWCAUDIT_KAFKA_SASL_PASSWORD", leakKafkaPass, leakKafkaUser},
	{"HWCAUDIT_ELASTICSEARCH_PASSWORD", leakESPass, leakESUser},
	{"HWCAUDIT_ELASTICSEARCH_API_KEY", leakESAPIKey, ""},
	{"ELASTICSEARCH_URL password", leakESURLPass, leakESUser},
	{"AWS_SECRET_ACCESS_KEY", leakS3Secret, ""},
	{"AWS_ACCESS_KEY_ID", leakS3Key, ""},
	{"AWS_SESSION_TOKEN", leakS3Session, ""},
	{"HWCAUDIT_PUSHGATEWAY_URL password", leakPushPass, "probe-push-user"},
}

// leakForms are the ways a secret can show up: as is, and in the encodings
// a client or a careless error message produces.
func leakForms(s secret) map[string]string {
	v := s.value
	forms := map[string]string{
		"raw":              v,
		"base64":           base64.StdEncoding.EncodeToString([]byte(v)),
		"base64 unpadded":  base64.RawStdEncoding.EncodeToString([]byte(v)),
		"base64url":        base64.RawURLEncoding.EncodeToString([]byte(v)),
		"hex":              hex.EncodeToString([]byte(v)),
		"query-escaped":    url.QueryEscape(v),
		"path-escaped":     url.PathEscape(v),
		"userinfo-escaped": url.UserPassword("u", v).String()[2:],
		"Go-quoted":        strconv.Quote(v)[1 : len(strconv.Quote(v))-1],
	}
	if b, err := json.Marshal(v); err == nil {
		forms["JSON"] = string(b[1 : len(b)-1])
	}
	if s.user != "" {
		forms["basic auth"] = base64.StdEncoding.EncodeToString([]byte(s.user + ":" + v))
	}
	return forms
}

// findLeaks returns a description of every secret form, or 16-byte window
// of a raw secret (a truncated secret is still a leak), found in text.
func findLeaks(where, text string) []string {
	var found []string
	for _, s := range leakSecrets {
		for form, v := range leakForms(s) {
			if strings.Contains(text, v) {
				found = append(found, where+": "+s.name+" ("+form+")")
			}
		}
		const window = 16
		for i := 0; i+window <= len(s.value); i++ {
			if strings.Contains(text, s.value[i:i+window]) {
				found = append(found, where+": part of "+s.name+" ("+s.value[i:i+window]+")")
				break
			}
		}
	}
	return found
}

// TestFindLeaks proves the detector itself: a check that can never fail
// would pass however much the exporter leaked.
func TestFindLeaks(t *testing.T) {
	t.Parallel()
	es := leakSecrets[6]
	tests := []struct {
		name, text string
		leak       bool
	}{
		{"clean", `{"level":"ERROR","msg":"stream failed","error":"HTTP 401 [REDACTED]"}`, false},
		{"raw", "token=" + leakSecToken, true},
		{"truncated", "canonicalRequest:x-security-token:" + leakSecToken[:20] + "…", true},
		{"base64", base64.StdEncoding.EncodeToString([]byte(leakSK)), true},
		{"basic auth", "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(es.user+":"+es.value)), true},
		{"query-escaped", "?password=" + url.QueryEscape(leakKafkaPass), true},
		{"JSON-escaped", `"` + strings.ReplaceAll(leakESPass, "/", `\/`) + `"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := findLeaks("text", tt.text); (len(got) > 0) != tt.leak {
				t.Errorf("findLeaks(%q) = %v, want leak %v", tt.text, got, tt.leak)
			}
		})
	}
}

// checkNoLeaks fails the test if any secret appears in the run's output or
// in any file under the harness's directory: output files, dead letters,
// checkpoints.
func checkNoLeaks(t *testing.T, h *harness, r result) {
	t.Helper()
	leaks := append(findLeaks("stdout", r.stdout), findLeaks("stderr", r.stderr)...)
	err := filepath.WalkDir(h.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(h.dir, path)
		leaks = append(leaks, findLeaks(rel, string(data))...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(leaks) > 0 {
		t.Errorf("secrets leaked:\n%s\n%v", strings.Join(leaks, "\n"), r)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// leakHarness is a harness whose simulator knows leakAK with leakSK and
// leakSecToken (temporary credentials) and the IAM token leakIAMToken, and
// whose exporter signs with them, logging at debug level. A fraction of
// the records is malformed, so that dead letters are written too.
func leakHarness(t *testing.T) *harness {
	t.Helper()
	cfg := simConfig(77, 20)
	cfg.Credentials = []simulator.Credential{{AK: leakAK, SK: leakSK, SecurityToken: leakSecToken}}
	cfg.Tokens = []simulator.Token{{Value: leakIAMToken}}
	cfg.Faults.MalformedRate = 0.1
	h := newHarness(t, cfg)
	h.env["HUAWEICLOUD_SDK_AK"] = leakAK
	h.env["HUAWEICLOUD_SDK_SK"] = leakSK
	h.env["HUAWEICLOUD_SDK_SECURITY_TOKEN"] = leakSecToken
	h.env["HWCAUDIT_LOG_LEVEL"] = "debug"
	h.env["HWCAUDIT_RETRY_MAX_ELAPSED"] = "1s"
	return h
}

// mustContain fails unless the output names every want: proof that the
// harness captured what the run said, so that a clean scan means something.
func mustContain(t *testing.T, r result, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(r.stdout+r.stderr, w) {
			t.Errorf("output does not mention %q:\n%v", w, r)
		}
	}
}

// TestSecretsNeverLeak runs the exporter with distinctive credentials for
// every source and sink, through successes and every kind of failure, and
// scans everything it wrote for those credentials.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	stream := "swr/" + testInstances[0] + "/pull"

	t.Run("signed export to every sink", func(t *testing.T) {
		t.Parallel()
		kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
			kfake.Superuser("SCRAM-SHA-256", leakKafkaUser, leakKafkaPass), kfake.SeedTopics(1, swr.Dataset))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(kc.Close)
		es := estest.New(t)
		es.RequireBasic(leakESUser, leakESPass)
		h := leakHarness(t)
		h.env["HWCAUDIT_SINKS"] = "file,kafka,elasticsearch"
		h.env["HWCAUDIT_KAFKA_BROKERS"] = strings.Join(kc.ListenAddrs(), ",")
		h.env["HWCAUDIT_KAFKA_SASL_MECHANISM"] = "SCRAM-SHA-256"
		h.env["HWCAUDIT_KAFKA_SASL_USERNAME"] = leakKafkaUser
		h.env["HWCAUDIT_KAFKA_SASL_PASSWORD"] = leakKafkaPass
		h.env["ELASTICSEARCH_URL"] = es.URL
		h.env["HWCAUDIT_ELASTICSEARCH_USERNAME"] = leakESUser
		h.env["HWCAUDIT_ELASTICSEARCH_PASSWORD"] = leakESPass
		r := h.mustRun(exitOK, "run")
		mustContain(t, r, stream, `"level":"DEBUG"`)
		if out := readOutput(t, h.datasetDir(), false); out.lines == 0 {
			t.Error("the run wrote no events: nothing was scanned")
		}
		if entries, _ := os.ReadDir(h.deadLetterDir()); len(entries) == 0 {
			t.Error("the run wrote no dead letters: nothing was scanned")
		}
		checkNoLeaks(t, h, r)
		r = h.mustRun(exitOK, "check")
		mustContain(t, r, "ok    source "+stream, "ok    sink kafka", "ok    sink elasticsearch")
		checkNoLeaks(t, h, r)
	})

	t.Run("wrong secret key with a security token", func(t *testing.T) {
		t.Parallel()
		h := leakHarness(t)
		h.env["HUAWEICLOUD_SDK_SK"] = leakWrongSK
		for _, cmd := range []string{"run", "check"} {
			r := h.mustRun(exitFailed, cmd)
			// The gateway quoted the canonical request, security token
			// included; the exporter must have blanked it out.
			mustContain(t, r, stream, "canonicalRequest", "[REDACTED]")
			checkNoLeaks(t, h, r)
		}
	})

	t.Run("IAM token", func(t *testing.T) {
		t.Parallel()
		h := leakHarness(t)
		h.env["HWCAUDIT_AUTH_TOKEN"] = leakIAMToken
		r := h.mustRun(exitOK, "run")
		mustContain(t, r, stream)
		checkNoLeaks(t, h, r)

		h.env["HWCAUDIT_AUTH_TOKEN"] = leakBadIAM
		for _, cmd := range []string{"run", "check"} {
			r := h.mustRun(exitFailed, cmd)
			mustContain(t, r, stream, "HTTP 401")
			checkNoLeaks(t, h, r)
		}
	})

	t.Run("unreachable sinks and pushgateway", func(t *testing.T) {
		t.Parallel()
		h := leakHarness(t)
		kafkaAddr, esAddr, pushAddr := closedAddr(t), closedAddr(t), closedAddr(t)
		h.env["HWCAUDIT_SINKS"] = "file,kafka,elasticsearch"
		h.env["HWCAUDIT_KAFKA_BROKERS"] = kafkaAddr
		h.env["HWCAUDIT_KAFKA_WRITE_TIMEOUT"] = "500ms"
		h.env["HWCAUDIT_KAFKA_SASL_MECHANISM"] = "PLAIN"
		h.env["HWCAUDIT_KAFKA_SASL_USERNAME"] = leakKafkaUser
		h.env["HWCAUDIT_KAFKA_SASL_PASSWORD"] = leakKafkaPass
		h.env["ELASTICSEARCH_URL"] = "http://" + esAddr
		h.env["HWCAUDIT_ELASTICSEARCH_USERNAME"] = leakESUser
		h.env["HWCAUDIT_ELASTICSEARCH_PASSWORD"] = leakESPass
		h.env["HWCAUDIT_ELASTICSEARCH_TIMEOUT"] = "1s"
		h.env["HWCAUDIT_PUSHGATEWAY_URL"] = "http://probe-push-user:" + leakPushPass + "@" + pushAddr
		r := h.mustRun(exitFailed, "run")
		mustContain(t, r, stream, kafkaAddr, "cannot push metrics")
		checkNoLeaks(t, h, r)
		r = h.mustRun(exitFailed, "check")
		mustContain(t, r, "FAIL  sink kafka", "FAIL  sink elasticsearch")
		checkNoLeaks(t, h, r)
	})

	t.Run("Pushgateway refuses the credentials", func(t *testing.T) {
		t.Parallel()
		var gotAuth atomic.Bool
		var pushedMu sync.Mutex
		var pushed []byte
		pg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The credentials of the URL still go out, as basic auth.
			if u, p, ok := r.BasicAuth(); ok && u == "probe-push-user" && p == leakPushPass {
				gotAuth.Store(true)
			}
			// The metrics themselves are written output too.
			body, _ := io.ReadAll(r.Body)
			pushedMu.Lock()
			pushed = append(pushed, body...)
			pushedMu.Unlock()
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		}))
		t.Cleanup(pg.Close)
		h := leakHarness(t)
		h.env["HWCAUDIT_PUSHGATEWAY_URL"] = "http://probe-push-user:" + leakPushPass + "@" + strings.TrimPrefix(pg.URL, "http://")
		r := h.mustRun(exitOK, "run")
		mustContain(t, r, stream, "cannot push metrics", "401")
		checkNoLeaks(t, h, r)
		pushedMu.Lock()
		if leaks := findLeaks("pushed metrics", string(pushed)); len(leaks) > 0 || len(pushed) == 0 {
			t.Errorf("pushed %d bytes of metrics; leaks: %v", len(pushed), leaks)
		}
		pushedMu.Unlock()
		if !gotAuth.Load() {
			t.Error("the Pushgateway never received the URL's credentials as basic auth")
		}
	})

	t.Run("Elasticsearch refuses the credentials", func(t *testing.T) {
		t.Parallel()
		es := estest.New(t)
		es.RequireAPIKey("the-right-key")
		h := leakHarness(t)
		h.env["HWCAUDIT_SINKS"] = "elasticsearch"
		h.env["ELASTICSEARCH_URL"] = es.URL
		h.env["HWCAUDIT_ELASTICSEARCH_API_KEY"] = leakESAPIKey
		for _, cmd := range []string{"run", "check"} {
			r := h.mustRun(exitFailed, cmd)
			mustContain(t, r, "elasticsearch", "401")
			checkNoLeaks(t, h, r)
		}
		// Credentials in the URL itself, the other way clients pass them.
		delete(h.env, "HWCAUDIT_ELASTICSEARCH_API_KEY")
		h.env["ELASTICSEARCH_URL"] = "http://" + leakESUser + ":" + url.QueryEscape(leakESURLPass) + "@" + strings.TrimPrefix(es.URL, "http://")
		for _, cmd := range []string{"run", "check"} {
			r := h.mustRun(exitFailed, cmd)
			mustContain(t, r, "elasticsearch", "401")
			checkNoLeaks(t, h, r)
		}
		h.env["ELASTICSEARCH_URL"] = "http://" + leakESUser + ":" + url.QueryEscape(leakESURLPass) + "@" + closedAddr(t)
		r := h.mustRun(exitFailed, "check")
		mustContain(t, r, "FAIL  sink elasticsearch")
		checkNoLeaks(t, h, r)
	})

	t.Run("S3 refuses the credentials", func(t *testing.T) {
		t.Parallel()
		srv := s3test.Start(t)
		bucket := srv.Bucket(t)
		h := leakHarness(t)
		useS3(h, srv, bucket)
		h.env["HWCAUDIT_SINKS"] = "file,s3"
		h.env["HWCAUDIT_CHECKPOINT_URL"] = "file://./state"
		h.env["AWS_ACCESS_KEY_ID"] = leakS3Key
		h.env["AWS_SECRET_ACCESS_KEY"] = leakS3Secret
		h.env["AWS_SESSION_TOKEN"] = leakS3Session
		for _, cmd := range []string{"run", "check"} {
			r := h.mustRun(exitFailed, cmd)
			mustContain(t, r, "s3")
			checkNoLeaks(t, h, r)
		}
		// The checkpoint store on S3 with the same refused credentials.
		useS3(h, srv, bucket)
		h.env["AWS_SECRET_ACCESS_KEY"] = leakS3Secret
		h.env["AWS_SESSION_TOKEN"] = leakS3Session
		h.env["HWCAUDIT_SINKS"] = "file"
		for _, cmd := range []string{"run", "check"} {
			r := h.mustRun(exitFailed, cmd)
			mustContain(t, r, "checkpoint")
			checkNoLeaks(t, h, r)
		}
	})

	t.Run("hostile API echoes the credentials", func(t *testing.T) {
		t.Parallel()
		// A second server that records what reaches it: a redirect must
		// bring it no credential.
		var stolen atomic.Int32
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, k := range []string{"X-Auth-Token", "X-Security-Token", "Authorization"} {
				if r.Header.Get(k) != "" {
					stolen.Add(1)
				}
			}
		}))
		t.Cleanup(other.Close)
		// Each operation's stream meets another failure: a 200 HTML page
		// quoting the credentials, a 400 quoting them JSON-escaped (with
		// "\/"), URL-encoded and base64, a redirect to the other server.
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			echo := []string{r.Header.Get("X-Auth-Token"), r.Header.Get("X-Security-Token"), r.Header.Get("Authorization")}
			var forms []string
			for _, e := range echo {
				if e == "" {
					continue
				}
				j, _ := json.Marshal(e)
				forms = append(forms, e, strings.ReplaceAll(string(j), "/", `\/`), url.QueryEscape(e), base64.StdEncoding.EncodeToString([]byte(e)))
			}
			switch r.URL.Query().Get("operation") {
			case "pull":
				w.Header().Set("Content-Type", "text/html")
				fmt.Fprintf(w, "<html>%s</html>", strings.Join(forms, " "))
			case "create":
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"detail":"%s"}`, strings.Join(forms[1:], " "))
			default:
				http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusFound)
			}
		}))
		t.Cleanup(api.Close)
		for _, mode := range []string{"AK/SK with a security token", "IAM token"} {
			h := leakHarness(t)
			h.env["HWCAUDIT_SWR_ENDPOINT"] = api.URL
			if mode == "IAM token" {
				h.env["HWCAUDIT_AUTH_TOKEN"] = leakIAMToken
			}
			r := h.mustRun(exitFailed, "run")
			mustContain(t, r, "body starts", "HTTP 400", "redirect refused", "[REDACTED]")
			checkNoLeaks(t, h, r)
			// check stops at the first answer without reading it.
			r = h.mustRun(exitFailed, "check")
			mustContain(t, r, "HTTP 400", "redirect refused", "[REDACTED]")
			checkNoLeaks(t, h, r)
		}
		if n := stolen.Load(); n != 0 {
			t.Errorf("the redirect target received %d credential header(s)", n)
		}
	})

	t.Run("secrets from files", func(t *testing.T) {
		t.Parallel()
		// The files live outside the scanned directory; the values must
		// not show anywhere the exporter writes, on success or failure.
		dir := t.TempDir()
		file := func(name, v string) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		h := leakHarness(t)
		for name, v := range map[string]string{"HUAWEICLOUD_SDK_AK": leakAK, "HUAWEICLOUD_SDK_SK": leakSK, "HUAWEICLOUD_SDK_SECURITY_TOKEN": leakSecToken} {
			delete(h.env, name)
			h.env[name+"_FILE"] = file(name, v)
		}
		r := h.mustRun(exitOK, "run")
		mustContain(t, r, stream)
		checkNoLeaks(t, h, r)
		h.env["HUAWEICLOUD_SDK_SK_FILE"] = file("wrong", leakWrongSK)
		r = h.mustRun(exitFailed, "check")
		mustContain(t, r, "canonicalRequest", "[REDACTED]")
		checkNoLeaks(t, h, r)
	})

	t.Run("configuration errors", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name, variable string
			env            map[string]string
		}{
			{"API key and password", "HWCAUDIT_ELASTICSEARCH_API_KEY", map[string]string{
				"HWCAUDIT_SINKS":                  "elasticsearch",
				"ELASTICSEARCH_URL":               "http://127.0.0.1:9",
				"HWCAUDIT_ELASTICSEARCH_API_KEY":  leakESAPIKey,
				"HWCAUDIT_ELASTICSEARCH_USERNAME": leakESUser,
				"HWCAUDIT_ELASTICSEARCH_PASSWORD": leakESPass,
			}},
			{"password without user", "HWCAUDIT_ELASTICSEARCH_USERNAME", map[string]string{
				"HWCAUDIT_SINKS":                  "elasticsearch",
				"ELASTICSEARCH_URL":               "http://127.0.0.1:9",
				"HWCAUDIT_ELASTICSEARCH_PASSWORD": leakESPass,
			}},
			{"URL with credentials but no host", "ELASTICSEARCH_URL", map[string]string{
				"HWCAUDIT_SINKS":    "elasticsearch",
				"ELASTICSEARCH_URL": "ftp://" + leakESUser + ":" + leakESURLPass + "@",
			}},
			{"unknown SASL mechanism", "HWCAUDIT_KAFKA_SASL_MECHANISM", map[string]string{
				"HWCAUDIT_SINKS":                "kafka",
				"HWCAUDIT_KAFKA_BROKERS":        "127.0.0.1:9",
				"HWCAUDIT_KAFKA_SASL_MECHANISM": "BOGUS",
				"HWCAUDIT_KAFKA_SASL_USERNAME":  leakKafkaUser,
				"HWCAUDIT_KAFKA_SASL_PASSWORD":  leakKafkaPass,
			}},
			{"SASL password without mechanism", "HWCAUDIT_KAFKA_SASL_MECHANISM", map[string]string{
				"HWCAUDIT_SINKS":               "kafka",
				"HWCAUDIT_KAFKA_BROKERS":       "127.0.0.1:9",
				"HWCAUDIT_KAFKA_SASL_PASSWORD": leakKafkaPass,
			}},
			{"bad value beside a token", "HWCAUDIT_MAX_RPS", map[string]string{
				"HWCAUDIT_AUTH_TOKEN": leakIAMToken,
				"HWCAUDIT_MAX_RPS":    "fast",
			}},
			{"bad log level", "HWCAUDIT_LOG_LEVEL", map[string]string{
				"HWCAUDIT_LOG_LEVEL": "verbose",
			}},
			{"no credentials found", "HWCAUDIT_CREDENTIALS", map[string]string{
				"HUAWEICLOUD_SDK_AK": "",
			}},
		}
		h := leakHarness(t)
		base := h.env
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h.t = t
				h.env = make(map[string]string, len(base))
				for k, v := range base {
					h.env[k] = v
				}
				for k, v := range tt.env {
					h.env[k] = v
				}
				for _, cmd := range []string{"run", "check"} {
					r := h.run(cmd)
					if tt.variable == "HWCAUDIT_CREDENTIALS" && cmd == "check" {
						// check reports missing credentials as a failed check.
						if r.code != exitFailed && r.code != exitUsage {
							t.Errorf("check: want exit 1 or 2, got\n%v", r)
						}
					} else if r.code != exitUsage {
						t.Errorf("%s: want exit %d, got\n%v", cmd, exitUsage, r)
					}
					mustContain(t, r, tt.variable)
					checkNoLeaks(t, h, r)
				}
			})
		}
	})
}
