//go:build !linux

package sambatest

import "syscall"

// serverProcAttr runs samba in its own process group.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
