//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package checkpoint

import (
	"context"
	"errors"
)

// Lock is not implemented where flock(2) is missing; the exporter is built
// for Linux.
func (s *FileStore) Lock(ctx context.Context) (unlock func() error, err error) {
	return nil, errors.New("checkpoint lock: not supported on this operating system")
}

// saveLock cannot exclude other processes here; Lock fails anyway, so no
// run gets as far as saving.
func (s *FileStore) saveLock() (unlock func(), err error) {
	return nil, errors.New("checkpoint lock: not supported on this operating system")
}
