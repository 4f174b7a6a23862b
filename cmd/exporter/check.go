package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/checkpoint"
	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/deadletter"
	"github.com/hwcaudit/hwcaudit/sinks/essink"
	"github.com/hwcaudit/hwcaudit/sinks/kafkasink"
	"github.com/hwcaudit/hwcaudit/sinks/s3sink"
	"github.com/hwcaudit/hwcaudit/sources/artifact"
	"github.com/hwcaudit/hwcaudit/sources/dbss"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/swr"
	"github.com/hwcaudit/hwcaudit/sources/taurusdb"
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
	c := &checker{out: out}
	c.report("configuration", "valid", nil)

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
		for _, s := range swr.Streams(cfg.SWR, d, cfg.Region, cfg.API.ProjectID, cfg.start, now) {
			out = append(out, s)
		}
		for _, s := range artifact.Streams(cfg.Artifact, d, cfg.Region, cfg.API.ProjectID, cfg.start, now) {
			out = append(out, s)
		}
		for _, s := range taurusdb.Streams(cfg.TaurusDB, cfg.Window, d, cfg.Region, cfg.API.ProjectID, cfg.start, now) {
			out = append(out, s)
		}
		for _, s := range dbss.Streams(cfg.DBSS, cfg.Window, d, cfg.Region, cfg.API.ProjectID, cfg.start, now) {
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
				m["size"], m["page"] = "1", "1"
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
	if err := os.MkdirAll(dir, 0o755); err != nil {
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

func checkKafka(ctx context.Context, cfg kafkasink.Config) (string, error) {
	d := &kafka.Dialer{Timeout: 10 * time.Second, ClientID: "hwcaudit-check", DualStack: true}
	if cfg.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.TLSInsecureSkipVerify} //nolint:gosec // opt-in, documented
		if cfg.TLSCAFile != "" {
			pem, err := os.ReadFile(cfg.TLSCAFile)
			if err != nil {
				return "", fmt.Errorf("HWCAUDIT_KAFKA_TLS_CA_FILE: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return "", fmt.Errorf("HWCAUDIT_KAFKA_TLS_CA_FILE: %s holds no PEM certificate", cfg.TLSCAFile)
			}
			tc.RootCAs = pool
		}
		if cfg.TLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
			if err != nil {
				return "", fmt.Errorf("HWCAUDIT_KAFKA_TLS_CERT_FILE/HWCAUDIT_KAFKA_TLS_KEY_FILE: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		d.TLS = tc
	}
	var err error
	var mech sasl.Mechanism
	switch strings.ToUpper(cfg.SASLMechanism) {
	case "PLAIN":
		mech = plain.Mechanism{Username: cfg.SASLUsername, Password: cfg.SASLPassword}
	case "SCRAM-SHA-256":
		mech, err = scram.Mechanism(scram.SHA256, cfg.SASLUsername, cfg.SASLPassword)
	case "SCRAM-SHA-512":
		mech, err = scram.Mechanism(scram.SHA512, cfg.SASLUsername, cfg.SASLPassword)
	}
	if err != nil {
		return "", fmt.Errorf("HWCAUDIT_KAFKA_SASL_MECHANISM: %w", err)
	}
	d.SASLMechanism = mech
	var errs []error
	for _, b := range cfg.Brokers {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		conn, err := d.DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			conn.SetDeadline(dl)
		}
		brokers, err := conn.Brokers()
		if err == nil {
			var parts []kafka.Partition
			parts, err = conn.ReadPartitions()
			conn.Close()
			if err == nil {
				topics := map[string]bool{}
				for _, p := range parts {
					topics[p.Topic] = true
				}
				return fmt.Sprintf("%s answered: %d broker(s), %d topic(s)", b, len(brokers), len(topics)), nil
			}
		}
		conn.Close()
		errs = append(errs, fmt.Errorf("%s: metadata: %w", b, err))
	}
	if len(errs) == 0 {
		return "", errors.New("HWCAUDIT_KAFKA_BROKERS: no broker configured")
	}
	return "", errors.Join(errs...)
}

func checkES(ctx context.Context, cfg essink.Config) (string, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" || cfg.TLSInsecureSkipVerify {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.TLSInsecureSkipVerify} //nolint:gosec // opt-in, documented
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return "", fmt.Errorf("HWCAUDIT_ELASTICSEARCH_CA_FILE: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return "", fmt.Errorf("HWCAUDIT_ELASTICSEARCH_CA_FILE: %s holds no PEM certificate", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	urls := make([]string, len(cfg.URLs))
	for i, u := range cfg.URLs {
		urls[i] = strings.TrimSpace(u)
	}
	client, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: urls, APIKey: cfg.APIKey, Username: cfg.Username, Password: cfg.Password,
		Transport: tr, DisableRetry: true,
	})
	if err != nil {
		return "", err
	}
	res, err := client.Info(client.Info.WithContext(ctx))
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.IsError() {
		return "", fmt.Errorf("GET / answered %s", res.Status())
	}
	var info struct {
		ClusterName string `json:"cluster_name"`
		Version     struct {
			Number string `json:"number"`
		} `json:"version"`
	}
	_ = json.Unmarshal(body, &info)
	return fmt.Sprintf("cluster %q, version %s", info.ClusterName, info.Version.Number), nil
}

func checkS3(ctx context.Context, cfg s3sink.Config) (string, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return "", fmt.Errorf("load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.ForcePathStyle
	})
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(cfg.Bucket)}); err != nil {
		return "", fmt.Errorf("HeadBucket %s: %w", cfg.Bucket, err)
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
