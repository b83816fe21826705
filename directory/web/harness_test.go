package web_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/lockstep-dev/lockstep/agent/session"
	"github.com/lockstep-dev/lockstep/directory"
	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/internal/tools/browsertest"
	"github.com/lockstep-dev/lockstep/internal/tools/pgtest"
	"github.com/lockstep-dev/lockstep/protocol"
)

// The browser tests run the real directory (its store, its source, its
// admin API) on loopback with real TLS, and drive the console and the
// portal in headless Chromium as a person does: they type into labelled
// fields, click, and read what the page says. Every flow runs with SQLite
// and with PostgreSQL.

func TestMain(m *testing.M) {
	code := m.Run()
	browsertest.Stop()
	pgtest.Stop()
	os.Exit(code)
}

// clock is the directory's clock: TOTP codes, lockout and sessions follow
// it, so a test can step over a code's 30 seconds or an idle timeout.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// start is the clock's first reading in every test, so screenshots show
// the same times.
var start = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type env struct {
	t       *testing.T
	store   string
	srv     *directory.Server
	url     string
	adm     *admin.Client
	clock   *clock
	dir     string
	log     *logBuffer
	b       *browsertest.Browser
	roots   *x509.CertPool
	secrets []string
}

// stores are the storage kinds every flow runs with: both, or SQLite only
// under -short (CI's unprivileged pass: the PostgreSQL half is most of this
// package's time, it ran in the root pass, and the store's own conformance
// tests run on PostgreSQL in both passes).
func stores() []string {
	if testing.Short() {
		return []string{"sqlite"}
	}
	return []string{"sqlite", "postgres"}
}

// eachStore runs fn as a subtest per store.
func eachStore(t *testing.T, fn func(t *testing.T, store string)) {
	for _, s := range stores() {
		t.Run(s, func(t *testing.T) { fn(t, s) })
	}
}

func newEnv(t *testing.T, store string, opts ...func(*directory.Config)) *env {
	t.Helper()
	b := browsertest.Need(t)
	certFile, keyFile := browsertest.Cert(t)
	e := &env{t: t, store: store, clock: &clock{t: start}, dir: t.TempDir(), log: &logBuffer{}, b: b}
	cfg := directory.Config{
		DataDir: e.dir, CertFile: certFile, KeyFile: keyFile, Now: e.clock.Now,
		Log:    slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Argon2: directory.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1},
		// Generous, unless a test tightens them.
		AccountRate: directory.Rate{Every: time.Millisecond, Burst: 1000},
		DeviceRate:  directory.Rate{Every: time.Millisecond, Burst: 1000},
		AddressRate: directory.Rate{Every: time.Millisecond, Burst: 1000},
	}
	if store == "postgres" {
		cfg.DatabaseURL = pgtest.Database(t)
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := directory.New(cfg)
	if err != nil {
		t.Fatalf("directory.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ln); err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.url = directory.URL(ln.Addr())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		e.noSecretsInLog()
	})
	e.adm, err = admin.New(admin.Config{URL: e.url, TokenFile: filepath.Join(e.dir, directory.AdminTokenFile), CAFile: certFile})
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	e.roots = x509.NewCertPool()
	e.roots.AppendCertsFromPEM(pem)
	return e
}

// secret remembers a secret the test used: none may reach the log.
func (e *env) secret(s string) string {
	e.secrets = append(e.secrets, s)
	return s
}

func (e *env) noSecretsInLog() {
	logs := e.log.String()
	for _, s := range e.secrets {
		if s != "" && strings.Contains(logs, s) {
			e.t.Errorf("a secret of the test is in the directory's log")
		}
	}
}

var totpOpts = totp.ValidateOpts{Period: 30, Digits: otp.Digits(protocol.TOTPDigits), Algorithm: otp.AlgorithmSHA1}

// code steps the clock to the next 30-second step (a code is accepted
// once) and returns the code secret gives then, as an authenticator app
// would.
func (e *env) code(secret string) string {
	e.t.Helper()
	e.clock.Advance(30 * time.Second)
	c, err := totp.GenerateCodeCustom(strings.ReplaceAll(secret, " ", ""), e.clock.Now(), totpOpts)
	if err != nil {
		e.t.Fatalf("totp: %v", err)
	}
	return c
}

// addAdmin creates a console administrator as `lockstep-directory admin
// add` does, and returns their password and TOTP secret.
func (e *env) addAdmin(name, role string) (password, secret string) {
	e.t.Helper()
	password = e.secret("Console-Passphrase-9")
	res, err := e.adm.AddAdmin(context.Background(), admin.AddAdminRequest{Name: name, Role: role, Password: protocol.Secret(password)})
	if err != nil {
		e.t.Fatalf("adding administrator %s: %v", name, err)
	}
	return password, e.secret(string(res.MFA.Secret))
}

// addUser creates a directory user and returns their TOTP secret when
// mfa.
func (e *env) addUser(name, display, password string, mfa bool) string {
	e.t.Helper()
	e.secret(password)
	res, err := e.adm.AddUser(context.Background(), admin.AddUserRequest{Name: name, DisplayName: display, Password: protocol.Secret(password), MFA: mfa})
	if err != nil {
		e.t.Fatalf("adding user %s: %v", name, err)
	}
	if res.MFA == nil {
		return ""
	}
	return e.secret(string(res.MFA.Secret))
}

// page opens a fresh browser (its own cookies).
func (e *env) page() *browsertest.Page { return e.b.NewPage(e.t) }

// consoleSignIn signs an administrator in as a person does and lands on
// the users page.
func (e *env) consoleSignIn(p *browsertest.Page, name, password, secret string) {
	e.t.Helper()
	p.Go(e.url + "/admin/")
	if got := p.Title(); !strings.HasPrefix(got, "Sign in") {
		e.t.Fatalf("the console without a session shows %q, want the sign-in page", got)
	}
	p.Type("#name", name)
	p.Type("#password", password)
	p.Click("button[type=submit]")
	if h := p.Text("h1"); h != "Verification code" {
		e.t.Fatalf("after the password the console shows %q (%s), want the code page", h, errorText(p))
	}
	p.Type("#code", e.code(secret))
	p.Click("main button[type=submit]")
	if h := p.Text("h1"); h != "Users" {
		e.t.Fatalf("after the code the console shows %q (%s), want the users page", h, errorText(p))
	}
}

// portalSignIn signs a user in to the portal and lands on their page.
func (e *env) portalSignIn(p *browsertest.Page, name, password, secret string) {
	e.t.Helper()
	p.Go(e.url + "/")
	p.Type("#name", name)
	p.Type("#password", password)
	p.Click("main button[type=submit]")
	if secret != "" {
		if h := p.Text("h1"); h != "Verification code" {
			e.t.Fatalf("after the password the portal shows %q (%s), want the code page", h, errorText(p))
		}
		p.Type("#code", e.code(secret))
		p.Click("main button[type=submit]")
	}
	if h := p.Text("h1"); h != "Your account" {
		e.t.Fatalf("after signing in the portal shows %q (%s), want the account page", h, errorText(p))
	}
}

// errorText is the page's error banner, if any.
func errorText(p *browsertest.Page) string {
	if p.Has("#page-error") {
		return p.Text("#page-error")
	}
	return "no error shown"
}

// audit reads the audit log through the admin API.
func (e *env) audit(q admin.AuditQuery) []admin.AuditEvent {
	e.t.Helper()
	evs, err := e.adm.Audit(context.Background(), q)
	if err != nil {
		e.t.Fatalf("reading the audit log: %v", err)
	}
	return evs
}

// wantAudit waits briefly for an event (refusals are written in the
// background) and returns it.
func (e *env) wantAudit(q admin.AuditQuery, match func(admin.AuditEvent) bool, what string) admin.AuditEvent {
	e.t.Helper()
	for range 50 {
		for _, ev := range e.audit(q) {
			if match == nil || match(ev) {
				return ev
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("no audit event %s (query %+v); the log has %v", what, q, e.audit(admin.AuditQuery{Limit: 50}))
	return admin.AuditEvent{}
}

// memKeys is a device key store in memory.
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
	return v, nil
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

// device is a Mac's directory link (lockstepd's own session code),
// enrolled with a token bound to users.
type device struct {
	s      *session.Session
	states chan session.Status
}

func (e *env) enrollDevice(hostname string, users ...string) *device {
	e.t.Helper()
	tok, err := e.adm.CreateEnrollToken(context.Background(), admin.EnrollTokenRequest{Note: hostname, Users: users})
	if err != nil {
		e.t.Fatalf("enrollment token: %v", err)
	}
	d := &device{states: make(chan session.Status, 64)}
	d.s, err = session.New(session.Options{URL: "wss://" + strings.TrimPrefix(e.url, "https://"), RootCAs: e.roots,
		EnrollmentToken: tok.Token, StateDir: e.t.TempDir(), Keys: &memKeys{m: map[string][]byte{}}, Hostname: hostname,
		AgentVersion: "1.0.0", OnPush: func(context.Context, *protocol.Envelope) error { return nil },
		OnState: func(s session.Status) {
			select {
			case d.states <- s:
			default:
			}
		}})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.s.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
	d.wait(e.t, func(s session.Status) bool { return s.State == session.Connected }, "connected")
	return d
}

// wait waits for a state of the link.
func (d *device) wait(t *testing.T, ok func(session.Status) bool, what string) session.Status {
	t.Helper()
	if st := d.s.Status(); ok(st) {
		return st
	}
	timeout := time.After(15 * time.Second)
	for {
		select {
		case st := <-d.states:
			if ok(st) {
				return st
			}
		case <-timeout:
			t.Fatalf("the device's link never became %s (now %+v)", what, d.s.Status())
		}
	}
}

// chromedpSetValue picks an option of a select, as choosing it does.
func chromedpSetValue(selector, value string) chromedp.Action[chromedp.Void] {
	return chromedp.SetValue(chromedp.CSS(selector), value)
}

// enrollStatus tries to enroll a Mac with token and returns the HTTP
// status the directory answered.
func enrollStatus(t *testing.T, e *env, token string) int {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	body, err := protocol.Marshal(protocol.EnrollRequest{Token: protocol.Secret(token), PublicKey: pub, Hostname: "intruder"})
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}}}
	resp, err := c.Post(e.url+protocol.EnrollPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// ack tells the directory the Mac holds the user's password version
// everywhere, as lockstepd does after a sync.
func (d *device) ack(t *testing.T, user string, version int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := fmt.Sprintf("ack-%s-%d-%d", user, version, time.Now().UnixNano())
	if err := d.s.Request(ctx, protocol.TypeAckSync, key, protocol.AckSyncRequest{User: user, PasswordVersion: version}, nil, 5*time.Second); err != nil {
		t.Fatalf("ack_sync: %v", err)
	}
}
