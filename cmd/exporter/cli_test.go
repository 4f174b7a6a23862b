package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// Every command answers -h and --help with its usage on stdout and exit
// 0; `exporter` alone prints a short usage and exits 2. Before, run and
// check said "unexpected argument", backfill and demo exited 2, and
// `exporter` alone printed the whole variable table to stderr.
func TestHelpFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string // in stdout, or in stderr for a non-zero code
	}{
		{nil, exitUsage, "usage: exporter <command> [flags]"},
		{[]string{"run", "-h"}, exitOK, "usage: exporter run [--metrics-addr HOST:PORT]"},
		{[]string{"run", "--help"}, exitOK, "usage: exporter run"},
		{[]string{"check", "--help"}, exitOK, "usage: exporter check"},
		{[]string{"check", "-h"}, exitOK, "usage: exporter check"},
		{[]string{"backfill", "--help"}, exitOK, "-from string"},
		{[]string{"backfill", "--from", "1h", "-h"}, exitOK, "-sources string"},
		{[]string{"demo", "-h"}, exitOK, "Usage of exporter demo:"},
		{[]string{"checkpoints", "--help"}, exitOK, "usage: exporter checkpoints list"},
		{[]string{"help"}, exitOK, "HWCAUDIT_SINKS"},
		{[]string{"run", "--bogus"}, exitUsage, `unexpected argument "--bogus"`},
		{[]string{"nonsense", "-h"}, exitUsage, `unknown command "nonsense"`},
		// An address that cannot be listened on is a usage error before
		// any work starts (it used to be logged while the run went on).
		{[]string{"run", "--metrics-addr", "nonsense"}, exitUsage, `--metrics-addr "nonsense": want HOST:PORT`},
		{[]string{"backfill", "--from", "1h", "--metrics-addr", "host:99999"}, exitUsage, "port out of range"},
		// Every command parses with flag.FlagSet: an unknown flag or an
		// extra argument is a usage error before any work.
		{[]string{"run", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"run", "--metrics-addr"}, exitUsage, "--metrics-addr needs a host:port"},
		{[]string{"demo", "--bogus"}, exitUsage, `unexpected argument "--bogus"`},
		{[]string{"demo", "--pace", "-1"}, exitUsage, "--pace: want requests per second"},
		{[]string{"demo", "--progress", "fancy"}, exitUsage, "--progress: want auto, bar, log or none"},
		{[]string{"backfill", "--bogus"}, exitUsage, `unexpected argument "--bogus"`},
		{[]string{"checkpoints"}, exitUsage, "missing subcommand"},
		{[]string{"checkpoints", "show"}, exitUsage, "show needs a STREAM"},
		{[]string{"checkpoints", "show", "a", "b"}, exitUsage, `unexpected argument "b"`},
		{[]string{"checkpoints", "list", "--bogus"}, exitUsage, `unexpected argument "--bogus"`},
		{[]string{"checkpoints", "reset", "--force", "s"}, exitUsage, "--force goes with --backfill"},
		{[]string{"checkpoints", "reset", "--backfill", "a/b"}, exitUsage, "--backfill: want a RANGE"},
		{[]string{"checkpoints", "frobnicate"}, exitUsage, `unknown subcommand "frobnicate"`},
		{[]string{"checkpoints", "help"}, exitOK, "usage: exporter checkpoints list"},
		{[]string{"demo", "--help"}, exitOK, "-serve ADDR"},
		{[]string{"demo", "--serve", "127.0.0.1:0", "--fresh"}, exitUsage, "--fresh does not go with --serve"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := realMain(c.args, &out, &errOut)
			where := out.String()
			if c.code != exitOK {
				where = errOut.String()
			}
			if code != c.code || !strings.Contains(where, c.want) {
				t.Errorf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, c.code, c.want, out.String(), errOut.String())
			}
			if c.code == exitOK && errOut.Len() > 0 {
				t.Errorf("stderr not empty: %s", errOut.String())
			}
		})
	}
}

// Durations in logs read as durations: "wait":"343ms", not 343000000.
func TestLogDurationsReadable(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newHandler(&Config{LogLevel: "info", LogFormat: "json"}, &buf))
	log.Info("retrying", "wait", 343*time.Millisecond, slog.Group("g", "elapsed", 90*time.Second))
	if got := buf.String(); !strings.Contains(got, `"wait":"343ms"`) || !strings.Contains(got, `"elapsed":"1m30s"`) {
		t.Errorf("log line %s", got)
	}
}

// Every configuration error is reported at once, each naming its
// variable; before, a run reported one and the next run the next.
func TestConfigErrorsAllAtOnce(t *testing.T) {
	env := validEnv()
	env["HWCAUDIT_BATCH_SIZE"] = "0"
	env["HWCAUDIT_LOG_FORMAT"] = "yaml"
	env["HWCAUDIT_MAX_RUN_DURATION"] = "-1s"
	delete(env, "HWCAUDIT_SWR_INSTANCES")
	_, err := loadConfig(t.Context(), envconfig.MapLookuper(env), time.Now())
	if err == nil {
		t.Fatal("no error")
	}
	var out bytes.Buffer
	if code := configError(&out, err); code != exitUsage {
		t.Errorf("exit %d", code)
	}
	for _, v := range []string{"HWCAUDIT_BATCH_SIZE", "HWCAUDIT_LOG_FORMAT", "HWCAUDIT_MAX_RUN_DURATION", "HWCAUDIT_SWR_INSTANCES"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("%s not named in:\n%s", v, out.String())
		}
	}
	if !strings.Contains(out.String(), "4 configuration errors:") {
		t.Errorf("report:\n%s", out.String())
	}
}
