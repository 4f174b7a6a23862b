package filesink

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// On-disk layout of a Log (shared by the file sink and the dead letters):
//
//	{dir}/{prefix}-{start}-{run}-{seq}.ndjson                published, complete lines only
//	{dir}/.{prefix}-{start}-{run}-{seq}.ndjson.inprogress    being written, hidden
//	{dir}/.{prefix}-{start}-{run}-{seq}.ndjson.inprogress.new  just created, empty
//
// The writer holds an flock on each file it has not published; recovery
// publishes (or removes) only the files it can lock, those of dead writers.
// start is the UTC time the file was opened (20060102T150405Z), run is a
// random token drawn once per process, seq a counter shared by every Log of
// the process (so two Logs of one process on one directory never pick the
// same name). Names therefore sort by start time; within one second they sort
// by seq only inside one run. Readers should glob "*.ndjson": the hidden
// in-progress files may end in a torn line.
const (
	ndjsonExt     = ".ndjson"
	inProgressExt = ".inprogress"
	newExt        = ".new" // an in-progress file before it is locked
	timeLayout    = "20060102T150405Z"

	filePerm = 0o640 // audit logs are sensitive: no world access
	dirPerm  = 0o750
)

// runID tells this process's in-progress files from the leftovers of a
// crashed run. A pid alone would not do: in a container the exporter is pid 1
// on every run.
var runID = func() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; fall back to the
		// clock rather than refuse to start.
		return fmt.Sprintf("%08x", uint32(time.Now().UnixNano()))
	}
	return hex.EncodeToString(b[:])
}()

var fileSeq atomic.Uint64

// ErrClosed is returned by writes after Close. Retrying cannot succeed.
var ErrClosed = errors.New("closed")

// Log appends newline-terminated records to a directory of rotating files so
// that a crash at any moment (including kill -9) never leaves a torn line in a
// published file and never loses a record that Append acknowledged.
//
// Guarantees:
//   - Append returns nil only after its lines are written and fsynced, and
//     the file's directory entry is fsynced too.
//   - A published (visible, *.ndjson) file only ever holds complete lines and
//     is never written again.
//   - After Close returns nil, every acknowledged line is in a published file.
//   - Leftovers of a crashed process are published by the next OpenLog or
//     Recover on the same directory; lines that were written but never
//     acknowledged may be published with them (at-least-once).
//
// A Log is safe for concurrent use. Only one process should write a given
// directory at a time (the exporter holds a run lock).
type Log struct {
	dir      string
	prefix   string
	maxBytes int64
	maxAge   time.Duration
	now      func() time.Time

	mu      sync.Mutex
	closed  bool
	f       *os.File
	name    string // in-progress base name of f
	size    int64  // bytes of f that are durable (acknowledged)
	opened  time.Time
	pending []pendingFile // files to publish that failed to publish earlier
	buf     []byte
}

type pendingFile struct {
	name string   // in-progress base name
	keep int64    // durable prefix to keep
	f    *os.File // still open, so that its lock keeps recovery away
}

// OpenLog prepares a Log writing files named prefix-… in dir, creating dir if
// needed and publishing what a crashed earlier process left there. A file is
// published once it reaches maxBytes or, checked when the next Append comes,
// once it is older than maxAge (0: no age limit). prefix must be a plain file
// name without path separators.
func OpenLog(dir, prefix string, maxBytes int64, maxAge time.Duration) (*Log, error) {
	if prefix == "" || strings.ContainsAny(prefix, `/\`) || strings.HasPrefix(prefix, ".") {
		return nil, fmt.Errorf("log prefix %q: must be a non-empty file name not starting with '.'", prefix)
	}
	if maxBytes <= 0 {
		return nil, fmt.Errorf("log %s: max bytes must be positive, got %d", dir, maxBytes)
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("log %s: %w", dir, err)
	}
	if _, err := Recover(dir); err != nil {
		return nil, err
	}
	return &Log{dir: dir, prefix: prefix, maxBytes: maxBytes, maxAge: maxAge, now: time.Now}, nil
}

// Append writes lines (each without its trailing newline, and none may
// contain one) and returns nil once they are durable. Lines are never split,
// so a single line longer than maxBytes gets a file of its own. If Append
// returns an error, some of the lines may still be published later
// (at-least-once), but never a partial one. ctx is checked between files:
// file I/O itself cannot be interrupted.
func (l *Log) Append(ctx context.Context, lines [][]byte) error {
	if err := l.append(ctx, lines); err != nil {
		return err
	}
	return nil
}

func (l *Log) append(ctx context.Context, lines [][]byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("log %s: %w", l.dir, ErrClosed)
	}
	for _, ln := range lines {
		if bytes.IndexByte(ln, '\n') >= 0 {
			return fmt.Errorf("log %s: line contains a newline", l.dir)
		}
	}
	// Earlier publish failures are retried first so that acknowledged data
	// becomes visible as soon as the disk allows.
	l.retryPendingLocked()

	for len(lines) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		if l.f != nil && l.maxAge > 0 && l.now().Sub(l.opened) >= l.maxAge {
			l.publishLocked()
		}
		if l.f == nil {
			if err := l.createLocked(); err != nil {
				return err
			}
		}
		// Take as many whole lines as fit; at least one goes into an empty file.
		n, chunk := 0, int64(0)
		for n < len(lines) {
			sz := int64(len(lines[n]) + 1)
			if l.size+chunk > 0 && l.size+chunk+sz > l.maxBytes {
				break
			}
			chunk += sz
			n++
		}
		if n == 0 {
			l.publishLocked()
			continue
		}
		l.buf = l.buf[:0]
		for _, ln := range lines[:n] {
			l.buf = append(l.buf, ln...)
			l.buf = append(l.buf, '\n')
		}
		if err := l.writeLocked(l.buf); err != nil {
			return err
		}
		lines = lines[n:]
		if l.size >= l.maxBytes {
			l.publishLocked()
		}
	}
	// Large one-off batches must not keep a big buffer alive forever.
	if cap(l.buf) > 4<<20 {
		l.buf = nil
	}
	return nil
}

// writeLocked appends p to the current file and fsyncs it. On any failure the
// file is abandoned: after a failed fsync the kernel may have dropped the
// dirty pages, so nothing written since the last good fsync can be trusted,
// and we never write to that file again. Its durable prefix is published.
func (l *Log) writeLocked(p []byte) error {
	_, err := l.f.Write(p)
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		err = fmt.Errorf("log %s: write %s: %w", l.dir, l.name, err)
		l.publishLocked() // l.size still marks the durable prefix
		return err
	}
	l.size += int64(len(p))
	return nil
}

func (l *Log) createLocked() error {
	now := l.now().UTC()
	visible := fmt.Sprintf("%s-%s-%s-%06d%s", l.prefix, now.Format(timeLayout), runID, fileSeq.Add(1), ndjsonExt)
	name := "." + visible + inProgressExt
	// The file is created under a name recovery ignores and locked before
	// it takes its in-progress name, so no other process's recovery can
	// mistake it for a leftover in between.
	fresh := filepath.Join(l.dir, name+newExt)
	f, err := os.OpenFile(fresh, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, filePerm)
	if err != nil {
		return fmt.Errorf("log %s: %w", l.dir, err)
	}
	if ok, err := own(f); !ok || err != nil {
		f.Close()
		os.Remove(fresh)
		return fmt.Errorf("log %s: cannot lock %s: %v", l.dir, fresh, err)
	}
	if err := os.Rename(fresh, filepath.Join(l.dir, name)); err != nil {
		f.Close()
		os.Remove(fresh)
		return fmt.Errorf("log %s: %w", l.dir, err)
	}
	// The new directory entry must be durable before any line in the file
	// is acknowledged, or a power cut could lose the whole file.
	if err := syncDir(l.dir); err != nil {
		f.Close()
		os.Remove(filepath.Join(l.dir, name))
		return fmt.Errorf("log %s: %w", l.dir, err)
	}
	l.f, l.name, l.size, l.opened = f, name, 0, now
	return nil
}

// publishLocked closes the current file and makes it visible. Its content is
// already durable, so a failure here does not fail the Append: the file is
// remembered and published later (or by the next run's recovery).
func (l *Log) publishLocked() {
	if l.f == nil {
		return
	}
	// The file stays open (and locked) until it is published: data was
	// fsynced by every write, so closing it later loses nothing.
	p := pendingFile{name: l.name, keep: l.size, f: l.f}
	l.f, l.name, l.size = nil, "", 0
	l.finishLocked(p)
}

func (l *Log) finishLocked(p pendingFile) {
	published, err := finish(l.dir, p.name, p.keep)
	if published || err == nil {
		p.f.Close()
	}
	if published {
		// Renamed, though perhaps not yet durably: the in-progress name may
		// come back after a power cut, and recovery handles that.
		return
	}
	if err != nil {
		l.pending = append(l.pending, p)
	}
}

func (l *Log) retryPendingLocked() {
	pend := l.pending
	l.pending = nil
	for _, p := range pend {
		l.finishLocked(p)
	}
}

// Close publishes the current file. After Close returns nil every
// acknowledged line is visible; an error means some file could not be
// published yet (the next run's recovery will). Close is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.publishLocked()
	l.retryPendingLocked()
	if len(l.pending) > 0 {
		names := make([]string, len(l.pending))
		for i, p := range l.pending {
			names[i] = p.name
		}
		return fmt.Errorf("log %s: could not publish %s; the next run publishes them", l.dir, strings.Join(names, ", "))
	}
	return nil
}

// Recover publishes the in-progress files that other processes (a crashed
// run) left in dir: it truncates each after its last newline, since bytes
// past it were never acknowledged, and renames it to its visible name; a file
// without a complete line is removed. Files of the calling process are left
// alone. It returns how many files it published.
func Recover(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("recover %s: %w", dir, err)
	}
	var n int
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || ownedByThisProcess(name) {
			continue
		}
		switch {
		case isInProgress(name):
			published, err := recoverFile(dir, name)
			if published {
				n++
			}
			if err != nil {
				errs = append(errs, err)
			}
		case strings.HasSuffix(name, inProgressExt+newExt):
			// Created but never named: it holds nothing acknowledged.
			if err := removeIfDead(filepath.Join(dir, name)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("recover %s: %w", dir, errors.Join(errs...))
	}
	return n, nil
}

// recoverFile publishes the complete lines of a leftover in-progress file,
// unless a live process still holds it.
func recoverFile(dir, name string) (published bool, err error) {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil // its writer published it meanwhile
		}
		return false, err
	}
	defer f.Close()
	if ok, err := own(f); !ok || err != nil {
		return false, err // being written by a live exporter
	}
	keep, err := completeLength(filepath.Join(dir, name))
	if err != nil {
		return false, err
	}
	return finish(dir, name, keep)
}

// removeIfDead removes path unless a live process holds its lock.
func removeIfDead(path string) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	defer f.Close()
	if ok, err := own(f); !ok || err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func isInProgress(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, ndjsonExt+inProgressExt) &&
		len(name) > len("."+ndjsonExt+inProgressExt)
}

// visibleName maps ".X.ndjson.inprogress" to "X.ndjson".
func visibleName(inProgress string) string {
	return strings.TrimSuffix(strings.TrimPrefix(inProgress, "."), inProgressExt)
}

// ownedByThisProcess reads the run token, the second-to-last "-" field of
// the visible name. Names that do not parse count as foreign, so they are
// recovered rather than left hidden forever.
func ownedByThisProcess(inProgress string) bool {
	parts := strings.Split(strings.TrimSuffix(visibleName(inProgress), ndjsonExt), "-")
	return len(parts) >= 3 && parts[len(parts)-2] == runID
}

// completeLength returns the length of the file up to and including its last
// newline, reading backwards from the end.
func completeLength(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 64<<10)
	for end := fi.Size(); end > 0; {
		start := max(end-int64(len(buf)), 0)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && err != io.EOF {
			return 0, fmt.Errorf("read %s: %w", path, err)
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// finish truncates the in-progress file dir/name to keep bytes and renames
// it to its visible name, or removes it when keep is 0. The truncation is
// fsynced before the rename so that a published file can never regain its
// torn tail, and the directory is fsynced after. It refuses to overwrite an
// existing visible file.
func finish(dir, name string, keep int64) (published bool, err error) {
	path := filepath.Join(dir, name)
	if keep == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		return false, syncDir(dir)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return false, err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() != keep {
		err = f.Truncate(keep)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("publish %s: %w", path, err)
	}
	target := filepath.Join(dir, visibleName(name))
	if _, err := os.Lstat(target); err == nil {
		return false, fmt.Errorf("publish %s: %s already exists", path, target)
	}
	if err := os.Rename(path, target); err != nil {
		return false, fmt.Errorf("publish %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return true, fmt.Errorf("publish %s: %w", path, err)
	}
	return true, nil
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
