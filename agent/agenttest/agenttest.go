// Package agenttest runs a real lockstepd (agent.Daemon, its engine, its
// journal and its local API on a unix socket) over enginetest's fake Mac and
// directory, for the app's and the CLI's tests: they drive the daemon users
// get, so nothing re-implements its behaviour. A World is the Mac, the
// directory and the daemon, and what an administrator or the network can do
// to them.
package agenttest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/lockstep-dev/lockstep/agent"
	"github.com/lockstep-dev/lockstep/agent/api"
	"github.com/lockstep-dev/lockstep/agent/config"
	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/agent/enginetest"
	"github.com/lockstep-dev/lockstep/agent/session"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Options describe the world a test starts in: one account whose every
// place holds Password, in sync and connected.
type Options struct {
	LocalUser     string // default "alice"
	DirectoryUser string // default "alice@example.com"
	DisplayName   string // default "Alice Example"
	Password      string // default enginetest.OldPassword
	// MFA turns on TOTP; Codes are the codes the directory accepts (each
	// once; default enginetest.Code).
	MFA   bool
	Codes []string
	// FileVault makes the account a FileVault user (FileVault on).
	FileVault bool
	// ServiceAccount makes the forgotten-password path available.
	ServiceAccount bool
	// Policy is the directory's (default protocol.DefaultPolicy()).
	Policy *protocol.Policy
	// MacRules are the Mac's own password rules.
	MacRules []protocol.LocalRule
	// NotLinked starts the account not linked: the directory says nothing
	// about the user until the password is given.
	NotLinked bool
	// Kept are old login keychains kept aside (as a forgotten-password
	// sync leaves them), each opening with its Password.
	Kept []enginetest.Aside
	// Now is the clock of the daemon and the directory (default time.Now).
	Now func() time.Time
	// Version is lockstepd's (default "1.0.0").
	Version string
	// Log receives the daemon's log (default: discarded).
	Log *slog.Logger
	// StatusPlist makes lockstepd keep its status file for MDM, at
	// World.StatusPlist.
	StatusPlist bool
}

// World is a running lockstepd over a fake Mac and directory.
type World struct {
	t      testing.TB
	o      Options
	Mac    *enginetest.Mac
	Dir    *enginetest.Directory
	link   *link
	Socket string
	// StatusPlist is the status file's path when Options.StatusPlist.
	StatusPlist string
	state       string

	mu     sync.Mutex
	ops    []string
	d      *agent.Daemon
	cancel context.CancelFunc
	done   chan error
}

// Start starts a world; it stops when the test ends.
func Start(t testing.TB, o Options) *World {
	t.Helper()
	if o.LocalUser == "" {
		o.LocalUser = "alice"
	}
	if o.DirectoryUser == "" {
		o.DirectoryUser = "alice@example.com"
	}
	if o.DisplayName == "" {
		o.DisplayName = "Alice Example"
	}
	if o.Password == "" {
		o.Password = enginetest.OldPassword
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Version == "" {
		o.Version = "1.0.0"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	now := o.Now()
	changed := now.Add(-10 * 24 * time.Hour).UTC()

	mac := enginetest.NewMac()
	mac.Local = map[string]string{o.LocalUser: o.Password}
	mac.Keychain = map[string]string{o.LocalUser: o.Password}
	mac.Token = map[string]bool{o.LocalUser: true}
	mac.FileVaultOn, mac.FileVaultUsers = o.FileVault, map[string]bool{o.LocalUser: o.FileVault}
	mac.ServiceUsable = o.ServiceAccount
	mac.LastSet = map[string]float64{o.LocalUser: 1}
	mac.Rules = o.MacRules
	for _, k := range o.Kept {
		if k.User == "" {
			k.User = o.LocalUser
		}
		mac.Aside = append(mac.Aside, k)
	}
	// The test process is the caller: its uid (and root's, for a test
	// run as root) is the account's.
	mac.UIDs = map[int]string{os.Getuid(): o.LocalUser, 0: o.LocalUser}

	dir := enginetest.NewDirectory()
	dir.Now = o.Now
	pol := protocol.DefaultPolicy()
	if o.Policy != nil {
		pol = *o.Policy
	}
	dir.PolicyOf = pol
	st := protocol.AccountState{User: o.DirectoryUser, DisplayName: o.DisplayName, PasswordVersion: 1,
		PasswordChangedAt: changed, MFA: o.MFA}
	if pol.MaxAgeDays > 0 {
		exp := changed.AddDate(0, 0, pol.MaxAgeDays)
		st.ExpiresAt = &exp
	}
	dir.Passwords = map[string]string{o.DirectoryUser: o.Password}
	dir.States = map[string]protocol.AccountState{o.DirectoryUser: st}
	if len(o.Codes) > 0 {
		dir.Codes = map[string]bool{}
		for _, c := range o.Codes {
			dir.Codes[c] = true
		}
	}
	dir.Proof = o.NotLinked

	base, err := os.MkdirTemp("", "lockstepd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	w := &World{t: t, o: o, Mac: mac, Dir: dir, Socket: filepath.Join(base, "lockstepd.sock"), state: filepath.Join(base, "state"),
		link: &link{Directory: dir, state: session.Connected, since: now.Add(-time.Hour), url: "wss://directory.example.com"}}
	if o.StatusPlist {
		w.StatusPlist = filepath.Join(base, "status.plist")
	}
	w.start()
	t.Cleanup(w.Stop)
	return w
}

// link is the fake directory as lockstepd's session reports it.
type link struct {
	*enginetest.Directory
	mu      sync.Mutex
	state   string
	since   time.Time
	problem string
	lastErr string
	url     string
}

func (l *link) Connection() api.Connection {
	l.mu.Lock()
	defer l.mu.Unlock()
	return api.Connection{State: l.state, URL: l.url, Since: l.since, Problem: l.problem, LastError: l.lastErr, DeviceID: "dev-7f3a"}
}

// start runs a daemon on the world's state, as launchd starts lockstepd.
func (w *World) start() {
	w.t.Helper()
	cfg := &config.Config{DirectoryURL: w.link.url, StateDir: w.state, Socket: w.Socket, StatusPlist: w.StatusPlist,
		UserMap: map[string]string{w.o.LocalUser: w.o.DirectoryUser}}
	platform := w.Mac.Platform()
	d, err := agent.New(agent.Options{Config: cfg, Log: w.o.Log, Mac: &platform, Keys: keys{},
		Version: w.o.Version, Directory: w.link, Now: w.o.Now})
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	events, unsubscribe := d.Subscribe()
	go func() {
		for ev := range events {
			if ev.Type == engine.EventResult && ev.Operation != nil {
				w.mu.Lock()
				w.ops = append(w.ops, ev.Operation.Kind)
				w.mu.Unlock()
			}
		}
	}()
	done := make(chan error, 1)
	go func() { err := d.Run(ctx); unsubscribe(); done <- err }()
	w.mu.Lock()
	w.d, w.cancel, w.done = d, cancel, done
	w.mu.Unlock()
	if w.link.Connection().State == session.Connected {
		d.Welcomed(protocol.Welcome{Policy: w.Dir.Policy(), LockoutThreshold: 5})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The socket answers, not merely exists: its file appears when it
		// is bound, a moment before it listens.
		if c, err := net.Dial("unix", w.Socket); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			w.t.Fatalf("lockstepd stopped at start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			w.t.Fatal("lockstepd did not open its socket")
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.waitBound()
}

// Options are the world's, with the defaults filled in.
func (w *World) Options() Options { return w.o }

// waitBound waits until the daemon has read the account from the
// directory (or been told it is not linked).
func (w *World) waitBound() {
	if w.link.Connection().State != session.Connected {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, a := range w.daemon().Accounts(context.Background(), api.Caller{Admin: true}) {
			if a.LocalUser == w.o.LocalUser && a.State != engine.StateUnknown {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.t.Fatal("lockstepd did not bind the account")
}

func (w *World) daemon() *agent.Daemon {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.d
}

// Stop stops lockstepd as launchctl bootout does: its watch streams end
// and the socket goes away.
func (w *World) Stop() {
	w.mu.Lock()
	cancel, done := w.cancel, w.done
	w.cancel, w.done, w.d = nil, nil, nil
	w.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		w.t.Errorf("lockstepd stopped with %v", err)
	}
	_ = os.Remove(w.Socket)
}

// Restart stops lockstepd if it runs and starts it again on the same
// state, as after a crash or an upgrade.
func (w *World) Restart() {
	w.Stop()
	w.start()
}

// Reset is an administrator's reset in the directory, pushed to the Mac.
func (w *World) Reset(password string, temporary bool) {
	w.t.Helper()
	w.push(protocol.TypePasswordReset, w.Dir.Reset(w.o.DirectoryUser, password, temporary))
}

// Lock locks the account in the directory until the time given, pushed to
// the Mac.
func (w *World) Lock(until time.Time) {
	w.t.Helper()
	w.push(protocol.TypeAccountLocked, w.Dir.LockUser(w.o.DirectoryUser, until))
}

// ResetMFA is an administrator's MFA reset with an enrolment period of days,
// pushed to the Mac; the directory's enrolment key is then
// enginetest.EnrollSecret and EnrollCode gives its codes.
func (w *World) ResetMFA(days int) time.Time {
	w.t.Helper()
	until := w.o.Now().Add(time.Duration(days) * 24 * time.Hour).UTC()
	w.push(protocol.TypeMFAEnrollment, w.Dir.ResetMFA(w.o.DirectoryUser, until))
	return until
}

// EnrollCode is the code an authenticator set up with the enrolment key
// shows now (the directory's clock), as a phone would.
func (w *World) EnrollCode() string {
	w.t.Helper()
	code, err := totp.GenerateCode(enginetest.EnrollSecret, w.o.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	return code
}

// ExpireIn makes the directory password expire days from now and pushes
// the warning the directory's expiry scanner sends.
func (w *World) ExpireIn(days int) {
	w.t.Helper()
	at := w.o.Now().Add(time.Duration(days)*24*time.Hour + time.Hour).UTC()
	w.Dir.Lock()
	st := w.Dir.States[w.o.DirectoryUser]
	st.ExpiresAt = &at
	w.Dir.States[w.o.DirectoryUser] = st
	w.Dir.Unlock()
	w.push(protocol.TypeExpiryApproaching, protocol.ExpiryApproaching{User: w.o.DirectoryUser, ExpiresAt: at, DaysLeft: days})
}

var seq uint64

func (w *World) push(typ string, body any) {
	w.t.Helper()
	env, err := protocol.New(typ, body)
	if err != nil {
		w.t.Fatal(err)
	}
	seq++
	env.Seq = seq
	d := w.daemon()
	if d == nil {
		w.t.Fatal("push while lockstepd is stopped")
	}
	if err := d.HandlePush(context.Background(), env); err != nil {
		w.t.Fatalf("push %s: %v", typ, err)
	}
}

// Disconnect takes the directory away since the time given, with the
// session's last error (a Go error's words) and problem code.
func (w *World) Disconnect(since time.Time, problem, lastErr string) {
	w.link.mu.Lock()
	w.link.state, w.link.since, w.link.problem, w.link.lastErr = session.Offline, since, problem, lastErr
	w.link.mu.Unlock()
	w.Dir.Lock()
	w.Dir.Online = false
	w.Dir.Unlock()
	if d := w.daemon(); d != nil {
		d.ConnectionChanged()
	}
}

// Unenroll takes the directory away because this Mac has no identity
// with it (never enrolled, or its identity was removed), as the session
// reports that: not_enrolled since the time given.
func (w *World) Unenroll(since time.Time) {
	w.link.mu.Lock()
	w.link.state, w.link.since, w.link.problem, w.link.lastErr = session.NotEnrolled, since, session.ProblemNotEnrolled, session.ErrNotEnrolled.Error()
	w.link.mu.Unlock()
	w.Dir.Lock()
	w.Dir.Online = false
	w.Dir.Unlock()
	if d := w.daemon(); d != nil {
		d.ConnectionChanged()
	}
}

// Reconnect brings the directory back, as a new session does.
func (w *World) Reconnect(since time.Time) {
	w.link.mu.Lock()
	w.link.state, w.link.since, w.link.problem, w.link.lastErr = session.Connected, since, "", ""
	w.link.mu.Unlock()
	w.Dir.Lock()
	w.Dir.Online = true
	w.Dir.Unlock()
	if d := w.daemon(); d != nil {
		d.Welcomed(protocol.Welcome{Policy: w.Dir.Policy(), LockoutThreshold: 5})
		d.ConnectionChanged()
	}
}

// MacPassword is what the account takes, and the keychain's password
// when it differs ("account|keychain").
func (w *World) MacPassword() string {
	w.Mac.Lock()
	defer w.Mac.Unlock()
	l, k := w.Mac.Local[w.o.LocalUser], w.Mac.Keychain[w.o.LocalUser]
	if l == k {
		return l
	}
	return l + "|" + k
}

// Kept reports what opens each kept keychain, by path, and the user's
// keychain search list beyond the login keychain.
func (w *World) Kept() (opens map[string]string, searchList []string) {
	w.Mac.Lock()
	defer w.Mac.Unlock()
	opens = map[string]string{}
	for _, a := range w.Mac.Aside {
		opens[a.Path] = a.Password
	}
	return opens, slices.Clone(w.Mac.SearchList[w.o.LocalUser])
}

// DirectoryPassword is what the directory holds.
func (w *World) DirectoryPassword() string {
	w.Dir.Lock()
	defer w.Dir.Unlock()
	return w.Dir.Passwords[w.o.DirectoryUser]
}

// Operations lists the kinds of the operations lockstepd finished, in
// the order they finished.
func (w *World) Operations() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.ops)
}

// keys is a device key store the fake directory never uses.
type keys struct{}

func (keys) Get(string) ([]byte, error) { return nil, fmt.Errorf("agenttest: no device key") }
func (keys) Put(string, []byte) error   { return nil }
func (keys) Delete(string) error        { return nil }
