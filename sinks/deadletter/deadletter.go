// Package deadletter stores records the exporter could not map or deliver,
// with the reason, so that nothing is lost silently.
//
// There are two destinations:
//
//   - a directory ("file://DIR", File), written with the same crash-safe
//     rotating NDJSON files as the file sink (filesink.Log, prefix
//     "deadletter");
//   - an S3 bucket such as Huawei OBS ("s3://BUCKET/PREFIX", S3), for
//     deployments whose disk does not outlive the process (a Kubernetes
//     emptyDir), with one gzip-compressed NDJSON object per Put.
//
// An object is named by its stream, the day and time of its first letter
// and a hash of its content (see S3):
//
//	PREFIX/stream=swr_ins-1_pull/dt=2024-05-01/deadletter-20240501T040000.123000000Z-<hash>.ndjson.gz
//
// Each line, in a file or an object, is one letter:
//
//	{"@timestamp":"2024-05-01T12:00:00.123Z","stream":"swr/ins-1/pull","stage":"map",
//	 "reason":"…","event_id":"…","original":"<raw record>"}
//
// "original" holds the raw record as a JSON string when it is valid UTF-8;
// otherwise "original_base64" holds it base64-encoded (standard encoding) and
// "original" is absent. "event_id" is absent when the record was never
// mapped.
//
// A File Put re-sent after a failure may store its letters twice. An S3
// Put re-sent with the same letters finds its object already stored; letters
// made again after a restart carry a new time and go to a new object.
package deadletter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/filesink"
	"github.com/hwcaudit/hwcaudit/sinks/s3sink"
)

// Config configures where dead letters go.
type Config struct {
	// URL is the destination: "file://DIR", a relative directory as
	// file://./dir and an absolute one as file:///var/lib/dir; or
	// "s3://BUCKET" or "s3://BUCKET/PREFIX", with the connection settings in
	// S3. Default "file://./out/deadletter".
	URL string `env:"HWCAUDIT_DEADLETTER,default=file://./out/deadletter"`

	// S3 is how an s3:// URL reaches its store: the S3 sink's variables
	// HWCAUDIT_S3_ENDPOINT, HWCAUDIT_S3_REGION, HWCAUDIT_S3_FORCE_PATH_STYLE,
	// HWCAUDIT_S3_SSE and HWCAUDIT_S3_SSE_KMS_KEY_ID (see s3sink.Config),
	// read a second time from the environment so that one set of settings
	// serves the sink and the dead letters, whether or not the S3 sink is
	// used. Its Bucket, Prefix and PartSize are ignored: the URL names the
	// bucket and prefix. Credentials come from the AWS default chain, as for
	// the sink. Nil means all settings empty (AWS S3, the chain's region).
	//
	// It is a pointer and has no env tag of its own: go-envconfig fills it
	// from the same tags as the sink's Config, while the help table, which
	// lists each variable once under the S3 sink, does not walk pointers.
	S3 *s3sink.Config
}

// maxFileBytes rotates dead letter files like the file sink's default; dead
// letters are rare, so this is not worth a setting.
const maxFileBytes = 64 << 20

// Validate reports whether URL names a supported destination and, for an
// s3:// URL, whether the S3 connection settings can work.
func (c Config) Validate() error {
	_, err := c.location()
	return err
}

// location is a parsed Config; exactly one of dir and s3 is set.
type location struct {
	dir string         // file://
	s3  *s3sink.Config // s3://: Bucket and Prefix from the URL
}

func (c Config) location() (location, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return location{}, fmt.Errorf("HWCAUDIT_DEADLETTER: %q is not a URL: %w", c.URL, err)
	}
	switch u.Scheme {
	case "s3":
		sc, err := c.s3Location(u)
		if err != nil {
			return location{}, err
		}
		return location{s3: &sc}, nil
	case "file":
		dir, err := c.fileDir(u)
		if err != nil {
			return location{}, err
		}
		return location{dir: dir}, nil
	case "":
		return location{}, fmt.Errorf("HWCAUDIT_DEADLETTER: %q has no scheme; use file://DIR or s3://BUCKET/PREFIX", c.URL)
	default:
		return location{}, fmt.Errorf("HWCAUDIT_DEADLETTER: scheme %q is not supported; use file://DIR or s3://BUCKET/PREFIX", u.Scheme)
	}
}

// S3Location returns the S3 settings of an s3:// URL: Bucket and Prefix
// from the URL, the rest from c.S3. ok is false, with a nil error, for a
// valid URL naming another kind of destination.
func (c Config) S3Location() (cfg s3sink.Config, ok bool, err error) {
	loc, err := c.location()
	if err != nil || loc.s3 == nil {
		return s3sink.Config{}, false, err
	}
	return *loc.s3, true, nil
}

func (c Config) s3Location(u *url.URL) (s3sink.Config, error) {
	bad := func(format string, a ...any) (s3sink.Config, error) {
		return s3sink.Config{}, fmt.Errorf("HWCAUDIT_DEADLETTER: %q: "+format, append([]any{c.URL}, a...)...)
	}
	switch {
	case u.Opaque != "":
		return bad("write s3://BUCKET/PREFIX")
	case u.User != nil:
		return bad("an s3:// URL holds no user or key; credentials come from the AWS default chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, …)")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return bad("an s3:// URL takes no query or fragment; set the endpoint, region and path style in HWCAUDIT_S3_ENDPOINT, HWCAUDIT_S3_REGION and HWCAUDIT_S3_FORCE_PATH_STYLE")
	case u.Host == "":
		return bad("names no bucket; use s3://BUCKET or s3://BUCKET/PREFIX")
	case u.Port() != "":
		return bad("%q is a host and port, not a bucket; set the endpoint in HWCAUDIT_S3_ENDPOINT and write s3://BUCKET/PREFIX", u.Host)
	}
	if why := badBucketName(u.Host); why != "" {
		return bad("bucket name %q is not valid: %s", u.Host, why)
	}
	prefix := strings.Trim(u.Path, "/")
	if !utf8.ValidString(prefix) || strings.ContainsFunc(prefix, unicode.IsControl) {
		return bad("the prefix must be UTF-8 text without control characters")
	}
	var sc s3sink.Config
	if c.S3 != nil {
		sc = *c.S3
	}
	sc.Bucket, sc.Prefix = u.Host, prefix
	if err := sc.ValidateConnection(); err != nil {
		return s3sink.Config{}, fmt.Errorf("%w (read for HWCAUDIT_DEADLETTER=%s)", err, c.URL)
	}
	return sc, nil
}

// badBucketName says why name breaks the bucket naming rules that Huawei OBS
// and AWS S3 share, or returns "".
func badBucketName(name string) string {
	if len(name) < 3 || len(name) > 63 {
		return "it must be 3 to 63 characters long"
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return "only lowercase letters, digits, '-' and '.' are allowed"
		}
	}
	isAlnum := func(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' }
	switch {
	case !isAlnum(name[0]) || !isAlnum(name[len(name)-1]):
		return "it must start and end with a letter or digit"
	case strings.Contains(name, "..") || strings.Contains(name, ".-") || strings.Contains(name, "-."):
		return "'.' may not follow or precede '.' or '-'"
	case strings.Trim(name, "0123456789.") == "" && strings.Count(name, ".") == 3:
		return "it must not look like an IP address"
	}
	return ""
}

// fileDir is the directory of a file:// URL.
func (c Config) fileDir(u *url.URL) (string, error) {
	// file://./x parses with host "." and path "/x", file:///x with an
	// empty host, file:x as opaque "x"; any other host is a mistake.
	if u.Host != "" && u.Host != "." && u.Host != ".." {
		return "", fmt.Errorf("HWCAUDIT_DEADLETTER: %q: write file://./relative/dir or file:///absolute/dir", c.URL)
	}
	dir := u.Host + u.Path
	if u.Opaque != "" {
		dir = u.Opaque
	}
	if dir == "" {
		return "", fmt.Errorf("HWCAUDIT_DEADLETTER: %q names no directory", c.URL)
	}
	return filepath.Clean(dir), nil
}

// Writer is a dead letter destination that must be closed at the end of a run.
type Writer interface {
	pipeline.DeadLetterWriter
	// Close makes every stored letter visible and releases the destination.
	Close(ctx context.Context) error
}

// Open returns the destination cfg names. It does not contact an S3 store.
func Open(cfg Config) (Writer, error) {
	return OpenContext(context.Background(), cfg)
}

// OpenContext is Open with a context for loading the AWS configuration of an
// s3:// destination.
func OpenContext(ctx context.Context, cfg Config) (Writer, error) {
	loc, err := cfg.location()
	if err != nil {
		return nil, err
	}
	if loc.s3 != nil {
		return NewS3(ctx, *loc.s3)
	}
	return NewFile(loc.dir)
}

// File is a Writer storing letters as NDJSON files in a directory. It is safe
// for concurrent use.
type File struct {
	log *filesink.Log
	now func() time.Time
}

// NewFile opens dir (creating it) and publishes what a crashed run left in
// progress there.
func NewFile(dir string) (*File, error) {
	l, err := filesink.OpenLog(dir, "deadletter", maxFileBytes, 0)
	if err != nil {
		return nil, fmt.Errorf("deadletter: %w", err)
	}
	return &File{log: l, now: time.Now}, nil
}

type line struct {
	Timestamp      string  `json:"@timestamp"`
	Stream         string  `json:"stream"`
	Stage          string  `json:"stage"`
	Reason         string  `json:"reason"`
	EventID        string  `json:"event_id,omitempty"`
	Original       *string `json:"original,omitempty"`
	OriginalBase64 []byte  `json:"original_base64,omitempty"`
}

// Put stores letters and returns nil once they are fsynced.
func (f *File) Put(ctx context.Context, letters []pipeline.DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("deadletter: %w", err)
	}
	lines := make([][]byte, len(letters))
	for i, dl := range letters {
		b, err := encode(dl, f.now)
		if err != nil {
			return fmt.Errorf("deadletter: stream %s: %w", dl.Stream, err)
		}
		lines[i] = b
	}
	if err := f.log.Append(ctx, lines); err != nil {
		if errors.Is(err, filesink.ErrClosed) {
			return pipeline.Permanent(fmt.Errorf("deadletter: %w", err))
		}
		return fmt.Errorf("deadletter: %w", err)
	}
	return nil
}

func encode(dl pipeline.DeadLetter, now func() time.Time) ([]byte, error) {
	ts := dl.Time
	if ts.IsZero() {
		ts = now()
	}
	ln := line{
		Timestamp: ts.UTC().Format(time.RFC3339Nano),
		Stream:    dl.Stream,
		Stage:     dl.Stage,
		Reason:    dl.Reason,
		EventID:   dl.EventID,
	}
	if utf8.Valid(dl.Original) {
		s := string(dl.Original)
		ln.Original = &s
	} else {
		ln.OriginalBase64 = dl.Original
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep originals readable: "<" stays "<"
	if err := enc.Encode(ln); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Close publishes the current file; after it returns nil every stored letter
// is in a visible *.ndjson file.
func (f *File) Close(ctx context.Context) error {
	if err := f.log.Close(); err != nil {
		return fmt.Errorf("deadletter: %w", err)
	}
	return nil
}
