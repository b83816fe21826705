// Package peercred reads who is on the other end of a unix socket from the
// kernel. lockstepd's local API trusts nothing else about its callers: no
// token, no header, only the uid the kernel reports.
package peercred

import (
	"errors"
	"fmt"
	"net"
)

// ErrUnsupported is returned on platforms without peer credentials.
var ErrUnsupported = errors.New("peer credentials are not supported on this platform")

// Creds identifies the process that connected.
type Creds struct {
	UID int
	PID int // 0 when the platform does not report it
}

// Get returns the peer credentials of a unix socket connection.
func Get(c net.Conn) (Creds, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Creds{}, fmt.Errorf("peer credentials: %T is not a unix socket", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Creds{}, fmt.Errorf("peer credentials: %w", err)
	}
	var cr Creds
	var cerr error
	if err := raw.Control(func(fd uintptr) { cr, cerr = get(int(fd)) }); err != nil {
		return Creds{}, fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return Creds{}, fmt.Errorf("peer credentials: %w", cerr)
	}
	return cr, nil
}
