package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth"
	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/checkpoint"
	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
)

// cmdDemo runs a real export against the embedded simulator: the same
// pipeline, AK/SK signing, sinks and checkpoints as `run`, with the sources
// pointed at loopback. Sinks and directories still come from the
// environment, so the demo also shows how they are configured. With
// --serve it runs only the simulator, for `run`, `check` and `backfill`.
func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fl := demoFlags(stderr)
	fresh := fl.Lookup("fresh").Value.(flag.Getter)
	latency := fl.Lookup("latency").Value.(flag.Getter)
	pace := fl.Lookup("pace").Value.(flag.Getter)
	progress := fl.Lookup("progress").Value
	serve := fl.Lookup("serve").Value
	if err := parseFlags(fl, args); err != nil {
		fmt.Fprintf(stderr, "exporter demo: %v\n(usage: exporter demo --help)\n", err)
		return exitUsage
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "exporter demo: unexpected argument %q\n(usage: exporter demo --help)\n", fl.Arg(0))
		return exitUsage
	}
	if p := pace.Get().(float64); p < 0 || p != p {
		fmt.Fprintf(stderr, "exporter demo: --pace: want requests per second, 0 for no limit, got %v\n", p)
		return exitUsage
	}
	if serve.String() != "" {
		for _, name := range []string{"fresh", "pace", "progress"} {
			if flagSet(fl, name) {
				fmt.Fprintf(stderr, "exporter demo: --%s does not go with --serve, which only serves the API (--latency does)\n", name)
				return exitUsage
			}
		}
	}
	mode, err := resolveProgress(progress.String(), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "exporter demo: %v\n", err)
		return exitUsage
	}

	ctx, stop := signalContext()
	defer stop()
	now := time.Now()
	demo := simulator.DemoConfig(now)
	demo.Faults.Latency = latency.Get().(time.Duration)
	sim := simulator.New(demo)
	addr := "127.0.0.1:0"
	if serve.String() != "" {
		addr = serve.String()
	}
	url, err := sim.Start(addr)
	if err != nil {
		fmt.Fprintf(stderr, "exporter demo: cannot start the simulator on %s: %v\n", addr, err)
		return exitFailed
	}
	defer sim.Close()
	if serve.String() != "" {
		return serveDemo(ctx, demo, url, stdout)
	}

	// The simulator's sources win over the environment; everything else
	// (sinks, directories, tuning) is read from it as in `run`.
	sources := map[string]string{"HWCAUDIT_AUTH_TOKEN": ""}
	for _, kv := range demoSources(demo, url) {
		sources[kv[0]] = kv[1]
	}
	// The simulator takes far more than a real gateway's quota. On a
	// terminal the demo is paced, so that its progress can be watched.
	defaults := map[string]string{"HWCAUDIT_REGION": "cn-north-4", "HWCAUDIT_MAX_RPS": "2000"}
	switch {
	case flagSet(fl, "pace") && pace.Get().(float64) > 0:
		sources["HWCAUDIT_MAX_RPS"] = fmt.Sprint(pace.Get())
	case !flagSet(fl, "pace") && mode == progressBar:
		defaults["HWCAUDIT_MAX_RPS"] = fmt.Sprint(demoTerminalPace)
	}
	lookup := envconfig.MultiLookuper(envconfig.MapLookuper(sources), envconfig.OsLookuper(), envconfig.MapLookuper(defaults))
	cfg, err := loadConfig(ctx, lookup, now)
	if err != nil {
		return configError(stderr, err)
	}
	var log *slog.Logger
	switch mode {
	case progressBar:
		// As in a backfill: logs reach the terminal through the live
		// display, only warnings and errors while it is shown.
		cfg.display = newProgressDisplay(stderr, newProgressTracker(time.Now))
		if cfg.LogFormat == "auto" {
			cfg.LogFormat = "text"
		}
		log = slog.New(quietHandler{newLogger(cfg, cfg.display).Handler(), cfg.display})
		cfg.textLogsOnTerminal = true
	default:
		log = newLogger(cfg, stderr)
	}
	cfg.progressOff = mode == progressNone
	stdout = reportWriter(cfg, stdout, stderr)

	// Sign with AK/SK exactly as against the cloud; the simulator checks
	// every signature.
	signer, err := huaweiapi.NewSDKSigner(func() (auth.ICredential, error) {
		return auth.NewBasicCredentialsBuilder().
			WithAk(simulator.DemoAK).WithSk(simulator.DemoSK).
			WithProjectId(simulator.DemoProjectID).SafeBuild()
	})
	if err != nil {
		fmt.Fprintf(stderr, "exporter demo: %v\n", err)
		return exitFailed
	}

	width := tableWidth(stdout)
	writeWrapped(stdout, fmt.Sprintf("demo: simulator on %s serves %d SWR instances × 3 operations × %d audit logs, %d CodeArts Artifact repositories × %d audit logs, %d TaurusDB audit log files × %d SQL statements, %d DBSS operation logs, %d DBSS SQL audit records, %d DBSS alarms, %d CTS management and %d data traces",
		url, len(demo.SWR.Instances), demo.SWR.RecordsPerOperation, len(demo.Artifact.Repos), demo.Artifact.RecordsPerRepo, demo.TaurusDB.Files, demo.TaurusDB.SQL.Records, demo.DBSS.Records, demo.DBSS.SQLRecords, demo.DBSS.Alarms, demo.CTS.Traces, demo.CTS.DataTraces), "", width)
	writeWrapped(stdout, fmt.Sprintf("demo: writing %s to %s, dead letters to %s, checkpoints to %s",
		strings.Join(cfg.Sinks, ","), cfg.File.Dir, cfg.DeadLetter.URL, cfg.Checkpoint.URL), "", width)

	var reset func(context.Context, checkpoint.Store, []pipeline.Stream) error
	if fresh.Get().(bool) {
		reset = func(ctx context.Context, store checkpoint.Store, streams []pipeline.Stream) error {
			return startOver(ctx, stdout, cfg, store, streams)
		}
	}
	return export(ctx, cfg, signer, log, stdout, reset)
}

// demoTerminalPace is the demo's requests per second on a terminal: its
// few hundred requests then take about five seconds, long enough to watch
// the live progress.
const demoTerminalPace = 60

// demoSources are the variables that point the sources at the simulator on
// url, in the order `demo --serve` prints them.
func demoSources(demo simulator.Config, url string) [][2]string {
	return [][2]string{
		{"HWCAUDIT_PROJECT_ID", simulator.DemoProjectID},
		{"HWCAUDIT_SWR_INSTANCES", strings.Join(demo.SWR.Instances, ",")},
		{"HWCAUDIT_SWR_OPERATIONS", "pull,create,delete"},
		{"HWCAUDIT_SWR_ENDPOINT", url},
		{"HWCAUDIT_ARTIFACT_TENANT_ID", demo.Artifact.TenantID},
		{"HWCAUDIT_ARTIFACT_REPOS", artifactRepos(demo.Artifact.Repos)},
		{"HWCAUDIT_ARTIFACT_ENDPOINT", url},
		{"HWCAUDIT_GAUSSDB_INSTANCES", strings.Join(demo.TaurusDB.Instances, ",")},
		{"HWCAUDIT_GAUSSDB_ENDPOINT", url},
		{"HWCAUDIT_GAUSSDB_SQL", "true"},
		{"HWCAUDIT_DBSS_INSTANCES", strings.Join(demo.DBSS.Instances, ",")},
		{"HWCAUDIT_DBSS_ENDPOINT", url},
		{"HWCAUDIT_DBSS_STREAMS", "operation,sql,alarm"},
		{"HWCAUDIT_CTS_ENABLED", "true"},
		{"HWCAUDIT_CTS_TRACE_TYPES", "system,data"},
		{"HWCAUDIT_CTS_ENDPOINT", url},
	}
}

// serveDemo prints how to point the exporter at the simulator on url, as
// shell export lines, and serves until ctx ends (SIGINT or SIGTERM).
func serveDemo(ctx context.Context, demo simulator.Config, url string, stdout io.Writer) int {
	fmt.Fprintf(stdout, "# demo: simulator serving the demo's audit logs on %s until interrupted (Ctrl-C).\n", url)
	fmt.Fprintln(stdout, "# Point exporter run, check or backfill at it from another shell:")
	vars := append([][2]string{
		{"HWCAUDIT_REGION", "cn-north-4"},
		{"HUAWEICLOUD_SDK_AK", simulator.DemoAK},
		{"HUAWEICLOUD_SDK_SK", simulator.DemoSK},
		// Only AK/SK from the environment: no profile or metadata service.
		{"HWCAUDIT_CREDENTIALS", "env"},
		// The simulator takes far more than a real gateway's quota.
		{"HWCAUDIT_MAX_RPS", "2000"},
	}, demoSources(demo, url)...)
	for _, kv := range vars {
		fmt.Fprintf(stdout, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	fmt.Fprintln(stdout, "unset HWCAUDIT_AUTH_TOKEN")
	if f, ok := stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "# demo: simulator stopped")
	return exitOK
}

// shellQuote quotes v for a POSIX shell when it needs it.
func shellQuote(v string) string {
	if v != "" && strings.IndexFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.,:/+@%=", r))
	}) < 0 {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// startOver forgets the demo streams' checkpoints and removes the NDJSON
// files the demo wrote, so the next export starts from scratch.
func startOver(ctx context.Context, w io.Writer, cfg *Config, store checkpoint.Store, streams []pipeline.Stream) error {
	forgotten := 0
	for _, s := range streams {
		err := store.Delete(ctx, s.Key())
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err == nil {
			forgotten++
		}
	}
	removed := 0
	var dirs []string
	for _, src := range sourceTable {
		for _, ds := range append([]string{src.dataset}, src.moreDatasets...) {
			dirs = append(dirs, filepath.Join(cfg.File.Dir, ds))
		}
	}
	if d, ok := strings.CutPrefix(cfg.DeadLetter.URL, "file://"); ok {
		dirs = append(dirs, d)
	}
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
		for _, f := range files {
			if err := os.Remove(f); err != nil {
				return err
			}
			removed++
		}
	}
	fmt.Fprintf(w, "demo: --fresh: forgot %d checkpoints, removed %d output files\n", forgotten, removed)
	return nil
}

// artifactRepos renders repositories as HWCAUDIT_ARTIFACT_REPOS does.
func artifactRepos(repos []simulator.ArtifactRepo) string {
	var parts []string
	for _, r := range repos {
		parts = append(parts, r.Module+"/"+r.Repo)
	}
	return strings.Join(parts, ",")
}

// demoFlags is the demo's flag set, its usage written to w.
func demoFlags(w io.Writer) *flag.FlagSet {
	fl := flag.NewFlagSet("exporter demo", flag.ContinueOnError)
	fl.SetOutput(w)
	fl.Bool("fresh", false, "forget the demo's checkpoints and output and start over")
	fl.Duration("latency", 0, "simulated API latency `D` added to every request, e.g. 20ms")
	fl.Float64("pace", 0, fmt.Sprintf("`RPS`, API requests per second the demo reads at (default %d on a terminal, so that "+
		"the live progress shows for a few seconds; as fast as the simulator answers otherwise, which 0 also asks for)", demoTerminalPace))
	fl.String("progress", progressAuto, "how progress is shown: bar (live, on a terminal), log, none, or auto (bar on a terminal)")
	fl.String("serve", "", "run only the simulator on `ADDR` (host:port; port 0 picks one) until interrupted, "+
		"and print the variables that point run, check or backfill at it")
	fl.Usage = func() {
		fmt.Fprint(fl.Output(), "Usage of exporter demo:\n"+
			"  exporter demo [--fresh] [--pace RPS] [--latency D] [--progress MODE]\n"+
			"  exporter demo --serve ADDR [--latency D]\n\n"+
			"Exports the demo's audit logs from an embedded API simulator, no account needed, with\n"+
			"the same pipeline, signing, sinks and checkpoints as run; sinks and directories come\n"+
			"from the environment as for run. On a terminal the live progress shows while it runs.\n\n")
		printFlags(fl.Output(), fl)
	}
	return fl
}
