package macsim

import (
	"os"

	"golang.org/x/sys/unix"
)

const (
	ioctlGetTermios = unix.TIOCGETA
	ioctlSetTermios = unix.TIOCSETA
)

// gettid has no portable equivalent on darwin; the pid keeps the NSLog
// prefix's shape.
func gettid() int { return os.Getpid() }
