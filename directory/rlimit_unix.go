//go:build unix

package directory

import "syscall"

// maxConnsFromLimit is the default cap on open connections: the
// open-file limit (which the Go runtime raises to the hard limit at start)
// less room for the database, the log and the listener.
func maxConnsFromLimit() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > 1<<24 {
		return 1 << 16
	}
	return max(64, int(l.Cur)-256)
}
