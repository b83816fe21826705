package api

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/localapi"
)

// openWatch starts a watch stream on its own connection and reads its
// first line; it returns the connection (to hold or close) and the status.
func openWatch(t *testing.T, sock string) (net.Conn, int) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET "+localapi.PathWatch+" HTTP/1.1\r\nHost: "+localapi.Host+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, 0 // closed at accept: over the connection share
	}
	c.SetReadDeadline(time.Time{})
	return c, resp.StatusCode
}

// 6. One uid holds as many watch streams as it may; the next is refused
// with too_many, and closing one makes room. Its connections are bounded
// the same way, before any request is read.
func TestWatchStreamsAndConnectionsAreBoundedPerUID(t *testing.T) {
	lim := Limits{ConnsPerUID: 6, Conns: 100, WatchesPerUID: 3, Watches: 100}
	sock := startWith(t, newFake(), lim)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < lim.WatchesPerUID; i++ {
		c, code := openWatch(t, sock)
		if code != http.StatusOK {
			t.Fatalf("watch %d: status %d", i+1, code)
		}
		held = append(held, c)
	}
	_, err := localapi.NewClient(sock).Status(t.Context())
	if err != nil {
		t.Fatalf("status while holding every watch: %v", err)
	}
	err = localapi.NewClient(sock).Watch(t.Context(), func(localapi.Event) error { return errors.New("admitted") })
	var e *localapi.Error
	if !errors.As(err, &e) || e.Code != localapi.CodeTooMany {
		t.Fatalf("watch over the share = %v, want %s", err, localapi.CodeTooMany)
	}
	held[0].Close()
	held = held[1:]
	waitFor(t, "a watch to be admitted after one closed", func() bool {
		c, code := openWatch(t, sock)
		if code == http.StatusOK {
			held = append(held, c)
			return true
		}
		if c != nil {
			c.Close()
		}
		return false
	})

	// Idle connections: the share is full with 3 watches and 3 idle ones.
	for i := 0; i < lim.ConnsPerUID-lim.WatchesPerUID; i++ {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	waitFor(t, "the next connection to be closed at once", func() bool {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 1))
		return errors.Is(err, io.EOF)
	})
}

// The total is shared by every uid but root: past it, a uid with a share
// left is refused too. (Root and the daemon's own uid are exempt, so this
// runs as neither only when the test is not root.)
func TestQuotaTotal(t *testing.T) {
	// Three callers that are neither root nor this process (CI runs the
	// suite as root and as an ordinary user whose uid could be any of them).
	var a, b, c int
	for uid, n := 1001, 0; n < 3; uid++ {
		if exempt(uid) {
			continue
		}
		switch n {
		case 0:
			a = uid
		case 1:
			b = uid
		case 2:
			c = uid
		}
		n++
	}
	q := newQuota("watch streams", 2, 3, discardLog())
	for _, uid := range []int{a, a, b} {
		if !q.acquire(uid) {
			t.Fatalf("uid %d refused under the limits", uid)
		}
	}
	if q.acquire(a) {
		t.Fatalf("uid %d got past its share", a)
	}
	if q.acquire(c) {
		t.Fatalf("uid %d got past the total", c)
	}
	if !q.acquire(0) || !q.acquire(0) || q.acquire(0) {
		t.Fatal("root: its own share, outside the total")
	}
	q.release(b)
	if !q.acquire(c) {
		t.Fatal("no room after a release")
	}
}

// A client that starts a request body and stops sending gets an answer
// (the body timed out) instead of holding the handler.
func TestSlowBodyIsCutOff(t *testing.T) {
	old := bodyTimeout
	bodyTimeout = 200 * time.Millisecond
	defer func() { bodyTimeout = old }()
	sock := start(t, newFake())
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST "+localapi.PathDoctor+" HTTP/1.1\r\nHost: "+localapi.Host+"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user\":")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "timeout") {
		t.Fatalf("answer = %d %s", resp.StatusCode, b)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
