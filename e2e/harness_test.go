package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/lockstep-dev/lockstep/agent/journal"
	"github.com/lockstep-dev/lockstep/agent/session"
	"github.com/lockstep-dev/lockstep/agent/statusplist"
	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/internal/tools/browsertest"
	"github.com/lockstep-dev/lockstep/internal/tools/sambatest"
	"github.com/lockstep-dev/lockstep/internal/tools/slapdtest"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/macsim"
	"github.com/lockstep-dev/lockstep/macsim/macsimtest"
	"github.com/lockstep-dev/lockstep/packaging/mdm/mdmtest"
	"github.com/lockstep-dev/lockstep/platform"
	"github.com/lockstep-dev/lockstep/protocol"
)

// bin holds the binaries built once for the whole package.
var bin struct {
	dir, directory, lockstepd, lockstep, macsim string
}

// shared is the directory most tests use; a test that restarts the
// directory starts its own.
var shared *dirProc

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "lockstep-e2e-bin-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return 0, err
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goTool, "build", "-o", dir+"/", "github.com/lockstep-dev/lockstep/cmd/lockstep-directory",
		"github.com/lockstep-dev/lockstep/cmd/lockstepd", "github.com/lockstep-dev/lockstep/cmd/lockstep")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building binaries: %v\n%s", err, out)
	}
	bin.dir = dir
	bin.directory = filepath.Join(dir, "lockstep-directory")
	bin.lockstepd = filepath.Join(dir, "lockstepd")
	bin.lockstep = filepath.Join(dir, "lockstep")
	var cleanup func()
	if bin.macsim, cleanup, err = macsimtest.Build(dir); err != nil {
		return 0, err
	}
	defer cleanup()
	data, err := os.MkdirTemp("", "lockstep-e2e-dir-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(data)
	if shared, err = startDirectory(data, "127.0.0.1:0"); err != nil {
		return 0, err
	}
	defer shared.stop()
	defer sambatest.Stop() // the AD tests' domain controller, if one started
	defer slapdtest.Stop() // the LDAP tests' slapd, if one started
	defer stopSourceDirectories()
	defer browsertest.Stop() // the web tests' Chromium, if one started
	return m.Run(), nil
}

// stopSourceDirectories stops the directories the AD and LDAP tests share,
// before their servers stop.
func stopSourceDirectories() {
	for _, d := range []*dirProc{adShared(), ldapShared()} {
		if d != nil {
			d.stop()
			_ = os.RemoveAll(d.data)
		}
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// dirProc is a running lockstep-directory process.
type dirProc struct {
	data, addr, ca string
	extra          []string // serve's flags beyond directoryArgs (a source's)
	cmd            *exec.Cmd
	log            *syncBuffer
	admin          *admin.Client
}

// directoryArgs keep argon2id cheap and the rate limits out of the way of
// tests that make many checks; lockout stays at its default of 5.
var directoryArgs = []string{"--argon2-time", "1", "--argon2-memory-kib", "8192", "--argon2-threads", "1",
	"--account-rate-every", "50ms", "--account-rate-burst", "100", "--device-rate-every", "50ms", "--device-rate-burst", "100", "--address-rate-every", "10ms", "--address-rate-burst", "1000",
	"--ping-interval", "5s"}

func startDirectory(data, addr string, extra ...string) (*dirProc, error) {
	d := &dirProc{data: data, log: &syncBuffer{}, extra: extra}
	args := append(append([]string{"serve", "--data", data, "--listen", addr}, directoryArgs...), extra...)
	d.cmd = exec.Command(bin.directory, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := admin.ReadInfo(data)
		if err == nil {
			if c, cerr := admin.FromDataDir(data); cerr == nil {
				if _, perr := c.Policy(context.Background()); perr == nil {
					d.admin = c
					d.addr = strings.TrimPrefix(info.URL, "https://")
					d.ca = filepath.Join(data, "ca.pem")
					return d, nil
				}
			}
		}
		if time.Now().After(deadline) {
			d.cmd.Process.Kill()
			return nil, fmt.Errorf("directory did not come up: %v\n%s", err, d.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *dirProc) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}

// restart stops the directory and starts it again on the same address,
// with the same flags.
func (d *dirProc) restart(t testing.TB) {
	t.Helper()
	d.stop()
	var nd *dirProc
	var err error
	for i := 0; i < 50; i++ {
		if nd, err = startDirectory(d.data, d.addr, d.extra...); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	*d = *nd
}

// user is a directory user bound to the simulated Mac's "alice".
type user struct {
	name     string
	password string // current directory password
	secret   string // TOTP secret (base32), "" without MFA
	lastStep int64
	known    []string // every password this user has had, oldest first
}

var userSeq struct {
	sync.Mutex
	n int
}

// newUser creates a unique directory user.
func newUser(t testing.TB, d *dirProc, mfa bool) *user {
	t.Helper()
	userSeq.Lock()
	userSeq.n++
	n := userSeq.n
	userSeq.Unlock()
	u := &user{name: fmt.Sprintf("u%d-%s", n, strings.ToLower(randHex(3))), password: newPassword()}
	resp, err := d.admin.AddUser(t.Context(), admin.AddUserRequest{Name: u.name, DisplayName: "Test User", Password: protocol.Secret(u.password), MFA: mfa})
	if err != nil {
		t.Fatal(err)
	}
	if mfa {
		u.secret = string(resp.MFA.Secret)
	}
	u.known = []string{u.password}
	return u
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

var pwSeq struct {
	sync.Mutex
	n int
}

// newPassword returns a fresh password that meets the default policy.
func newPassword() string {
	pwSeq.Lock()
	defer pwSeq.Unlock()
	pwSeq.n++
	return fmt.Sprintf("Pw-%s-%d-Zz", strings.ToUpper(randHex(4)), pwSeq.n)
}

// code returns a TOTP code the directory has not seen used: the current
// step's, or the next one's (accepted thanks to the ±1 step skew), waiting
// for time to move on when both are used.
func (u *user) code(t testing.TB) string {
	t.Helper()
	for {
		now := time.Now()
		cur := now.Unix() / 30
		for _, step := range []int64{cur, cur + 1} {
			if step > u.lastStep {
				u.lastStep = step
				c, err := totp.GenerateCodeCustom(u.secret, time.Unix(step*30, 0), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
		}
		time.Sleep(time.Until(time.Unix((cur+1)*30, 0)) + 50*time.Millisecond)
	}
}

// mac is one simulated Mac running lockstepd.
type mac struct {
	t        testing.TB
	dir      *dirProc
	sim      *macsim.Sim
	u        *user
	base     string
	stateDir string
	socket   string
	// statusPlist is lockstepd's status file for MDM.
	statusPlist string
	cfgPath     string
	token       string
	daemon      *exec.Cmd
	exited      chan struct{}
	logs        []*syncBuffer
	client      *localapi.Client
	probe       *session.Session
}

// macSpec is the simulated Mac: a token-holding admin, alice (SecureToken,
// FileVault, a keychain with two items) and bob (no token).
func macSpec(alicePW string) macsim.Spec {
	return macsim.Spec{
		FileVault: true, RecoveryKey: true, ConsoleUser: "alice",
		Users: []macsim.UserSpec{
			{Name: "admin", RealName: "Local Admin", UID: 501, Password: "Admin-Local-Pass-1", SecureToken: true, Admin: true},
			{Name: "alice", RealName: "Alice Example", UID: 502, Password: alicePW, SecureToken: true, LocalItems: true},
			{Name: "bob", RealName: "Bob Example", UID: 503, Password: "Bob-Local-Pass-1"},
		},
	}
}

const adminPW = "Admin-Local-Pass-1"

// newMac builds a simulated Mac whose alice uses u's password, enrolled
// with a token that assigns u to it, and starts lockstepd on it.
func newMac(t testing.TB, d *dirProc, u *user) *mac {
	t.Helper()
	return newMacWith(t, d, u, macSpec(u.password))
}

// newMacWith is newMac on a simulated Mac built from spec.
func newMacWith(t testing.TB, d *dirProc, u *user, spec macsim.Spec) *mac {
	t.Helper()
	return newMacFrom(t, d, u, spec, []string{u.name})
}

// newMacAssigned is newMac with the users the enrollment token assigns
// (none: the Mac must link u by proving the password).
func newMacAssigned(t testing.TB, d *dirProc, u *user, users []string) *mac {
	t.Helper()
	return newMacFrom(t, d, u, macSpec(u.password), users)
}

// newMacFrom builds a simulated Mac from spec, enrolled with a token that
// assigns users to it, and starts lockstepd on it.
func newMacFrom(t testing.TB, d *dirProc, u *user, spec macsim.Spec, users []string) *mac {
	t.Helper()
	base, err := os.MkdirTemp("", "lse-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	// The token binds users to this Mac, as IT assigns a Mac to its user.
	tok, err := d.admin.CreateEnrollToken(t.Context(), admin.EnrollTokenRequest{Users: users})
	if err != nil {
		t.Fatal(err)
	}
	m := &mac{t: t, dir: d, u: u, base: base, sim: macsimtest.New(t, bin.macsim, spec),
		stateDir: filepath.Join(base, "state"), socket: filepath.Join(base, "d.sock"), cfgPath: filepath.Join(base, "config.json"),
		statusPlist: filepath.Join(base, "status.plist"),
		token:       string(tok.Token)}
	m.writeConfig()
	m.client = localapi.NewClient(m.socket)
	m.start()
	t.Cleanup(m.stop)
	m.waitConnected()
	return m
}

func (m *mac) writeConfig() {
	cfg := map[string]any{
		"DirectoryURL": "wss://" + m.dir.addr, "DirectoryCA": m.dir.ca, "EnrollmentToken": m.token,
		"StateDir": m.stateDir, "Socket": m.socket, "StatusPlist": m.statusPlist, "ToolsDir": m.sim.ToolsDir(), "LogLevel": "debug",
		"UserMap": map[string]string{"alice": m.u.name},
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(m.cfgPath, b, 0o600); err != nil {
		m.t.Fatal(err)
	}
}

// start runs lockstepd and waits for its socket.
func (m *mac) start() {
	m.t.Helper()
	log := &syncBuffer{}
	m.logs = append(m.logs, log)
	m.daemon = exec.Command(bin.lockstepd, "run", "--config", m.cfgPath, "--managed", "")
	m.daemon.Stdout, m.daemon.Stderr = log, log
	if err := m.daemon.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.exited = make(chan struct{})
	cmd, exited := m.daemon, m.exited
	go func() { cmd.Wait(); close(exited) }()
	m.eventually("lockstepd to answer", 20*time.Second, func() bool {
		_, err := m.client.Status(context.Background())
		return err == nil
	})
}

// stop ends lockstepd with SIGTERM.
func (m *mac) stop() {
	if m.daemon == nil {
		return
	}
	select {
	case <-m.exited:
	default:
		m.daemon.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.exited:
		case <-time.After(20 * time.Second):
			m.daemon.Process.Kill()
			<-m.exited
		}
	}
	m.daemon = nil
}

// restart starts lockstepd again after it died (or was killed).
func (m *mac) restart() {
	m.t.Helper()
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		m.t.Fatal("lockstepd did not exit")
	}
	m.daemon = nil
	m.start()
	m.waitConnected()
}

// alive reports whether lockstepd is still running.
func (m *mac) alive() bool {
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

func (m *mac) logText() string {
	var b strings.Builder
	for _, l := range m.logs {
		b.WriteString(l.String())
	}
	return b.String()
}

func (m *mac) eventually(what string, d time.Duration, cond func() bool) {
	m.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			m.t.Fatalf("timed out waiting for %s\nlockstepd log:\n%s", what, tail(m.logText(), 4000))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (m *mac) status() *localapi.Status {
	m.t.Helper()
	st, err := m.client.Status(context.Background())
	if err != nil {
		m.t.Fatalf("status: %v", err)
	}
	return st
}

func (m *mac) account() localapi.Account {
	m.t.Helper()
	for _, a := range m.status().Accounts {
		if a.LocalUser == "alice" {
			return a
		}
	}
	m.t.Fatalf("alice not in status")
	return localapi.Account{}
}

// waitConnected waits until lockstepd is connected and knows alice.
func (m *mac) waitConnected() {
	m.t.Helper()
	m.eventually("the directory session and alice's state", 30*time.Second, func() bool {
		st, err := m.client.Status(context.Background())
		if err != nil || st.Directory.State != localapi.ConnConnected {
			return false
		}
		for _, a := range st.Accounts {
			if a.LocalUser == "alice" && a.State != localapi.StateUnknown && a.State != localapi.StateBusy {
				return true
			}
		}
		return false
	})
}

func (m *mac) waitState(state string) {
	m.t.Helper()
	m.eventually("alice to be "+state, 10*time.Second, func() bool {
		st, err := m.client.Status(context.Background())
		if err != nil {
			return false
		}
		for _, a := range st.Accounts {
			if a.LocalUser == "alice" {
				return a.State == state
			}
		}
		return false
	})
}

// cliResult is one run of the lockstep CLI.
type cliResult struct {
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cli runs lockstep as root, with stdin.
func (m *mac) cli(stdin string, args ...string) cliResult { return m.cliAs(0, stdin, args...) }

// cliAs runs lockstep as uid (0 for root).
func (m *mac) cliAs(uid int, stdin string, args ...string) cliResult {
	m.t.Helper()
	cmd := exec.Command(bin.lockstep, append(args, "--socket", m.socket)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: 20}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() { <-ctx.Done(); cmd.Process.Kill() }()
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		m.t.Fatalf("running lockstep: %v", err)
	}
	return cliResult{stdout: out.String(), stderr: errb.String(), code: code}
}

func lines(s ...string) string { return strings.Join(s, "\n") + "\n" }

// dirAccepts reports whether the directory takes pw for the user, through a
// second enrolled device, as any other Mac of the user would.
func (m *mac) dirAccepts(pw string) bool {
	m.t.Helper()
	if m.probe == nil {
		m.probe = probeSession(m.t, m.dir, m.u.name)
	}
	err := m.probe.Request(context.Background(), protocol.TypeVerifyPassword, "", protocol.VerifyPasswordRequest{User: m.u.name, Password: protocol.Secret(pw)}, nil, 10*time.Second)
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Code == protocol.CodeWrongPassword {
		return false
	}
	if err != nil {
		m.t.Fatalf("probe verify: %v", err)
	}
	return true
}

// probeSession enrolls another device of the users with the directory, for
// checks.
func probeSession(t testing.TB, d *dirProc, users ...string) *session.Session {
	t.Helper()
	tok, err := d.admin.CreateEnrollToken(t.Context(), admin.EnrollTokenRequest{Users: users})
	if err != nil {
		t.Fatal(err)
	}
	roots, err := loadCA(d.ca)
	if err != nil {
		t.Fatal(err)
	}
	s, err := session.New(session.Options{URL: "wss://" + d.addr, RootCAs: roots, EnrollmentToken: tok.Token,
		StateDir: t.TempDir(), Keys: platform.NewFileStore(filepath.Join(t.TempDir(), "keys"))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// places asserts that every place holds pw: the directory, the Mac
// account, FileVault (with the SecureToken kept), and the login keychain
// with its items, which the previous password no longer opens.
func (m *mac) places(pw string, previous ...string) {
	m.t.Helper()
	ok, err := m.sim.CheckPassword("alice", []byte(pw))
	if err != nil || !ok {
		m.t.Errorf("the Mac account does not take %q (%v)", pw, err)
	}
	if ok, err := m.sim.CheckFileVault("alice", []byte(pw)); err != nil || !ok {
		m.t.Errorf("FileVault does not take the password (%v)", err)
	}
	snap, err := m.sim.Snapshot()
	if err != nil {
		m.t.Fatal(err)
	}
	for _, u := range snap.Users {
		if u.Name == "alice" && (!u.SecureToken || !u.CryptoUser) {
			m.t.Errorf("alice lost her SecureToken or crypto user: %+v", u)
		}
	}
	path, err := m.sim.LoginKeychainPath("alice")
	if err != nil {
		m.t.Fatal(err)
	}
	if _, err := m.sim.OpenKeychain(path, []byte(pw)); err != nil {
		m.t.Errorf("the login keychain does not open with the password: %v", err)
	}
	for _, p := range previous {
		if p == pw {
			continue
		}
		if ok, _ := m.sim.CheckPassword("alice", []byte(p)); ok {
			m.t.Errorf("the Mac account still takes an old password")
		}
		if _, err := m.sim.OpenKeychain(path, []byte(p)); err == nil {
			m.t.Errorf("the keychain still opens with an old password")
		}
	}
	if !m.dirAccepts(pw) {
		m.t.Errorf("the directory does not take the password")
	}
}

// keychainItems returns every item of every keychain file of alice that
// opens with one of the passwords, by file name.
func (m *mac) keychainItems(passwords []string) map[string][]string {
	m.t.Helper()
	snap, err := m.sim.Snapshot()
	if err != nil {
		m.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, u := range snap.Users {
		if u.Name != "alice" {
			continue
		}
		for _, kc := range u.Keychains {
			for _, pw := range passwords {
				if items, err := m.sim.OpenKeychain(kc.Path, []byte(pw)); err == nil {
					for _, it := range items {
						out[kc.Name] = append(out[kc.Name], it.Service+"/"+it.Account)
					}
					break
				}
			}
		}
	}
	return out
}

// lastOp reads the newest journal entry.
func (m *mac) lastOp() *journal.Entry {
	m.t.Helper()
	j, err := journal.Open(filepath.Join(m.stateDir, "operations"))
	if err != nil {
		m.t.Fatal(err)
	}
	all, err := j.List()
	if err != nil {
		m.t.Fatal(err)
	}
	if len(all) == 0 {
		m.t.Fatal("no operation in the journal")
	}
	return all[len(all)-1]
}

func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", path)
	}
	return pool, nil
}

// statusFileShows waits until the status file for MDM shows what the local
// API says to root (read before and after the file, so that the state did
// not move in between), and that every local user may read it. The file
// is rewritten before any watcher hears of a change, so once lockstepd
// settles the two agree.
func (m *mac) statusFileShows(what string) {
	m.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		before := m.status()
		err := mdmtest.Matches(m.statusPlist, before)
		after := m.status()
		if err == nil && !reflect.DeepEqual(before, after) {
			err = errors.New("lockstepd's state moved while the file was read")
		}
		if err == nil {
			err = mdmtest.CheckFile(m.statusPlist, os.Getuid())
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("%s: the status file does not show lockstepd's state:\n%v\nlockstepd log:\n%s", what, err, tail(m.logText(), 3000))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// statusFile reads the status file as it is on disk.
func (m *mac) statusFile() statusplist.Document {
	m.t.Helper()
	doc, err := statusplist.Read(m.statusPlist)
	if err != nil {
		m.t.Fatal(err)
	}
	return doc
}
