package pgtest

import "syscall"

// serverProcAttr runs the server as cred in its own session; Pdeathsig
// makes it die with the test binary even when that is killed before Stop.
func serverProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setsid: true, Pdeathsig: syscall.SIGKILL}
}
