package platform

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/lockstep-dev/lockstep/macsim"
	"github.com/lockstep-dev/lockstep/macsim/macsimtest"
)

// The simulator is built once per test binary, on first use (fuzzing and
// parser-only runs never need it).
var (
	macsimOnce    sync.Once
	macsimBin     string
	macsimCleanup = func() {}
	macsimErr     error
)

func simulatorBinary(t *testing.T) string {
	t.Helper()
	macsimOnce.Do(func() { macsimBin, macsimCleanup, macsimErr = macsimtest.Build("") })
	if macsimErr != nil {
		t.Fatal(macsimErr)
	}
	return macsimBin
}

func TestMain(m *testing.M) {
	if helper := os.Getenv("PLATFORM_TEST_HELPER"); helper != "" {
		os.Exit(runHelper(helper))
	}
	code := m.Run()
	macsimCleanup()
	os.Exit(code)
}

func ptr[T any](v T) *T { return &v }

// Passwords of the test Mac.
const (
	adminPW = "Admin-pass-1"
	alicePW = "Alice-pass-1"
	bobPW   = "Bob-pass-11"
	carolPW = "Carol-pass-1"
	davePW  = "Dave-pass-1"
	erinPW  = "Erin-pass-1"
	frankPW = "Frank-pass-1"
)

// testSpec is a Mac with every kind of account the platform meets.
func testSpec() macsim.Spec {
	return macsim.Spec{
		FileVault: true, RecoveryKey: true, ConsoleUser: "alice", MinPasswordLength: 8,
		Users: []macsim.UserSpec{
			// a SecureToken administrator
			{Name: "admin", RealName: "Local Admin", UID: 501, Password: adminPW, SecureToken: true, Admin: true},
			// a SecureToken standard user, FileVault user, at the console
			{Name: "alice", RealName: "Alice Example", UID: 502, Password: alicePW, SecureToken: true},
			// no token, not a FileVault user
			{Name: "bob", RealName: "Bob Plain", UID: 503, Password: bobPW},
			// disabled
			{Name: "carol", RealName: "Carol Off", UID: 504, Password: carolPW, Disabled: true},
			// an administrator without a SecureToken
			{Name: "dave", RealName: "Dave Notoken", UID: 505, Password: davePW, Admin: true},
			// a crypto user without a token (the broken state older resets left)
			{Name: "erin", RealName: "Erin Broken", UID: 506, Password: erinPW, FileVault: ptr(true)},
			// no login keychain yet
			{Name: "frank", RealName: "Frank New", UID: 507, Password: frankPW, Keychain: &macsim.KeychainSpec{Absent: true}},
		},
	}
}

// syncBuffer is a log sink safe for concurrent writes.
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

// mac is a simulated Mac with a Runner pointed at it.
type mac struct {
	sim *macsim.Sim
	r   *Runner
	log *syncBuffer
}

func newMac(t *testing.T, spec macsim.Spec) *mac {
	t.Helper()
	sim := macsimtest.New(t, simulatorBinary(t), spec)
	log := &syncBuffer{}
	r := NewRunner(Config{
		ToolsDir:           sim.ToolsDir(),
		Log:                slog.New(slog.NewJSONHandler(log, nil)),
		RunUserStepsAsSelf: os.Geteuid() != 0,
	})
	return &mac{sim: sim, r: r, log: log}
}

// noSecrets asserts that no secret reached argv, env, the simulator's files
// or the log, and returns the invocations.
func (m *mac) noSecrets(t *testing.T, secrets ...string) []macsim.Invocation {
	t.Helper()
	var bs [][]byte
	for _, s := range secrets {
		bs = append(bs, []byte(s))
		if strings.Contains(m.log.String(), s) {
			t.Errorf("secret %q in the log", s)
		}
	}
	return macsimtest.AssertNoSecrets(t, m.sim, bs...)
}

func (m *mac) snapshot(t *testing.T) *macsim.Snapshot {
	t.Helper()
	s, err := m.sim.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (m *mac) user(t *testing.T, name string) macsim.UserSnapshot {
	t.Helper()
	for _, u := range m.snapshot(t).Users {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("no user %s in the simulated Mac", name)
	return macsim.UserSnapshot{}
}

// account reads name's record as the daemon would; a name the Mac does not
// know gives an account with that name and a home that does not exist.
func (m *mac) account(t *testing.T, name string) Account {
	t.Helper()
	a, err := NewAccounts(m.r).Read(t.Context(), name)
	if errors.Is(err, ErrNoSuchUser) {
		return Account{Name: name, UID: 9999, GID: 20, Home: "/nonexistent/" + name}
	}
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// authFailures lists the failed local logins in the record.
func authFailures(invs []macsim.Invocation) []string {
	var out []string
	for _, i := range invs {
		out = append(out, i.AuthFailures...)
	}
	return out
}

// wantPassword asserts the truth about an account password.
func (m *mac) wantPassword(t *testing.T, user, pw string, want bool) {
	t.Helper()
	ok, err := m.sim.CheckPassword(user, []byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	if ok != want {
		t.Errorf("account password of %s is %q: %t, want %t", user, pw, ok, want)
	}
}

// wantFileVault asserts the truth about a crypto user's passphrase.
func (m *mac) wantFileVault(t *testing.T, user, pw string, want bool) {
	t.Helper()
	ok, err := m.sim.CheckFileVault(user, []byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	if ok != want {
		t.Errorf("FileVault passphrase of %s is %q: %t, want %t", user, pw, ok, want)
	}
}

// wantKeychain asserts which password opens user's login keychain and
// returns its items.
func (m *mac) wantKeychain(t *testing.T, user, pw string) []macsim.KeychainItem {
	t.Helper()
	p, err := m.sim.LoginKeychainPath(user)
	if err != nil {
		t.Fatal(err)
	}
	items, err := m.sim.OpenKeychain(p, []byte(pw))
	if err != nil {
		t.Fatalf("login keychain of %s with %q: %v", user, pw, err)
	}
	return items
}

// invocationsOf filters the record.
func invocationsOf(invs []macsim.Invocation, tool, verb string) []macsim.Invocation {
	var out []macsim.Invocation
	for _, i := range invs {
		if i.Tool == tool && (verb == "" || i.Verb == verb) {
			out = append(out, i)
		}
	}
	return out
}
