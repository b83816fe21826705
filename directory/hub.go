package directory

import (
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Per-connection limits.
const (
	writeWait   = 10 * time.Second
	maxQueue    = 512 // frames waiting to be written before a peer counts as stuck
	maxInflight = 8   // requests a device may have in progress at once
	wheelSlots  = 16
)

// hub knows every authenticated connection, by device. Pushes are written
// from the sender's side: there is no writer goroutine per idle
// connection, only one while a connection's queue is non-empty, and pings
// come from one shared wheel rather than a ticker per connection.
type hub struct {
	s     *Server
	mu    sync.RWMutex
	conns map[string]*conn
	slots [wheelSlots]map[*conn]struct{}
}

func newHub(s *Server) *hub {
	h := &hub{s: s, conns: make(map[string]*conn)}
	for i := range h.slots {
		h.slots[i] = make(map[*conn]struct{})
	}
	return h
}

func (h *hub) count() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.conns)
}

func (h *hub) connected(deviceID string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.conns[deviceID] != nil
}

// add registers c, replacing (and closing) an older connection of the same
// device.
func (h *hub) add(c *conn) {
	h.mu.Lock()
	old := h.conns[c.sess.deviceID]
	h.conns[c.sess.deviceID] = c
	h.slots[c.slot][c] = struct{}{}
	if old != nil {
		delete(h.slots[old.slot], old)
	}
	h.mu.Unlock()
	if old != nil {
		old.closeWith(websocket.CloseGoingAway, "replaced by a newer connection")
	}
}

func (h *hub) remove(c *conn) {
	h.mu.Lock()
	if h.conns[c.sess.deviceID] == c {
		delete(h.conns, c.sess.deviceID)
	}
	delete(h.slots[c.slot], c)
	h.mu.Unlock()
}

func (h *hub) get(deviceID string) *conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.conns[deviceID]
}

// all returns every registered connection.
func (h *hub) all() []*conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	all := make([]*conn, 0, len(h.conns))
	for _, c := range h.conns {
		all = append(all, c)
	}
	return all
}

// closeDevice closes the device's connection, if it has one here, with
// code.
func (h *hub) closeDevice(deviceID string, code int, reason string) bool {
	c := h.get(deviceID)
	if c == nil {
		return false
	}
	c.closeWith(code, reason)
	return true
}

// closeAll sends every connection a close frame; each reader then ends.
func (h *hub) closeAll() {
	for _, c := range h.all() {
		c.closeWith(websocket.CloseServiceRestart, "directory restarting")
	}
}

// pingLoop pings one slot of connections per tick, so each connection is
// pinged once per PingInterval and the work is spread evenly.
func (h *hub) pingLoop() {
	t := time.NewTicker(h.s.cfg.PingInterval / wheelSlots)
	defer t.Stop()
	var i int
	var batch []*conn
	for {
		select {
		case <-h.s.stopScan:
			return
		case <-t.C:
		}
		i = (i + 1) % wheelSlots
		batch = batch[:0]
		h.mu.RLock()
		for c := range h.slots[i] {
			batch = append(batch, c)
		}
		h.mu.RUnlock()
		for _, c := range batch {
			c.enqueue(frame{kind: framePing})
		}
		clear(batch)
	}
}

// pending is a push stored in a transaction, delivered after commit.
type pending struct {
	deviceID string
	seq      uint64
	typ      string
	body     []byte
}

// deliver hands committed pushes to their devices' connections.
func (h *hub) deliver(ps []pending) {
	for _, p := range ps {
		if c := h.get(p.deviceID); c != nil {
			c.push(p)
		}
	}
}

type frameKind uint8

const (
	frameText frameKind = iota
	framePing
	frameClose
)

type frame struct {
	kind frameKind
	data []byte
}

// session is what a request handler knows about its caller.
type session struct {
	deviceID string
	addr     string
}

// conn is one authenticated agent connection.
type conn struct {
	s    *Server
	ws   *websocket.Conn
	sess session
	slot int

	mu      sync.Mutex // guards everything below
	queue   []frame
	writing bool
	closed  bool
	// sentSeq is the highest push queued; ready is false until the first
	// catch-up from the outbox is done; filling/refill run catch-ups.
	sentSeq         uint64
	ready           bool
	filling, refill bool
	inflight        atomic.Int32
}

func newConn(s *Server, ws *websocket.Conn, sess session, lastSeq uint64) *conn {
	return &conn{s: s, ws: ws, sess: sess, slot: rand.IntN(wheelSlots), sentSeq: lastSeq}
}

// enqueue queues a frame and starts a writer if none runs. It never
// blocks on the network.
func (c *conn) enqueue(f frame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if len(c.queue) >= maxQueue {
		c.s.log.Warn("agent queue full, connection closed", "device_id", c.sess.deviceID)
		c.closed = true
		go c.ws.Close()
		return false
	}
	c.queue = append(c.queue, f)
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
	return true
}

// writeLoop is the connection's only writer while it runs; it exits when
// the queue is empty.
func (c *conn) writeLoop() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.writing = false
			c.queue = nil
			c.mu.Unlock()
			return
		}
		f := c.queue[0]
		c.queue[0] = frame{}
		c.queue = c.queue[1:]
		c.mu.Unlock()

		deadline := time.Now().Add(writeWait)
		var err error
		switch f.kind {
		case framePing:
			err = c.ws.WriteControl(websocket.PingMessage, nil, deadline)
		case frameClose:
			_ = c.ws.WriteControl(websocket.CloseMessage, f.data, deadline)
			// Give the peer a moment to answer, then cut the connection so
			// the reader ends even if it does not.
			_ = c.ws.SetReadDeadline(time.Now().Add(2 * time.Second))
			err = nil
		default:
			if err = c.ws.SetWriteDeadline(deadline); err == nil {
				err = c.ws.WriteMessage(websocket.TextMessage, f.data)
			}
		}
		if err != nil {
			c.s.log.Debug("agent write failed", "device_id", c.sess.deviceID, "err", err)
			c.kill()
		}
	}
}

// send encodes and queues an envelope.
func (c *conn) send(env *protocol.Envelope) {
	b, err := protocol.Encode(env)
	if err != nil {
		c.s.log.Error("frame not encoded", "type", env.Type, "err", err)
		return
	}
	c.enqueue(frame{kind: frameText, data: b})
}

// closeWith queues a close frame after whatever is queued; the connection
// refuses further frames.
func (c *conn) closeWith(code int, reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.queue = append(c.queue, frame{kind: frameClose, data: websocket.FormatCloseMessage(code, reason)})
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
	c.mu.Unlock()
}

// kill closes the socket at once; the reader then cleans up.
func (c *conn) kill() {
	c.mu.Lock()
	c.closed = true
	c.queue = nil
	c.mu.Unlock()
	_ = c.ws.Close()
}

// push queues a live push in sequence order. A push that arrives out of
// order (a gap, or before the first catch-up) makes the connection catch
// up from the outbox instead, so none is skipped or sent twice.
func (c *conn) push(p pending) {
	c.mu.Lock()
	if c.closed || p.seq <= c.sentSeq {
		c.mu.Unlock()
		return
	}
	if c.ready && !c.filling && p.seq == c.sentSeq+1 {
		b, err := encodePush(p.typ, p.seq, p.body)
		if err == nil {
			c.sentSeq = p.seq
			c.mu.Unlock()
			c.enqueue(frame{kind: frameText, data: b})
			return
		}
	}
	c.mu.Unlock()
	c.catchUp()
}

func encodePush(typ string, seq uint64, body []byte) ([]byte, error) {
	return protocol.Encode(&protocol.Envelope{V: protocol.Version, Type: typ, Seq: seq, Body: body})
}

// catchUp sends every stored push after sentSeq, in order. Concurrent
// calls coalesce into another round.
func (c *conn) catchUp() {
	c.mu.Lock()
	if c.filling {
		c.refill = true
		c.mu.Unlock()
		return
	}
	c.filling = true
	c.mu.Unlock()
	for {
		c.mu.Lock()
		after := c.sentSeq
		c.mu.Unlock()
		var ps []store.Push
		err := c.s.st.View(c.s.ctx, func(tx store.Tx) error {
			var err error
			ps, err = tx.Pushes(c.s.ctx, c.sess.deviceID, after)
			return err
		})
		if err != nil {
			c.s.log.Error("outbox not read", "device_id", c.sess.deviceID, "err", err)
		}
		c.mu.Lock()
		for _, p := range ps {
			if p.Seq <= c.sentSeq {
				continue
			}
			b, err := encodePush(p.Type, p.Seq, p.Body)
			if err != nil {
				c.s.log.Error("frame not encoded", "type", p.Type, "err", err)
				continue
			}
			c.sentSeq = p.Seq
			c.mu.Unlock()
			c.enqueue(frame{kind: frameText, data: b})
			c.mu.Lock()
		}
		c.ready = true
		if !c.refill || c.closed {
			c.filling, c.refill = false, false
			c.mu.Unlock()
			return
		}
		c.refill = false
		c.mu.Unlock()
	}
}

// readLoop reads frames until the connection ends. Each request runs in
// its own short-lived goroutine, so this one stays small while idle.
func (c *conn) readLoop() {
	defer func() {
		c.kill()
		c.s.hub.remove(c)
		c.s.log.Debug("agent disconnected", "device_id", c.sess.deviceID)
	}()
	readWait := c.s.cfg.PingInterval * 5 / 2
	for {
		typ, buf, data, err := readFrame(c.ws)
		if err != nil {
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(readWait))
		if typ != websocket.TextMessage {
			releaseFrame(buf, data)
			c.closeWith(websocket.CloseUnsupportedData, "frames must be text")
			continue
		}
		if c.inflight.Add(1) > maxInflight {
			c.inflight.Add(-1)
			c.send(errorReply(data, &protocol.Error{Code: protocol.CodeRateLimited,
				Message: "too many requests in progress on this connection", RetryAfter: 1}))
			releaseFrame(buf, data)
			continue
		}
		if !c.s.track(&c.s.handlers) {
			c.inflight.Add(-1)
			releaseFrame(buf, data)
			continue // shutting down: the close frame follows
		}
		go func() {
			defer c.s.handlers.Done()
			defer c.inflight.Add(-1)
			res := c.s.dispatch(c.s.ctx, c.sess, data)
			releaseFrame(buf, data) // the frame may carry a password
			switch {
			case res == nil:
			case res.Type == protocol.TypeResult && res.ID == "":
				// A frame without a readable id cannot be answered within
				// the protocol: refuse it by closing this connection.
				c.s.log.Info("agent sent a frame without an id, connection closed", "device_id", c.sess.deviceID, "code", res.Error.Code)
				c.closeWith(websocket.CloseInvalidFramePayloadData, truncate(res.Error.Message, 100))
			default:
				c.send(res)
			}
		}()
	}
}

// startReading installs the pong handler and the read deadline and runs the
// reader in a fresh goroutine (with a small stack).
func (c *conn) startReading() {
	readWait := c.s.cfg.PingInterval * 5 / 2
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(readWait))
	})
	_ = c.ws.SetReadDeadline(time.Now().Add(readWait))
	c.s.loops.Add(1)
	go func() {
		defer c.s.loops.Done()
		c.readLoop()
	}()
}

// framePool holds read buffers that fit the largest frame, so a frame is
// read into one buffer that never grows (io.ReadAll would leave the
// copies it outgrew, a password among them, in freed memory) and is wiped
// before it is reused.
var framePool = sync.Pool{New: func() any { b := make([]byte, protocol.MaxMessageSize+1); return &b }}

// readFrame reads the next message into a pooled buffer; release it with
// releaseFrame. A message over the read limit ends the connection (the
// websocket library closes it with 1009).
func readFrame(ws *websocket.Conn) (typ int, buf *[]byte, data []byte, err error) {
	typ, r, err := ws.NextReader()
	if err != nil {
		return 0, nil, nil, err
	}
	buf = framePool.Get().(*[]byte)
	b := *buf
	n := 0
	for {
		m, err := r.Read(b[n:])
		n += m
		if err == io.EOF {
			return typ, buf, b[:n], nil
		}
		if err != nil {
			releaseFrame(buf, b[:n])
			return 0, nil, nil, err
		}
		if n == len(b) {
			releaseFrame(buf, b[:n])
			return 0, nil, nil, protocol.ErrTooLarge
		}
	}
}

// releaseFrame wipes a frame and returns its buffer to the pool.
func releaseFrame(buf *[]byte, data []byte) {
	clear(data)
	framePool.Put(buf)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
