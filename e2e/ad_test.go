package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/internal/tools/sambatest"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// adDir is a lockstep-directory whose passwords live in the test's Samba
// AD DC, with the users of one OU and a service account that may read,
// reset and unlock there.
type adDir struct {
	*dirProc
	dc       *sambatest.DC
	ou       string
	svc      sambatest.User
	passFile string
}

var adOnce struct {
	sync.Mutex
	d *adDir
}

// adShared is the shared AD directory's process, nil before any AD test.
func adShared() *dirProc {
	adOnce.Lock()
	defer adOnce.Unlock()
	if adOnce.d == nil {
		return nil
	}
	return adOnce.d.dirProc
}

// sharedAD starts (once) the directory every AD test of this package uses.
func sharedAD(t testing.TB) *adDir {
	t.Helper()
	dc := sambatest.Need(t)
	adOnce.Lock()
	defer adOnce.Unlock()
	if adOnce.d != nil {
		return adOnce.d
	}
	ou := dc.NewOU(t)
	svc := dc.ServiceAccount(t, ou, sambatest.RightReset, sambatest.RightPwdLastSet, sambatest.RightLockoutTime)
	d, err := startAD(t, dc, ou, svc)
	if err != nil {
		t.Fatal(err)
	}
	adOnce.d = d
	return d
}

// startAD starts a directory on dc's ou, bound as svc, in a data directory
// that outlives the test (it is the package's).
func startAD(t testing.TB, dc *sambatest.DC, ou string, svc sambatest.User) (*adDir, error) {
	data, err := os.MkdirTemp("", "lockstep-e2e-ad-")
	if err != nil {
		return nil, err
	}
	pass := filepath.Join(data, "..", filepath.Base(data)+".bindpw")
	if err := os.WriteFile(pass, []byte(svc.Password+"\n"), 0o600); err != nil {
		return nil, err
	}
	d, err := startDirectory(data, "127.0.0.1:0", adArgs(dc, ou, svc.DN, pass)...)
	if err != nil {
		return nil, err
	}
	return &adDir{dirProc: d, dc: dc, ou: ou, svc: svc, passFile: pass}, nil
}

func adArgs(dc *sambatest.DC, ou, bindDN, passFile string) []string {
	return []string{"--source", "ad", "--ldap-url", sambatest.URL, "--ldap-ca", dc.CAFile, "--base-dn", ou,
		"--bind-dn", bindDN, "--bind-password-file", passFile}
}

// adUser makes a user in AD and the e2e view of it.
func (d *adDir) adUser(t testing.TB) (*user, sambatest.User) {
	t.Helper()
	pw := newPassword()
	au := d.dc.AddUser(t, d.ou, "m", pw)
	return &user{name: au.Name, password: pw, known: []string{pw}}, au
}

// pwdLastSet reads the user's pwdLastSet as the domain administrator.
func (d *adDir) pwdLastSet(t *testing.T, dn string) int64 {
	t.Helper()
	res, err := d.dc.Admin(t).Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 10, false,
		"(objectClass=*)", []string{"pwdLastSet"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("reading pwdLastSet: %v", err)
	}
	v, _ := strconv.ParseInt(res.Entries[0].GetAttributeValue("pwdLastSet"), 10, 64)
	return v
}

// watchState reports when alice's state first becomes state on lockstepd's
// watch stream.
func (m *mac) watchState(t testing.TB, state string) <-chan time.Time {
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	seen := make(chan time.Time, 1)
	ready := make(chan struct{})
	go m.client.Watch(ctx, func(ev localapi.Event) error {
		if ev.Type != localapi.EventStatus || ev.Status == nil {
			return nil
		}
		select {
		case <-ready:
		default:
			close(ready)
		}
		for _, a := range ev.Status.Accounts {
			if a.LocalUser == "alice" && a.State == state {
				select {
				case seen <- time.Now():
				default:
				}
			}
		}
		return nil
	})
	<-ready
	return seen
}

// Done when (issue 12), end to end with the real binaries, the simulated
// Mac and Samba AD: a change from the Mac lands in AD and every Mac place;
// an administrator's reset with samba-tool (must change at next login)
// turns the Mac to "sync needed", and the sync chains into the forced
// change, leaving pwdLastSet non-zero; no password, the bind password
// included, reaches argv, a log or a state file.
func TestADChangeResetSync(t *testing.T) {
	t.Parallel()
	d := sharedAD(t)
	u, au := d.adUser(t)
	m := newMacFrom(t, d.dirProc, u, macSpec(u.password), []string{u.name})
	old, nw := u.password, newPassword()

	r := m.cli(lines(old, nw), "change", "--stdin", "--user", "alice")
	if r.code != 0 || !strings.Contains(r.stdout, text.CLIDone.S()) {
		t.Fatalf("change: %s", r)
	}
	upn := u.name + "@lockstep.test"
	if err := d.dc.Bind(upn, nw); err != nil {
		t.Fatalf("AD refuses the new password: %v", err)
	}
	if err := d.dc.Bind(upn, old); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("AD still takes the old password (%v)", err)
	}
	m.places(nw, old)
	if a := m.account(); a.State != localapi.StateInSync {
		t.Fatalf("after the change: %s (%s): Lockstep's own change was pushed back as a change made elsewhere?", a.State, a.Reason)
	}

	// An administrator's reset in samba-tool, over LDAP as from another
	// machine: must change at next login.
	temp, perm := newPassword(), newPassword()
	seen := m.watchState(t, localapi.StateSyncNeeded)
	at := time.Now()
	d.dc.ToolLDAP(t, "user", "setpassword", u.name, "--newpassword="+temp, "--must-change-at-next-login")
	select {
	case got := <-seen:
		t.Logf("sync needed on the Mac %v after samba-tool started", got.Sub(at).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatal("the reset made in samba-tool never reached the Mac")
	}
	// samba-tool sets the password, then pwdLastSet=0 in a second write: the
	// Mac may hear of the reset before it hears that it is temporary.
	m.eventually("the reason to say the password is temporary", 10*time.Second, func() bool {
		return m.account().Reason.Code == codes.ReasonResetTemporary
	})
	if d.pwdLastSet(t, au.DN) != 0 {
		t.Fatal("samba-tool did not set pwdLastSet to 0")
	}
	// The sync with the temporary password chains into the forced change.
	r = m.cli(lines(nw, temp, perm), "sync", "--stdin", "--user", "alice")
	if r.code != 0 || strings.Count(r.stdout, "Done: every place") != 2 {
		t.Fatalf("sync then change: %s", r)
	}
	m.places(perm, old, nw, temp)
	if v := d.pwdLastSet(t, au.DN); v == 0 {
		t.Fatal("pwdLastSet is still 0 after the forced change")
	}
	if err := d.dc.Bind(upn, perm); err != nil {
		t.Fatalf("AD refuses the permanent password: %v", err)
	}
	if a := m.account(); a.State != localapi.StateInSync {
		t.Fatalf("final state %s (%+v)", a.State, a.Reason)
	}
	assertNoSecrets(t, m, u, old, nw, temp, perm, d.svc.Password)
	assertNotInProcess(t, d.cmd.Process.Pid, d.svc.Password)
}

// assertNotInProcess checks that secret is in neither the command line nor
// the environment of a process.
func assertNotInProcess(t *testing.T, pid int, secret string) {
	t.Helper()
	for _, f := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("a secret is in /proc/%d/%s", pid, f)
		}
	}
}

// A lockout made in AD shows on the Mac at once, and an unlock through
// Lockstep (which clears lockoutTime) clears it; so does an unlock made in
// AD's own tools.
func TestADLockoutAndUnlock(t *testing.T) {
	t.Parallel()
	d := sharedAD(t)
	u, au := d.adUser(t)
	m := newMacFrom(t, d.dirProc, u, macSpec(u.password), []string{u.name})
	for round, unlock := range []func(){
		func() {
			out, err := exec.Command(bin.directory, "user", "unlock", u.name, "--data", d.data).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "unlocked "+u.name) {
				t.Fatalf("user unlock: %v\n%s", err, out)
			}
		},
		func() {
			mod := ldap.NewModifyRequest(au.DN, nil)
			mod.Replace("lockoutTime", []string{"0"})
			if err := d.dc.Admin(t).Modify(mod); err != nil {
				t.Fatalf("unlocking in AD: %v", err)
			}
		},
	} {
		locked := m.watchState(t, localapi.StateLocked)
		for i := range 5 { // the domain's threshold
			_ = d.dc.Bind(u.name+"@lockstep.test", fmt.Sprintf("Wrong-Guess-%d-%d!", round, i))
		}
		select {
		case <-locked:
		case <-time.After(15 * time.Second):
			t.Fatalf("round %d: the lockout made in AD never reached the Mac (state %s)", round, m.account().State)
		}
		unlocked := m.watchState(t, localapi.StateInSync)
		unlock()
		select {
		case <-unlocked:
		case <-time.After(15 * time.Second):
			t.Fatalf("round %d: the unlock never reached the Mac (state %s)", round, m.account().State)
		}
	}
	if err := d.dc.Bind(u.name+"@lockstep.test", u.password); err != nil {
		t.Fatalf("after the unlocks AD refuses the password: %v", err)
	}
}

// AD's minimum length and complexity are what `lockstep policy` shows and
// what the Mac enforces before anything is sent; user add and delete say
// that AD owns users; user list and show read from AD.
func TestADPolicyAndUsers(t *testing.T) {
	t.Parallel()
	d := sharedAD(t)
	u, au := d.adUser(t)
	m := newMacFrom(t, d.dirProc, u, macSpec(u.password), []string{u.name})
	// `lockstep policy --json` (codes and numbers: the words are the
	// catalogue's) shows AD's rules.
	r := m.cli("", "policy", "--json", "--user", "alice")
	var pol localapi.PolicyResponse
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &pol) != nil {
		t.Fatalf("lockstep policy --json: %s", r)
	}
	var codes []string
	for _, rule := range pol.Rules {
		codes = append(codes, rule.Code)
		if rule.Local != (rule.Code != protocol.RuleHistory && rule.Code != protocol.RuleMinAge) {
			t.Errorf("rule %s local=%v", rule.Code, rule.Local)
		}
	}
	for _, want := range []string{protocol.RuleMinLength, protocol.RuleCategories, protocol.RuleNotUsername, protocol.RuleNotNameParts, protocol.RuleHistory} {
		if !slices.Contains(codes, want) {
			t.Fatalf("lockstep policy lacks %s: %v", want, codes)
		}
	}
	if pol.Policy.MinLength != 7 || pol.Policy.MinCategories != 3 || pol.Policy.HistoryCount != 24 || pol.Policy.MaxAgeDays != 42 ||
		len(pol.Policy.NamePartsOf(u.name)) == 0 {
		t.Fatalf("the policy on the Mac is not AD's: %+v", pol.Policy)
	}
	if r := m.cli("", "policy", "--user", "alice"); r.code != 0 || !strings.Contains(r.stdout, text.RuleMinLength.N(7)) || !strings.Contains(r.stdout, text.RuleCategories.N(3)) {
		t.Fatalf("lockstep policy: %s", r)
	}
	for _, bad := range []string{"gardenforty7", "Ab1-xy", "xPerson-42X"} {
		r = m.cli(lines(u.password, bad), "change", "--stdin", "--user", "alice")
		if r.code == 0 || !strings.Contains(r.stderr, text.CLIPolicyUnmet.S()) {
			t.Fatalf("a change to %q that breaks AD's rules was not refused on the Mac: %s", bad, r)
		}
		if err := d.dc.Bind(u.name+"@lockstep.test", u.password); err != nil {
			t.Fatalf("the refused change reached AD: %v", err)
		}
	}

	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin.directory, append(args, "--data", d.data)...)
		cmd.Stdin = strings.NewReader(newPassword() + "\n")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	if out, code := run("user", "add", "newbie"); code == 0 || !strings.Contains(out, "Active Directory owns the users") {
		t.Fatalf("user add: exit %d\n%s", code, out)
	}
	if out, code := run("user", "delete", u.name); code == 0 || !strings.Contains(out, "Active Directory owns the users") {
		t.Fatalf("user delete: exit %d\n%s", code, out)
	}
	if out, code := run("user", "list"); code != 0 || !strings.Contains(out, u.name) || !strings.Contains(out, d.svc.Name) {
		t.Fatalf("user list does not show the AD users: exit %d\n%s", code, out)
	}
	if out, code := run("user", "show", u.name); code != 0 || !strings.Contains(out, au.DN) || !strings.Contains(out, au.DisplayName) {
		t.Fatalf("user show: exit %d\n%s", code, out)
	}
	if out, code := run("policy", "set", "--min-length", "20"); code == 0 || !strings.Contains(out, "Active Directory") {
		t.Fatalf("policy set: exit %d\n%s", code, out)
	}
}

// Every bad AD setting stops serve with a message naming its flag: an
// unreachable DC, a certificate the CA does not sign, a refused bind, a
// wrong base DN, a bad filter, a password file others can read, a password
// on the command line's place (there is no such flag).
func TestADServeRefusesBadSettings(t *testing.T) {
	t.Parallel()
	d := sharedAD(t)
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
	good := adArgs(d.dc, d.ou, d.svc.DN, d.passFile)
	with := func(flag, value string) []string {
		out := append([]string{}, good...)
		for i := range out {
			if out[i] == flag {
				out[i+1] = value
			}
		}
		return out
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unreachable", with("--ldap-url", "ldaps://127.0.0.1:1"), "--ldap-url cannot be reached"},
		{"untrusted certificate", with("--ldap-ca", otherCA), "--ldap-ca does not hold the CA"},
		{"wrong host", with("--ldap-url", "ldaps://localhost:636"), ""}, // localhost is in the certificate: must work
		{"refused bind", with("--bind-password-file", wrongPass), "--bind-password-file was refused for"},
		{"no such bind account", with("--bind-dn", "CN=nobody,"+d.ou), "--bind-password-file was refused for"},
		{"wrong base DN", with("--base-dn", "OU=nowhere,"+sambatest.BaseDN), "--base-dn does not exist"},
		{"base DN of another domain", with("--base-dn", "DC=example,DC=com"), "--base-dn"},
		{"bad filter", append(append([]string{}, good...), "--user-filter", "(memberOf=broken"), "--user-filter is not a valid LDAP filter"},
		{"readable password file", with("--bind-password-file", open), "readable by others"},
		{"plain ldap url scheme", with("--ldap-url", "http://127.0.0.1"), "--ldap-url must be ldaps://"},
		{"missing base DN", []string{"--source", "ad", "--ldap-url", sambatest.URL, "--bind-dn", d.svc.DN, "--bind-password-file", d.passFile}, "--source ad needs --base-dn"},
		{"AD flag without --source ad", []string{"--base-dn", d.ou}, "--base-dn needs --source ad"},
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
				if tc.want == "" && strings.Contains(out.String(), "passwords: Active Directory") {
					_ = cmd.Process.Kill()
					<-done
					return
				}
			}
		})
	}
}

// selfSignedPEM is a CA certificate that signed nothing of the DC's.
func selfSignedPEM(t *testing.T) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "another CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
