//go:build linux

package peercred

import "golang.org/x/sys/unix"

func get(fd int) (Creds, error) {
	u, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return Creds{}, err
	}
	return Creds{UID: int(u.Uid), PID: int(u.Pid)}, nil
}
