package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
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
// environment, so the demo also shows how they are configured.
func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fl := demoFlags(stderr)
	fresh := fl.Lookup("fresh").Value.(flag.Getter)
	latency := fl.Lookup("latency").Value.(flag.Getter)
	if err := fl.Parse(args); err != nil {
		return exitUsage
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "exporter demo: unexpected argument %q\n", fl.Arg(0))
		return exitUsage
	}

	ctx, stop := signalContext()
	defer stop()
	now := time.Now()
	demo := simulator.DemoConfig(now)
	demo.Faults.Latency = latency.Get().(time.Duration)
	sim := simulator.New(demo)
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(stderr, "exporter demo: cannot start the simulator: %v\n", err)
		return exitFailed
	}
	defer sim.Close()

	// The simulator's sources win over the environment; everything else
	// (sinks, directories, tuning) is read from it as in `run`.
	sources := envconfig.MapLookuper(map[string]string{
		"HWCAUDIT_SWR_INSTANCES":      strings.Join(demo.SWR.Instances, ","),
		"HWCAUDIT_SWR_OPERATIONS":     "pull,create,delete",
		"HWCAUDIT_SWR_ENDPOINT":       url,
		"HWCAUDIT_ARTIFACT_TENANT_ID": demo.Artifact.TenantID,
		"HWCAUDIT_ARTIFACT_REPOS":     artifactRepos(demo.Artifact.Repos),
		"HWCAUDIT_ARTIFACT_ENDPOINT":  url,
		"HWCAUDIT_GAUSSDB_INSTANCES":  strings.Join(demo.TaurusDB.Instances, ","),
		"HWCAUDIT_GAUSSDB_ENDPOINT":   url,
		"HWCAUDIT_DBSS_INSTANCES":     strings.Join(demo.DBSS.Instances, ","),
		"HWCAUDIT_DBSS_ENDPOINT":      url,
		"HWCAUDIT_CTS_ENABLED":        "true",
		"HWCAUDIT_CTS_TRACE_TYPES":    "system,data",
		"HWCAUDIT_CTS_ENDPOINT":       url,
		"HWCAUDIT_PROJECT_ID":         simulator.DemoProjectID,
		"HWCAUDIT_AUTH_TOKEN":         "",
	})
	// The simulator takes far more than a real gateway's quota.
	defaults := envconfig.MapLookuper(map[string]string{"HWCAUDIT_REGION": "cn-north-4", "HWCAUDIT_MAX_RPS": "2000"})
	cfg, err := loadConfig(ctx, envconfig.MultiLookuper(sources, envconfig.OsLookuper(), defaults), now)
	if err != nil {
		return configError(stderr, err)
	}
	log := newLogger(cfg, stderr)
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

	fmt.Fprintf(stdout, "demo: simulator on %s serves %d SWR instances × 3 operations × %d audit logs, %d CodeArts Artifact repositories × %d audit logs, %d TaurusDB audit log files, %d DBSS operation logs, %d CTS management and %d data traces\n",
		url, len(demo.SWR.Instances), demo.SWR.RecordsPerOperation, len(demo.Artifact.Repos), demo.Artifact.RecordsPerRepo, demo.TaurusDB.Files, demo.DBSS.Records, demo.CTS.Traces, demo.CTS.DataTraces)
	fmt.Fprintf(stdout, "demo: writing %s to %s, dead letters to %s, checkpoints to %s\n",
		strings.Join(cfg.Sinks, ","), cfg.File.Dir, cfg.DeadLetter.URL, cfg.Checkpoint.URL)

	var reset func(context.Context, checkpoint.Store, []pipeline.Stream) error
	if fresh.Get().(bool) {
		reset = func(ctx context.Context, store checkpoint.Store, streams []pipeline.Stream) error {
			return startOver(ctx, stdout, cfg, store, streams)
		}
	}
	return export(ctx, cfg, signer, log, stdout, reset)
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
		dirs = append(dirs, filepath.Join(cfg.File.Dir, src.dataset))
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
	fl.Duration("latency", 0, "simulated API latency per request, e.g. 20ms")
	return fl
}
