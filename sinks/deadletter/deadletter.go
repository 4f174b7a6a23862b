// Package deadletter stores records the exporter could not map or deliver,
// with the reason, so that nothing is lost silently.
//
// The only destination for now is a directory ("file://DIR"), written with
// the same crash-safe rotating NDJSON files as the file sink
// (filesink.Log, prefix "deadletter"). Each line is one letter:
//
//	{"@timestamp":"2024-05-01T12:00:00.123Z","stream":"swr/ins-1/pull","stage":"map",
//	 "reason":"…","event_id":"…","original":"<raw record>"}
//
// "original" holds the raw record as a JSON string when it is valid UTF-8;
// otherwise "original_base64" holds it base64-encoded (standard encoding) and
// "original" is absent. "event_id" is absent when the record was never
// mapped. A letter re-sent after a failed Put may be stored twice.
package deadletter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"
	"unicode/utf8"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/filesink"
)

// Config configures where dead letters go.
type Config struct {
	// URL is the destination. Only "file://DIR" is supported: a relative
	// directory as file://./dir, an absolute one as file:///var/lib/dir.
	// Default "file://./out/deadletter".
	URL string `env:"HWCAUDIT_DEADLETTER,default=file://./out/deadletter"`
}

// maxFileBytes rotates dead letter files like the file sink's default; dead
// letters are rare, so this is not worth a setting.
const maxFileBytes = 64 << 20

// Validate reports whether URL names a supported destination.
func (c Config) Validate() error {
	_, err := c.dir()
	return err
}

func (c Config) dir() (string, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return "", fmt.Errorf("HWCAUDIT_DEADLETTER: %q is not a URL: %w", c.URL, err)
	}
	switch u.Scheme {
	case "file":
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
	case "":
		return "", fmt.Errorf("HWCAUDIT_DEADLETTER: %q has no scheme; use file://DIR", c.URL)
	default:
		return "", fmt.Errorf("HWCAUDIT_DEADLETTER: scheme %q is not supported; use file://DIR", u.Scheme)
	}
}

// Writer is a dead letter destination that must be closed at the end of a run.
type Writer interface {
	pipeline.DeadLetterWriter
	// Close makes every stored letter visible and releases the destination.
	Close(ctx context.Context) error
}

// Open returns the destination cfg names.
func Open(cfg Config) (Writer, error) {
	dir, err := cfg.dir()
	if err != nil {
		return nil, err
	}
	return NewFile(dir)
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

// Stats reports what was stored since NewFile.
func (f *File) Stats() filesink.LogStats { return f.log.Stats() }
