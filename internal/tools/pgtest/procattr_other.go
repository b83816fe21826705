//go:build !linux

package pgtest

import "syscall"

// serverProcAttr runs the server as cred in its own session.
func serverProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setsid: true}
}
