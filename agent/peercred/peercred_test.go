package peercred

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestGetOnRealSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan Creds, 1)
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		cr, err := Get(c)
		if err != nil {
			errc <- err
			return
		}
		done <- cr
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case cr := <-done:
		if cr.UID != os.Getuid() || cr.PID != os.Getpid() {
			t.Fatalf("creds = %+v, want uid %d pid %d", cr, os.Getuid(), os.Getpid())
		}
	case err := <-errc:
		t.Fatal(err)
	}
}

func TestGetRefusesTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			defer c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := Get(c); err == nil {
		t.Fatal("Get on TCP succeeded")
	}
}
