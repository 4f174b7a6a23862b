package deadletter

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/s3sink"
)

// S3 is a Writer storing each Put as one gzip-compressed NDJSON object in an
// S3 bucket (Huawei OBS, AWS S3, MinIO…), under
//
//	{prefix}/stream={stream}/dt={YYYY-MM-DD}/deadletter-{time}-{hash}.ndjson.gz
//
// where stream is the first letter's stream as s3sink.PartitionValue makes
// it safe ("swr/ins-1/pull" becomes "swr_ins-1_pull"), dt and time (UTC,
// 20060102T150405.000000000Z) are the first letter's time, and hash is the
// first 128 bits of the SHA-256 of the object's NDJSON text, in hex. The key
// depends only on the letters, so a Put retried with the same letters makes
// the same object, and other letters never share its name. Objects are
// written with If-None-Match: * as the S3 sink's are (s3sink.PutNew): an
// existing object is never replaced; a replay finds its own object and
// succeeds. It is safe for concurrent use.
type S3 struct {
	cfg    s3sink.Config
	prefix string // "" or ends in "/"
	client *s3sink.Client
	now    func() time.Time
	closed atomic.Bool
	// unconditional is set once the store answered 501 to If-None-Match.
	unconditional atomic.Bool
}

var _ Writer = (*S3)(nil)

// NewS3 returns a Writer storing letters in cfg.Bucket under cfg.Prefix,
// reaching the store as the S3 sink does (s3sink.NewClient: cfg.Endpoint,
// cfg.Region, cfg.ForcePathStyle, the AWS default chain) and encrypting as
// cfg.SSE and cfg.SSEKMSKeyID ask. optFns adjust the client (tests set
// static credentials). It does not contact the store.
func NewS3(ctx context.Context, cfg s3sink.Config, optFns ...func(*s3.Options)) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("deadletter: S3 bucket is empty")
	}
	if err := cfg.ValidateConnection(); err != nil {
		return nil, fmt.Errorf("deadletter: %w", err)
	}
	client, err := s3sink.NewClient(ctx, cfg, optFns...)
	if err != nil {
		return nil, fmt.Errorf("deadletter: %w", err)
	}
	w := &S3{cfg: cfg, client: client, now: time.Now}
	if p := strings.Trim(cfg.Prefix, "/"); p != "" {
		w.prefix = p + "/"
	}
	return w, nil
}

// Put stores letters as one object and returns nil only once the store has
// acknowledged it. Errors that retrying cannot fix (no such bucket, refused
// credentials, Put after Close) are pipeline.Permanent; the others, such as
// an unreachable store, are retryable.
func (w *S3) Put(ctx context.Context, letters []pipeline.DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	if w.closed.Load() {
		return pipeline.Permanent(errors.New("deadletter: put after Close"))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("deadletter: %w", err)
	}
	var text bytes.Buffer
	for _, dl := range letters {
		b, err := encode(dl, w.now)
		if err != nil {
			return fmt.Errorf("deadletter: stream %s: %w", dl.Stream, err)
		}
		text.Write(b)
		text.WriteByte('\n')
	}
	first := letters[0].Time
	if first.IsZero() {
		first = w.now()
	}
	sum := sha256.Sum256(text.Bytes())
	key := w.key(letters[0].Stream, first.UTC(), sum)

	var body bytes.Buffer
	// compress/gzip writes no time or name into the header, so the same
	// letters always make the same bytes.
	zw := gzip.NewWriter(&body)
	zw.Write(text.Bytes())
	if err := zw.Close(); err != nil {
		return fmt.Errorf("deadletter: gzip: %w", err)
	}
	in := &s3.PutObjectInput{
		Bucket:      aws.String(w.cfg.Bucket),
		Key:         aws.String(key),
		ContentType: aws.String("application/gzip"),
		Metadata: map[string]string{
			"hwcaudit-stream":  letters[0].Stream,
			"hwcaudit-letters": strconv.Itoa(len(letters)),
			s3sink.MetaSHA256:  hex.EncodeToString(sum[:]),
		},
	}
	w.cfg.SetSSE(in)
	err := s3sink.PutNew(ctx, w.client, &w.unconditional, in, body.Bytes(), func(in *s3.PutObjectInput) error {
		_, err := w.client.PutObject(ctx, in)
		return err
	})
	if err != nil {
		return w.client.Classify(fmt.Errorf("deadletter: stream %s: put s3://%s/%s: %w", letters[0].Stream, w.cfg.Bucket, key, err))
	}
	return nil
}

func (w *S3) key(stream string, first time.Time, sum [sha256.Size]byte) string {
	return fmt.Sprintf("%sstream=%s/dt=%s/deadletter-%s-%s.ndjson.gz",
		w.prefix, s3sink.PartitionValue(stream), first.Format(time.DateOnly),
		first.Format("20060102T150405.000000000Z"), hex.EncodeToString(sum[:16]))
}

// Close makes later Puts fail. Every Put that returned nil has already
// stored its object, so there is nothing to flush.
func (w *S3) Close(ctx context.Context) error {
	w.closed.Store(true)
	return nil
}
