package s3sink

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/s3sink/s3test"
	"github.com/hwcaudit/hwcaudit/sinks/sinktest"
)

func TestConfig(t *testing.T) {
	var c Config
	if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{
		Target: &c, Lookuper: envconfig.MapLookuper(map[string]string{"HWCAUDIT_S3_BUCKET": "b"}),
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil || c.PartSize != 16<<20 || c.ForcePathStyle {
		t.Fatalf("defaults %+v: %v", c, err)
	}
	ok := Config{Bucket: "b", PartSize: 16 << 20}
	tests := []struct {
		name string
		mod  func(*Config)
		want string // "" means valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"no bucket", func(c *Config) { c.Bucket = " " }, "HWCAUDIT_S3_BUCKET"},
		{"bucket with slash", func(c *Config) { c.Bucket = "b/p" }, "HWCAUDIT_S3_BUCKET"},
		{"sse aes", func(c *Config) { c.SSE = "AES256" }, ""},
		{"sse kms key", func(c *Config) { c.SSE = "aws:kms"; c.SSEKMSKeyID = "k" }, ""},
		{"sse bad", func(c *Config) { c.SSE = "aes256" }, "HWCAUDIT_S3_SSE"},
		{"kms key without kms", func(c *Config) { c.SSEKMSKeyID = "k" }, "HWCAUDIT_S3_SSE_KMS_KEY_ID"},
		{"endpoint", func(c *Config) { c.Endpoint = "https://obs.ap-southeast-1.myhuaweicloud.com" }, ""},
		{"endpoint no scheme", func(c *Config) { c.Endpoint = "minio:9000" }, "HWCAUDIT_S3_ENDPOINT"},
		{"part size", func(c *Config) { c.PartSize = 1 << 20 }, "HWCAUDIT_S3_PART_SIZE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func newSink(t *testing.T, srv *s3test.Server, cfg Config) *Sink {
	t.Helper()
	cfg.Endpoint = srv.Endpoint
	cfg.ForcePathStyle = true
	cfg.Region = srv.Region
	if cfg.PartSize == 0 {
		cfg.PartSize = 16 << 20
	}
	s, err := New(context.Background(), cfg, func(o *s3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")
		// Fail fast while the server is down; the pipeline retries.
		o.Retryer = retry.AddWithMaxAttempts(retry.NewStandard(), 2)
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readDocs returns every line of every object under prefix, objects in key
// order.
func readDocs(t *testing.T, srv *s3test.Server, bucket, prefix string) [][]byte {
	t.Helper()
	keys, bodies := srv.ReadAll(t, bucket, prefix)
	var docs [][]byte
	for i, body := range bodies {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: not gzip: %v", keys[i], err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", keys[i], err)
		}
		if len(data) == 0 || data[len(data)-1] != '\n' {
			t.Fatalf("%s: empty or ends in a partial line", keys[i])
		}
		for ln := range bytes.Lines(data) {
			docs = append(docs, bytes.TrimSuffix(ln, []byte("\n")))
		}
	}
	return docs
}

func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	h := sinktest.Harness{
		New: func(t *testing.T) (pipeline.Sink, sinktest.ReadAll) {
			bucket := srv.Bucket(t)
			s := newSink(t, srv, Config{Bucket: bucket, Prefix: "/audit/"})
			return s, func(t *testing.T) [][]byte { return readDocs(t, srv, bucket, "audit/") }
		},
		// Re-sending the same batch overwrites the same objects, but a
		// re-send cut at other boundaries adds copies (see the package
		// documentation), so the sink does not claim Dedupes;
		// TestResendSameBatch checks the exact re-send.
		Ordered: true,
	}
	if srv.CanStop() {
		h.Down = func(t *testing.T) { srv.Stop(t) }
		h.Up = func(t *testing.T) { srv.Restart(t) }
	}
	sinktest.Run(t, h)
}

func event(id, ds string, ts time.Time) pipeline.Event {
	return pipeline.Event{ID: id, Dataset: ds, Timestamp: ts, Doc: []byte(`{"event":{"id":"` + id + `"}}`)}
}

func TestLayout(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	s := newSink(t, srv, Config{Bucket: bucket, Prefix: "logs/hw"})
	h8 := time.Date(2026, 11, 21, 8, 15, 2, 123456789, time.FixedZone("CST", 8*3600)) // 00:15 UTC
	b := &pipeline.Batch{Stream: "swr/ins-1/pull", Events: []pipeline.Event{
		event("a", "huaweicloud.swr_audit", h8),
		event("b", "huaweicloud.swr_audit", h8.Add(time.Minute)),
		event("c", "huaweicloud.swr_audit", h8.Add(time.Hour)),
		event("d", "weird/ds set", h8),
		event("e", "huaweicloud.swr_audit", h8.Add(2*time.Minute)),
	}}
	ctx := context.Background()
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	keys, _ := srv.ReadAll(t, bucket, "")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^logs/hw/dataset=huaweicloud\.swr_audit/year=2026/month=11/day=21/hour=00/20261121T001502\.123456789Z-[0-9a-f]{32}\.ndjson\.gz$`),
		regexp.MustCompile(`^logs/hw/dataset=huaweicloud\.swr_audit/year=2026/month=11/day=21/hour=01/20261121T011502\.123456789Z-[0-9a-f]{32}\.ndjson\.gz$`),
		regexp.MustCompile(`^logs/hw/dataset=weird_ds_set/year=2026/month=11/day=21/hour=00/`),
	}
	if len(keys) != len(want) {
		t.Fatalf("keys = %q, want %d objects", keys, len(want))
	}
	for i, re := range want {
		if !re.MatchString(keys[i]) {
			t.Errorf("key %d = %q, want match %s", i, keys[i], re)
		}
	}
	docs := readDocs(t, srv, bucket, "logs/hw/dataset=huaweicloud.swr_audit/year=2026/month=11/day=21/hour=00/")
	if got := string(bytes.Join(docs, []byte(","))); got != `{"event":{"id":"a"}},{"event":{"id":"b"}},{"event":{"id":"e"}}` {
		t.Errorf("hour 00 object holds %s", got)
	}
}

func TestResendSameBatch(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	ctx := context.Background()
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := &pipeline.Batch{Stream: "s/1", Events: []pipeline.Event{event("x1", "d", ts), event("x2", "d", ts.Add(time.Hour))}}
	for range 2 {
		// A new sink each time, as after a crash and restart.
		if err := newSink(t, srv, Config{Bucket: bucket}).Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	keys, _ := srv.ReadAll(t, bucket, "")
	if len(keys) != 2 {
		t.Errorf("after re-sending the batch the bucket holds %q, want 2 objects", keys)
	}
	// Another stream with the same event ids does not overwrite them.
	b.Stream = "s/2"
	if err := newSink(t, srv, Config{Bucket: bucket}).Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	if keys, _ := srv.ReadAll(t, bucket, ""); len(keys) != 4 {
		t.Errorf("bucket holds %q, want 4 objects", keys)
	}
}

func TestResendCutDifferently(t *testing.T) {
	// A batch written but not committed, then re-sent after a restart in
	// two batches cut elsewhere: every event is stored, the first
	// attempt's object is kept whole, and the re-sent events may be stored
	// a second time (identical copies, same event.id).
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	ctx := context.Background()
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var evs []pipeline.Event
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		evs = append(evs, event(id, "d", ts.Add(time.Duration(i)*time.Second)))
	}
	if err := newSink(t, srv, Config{Bucket: bucket}).Write(ctx, &pipeline.Batch{Stream: "s/1", Events: evs[:4]}); err != nil {
		t.Fatal(err)
	}
	s := newSink(t, srv, Config{Bucket: bucket})
	for _, part := range [][]pipeline.Event{evs[:2], evs[2:]} {
		if err := s.Write(ctx, &pipeline.Batch{Stream: "s/1", Events: part}); err != nil {
			t.Fatal(err)
		}
	}
	keys, _ := srv.ReadAll(t, bucket, "")
	seen := map[string]int{}
	for _, d := range readDocs(t, srv, bucket, "") {
		seen[string(d)]++
	}
	for i, ev := range evs {
		want := 1
		if i < 4 {
			want = 2 // in the first object and again in a re-sent one
		}
		if seen[string(ev.Doc)] != want {
			t.Errorf("event %s stored %d times, want %d", ev.ID, seen[string(ev.Doc)], want)
		}
	}
	if len(keys) != 3 {
		t.Errorf("bucket holds %q, want 3 objects", keys)
	}
}

// TestNeverReplacesOtherContent: whatever the key, an object already there
// with other content is kept; Write fails permanently instead of
// overwriting it.
func TestNeverReplacesOtherContent(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	ctx := context.Background()
	s := newSink(t, srv, Config{Bucket: bucket})
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := &pipeline.Batch{Stream: "s/1", Events: []pipeline.Event{event("a", "d", ts)}}
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	keys, _ := srv.ReadAll(t, bucket, "")
	if len(keys) != 1 {
		t.Fatalf("keys %q", keys)
	}
	// Someone else's object under the very name the next Write uses.
	foreign := []byte("not ours")
	if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &keys[0], Body: bytes.NewReader(foreign)}); err != nil {
		t.Fatal(err)
	}
	err := s.Write(ctx, b)
	if !pipeline.IsPermanent(err) || !errors.Is(err, ErrOtherContent) {
		t.Errorf("Write over another object = %v, want a permanent ErrOtherContent", err)
	}
	if _, bodies := srv.ReadAll(t, bucket, ""); !bytes.Equal(bodies[0], foreign) {
		t.Errorf("the other object was replaced")
	}
}

func TestMultipart(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	s := newSink(t, srv, Config{Bucket: bucket, PartSize: 5 << 20})
	// Random documents, so that gzip cannot shrink them below a part.
	b := &pipeline.Batch{Stream: "big"}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rng := rand.NewChaCha8([32]byte{1})
	raw := make([]byte, 1350)
	for i := range 5000 {
		rng.Read(raw)
		id := fmt.Sprintf("big-%05d", i)
		b.Events = append(b.Events, pipeline.Event{ID: id, Dataset: "d", Timestamp: ts,
			Doc: []byte(`{"event":{"id":"` + id + `"},"message":"` + base64.StdEncoding.EncodeToString(raw) + `"}`)})
	}
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	keys, bodies := srv.ReadAll(t, bucket, "")
	if len(keys) != 1 || len(bodies[0]) <= 5<<20 {
		t.Fatalf("got %d objects (first %d bytes), want one larger than a part", len(keys), len(bodies[0]))
	}
	if docs := readDocs(t, srv, bucket, ""); len(docs) != len(b.Events) {
		t.Errorf("object holds %d documents, want %d", len(docs), len(b.Events))
	}
}

func TestNoSuchBucketIsPermanent(t *testing.T) {
	srv := s3test.Start(t)
	s := newSink(t, srv, Config{Bucket: "does-not-exist"})
	err := s.Write(context.Background(), &pipeline.Batch{Stream: "s", Events: []pipeline.Event{event("a", "d", time.Now())}})
	if err == nil || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "s3://does-not-exist/") {
		t.Errorf("Write to a missing bucket = %v, want a permanent error naming it", err)
	}
}

func TestWriteAfterClose(t *testing.T) {
	s, err := New(context.Background(), Config{Bucket: "b", PartSize: 16 << 20, Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())
	err = s.Write(context.Background(), &pipeline.Batch{Stream: "s", Events: []pipeline.Event{event("a", "d", time.Now())}})
	if !pipeline.IsPermanent(err) {
		t.Errorf("Write after Close = %v, want permanent", err)
	}
}

// TestBackfillNeverReplacesCommittedObject is issue 10's loss: a run stores
// and commits a, b, c, d in one object; a backfill whose batch starts at the
// same event but ends earlier (--to) must not replace that object.
func TestBackfillNeverReplacesCommittedObject(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	ctx := context.Background()
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var evs []pipeline.Event
	for i, id := range []string{"a", "b", "c", "d"} {
		evs = append(evs, event(id, "d", ts.Add(time.Duration(i)*time.Second)))
	}
	if err := newSink(t, srv, Config{Bucket: bucket}).Write(ctx, &pipeline.Batch{Stream: "s/1", Events: evs}); err != nil {
		t.Fatal(err)
	}
	if err := newSink(t, srv, Config{Bucket: bucket}).Write(ctx, &pipeline.Batch{Stream: "s/1", Events: evs[:2]}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, d := range readDocs(t, srv, bucket, "") {
		seen[string(d)]++
	}
	for _, ev := range evs {
		if seen[string(ev.Doc)] == 0 {
			t.Errorf("event %s is gone from the bucket after the backfill (holds %v)", ev.ID, seen)
		}
	}
}
