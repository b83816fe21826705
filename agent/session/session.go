// Package session keeps lockstepd's websocket session with the directory:
// it enrolls the device once, authenticates every connection by signing the
// directory's challenge with the device key, reconnects with capped
// exponential backoff and full jitter, answers requests by id, and hands
// pushes to the daemon in order, acknowledging each only after the daemon has
// handled it, so that nothing is lost across a crash or a reconnect.
package session

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lockstep-dev/lockstep/agent/atomicfile"
	"github.com/lockstep-dev/lockstep/protocol"
)

// KeyStore keeps the device's private key: the System keychain on a Mac, a
// root-only file elsewhere.
type KeyStore interface {
	Get(name string) ([]byte, error)
	Put(name string, value []byte) error
	Delete(name string) error
}

// keyName is the device key's name in the KeyStore.
const keyName = "device-key"

// Backoff bounds.
const (
	backoffBase = time.Second
	backoffCap  = 3 * time.Minute
)

// ErrOffline is returned by Request when no session comes up in time.
var ErrOffline = errors.New("the directory is not reachable")

// ErrNotEnrolled is reported when the device has no identity and no token.
var ErrNotEnrolled = errors.New("this Mac is not enrolled: set EnrollmentToken")

// ErrRefused is reported when the directory refuses the device's identity
// (websocket close code protocol.CloseUnauthorized): the device was revoked
// or removed, or the directory was restored from a backup older than the
// enrollment.
var ErrRefused = errors.New("the directory refused this Mac's identity (revoked or unknown); IT must give it a new EnrollmentToken")

// ErrRevoked is reported when an administrator revoked the device
// (websocket close code protocol.CloseRevoked): the directory refuses its
// key from then on.
var ErrRevoked = errors.New("an administrator revoked this Mac in the directory; IT must give it a new EnrollmentToken")

// refusedWait bounds the wait before trying again after a refusal: at
// least half the backoff cap, so a refused identity is not retried in a
// loop, yet one refused by mistake (a directory restored from a backup and
// fixed again) comes back by itself.
var refusedWait = [2]time.Duration{backoffCap / 2, backoffCap}

// PushHandler handles one push. It must be idempotent: a push is delivered
// again after a crash or reconnect until it has been acknowledged.
type PushHandler func(ctx context.Context, env *protocol.Envelope) error

// Connection states of a session.
const (
	Connected   = "connected"
	Connecting  = "connecting"
	Offline     = "offline"
	NotEnrolled = "not_enrolled"
)

// Why a session is not connected, as a code a person is told.
const (
	ProblemUnreachable = "unreachable" // no answer, TLS or network failure
	ProblemNotEnrolled = "not_enrolled"
	ProblemRefused     = "refused" // the directory does not know this Mac's key
	ProblemRevoked     = "revoked" // an administrator revoked this Mac
)

// Status is the session's state: which of the states above, since when,
// and, while it is not connected, why (a Problem* code) and the last error
// in Go's words, for IT.
type Status struct {
	State     string
	URL       string
	Since     time.Time
	Problem   string
	LastError string
	DeviceID  string
}

// problemOf classifies why a connection attempt failed.
func problemOf(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrRevoked):
		return ProblemRevoked
	case errors.Is(err, ErrRefused):
		return ProblemRefused
	case errors.Is(err, ErrNotEnrolled):
		return ProblemNotEnrolled
	}
	return ProblemUnreachable
}

// Options configure a Session.
type Options struct {
	URL             string // wss://host[:port]
	RootCAs         *x509.CertPool
	EnrollmentToken protocol.Secret
	StateDir        string
	Keys            KeyStore
	Hostname        string
	AgentVersion    string
	Log             *slog.Logger
	OnPush          PushHandler
	// OnState is called after every connection state change.
	OnState func(Status)
	// OnWelcome is called with the directory's policy on each connect.
	OnWelcome func(protocol.Welcome)
}

// identity is what is stored on disk about the enrollment; the key is not.
type identity struct {
	DeviceID  string `json:"device_id"`
	Directory string `json:"directory"`
	LastSeq   uint64 `json:"last_seq"`
}

// Session is the directory link. Create it with New and run it with Run.
type Session struct {
	opt Options
	log *slog.Logger

	mu      sync.Mutex
	state   Status
	id      identity
	key     ed25519.PrivateKey
	conn    *websocket.Conn
	wmu     sync.Mutex // one writer per connection
	pending map[string]chan *protocol.Envelope
	up      chan struct{} // closed while connected; replaced on disconnect
	seq     uint64        // request ids
	// refused is set when the directory refused the identity, until a
	// session is welcomed again.
	refused bool
	// refusedWait is the package's refusedWait; tests shorten it.
	refusedWait [2]time.Duration
}

// New returns a session; it does not connect until Run.
func New(opt Options) (*Session, error) {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Hostname == "" {
		opt.Hostname, _ = os.Hostname()
	}
	s := &Session{opt: opt, log: opt.Log, pending: map[string]chan *protocol.Envelope{}, up: make(chan struct{}), refusedWait: refusedWait}
	s.state = Status{State: Connecting, URL: opt.URL, Since: time.Now()}
	if err := s.loadIdentity(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Session) identityPath() string { return filepath.Join(s.opt.StateDir, "device.json") }

func (s *Session) loadIdentity() error {
	b, err := os.ReadFile(s.identityPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading device identity: %w", err)
	}
	if err := json.Unmarshal(b, &s.id); err != nil {
		return fmt.Errorf("reading device identity: %w", err)
	}
	if s.id.Directory != s.opt.URL {
		s.log.Warn("directory url changed, enrolling again", "old", s.id.Directory, "new", s.opt.URL)
		s.id = identity{}
		return nil
	}
	raw, err := s.opt.Keys.Get(keyName)
	if err != nil || len(raw) != ed25519.SeedSize {
		s.log.Warn("device key missing, enrolling again", "err", err)
		s.id = identity{}
		return nil
	}
	s.key = ed25519.NewKeyFromSeed(raw)
	clear(raw)
	return nil
}

func (s *Session) saveIdentity() error {
	s.mu.Lock()
	b, err := json.MarshalIndent(s.id, "", "  ")
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.opt.StateDir, 0o700); err != nil {
		return fmt.Errorf("saving device identity: %w", err)
	}
	return atomicfile.Write(s.identityPath(), b, 0o600)
}

// DeviceID returns the enrolled id, or "".
func (s *Session) DeviceID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id.DeviceID
}

// Status returns the connection state.
func (s *Session) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	st.DeviceID = s.id.DeviceID
	return st
}

func (s *Session) setState(state string, err error) {
	s.mu.Lock()
	changed := s.state.State != state
	if changed {
		s.state.State = state
		s.state.Since = time.Now()
	}
	s.state.LastError, s.state.Problem = "", problemOf(err)
	if err != nil {
		s.state.LastError = err.Error()
	}
	st := s.state
	st.DeviceID = s.id.DeviceID
	s.mu.Unlock()
	if s.opt.OnState != nil {
		s.opt.OnState(st)
	}
}

// httpURL maps the websocket URL to the HTTPS one of the same server.
func (s *Session) httpURL(path string) (string, error) {
	u, err := url.Parse(s.opt.URL)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "wss":
		u.Scheme = "https"
	case "ws":
		u.Scheme = "http"
	}
	u.Path = path
	return u.String(), nil
}

func (s *Session) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: s.opt.RootCAs, MinVersion: tls.VersionTLS12, CipherSuites: protocol.TLS12CipherSuites}
}

// enroll trades the enrollment token for a device id.
func (s *Session) enroll(ctx context.Context) error {
	if s.opt.EnrollmentToken.Empty() {
		return ErrNotEnrolled
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generating device key: %w", err)
	}
	body, err := protocol.Marshal(protocol.EnrollRequest{Token: s.opt.EnrollmentToken, PublicKey: pub, Hostname: s.opt.Hostname})
	if err != nil {
		return err
	}
	defer clear(body)
	u, err := s.httpURL(protocol.EnrollPath)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: s.tlsConfig()}}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("enrolling: %w", err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		var pe protocol.Error
		if json.Unmarshal(rb, &pe) == nil && pe.Message != "" {
			return fmt.Errorf("enrolling: %w", &pe)
		}
		return fmt.Errorf("enrolling: directory answered %s", resp.Status)
	}
	var er protocol.EnrollResponse
	if err := json.Unmarshal(rb, &er); err != nil || er.DeviceID == "" {
		return fmt.Errorf("enrolling: bad answer: %v", err)
	}
	seed := priv.Seed()
	defer clear(seed)
	if err := s.opt.Keys.Put(keyName, seed); err != nil {
		return fmt.Errorf("storing device key: %w", err)
	}
	s.mu.Lock()
	s.key = priv
	s.id = identity{DeviceID: er.DeviceID, Directory: s.opt.URL}
	s.mu.Unlock()
	if err := s.saveIdentity(); err != nil {
		return err
	}
	s.log.Info("device enrolled", "device_id", er.DeviceID)
	return nil
}

// Run keeps the session up until ctx ends.
func (s *Session) Run(ctx context.Context) error {
	var attempt int
	for ctx.Err() == nil {
		good, err := s.runOnce(ctx)
		if ctx.Err() != nil {
			break
		}
		if good {
			attempt = 0
		}
		state, d := s.retry(err, attempt)
		attempt++
		s.setState(state, err)
		s.log.Info("directory session down", "err", err, "retry_in", d.Round(time.Millisecond).String())
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	s.setState(Offline, nil)
	return nil
}

// retry says what a session that ended with err is now, and how long to
// wait before the next attempt.
func (s *Session) retry(err error, attempt int) (state string, wait time.Duration) {
	switch {
	case errors.Is(err, ErrRefused), errors.Is(err, ErrRevoked):
		return NotEnrolled, s.refusedWait[0] + jitter(s.refusedWait[1]-s.refusedWait[0])
	case errors.Is(err, ErrNotEnrolled):
		return NotEnrolled, backoff(attempt)
	}
	return Offline, backoff(attempt)
}

// backoff returns a full-jitter delay for the attempt: uniform in
// [0, min(cap, base·2^attempt)], so ten thousand agents that lost the
// directory at once do not come back at once.
func backoff(attempt int) time.Duration {
	ceil := backoffCap
	if attempt < 20 {
		if d := backoffBase << attempt; d < ceil {
			ceil = d
		}
	}
	return jitter(ceil)
}

// jitter returns a uniform delay in [0, ceil].
func jitter(ceil time.Duration) time.Duration {
	if ceil <= 0 {
		return 0
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(ceil)+1))
	if err != nil {
		return ceil
	}
	return time.Duration(n.Int64())
}

// runOnce connects, authenticates and serves one connection. good reports
// whether the directory accepted the session (which resets the backoff).
func (s *Session) runOnce(ctx context.Context) (good bool, err error) {
	s.mu.Lock()
	enrolled := s.id.DeviceID != "" && s.key != nil
	refused := s.refused
	s.mu.Unlock()
	if !refused {
		// A refused device stays "not enrolled", with why, while it tries.
		s.setState(Connecting, nil)
	}
	var reenrollErr error
	switch {
	case !enrolled:
		if err := s.enroll(ctx); err != nil {
			return false, err
		}
	case refused && !s.opt.EnrollmentToken.Empty():
		// Start over: a new identity with the configured token. The old
		// one is replaced only once the directory accepted the new one, so
		// a spent token leaves the device as it was, and a refusal that
		// was the directory's mistake passes once it is fixed.
		if err := s.enroll(ctx); err != nil {
			reenrollErr = err
			s.log.Warn("enrolling again after a refusal failed", "err", err)
		}
	}
	d := websocket.Dialer{
		TLSClientConfig:  s.tlsConfig(),
		HandshakeTimeout: 20 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
	}
	u, _ := url.Parse(s.opt.URL)
	u.Path = protocol.AgentPath
	conn, resp, err := d.DialContext(ctx, u.String(), nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return false, fmt.Errorf("connecting to %s: %w", s.opt.URL, err)
	}
	defer conn.Close()
	conn.SetReadLimit(protocol.MaxMessageSize)

	welcome, err := s.handshake(conn)
	if err != nil {
		if errors.Is(err, ErrRefused) || errors.Is(err, ErrRevoked) {
			s.log.Warn("directory refused the device identity", "device_id", s.DeviceID(), "err", err)
			s.mu.Lock()
			s.refused = true
			s.mu.Unlock()
			if reenrollErr != nil {
				err = fmt.Errorf("%w; enrolling again failed: %w", err, reenrollErr)
			}
		}
		return false, err
	}
	s.mu.Lock()
	s.refused = false
	s.mu.Unlock()
	if s.opt.OnWelcome != nil {
		s.opt.OnWelcome(*welcome)
	}
	readWait := time.Duration(max(welcome.PingSeconds, 10))*time.Second*2 + 10*time.Second
	conn.SetReadDeadline(time.Now().Add(readWait))
	conn.SetPingHandler(func(data string) error {
		conn.SetReadDeadline(time.Now().Add(readWait))
		s.wmu.Lock()
		defer s.wmu.Unlock()
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
	})

	pushes := make(chan *protocol.Envelope, 64)
	pushErr := make(chan error, 1)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { pushErr <- s.processPushes(pctx, conn, pushes) }()

	s.mu.Lock()
	s.conn = conn
	close(s.up)
	s.mu.Unlock()
	s.setState(Connected, nil)
	s.log.Info("directory session up", "device_id", welcome.DeviceID)
	defer s.disconnected()

	go func() {
		<-pctx.Done()
		conn.Close() // unblocks ReadMessage
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return true, ctx.Err()
			}
			select {
			case e := <-pushErr:
				return true, e
			default:
			}
			if websocket.IsCloseError(err, protocol.CloseRevoked) {
				s.log.Warn("directory revoked the device", "device_id", s.DeviceID())
				s.mu.Lock()
				s.refused = true
				s.mu.Unlock()
				return false, ErrRevoked
			}
			return true, fmt.Errorf("reading from directory: %w", err)
		}
		conn.SetReadDeadline(time.Now().Add(readWait))
		env, err := protocol.Decode(data)
		if err != nil {
			s.log.Warn("directory sent an invalid frame", "err", err)
			continue
		}
		switch {
		case env.Type == protocol.TypeResult:
			s.mu.Lock()
			ch := s.pending[env.ID]
			delete(s.pending, env.ID)
			s.mu.Unlock()
			if ch != nil {
				ch <- env
			}
		case protocol.IsPush(env.Type):
			select {
			case pushes <- env:
			default:
				// The worker is far behind; dropping is safe because
				// unacknowledged pushes come again on reconnect.
				return true, errors.New("too many unhandled pushes; reconnecting")
			}
		default:
			s.log.Warn("unexpected frame from directory", "type", env.Type)
		}
	}
}

func (s *Session) disconnected() {
	s.mu.Lock()
	s.conn = nil
	s.up = make(chan struct{})
	for id, ch := range s.pending {
		close(ch)
		delete(s.pending, id)
	}
	s.mu.Unlock()
}

func (s *Session) handshake(conn *websocket.Conn) (*protocol.Welcome, error) {
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	env, err := readFrame(conn)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if env.Type != protocol.TypeHello {
		return nil, fmt.Errorf("handshake: expected hello, got %s", env.Type)
	}
	var hello protocol.Hello
	if err := env.Decode(&hello); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	s.mu.Lock()
	id, key, last := s.id.DeviceID, s.key, s.id.LastSeq
	s.mu.Unlock()
	sig := ed25519.Sign(key, protocol.AuthMessage(id, hello.Challenge))
	auth, err := protocol.New(protocol.TypeAuth, protocol.Auth{DeviceID: id, Signature: sig, LastSeq: last, AgentVersion: s.opt.AgentVersion})
	if err != nil {
		return nil, err
	}
	if err := s.write(conn, auth); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	env, err = readFrame(conn)
	if websocket.IsCloseError(err, protocol.CloseRevoked) {
		return nil, fmt.Errorf("handshake: %w", ErrRevoked)
	}
	if websocket.IsCloseError(err, protocol.CloseUnauthorized) ||
		(err == nil && env.Error != nil && env.Error.Code == protocol.CodeUnauthorized) {
		return nil, fmt.Errorf("handshake: %w", ErrRefused)
	}
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if env.Error != nil {
		return nil, fmt.Errorf("handshake: %w", env.Error)
	}
	if env.Type != protocol.TypeWelcome {
		return nil, fmt.Errorf("handshake: expected welcome, got %s", env.Type)
	}
	var w protocol.Welcome
	if err := env.Decode(&w); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	return &w, nil
}

func readFrame(conn *websocket.Conn) (*protocol.Envelope, error) {
	_, data, err := conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	return protocol.Decode(data)
}

func (s *Session) write(conn *websocket.Conn, env *protocol.Envelope) error {
	b, err := protocol.Encode(env)
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	err = conn.WriteMessage(websocket.TextMessage, b)
	clear(b) // it may hold passwords
	return err
}

// processPushes hands pushes to the daemon one at a time, in order, and
// acknowledges each once handled.
func (s *Session) processPushes(ctx context.Context, conn *websocket.Conn, in <-chan *protocol.Envelope) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case env := <-in:
			s.mu.Lock()
			last := s.id.LastSeq
			s.mu.Unlock()
			if env.Seq <= last {
				continue // already handled before a reconnect
			}
			if s.opt.OnPush != nil {
				if err := s.opt.OnPush(ctx, env); err != nil {
					// Not acknowledged: it comes again on the next connection.
					s.log.Error("push not handled", "type", env.Type, "seq", env.Seq, "err", err)
					conn.Close()
					return fmt.Errorf("handling %s push: %w", env.Type, err)
				}
			}
			s.mu.Lock()
			s.id.LastSeq = env.Seq
			s.mu.Unlock()
			if err := s.saveIdentity(); err != nil {
				s.log.Error("push sequence not saved", "err", err)
			}
			ack, _ := protocol.New(protocol.TypeAckPush, protocol.AckPush{Seq: env.Seq})
			if err := s.write(conn, ack); err != nil {
				return fmt.Errorf("acknowledging push: %w", err)
			}
		}
	}
}

// Request sends a request and decodes the result into out (which may be
// nil). It waits up to wait for a session when none is up. Mutating requests
// carry idemKey and are re-sent after a reconnect until ctx ends, which is
// safe because the directory returns the first outcome for a repeated key.
// Other requests are not re-sent: a password check must not count twice
// towards lockout.
func (s *Session) Request(ctx context.Context, typ, idemKey string, body, out any, wait time.Duration) error {
	env, err := protocol.New(typ, body)
	if err != nil {
		return err
	}
	defer clear(env.Body)
	env.IdempotencyKey = idemKey
	deadline := time.Now().Add(wait)
	for {
		conn, err := s.waitUp(ctx, time.Until(deadline))
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.seq++
		env.ID = fmt.Sprintf("r%d-%s", s.seq, randHex(4))
		ch := make(chan *protocol.Envelope, 1)
		s.pending[env.ID] = ch
		s.mu.Unlock()
		if err := s.write(conn, env); err != nil {
			s.mu.Lock()
			delete(s.pending, env.ID)
			s.mu.Unlock()
			conn.Close()
			if idemKey == "" {
				return fmt.Errorf("%w: %v", ErrOffline, err)
			}
			continue
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			delete(s.pending, env.ID)
			s.mu.Unlock()
			return ctx.Err()
		case res, ok := <-ch:
			if !ok { // connection lost before the answer
				if idemKey == "" {
					return fmt.Errorf("%w: connection lost before the answer", ErrOffline)
				}
				deadline = time.Now().Add(wait)
				continue
			}
			if res.Error != nil {
				return res.Error
			}
			if out != nil {
				if err := res.Decode(out); err != nil {
					return err
				}
			}
			return nil
		}
	}
}

func (s *Session) waitUp(ctx context.Context, wait time.Duration) (*websocket.Conn, error) {
	for {
		s.mu.Lock()
		conn, up := s.conn, s.up
		s.mu.Unlock()
		if conn != nil {
			return conn, nil
		}
		if wait <= 0 {
			return nil, ErrOffline
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
			return nil, ErrOffline
		case <-up:
			t.Stop()
		}
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
