package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/checkpoint"
	"github.com/hwcaudit/hwcaudit/sinks/deadletter"
	"github.com/hwcaudit/hwcaudit/sinks/filesink"
	"github.com/hwcaudit/hwcaudit/sinks/s3sink"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
)

// checkTimeout bounds each sink and store check.
const checkTimeout = 15 * time.Second

// checker prints one line per check and remembers whether any failed.
type checker struct {
	out    io.Writer
	failed int
}

func (c *checker) report(what string, detail string, err error) {
	if err != nil {
		c.failed++
		fmt.Fprintf(c.out, "FAIL  %s: %v\n", what, err)
		return
	}
	fmt.Fprintf(c.out, "ok    %s: %s\n", what, detail)
}

// cmdCheck validates the configuration like run, then tests credentials,
// every source stream, every sink, the dead-letter directory and the
// checkpoint store without exporting anything.
func cmdCheck(stdout, stderr io.Writer) int {
	ctx, stop := signalContext()
	defer stop()
	cfg, err := loadConfig(ctx, envconfig.OsLookuper(), time.Now())
	if err != nil {
		return configError(stderr, err)
	}
	return runChecks(ctx, cfg, stdout)
}

func runChecks(ctx context.Context, cfg *Config, out io.Writer) int {
	c := &checker{out: redactingWriter{w: out, secrets: cfg.secrets}}
	c.report("configuration", "valid", nil)
	for _, s := range insecureSettings(cfg) {
		fmt.Fprintf(c.out, "warn  insecure: %s\n", s)
	}

	auth, err := authorizer(cfg)
	c.report("credentials", fmt.Sprint(auth)+" resolved", err)
	if err == nil {
		checkSources(ctx, cfg, auth, c)
	}
	for _, name := range cfg.Sinks {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		detail, err := checkSink(cctx, cfg, name)
		cancel()
		c.report("sink "+name, detail, err)
	}
	detail, err := checkDeadLetter(cfg.DeadLetter)
	c.report("dead letter", detail, err)
	checkStore(ctx, cfg.Checkpoint, c)

	if c.failed > 0 {
		fmt.Fprintf(out, "%d check(s) failed\n", c.failed)
		return exitFailed
	}
	fmt.Fprintln(out, "all checks passed")
	return exitOK
}

// prober is a source stream that can ask its API for the first page a
// run would read, shrunk to one record, through the stream's own request
// code. total is the API's count of the records that page belongs to, -1
// when the API gives none; asked is false when there is nothing to ask
// yet.
type prober interface {
	Key() string
	Probe(ctx context.Context) (total int64, asked bool, err error)
}

// checkSources probes every configured stream. The streams are built as a
// run builds them, on a client that only counts the requests.
func checkSources(ctx context.Context, cfg *Config, auth huaweiapi.Authorizer, c *checker) {
	api := &countingDoer{api: huaweiapi.NewClient(cfg.API, auth)}
	for _, s := range allStreams(cfg, api, time.Now) {
		api.requests = 0
		cctx, cancel := context.WithTimeout(ctx, 2*cfg.API.Timeout)
		total, asked, err := s.Probe(cctx)
		cancel()
		switch {
		case err != nil:
			c.report("source "+s.Key(), "", err)
		case !asked:
			c.report("source "+s.Key(), "nothing to request yet (the start time is within the settle delay)", nil)
		default:
			detail := fmt.Sprintf("%d request", api.requests)
			if api.requests != 1 {
				detail += "s"
			}
			if total < 0 {
				detail += ", the API gives no count"
			} else {
				detail += fmt.Sprintf(", total %d records", total)
			}
			c.report("source "+s.Key(), detail, nil)
		}
	}
}

// countingDoer counts the requests a probe sends (DBSS may fall back to
// its older path).
type countingDoer struct {
	api      huaweiapi.Doer
	requests int
}

func (d *countingDoer) Do(ctx context.Context, req huaweiapi.Request) ([]byte, error) {
	d.requests++
	return d.api.Do(ctx, req)
}

func checkSink(ctx context.Context, cfg *Config, name string) (string, error) {
	s, ok := sinkNamed(name)
	if !ok {
		return "", fmt.Errorf("unknown sink %q", name)
	}
	return s.check(ctx, cfg)
}

// checkDirWritable checks a directory as the file sink's own Check does.
func checkDirWritable(dir string) (string, error) {
	if err := filesink.Check(dir); err != nil {
		return "", err
	}
	return dir + " is writable", nil
}

// checkDeadLetter tests the dead-letter destination: a directory by
// creating and removing a file, an S3 bucket as the S3 sink's is checked
// (HeadBucket: the store answers, the bucket exists and the credentials are
// accepted; write permission is not tested).
func checkDeadLetter(cfg deadletter.Config) (string, error) {
	s3cfg, isS3, err := cfg.S3Location()
	if err != nil {
		return "", err
	}
	if isS3 {
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		defer cancel()
		detail, err := checkS3(ctx, s3cfg)
		if err != nil {
			return "", fmt.Errorf("HWCAUDIT_DEADLETTER %s: %w", cfg.URL, err)
		}
		return fmt.Sprintf("%s (letters go to %s)", detail, cfg.URL), nil
	}
	dir, err := fileURLDir(cfg.URL)
	if err != nil {
		return "", fmt.Errorf("HWCAUDIT_DEADLETTER: %w", err)
	}
	return checkDirWritable(dir)
}

// fileURLDir is the directory of a file:// URL, read as the checkpoint
// and dead-letter configurations read it.
func fileURLDir(raw string) (string, error) {
	rest, ok := strings.CutPrefix(raw, "file://")
	if !ok {
		rest, ok = strings.CutPrefix(raw, "file:")
	}
	if !ok || rest == "" {
		return "", fmt.Errorf("%q is not a file:// URL", raw)
	}
	return rest, nil
}

// The sink checks (sinkTable) call the sinks' own code (client
// construction, TLS, SASL, credentials, redirect refusal, error
// classification and redaction), so that check cannot pass where run
// would fail.

// checkS3 asks for the bucket with the S3 sink's own client (s3sink.Check).
func checkS3(ctx context.Context, cfg s3sink.Config) (string, error) {
	if err := s3sink.Check(ctx, cfg); err != nil {
		return "", err
	}
	return "bucket " + cfg.Bucket + " is reachable", nil
}

// checkStore lists the checkpoints and reports whether the run lock is
// free. Taking the lock for a moment is how a free lock is told from a
// held one; a run starting in that moment would exit without exporting.
func checkStore(ctx context.Context, cfg checkpoint.Config, c *checker) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	store, err := checkpoint.Open(cfg, version())
	if err != nil {
		c.report("checkpoint store", "", err)
		return
	}
	cps, err := store.List(ctx)
	c.report("checkpoint store", strconv.Itoa(len(cps))+" checkpoint(s)", err)
	unlock, err := store.Lock(ctx)
	switch {
	case errors.Is(err, checkpoint.ErrLocked):
		c.report("run lock", "held by a run in progress: "+err.Error(), nil)
	case err != nil:
		c.report("run lock", "", err)
	default:
		unlock()
		c.report("run lock", "free", nil)
	}
}
