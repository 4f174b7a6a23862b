// Command exporter ships Huawei Cloud audit logs to SIEM destinations as
// Elastic Common Schema documents. See `exporter help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
)

// buildVersion and buildCommit are set at link time (-ldflags "-X
// main.buildVersion=v1.2.3 -X main.buildCommit=$(git rev-parse HEAD)");
// without them the version is the module's and the commit the one Go
// stamped from the work tree (-buildvcs).
var buildVersion, buildCommit = "", ""

func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// versionLine is what `exporter version` prints: the version, the commit
// it was built from (with "+dirty" for uncommitted changes) and the Go
// version, e.g. "hwcaudit exporter v0.2.0 (commit 5e78416c0a1b, go1.26.8)".
func versionLine() string {
	commit, dirty := "unknown", false
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value[:min(12, len(s.Value))]
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if dirty {
		commit += "+dirty"
	}
	if buildCommit != "" {
		commit = buildCommit[:min(12, len(buildCommit))]
	}
	return fmt.Sprintf("hwcaudit exporter %s (commit %s, %s)", version(), commit, goVersion)
}

func main() {
	stopProfiling := startProfiling(os.Stderr)
	code := realMain(os.Args[1:], os.Stdout, os.Stderr)
	stopProfiling()
	os.Exit(code)
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, shortUsage)
		return exitUsage
	}
	if len(args) > 1 && slices.ContainsFunc(args[1:], isHelpFlag) {
		if usage, ok := commandUsage(args[0]); ok {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
	}
	switch args[0] {
	case "help", "-h", "--help":
		printHelp(stdout)
		return exitOK
	case "version", "--version":
		fmt.Fprintln(stdout, versionLine())
		return exitOK
	case "run":
		metricsAddr, err := runArgs(args[1:])
		if err != nil {
			fmt.Fprintf(stderr, "exporter run: %v\n(usage: exporter run --help)\n", err)
			return exitUsage
		}
		return cmdRun(metricsAddr, stdout, stderr)
	case "check":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "exporter check: unexpected argument %q (configuration comes from the environment; see 'exporter help')\n", args[1])
			return exitUsage
		}
		return cmdCheck(stdout, stderr)
	case "backfill":
		return cmdBackfill(args[1:], stdout, stderr)
	case "checkpoints":
		return cmdCheckpoints(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "exporter: unknown command %q; run 'exporter help'\n", args[0])
		return exitUsage
	}
}

// shortUsage is what `exporter` alone prints.
const shortUsage = `usage: exporter <command> [flags]

commands:
  run          export what is new since the last run (the CronJob's command)
  backfill     export a past range: backfill --from TIME [--to TIME]
  check        check the configuration, the credentials and every destination
  checkpoints  list, show or reset stream checkpoints
  demo         run against the embedded simulator, no account needed
  help         every environment variable and its default
  version      print the version

Configuration comes from the environment; 'exporter help' lists it.
'exporter COMMAND --help' shows a command's flags.
`

func isHelpFlag(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// parseFlags parses args into fl without printing anything (fl's output
// is for its usage): realMain answers -h and --help before, and the
// caller prints the error. An undefined flag is reported as the argument
// it is, "--bogus" as typed, besides the flag package's message.
func parseFlags(fl *flag.FlagSet, args []string) error {
	out := fl.Output()
	fl.SetOutput(io.Discard)
	defer fl.SetOutput(out)
	err := fl.Parse(args)
	if name, ok := strings.CutPrefix(fmt.Sprint(err), "flag provided but not defined: -"); ok {
		for _, a := range args {
			if n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); n == name && strings.HasPrefix(a, "-") {
				return fmt.Errorf("unexpected argument %q (%w)", a, err)
			}
		}
	}
	return err
}

// flagSet tells whether name was given on the command line.
func flagSet(fl *flag.FlagSet, name string) bool {
	set := false
	fl.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// commandUsage is a command's usage, for -h and --help.
func commandUsage(cmd string) (string, bool) {
	var b strings.Builder
	switch cmd {
	case "run":
		runFlags(&b).Usage()
	case "check":
		b.WriteString("usage: exporter check\n\n" +
			"Checks the configuration, the credentials, the first page of every stream\n" +
			"(through the requests a run sends) and every destination, and exits 1 when\n" +
			"anything fails. Configuration comes from the environment; see 'exporter help'.\n")
	case "backfill":
		_, _ = parseBackfillArgs([]string{"-h"}, time.Now(), &b)
	case "demo":
		demoFlags(&b).Usage()
	case "checkpoints":
		b.WriteString(checkpointsUsage)
	default:
		return "", false
	}
	return b.String(), true
}

func cmdRun(metricsAddr string, stdout, stderr io.Writer) int {
	ctx, stop := signalContext()
	defer stop()
	cfg, err := loadConfig(ctx, envconfig.OsLookuper(), time.Now())
	if err != nil {
		return configError(stderr, err)
	}
	cfg.metricsAddr = metricsAddr
	log := newLogger(cfg, stderr)
	auth, err := authorizer(cfg)
	if err != nil {
		return configError(stderr, err)
	}
	return export(ctx, cfg, auth, log, reportWriter(cfg, stdout, stderr), nil)
}

// reportWriter is where the human-readable report goes: stdout, unless the
// stdout sink writes events there, whose readers expect NDJSON and nothing
// else.
// It is redacted of every configured secret.
func reportWriter(cfg *Config, stdout, stderr io.Writer) io.Writer {
	w := stdout
	if slices.Contains(cfg.Sinks, "stdout") {
		w = stderr
	}
	return redactingWriter{w: w, secrets: cfg.secrets}
}

// configError prints err, with the user information of any URL in it
// removed (a value quoted in a message may be http://user:password@host).
func configError(w io.Writer, err error) int {
	// Every setting at fault at once, one each (see Config.validate).
	var all interface{ Unwrap() []error }
	if errors.As(err, &all) && len(all.Unwrap()) > 1 {
		fmt.Fprintf(w, "exporter: %d configuration errors:\n", len(all.Unwrap()))
		for _, e := range all.Unwrap() {
			fmt.Fprintf(w, "  %s\n", redactText(nil, e.Error()))
		}
	} else {
		fmt.Fprintf(w, "exporter: configuration error: %s\n", redactText(nil, err.Error()))
	}
	fmt.Fprintln(w, "(run 'exporter help' for every variable and its default)")
	return exitUsage
}

// authorizer picks the static token when one is configured, and AK/SK
// signing from the SDK's environment variables otherwise.
// Secrets read from NAME_FILE that the SDKs read from the environment are
// exported to it first.
func authorizer(cfg *Config) (huaweiapi.Authorizer, error) {
	if err := exportSecretFiles(cfg); err != nil {
		return nil, err
	}
	if cfg.API.AuthToken != "" {
		return huaweiapi.TokenAuth{Token: cfg.API.AuthToken}, nil
	}
	s, err := huaweiapi.NewSDKSigner(huaweiapi.CredentialChain(cfg.API.Credentials))
	if err != nil {
		return nil, fmt.Errorf("HWCAUDIT_CREDENTIALS: %w; set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, or HWCAUDIT_AUTH_TOKEN", err)
	}
	return s, nil
}

// signalContext is cancelled by the first SIGINT or SIGTERM, which starts a
// graceful shutdown; a second signal kills the process at once.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // restore the default: the next signal terminates
	return ctx, stop
}

// Every record is redacted of the configured secrets (and of those the API
// client learns), and the insecure settings in force are logged once.
func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	h := newHandler(cfg, w)
	_, text := h.(*slog.TextHandler)
	cfg.textLogsOnTerminal = text && isTerminal(w)
	log := slog.New(redactingHandler{h: h, secrets: cfg.secrets})
	warnInsecure(cfg, log)
	return log
}

func newHandler(cfg *Config, w io.Writer) slog.Handler {
	level, _ := parseLevel(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: readableDurations}
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.NewTextHandler(w, opts)
	}
	return slog.NewJSONHandler(w, opts)
}

// readableDurations writes durations as Go writes them ("343ms", "1m30s"):
// the JSON handler would print nanoseconds.
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("want debug, info, warn or error, got %q", s)
	}
	return l, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
