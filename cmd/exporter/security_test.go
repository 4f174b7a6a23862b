package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/sinks/egress/egresstest"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
)

// loadEnv loads validEnv with changes (a "" value unsets the variable).
func loadEnv(t *testing.T, changes map[string]string) (*Config, error) {
	t.Helper()
	env := validEnv()
	maps.Copy(env, changes)
	for k, v := range env {
		if v == "" {
			delete(env, k)
		}
	}
	return loadConfig(t.Context(), envconfig.MapLookuper(env), time.Now())
}

// TestConfigIDsValidated: ids from configuration have the shapes the
// documents give (TaurusDB: 36 letters or digits ending in in07; project:
// 32 letters or digits; Artifact tenant: 8 to 32 letters or digits) or, for
// SWR and DBSS instances and Artifact repositories, letters, digits, '-'
// and '_' only; nothing else, "..", "/" or "%2F" above all, reaches a
// signed path. The message names the variable.
func TestConfigIDsValidated(t *testing.T) {
	t.Parallel()
	const taurus = "5e2b7c9a1d3f4e6b8a0c2d4f6e8a0b1cin07"
	artifact := map[string]string{"HWCAUDIT_ARTIFACT_TENANT_ID": simulator.DemoArtifactTenant, "HWCAUDIT_ARTIFACT_ENDPOINT": "http://127.0.0.1:1"}
	tests := []struct {
		name, variable string
		env            map[string]string
	}{
		{"SWR dot-dot", "HWCAUDIT_SWR_INSTANCES", map[string]string{"HWCAUDIT_SWR_INSTANCES": ".."}},
		{"SWR climbs", "HWCAUDIT_SWR_INSTANCES", map[string]string{"HWCAUDIT_SWR_INSTANCES": "..%2F..%2Fv3"}},
		{"SWR dot", "HWCAUDIT_SWR_INSTANCES", map[string]string{"HWCAUDIT_SWR_INSTANCES": "."}},
		{"SWR backslash", "HWCAUDIT_SWR_INSTANCES", map[string]string{"HWCAUDIT_SWR_INSTANCES": `a\..\b`}},
		{"TaurusDB short", "HWCAUDIT_GAUSSDB_INSTANCES", map[string]string{"HWCAUDIT_GAUSSDB_INSTANCES": "abc123in07"}},
		{"TaurusDB wrong suffix", "HWCAUDIT_GAUSSDB_INSTANCES", map[string]string{"HWCAUDIT_GAUSSDB_INSTANCES": taurus[:32] + "in01"}},
		{"TaurusDB dot-dot", "HWCAUDIT_GAUSSDB_INSTANCES", map[string]string{"HWCAUDIT_GAUSSDB_INSTANCES": "../" + taurus[3:]}},
		{"DBSS dot-dot", "HWCAUDIT_DBSS_INSTANCES", map[string]string{"HWCAUDIT_DBSS_INSTANCES": ".."}},
		{"DBSS slash", "HWCAUDIT_DBSS_INSTANCES", map[string]string{"HWCAUDIT_DBSS_INSTANCES": "a/b"}},
		{"Artifact repo dot-dot", "HWCAUDIT_ARTIFACT_REPOS", mapWith(artifact, "HWCAUDIT_ARTIFACT_REPOS", "file/..")},
		{"Artifact repo space", "HWCAUDIT_ARTIFACT_REPOS", mapWith(artifact, "HWCAUDIT_ARTIFACT_REPOS", "file/a b")},
		{"Artifact tenant dot-dot", "HWCAUDIT_ARTIFACT_TENANT_ID", mapWith(mapWith(artifact, "HWCAUDIT_ARTIFACT_REPOS", "file/r1"), "HWCAUDIT_ARTIFACT_TENANT_ID", "..%2F..%2F")},
		{"project short", "HWCAUDIT_PROJECT_ID", map[string]string{"HUAWEICLOUD_SDK_PROJECT_ID": "p1"}},
		{"project dot-dot", "HWCAUDIT_PROJECT_ID", map[string]string{"HWCAUDIT_PROJECT_ID": "../" + simulator.DemoProjectID[3:]}},
		{"project 33", "HWCAUDIT_PROJECT_ID", map[string]string{"HWCAUDIT_PROJECT_ID": simulator.DemoProjectID + "0"}},
	}
	for _, tt := range tests {
		_, err := loadEnv(t, tt.env)
		if err == nil || !strings.HasPrefix(err.Error(), tt.variable+":") {
			t.Errorf("%s: got %v, want an error naming %s", tt.name, err, tt.variable)
		}
	}

	// The ids the tests, the demo and the documents' examples use are valid.
	demo := simulator.DemoConfig(time.Now())
	var repos []string
	for _, r := range demo.Artifact.Repos {
		repos = append(repos, r.Module+"/"+r.Repo)
	}
	good := map[string]string{
		"HWCAUDIT_SWR_INSTANCES":      strings.Join(append(slices.Clone(testInstances), demo.SWR.Instances...), ","),
		"HWCAUDIT_GAUSSDB_INSTANCES":  strings.Join(append([]string{testTaurusDBInstance, hostileTaurus}, demo.TaurusDB.Instances...), ","),
		"HWCAUDIT_DBSS_INSTANCES":     strings.Join(append([]string{testDBSSInstance, hostileDBSS}, demo.DBSS.Instances...), ","),
		"HWCAUDIT_ARTIFACT_REPOS":     strings.Join(append(repos, "file/"+testArtifactRepo, "file/xx-xxxxx-x_5a775fdcb14f4431b6c0015618140bc3_maven_1_108"), ","),
		"HWCAUDIT_ARTIFACT_TENANT_ID": simulator.DemoArtifactTenant,
		"HWCAUDIT_ARTIFACT_ENDPOINT":  "http://127.0.0.1:1",
		"HWCAUDIT_GAUSSDB_ENDPOINT":   "http://127.0.0.1:1",
		"HWCAUDIT_DBSS_ENDPOINT":      "http://127.0.0.1:1",
		"HWCAUDIT_PROJECT_ID":         demo.ProjectID,
	}
	if _, err := loadEnv(t, good); err != nil {
		t.Errorf("the tests' and the demo's ids are refused: %v", err)
	}
}

func mapWith(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	out[k] = v
	return out
}

// TestAllowInsecure: a plain http:// API endpoint off loopback is refused
// naming HWCAUDIT_ALLOW_INSECURE (loopback stays allowed); the one opt-in
// accepts it and sets every sink's own opt-in; the settings in force are
// listed for the start-up warning and check.
func TestAllowInsecure(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"HWCAUDIT_SWR_ENDPOINT", "HWCAUDIT_DBSS_ENDPOINT", "HWCAUDIT_GAUSSDB_ENDPOINT", "HWCAUDIT_ARTIFACT_ENDPOINT"} {
		env := map[string]string{v: "http://api.example.com", "HWCAUDIT_DBSS_INSTANCES": testDBSSInstance,
			"HWCAUDIT_GAUSSDB_INSTANCES": testTaurusDBInstance, "HWCAUDIT_ARTIFACT_REPOS": "file/" + testArtifactRepo,
			"HWCAUDIT_ARTIFACT_TENANT_ID": simulator.DemoArtifactTenant}
		_, err := loadEnv(t, env)
		if err == nil || !strings.HasPrefix(err.Error(), v+":") || !strings.Contains(err.Error(), "HWCAUDIT_ALLOW_INSECURE") {
			t.Errorf("%s=http://api.example.com: %v, want a refusal naming it and HWCAUDIT_ALLOW_INSECURE", v, err)
		}
		env["HWCAUDIT_ALLOW_INSECURE"] = "true"
		cfg, err := loadEnv(t, env)
		if err != nil {
			t.Fatalf("with HWCAUDIT_ALLOW_INSECURE: %v", err)
		}
		if got := strings.Join(insecureSettings(cfg), "\n"); !strings.Contains(got, v+" http://api.example.com") {
			t.Errorf("insecure settings do not list %s:\n%s", v, got)
		}
	}
	if _, err := loadEnv(t, map[string]string{"HWCAUDIT_SWR_ENDPOINT": "http://[::1]:8080"}); err != nil {
		t.Errorf("loopback http: %v", err)
	}
	if _, err := loadEnv(t, map[string]string{"HWCAUDIT_PUSHGATEWAY_URL": "http://u:pw@pushgateway.example:9091"}); err == nil ||
		!strings.Contains(err.Error(), "HWCAUDIT_ALLOW_INSECURE") || strings.Contains(err.Error(), "pw") {
		t.Errorf("a Pushgateway password over http: %v", err)
	}

	// Every sink's opt-in follows the global one.
	env := map[string]string{
		"HWCAUDIT_SINKS":                "elasticsearch,kafka,s3",
		"ELASTICSEARCH_URL":             "http://es.example:9200",
		"HWCAUDIT_KAFKA_BROKERS":        "kafka.example:9092",
		"HWCAUDIT_KAFKA_SASL_MECHANISM": "PLAIN",
		"HWCAUDIT_KAFKA_SASL_USERNAME":  "u",
		"HWCAUDIT_KAFKA_SASL_PASSWORD":  "p",
		"HWCAUDIT_S3_BUCKET":            "audit",
		"HWCAUDIT_S3_ENDPOINT":          "http://obs.example",
		"HWCAUDIT_DEADLETTER":           "s3://letters/dl",
	}
	if _, err := loadEnv(t, env); err == nil || !strings.Contains(err.Error(), "ALLOW_INSECURE") {
		t.Errorf("plain-text sinks accepted without an opt-in: %v", err)
	}
	env["HWCAUDIT_ALLOW_INSECURE"] = "true"
	cfg, err := loadEnv(t, env)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.ES.AllowInsecure || !cfg.Kafka.AllowInsecure || !cfg.S3.AllowInsecure || cfg.DeadLetter.S3 == nil || !cfg.DeadLetter.S3.AllowInsecure {
		t.Errorf("the sinks' opt-ins are not all set: ES %t Kafka %t S3 %t dead letters %+v",
			cfg.ES.AllowInsecure, cfg.Kafka.AllowInsecure, cfg.S3.AllowInsecure, cfg.DeadLetter.S3)
	}
	got := strings.Join(insecureSettings(cfg), "\n")
	for _, want := range []string{"HWCAUDIT_ALLOW_INSECURE=true", "ELASTICSEARCH_URL node http://es.example:9200", "HWCAUDIT_KAFKA_SASL_MECHANISM=PLAIN", "http://obs.example"} {
		if !strings.Contains(got, want) {
			t.Errorf("insecure settings lack %q:\n%s", want, got)
		}
	}
}

// TestInsecureSettingsShown: run warns at start of every insecure setting
// in force, check prints them.
func TestInsecureSettingsShown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, simConfig(3, 5))
	h.env["HWCAUDIT_ALLOW_INSECURE"] = "true"
	r := h.mustRun(exitOK, "check")
	if !strings.Contains(r.stdout, "warn  insecure: HWCAUDIT_ALLOW_INSECURE=true") {
		t.Errorf("check does not show the insecure setting:\n%v", r)
	}
	r = h.mustRun(exitOK, "run")
	if !regexp.MustCompile(`"level":"WARN","msg":"insecure setting in force","setting":"HWCAUDIT_ALLOW_INSECURE=true`).MatchString(r.stderr) {
		t.Errorf("run does not warn of the insecure setting:\n%v", r)
	}
}

// TestSecretFiles: every secret variable can be NAME_FILE (one trailing
// newline removed); both set, or a file that cannot be read, is an error
// naming the variable; the SDKs' own variables reach the SDKs (the run
// signs with a secret key read from a file).
func TestSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := loadEnv(t, map[string]string{
		"HWCAUDIT_AUTH_TOKEN_FILE":             write("token", "tok-from-file\n"),
		"HWCAUDIT_SINKS":                       "elasticsearch",
		"ELASTICSEARCH_URL_FILE":               write("url", "https://es.example:9200\n"),
		"HWCAUDIT_ELASTICSEARCH_API_KEY_FILE":  write("key", "a2V5\n\n"),
		"HUAWEICLOUD_SDK_PROJECT_ID":           "",
		"HUAWEICLOUD_SDK_PROJECT_ID_FILE":      write("project", simulator.DemoProjectID+"\n"),
		"HWCAUDIT_KAFKA_SASL_PASSWORD_FILE":    write("kafka", "kp"),
		"HWCAUDIT_ELASTICSEARCH_PASSWORD_FILE": "",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.API.AuthToken != "tok-from-file" || cfg.ES.URLs[0] != "https://es.example:9200" || cfg.ES.APIKey != "a2V5\n" ||
		cfg.API.ProjectID != simulator.DemoProjectID || cfg.Kafka.SASLPassword != "kp" {
		t.Errorf("values from files: token %q url %q key %q project %q kafka %q", cfg.API.AuthToken, cfg.ES.URLs, cfg.ES.APIKey, cfg.API.ProjectID, cfg.Kafka.SASLPassword)
	}
	if _, err := loadEnv(t, map[string]string{"HWCAUDIT_AUTH_TOKEN": "t", "HWCAUDIT_AUTH_TOKEN_FILE": write("t2", "t")}); err == nil ||
		!strings.HasPrefix(err.Error(), "HWCAUDIT_AUTH_TOKEN_FILE:") {
		t.Errorf("both set: %v", err)
	}
	if _, err := loadEnv(t, map[string]string{"AWS_SECRET_ACCESS_KEY_FILE": filepath.Join(dir, "absent")}); err == nil ||
		!strings.HasPrefix(err.Error(), "AWS_SECRET_ACCESS_KEY_FILE:") {
		t.Errorf("unreadable file: %v", err)
	}

	// The names the chart passes with credentials.mountAsFiles.
	tpl, err := os.ReadFile("../../charts/hwcaudit/templates/_helpers.tpl")
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(tpl, []byte(`define "hwcaudit.secretKeys"`))
	block := tpl[i:]
	block = block[:bytes.Index(block, []byte("end }}\n{{- end }}"))]
	names := regexp.MustCompile(`"([A-Z][A-Z0-9_]+)" \$c\.`).FindAllSubmatch(block, -1)
	if len(names) < 5 {
		t.Fatalf("found %d secret names in the chart", len(names))
	}
	for _, m := range names {
		if !slices.Contains(fileVariables, string(m[1])) {
			t.Errorf("the chart passes %s_FILE, which the exporter does not read", m[1])
		}
	}

	// End to end: the SDK signs with an AK/SK read from files.
	h := newHarness(t, simConfig(4, 5))
	h.env["HUAWEICLOUD_SDK_AK_FILE"] = write("ak", simulator.DemoAK+"\n")
	h.env["HUAWEICLOUD_SDK_SK_FILE"] = write("sk", simulator.DemoSK+"\n")
	delete(h.env, "HUAWEICLOUD_SDK_AK")
	delete(h.env, "HUAWEICLOUD_SDK_SK")
	h.mustRun(exitOK, "check")
}

// TestConfigErrorHidesURLPasswords: a configuration error quoting a URL
// with user:password@ in it is printed without them.
func TestConfigErrorHidesURLPasswords(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		{"HWCAUDIT_DEADLETTER": "s3://user:UrlPassProbe7@bucket/dl"},
		{"HWCAUDIT_SWR_ENDPOINT": "ftp://user:UrlPassProbe7@swr.example"},
		{"HWCAUDIT_CHECKPOINT_URL": "ftp://user:UrlPassProbe7@x/state"},
		{"HWCAUDIT_SINKS": "elasticsearch", "ELASTICSEARCH_URL": "http://user:UrlPassProbe7@es.example:9200"},
	} {
		_, err := loadEnv(t, env)
		if err == nil {
			t.Errorf("%v: no error", env)
			continue
		}
		var buf bytes.Buffer
		configError(&buf, err)
		if strings.Contains(buf.String(), "UrlPassProbe7") || strings.Contains(buf.String(), "user:") {
			t.Errorf("%v: the message shows the URL's user information: %s", env, buf.String())
		}
	}
}

// TestLogsRedacted: the logger redacts every configured secret in every
// form from messages and attributes, errors and Stringers included.
func TestLogsRedacted(t *testing.T) {
	t.Parallel()
	const sk = "LogSkProbe+Qe5/Rt8Yu1Io4Pa7Sd"
	cfg, err := loadEnv(t, map[string]string{"HWCAUDIT_AUTH_TOKEN": "LogTokProbe/Xx9+Yy8Zz7Ww6", "HUAWEICLOUD_SDK_SK": sk})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := newLogger(cfg, &buf)
	for _, secret := range []string{sk, cfg.API.AuthToken} {
		for _, form := range egresstest.SecretForms(secret) {
			log.Error("echo "+form, "error", errors.New("body starts <html>"+form), "s", form, slog.Group("g", "v", form))
			log.With("w", form).Info("x")
		}
	}
	// A URL that is not configured: its user information, as printed.
	for _, u := range []string{"http://u:UrlPassProbe7@h/x", `http:\/\/u:UrlPassProbe7@h`} {
		log.Error("cannot reach "+u, "url", u, "error", errors.New("Get "+u+": refused"))
	}
	for _, secret := range []string{sk, cfg.API.AuthToken} {
		for name, form := range egresstest.SecretForms(secret) {
			if strings.Contains(buf.String(), form) {
				t.Errorf("%s form of %s in the log", name, secret)
			}
		}
	}
	if strings.Contains(buf.String(), "UrlPassProbe7") {
		t.Error("a URL's password in the log")
	}
}

// TestPushRefusesRedirect: the Pushgateway client does not follow a
// redirect to another server, so its basic-auth header goes nowhere else.
func TestPushRefusesRedirect(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Method+" "+r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	defer other.Close()
	pg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer pg.Close()
	var logs bytes.Buffer
	mr := &metricsRun{m: newMetrics(time.Now), log: slog.New(slog.NewTextHandler(&logs, nil)),
		push: strings.Replace(pg.URL, "http://", "http://pusher:PushPass7@", 1)}
	mr.pushMetrics(context.Background(), prometheus.NewRegistry())
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) > 0 {
		t.Errorf("the other server received %q", leaked)
	}
	if !strings.Contains(logs.String(), "cannot push metrics") {
		t.Errorf("the refused push was not logged: %s", logs.String())
	}
}

// TestCheckCreatesPrivateDirectories: check creates missing output
// directories 0750, as the sinks do, not 0755.
func TestCheckCreatesPrivateDirectories(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	if _, err := checkDirWritable(dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o007 != 0 {
		t.Errorf("check created %s with mode %v", dir, st.Mode().Perm())
	}
}
