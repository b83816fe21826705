//go:build darwin

package peercred

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// xucredVersion is XUCRED_VERSION; a struct of another version cannot be
// trusted to have cr_uid where we read it.
const xucredVersion = 0

func get(fd int) (Creds, error) {
	x, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return Creds{}, err
	}
	if x.Version != xucredVersion {
		return Creds{}, fmt.Errorf("unexpected xucred version %d", x.Version)
	}
	pid, err := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	if err != nil {
		pid = 0
	}
	return Creds{UID: int(x.Uid), PID: pid}, nil
}
