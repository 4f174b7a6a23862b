// Package checkpoint keeps each stream's cursor between runs, and the lock
// that keeps two runs from exporting at the same time.
//
// A cursor is saved only after every record up to it was delivered (see
// package pipeline), so losing or corrupting a checkpoint never loses data
// silently: a missing one restarts the stream from its configured start, and
// a corrupt one stops it with an error naming the file until an operator
// fixes or resets it.
//
// Open picks the backend from HWCAUDIT_CHECKPOINT_URL: a local directory
// (FileStore) or an S3 bucket (S3Store), which keeps overlapping runs from
// clobbering each other with conditional writes and a run lease.
package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// Config selects and configures the checkpoint backend.
type Config struct {
	// URL is where checkpoints live: "file://DIR", with a relative
	// directory as file://./state and an absolute one as
	// file:///var/lib/hwcaudit; or "s3://BUCKET/PREFIX" with optional
	// query parameters endpoint, region, path_style and lease_ttl (see
	// S3Config). Default "file://./state".
	URL string `env:"HWCAUDIT_CHECKPOINT_URL,default=file://./state"`

	// LockScope names the run lock, for runs that export disjoint sets of
	// streams from one store and so must not exclude each other: the
	// shards of a sharded export, a backfill beside the CronJob. Runs with
	// the same scope still exclude each other. It is set by the program,
	// not the environment. Default "": the one run lock.
	LockScope string
}

// lockSuffix turns a scope into a name part safe for files and object keys.
func lockSuffix(scope string) string {
	if scope == "" {
		return ""
	}
	return "-" + escapeKey(scope)
}

// Validate reports whether URL names a supported backend.
func (c Config) Validate() error {
	_, err := c.location()
	return err
}

// location is a parsed Config.URL; exactly one backend field is set.
type location struct {
	dir string    // file://
	s3  *S3Config // s3://
}

func (c Config) location() (location, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return location{}, fmt.Errorf("HWCAUDIT_CHECKPOINT_URL: %q is not a URL: %w", c.URL, err)
	}
	switch u.Scheme {
	case "file":
		// file://./x parses with host "." and path "/x", file:///x with an
		// empty host, file:x as opaque "x"; any other host is a mistake
		// (file://state would silently mean "/" on host "state").
		if u.Host != "" && u.Host != "." && u.Host != ".." {
			return location{}, fmt.Errorf("HWCAUDIT_CHECKPOINT_URL: %q: write file://./relative/dir or file:///absolute/dir", c.URL)
		}
		dir := u.Host + u.Path
		if u.Opaque != "" {
			dir = u.Opaque
		}
		if dir == "" {
			return location{}, fmt.Errorf("HWCAUDIT_CHECKPOINT_URL: %q names no directory", c.URL)
		}
		return location{dir: filepath.Clean(dir)}, nil
	case "s3":
		sc, err := parseS3URL(c.URL, u)
		if err != nil {
			return location{}, err
		}
		return location{s3: &sc}, nil
	case "":
		return location{}, fmt.Errorf("HWCAUDIT_CHECKPOINT_URL: %q has no scheme; use file://DIR or s3://BUCKET/PREFIX", c.URL)
	default:
		return location{}, fmt.Errorf("HWCAUDIT_CHECKPOINT_URL: scheme %q is not supported; use file://DIR or s3://BUCKET/PREFIX", u.Scheme)
	}
}

// Store is what the exporter needs from a checkpoint backend: the pipeline's
// Load and Save, the operator's list/show/reset, and the run lock.
type Store interface {
	pipeline.Store

	// List returns every stream's checkpoint, sorted by stream. Checkpoints
	// that cannot be read are left out and named in the returned error.
	List(ctx context.Context) ([]Checkpoint, error)

	// Delete removes stream's checkpoint, so its next run starts over. It
	// returns an error wrapping fs.ErrNotExist when there is none. Callers
	// should hold the run lock.
	Delete(ctx context.Context, stream string) error

	// Lock takes the run lock or fails at once, with an error naming the
	// holder, if another run holds it. The lock is released by unlock or,
	// should the holder die, by the operating system.
	Lock(ctx context.Context) (unlock func() error, err error)
}

// Open returns the backend cfg names; version is recorded in every saved
// checkpoint.
func Open(cfg Config, version string) (Store, error) {
	loc, err := cfg.location()
	if err != nil {
		return nil, err
	}
	if loc.s3 != nil {
		s, err := NewS3Store(context.Background(), *loc.s3, version)
		if err != nil {
			return nil, err
		}
		s.lockScope = cfg.LockScope
		return s, nil
	}
	s, err := NewFileStore(loc.dir, version)
	if err != nil {
		return nil, err
	}
	s.lockScope = cfg.LockScope
	return s, nil
}

// Checkpoint is one stream's saved position. It is also the file format.
type Checkpoint struct {
	Stream string `json:"stream"`
	// Cursor is the stream's opaque cursor JSON.
	Cursor          json.RawMessage `json:"cursor"`
	UpdatedAt       time.Time       `json:"updated_at"`
	ExporterVersion string          `json:"exporter_version"`
}

// ErrCorrupt marks a checkpoint that exists but cannot be used. The exporter
// must not start the stream over on its own: an operator decides.
var ErrCorrupt = errors.New("corrupt checkpoint")

// ErrLocked is returned by Lock when another run holds the lock: an
// overlapping run should stop cleanly rather than fail.
var ErrLocked = errors.New("another run holds the lock")

// escapeKey maps a stream key to a file name stem that is safe on any common
// file system, readable, and reversible: "/" becomes "~", the bytes
// [A-Za-z0-9._-] stay as they are (except a leading "."), and every other
// byte, "~" and "%" included, becomes "%XX" (upper-case hex).
// "swr/ins-1/pull" is stored as "swr~ins-1~pull.json".
func escapeKey(key string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '/':
			b.WriteByte('~')
		case c == '.' && i == 0:
			b.WriteString("%2E") // no hidden files, no "." or ".."
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// unescapeKey reverses escapeKey; it fails on names escapeKey cannot produce.
func unescapeKey(name string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '~':
			b.WriteByte('/')
		case '%':
			if i+2 >= len(name) {
				return "", fmt.Errorf("bad escape in %q", name)
			}
			var v byte
			for _, h := range name[i+1 : i+3] {
				switch {
				case h >= '0' && h <= '9':
					v = v<<4 | byte(h-'0')
				case h >= 'A' && h <= 'F':
					v = v<<4 | byte(h-'A'+10)
				default:
					return "", fmt.Errorf("bad escape in %q", name)
				}
			}
			b.WriteByte(v)
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	if escapeKey(b.String()) != name {
		return "", fmt.Errorf("%q is not an escaped stream key", name)
	}
	return b.String(), nil
}
