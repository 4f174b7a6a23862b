package checkpoint

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress"
)

// S3Config locates an S3Store. HWCAUDIT_CHECKPOINT_URL sets it as
//
//	s3://BUCKET/PREFIX?endpoint=https://obs.example.com&region=R&path_style=true&lease_ttl=2m
//
// where every query parameter is optional.
type S3Config struct {
	Bucket string
	// Prefix is the "folder" holding the checkpoints and the lease,
	// without leading or trailing "/". Empty means the bucket's root.
	Prefix string
	// Endpoint is the base URL of an S3-compatible store (Huawei OBS,
	// MinIO); empty means AWS S3.
	Endpoint string
	// Region overrides the AWS default chain's; "us-east-1" when neither
	// names one.
	Region string
	// PathStyle addresses buckets as {endpoint}/{bucket}.
	PathStyle bool
	// LeaseTTL is how long the run lease lasts without renewal; a run
	// that dies holds the lock this long at most. The lease is renewed
	// every LeaseTTL/3. Default 2m.
	LeaseTTL time.Duration
	// Timeout bounds one request to the store, from sending it to reading
	// the whole answer. Default 1m.
	Timeout time.Duration
}

// DefaultS3Timeout is S3Config.Timeout's default.
const DefaultS3Timeout = time.Minute

// MaxObjectBytes bounds what is read of a checkpoint or lease object: a
// larger one is an error, not read into memory.
const MaxObjectBytes = 64 << 20

// DefaultLeaseTTL is S3Config.LeaseTTL's default.
const DefaultLeaseTTL = 2 * time.Minute

// ErrConflict marks a Save that lost a race: another run changed the
// checkpoint after this run read it. It is permanent: the losing run must
// stop instead of moving the cursor backwards.
var ErrConflict = errors.New("checkpoint changed by another run")

// S3Store keeps one JSON document per stream in an S3 bucket, in the same
// format and under the same escaped names as FileStore:
//
//	s3://{bucket}/{prefix}/swr~ins-1~pull.json
//	s3://{bucket}/{prefix}/lease
//
// Writes are conditional on what this store last saw: a Save sends
// If-Match with the ETag that Load (or the previous Save) got, or
// If-None-Match: * when there was no checkpoint. Two overlapping runs can
// therefore never clobber each other or move a cursor backwards: the second
// writer gets an error wrapping ErrConflict, marked pipeline.Permanent.
//
// The run lock is a lease object holding the holder and an expiry, created
// with If-None-Match: *, renewed with If-Match while the lock is held, taken
// over with If-Match on the stale ETag once expired, and deleted on unlock.
//
// An S3Store is safe for concurrent use; Saves of one stream must not race
// each other (the pipeline saves each stream from one goroutine).
type S3Store struct {
	client  *s3.Client
	secrets *egress.Secrets // keys the client used, kept out of errors
	bucket  string
	prefix  string // "" or ends in "/"
	version string
	ttl     time.Duration
	now     func() time.Time

	mu    sync.Mutex
	etags map[string]string // stream → ETag last read or written; "" = known absent
	lease *lease            // while Lock is held

	lockScope string // see Config.LockScope
}

var _ Store = (*S3Store)(nil)

// NewS3Store returns a store on cfg.Bucket with credentials from the AWS
// default chain; optFns adjust the client (tests set static credentials).
// It does not contact the store.
func NewS3Store(ctx context.Context, cfg S3Config, version string, optFns ...func(*s3.Options)) (*S3Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("checkpoint store: S3 bucket is empty")
	}
	var loadOpts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(cfg.Region))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("checkpoint store: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	opts := []func(*s3.Options){func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			// S3-compatible stores reject the SDK's default checksum
			// trailers.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
		o.UsePathStyle = cfg.PathStyle
	}}
	ttl := cfg.LeaseTTL
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultS3Timeout
	}
	secrets := &egress.Secrets{}
	opts = append(append(opts, optFns...), func(o *s3.Options) {
		// Last, over optFns: every key handed out is redacted from errors,
		// and requests stay on the endpoint (egress.CheckRedirect).
		o.Credentials = egress.AWSCredentials(o.Credentials, secrets)
		o.HTTPClient = egress.HTTPClient(timeout, nil)
	})
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3Store{
		client:  s3.NewFromConfig(awsCfg, opts...),
		secrets: secrets,
		bucket:  cfg.Bucket,
		prefix:  prefix,
		version: version,
		ttl:     ttl,
		now:     time.Now,
		etags:   make(map[string]string),
	}, nil
}

// parseS3URL turns s3://bucket/prefix?… into an S3Config.
func parseS3URL(raw string, u *url.URL) (S3Config, error) {
	bad := func(format string, a ...any) (S3Config, error) {
		return S3Config{}, fmt.Errorf("HWCAUDIT_CHECKPOINT_URL: %q: "+format, append([]any{raw}, a...)...)
	}
	if u.Host == "" {
		return bad("names no bucket; use s3://BUCKET/PREFIX")
	}
	c := S3Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	q := u.Query()
	for _, k := range slices.Sorted(maps.Keys(q)) { // the same error every time
		switch k {
		case "endpoint", "region", "path_style", "lease_ttl":
		default:
			return bad("unknown parameter %q (known: endpoint, region, path_style, lease_ttl)", k)
		}
	}
	if ep := q.Get("endpoint"); ep != "" {
		eu, err := url.Parse(ep)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
			return bad("endpoint %q is not an http:// or https:// URL", ep)
		}
		c.Endpoint = ep
	}
	c.Region = q.Get("region")
	if v := q.Get("path_style"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return bad("path_style must be true or false, got %q", v)
		}
		c.PathStyle = b
	}
	if v := q.Get("lease_ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 3*time.Second {
			return bad("lease_ttl must be a duration of at least 3s, got %q", v)
		}
		c.LeaseTTL = d
	}
	return c, nil
}

// URL returns where the store keeps its objects, for messages.
func (s *S3Store) URL() string { return "s3://" + s.bucket + "/" + s.prefix }

func (s *S3Store) key(stream string) (string, error) {
	if stream == "" {
		return "", errors.New("checkpoint: empty stream key")
	}
	name := escapeKey(stream) + fileExt
	if len(name) > maxName {
		return "", fmt.Errorf("checkpoint %s: stream key too long (%d bytes escaped, max %d)", stream, len(name), maxName)
	}
	return s.prefix + name, nil
}

// Load returns the cursor saved for stream, or nil, nil when there is none,
// and remembers the object's ETag for the next Save.
func (s *S3Store) Load(ctx context.Context, stream string) (_ []byte, err error) {
	defer func() { err = s.secrets.Error(err) }()
	key, err := s.key(stream)
	if err != nil {
		return nil, err
	}
	cp, etag, err := s.read(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		s.setETag(stream, "")
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", stream, err)
	}
	if cp.Stream != stream {
		return nil, fmt.Errorf("checkpoint %s: %w: s3://%s/%s holds stream %q", stream, ErrCorrupt, s.bucket, key, cp.Stream)
	}
	s.setETag(stream, etag)
	return cp.Cursor, nil
}

func (s *S3Store) setETag(stream, etag string) {
	s.mu.Lock()
	s.etags[stream] = etag
	s.mu.Unlock()
}

// read fetches and parses one checkpoint object; a missing one is an error
// wrapping fs.ErrNotExist.
func (s *S3Store) read(ctx context.Context, key string) (Checkpoint, string, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return Checkpoint{}, "", fmt.Errorf("s3://%s/%s: %w", s.bucket, key, fs.ErrNotExist)
		}
		return Checkpoint{}, "", fmt.Errorf("get s3://%s/%s: %w", s.bucket, key, err)
	}
	data, err := readBounded(out.Body)
	if err != nil {
		return Checkpoint{}, "", fmt.Errorf("get s3://%s/%s: %w", s.bucket, key, err)
	}
	cp, err := parseCheckpoint(data, "s3://"+s.bucket+"/"+key)
	return cp, aws.ToString(out.ETag), err
}

// readBounded reads and closes body, refusing more than MaxObjectBytes.
func readBounded(body io.ReadCloser) ([]byte, error) {
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, MaxObjectBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxObjectBytes {
		return nil, fmt.Errorf("object larger than %d bytes; not read further (is it a checkpoint?)", MaxObjectBytes)
	}
	return data, nil
}

// parseCheckpoint parses a checkpoint document, from a file or an object
// named by where, with the cursor compacted.
func parseCheckpoint(data []byte, where string) (Checkpoint, error) {
	var cp Checkpoint
	if err := json.Unmarshal(data, &cp); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %s: %v (fix it or reset the stream)", ErrCorrupt, where, err)
	}
	if cp.Stream == "" || len(cp.Cursor) == 0 {
		return Checkpoint{}, fmt.Errorf("%w: %s: missing \"stream\" or \"cursor\" (fix it or reset the stream)", ErrCorrupt, where)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, cp.Cursor); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %s: cursor: %v", ErrCorrupt, where, err)
	}
	cp.Cursor = compact.Bytes()
	return cp, nil
}

// Save replaces stream's checkpoint with cursor, conditionally on the
// object being what this store last read or wrote. A conflict returns a
// permanent error wrapping ErrConflict and naming the stream.
func (s *S3Store) Save(ctx context.Context, stream string, cursor []byte) (err error) {
	defer func() { err = s.secrets.Error(err) }()
	key, err := s.key(stream)
	if err != nil {
		return err
	}
	if !json.Valid(cursor) {
		return fmt.Errorf("checkpoint %s: cursor is not valid JSON: %.100q", stream, cursor)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("checkpoint %s: %w", stream, err)
	}
	if err := s.leaseLost(); err != nil {
		return pipeline.Permanent(fmt.Errorf("checkpoint %s: %w", stream, err))
	}
	s.mu.Lock()
	etag, known := s.etags[stream]
	s.mu.Unlock()
	if !known {
		// Saved without a Load first: condition on what is there now.
		if _, err := s.Load(ctx, stream); err != nil {
			return err
		}
		s.mu.Lock()
		etag = s.etags[stream]
		s.mu.Unlock()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(Checkpoint{
		Stream:          stream,
		Cursor:          cursor,
		UpdatedAt:       s.now().UTC().Truncate(time.Second),
		ExporterVersion: s.version,
	}); err != nil {
		return fmt.Errorf("checkpoint %s: %w", stream, err)
	}
	in := &s3.PutObjectInput{
		Bucket:      &s.bucket,
		Key:         &key,
		Body:        bytes.NewReader(buf.Bytes()),
		ContentType: aws.String("application/json"),
	}
	if etag == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(etag)
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		// If-Match on an object deleted since (a reset) is answered 404.
		if isConflict(err) || (etag != "" && isStatus(err, http.StatusNotFound)) {
			// Forget the ETag: only a fresh Load may decide what comes next.
			s.mu.Lock()
			delete(s.etags, stream)
			s.mu.Unlock()
			return pipeline.Permanent(fmt.Errorf("checkpoint %s: %w: s3://%s/%s was written or removed by another run after this run read it; stopping so that its cursor never moves backwards (is another exporter running on the same checkpoint URL?): %v",
				stream, ErrConflict, s.bucket, key, err))
		}
		return fmt.Errorf("checkpoint %s: put s3://%s/%s: %w", stream, s.bucket, key, err)
	}
	s.setETag(stream, aws.ToString(out.ETag))
	return nil
}

// List returns every stream's checkpoint sorted by stream. Unreadable
// objects are left out and named in the returned error.
func (s *S3Store) List(ctx context.Context) (_ []Checkpoint, err error) {
	defer func() { err = s.secrets.Error(err) }()
	var cps []Checkpoint
	var errs []error
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: &s.bucket, Prefix: aws.String(s.prefix), Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("checkpoint store: list %s: %w", s.URL(), err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			name := strings.TrimPrefix(key, s.prefix)
			if !strings.HasSuffix(name, fileExt) {
				continue // the lease, or something else
			}
			where := "s3://" + s.bucket + "/" + key
			stream, err := unescapeKey(strings.TrimSuffix(name, fileExt))
			if err != nil {
				errs = append(errs, fmt.Errorf("checkpoint: %s: object name: %w", where, err))
				continue
			}
			cp, _, err := s.read(ctx, key)
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since the listing
			}
			if err == nil && cp.Stream != stream {
				err = fmt.Errorf("%w: %s holds stream %q", ErrCorrupt, where, cp.Stream)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("checkpoint: %w", err))
				continue
			}
			cps = append(cps, cp)
		}
	}
	sort.Slice(cps, func(i, j int) bool { return cps[i].Stream < cps[j].Stream })
	return cps, errors.Join(errs...)
}

// Delete removes stream's checkpoint. It returns an error wrapping
// fs.ErrNotExist when there is none.
func (s *S3Store) Delete(ctx context.Context, stream string) (err error) {
	defer func() { err = s.secrets.Error(err) }()
	key, err := s.key(stream)
	if err != nil {
		return err
	}
	if _, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key}); err != nil {
		if isStatus(err, http.StatusNotFound) {
			return fmt.Errorf("checkpoint %s: no checkpoint saved: %w", stream, fs.ErrNotExist)
		}
		return fmt.Errorf("checkpoint %s: head s3://%s/%s: %w", stream, s.bucket, key, err)
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil {
		return fmt.Errorf("checkpoint %s: delete s3://%s/%s: %w", stream, s.bucket, key, err)
	}
	s.setETag(stream, "")
	return nil
}

// leaseDoc is the lease object's content.
type leaseDoc struct {
	Holder          string    `json:"holder"`
	AcquiredAt      time.Time `json:"acquired_at"`
	ExpiresAt       time.Time `json:"expires_at"`
	ExporterVersion string    `json:"exporter_version"`
}

// lease is a held run lock.
type lease struct {
	doc  leaseDoc
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	etag string
	lost error // set once the lease can no longer be trusted
}

func (s *S3Store) leaseKey() string { return s.prefix + "lease" + lockSuffix(s.lockScope) }

// leaseLost returns why the held lease was lost, or nil (also when no lock
// is held).
func (s *S3Store) leaseLost() error {
	s.mu.Lock()
	l := s.lease
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost == nil && !s.now().Before(l.doc.ExpiresAt) {
		l.lost = fmt.Errorf("%w: the run lease s3://%s/%s expired at %s without renewal", ErrLocked, s.bucket, s.leaseKey(), l.doc.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return l.lost
}

// Lock takes the run lease, or fails with an error wrapping ErrLocked that
// names the holder if another run's lease has not expired. The lease is
// renewed in the background until unlock, which deletes it.
func (s *S3Store) Lock(ctx context.Context) (unlock func() error, err error) {
	defer func() { err = s.secrets.Error(err) }()
	s.mu.Lock()
	held := s.lease != nil
	s.mu.Unlock()
	if held {
		return nil, fmt.Errorf("checkpoint store %s: %w (this process)", s.URL(), ErrLocked)
	}
	key := s.leaseKey()
	host, _ := os.Hostname()
	var rnd [4]byte
	rand.Read(rnd[:])
	now := s.now().UTC()
	doc := leaseDoc{
		Holder:          fmt.Sprintf("%s/pid %d/%s", host, os.Getpid(), hex.EncodeToString(rnd[:])),
		AcquiredAt:      now.Truncate(time.Second),
		ExpiresAt:       now.Add(s.ttl),
		ExporterVersion: s.version,
	}
	in := &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, ContentType: aws.String("application/json")}

	cur, curETag, err := s.readLease(ctx)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		in.IfNoneMatch = aws.String("*")
	case err != nil:
		return nil, err
	case now.Before(cur.ExpiresAt):
		return nil, s.lockedBy(cur)
	default:
		in.IfMatch = aws.String(curETag) // take over the stale lease
	}
	in.Body = bytes.NewReader(mustJSON(doc))
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		if isConflict(err) {
			// Another run created or took it between our read and write.
			if cur, _, rerr := s.readLease(ctx); rerr == nil {
				return nil, s.lockedBy(cur)
			}
			return nil, fmt.Errorf("checkpoint store: %w: another run took s3://%s/%s first", ErrLocked, s.bucket, key)
		}
		return nil, fmt.Errorf("checkpoint store: put s3://%s/%s: %w", s.bucket, key, err)
	}
	l := &lease{doc: doc, etag: aws.ToString(out.ETag), stop: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	s.lease = l
	s.mu.Unlock()
	go s.renew(l)

	var once sync.Once
	var uerr error
	return func() error {
		once.Do(func() { uerr = s.secrets.Error(s.release(l)) })
		return uerr
	}, nil
}

func (s *S3Store) lockedBy(cur leaseDoc) error {
	return fmt.Errorf("checkpoint store: %w on %s (%s, since %s, lease expires %s)",
		ErrLocked, s.URL(), cur.Holder, cur.AcquiredAt.UTC().Format(time.RFC3339), cur.ExpiresAt.UTC().Format(time.RFC3339))
}

func (s *S3Store) readLease(ctx context.Context) (leaseDoc, string, error) {
	key := s.leaseKey()
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return leaseDoc{}, "", fs.ErrNotExist
		}
		return leaseDoc{}, "", fmt.Errorf("checkpoint store: get s3://%s/%s: %w", s.bucket, key, err)
	}
	data, err := readBounded(out.Body)
	if err != nil {
		return leaseDoc{}, "", fmt.Errorf("checkpoint store: get s3://%s/%s: %w", s.bucket, key, err)
	}
	var d leaseDoc
	if err := json.Unmarshal(data, &d); err != nil || d.ExpiresAt.IsZero() {
		return leaseDoc{}, "", fmt.Errorf("checkpoint store: %w: lease s3://%s/%s is not a lease document (delete it if no run is active): %.100q", ErrCorrupt, s.bucket, key, data)
	}
	return d, aws.ToString(out.ETag), nil
}

// renew extends l every ttl/3 until release, conditionally on its ETag.
// If another run replaced the lease, or it expired before a renewal
// succeeded, the lease is lost and Saves fail from then on.
func (s *S3Store) renew(l *lease) {
	defer close(l.done)
	t := time.NewTicker(s.ttl / 3)
	defer t.Stop()
	key := s.leaseKey()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if s.leaseLost() != nil {
			return
		}
		l.mu.Lock()
		doc := l.doc
		etag := l.etag
		l.mu.Unlock()
		doc.ExpiresAt = s.now().UTC().Add(s.ttl)
		ctx, cancel := context.WithTimeout(context.Background(), s.ttl/3)
		out, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.bucket, Key: &key, IfMatch: aws.String(etag),
			Body: bytes.NewReader(mustJSON(doc)), ContentType: aws.String("application/json"),
		})
		cancel()
		l.mu.Lock()
		switch {
		case err == nil:
			l.doc, l.etag = doc, aws.ToString(out.ETag)
		case isConflict(err) || isStatus(err, http.StatusNotFound):
			l.lost = fmt.Errorf("%w: the run lease s3://%s/%s was taken by another run", ErrLocked, s.bucket, key)
		}
		// Other errors: try again at the next tick; leaseLost reports
		// expiry if none succeeds in time.
		l.mu.Unlock()
	}
}

// release stops renewing and deletes the lease if it is still ours.
func (s *S3Store) release(l *lease) error {
	close(l.stop)
	<-l.done
	s.mu.Lock()
	s.lease = nil
	s.mu.Unlock()
	l.mu.Lock()
	lost, etag := l.lost, l.etag
	l.mu.Unlock()
	if lost != nil {
		return nil // nothing of ours to delete
	}
	key := s.leaseKey()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key, IfMatch: aws.String(etag)})
	if err != nil && !isConflict(err) && !isStatus(err, http.StatusNotFound) {
		return fmt.Errorf("checkpoint store: release lease s3://%s/%s: %w", s.bucket, key, err)
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// isConflict reports a failed If-Match / If-None-Match: 412, or 409
// ConditionalRequestConflict when a concurrent conditional write won.
func isConflict(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return true
		}
	}
	return isStatus(err, http.StatusPreconditionFailed)
}

func isStatus(err error, code int) bool {
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == code
}
