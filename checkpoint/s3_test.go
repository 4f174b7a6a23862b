package checkpoint

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/s3sink/s3test"
)

func TestS3URL(t *testing.T) {
	loc, err := Config{URL: "s3://bkt/a/b/?endpoint=https://obs.example.com&region=ap-southeast-1&path_style=true&lease_ttl=30s"}.location()
	if err != nil {
		t.Fatal(err)
	}
	want := S3Config{Bucket: "bkt", Prefix: "a/b", Endpoint: "https://obs.example.com", Region: "ap-southeast-1", PathStyle: true, LeaseTTL: 30 * time.Second}
	if loc.s3 == nil || *loc.s3 != want {
		t.Errorf("location = %+v, want %+v", loc.s3, want)
	}
	loc, err = Config{URL: "s3://bkt"}.location()
	if err != nil || *loc.s3 != (S3Config{Bucket: "bkt"}) {
		t.Errorf("s3://bkt = %+v, %v", loc.s3, err)
	}
	for _, bad := range []string{"s3://b?lease_ttl=1s", "s3://b?path_style=yes", "s3://b?lease_ttl=x"} {
		if _, err := (Config{URL: bad}).location(); err == nil || !strings.Contains(err.Error(), "HWCAUDIT_CHECKPOINT_URL") {
			t.Errorf("%s: %v, want an error naming HWCAUDIT_CHECKPOINT_URL", bad, err)
		}
	}
	st, err := Open(Config{URL: "s3://bkt/p?endpoint=http://127.0.0.1:1"}, "v")
	if _, ok := st.(*S3Store); !ok || err != nil {
		t.Errorf("Open(s3://) = %T, %v", st, err)
	}
}

type s3Env struct {
	srv    *s3test.Server
	bucket string
}

func newS3Env(t *testing.T) *s3Env {
	srv := s3test.Start(t)
	return &s3Env{srv: srv, bucket: srv.Bucket(t)}
}

func (e *s3Env) store(t *testing.T, prefix string, ttl time.Duration) *S3Store {
	t.Helper()
	s, err := NewS3Store(context.Background(), S3Config{
		Bucket: e.bucket, Prefix: prefix, Endpoint: e.srv.Endpoint, Region: e.srv.Region, PathStyle: true, LeaseTTL: ttl,
	}, "1.2.3", func(o *s3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(e.srv.AccessKey, e.srv.SecretKey, "")
	})
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.Date(2024, 5, 1, 12, 0, 0, 987654321, time.FixedZone("CST", 8*3600)) }
	return s
}

func (e *s3Env) get(t *testing.T, key string) string {
	t.Helper()
	out, err := e.srv.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &e.bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return string(b)
}

func (e *s3Env) put(t *testing.T, key, body string) {
	t.Helper()
	_, err := e.srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &e.bucket, Key: &key, Body: strings.NewReader(body)})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func TestS3SaveLoad(t *testing.T) {
	ctx := context.Background()
	e := newS3Env(t)
	s := e.store(t, "/ckpt/", 0)
	if c, err := s.Load(ctx, "swr/ins-1/pull"); c != nil || err != nil {
		t.Fatalf("Load of an absent checkpoint = %q, %v; want nil, nil", c, err)
	}
	for _, c := range []string{`{"offset":200,"marker":"<a&b>"}`, `{"offset":400}`, `null`, `[1,2,{"x":"ü"}]`} {
		if err := s.Save(ctx, "swr/ins-1/pull", []byte(c)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ctx, "swr/ins-1/pull")
		if err != nil || string(got) != c {
			t.Errorf("Load after Save(%s) = %s, %v", c, got, err)
		}
	}
	// Same document as the file store, under the same escaped name.
	want := `{
  "stream": "swr/ins-1/pull",
  "cursor": [
    1,
    2,
    {
      "x": "ü"
    }
  ],
  "updated_at": "2024-05-01T04:00:00Z",
  "exporter_version": "1.2.3"
}
`
	if got := e.get(t, "ckpt/swr~ins-1~pull.json"); got != want {
		t.Errorf("object:\n%s\nwant:\n%s", got, want)
	}
	// A new store (a new run) saving without Load conditions on what is there.
	s2 := e.store(t, "ckpt", 0)
	if err := s2.Save(ctx, "swr/ins-1/pull", []byte(`{"offset":600}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, "x", []byte(`{`)); err == nil {
		t.Error("Save of invalid JSON succeeded")
	}
}

func TestS3Conflict(t *testing.T) {
	e := newS3Env(t)
	conflictContract(t, func() Store { return e.store(t, "c", 0) })
}

func TestS3ListDelete(t *testing.T) {
	ctx := context.Background()
	e := newS3Env(t)
	s := e.store(t, "p", 0)
	for _, k := range []string{"swr/b/push", "swr/a/pull", "cts/x"} {
		if err := s.Save(ctx, k, []byte(`{"k":"`+k+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	unlock, err := s.Lock(ctx) // the lease object must not be listed
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	e.put(t, "p/README.txt", "hi")
	e.put(t, "p/sub/x.json", "{}")
	e.put(t, "other.json", "{}")

	cps, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, cp := range cps {
		got = append(got, cp.Stream+"="+string(cp.Cursor)+"@"+cp.UpdatedAt.Format(time.RFC3339)+"/"+cp.ExporterVersion)
	}
	want := `cts/x={"k":"cts/x"}@2024-05-01T04:00:00Z/1.2.3 swr/a/pull={"k":"swr/a/pull"}@2024-05-01T04:00:00Z/1.2.3 swr/b/push={"k":"swr/b/push"}@2024-05-01T04:00:00Z/1.2.3`
	if strings.Join(got, " ") != want {
		t.Errorf("List = %v\nwant %v", got, want)
	}
	if err := s.Delete(ctx, "swr/a/pull"); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Load(ctx, "swr/a/pull"); c != nil || err != nil {
		t.Errorf("Load after Delete = %s, %v", c, err)
	}
	if err := s.Delete(ctx, "swr/a/pull"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second Delete = %v, want fs.ErrNotExist", err)
	}
	// Saving again after a Delete creates it afresh.
	if err := s.Save(ctx, "swr/a/pull", []byte(`1`)); err != nil {
		t.Errorf("Save after Delete: %v", err)
	}

	e.put(t, "p/bad%zz.json", `{"stream":"x","cursor":1}`)
	e.put(t, "p/corrupt.json", `{"stream":`)
	cps, err = s.List(ctx)
	if len(cps) != 3 || err == nil || !strings.Contains(err.Error(), "bad%zz.json") || !errors.Is(err, ErrCorrupt) {
		t.Errorf("List = %d checkpoints, %v; want 3 and errors naming bad%%zz.json and ErrCorrupt", len(cps), err)
	}
	if _, err := s.Load(ctx, "corrupt"); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "p/corrupt.json") {
		t.Errorf("Load of a corrupt object = %v", err)
	}
}

func TestS3Lock(t *testing.T) {
	ctx := context.Background()
	e := newS3Env(t)
	a, b := e.store(t, "l", time.Hour), e.store(t, "l", time.Hour)
	a.now, b.now = time.Now, time.Now
	unlock, err := a.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.get(t, "l/lease"), `"holder"`) {
		t.Errorf("lease object: %s", e.get(t, "l/lease"))
	}
	_, err = b.Lock(ctx)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid ") || !strings.Contains(err.Error(), "s3://"+e.bucket+"/l/") {
		t.Fatalf("second Lock = %v, want ErrLocked naming the holder and the store", err)
	}
	if _, err := a.Lock(ctx); !errors.Is(err, ErrLocked) {
		t.Errorf("Lock twice in one store = %v, want ErrLocked", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Errorf("second unlock = %v", err)
	}
	unlock2, err := b.Lock(ctx)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	if err := unlock2(); err != nil {
		t.Fatal(err)
	}
}

func TestS3LeaseTakeover(t *testing.T) {
	ctx := context.Background()
	e := newS3Env(t)
	var clock = time.Now()
	now := func() time.Time { return clock }
	// A long TTL so that the background renewal does not run: the test
	// moves the clock instead, as if the holder had died.
	a, b := e.store(t, "l", time.Hour), e.store(t, "l", time.Hour)
	a.now, b.now = now, now
	unlockA, err := a.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock while live = %v", err)
	}
	clock = clock.Add(61 * time.Minute)
	unlockB, err := b.Lock(ctx)
	if err != nil {
		t.Fatalf("Lock after expiry: %v", err)
	}
	// a lost its lease: its Saves stop, and its unlock leaves b's lease.
	if err := a.Save(ctx, "s", []byte(`1`)); !errors.Is(err, ErrLocked) || !pipeline.IsPermanent(err) {
		t.Errorf("Save with a lost lease = %v, want a permanent ErrLocked", err)
	}
	if err := unlockA(); err != nil {
		t.Errorf("unlock of a lost lease = %v", err)
	}
	if _, err := e.store(t, "l", time.Hour).Lock(ctx); !errors.Is(err, ErrLocked) {
		t.Errorf("Lock after the old holder unlocked = %v, want ErrLocked (b holds it)", err)
	}
	if err := b.Save(ctx, "s", []byte(`2`)); err != nil {
		t.Errorf("Save by the new holder: %v", err)
	}
	unlockB()
}

func TestS3LeaseRenewal(t *testing.T) {
	ctx := context.Background()
	e := newS3Env(t)
	a, b := e.store(t, "r", 3*time.Second), e.store(t, "r", 3*time.Second)
	a.now, b.now = time.Now, time.Now
	unlock, err := a.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	// Past the first expiry, the renewed lease still holds.
	time.Sleep(4 * time.Second)
	if _, err := b.Lock(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock after the first expiry of a renewed lease = %v, want ErrLocked", err)
	}
	if err := a.Save(ctx, "s", []byte(`1`)); err != nil {
		t.Errorf("Save while holding a renewed lease: %v", err)
	}
	// A lease replaced behind the holder's back is noticed at renewal.
	e.put(t, "r/lease", `{"holder":"intruder","expires_at":"2999-01-01T00:00:00Z"}`)
	deadline := time.Now().Add(5 * time.Second)
	for a.leaseLost() == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := a.leaseLost(); !errors.Is(err, ErrLocked) {
		t.Errorf("leaseLost after the lease was replaced = %v", err)
	}
}
