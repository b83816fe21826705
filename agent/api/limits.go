package api

import (
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/agent/peercred"
)

// Limits bound what local callers may hold open. Every local user can
// connect to the socket, so without them one user could take every file
// descriptor and goroutine of lockstepd (thousands of watch streams, or
// idle connections) and leave every other user's `lockstep status`, the
// menu-bar app and IT's scripts without an answer. A uid's share is well
// below the total, so one uid cannot starve another; root's connections
// count only against its own share, so IT can always get in.
type Limits struct {
	// ConnsPerUID bounds the open connections of one uid. Past it, a new
	// connection is closed as soon as it is accepted.
	ConnsPerUID int
	// Conns bounds the open connections of all uids but root.
	Conns int
	// WatchesPerUID bounds the watch streams of one uid; past it, a watch
	// is answered 429 with CodeTooMany.
	WatchesPerUID int
	// Watches bounds the watch streams of all uids but root.
	Watches int
}

// DefaultLimits are generous for people: the menu-bar app holds one watch
// stream and a connection or two, each `lockstep` command one connection.
var DefaultLimits = Limits{ConnsPerUID: 32, Conns: 512, WatchesPerUID: 8, Watches: 128}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.ConnsPerUID > 0 {
		d.ConnsPerUID = l.ConnsPerUID
	}
	if l.Conns > 0 {
		d.Conns = l.Conns
	}
	if l.WatchesPerUID > 0 {
		d.WatchesPerUID = l.WatchesPerUID
	}
	if l.Watches > 0 {
		d.Watches = l.Watches
	}
	return d
}

// Request deadlines: a client that sends or reads slowly loses its
// connection instead of holding a handler. Variables for tests.
var (
	headerTimeout = 10 * time.Second // the request line and headers
	bodyTimeout   = 10 * time.Second // a request body
	writeTimeout  = 10 * time.Second // each response, or each event of a stream
	idleTimeout   = time.Minute      // between requests on a kept-alive connection
)

// quota counts what each uid holds against a per-uid and a total bound.
type quota struct {
	perUID, total int
	what          string
	log           *slog.Logger

	mu      sync.Mutex
	byUID   map[int]int
	n       int // held by uids other than root
	refused map[int]int
	logged  map[int]time.Time
}

func newQuota(what string, perUID, total int, log *slog.Logger) *quota {
	return &quota{what: what, perUID: perUID, total: total, log: log,
		byUID: map[int]int{}, refused: map[int]int{}, logged: map[int]time.Time{}}
}

// exempt reports whether uid's holdings are left out of the total: root's,
// and the daemon's own when it is not root (a developer's demo).
func exempt(uid int) bool { return uid == 0 || uid == os.Geteuid() }

// acquire takes one for uid, or reports false when uid is at its share or
// the total is reached.
func (q *quota) acquire(uid int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.byUID[uid] >= q.perUID || (!exempt(uid) && q.n >= q.total) {
		q.refusedLocked(uid)
		return false
	}
	q.byUID[uid]++
	if !exempt(uid) {
		q.n++
	}
	return true
}

func (q *quota) release(uid int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.byUID[uid]--; q.byUID[uid] <= 0 {
		delete(q.byUID, uid)
	}
	if !exempt(uid) {
		q.n--
	}
}

// refusedLocked logs a refusal at warn: the first at once, then at most
// once a minute per uid with the count since the last line.
func (q *quota) refusedLocked(uid int) {
	q.refused[uid]++
	if at, ok := q.logged[uid]; ok && time.Since(at) < time.Minute {
		return
	}
	q.log.Warn("local api limit reached", "what", q.what, "uid", uid, "held", q.byUID[uid],
		"per_uid_limit", q.perUID, "total_held", q.n, "total_limit", q.total, "refused", q.refused[uid])
	q.logged[uid], q.refused[uid] = time.Now(), 0
}

// limitListener accepts a connection only within its uid's share, and
// hands the server connections that carry the peer's credentials.
type limitListener struct {
	net.Listener
	q   *quota
	log *slog.Logger
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		cr, err := peercred.Get(c)
		if err != nil {
			l.log.Warn("local api peer credentials unavailable", "err", err)
			c.Close()
			continue
		}
		if !l.q.acquire(cr.UID) {
			c.Close()
			continue
		}
		return &peerConn{Conn: c, creds: cr, q: l.q}, nil
	}
}

// peerConn is an accepted connection and who is on its other end. It also
// remembers the buffers the server reads the connection into, so that a
// handler that read a password can wipe the server's copy (the HTTP
// server's read buffer, where the request arrived, is not reachable
// otherwise). Only the connection's own goroutine reads into them.
type peerConn struct {
	net.Conn
	creds peercred.Creds
	q     *quota
	once  sync.Once
	reads [][]byte
}

// maxReadBufs bounds the buffers remembered; the server reads into one.
const maxReadBufs = 4

func (c *peerConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.remember(p[:cap(p)])
	}
	return n, err
}

// remember keeps b, a buffer from where a read went to its end. Reads into
// the same buffer share its end; of those, the one that starts first is
// kept.
func (c *peerConn) remember(b []byte) {
	end := &b[len(b)-1]
	for i, r := range c.reads {
		if &r[len(r)-1] == end {
			if len(b) > len(r) {
				c.reads[i] = b
			}
			return
		}
	}
	if len(c.reads) < maxReadBufs {
		c.reads = append(c.reads, b)
	}
}

// wipeReads zeroes every buffer the connection was read into.
func (c *peerConn) wipeReads() {
	for _, r := range c.reads {
		clear(r)
	}
}

func (c *peerConn) Close() error {
	c.once.Do(func() { c.q.release(c.creds.UID) })
	return c.Conn.Close()
}
