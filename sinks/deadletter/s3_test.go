package deadletter

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/s3sink"
	"github.com/hwcaudit/hwcaudit/sinks/s3sink/s3test"
)

func TestS3Config(t *testing.T) {
	tests := []struct {
		url     string
		s3      *s3sink.Config
		bucket  string // for a valid URL
		prefix  string
		wantErr string // part of the error, which must also name HWCAUDIT_DEADLETTER
	}{
		{url: "s3://bucket", bucket: "bucket"},
		{url: "s3://bucket/", bucket: "bucket"},
		{url: "s3://bucket/dead/letters/", bucket: "bucket", prefix: "dead/letters"},
		{url: "s3://my.bucket-01/x", bucket: "my.bucket-01", prefix: "x"},
		{url: "s3://abc/a%20b", bucket: "abc", prefix: "a b"},
		{url: "s3://bucket/x", s3: &s3sink.Config{Endpoint: "https://obs.cn-north-4.myhuaweicloud.com", SSE: "aws:kms", SSEKMSKeyID: "k"}, bucket: "bucket", prefix: "x"},

		{url: "s3://", wantErr: "names no bucket"},
		{url: "s3:///prefix", wantErr: "names no bucket"},
		{url: "s3:bucket", wantErr: "write s3://BUCKET/PREFIX"},
		{url: "s3://My-Bucket/x", wantErr: "lowercase letters"},
		{url: "s3://bucket_1/x", wantErr: "lowercase letters"},
		{url: "s3://ab/x", wantErr: "3 to 63 characters"},
		{url: "s3://" + strings.Repeat("a", 64), wantErr: "3 to 63 characters"},
		{url: "s3://-bucket/x", wantErr: "start and end"},
		{url: "s3://bucket./x", wantErr: "start and end"},
		{url: "s3://bu..cket/x", wantErr: "'.' may not"},
		{url: "s3://192.168.1.10/x", wantErr: "IP address"},
		{url: "s3://bucket:9000/x", wantErr: "HWCAUDIT_S3_ENDPOINT"},
		{url: "s3://key:secret@bucket/x", wantErr: "AWS default chain"},
		{url: "s3://bucket/x?endpoint=http://127.0.0.1:9000", wantErr: "no query"},
		{url: "s3://bucket/x#y", wantErr: "no query or fragment"},
		{url: "s3://bucket/a%00b", wantErr: "control characters"},
		{url: "s3://bucket/a%ffb", wantErr: "UTF-8"},
		{url: "gs://bucket/x", wantErr: `scheme "gs" is not supported; use file://DIR or s3://BUCKET/PREFIX`},
		{url: "bucket/x", wantErr: "has no scheme"},
		// The S3 connection settings are checked only for an s3:// URL.
		{url: "s3://bucket/x", s3: &s3sink.Config{SSE: "aes"}, wantErr: "HWCAUDIT_S3_SSE"},
		{url: "s3://bucket/x", s3: &s3sink.Config{Endpoint: "minio:9000"}, wantErr: "HWCAUDIT_S3_ENDPOINT"},
		{url: "file://./dl", s3: &s3sink.Config{SSE: "aes"}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c := Config{URL: tt.url, S3: tt.s3}
			err := c.Validate()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), "HWCAUDIT_DEADLETTER") || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Validate() = %v; want an error naming HWCAUDIT_DEADLETTER and saying %q", err, tt.wantErr)
				}
				if _, err := Open(c); err == nil {
					t.Error("Open accepted the configuration")
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			sc, ok, err := c.S3Location()
			if tt.bucket == "" {
				if ok || err != nil {
					t.Errorf("S3Location() = %+v, %v, %v; want not S3", sc, ok, err)
				}
				return
			}
			if !ok || err != nil || sc.Bucket != tt.bucket || sc.Prefix != tt.prefix {
				t.Errorf("S3Location() = %+v, %v, %v; want bucket %q prefix %q", sc, ok, err, tt.bucket, tt.prefix)
			}
			if tt.s3 != nil && (sc.Endpoint != tt.s3.Endpoint || sc.SSE != tt.s3.SSE || sc.SSEKMSKeyID != tt.s3.SSEKMSKeyID) {
				t.Errorf("S3Location() = %+v; want the connection settings of %+v", sc, *tt.s3)
			}
		})
	}
}

// TestS3ConfigFromEnvironment checks that go-envconfig fills Config.S3 from
// the S3 sink's variables, as the exporter loads its configuration.
func TestS3ConfigFromEnvironment(t *testing.T) {
	var c Config
	if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{
		Target: &c,
		Lookuper: envconfig.MapLookuper(map[string]string{
			"HWCAUDIT_DEADLETTER":          "s3://dead-letters/hwcaudit/",
			"HWCAUDIT_S3_BUCKET":           "events", // the sink's, not used here
			"HWCAUDIT_S3_PREFIX":           "audit",
			"HWCAUDIT_S3_ENDPOINT":         "https://obs.cn-north-4.myhuaweicloud.com",
			"HWCAUDIT_S3_REGION":           "cn-north-4",
			"HWCAUDIT_S3_FORCE_PATH_STYLE": "true",
			"HWCAUDIT_S3_SSE":              "AES256",
		}),
	}); err != nil {
		t.Fatal(err)
	}
	sc, ok, err := c.S3Location()
	want := s3sink.Config{Bucket: "dead-letters", Prefix: "hwcaudit", Endpoint: "https://obs.cn-north-4.myhuaweicloud.com",
		Region: "cn-north-4", ForcePathStyle: true, SSE: "AES256", PartSize: 16 << 20, Timeout: s3sink.DefaultTimeout}
	if !ok || err != nil || sc != want {
		t.Errorf("S3Location() = %+v, %v, %v; want %+v", sc, ok, err, want)
	}
}

// newS3 returns a writer on srv that fails fast while srv is down.
func newS3(t *testing.T, srv *s3test.Server, bucket, prefix string) *S3 {
	t.Helper()
	w, err := NewS3(context.Background(), s3sink.Config{
		Bucket: bucket, Prefix: prefix, Endpoint: srv.Endpoint, Region: srv.Region, ForcePathStyle: true,
	}, func(o *s3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")
		o.Retryer = retry.AddWithMaxAttempts(retry.NewStandard(), 2)
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// readLetters returns each object's key and its lines, in key order.
func readLetters(t *testing.T, srv *s3test.Server, bucket, prefix string) (keys []string, texts []string) {
	t.Helper()
	keys, bodies := srv.ReadAll(t, bucket, prefix)
	for i, body := range bodies {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: not gzip: %v", keys[i], err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", keys[i], err)
		}
		texts = append(texts, string(data))
	}
	return keys, texts
}

var testAt = time.Date(2024, 5, 1, 12, 0, 0, 123e6, time.FixedZone("CST", 8*3600))

func testLetters() []pipeline.DeadLetter {
	return []pipeline.DeadLetter{
		{Stream: "swr/ins-1/pull", Stage: "map", Reason: "bad time", Time: testAt, Original: []byte(`{"x":"<a>\n"}`)},
		{Stream: "swr/ins-1/pull", Stage: "sink:es", Reason: "too large", Time: testAt, EventID: "e1", Original: []byte{0xff, 0xfe, 'a'}},
		{Stream: "swr/ins-1/pull", Stage: "map", Reason: "empty", Time: testAt.Add(time.Second)},
	}
}

func TestS3Put(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	w := newS3(t, srv, bucket, "/dl/letters/")
	ctx := context.Background()
	letters := testLetters()
	if err := w.Put(ctx, letters); err != nil {
		t.Fatal(err)
	}
	if err := w.Put(ctx, nil); err != nil {
		t.Fatal(err)
	}
	keys, texts := readLetters(t, srv, bucket, "")
	re := regexp.MustCompile(`^dl/letters/stream=swr_ins-1_pull/dt=2024-05-01/deadletter-20240501T040000\.123000000Z-[0-9a-f]{32}\.ndjson\.gz$`)
	if len(keys) != 1 || !re.MatchString(keys[0]) {
		t.Fatalf("keys = %q, want one matching %s", keys, re)
	}

	// Same lines as the file destination writes.
	dir := t.TempDir()
	f, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Put(ctx, letters); err != nil {
		t.Fatal(err)
	}
	f.Close(ctx)
	files, _ := filepath.Glob(filepath.Join(dir, "deadletter-*.ndjson"))
	if len(files) != 1 {
		t.Fatalf("file destination wrote %v", files)
	}
	want, _ := os.ReadFile(files[0])
	if texts[0] != string(want) {
		t.Errorf("object holds\n%s\nwant the file destination's\n%s", texts[0], want)
	}

	var got []line
	for ln := range strings.Lines(texts[0]) {
		var l line
		if err := json.Unmarshal([]byte(ln), &l); err != nil {
			t.Fatalf("line %q: %v", ln, err)
		}
		got = append(got, l)
	}
	if len(got) != len(letters) {
		t.Fatalf("object holds %d letters, want %d", len(got), len(letters))
	}
	for i, l := range got {
		if l.Stream != letters[i].Stream || l.Reason != letters[i].Reason || l.Stage != letters[i].Stage || l.EventID != letters[i].EventID {
			t.Errorf("letter %d = %+v, want %+v", i, l, letters[i])
		}
	}
	if got[0].Original == nil || *got[0].Original != string(letters[0].Original) || got[0].OriginalBase64 != nil {
		t.Errorf("UTF-8 original stored as %+v", got[0])
	}
	if got[1].Original != nil || !bytes.Equal(got[1].OriginalBase64, []byte{0xff, 0xfe, 'a'}) {
		t.Errorf("non-UTF-8 original stored as %+v, want original_base64", got[1])
	}

	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Put(ctx, letters); err == nil || !pipeline.IsPermanent(err) {
		t.Errorf("Put after Close = %v, want a permanent error", err)
	}
}

func TestS3ResendIsHarmless(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	ctx := context.Background()
	for range 2 {
		// A new writer each time, as after a failed Put that did store.
		if err := newS3(t, srv, bucket, "dl").Put(ctx, testLetters()); err != nil {
			t.Fatal(err)
		}
	}
	if keys, _ := srv.ReadAll(t, bucket, ""); len(keys) != 1 {
		t.Errorf("after re-sending the letters the bucket holds %q, want one object", keys)
	}
	// Other letters of the same stream and time make another object.
	other := testLetters()
	other[0].Reason = "another reason"
	if err := newS3(t, srv, bucket, "dl").Put(ctx, other); err != nil {
		t.Fatal(err)
	}
	if keys, _ := srv.ReadAll(t, bucket, ""); len(keys) != 2 {
		t.Errorf("bucket holds %q, want 2 objects", keys)
	}
}

// TestS3NeverReplacesOtherContent: an object already under the name a Put
// uses, with other content, is kept; the Put fails permanently instead.
func TestS3NeverReplacesOtherContent(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	ctx := context.Background()
	w := newS3(t, srv, bucket, "dl")
	if err := w.Put(ctx, testLetters()); err != nil {
		t.Fatal(err)
	}
	keys, _ := srv.ReadAll(t, bucket, "")
	foreign := []byte("not ours")
	if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &keys[0], Body: bytes.NewReader(foreign)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Put(ctx, testLetters()); !pipeline.IsPermanent(err) || !errors.Is(err, s3sink.ErrOtherContent) {
		t.Errorf("Put over another object = %v, want a permanent s3sink.ErrOtherContent", err)
	}
	if _, bodies := srv.ReadAll(t, bucket, ""); !bytes.Equal(bodies[0], foreign) {
		t.Error("the other object was replaced")
	}
}

func TestS3Outage(t *testing.T) {
	ctx := context.Background()
	t.Run("nothing listens", func(t *testing.T) {
		// A port that was just free.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ep := "http://" + l.Addr().String()
		l.Close()
		w, err := NewS3(ctx, s3sink.Config{Bucket: "bucket", Endpoint: ep, ForcePathStyle: true}, func(o *s3.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider("k", "s", "")
			o.Retryer = retry.AddWithMaxAttempts(retry.NewStandard(), 1)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Put(ctx, testLetters()); err == nil || pipeline.IsPermanent(err) {
			t.Errorf("Put to an unreachable store = %v, want a retryable error", err)
		}
	})
	t.Run("server stopped and restarted", func(t *testing.T) {
		srv := s3test.Start(t)
		if !srv.CanStop() {
			t.Skip("external S3 server")
		}
		bucket := srv.Bucket(t)
		w := newS3(t, srv, bucket, "dl")
		srv.Stop(t)
		if err := w.Put(ctx, testLetters()); err == nil || pipeline.IsPermanent(err) {
			t.Errorf("Put while the store is down = %v, want a retryable error", err)
		}
		srv.Restart(t)
		if err := w.Put(ctx, testLetters()); err != nil {
			t.Fatalf("Put after the store came back: %v", err)
		}
		if keys, _ := srv.ReadAll(t, bucket, ""); len(keys) != 1 {
			t.Errorf("bucket holds %q, want one object", keys)
		}
	})
}

func TestS3NoSuchBucketIsPermanent(t *testing.T) {
	srv := s3test.Start(t)
	w := newS3(t, srv, "does-not-exist", "dl")
	err := w.Put(context.Background(), testLetters())
	if err == nil || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "s3://does-not-exist/dl/") {
		t.Errorf("Put to a missing bucket = %v, want a permanent error naming it", err)
	}
}

func TestS3PutCancelled(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	w := newS3(t, srv, bucket, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Put(ctx, testLetters()); err == nil {
		t.Error("Put with a cancelled context returned nil")
	}
	if keys, _ := srv.ReadAll(t, bucket, ""); len(keys) != 0 {
		t.Errorf("bucket holds %q, want nothing", keys)
	}
}

// TestOpenS3 opens an s3:// destination as the exporter does: Open with the
// configuration, credentials from the AWS default chain.
func TestOpenS3(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	w, err := Open(Config{URL: "s3://" + bucket + "/dl", S3: &s3sink.Config{Endpoint: srv.Endpoint, Region: srv.Region, ForcePathStyle: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := w.(*S3); !ok {
		t.Fatalf("Open returned %T, want *S3", w)
	}
	if err := w.Put(context.Background(), testLetters()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if keys, _ := srv.ReadAll(t, bucket, "dl/stream="); len(keys) != 1 {
		t.Errorf("bucket holds %q, want one object under dl/", keys)
	}
}
