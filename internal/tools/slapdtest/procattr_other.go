//go:build !linux

package slapdtest

import "syscall"

// serverProcAttr runs slapd in its own process group.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
