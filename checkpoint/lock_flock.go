//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// lockInfo is written into the lock file by the holder so that a run that
// finds the lock taken can say who holds it.
type lockInfo struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host,omitempty"`
	Since   time.Time `json:"since"`
	Version string    `json:"exporter_version,omitempty"`
}

// Lock takes the run lock: an exclusive flock(2) on {dir}/.lock. It never
// waits: if another run holds the lock it fails at once with
// "another run holds the lock on DIR (pid N since T)". The kernel drops the
// lock when the holder's file descriptor closes, so a crashed or killed run
// never leaves a stale lock. The lock file itself is never removed: removing
// it would let two runs lock two different files of the same name.
//
// After taking the lock, Lock removes temporaries that crashed Saves left
// behind, which is safe because no other run can be saving.
//
// flock locks are per open file, so a second Lock in the same process fails
// too until unlock is called.
func (s *FileStore) Lock(ctx context.Context) (unlock func() error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := filepath.Join(s.dir, lockName+lockSuffix(s.lockScope))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("checkpoint lock: %w", err)
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w on %s (%s)", ErrLocked, s.dir, describeHolder(path))
		}
		return nil, fmt.Errorf("checkpoint lock %s: %w", path, err)
	}
	host, _ := os.Hostname()
	info, _ := json.Marshal(lockInfo{PID: os.Getpid(), Host: host, Since: s.now().UTC().Truncate(time.Second), Version: s.version})
	// The holder record is informational: a failure to write it must not
	// fail the run, the flock is what excludes.
	if err := f.Truncate(0); err == nil {
		f.WriteAt(append(info, '\n'), 0)
	}
	s.removeTemporaries()

	var once sync.Once
	var uerr error
	return func() error {
		once.Do(func() {
			f.Truncate(0)
			uerr = flock(f, syscall.LOCK_UN)
			if cerr := f.Close(); uerr == nil {
				uerr = cerr
			}
			if uerr != nil {
				uerr = fmt.Errorf("checkpoint unlock %s: %w", path, uerr)
			}
		})
		return uerr
	}, nil
}

// saveLock takes the store-wide flock that makes a Save's check and write
// one step for every process sharing the directory. Saves hold it for
// milliseconds, so it waits.
func (s *FileStore) saveLock() (unlock func(), err error) {
	path := filepath.Join(s.dir, saveLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, err
	}
	if err := flock(f, syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Closing the file drops the lock.
	return func() { f.Close() }, nil
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// describeHolder reads the holder record; a holder that has not written it
// yet (or an old format) still yields a useful message.
func describeHolder(path string) string {
	data, err := os.ReadFile(path)
	var info lockInfo
	if err != nil || json.Unmarshal(data, &info) != nil || info.PID == 0 {
		return "holder unknown"
	}
	s := fmt.Sprintf("pid %d", info.PID)
	if info.Host != "" {
		s += " on " + info.Host
	}
	return s + " since " + info.Since.Format(time.RFC3339)
}

// removeTemporaries removes what crashed Saves left behind. Runs of other
// lock scopes (shards, backfills) may be saving right now; a Save writes
// its temporary under the save lock, so holding it leaves only leftovers.
func (s *FileStore) removeTemporaries() {
	unlock, err := s.saveLock()
	if err != nil {
		return
	}
	defer unlock()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
}
