package checkpoint

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// FileStore keeps one small JSON document per stream in a directory:
//
//	{dir}/swr~ins-1~pull.json
//
//	{
//	  "stream": "swr/ins-1/pull",
//	  "cursor": {"offset": 200},
//	  "updated_at": "2024-05-01T12:00:00Z",
//	  "exporter_version": "1.2.0"
//	}
//
// The file name is the stream key escaped reversibly plus ".json": "/"
// becomes "~", [A-Za-z0-9._-] stay (except a leading "."), every other byte
// ("~" and "%" included) becomes "%XX";
// "cursor" is the source's cursor JSON embedded as is (re-indented); the
// run lock is the file ".lock". Saves are atomic: a reader or a crash sees
// the old document or the new one, never a mix.
//
// Saves are conditional, as S3Store's are: a Save replaces the document
// only if it is still what this store last read or wrote, checked and
// written under an flock on ".save.lock". Run locks are scoped (shards,
// backfill ranges), so two exporters configured differently, or a
// `checkpoints reset` beside a shard's run, can reach the same stream; the
// second writer then gets an error wrapping ErrConflict instead of moving
// the cursor backwards.
//
// A FileStore is safe for concurrent use, and for concurrent Saves of
// different streams; Saves of one stream must not race each other (the
// pipeline saves each stream from one goroutine).
type FileStore struct {
	dir       string
	version   string
	now       func() time.Time
	lockScope string // see Config.LockScope

	mu   sync.Mutex
	seen map[string]string // stream → digest of the document last read or written; "" = known absent
}

var _ Store = (*FileStore)(nil)

const (
	fileExt      = ".json"
	lockName     = ".lock"
	saveLockName = ".save.lock"
	tmpPrefix    = ".tmp-"
	filePerm     = 0o640
	dirPerm      = 0o750
	// maxName leaves room for tmpPrefix and a random suffix within the
	// usual 255-byte limit on a file name.
	maxName = 200
)

// NewFileStore opens (creating it if needed) the checkpoint directory dir.
// version is recorded in each saved checkpoint.
func NewFileStore(dir, version string) (*FileStore, error) {
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("checkpoint store: %w", err)
	}
	return &FileStore{dir: dir, version: version, now: time.Now, seen: make(map[string]string)}, nil
}

// Dir returns the directory the store was opened on.
func (s *FileStore) Dir() string { return s.dir }

func (s *FileStore) path(stream string) (string, error) {
	if stream == "" {
		return "", errors.New("checkpoint: empty stream key")
	}
	name := escapeKey(stream) + fileExt
	if len(name) > maxName {
		return "", fmt.Errorf("checkpoint %s: stream key too long for a file name (%d bytes escaped, max %d)", stream, len(name), maxName)
	}
	return filepath.Join(s.dir, name), nil
}

// Load returns the cursor saved for stream in compact form (byte-identical
// to what Save got, if that was compact), or nil, nil when there is none. A
// file that cannot be parsed, or that belongs to another stream, is an error
// wrapping ErrCorrupt.
func (s *FileStore) Load(ctx context.Context, stream string) ([]byte, error) {
	p, err := s.path(stream)
	if err != nil {
		return nil, err
	}
	cp, digest, err := readFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		s.setSeen(stream, "")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if cp.Stream != stream {
		return nil, fmt.Errorf("checkpoint %s: %w: %s holds stream %q", stream, ErrCorrupt, p, cp.Stream)
	}
	s.setSeen(stream, digest)
	return cp.Cursor, nil
}

func (s *FileStore) setSeen(stream, digest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen[stream] = digest
}

// readFile parses one checkpoint file and returns it with the digest of
// its bytes; its errors name the file.
func readFile(path string) (Checkpoint, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Checkpoint{}, "", fmt.Errorf("checkpoint: %w", err)
	}
	cp, err := parseCheckpoint(data, path)
	if err != nil {
		return Checkpoint{}, "", fmt.Errorf("checkpoint: %w", err)
	}
	return cp, digestOf(data), nil
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// current returns the digest of the document at path now, "" when there
// is none.
func current(path string) (string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return digestOf(data), nil
}

// Save atomically replaces stream's checkpoint with cursor, which must be
// valid JSON, and returns once the new document and its directory entry are
// fsynced. It is conditional on the document being what this store last
// read or wrote (what is there now, when it never read this stream); a
// conflict returns a permanent error wrapping ErrConflict and naming the
// stream.
func (s *FileStore) Save(ctx context.Context, stream string, cursor []byte) error {
	p, err := s.path(stream)
	if err != nil {
		return err
	}
	if !json.Valid(cursor) {
		return fmt.Errorf("checkpoint %s: cursor is not valid JSON: %.100q", stream, cursor)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("checkpoint %s: %w", stream, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	err = enc.Encode(Checkpoint{
		Stream:          stream,
		Cursor:          cursor,
		UpdatedAt:       s.now().UTC().Truncate(time.Second),
		ExporterVersion: s.version,
	})
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", stream, err)
	}
	unlock, err := s.saveLock()
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", stream, err)
	}
	defer unlock()
	now, err := current(p)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", stream, err)
	}
	s.mu.Lock()
	want, known := s.seen[stream]
	s.mu.Unlock()
	if known && now != want {
		// Forget it: only a fresh Load may decide what comes next.
		s.mu.Lock()
		delete(s.seen, stream)
		s.mu.Unlock()
		return pipeline.Permanent(fmt.Errorf("checkpoint %s: %w: %s was written or removed by another run after this run read it; stopping so that its cursor never moves backwards (is another exporter, with other shard settings, running on the same checkpoint directory?)",
			stream, ErrConflict, p))
	}
	if err := writeAtomic(s.dir, filepath.Base(p), buf.Bytes()); err != nil {
		return fmt.Errorf("checkpoint %s: %w", stream, err)
	}
	s.setSeen(stream, digestOf(buf.Bytes()))
	return nil
}

// writeAtomic writes data to dir/name through a temporary file in the same
// directory: write, fsync, rename over the old file, fsync the directory.
func writeAtomic(dir, name string, data []byte) error {
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(dir, tmpPrefix+name+"."+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// List returns every stream's checkpoint sorted by stream. Unreadable files
// are left out and named in the returned error, together with the others.
func (s *FileStore) List(ctx context.Context) ([]Checkpoint, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint store: %w", err)
	}
	var cps []Checkpoint
	var errs []error
	for _, e := range entries {
		name := e.Name()
		// Hidden files are temporaries and the lock; escapeKey never
		// produces a leading ".".
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, fileExt) || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(s.dir, name)
		stream, err := unescapeKey(strings.TrimSuffix(name, fileExt))
		if err != nil {
			errs = append(errs, fmt.Errorf("checkpoint: %s: file name: %w", p, err))
			continue
		}
		cp, _, err := readFile(p)
		if err == nil && cp.Stream != stream {
			err = fmt.Errorf("checkpoint: %w: %s holds stream %q", ErrCorrupt, p, cp.Stream)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cps = append(cps, cp)
	}
	sort.Slice(cps, func(i, j int) bool { return cps[i].Stream < cps[j].Stream })
	return cps, errors.Join(errs...)
}

// Delete removes stream's checkpoint durably. It returns an error wrapping
// fs.ErrNotExist when there is none.
func (s *FileStore) Delete(ctx context.Context, stream string) error {
	p, err := s.path(stream)
	if err != nil {
		return err
	}
	unlock, err := s.saveLock()
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", stream, err)
	}
	defer unlock()
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("checkpoint %s: no checkpoint saved: %w", stream, fs.ErrNotExist)
		}
		return fmt.Errorf("checkpoint %s: %w", stream, err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("checkpoint %s: %w", stream, err)
	}
	s.setSeen(stream, "")
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
