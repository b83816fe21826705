package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/internal/tools/slapdtest"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// ldapDir is a lockstep-directory whose passwords live in the tests' slapd
// (ppolicy, syncprov), with the users of one OU and a service account
// that may read, reset and unlock there.
type ldapDir struct {
	*dirProc
	srv      *slapdtest.Server
	ou       string
	svc      slapdtest.User
	passFile string
}

var ldapOnce struct {
	sync.Mutex
	d *ldapDir
}

// ldapShared is the shared LDAP directory's process, nil before any LDAP
// test.
func ldapShared() *dirProc {
	ldapOnce.Lock()
	defer ldapOnce.Unlock()
	if ldapOnce.d == nil {
		return nil
	}
	return ldapOnce.d.dirProc
}

// sharedLDAP starts (once) the directory the LDAP tests of this package
// share; a test that changes the directory's policy starts its own.
func sharedLDAP(t testing.TB) *ldapDir {
	t.Helper()
	srv := slapdtest.Need(t)
	ldapOnce.Lock()
	defer ldapOnce.Unlock()
	if ldapOnce.d == nil {
		ldapOnce.d = startLDAP(t, srv)
	}
	return ldapOnce.d
}

// startLDAP starts a directory on an OU of its own, in a data directory
// that outlives the test (the shared one is the package's).
func startLDAP(t testing.TB, srv *slapdtest.Server) *ldapDir {
	t.Helper()
	ou := srv.NewOU(t)
	svc := srv.ServiceAccount(t, ou, true)
	data, err := os.MkdirTemp("", "lockstep-e2e-ldap-")
	if err != nil {
		t.Fatal(err)
	}
	pass := filepath.Join(data, "..", filepath.Base(data)+".bindpw")
	if err := os.WriteFile(pass, []byte(svc.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := startDirectory(data, "127.0.0.1:0", ldapArgs(srv, ou, svc.DN, pass)...)
	if err != nil {
		t.Fatal(err)
	}
	return &ldapDir{dirProc: d, srv: srv, ou: ou, svc: svc, passFile: pass}
}

func ldapArgs(srv *slapdtest.Server, ou, bindDN, passFile string) []string {
	return []string{"--source", "ldap", "--ldap-url", srv.URL, "--ldap-ca", srv.CAFile, "--base-dn", ou,
		"--bind-dn", bindDN, "--bind-password-file", passFile, "--ppolicy-dn", slapdtest.PolicyDN, "--ldap-poll-interval", "1s"}
}

// ldapUser makes a user in the directory and the e2e view of it.
func (d *ldapDir) ldapUser(t testing.TB) (*user, slapdtest.User) {
	t.Helper()
	pw := newPassword()
	lu := d.srv.AddUser(t, d.ou, "m", pw)
	return &user{name: lu.Name, password: pw, known: []string{pw}}, lu
}

// waitFor waits for a time from watchState, or fails saying what.
func waitFor(t *testing.T, ch <-chan time.Time, what string) time.Time {
	t.Helper()
	select {
	case at := <-ch:
		return at
	case <-time.After(15 * time.Second):
		t.Fatalf("%s never reached the Mac", what)
	}
	return time.Time{}
}

// Done when (issue 13), end to end with the real binaries, the simulated
// Mac and slapd: a change from the Mac lands in LDAP (bind with the new
// password works, the old one fails); an administrator's reset with the
// real ldapmodify turns the Mac to "sync needed"; the sync chains into the
// forced change and pwdReset is gone; no password, the bind password
// included, reaches argv, a log or a state file.
func TestLDAPChangeResetSync(t *testing.T) {
	t.Parallel()
	d := sharedLDAP(t)
	u, lu := d.ldapUser(t)
	m := newMacFrom(t, d.dirProc, u, macSpec(u.password), []string{u.name})
	old, nw := u.password, newPassword()

	r := m.cli(lines(old, nw), "change", "--stdin", "--user", "alice")
	if r.code != 0 || !strings.Contains(r.stdout, text.CLIDone.S()) {
		t.Fatalf("change: %s", r)
	}
	if err := d.srv.Bind(lu.DN, nw); err != nil {
		t.Fatalf("slapd refuses the new password: %v", err)
	}
	if err := d.srv.Bind(lu.DN, old); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("slapd still takes the old password (%v)", err)
	}
	m.places(nw, old)
	if a := m.account(); a.State != localapi.StateInSync {
		t.Fatalf("after the change: %s (%s): Lockstep's own change was pushed back as a change made elsewhere?", a.State, a.Reason)
	}

	// An administrator's reset with ldapmodify, as from another machine:
	// a temporary password (pwdReset: TRUE).
	temp, perm := newPassword(), newPassword()
	seen := m.watchState(t, localapi.StateSyncNeeded)
	at := time.Now()
	d.srv.LDAPModify(t, slapdtest.ResetLDIF(lu.DN, temp, true))
	t.Logf("sync needed on the Mac %v after ldapmodify started", waitFor(t, seen, "the reset made with ldapmodify").Sub(at).Round(time.Millisecond))
	if a := m.account(); a.Reason.Code != codes.ReasonResetTemporary {
		t.Errorf("reason %+v does not say the password is temporary", a.Reason)
	}
	if got := d.srv.Entry(t, lu.DN, "pwdReset").GetAttributeValue("pwdReset"); got != "TRUE" {
		t.Fatalf("pwdReset after ldapmodify = %q", got)
	}
	// The sync with the temporary password chains into the forced change.
	r = m.cli(lines(nw, temp, perm), "sync", "--stdin", "--user", "alice")
	if r.code != 0 || strings.Count(r.stdout, "Done: every place") != 2 {
		t.Fatalf("sync then change: %s", r)
	}
	m.places(perm, old, nw, temp)
	if got := d.srv.Entry(t, lu.DN, "pwdReset").GetAttributeValue("pwdReset"); got != "" {
		t.Fatalf("pwdReset is still %q after the forced change", got)
	}
	if err := d.srv.Bind(lu.DN, perm); err != nil {
		t.Fatalf("slapd refuses the permanent password: %v", err)
	}
	if a := m.account(); a.State != localapi.StateInSync {
		t.Fatalf("final state %s (%+v)", a.State, a.Reason)
	}
	assertNoSecrets(t, m, u, old, nw, temp, perm, d.svc.Password)
	assertNotInProcess(t, d.cmd.Process.Pid, d.svc.Password)
}

// A ppolicy lockout (failed binds anywhere) shows on the Mac at once; an
// unlock through Lockstep (which removes pwdAccountLockedTime) clears it,
// and so does one made with the directory's own tools.
func TestLDAPLockoutAndUnlock(t *testing.T) {
	t.Parallel()
	d := sharedLDAP(t)
	u, lu := d.ldapUser(t)
	m := newMacFrom(t, d.dirProc, u, macSpec(u.password), []string{u.name})
	for round, unlock := range []func(){
		func() {
			out, err := exec.Command(bin.directory, "user", "unlock", u.name, "--data", d.data).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "unlocked "+u.name) {
				t.Fatalf("user unlock: %v\n%s", err, out)
			}
		},
		func() {
			d.srv.LDAPModify(t, "dn: "+lu.DN+"\nchangetype: modify\ndelete: pwdAccountLockedTime\n")
		},
	} {
		locked := m.watchState(t, localapi.StateLocked)
		for i := range slapdtest.MaxFailure {
			_ = d.srv.Bind(lu.DN, fmt.Sprintf("Wrong-Guess-%d-%d!", round, i))
		}
		waitFor(t, locked, fmt.Sprintf("round %d: the ppolicy lockout", round))
		if a := m.account(); a.LockedUntil == nil || a.LockedUntil.Sub(time.Now()) > slapdtest.LockoutDuration {
			t.Fatalf("round %d: the lock's end %v is not ppolicy's (%v)", round, a.LockedUntil, slapdtest.LockoutDuration)
		}
		unlocked := m.watchState(t, localapi.StateInSync)
		unlock()
		waitFor(t, unlocked, fmt.Sprintf("round %d: the unlock", round))
	}
	if err := d.srv.Bind(lu.DN, u.password); err != nil {
		t.Fatalf("after the unlocks slapd refuses the password: %v", err)
	}
}

// ppolicy's minimum length and history are what `lockstep policy` shows
// and what the Mac enforces before anything is sent; Lockstep's own rule
// added with `policy set` shows as Lockstep's; user add says the
// directory owns the users; user show reads from LDAP.
func TestLDAPPolicyAndUsers(t *testing.T) {
	t.Parallel()
	srv := slapdtest.Need(t)
	d := startLDAP(t, srv) // its own: the test changes the policy
	t.Cleanup(func() { d.stop(); os.RemoveAll(d.data) })
	u, lu := d.ldapUser(t)
	m := newMacFrom(t, d.dirProc, u, macSpec(u.password), []string{u.name})
	policy := func() localapi.PolicyResponse {
		r := m.cli("", "policy", "--json", "--user", "alice")
		var pol localapi.PolicyResponse
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &pol) != nil {
			t.Fatalf("lockstep policy --json: %s", r)
		}
		return pol
	}
	pol := policy()
	if pol.Policy.MinLength != slapdtest.MinLength || pol.Policy.HistoryCount != slapdtest.InHistory || pol.Policy.MaxAgeDays != 90 ||
		pol.Policy.RequireUpper || pol.Policy.Lockstep != "" {
		t.Fatalf("the policy on the Mac is not ppolicy's: %+v", pol.Policy)
	}
	if r := m.cli("", "policy", "--user", "alice"); r.code != 0 || !strings.Contains(r.stdout, text.RuleMinLength.N(slapdtest.MinLength)) ||
		!strings.Contains(r.stdout, text.RuleHistory.N(slapdtest.InHistory)) {
		t.Fatalf("lockstep policy: %s", r)
	}
	r := m.cli(lines(u.password, "Short-1!"), "change", "--stdin", "--user", "alice")
	if r.code == 0 || !strings.Contains(r.stderr, text.CLIPolicyUnmet.S()) {
		t.Fatalf("a change shorter than pwdMinLength was not refused on the Mac: %s", r)
	}

	run := func(stdin string, args ...string) (string, int) {
		cmd := exec.Command(bin.directory, append(args, "--data", d.data)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	// Lockstep's own rule on top: a symbol.
	if out, code := run("", "policy", "set", "--symbol=true"); code != 0 {
		t.Fatalf("policy set --symbol: exit %d\n%s", code, out)
	}
	m.eventually("Lockstep's rule on the Mac", 15*time.Second, func() bool { return policy().Policy.IsLockstep(protocol.RuleSymbol) })
	want := text.RuleLockstep.S(map[string]any{"Rule": text.RuleSymbol.S()})
	if r := m.cli("", "policy", "--user", "alice"); r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Fatalf("lockstep policy does not mark Lockstep's rule (%q): %s", want, r)
	}
	if out, code := run("", "policy", "set", "--history", "2"); code == 0 || !strings.Contains(out, "pwdInHistory") {
		t.Fatalf("policy set --history: exit %d\n%s", code, out)
	}
	r = m.cli(lines(u.password, "NoSymbolsHere12345"), "change", "--stdin", "--user", "alice")
	if r.code == 0 || !strings.Contains(r.stderr, text.CLIPolicyUnmet.S()) {
		t.Fatalf("a change without Lockstep's symbol rule was not refused: %s", r)
	}
	if err := d.srv.Bind(lu.DN, u.password); err != nil {
		t.Fatalf("a refused change reached slapd: %v", err)
	}

	if out, code := run(newPassword()+"\n", "user", "add", "newbie"); code == 0 || !strings.Contains(out, "OpenLDAP owns the users") {
		t.Fatalf("user add: exit %d\n%s", code, out)
	}
	if out, code := run("", "user", "show", u.name); code != 0 || !strings.Contains(out, lu.DN) || !strings.Contains(out, lu.DisplayName) {
		t.Fatalf("user show: exit %d\n%s", code, out)
	}
}

// The sync cookie is kept in the directory's store: a reset made while
// lockstep-directory was down reaches the Mac after the restart.
func TestLDAPRestartReplaysMissed(t *testing.T) {
	t.Parallel()
	srv := slapdtest.Need(t)
	d := startLDAP(t, srv) // its own: the test restarts it
	t.Cleanup(func() { d.stop(); os.RemoveAll(d.data) })
	u, lu := d.ldapUser(t)
	m := newMacFrom(t, d.dirProc, u, macSpec(u.password), []string{u.name})
	m.waitConnected()
	d.stop()
	srv.SetPassword(t, lu.DN, newPassword(), true)
	seen := m.watchState(t, localapi.StateSyncNeeded)
	d.restart(t)
	waitFor(t, seen, "the reset made while the directory was down")
	if !strings.Contains(d.log.String(), "syncrepl resuming from the stored sync cookie") {
		t.Fatalf("the restarted directory did not resume from its stored cookie:\n%s", d.log)
	}
}

// Every bad LDAP setting stops serve with a message naming its flag.
func TestLDAPServeRefusesBadSettings(t *testing.T) {
	t.Parallel()
	d := sharedLDAP(t)
	dir := t.TempDir()
	wrongPass := filepath.Join(dir, "wrong.pw")
	if err := os.WriteFile(wrongPass, []byte("Not-The-Password-1!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.pw")
	if err := os.WriteFile(open, []byte(d.svc.Password+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	otherCA := filepath.Join(dir, "other-ca.pem")
	if err := os.WriteFile(otherCA, []byte(selfSignedPEM(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	good := ldapArgs(d.srv, d.ou, d.svc.DN, d.passFile)
	with := func(flag, value string) []string {
		out := append([]string{}, good...)
		for i := range out {
			if out[i] == flag {
				out[i+1] = value
				return out
			}
		}
		return append(out, flag, value)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"works", good, ""},
		{"unreachable", with("--ldap-url", "ldaps://127.0.0.1:1"), "--ldap-url cannot be reached"},
		{"untrusted certificate", with("--ldap-ca", otherCA), "--ldap-ca does not hold the CA"},
		{"refused bind", with("--bind-password-file", wrongPass), "--bind-password-file was refused for"},
		{"wrong base DN", with("--base-dn", "ou=nowhere,"+slapdtest.BaseDN), "--base-dn does not exist"},
		{"bad filter", with("--user-filter", "(memberOf=broken"), "--user-filter is not a valid LDAP filter"},
		{"bad user attribute", with("--user-attr", "no such"), "--user-attr is not an attribute name"},
		{"no such policy", with("--ppolicy-dn", "cn=nowhere,"+slapdtest.BaseDN), "--ppolicy-dn is not a pwdPolicy entry"},
		{"readable password file", with("--bind-password-file", open), "readable by others"},
		{"missing base DN", []string{"--source", "ldap", "--ldap-url", d.srv.URL, "--bind-dn", d.svc.DN, "--bind-password-file", d.passFile}, "--source ldap needs --base-dn"},
		{"ppolicy flag without --source ldap", []string{"--ppolicy-dn", slapdtest.PolicyDN}, "--ppolicy-dn needs --source ad or --source ldap"},
		{"user-attr with AD", []string{"--source", "ad", "--user-attr", "uid"}, "--user-attr needs --source ldap"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			args := append(append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, directoryArgs...), tc.args...)
			cmd := exec.Command(bin.directory, args...)
			out := &syncBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			deadline := time.After(40 * time.Second)
			for {
				select {
				case err := <-done:
					if tc.want == "" {
						t.Fatalf("serve stopped: %v\n%s", err, out.String())
					}
					if err == nil || !strings.Contains(out.String(), tc.want) {
						t.Fatalf("serve = %v, output lacks %q:\n%s", err, tc.want, out.String())
					}
					if strings.Contains(out.String(), d.svc.Password) {
						t.Fatal("the bind password is in the output")
					}
					return
				case <-deadline:
					_ = cmd.Process.Kill()
					<-done
					t.Fatalf("serve neither stopped nor served:\n%s", out.String())
				case <-time.After(50 * time.Millisecond):
				}
				if tc.want == "" && strings.Contains(out.String(), "passwords: OpenLDAP at") {
					_ = cmd.Process.Kill()
					<-done
					return
				}
			}
		})
	}
}
