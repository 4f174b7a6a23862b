//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package filesink

import (
	"errors"
	"os"
	"syscall"
)

// own takes an exclusive advisory lock on f, held until f is closed or the
// process dies (kill -9 included). A writer holds it on each in-progress
// file it writes, and recovery only touches in-progress files it can lock:
// the leftovers of dead processes, never the file of a live exporter
// writing the same directory (a shard beside another, a backfill beside
// the CronJob). It reports false when another process holds the lock.
func own(f *os.File) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		}
		return false, err
	}
}
