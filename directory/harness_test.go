package directory

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
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// fakeClock is the injectable clock for TOTP, lockout, rate limits and
// expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testEnv is a directory served on loopback with real TLS, its admin
// client, and a record of every secret the test used, so that cleanup can
// prove none reached the log, the audit log or the database file.
type testEnv struct {
	t     *testing.T
	srv   *Server
	dir   string
	url   string
	adm   *admin.Client
	clock *fakeClock
	logs  *syncBuffer
	roots *x509.CertPool
	// dbURL is the PostgreSQL database, "" with SQLite.
	dbURL string

	mu      sync.Mutex
	secrets []string
}

// testArgon2 keeps tests fast; production uses DefaultArgon2.
var testArgon2 = Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

// newEnvNoCleanup reopens an existing data directory.
func newEnvNoCleanup(t *testing.T, dir string) *testEnv {
	return newEnv(t, func(c *Config) { c.DataDir = dir })
}

func newEnv(t *testing.T, opts ...func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dir: t.TempDir(), logs: &syncBuffer{}, clock: &fakeClock{t: time.Now().UTC().Truncate(time.Second)}}
	cfg := Config{
		DataDir:      e.dir,
		Log:          slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:          e.clock.Now,
		Argon2:       testArgon2,
		PingInterval: 5 * time.Second,
		ScanInterval: time.Hour,
		// Generous unless a test tightens them.
		AccountRate: Rate{Every: time.Millisecond, Burst: 1000},
		DeviceRate:  Rate{Every: time.Millisecond, Burst: 1000},
		AddressRate: Rate{Every: time.Millisecond, Burst: 1000},
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.DatabaseURL == "" && os.Getenv("LOCKSTEP_TEST_STORE") == "postgres" {
		cfg.DatabaseURL = pgDatabaseFor(t, cfg.DataDir)
	}
	e.dbURL = cfg.DatabaseURL
	e.dir = cfg.DataDir
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ln); err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.secret(string(srv.AdminToken()))
	e.url = URL(ln.Addr())
	e.adm, err = admin.FromDataDir(e.dir)
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	pem, err := os.ReadFile(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	e.roots = x509.NewCertPool()
	e.roots.AppendCertsFromPEM(pem)
	t.Cleanup(e.close)
	return e
}

// secret registers a secret the test uses and returns it.
func (e *testEnv) secret(s string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, s)
	return s
}

func (e *testEnv) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if !e.srv.closing.Load() {
		if err := e.srv.Shutdown(ctx); err != nil {
			e.t.Errorf("Shutdown: %v", err)
		}
	}
	// No secret in the service log or in the database file (hashes and
	// sealed TOTP secrets only).
	var db []byte
	if e.dbURL != "" {
		db = pgContents(e.t, e.dbURL)
	}
	for _, f := range []string{DBFile, DBFile + "-wal"} {
		b, _ := os.ReadFile(filepath.Join(e.dir, f))
		db = append(db, b...)
	}
	logs := e.logs.String()
	for _, s := range e.secrets {
		if strings.Contains(logs, s) {
			e.t.Errorf("secret %q found in the log", s)
		}
		if bytes.Contains(db, []byte(s)) || bytes.Contains(db, []byte(hex.EncodeToString([]byte(s)))) {
			e.t.Errorf("secret %q found in the database", s)
		}
	}
}

// auditEvents reads the audit log through the admin API.
func (e *testEnv) audit(user string) []admin.AuditEvent {
	e.t.Helper()
	evs, err := e.adm.Audit(e.t.Context(), admin.AuditQuery{User: user})
	if err != nil {
		e.t.Fatalf("Audit: %v", err)
	}
	b, _ := json.Marshal(evs)
	for _, s := range e.secrets {
		if bytes.Contains(b, []byte(s)) {
			e.t.Errorf("secret %q found in the audit log", s)
		}
	}
	return evs
}

func hasEvent(evs []admin.AuditEvent, event string) bool {
	for _, ev := range evs {
		if ev.Event == event {
			return true
		}
	}
	return false
}

// addUser creates a user with password pw through the admin API.
func (e *testEnv) addUser(name, pw string, mfa bool) *admin.UserResponse {
	e.t.Helper()
	e.secret(pw)
	res, err := e.adm.AddUser(e.t.Context(), admin.AddUserRequest{Name: name, Password: protocol.Secret(pw), MFA: mfa})
	if err != nil {
		e.t.Fatalf("AddUser %s: %v", name, err)
	}
	if res.MFA != nil {
		e.secret(string(res.MFA.Secret))
	}
	return res
}

func (e *testEnv) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: e.roots, ServerName: "127.0.0.1"}
}

// device is an enrolled test device.
type device struct {
	id  string
	key ed25519.PrivateKey
}

// enroll creates a token through the admin API that binds users, and
// enrolls a new key with it.
func (e *testEnv) enroll(users ...string) device {
	e.t.Helper()
	tok, err := e.adm.CreateEnrollToken(e.t.Context(), admin.EnrollTokenRequest{Note: "test", Users: users})
	if err != nil {
		e.t.Fatalf("CreateEnrollToken: %v", err)
	}
	e.secret(string(tok.Token))
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	id, err := e.enrollWith(tok.Token, pub)
	if err != nil {
		e.t.Fatalf("enroll: %v", err)
	}
	return device{id: id, key: priv}
}

// enrollWith posts an enrollment request.
func (e *testEnv) enrollWith(token protocol.Secret, pub ed25519.PublicKey) (string, error) {
	body, _ := json.Marshal(protocol.EnrollRequest{Token: token, PublicKey: pub, Hostname: "test-mac"})
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: e.tlsConfig()}}
	resp, err := hc.Post(e.url+protocol.EnrollPath, "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var eb admin.ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error != nil {
			return "", eb.Error
		}
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var er protocol.EnrollResponse
	if err := json.Unmarshal(b, &er); err != nil {
		return "", err
	}
	return er.DeviceID, nil
}

// agent is a test agent connection: a reader goroutine routes results by
// id and collects pushes.
type agent struct {
	t       *testing.T
	ws      *websocket.Conn
	welcome protocol.Welcome
	hello   protocol.Hello

	wmu      sync.Mutex
	mu       sync.Mutex
	waiting  map[string]chan *protocol.Envelope
	pushes   chan *protocol.Envelope
	anon     chan *protocol.Envelope // results without id
	done     chan struct{}
	closeErr error
	n        atomic.Int64
}

// dialRaw opens the websocket and reads Hello.
func (e *testEnv) dialRaw() (*websocket.Conn, protocol.Hello) {
	e.t.Helper()
	return e.dialFrom("")
}

// dialFrom is dialRaw from a local address ("" for any): 127.0.0.2 is
// another source address on loopback.
func (e *testEnv) dialFrom(local string) (*websocket.Conn, protocol.Hello) {
	e.t.Helper()
	d := websocket.Dialer{TLSClientConfig: e.tlsConfig(), HandshakeTimeout: 5 * time.Second}
	if local != "" {
		nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		d.NetDialContext = nd.DialContext
	}
	ws, _, err := d.DialContext(e.t.Context(), "wss"+strings.TrimPrefix(e.url, "https")+protocol.AgentPath, nil)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		e.t.Fatalf("reading hello: %v", err)
	}
	env, err := protocol.Decode(data)
	if err != nil || env.Type != protocol.TypeHello {
		e.t.Fatalf("hello: %v %+v", err, env)
	}
	var h protocol.Hello
	if err := env.Decode(&h); err != nil {
		e.t.Fatal(err)
	}
	return ws, h
}

func sendAuth(t *testing.T, ws *websocket.Conn, id string, sig []byte, lastSeq uint64) {
	t.Helper()
	env, _ := protocol.New(protocol.TypeAuth, protocol.Auth{DeviceID: id, Signature: sig, LastSeq: lastSeq})
	b, _ := protocol.Encode(env)
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
}

// expectRefused checks that the server closes the connection with
// CloseUnauthorized instead of welcoming it.
func expectRefused(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := ws.ReadMessage()
	if err == nil {
		t.Fatalf("connection accepted: %s", data)
	}
	if !websocket.IsCloseError(err, CloseUnauthorized) {
		t.Fatalf("read error = %v, want close %d", err, CloseUnauthorized)
	}
}

// connect authenticates dev and waits for Welcome.
func (e *testEnv) connect(dev device, lastSeq uint64) *agent {
	e.t.Helper()
	return e.connectAs("", dev, lastSeq)
}

// connectFrom connects dev from another source address.
func (e *testEnv) connectFrom(local string, dev device) *agent {
	e.t.Helper()
	return e.connectAs(local, dev, 0)
}

func (e *testEnv) connectAs(local string, dev device, lastSeq uint64) *agent {
	e.t.Helper()
	ws, hello := e.dialFrom(local)
	sendAuth(e.t, ws, dev.id, ed25519.Sign(dev.key, protocol.AuthMessage(dev.id, hello.Challenge)), lastSeq)
	_, data, err := ws.ReadMessage()
	if err != nil {
		e.t.Fatalf("reading welcome: %v", err)
	}
	env, err := protocol.Decode(data)
	if err != nil || env.Type != protocol.TypeWelcome {
		e.t.Fatalf("welcome: %v %s", err, data)
	}
	a := &agent{t: e.t, ws: ws, hello: hello, waiting: map[string]chan *protocol.Envelope{},
		pushes: make(chan *protocol.Envelope, 100), anon: make(chan *protocol.Envelope, 10), done: make(chan struct{})}
	if err := env.Decode(&a.welcome); err != nil {
		e.t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	go a.read()
	e.t.Cleanup(func() { a.ws.Close() })
	return a
}

func (a *agent) read() {
	defer close(a.done)
	for {
		_, data, err := a.ws.ReadMessage()
		if err != nil {
			a.closeErr = err
			return
		}
		env, err := protocol.Decode(data)
		if err != nil {
			a.t.Errorf("server sent an invalid frame: %v: %s", err, data)
			return
		}
		switch {
		case protocol.IsPush(env.Type):
			a.pushes <- env
		case env.Type == protocol.TypeResult && env.ID == "":
			a.anon <- env
		case env.Type == protocol.TypeResult:
			a.mu.Lock()
			ch := a.waiting[env.ID]
			delete(a.waiting, env.ID)
			a.mu.Unlock()
			if ch == nil {
				a.t.Errorf("result for unknown id %q", env.ID)
				continue
			}
			ch <- env
		default:
			a.t.Errorf("unexpected frame %s", env.Type)
		}
	}
}

func (a *agent) writeRaw(b []byte) {
	a.t.Helper()
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if err := a.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		a.t.Fatalf("write: %v", err)
	}
}

// call sends a request and waits for its result.
func (a *agent) call(typ, key string, body any) *protocol.Envelope {
	a.t.Helper()
	env, err := protocol.New(typ, body)
	if err != nil {
		a.t.Fatal(err)
	}
	env.ID = fmt.Sprintf("r%d", a.n.Add(1))
	env.IdempotencyKey = key
	ch := make(chan *protocol.Envelope, 1)
	a.mu.Lock()
	a.waiting[env.ID] = ch
	a.mu.Unlock()
	b, err := protocol.Encode(env)
	if err != nil {
		a.t.Fatal(err)
	}
	a.writeRaw(b)
	select {
	case res := <-ch:
		return res
	case <-a.done:
		a.t.Fatalf("connection closed waiting for %s: %v", typ, a.closeErr)
	case <-time.After(20 * time.Second):
		a.t.Fatalf("no result for %s", typ)
	}
	return nil
}

// ok calls and fails the test on an error result, decoding the body into out.
func (a *agent) ok(typ, key string, body, out any) {
	a.t.Helper()
	res := a.call(typ, key, body)
	if res.Error != nil {
		a.t.Fatalf("%s: %v", typ, res.Error)
	}
	if out != nil {
		if err := res.Decode(out); err != nil {
			a.t.Fatal(err)
		}
	}
}

// fails calls and checks the error code.
func (a *agent) fails(typ, key string, body any, code string) *protocol.Error {
	a.t.Helper()
	res := a.call(typ, key, body)
	if res.Error == nil || res.Error.Code != code {
		a.t.Fatalf("%s: result %+v (body %s), want error %s", typ, res.Error, res.Body, code)
	}
	return res.Error
}

// push waits for the next push.
func (a *agent) push() *protocol.Envelope {
	a.t.Helper()
	select {
	case p := <-a.pushes:
		return p
	case <-time.After(10 * time.Second):
		a.t.Fatal("no push arrived")
	}
	return nil
}

// noPush checks that no push is waiting after a round trip (get_policy
// results are written after any push already queued).
func (a *agent) noPush() {
	a.t.Helper()
	a.ok(protocol.TypeGetPolicy, "", nil, nil)
	select {
	case p := <-a.pushes:
		a.t.Fatalf("unexpected push %s %s", p.Type, p.Body)
	default:
	}
}

func (a *agent) bind(user string) protocol.AccountState {
	a.t.Helper()
	var st protocol.AccountState
	a.ok(protocol.TypeGetAccount, "", protocol.GetAccountRequest{User: user, LocalName: user}, &st)
	return st
}

// tlsDial makes a TLS handshake with the server.
func (e *testEnv) tlsDial(cfg *tls.Config) error {
	c, err := tls.Dial("tcp", strings.TrimPrefix(e.url, "https://"), cfg)
	if err != nil {
		return err
	}
	return c.Close()
}

// lookupIdempotency reads a stored first outcome.
func (s *Server) lookupIdempotency(t *testing.T, device, key string) (store.IdempotencyRecord, error) {
	var r store.IdempotencyRecord
	err := s.st.View(t.Context(), func(tx store.Tx) error {
		var err error
		r, err = tx.Idempotency(t.Context(), device, key)
		return err
	})
	return r, err
}

func decodeAs[T any](t *testing.T, env *protocol.Envelope) T {
	t.Helper()
	var v T
	if err := env.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func isCode(err error, code string) bool {
	var pe *protocol.Error
	return errors.As(err, &pe) && pe.Code == code
}

// waitFor polls cond until it holds; it fails after a generous deadline
// (a hang, not a slow machine).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
