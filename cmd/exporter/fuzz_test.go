package main

import (
	"errors"
	"flag"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// fuzzNow is the clock of the config fuzz targets: results must not
// depend on the real one.
var fuzzNow = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// secretVariables hold credentials; their values must not change what
// loading reports beyond being set or not.
var secretVariables = []string{
	"HWCAUDIT_AUTH_TOKEN", "HWCAUDIT_KAFKA_SASL_PASSWORD",
	"HWCAUDIT_ELASTICSEARCH_PASSWORD", "HWCAUDIT_ELASTICSEARCH_API_KEY",
}

// namesVariable reports whether msg names a configuration variable.
func namesVariable(msg string) bool {
	for _, v := range append(variables[:len(variables):len(variables)], sdkVariables...) {
		if strings.Contains(msg, v.name) {
			return true
		}
	}
	return false
}

// FuzzLoadConfig sets up to three variables of a valid configuration to
// arbitrary values. loadConfig must either fail with a message naming a
// variable, or return a configuration that validates again; it must be
// deterministic, and a credential's value must not show in its outcome.
func FuzzLoadConfig(f *testing.F) {
	idx := func(name string) uint16 {
		for i, v := range variables {
			if v.name == name {
				return uint16(i)
			}
		}
		f.Fatalf("no variable %s", name)
		return 0
	}
	add := func(a string, av string, b string, bv string, c string, cv string) {
		f.Add(idx(a), av, idx(b), bv, idx(c), cv)
	}
	add("HWCAUDIT_SINKS", "file,kafka", "HWCAUDIT_KAFKA_BROKERS", "127.0.0.1:9092", "HWCAUDIT_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
	add("HWCAUDIT_SINKS", "elasticsearch", "HWCAUDIT_ELASTICSEARCH_API_KEY", "aWQ6a2V5", "HWCAUDIT_ELASTICSEARCH_PASSWORD", "pw")
	add("HWCAUDIT_SINKS", "s3,file", "HWCAUDIT_S3_BUCKET", "audit", "HWCAUDIT_S3_SSE", "aws:kms")
	add("HWCAUDIT_START_FROM", "7d", "HWCAUDIT_SHARD", "2/3", "HWCAUDIT_LOG_LEVEL", "DEBUG")
	add("HWCAUDIT_START_FROM", "2026-10-01T00:00:00+08:00", "HWCAUDIT_RETRY_INITIAL", "1m", "HWCAUDIT_RETRY_MAX", "30s")
	add("HWCAUDIT_CHECKPOINT_URL", "s3://bucket/prefix?endpoint=http://127.0.0.1:9000&path_style=true&lease_ttl=2m", "HWCAUDIT_DEADLETTER", "file://./dl", "HWCAUDIT_MAX_RPS", "NaN")
	add("HWCAUDIT_ARTIFACT_REPOS", "file/repo-1", "HWCAUDIT_ARTIFACT_TENANT_ID", "t", "HWCAUDIT_ARTIFACT_TIMEZONE", "-03:30")
	add("HWCAUDIT_GAUSSDB_INSTANCES", "g-1,g-2", "HWCAUDIT_SETTLE_DELAY", "-5m", "HWCAUDIT_WINDOW_MAX_RECORDS", "0")
	add("HWCAUDIT_DBSS_INSTANCES", "d-1", "HWCAUDIT_DBSS_PAGE_SIZE", "101", "HWCAUDIT_HTTP_TIMEOUT", "1ns")
	add("HWCAUDIT_SWR_INSTANCES", "", "HWCAUDIT_PROJECT_ID", "", "HWCAUDIT_CREDENTIALS", "env,env")
	add("HWCAUDIT_FILE_MAX_BYTES", "-1", "HWCAUDIT_BATCH_SIZE", "99999999999999999999", "HWCAUDIT_PARALLEL_STREAMS", "0x10")
	add("HWCAUDIT_SINKS", "elasticsearch", "ELASTICSEARCH_URL", "http://u:p@127.0.0.1:9200,https://[::1]:9200", "HWCAUDIT_ELASTICSEARCH_TARGET", "logs-{dataset}-{namespace}")

	f.Fuzz(func(t *testing.T, a uint16, av string, b uint16, bv string, c uint16, cv string) {
		env := validEnv()
		delete(env, "HWCAUDIT_SWR_ENDPOINT")
		set := map[string]string{}
		for _, kv := range []struct {
			i uint16
			v string
		}{{a, av}, {b, bv}, {c, cv}} {
			name := variables[int(kv.i)%len(variables)].name
			env[name], set[name] = kv.v, kv.v
		}
		load := func(env map[string]string) (*Config, error) {
			return loadConfig(t.Context(), envconfig.MapLookuper(env), fuzzNow)
		}
		cfg, err := load(env)
		if err != nil {
			if !namesVariable(err.Error()) {
				t.Errorf("the error for %q names no variable: %v", set, err)
			}
		} else if verr := cfg.validate(fuzzNow); verr != nil {
			t.Errorf("loadConfig accepted %q, but the configuration does not validate again: %v", set, verr)
		}
		cfg2, err2 := load(env)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("loadConfig is not deterministic for %q: %v, then %v", set, err, err2)
		}
		if err == nil && (!cfg.start.Equal(cfg2.start) || cfg.shard != cfg2.shard) {
			t.Fatalf("loadConfig is not deterministic for %q", set)
		}
		// Only whether a credential is set may matter, never its value.
		for _, name := range secretVariables {
			v, ok := set[name]
			if !ok || v == "" {
				continue
			}
			other := make(map[string]string, len(env))
			for k, val := range env {
				other[k] = val
			}
			other[name] = "placeholder"
			_, oerr := load(other)
			if (err == nil) != (oerr == nil) || (err != nil && err.Error() != oerr.Error()) {
				t.Errorf("the value of %s changed the outcome: %v, with another value %v", name, err, oerr)
			}
		}
	})
}

// FuzzParseStart feeds HWCAUDIT_START_FROM and backfill --from/--to values:
// a start that parses is not after now, is in UTC, and an RFC 3339 start is
// given back exactly, so the same value always means the same time.
func FuzzParseStart(f *testing.F) {
	for _, s := range []string{"24h", "72h", "7d", "0d", "90m", "1h30m", "-5h", "-1d", "99999999d", "106751d", "106752d",
		"2026-11-01T00:00:00Z", "2026-10-01T08:00:00+08:00", "2026-11-01T12:00:00.000000001Z", "2999-01-01T00:00:00Z",
		"yesterday", "", "d", "1.5d", "+3d", "0x10d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := parseStart(v, fuzzNow)
		again, err2 := parseStart(v, fuzzNow)
		if (err == nil) != (err2 == nil) || !got.Equal(again) {
			t.Fatalf("parseStart(%q) is not deterministic: %v %v, then %v %v", v, got, err, again, err2)
		}
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(v)) {
				t.Errorf("parseStart(%q): error %q does not quote the value", v, err)
			}
			return
		}
		if got.After(fuzzNow) || got.Location() != time.UTC {
			t.Errorf("parseStart(%q) = %v: after now %v or not UTC", v, got, fuzzNow)
		}
		if abs, perr := time.Parse(time.RFC3339Nano, v); perr == nil && !abs.Equal(got) {
			t.Errorf("parseStart(%q) = %v, want the time itself", v, got)
		}
	})
}

// FuzzParseBackfillArgs feeds backfill flags: either an error (the usage
// error, or one naming a flag), or a range with from <= to <= now whose
// checkpoint namespace is the same every time and free of path tricks.
func FuzzParseBackfillArgs(f *testing.F) {
	for _, a := range [][3]string{
		{"2026-10-01T00:00:00Z", "2026-10-08T00:00:00Z", "swr,dbss"},
		{"72h", "now", ""}, {"7d", "24h", "artifact"}, {"24h", "72h", ""}, {"", "now", ""},
		{"2026-10-01T00:00:00+08:00", "now", "swr, taurusdb"}, {"1d", "2999-01-01T00:00:00Z", "swr"}, {"1h", "now", "s3"},
	} {
		f.Add(a[0], a[1], a[2])
	}
	f.Fuzz(func(t *testing.T, from, to, sources string) {
		args := []string{"--from", from, "--to", to}
		if sources != "" {
			args = append(args, "--sources", sources)
		}
		br, err := parseBackfillArgs(args, fuzzNow, io.Discard)
		if err != nil {
			if !errors.Is(err, flag.ErrHelp) && !strings.Contains(err.Error(), "--") {
				t.Errorf("backfill %q: error %q names no flag", args, err)
			}
			return
		}
		if br.from.After(br.to) || br.to.After(fuzzNow) {
			t.Errorf("backfill %q: range %v..%v with now %v", args, br.from, br.to, fuzzNow)
		}
		again, err := parseBackfillArgs(args, fuzzNow, io.Discard)
		if err != nil || again.namespace != br.namespace {
			t.Errorf("backfill %q: namespace %q, then %q (%v)", args, br.namespace, again.namespace, err)
		}
		if !strings.HasPrefix(br.namespace, "backfill/") || !strings.HasSuffix(br.namespace, "/") {
			t.Errorf("backfill %q: namespace %q", args, br.namespace)
		}
		for _, s := range br.sources {
			if !strings.Contains(strings.Join(knownSources, ","), s) || s == "" {
				t.Errorf("backfill %q: source %q accepted", args, s)
			}
		}
	})
}

// FuzzParseShard feeds HWCAUDIT_SHARD values: either an error naming the
// variable, or index < count, formatted back as the value itself when it
// is in canonical form.
func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"", "0/1", "2/3", "3/3", "0/0", "1", "/", "-1/3", "+1/3", "01/3", "4294967295/4294967295", "4294967294/4294967295", "0/4294967296", " 1/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		sh, err := parseShard(v)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "HWCAUDIT_SHARD: ") {
				t.Errorf("parseShard(%q): error %q does not name HWCAUDIT_SHARD", v, err)
			}
			return
		}
		if v == "" {
			if sh != (shardSpec{}) {
				t.Errorf("parseShard(\"\") = %+v, want no sharding", sh)
			}
			return
		}
		if sh.count < 1 || sh.index >= sh.count {
			t.Fatalf("parseShard(%q) = %+v", v, sh)
		}
		canon := strconv.FormatUint(uint64(sh.index), 10) + "/" + strconv.FormatUint(uint64(sh.count), 10)
		if back, err := parseShard(canon); err != nil || back != sh {
			t.Errorf("parseShard(%q) = %+v, but %q gives %+v, %v", v, sh, canon, back, err)
		}
		// Every stream lands in exactly one shard, the same every time.
		for _, key := range []string{"swr/i/pull", "dbss/d", ""} {
			if s := shardOf(key, sh.count); s >= sh.count || s != shardOf(key, sh.count) {
				t.Errorf("shardOf(%q, %d) = %d", key, sh.count, s)
			}
		}
	})
}
