//go:build unix

// Package instance keeps one copy of a per-user program running.
package instance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrRunning says another process of this user holds the lock.
var ErrRunning = errors.New("already running for this user")

// Lock makes this process the user's only instance of the program named
// id: it takes an exclusive flock on a file in the user's cache directory.
// The kernel drops the lock when the process ends, however it ends, so
// there is no stale lock to clean up. Call release to let go earlier.
func Lock(id string) (release func(), err error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("finding the cache directory for the instance lock: %w", err)
	}
	dir = filepath.Join(dir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("instance lock: %w", err)
	}
	path := filepath.Join(dir, "instance.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("instance lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (lock %s)", ErrRunning, path)
		}
		return nil, fmt.Errorf("instance lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
