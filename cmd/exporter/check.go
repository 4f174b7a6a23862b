package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/checkpoint"
	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/deadletter"
	"github.com/hwcaudit/hwcaudit/sinks/essink"
	"github.com/hwcaudit/hwcaudit/sinks/kafkasink"
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

// probeStream is a source stream that check can open.
type probeStream interface {
	Key() string
	Open(ctx context.Context, cursor []byte) (pipeline.Reader, error)
}

// checkSources reads the smallest possible page of every stream: the
// stream builds its first request as a run would, and probeDoer shrinks it
// to one record and stops the reader after the answer.
func checkSources(ctx context.Context, cfg *Config, auth huaweiapi.Authorizer, c *checker) {
	api := huaweiapi.NewClient(cfg.API, auth)
	now := time.Now
	probe := func(build func(d *probeDoer) []probeStream) {
		d := &probeDoer{api: api}
		for _, s := range build(d) {
			d.reset()
			cctx, cancel := context.WithTimeout(ctx, 2*cfg.API.Timeout)
			detail, err := d.probe(cctx, s)
			cancel()
			c.report("source "+s.Key(), detail, err)
		}
	}
	probe(func(d *probeDoer) (out []probeStream) {
		for _, s := range allStreams(cfg, d, now) {
			out = append(out, s)
		}
		return out
	})
}

// errProbed stops a reader once its first request was answered.
var errProbed = errors.New("probe answered")

// probeDoer forwards a reader's requests with the page shrunk to one
// record, and stops the reader after the first answer.
type probeDoer struct {
	api      *huaweiapi.Client
	requests int
	body     []byte
}

func (d *probeDoer) reset() { d.requests, d.body = 0, nil }

func (d *probeDoer) Do(ctx context.Context, req huaweiapi.Request) ([]byte, error) {
	if d.body != nil {
		return nil, errProbed
	}
	if req.Query != nil {
		q := make(map[string][]string, len(req.Query))
		for k, v := range req.Query {
			q[k] = v
		}
		for _, k := range []string{"limit", "page_size"} {
			if _, ok := q[k]; ok {
				q[k] = []string{"1"}
			}
		}
		if _, ok := q["offset"]; ok {
			q["offset"] = []string{"0"}
		}
		if _, ok := q["page_num"]; ok {
			q["page_num"] = []string{"1"}
		}
		req.Query = q
	}
	if len(req.Body) > 0 {
		var m map[string]any
		if json.Unmarshal(req.Body, &m) == nil {
			if _, ok := m["size"]; ok {
				// In the type the API takes: strings for the DBSS
				// operation logs, numbers for its SQL audit and alarms.
				one := func(v any) any {
					if _, isNumber := v.(float64); isNumber {
						return 1
					}
					return "1"
				}
				m["size"], m["page"] = one(m["size"]), one(m["page"])
				if b, err := json.Marshal(m); err == nil {
					req.Body = b
				}
			}
		}
	}
	d.requests++
	body, err := d.api.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	d.body = body
	return nil, errProbed
}

func (d *probeDoer) probe(ctx context.Context, s probeStream) (string, error) {
	r, err := s.Open(ctx, nil)
	if err != nil {
		return "", err
	}
	_, err = r.Next(ctx)
	if d.body == nil {
		if err != nil {
			return "", err
		}
		return "nothing to request yet (the start time is within the settle delay)", nil
	}
	detail := fmt.Sprintf("%d request", d.requests)
	if d.requests != 1 {
		detail += "s"
	}
	if total, ok := pageTotal(d.body); ok {
		detail += fmt.Sprintf(", total %d records", total)
	}
	return detail, nil
}

// pageTotal finds the record count in an audit-log page: "total" (SWR),
// "result.total" (CodeArts Artifact), "total_count" (TaurusDB) or
// "total_num" (DBSS).
func pageTotal(body []byte) (int64, bool) {
	var p struct {
		Total      *int64 `json:"total"`
		TotalCount *int64 `json:"total_count"`
		TotalNum   *int64 `json:"total_num"`
		Result     *struct {
			Total *int64 `json:"total"`
		} `json:"result"`
	}
	if json.Unmarshal(body, &p) != nil {
		return 0, false
	}
	for _, t := range []*int64{p.Total, p.TotalCount, p.TotalNum} {
		if t != nil {
			return *t, true
		}
	}
	if p.Result != nil && p.Result.Total != nil {
		return *p.Result.Total, true
	}
	return 0, false
}

func checkSink(ctx context.Context, cfg *Config, name string) (string, error) {
	switch name {
	case "file":
		return checkDirWritable(cfg.File.Dir)
	case "stdout":
		return "nothing to check", nil
	case "kafka":
		return checkKafka(ctx, cfg.Kafka)
	case "elasticsearch":
		return checkES(ctx, cfg.ES)
	case "s3":
		return checkS3(ctx, cfg.S3)
	}
	return "", fmt.Errorf("unknown sink %q", name)
}

// checkDirWritable creates dir if needed, then creates and removes a file.
func checkDirWritable(dir string) (string, error) {
	// 0750, as the sinks create their directories.
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, ".hwcaudit-check-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
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

// The sink checks call the sinks' own code (client construction, TLS,
// SASL, credentials, redirect refusal, error classification and
// redaction), so that check cannot pass where run would fail.

func checkKafka(ctx context.Context, cfg kafkasink.Config) (string, error) {
	if err := kafkasink.Check(ctx, cfg); err != nil {
		return "", err
	}
	return strings.Join(cfg.Brokers, ",") + " answered with the cluster's metadata", nil
}

func checkES(ctx context.Context, cfg essink.Config) (string, error) {
	if err := essink.Check(ctx, cfg); err != nil {
		return "", err
	}
	return "the cluster answered GET / with the configured credentials", nil
}

// checkS3 asks for the bucket (HeadBucket) with the sink's client: the
// store answers, the bucket exists and the credentials are accepted; write
// permission is not tested.
func checkS3(ctx context.Context, cfg s3sink.Config) (string, error) {
	client, err := s3sink.NewClient(ctx, cfg)
	if err != nil {
		return "", err
	}
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(cfg.Bucket)}); err != nil {
		return "", client.Classify(fmt.Errorf("HeadBucket %s: %w", cfg.Bucket, err))
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
