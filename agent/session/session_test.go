package session

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
