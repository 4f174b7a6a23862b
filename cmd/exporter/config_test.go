package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/sources/simulator"
)

// validEnv is a complete configuration; each case below breaks one thing.
func validEnv() map[string]string {
	return map[string]string{
		"HUAWEICLOUD_SDK_AK": simulator.DemoAK,
		// Never the metadata service: it is not on loopback.
		"HWCAUDIT_CREDENTIALS":       "env,profile",
		"HUAWEICLOUD_SDK_SK":         simulator.DemoSK,
		"HUAWEICLOUD_SDK_PROJECT_ID": simulator.DemoProjectID,
		"HWCAUDIT_REGION":            "cn-north-4",
		"HWCAUDIT_SWR_INSTANCES":     "ins-1",
		"HWCAUDIT_LOG_FORMAT":        "json",
		// Should a case pass validation after all, it fails fast.
		"HWCAUDIT_SWR_ENDPOINT":      "http://127.0.0.1:1",
		"HWCAUDIT_RETRY_INITIAL":     "10ms",
		"HWCAUDIT_RETRY_MAX":         "20ms",
		"HWCAUDIT_RETRY_MAX_ELAPSED": "100ms",
	}
}

// TestConfigErrors runs the binary with one bad setting at a time: it must
// exit 2 before touching anything, with a message that names the variable.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	const unset = "\x00unset"
	cases := []struct {
		name    string
		env     map[string]string
		varName string // the message must start with it
		detail  string // and contain this
	}{
		{"unknown sink", map[string]string{"HWCAUDIT_SINKS": "kafkaa"}, "HWCAUDIT_SINKS", `"kafkaa"`},
		{"no sink", map[string]string{"HWCAUDIT_SINKS": ""}, "HWCAUDIT_SINKS", "at least one"},
		{"sink twice", map[string]string{"HWCAUDIT_SINKS": "file,file"}, "HWCAUDIT_SINKS", "twice"},
		{"start word", map[string]string{"HWCAUDIT_START_FROM": "yesterday"}, "HWCAUDIT_START_FROM", `"yesterday"`},
		{"start future", map[string]string{"HWCAUDIT_START_FROM": "2999-01-01T00:00:00Z"}, "HWCAUDIT_START_FROM", "future"},
		{"start negative", map[string]string{"HWCAUDIT_START_FROM": "-5h"}, "HWCAUDIT_START_FROM", "negative"},
		{"start overflow", map[string]string{"HWCAUDIT_START_FROM": "99999999d"}, "HWCAUDIT_START_FROM", `"99999999d"`},
		{"rps not a number", map[string]string{"HWCAUDIT_MAX_RPS": "abc"}, "HWCAUDIT_MAX_RPS", `"abc"`},
		{"rps zero", map[string]string{"HWCAUDIT_MAX_RPS": "0"}, "HWCAUDIT_MAX_RPS", "greater than 0"},
		{"rps NaN", map[string]string{"HWCAUDIT_MAX_RPS": "NaN"}, "HWCAUDIT_MAX_RPS", "greater than 0"},
		{"operation", map[string]string{"HWCAUDIT_SWR_OPERATIONS": "push"}, "HWCAUDIT_SWR_OPERATIONS", `"push"`},
		{"page size", map[string]string{"HWCAUDIT_SWR_PAGE_SIZE": "500"}, "HWCAUDIT_SWR_PAGE_SIZE", "500"},
		{"page size small", map[string]string{"HWCAUDIT_SWR_PAGE_SIZE": "10"}, "HWCAUDIT_SWR_PAGE_SIZE", "20..100"},
		{"checkpoint scheme", map[string]string{"HWCAUDIT_CHECKPOINT_URL": "ftp://x"}, "HWCAUDIT_CHECKPOINT_URL", `"ftp"`},
		{"checkpoint host", map[string]string{"HWCAUDIT_CHECKPOINT_URL": "file://state"}, "HWCAUDIT_CHECKPOINT_URL", "file://./"},
		{"dead letter no scheme", map[string]string{"HWCAUDIT_DEADLETTER": "./dl"}, "HWCAUDIT_DEADLETTER", "no scheme"},
		{"no instances", map[string]string{"HWCAUDIT_SWR_INSTANCES": unset}, "HWCAUDIT_SWR_INSTANCES, HWCAUDIT_ARTIFACT_REPOS, HWCAUDIT_GAUSSDB_INSTANCES, HWCAUDIT_DBSS_INSTANCES, HWCAUDIT_CTS_ENABLED", "no source"},
		{"bad instance", map[string]string{"HWCAUDIT_SWR_INSTANCES": "a/b"}, "HWCAUDIT_SWR_INSTANCES", `"a/b"`},
		{"no region or endpoint", map[string]string{"HWCAUDIT_REGION": unset, "HWCAUDIT_SWR_ENDPOINT": unset}, "HWCAUDIT_REGION", "HWCAUDIT_SWR_ENDPOINT"},
		{"endpoint scheme", map[string]string{"HWCAUDIT_SWR_ENDPOINT": "ftp://swr.example"}, "HWCAUDIT_SWR_ENDPOINT", "ftp://"},
		{"no project", map[string]string{"HUAWEICLOUD_SDK_PROJECT_ID": unset}, "HWCAUDIT_PROJECT_ID", "HUAWEICLOUD_SDK_PROJECT_ID"},
		{"no AK", map[string]string{"HUAWEICLOUD_SDK_AK": unset}, "HWCAUDIT_CREDENTIALS", "no credentials found (tried env, profile)"},
		{"no SK", map[string]string{"HUAWEICLOUD_SDK_SK": unset}, "HWCAUDIT_CREDENTIALS", "no credentials found (tried env, profile)"},
		{"unknown credential provider", map[string]string{"HWCAUDIT_CREDENTIALS": "env,vault"}, "HWCAUDIT_CREDENTIALS", `"vault"`},
		{"log level", map[string]string{"HWCAUDIT_LOG_LEVEL": "verbose"}, "HWCAUDIT_LOG_LEVEL", `"verbose"`},
		{"log format", map[string]string{"HWCAUDIT_LOG_FORMAT": "xml"}, "HWCAUDIT_LOG_FORMAT", `"xml"`},
		{"batch size", map[string]string{"HWCAUDIT_BATCH_SIZE": "0"}, "HWCAUDIT_BATCH_SIZE", "at least 1"},
		{"max run duration", map[string]string{"HWCAUDIT_MAX_RUN_DURATION": "-1m"}, "HWCAUDIT_MAX_RUN_DURATION", "must not be negative"},
		{"memory budget", map[string]string{"HWCAUDIT_MEMORY_BUDGET": "1000"}, "HWCAUDIT_MEMORY_BUDGET", "at least 1048576"},
		{"taurusdb look-back", map[string]string{"HWCAUDIT_GAUSSDB_LOOKBACK": "-1h"}, "HWCAUDIT_GAUSSDB_LOOKBACK", "must be 0.."},
		{"dbss streams", map[string]string{"HWCAUDIT_DBSS_STREAMS": "sql,audit"}, "HWCAUDIT_DBSS_STREAMS", `"audit"`},
		{"batch size word", map[string]string{"HWCAUDIT_BATCH_SIZE": "many"}, "HWCAUDIT_BATCH_SIZE", `"many"`},
		{"parallel", map[string]string{"HWCAUDIT_PARALLEL_STREAMS": "-1"}, "HWCAUDIT_PARALLEL_STREAMS", "-1"},
		{"grace", map[string]string{"HWCAUDIT_SHUTDOWN_GRACE": "soon"}, "HWCAUDIT_SHUTDOWN_GRACE", `"soon"`},
		{"retry max below initial", map[string]string{"HWCAUDIT_RETRY_INITIAL": "2s", "HWCAUDIT_RETRY_MAX": "1s"}, "HWCAUDIT_RETRY_MAX", "HWCAUDIT_RETRY_INITIAL"},
		{"retry elapsed below max", map[string]string{"HWCAUDIT_RETRY_MAX_ELAPSED": "15ms"}, "HWCAUDIT_RETRY_MAX_ELAPSED", "HWCAUDIT_RETRY_MAX"},
		{"file max bytes", map[string]string{"HWCAUDIT_FILE_MAX_BYTES": "1e3"}, "HWCAUDIT_FILE_MAX_BYTES", `"1e3"`},
		{"file max age", map[string]string{"HWCAUDIT_FILE_MAX_AGE": "-1h"}, "HWCAUDIT_FILE_MAX_AGE", "negative"},
		{"http timeout unit", map[string]string{"HWCAUDIT_HTTP_TIMEOUT": "5"}, "HWCAUDIT_HTTP_TIMEOUT", `"5"`},
		{"body cap", map[string]string{"HWCAUDIT_HTTP_MAX_BODY_BYTES": "100"}, "HWCAUDIT_HTTP_MAX_BODY_BYTES", "1024"},
		{"pushgateway not a URL", map[string]string{"HWCAUDIT_PUSHGATEWAY_URL": "::bad"}, "HWCAUDIT_PUSHGATEWAY_URL", "not a URL"},
		{"pushgateway scheme", map[string]string{"HWCAUDIT_PUSHGATEWAY_URL": "ftp://pushgateway:9091"}, "HWCAUDIT_PUSHGATEWAY_URL", `"ftp"`},
		{"pushgateway no host", map[string]string{"HWCAUDIT_PUSHGATEWAY_URL": "http:///metrics"}, "HWCAUDIT_PUSHGATEWAY_URL", "no host"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := validEnv()
			for k, v := range tc.env {
				if v == unset {
					delete(env, k)
				} else {
					env[k] = v
				}
			}
			dir := t.TempDir()
			r := startExporter(t, dir, env, "run").wait(t, 30*time.Second)
			if r.code != exitUsage {
				t.Fatalf("want exit %d, got\n%v", exitUsage, r)
			}
			// One error, or several (every setting at fault is reported at
			// once): the line naming the variable.
			first, _, _ := strings.Cut(r.stderr, "\n")
			if want := "exporter: configuration error: " + tc.varName + ":"; !strings.HasPrefix(first, want) {
				for _, l := range strings.Split(r.stderr, "\n") {
					if strings.HasPrefix(l, "  "+tc.varName+":") {
						first = l
					}
				}
				if !strings.HasPrefix(strings.TrimSpace(first), tc.varName+":") && !strings.HasPrefix(first, want) {
					t.Errorf("stderr names %s on no line of its own:\n%s", tc.varName, r.stderr)
				}
			}
			if !strings.Contains(first, tc.detail) {
				t.Errorf("message does not contain %q: %s", tc.detail, first)
			}
			if r.stdout != "" {
				t.Errorf("stdout not empty: %q", r.stdout)
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("a configuration error left files behind: %v", entries)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{nil, "usage: exporter <command>"},
		{[]string{"rnu"}, `unknown command "rnu"`},
		{[]string{"run", "--now"}, `unexpected argument "--now"`},
		{[]string{"demo", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"demo", "extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			r := startExporter(t, t.TempDir(), validEnv(), tc.args...).wait(t, 30*time.Second)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("want exit %d and %q on stderr, got\n%v", exitUsage, tc.stderr, r)
			}
		})
	}
}

func TestParseStart(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time // zero: an error
	}{
		{"24h", now.Add(-24 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"0d", now},
		{"2026-04-30T08:00:00+08:00", time.Date(2026, 4, 30, 0, 0, 0, 0, time.UTC)},
		{"2026-05-01T12:00:01Z", time.Time{}}, // future
		{"-1h", time.Time{}},
		{"-2d", time.Time{}},
		{"d", time.Time{}},
		{"1.5d", time.Time{}},
		{"yesterday", time.Time{}},
		{"", time.Time{}},
		// time.Duration holds about 292 years; more days must not wrap.
		{"106751d", now.Add(-106751 * 24 * time.Hour)},
		{"106752d", time.Time{}},
		{"99999999d", time.Time{}},
		{"9223372036854775807d", time.Time{}},
	} {
		got, err := parseStart(tc.in, now)
		switch {
		case tc.want.IsZero() && err == nil:
			t.Errorf("parseStart(%q) = %s, want an error", tc.in, got)
		case !tc.want.IsZero() && err != nil:
			t.Errorf("parseStart(%q): %v", tc.in, err)
		case !tc.want.IsZero() && (!got.Equal(tc.want) || got.Location() != time.UTC):
			t.Errorf("parseStart(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestLoadConfigProjectFallback checks the one variable the table in help
// documents as a fallback: HWCAUDIT_PROJECT_ID wins over the SDK's.
func TestLoadConfigProjectFallback(t *testing.T) {
	// Project ids are 32 letters or digits.
	const sdkProject, ownProject = "5dc0000000000000000000000000000a", "0e70000000000000000000000000000b"
	now := time.Now()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HUAWEICLOUD_SDK_PROJECT_ID": sdkProject}, sdkProject},
		{map[string]string{"HUAWEICLOUD_SDK_PROJECT_ID": sdkProject, "HWCAUDIT_PROJECT_ID": ownProject}, ownProject},
	} {
		env := map[string]string{"HWCAUDIT_SWR_INSTANCES": "ins-1", "HWCAUDIT_REGION": "cn-north-4"}
		for k, v := range tc.env {
			env[k] = v
		}
		cfg, err := loadConfig(t.Context(), envconfig.MapLookuper(env), now)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.API.ProjectID != tc.want {
			t.Errorf("%v: project %q, want %q", tc.env, cfg.API.ProjectID, tc.want)
		}
	}
}
