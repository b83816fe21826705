package session

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory"
	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
)

// memKeys is a KeyStore in memory.
type memKeys struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (k *memKeys) Get(n string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[n]
	if !ok {
		return nil, os.ErrNotExist
	}
	return append([]byte(nil), v...), nil
}
func (k *memKeys) Put(n string, v []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[n] = append([]byte(nil), v...)
	return nil
}
func (k *memKeys) Delete(n string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, n)
	return nil
}

type dirFixture struct {
	dataDir string
	addr    string
	srv     *directory.Server
	admin   *admin.Client
	roots   *x509.CertPool
}

func startDirectory(t *testing.T, dataDir, addr string) *dirFixture {
	t.Helper()
	srv, err := directory.New(directory.Config{DataDir: dataDir, Argon2: directory.Argon2Params{Time: 1, MemoryKiB: 1024, Threads: 1}, PingInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	for i := 0; i < 50; i++ { // the port may take a moment to free after a restart
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ln); err != nil {
		t.Fatal(err)
	}
	ac, err := admin.FromDataDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return &dirFixture{dataDir: dataDir, addr: ln.Addr().String(), srv: srv, admin: ac, roots: roots}
}

func (f *dirFixture) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

type pushLog struct {
	mu   sync.Mutex
	envs []*protocol.Envelope
	ch   chan *protocol.Envelope
}

func (p *pushLog) handle(_ context.Context, env *protocol.Envelope) error {
	p.mu.Lock()
	p.envs = append(p.envs, env)
	p.mu.Unlock()
	p.ch <- env
	return nil
}

func newSession(t *testing.T, f *dirFixture, stateDir string, keys KeyStore, token protocol.Secret, pl *pushLog) *Session {
	t.Helper()
	s, err := New(Options{URL: "wss://" + f.addr, RootCAs: f.roots, EnrollmentToken: token, StateDir: stateDir, Keys: keys, OnPush: pl.handle})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func waitState(t *testing.T, s *Session, state string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if s.Status().State == state {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("session state = %+v, want %s", s.Status(), state)
}

func TestSessionEndToEnd(t *testing.T) {
	ctx := t.Context()
	f := startDirectory(t, t.TempDir(), "127.0.0.1:0")
	if _, err := f.admin.AddUser(ctx, admin.AddUserRequest{Name: "alice", Password: protocol.Secret("Old-Passw0rd-1")}); err != nil {
		t.Fatal(err)
	}
	// The token assigns alice to the device, which may then read her state
	// and gets her pushes.
	tok, err := f.admin.CreateEnrollToken(ctx, admin.EnrollTokenRequest{Users: []string{"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	stateDir, keys := t.TempDir(), &memKeys{m: map[string][]byte{}}
	pl := &pushLog{ch: make(chan *protocol.Envelope, 16)}
	s := newSession(t, f, stateDir, keys, tok.Token, pl)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(sctx); close(done) }()
	waitState(t, s, localapi.ConnConnected)
	if s.DeviceID() == "" {
		t.Fatal("no device id after enrollment")
	}
	// The key is in the key store, never in the state directory.
	if _, err := keys.Get(keyName); err != nil {
		t.Fatal("device key not stored")
	}
	b, _ := os.ReadFile(filepath.Join(stateDir, "device.json"))
	if strings.Contains(string(b), "key") {
		t.Fatalf("device.json mentions a key: %s", b)
	}

	var st protocol.AccountState
	if err := s.Request(ctx, protocol.TypeGetAccount, "", protocol.GetAccountRequest{User: "alice", LocalName: "alice"}, &st, time.Second); err != nil {
		t.Fatal(err)
	}
	if st.User != "alice" || st.PasswordVersion < 1 {
		t.Fatalf("account = %+v", st)
	}
	err = s.Request(ctx, protocol.TypeVerifyPassword, "", protocol.VerifyPasswordRequest{User: "alice", Password: protocol.Secret("nope")}, nil, time.Second)
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeWrongPassword {
		t.Fatalf("wrong password = %v", err)
	}

	// A reset reaches the connected session as a push.
	if _, err := f.admin.ResetPassword(ctx, "alice", admin.ResetRequest{Password: protocol.Secret("Reset-Passw0rd-2"), Temporary: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case env := <-pl.ch:
		var r protocol.PasswordReset
		if env.Type != protocol.TypePasswordReset || env.Decode(&r) != nil || !r.Temporary || r.User != "alice" {
			t.Fatalf("push = %+v", env)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reset push")
	}

	// The directory restarts; a reset made while the session was down
	// arrives once it is back, and the first push is not delivered again.
	addr := f.addr
	f.stop(t)
	waitState(t, s, localapi.ConnOffline)
	f = startDirectory(t, f.dataDir, addr)
	if _, err := f.admin.ResetPassword(ctx, "alice", admin.ResetRequest{Password: protocol.Secret("Reset-Passw0rd-3")}); err != nil {
		t.Fatal(err)
	}
	select {
	case env := <-pl.ch:
		var r protocol.PasswordReset
		if env.Decode(&r) != nil || r.Temporary || env.Seq < 2 {
			t.Fatalf("missed push = %+v %+v", env, r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("missed push not delivered after the restart")
	}
	waitState(t, s, localapi.ConnConnected)
	cancel()
	<-done
	f.stop(t)
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if len(pl.envs) != 2 {
		t.Fatalf("pushes handled = %d, want 2 (none twice)", len(pl.envs))
	}
}

func TestSessionWithoutTokenIsNotEnrolled(t *testing.T) {
	f := startDirectory(t, t.TempDir(), "127.0.0.1:0")
	defer f.stop(t)
	pl := &pushLog{ch: make(chan *protocol.Envelope, 1)}
	s := newSession(t, f, t.TempDir(), &memKeys{m: map[string][]byte{}}, nil, pl)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go s.Run(ctx)
	waitState(t, s, localapi.ConnNotEnrolled)
	if err := s.Request(ctx, protocol.TypeGetPolicy, "", nil, nil, 100*time.Millisecond); !errors.Is(err, ErrOffline) {
		t.Fatalf("request while not enrolled = %v", err)
	}
}

func TestBackoffIsCappedFullJitter(t *testing.T) {
	for attempt := 0; attempt < 40; attempt++ {
		ceil := backoffCap
		if attempt < 20 && backoffBase<<attempt < ceil {
			ceil = backoffBase << attempt
		}
		var maxSeen time.Duration
		for i := 0; i < 200; i++ {
			d := backoff(attempt)
			if d < 0 || d > ceil {
				t.Fatalf("backoff(%d) = %v, outside [0, %v]", attempt, d, ceil)
			}
			maxSeen = max(maxSeen, d)
		}
		if maxSeen < ceil/4 {
			t.Fatalf("backoff(%d) never above %v of %v: not jittered over the whole range", attempt, maxSeen, ceil)
		}
	}
}

// copyFiles copies the named files (every file when names is empty) of the
// directory src into dst.
func copyFiles(t *testing.T, src, dst string, names ...string) {
	t.Helper()
	if len(names) == 0 {
		ents, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				names = append(names, e.Name())
			}
		}
	}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// runSession runs s until the test ends.
func runSession(t *testing.T, s *Session) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// The directory is restored from a backup taken before this Mac enrolled:
// it refuses the identity with close code 4401, and the session starts
// over with its enrollment token, which the restored directory has not
// seen spent.
func TestSessionStartsOverWhenTheDirectoryRefusesIt(t *testing.T) {
	ctx := t.Context()
	data := t.TempDir()
	f := startDirectory(t, data, "127.0.0.1:0")
	tok, err := f.admin.CreateEnrollToken(ctx, admin.EnrollTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	addr := f.addr
	f.stop(t)
	backup := t.TempDir()
	copyFiles(t, data, backup)
	f = startDirectory(t, data, addr)

	keys := &memKeys{m: map[string][]byte{}}
	s := newSession(t, f, t.TempDir(), keys, tok.Token, &pushLog{ch: make(chan *protocol.Envelope, 16)})
	s.refusedWait = [2]time.Duration{10 * time.Millisecond, 50 * time.Millisecond}
	runSession(t, s)
	waitState(t, s, localapi.ConnConnected)
	first := s.DeviceID()

	f.stop(t)
	f = startDirectory(t, backup, addr)
	defer f.stop(t)
	deadline := time.Now().Add(15 * time.Second)
	for s.Status().State != localapi.ConnConnected || s.DeviceID() == first {
		if time.Now().After(deadline) {
			t.Fatalf("session after the restore: %+v (first device %s)", s.Status(), first)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Request(ctx, protocol.TypeGetPolicy, "", nil, nil, time.Second); err != nil {
		t.Fatalf("a request as the new device: %v", err)
	}
}

// A directory that does not know the device and a spent token: the
// session says the directory refused it, does not retry in a loop, and
// keeps its identity, so that once the right directory is back (the
// refusal was a mistake) it connects as the same device.
func TestSessionRefusedKeepsItsIdentity(t *testing.T) {
	ctx := t.Context()
	data := t.TempDir()
	f := startDirectory(t, data, "127.0.0.1:0")
	tok, err := f.admin.CreateEnrollToken(ctx, admin.EnrollTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	stateDir, keys := t.TempDir(), &memKeys{m: map[string][]byte{}}
	s := newSession(t, f, stateDir, keys, tok.Token, &pushLog{ch: make(chan *protocol.Envelope, 16)})
	s.refusedWait = [2]time.Duration{300 * time.Millisecond, 300 * time.Millisecond}
	runSession(t, s)
	waitState(t, s, localapi.ConnConnected)
	id := s.DeviceID()
	addr := f.addr
	f.stop(t)

	// Another directory with the same certificates but none of the data.
	other := t.TempDir()
	copyFiles(t, data, other, "ca.pem", "ca-key.pem", "server.pem", "server-key.pem")
	f = startDirectory(t, other, addr)
	// Refused, then refused again after trying the (spent) token.
	deadline := time.Now().Add(15 * time.Second)
	for st := s.Status(); st.State != localapi.ConnNotEnrolled || !strings.Contains(st.LastError, "refused this Mac's identity") ||
		!strings.Contains(st.LastError, "enrolling again failed"); st = s.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("state after the refusal: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.DeviceID() != id {
		t.Fatalf("device id %q after the refusal, want %q kept", s.DeviceID(), id)
	}
	if _, err := keys.Get(keyName); err != nil {
		t.Fatalf("the device key was dropped: %v", err)
	}
	f.stop(t)

	f = startDirectory(t, data, addr)
	defer f.stop(t)
	waitState(t, s, localapi.ConnConnected)
	if s.DeviceID() != id {
		t.Fatalf("reconnected as %q, want %q", s.DeviceID(), id)
	}
}

// A refused identity is never retried sooner than half the backoff cap,
// whatever the attempt; other failures back off from a second.
func TestRetryAfterRefusalIsSlow(t *testing.T) {
	s := &Session{refusedWait: refusedWait}
	for _, tc := range []struct {
		err       error
		state     string
		min, ceil time.Duration
	}{
		{fmt.Errorf("handshake: %w", ErrRefused), localapi.ConnNotEnrolled, backoffCap / 2, backoffCap},
		{ErrRevoked, localapi.ConnNotEnrolled, backoffCap / 2, backoffCap},
		{ErrNotEnrolled, localapi.ConnNotEnrolled, 0, backoffBase},
		{errors.New("connecting: refused"), localapi.ConnOffline, 0, backoffBase},
	} {
		for i := 0; i < 100; i++ {
			state, d := s.retry(tc.err, 0)
			if state != tc.state || d < tc.min || d > tc.ceil {
				t.Fatalf("retry(%v) = %s after %v, want %s within [%v, %v]", tc.err, state, d, tc.state, tc.min, tc.ceil)
			}
		}
	}
}

// An administrator revokes the device while it is connected: the session
// hears it at once (close code 4403), says so, and is refused from then on,
// slowly.
func TestSessionRevoked(t *testing.T) {
	ctx := t.Context()
	f := startDirectory(t, t.TempDir(), "127.0.0.1:0")
	defer f.stop(t)
	tok, err := f.admin.CreateEnrollToken(ctx, admin.EnrollTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(t, f, t.TempDir(), &memKeys{m: map[string][]byte{}}, tok.Token, &pushLog{ch: make(chan *protocol.Envelope, 16)})
	s.refusedWait = [2]time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
	runSession(t, s)
	waitState(t, s, localapi.ConnConnected)
	id := s.DeviceID()
	if _, err := f.admin.RevokeDevice(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, localapi.ConnNotEnrolled)
	if st := s.Status(); !strings.Contains(st.LastError, "revoked this Mac") {
		t.Fatalf("after the revocation: %+v", st)
	}
	// Refused on the next handshakes too, with the spent token.
	time.Sleep(500 * time.Millisecond)
	if st := s.Status(); st.State != localapi.ConnNotEnrolled || !strings.Contains(st.LastError, "revoked this Mac") {
		t.Fatalf("later: %+v", st)
	}
}

// The session offers only the AEAD suites with TLS 1.2: a directory (or
// someone in its place) that would speak only CBC with SHA-1 is refused
// before anything, the enrollment token included, is sent.
func TestSessionRefusesCBCSuites(t *testing.T) {
	var got atomic.Bool
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Store(true) }))
	ts.TLS = &tls.Config{MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}
	ts.StartTLS()
	defer ts.Close()
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	s, err := New(Options{URL: "wss://" + ts.Listener.Addr().String(), RootCAs: roots, EnrollmentToken: protocol.Secret("tok"),
		StateDir: t.TempDir(), Keys: &memKeys{m: map[string][]byte{}}})
	if err != nil {
		t.Fatal(err)
	}
	runSession(t, s)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.Status().LastError, "handshake failure") {
		if time.Now().After(deadline) {
			t.Fatalf("session against a CBC-only server: %+v", s.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got.Load() {
		t.Fatal("a request reached the CBC-only server")
	}
}
