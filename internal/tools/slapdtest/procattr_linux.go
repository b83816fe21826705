package slapdtest

import "syscall"

// serverProcAttr runs slapd in its own process group; Pdeathsig makes it
// die with the test binary even when that is killed before Stop.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
