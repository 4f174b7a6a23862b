// Package s3sink writes ECS events to an S3 bucket (AWS S3, Huawei OBS,
// MinIO or any S3-compatible store) as gzip-compressed NDJSON objects laid
// out in Hive-style partitions, so that Athena, Spark or an OBS data lake can
// prune by dataset and event hour:
//
//	{prefix}/dataset=huaweicloud.swr_audit/year=2026/month=11/day=21/hour=08/20261121T081502.123456789Z-3f9a1c2b5e7d9f01a2b3c4d5e6f70819.ndjson.gz
//
// Each Write splits its batch by (dataset, UTC hour of @timestamp) and stores
// one object per partition; the pipeline's batches of up to a few thousand
// events make objects of a sensible size. Large objects are uploaded in
// parts. Write returns nil only after every object was stored.
//
// Object names identify their content: the time of the partition's first
// event, then a hash of the stream key and of the object's NDJSON text
// (which holds every event's event.id). A batch re-sent after a crash or a
// failed Write makes the same names and the same bytes, so the re-send is
// harmless; a batch cut differently (a restart, a backfill ending earlier
// with --to) makes other names and can never replace an object holding
// events that were committed. Its events may then be stored twice; every
// copy is identical and carries the same event.id, by which readers
// deduplicate. Within a partition, object names sort in the order of their
// first event.
//
// Objects are also written with If-None-Match: *, so an existing object is
// never replaced even if two contents shared a name: a store answering 412
// holds the object already, and Write checks (by the SHA-256 of the text
// kept in the object's metadata) that it holds the same events. A store
// that does not implement conditional writes (501) is written to without
// the condition, which the content-derived names make safe.
package s3sink

//lint:file-ignore SA1019 manager.Uploader is deprecated for feature/s3/transfermanager; moving to it is its own change (multipart behaviour, tests against versitygw)

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress"
	"github.com/hwcaudit/hwcaudit/sinks/ndjson"
)

// Config configures the S3 sink. Credentials come from the AWS default
// chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity,
// ECS/EC2 instance roles).
type Config struct {
	// Bucket receives the objects. Required.
	Bucket string `env:"HWCAUDIT_S3_BUCKET"`

	// Prefix is prepended to every key, without leading or trailing "/"
	// (they are trimmed). Default "" (keys start with "dataset=").
	Prefix string `env:"HWCAUDIT_S3_PREFIX"`

	// Endpoint is the base URL of an S3-compatible store, such as
	// https://obs.ap-southeast-1.myhuaweicloud.com. A plain http:// URL is
	// refused unless its host is on loopback or AllowInsecure is set.
	// Default "": AWS S3, resolved from the region.
	Endpoint string `env:"HWCAUDIT_S3_ENDPOINT"`

	// AllowInsecure accepts a plain http:// Endpoint on a host that is not
	// on loopback (http://minio:9000): the signed requests, the events and
	// any session token then cross the network unencrypted. Default false.
	AllowInsecure bool `env:"HWCAUDIT_S3_ALLOW_INSECURE,default=false"`

	// Timeout bounds one request to the store, from sending it to reading
	// the whole answer; an upload part of PartSize must fit in it. 0 means
	// the default. Default 5m.
	Timeout time.Duration `env:"HWCAUDIT_S3_TIMEOUT,default=5m"`

	// ForcePathStyle addresses buckets as {endpoint}/{bucket}/{key} instead
	// of {bucket}.{endpoint}/{key}; MinIO and most self-hosted stores need
	// it. Default false.
	ForcePathStyle bool `env:"HWCAUDIT_S3_FORCE_PATH_STYLE,default=false"`

	// Region overrides the region of the AWS default chain (AWS_REGION,
	// the profile). When neither sets one, "us-east-1" is used, which
	// S3-compatible stores accept for signing. Default "".
	Region string `env:"HWCAUDIT_S3_REGION"`

	// SSE requests server-side encryption: "AES256" (keys managed by the
	// store) or "aws:kms". Default "": the bucket's default encryption.
	SSE string `env:"HWCAUDIT_S3_SSE"`

	// SSEKMSKeyID is the KMS key for SSE "aws:kms". Default "": the
	// store's default KMS key.
	SSEKMSKeyID string `env:"HWCAUDIT_S3_SSE_KMS_KEY_ID"`

	// PartSize is the size of the parts of a multipart upload; objects
	// smaller than it are stored with one PutObject. At least 5242880
	// (5 MiB). Default 16777216 (16 MiB).
	PartSize int64 `env:"HWCAUDIT_S3_PART_SIZE,default=16777216"`
}

// SSE values.
const (
	SSEAES256 = "AES256"
	SSEKMS    = "aws:kms"
)

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case strings.TrimSpace(c.Bucket) == "":
		return errors.New("HWCAUDIT_S3_BUCKET: must be set to the bucket that receives the events")
	case strings.ContainsAny(c.Bucket, "/ "):
		return fmt.Errorf("HWCAUDIT_S3_BUCKET: %q is not a bucket name (put the key prefix in HWCAUDIT_S3_PREFIX)", c.Bucket)
	case c.PartSize < manager.MinUploadPartSize:
		return fmt.Errorf("HWCAUDIT_S3_PART_SIZE: must be at least %d bytes, got %d", manager.MinUploadPartSize, c.PartSize)
	}
	return c.ValidateConnection()
}

// DefaultTimeout is Config.Timeout's default.
const DefaultTimeout = 5 * time.Minute

// ValidateConnection checks only the settings NewClient and SetSSE use
// (Endpoint, AllowInsecure, Timeout, SSE, SSEKMSKeyID), for other writers
// that share them with the sink but name their own bucket.
func (c Config) ValidateConnection() error {
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("HWCAUDIT_S3_TIMEOUT: must not be negative, got %s", c.Timeout)
	case c.SSE != "" && c.SSE != SSEAES256 && c.SSE != SSEKMS:
		return fmt.Errorf("HWCAUDIT_S3_SSE: must be %q, %q or empty, got %q", SSEAES256, SSEKMS, c.SSE)
	case c.SSEKMSKeyID != "" && c.SSE != SSEKMS:
		return fmt.Errorf("HWCAUDIT_S3_SSE_KMS_KEY_ID: needs HWCAUDIT_S3_SSE=%s", SSEKMS)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The value may hold user information: print only its origin.
			return fmt.Errorf("HWCAUDIT_S3_ENDPOINT: %s is not an http:// or https:// URL", egress.RedactURL(c.Endpoint))
		}
		if err := egress.CheckEndpoint(c.Endpoint, "HWCAUDIT_S3_ENDPOINT", "HWCAUDIT_S3_ALLOW_INSECURE", c.AllowInsecure); err != nil {
			return err
		}
	}
	return nil
}

// InsecureSettings names the settings in force that weaken transport
// security, for a warning at start and for exporter check.
func (c Config) InsecureSettings() []string {
	if c.Endpoint != "" && strings.HasPrefix(strings.ToLower(strings.TrimSpace(c.Endpoint)), "http://") {
		return []string{"HWCAUDIT_S3_ENDPOINT is plain http:// (" + egress.RedactURL(c.Endpoint) + ")"}
	}
	return nil
}

// Sink is a pipeline.Sink storing objects in S3. It is safe for concurrent
// use.
type Sink struct {
	cfg      Config
	prefix   string
	client   *Client
	uploader *manager.Uploader
	closed   atomic.Bool
	// unconditional is set once the store answered 501 to If-None-Match.
	unconditional atomic.Bool
}

var _ pipeline.Sink = (*Sink)(nil)

// New validates cfg and builds a client from the AWS default chain. optFns
// adjust the client after cfg was applied (tests set static credentials).
// It does not contact the store.
func New(ctx context.Context, cfg Config, optFns ...func(*s3.Options)) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := NewClient(ctx, cfg, optFns...)
	if err != nil {
		return nil, fmt.Errorf("s3sink: %w", err)
	}
	return &Sink{
		cfg:    cfg,
		prefix: strings.Trim(cfg.Prefix, "/"),
		client: client,
		uploader: manager.NewUploader(client, func(u *manager.Uploader) {
			u.PartSize = cfg.PartSize
		}),
	}, nil
}

// Client is an S3 client for one configured store, with what its errors
// need: the secrets it sends, to redact, and its endpoint, to name.
type Client struct {
	*s3.Client
	endpoint string
	secrets  *egress.Secrets
}

// NewClient returns an S3 client for cfg's Endpoint, Region,
// ForcePathStyle and Timeout, with credentials and region from the AWS
// default chain; cfg.Region, when not empty, overrides the chain's, and
// "us-east-1" is the fallback. An empty endpoint means AWS S3. optFns
// adjust the client; then its credentials are wrapped so that every key
// they hand out is redacted from the client's errors (Client.Classify), and
// its HTTP client is replaced by one that follows redirects only on the
// endpoint's own origin (egress.CheckRedirect). The other fields of cfg are
// not used.
func NewClient(ctx context.Context, cfg Config, optFns ...func(*s3.Options)) (*Client, error) {
	endpoint, pathStyle := cfg.Endpoint, cfg.ForcePathStyle
	var loadOpts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(cfg.Region))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	opts := []func(*s3.Options){func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			// S3-compatible stores (OBS, older MinIO) reject the
			// streaming checksum trailers the SDK sends by default.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
		o.UsePathStyle = pathStyle
	}}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	secrets := &egress.Secrets{}
	last := func(o *s3.Options) {
		o.Credentials = egress.AWSCredentials(o.Credentials, secrets)
		o.HTTPClient = egress.HTTPClient(timeout, nil)
	}
	c := &Client{Client: s3.NewFromConfig(awsCfg, append(append(opts, optFns...), last)...), secrets: secrets}
	c.endpoint = "AWS S3"
	if endpoint != "" {
		c.endpoint = egress.RedactURL(endpoint)
	}
	return c, nil
}

// Classify decides, once for every S3 writer, what retrying can fix, and
// removes every credential the client has used from the error's text.
// Permanent: the bucket does not exist, the credentials or the KMS key are
// refused, the endpoint's TLS certificate does not verify. Everything else
// (network faults, throttling, 5xx) is left retryable, for the pipeline to
// retry.
func (c *Client) Classify(err error) error {
	if err == nil {
		return nil
	}
	if e := egress.CertError(err, "s3", c.endpoint,
		"add the CA that signed the store's certificate to the system trust store (SSL_CERT_FILE or SSL_CERT_DIR), or fix HWCAUDIT_S3_ENDPOINT"); e != nil {
		return c.secrets.Error(e)
	}
	return c.secrets.Error(Classify(err))
}

// partition is the events of one batch that go to one object.
type partition struct {
	dataset string // sanitized
	hour    time.Time
	first   time.Time
	ids     []string
	docs    [][]byte
}

// Write stores the batch's events, one object per (dataset, hour), and
// returns nil once all objects are stored. An empty document, or one with a
// newline that is not valid JSON (so cannot be compacted onto one line), is
// rejected with a *pipeline.RejectedError while the others are stored.
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	if b == nil || len(b.Events) == 0 {
		return nil
	}
	if s.closed.Load() {
		return pipeline.Permanent(errors.New("s3sink: write after Close"))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3sink: %w", err)
	}
	var order []string
	parts := make(map[string]*partition)
	var rejected map[int]string
	for i := range b.Events {
		ev := &b.Events[i]
		doc, reason := ndjson.Line(ev.Doc)
		if reason != "" {
			if rejected == nil {
				rejected = make(map[int]string)
			}
			rejected[i] = reason
			continue
		}
		ds := PartitionValue(ev.Dataset)
		ts := ev.Timestamp.UTC()
		hour := ts.Truncate(time.Hour)
		pk := ds + "\x00" + hour.Format(time.RFC3339)
		p, ok := parts[pk]
		if !ok {
			p = &partition{dataset: ds, hour: hour, first: ts}
			parts[pk] = p
			order = append(order, pk)
		}
		p.ids = append(p.ids, ev.ID)
		p.docs = append(p.docs, doc)
	}
	for _, pk := range order {
		if err := s.put(ctx, b.Stream, parts[pk]); err != nil {
			return err
		}
	}
	if rejected != nil {
		return &pipeline.RejectedError{Reasons: rejected}
	}
	return nil
}

// key returns the object key for a partition's events, whose NDJSON text
// has the SHA-256 sum: see the package documentation.
func (s *Sink) key(stream string, p *partition, sum [sha256.Size]byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00", stream)
	h.Write(sum[:])
	name := fmt.Sprintf("dataset=%s/year=%04d/month=%02d/day=%02d/hour=%02d/%s-%s.ndjson.gz",
		p.dataset, p.hour.Year(), int(p.hour.Month()), p.hour.Day(), p.hour.Hour(),
		p.first.Format("20060102T150405.000000000Z"), hex.EncodeToString(h.Sum(nil)[:16]))
	if s.prefix == "" {
		return name
	}
	return s.prefix + "/" + name
}

// MetaSHA256 is the metadata entry holding the hex SHA-256 of an object's
// uncompressed NDJSON text, by which a replay is told from a collision.
const MetaSHA256 = "hwcaudit-sha256"

func (s *Sink) put(ctx context.Context, stream string, p *partition) error {
	text := sha256.New()
	var buf bytes.Buffer
	// compress/gzip writes no time or name into the header, so the same
	// events always make the same bytes.
	zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	for _, d := range p.docs {
		zw.Write(d)
		zw.Write([]byte{'\n'})
		text.Write(d)
		text.Write([]byte{'\n'})
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("s3sink: gzip: %w", err)
	}
	var sum [sha256.Size]byte
	text.Sum(sum[:0])
	key := s.key(stream, p, sum)
	in := &s3.PutObjectInput{
		Bucket:      aws.String(s.cfg.Bucket),
		Key:         aws.String(key),
		ContentType: aws.String("application/gzip"),
		Metadata: map[string]string{
			"hwcaudit-stream": stream,
			"hwcaudit-events": fmt.Sprint(len(p.docs)),
			MetaSHA256:        hex.EncodeToString(sum[:]),
		},
	}
	s.cfg.SetSSE(in)
	err := PutNew(ctx, s.client, &s.unconditional, in, buf.Bytes(), func(in *s3.PutObjectInput) error {
		_, err := s.uploader.Upload(ctx, in)
		return err
	})
	if err != nil {
		return s.client.Classify(fmt.Errorf("s3sink: stream %s: put s3://%s/%s: %w", stream, s.cfg.Bucket, key, err))
	}
	return nil
}

// ErrOtherContent is wrapped by PutNew's error when the key is taken by an
// object holding other content.
var ErrOtherContent = errors.New("an object with other content already has this name; it was not replaced")

// PutNew stores in (whose Metadata must hold MetaSHA256) with body by
// calling put, conditionally on the key being free (If-None-Match: *). A
// 412 is success when the object there carries the same MetaSHA256 (a
// replay), and an error wrapping ErrOtherContent, permanent, otherwise. A
// 501 answer, or an error code NotImplemented, sets unconditional and
// stores without the condition from then on (content-derived keys make an
// overwrite store the same bytes). Errors are returned unclassified.
func PutNew(ctx context.Context, c *Client, unconditional *atomic.Bool, in *s3.PutObjectInput, body []byte, put func(*s3.PutObjectInput) error) error {
	for {
		in.Body = bytes.NewReader(body)
		cond := !unconditional.Load()
		in.IfNoneMatch = nil
		if cond {
			in.IfNoneMatch = aws.String("*")
		}
		err := put(in)
		switch {
		case err == nil:
			return nil
		case cond && notImplemented(err):
			unconditional.Store(true)
			continue
		case cond && isStatus(err, http.StatusPreconditionFailed):
			head, herr := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: in.Bucket, Key: in.Key})
			if herr != nil {
				return fmt.Errorf("exists (412), and reading its metadata failed: %w", herr)
			}
			if head.Metadata[MetaSHA256] != in.Metadata[MetaSHA256] {
				return pipeline.Permanent(fmt.Errorf("%w (its %s is %q, this one's %q)", ErrOtherContent, MetaSHA256, head.Metadata[MetaSHA256], in.Metadata[MetaSHA256]))
			}
			return nil // stored before: a replay
		}
		return err
	}
}

func notImplemented(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NotImplemented" {
		return true
	}
	return isStatus(err, http.StatusNotImplemented)
}

func isStatus(err error, code int) bool {
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == code
}

// SetSSE asks for the server-side encryption c.SSE and c.SSEKMSKeyID name;
// with SSE empty it leaves in alone (the bucket's default encryption).
func (c Config) SetSSE(in *s3.PutObjectInput) {
	switch c.SSE {
	case SSEAES256:
		in.ServerSideEncryption = types.ServerSideEncryptionAes256
	case SSEKMS:
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		if c.SSEKMSKeyID != "" {
			in.SSEKMSKeyId = aws.String(c.SSEKMSKeyID)
		}
	}
}

// Classify marks errors of S3 calls that retrying cannot fix as permanent:
// the bucket does not exist, or the credentials are refused. Everything
// else (network faults, throttling, 5xx) is left retryable, for the
// pipeline to retry. Client.Classify also handles certificate failures and
// redaction, and is what writers use.
func Classify(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
			"InvalidBucketName", "KMS.NotFoundException", "KMS.DisabledException", "InvalidArgument":
			return pipeline.Permanent(err)
		}
	}
	return err
}

// PartitionValue maps a dataset (or another name, such as a stream key) to
// a partition value that is safe in a key and in Hive: bytes other than
// [A-Za-z0-9._-] become '_', and an empty name becomes "unknown". Distinct
// names can map to the same value ("swr/a" and "swr_a").
func PartitionValue(name string) string {
	if name == "" {
		return "unknown"
	}
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Close makes later Writes fail. Every Write that returned nil has already
// stored its objects, so there is nothing to flush.
func (s *Sink) Close(ctx context.Context) error {
	s.closed.Store(true)
	return nil
}
