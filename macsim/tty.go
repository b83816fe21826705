//go:build linux || darwin

package macsim

import "golang.org/x/sys/unix"

// noEcho turns terminal echo off on fd (as readpassphrase does before it
// writes the prompt) and returns a function that restores the old settings.
func noEcho(fd int) func() {
	old, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		return func() {}
	}
	t := *old
	t.Lflag &^= unix.ECHO | unix.ECHONL
	if err := unix.IoctlSetTermios(fd, ioctlSetTermios, &t); err != nil {
		return func() {}
	}
	return func() { _ = unix.IoctlSetTermios(fd, ioctlSetTermios, old) }
}
