package sambatest

import "syscall"

// serverProcAttr runs samba in its own process group; Pdeathsig makes it
// die with the test binary even when that is killed before Stop (its ports
// are fixed: a leftover would stop the next run).
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
