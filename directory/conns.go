package directory

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// limitConns wraps the listener so that one address holds at most
// Config.MaxConnsPerAddress connections and all together at most
// Config.MaxConns. A connection over either cap is closed as soon as it is
// accepted, before any TLS work, and counted in a warning logged at most
// every few seconds. MaxConns stays below the open-file limit, so accept
// never fails for want of file descriptors (which made the HTTP server
// back off for up to a second per attempt while legitimate clients
// waited); should it fail anyway, that is logged at warn too.
func (s *Server) limitConns(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, s: s, perAddr: s.cfg.MaxConnsPerAddress, total: s.cfg.MaxConns, byAddr: map[string]int{}}
}

type limitedListener struct {
	net.Listener
	s              *Server
	perAddr, total int

	mu     sync.Mutex
	byAddr map[string]int
	n      int
}

func (l *limitedListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				l.s.warnEvery("accept", "cannot accept connections: out of file descriptors", "err", err, "open", l.open())
				delay = min(max(2*delay, 5*time.Millisecond), 100*time.Millisecond)
				time.Sleep(delay)
				continue
			}
			return nil, err
		}
		delay = 0
		addr := hostOf(c.RemoteAddr())
		l.mu.Lock()
		switch {
		case l.byAddr[addr] >= l.perAddr:
			l.mu.Unlock()
			c.Close()
			l.s.warnEvery("conns:"+addr, "connection refused: too many from one address", "addr", addr, "limit", l.perAddr)
			continue
		case l.n >= l.total:
			l.mu.Unlock()
			c.Close()
			l.s.warnEvery("conns", "connection refused: too many connections", "addr", addr, "limit", l.total)
			continue
		}
		l.byAddr[addr]++
		l.n++
		l.mu.Unlock()
		return &countedConn{Conn: c, l: l, addr: addr}, nil
	}
}

func (l *limitedListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *limitedListener) release(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
		delete(l.byAddr, addr)
	}
}

// countedConn gives its slot back when closed (once, however often Close
// is called: by the HTTP server, a websocket, both).
type countedConn struct {
	net.Conn
	l    *limitedListener
	addr string
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// withDeadlines bounds how long an enrollment or admin request may take
// to arrive (Config.RequestTimeout, headers and body; a body sent a byte
// every few seconds is cut off) and to be answered.
func (s *Server) withDeadlines(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		_ = rc.SetReadDeadline(now.Add(s.cfg.RequestTimeout))
		_ = rc.SetWriteDeadline(now.Add(6 * s.cfg.RequestTimeout))
		h(w, r)
	}
}
