package e2e

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/macsim"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// forgetPassword runs a forgotten-password sync to a new directory password
// and returns the path of the old login keychain it kept (it still opens
// with the old password, with every item).
func (w *crashWorld) forgetPassword() string {
	t := w.t
	if r := w.cli(lines(adminPW), "service-account", "setup", "--admin", "admin", "--stdin"); r.code != 0 {
		t.Fatalf("service account: %s", r)
	}
	w.adminReset()
	if r := w.cli(lines(w.next), "sync", "--forgot-previous", "--stdin", "--user", "alice"); r.code != 0 {
		t.Fatalf("forgotten-password sync: %s", r)
	}
	w.known = append(w.known, w.next)
	w.cur = w.next
	for name, its := range w.keychainItems(w.known[:1]) {
		if strings.HasPrefix(name, "login_renamed_") && slices.Equal(its, w.items) {
			return w.keptPath(name)
		}
	}
	t.Fatalf("no kept keychain opens with the old password with its items")
	return ""
}

func (w *crashWorld) keptPath(name string) string {
	for _, u := range mustSnapshot(w.t, w.mac).Users {
		if u.Name == "alice" {
			for _, k := range u.Keychains {
				if k.Name == name {
					return k.Path
				}
			}
		}
	}
	w.t.Fatalf("no keychain %s", name)
	return ""
}

// recovered asserts that the kept keychain at path opens with the current
// password with every item it had, no longer with the old one, is in
// alice's keychain search list after her login keychain, and is unlocked
// in her session.
func (w *crashWorld) recovered(path string) {
	t := w.t
	t.Helper()
	got, err := w.sim.OpenKeychain(path, []byte(w.cur))
	var its []string
	for _, it := range got {
		its = append(its, it.Service+"/"+it.Account)
	}
	if err != nil || !slices.Equal(its, w.items) {
		t.Errorf("the recovered keychain with the current password: %v %v, want %v", its, err, w.items)
	}
	if _, err := w.sim.OpenKeychain(path, []byte(w.known[0])); err == nil {
		t.Error("the recovered keychain still opens with the old password")
	}
	login, _ := w.sim.LoginKeychainPath("alice")
	for _, u := range mustSnapshot(t, w.mac).Users {
		if u.Name == "alice" && !slices.Equal(u.SearchList, []string{login, path}) {
			t.Errorf("alice's keychain search list %q, want her login keychain and %s", u.SearchList, path)
		}
	}
	if ok, err := w.sim.UnlockedIn(macsim.GUISession(502), path); err != nil || !ok {
		t.Errorf("the recovered keychain is not unlocked in alice's session (%v)", err)
	}
	if ok, _ := w.sim.UnlockedIn(macsim.GUISession(502), login); !ok {
		t.Error("alice's login keychain is no longer unlocked in her session")
	}
}

// 5. The old keychain back, later: after a forgotten-password sync the user
// remembers the old password; `lockstep keychain recover` lists the kept
// keychain with its date, a wrong old password changes nothing (not a byte
// of it, not the search list), and the right one re-keys it to the current
// password with every item and puts it back in her search list, unlocked in
// her session. No secret in argv, the environment, a log or the journal;
// no failed local login.
func TestRecoverKeptKeychain(t *testing.T) {
	t.Parallel()
	u := newUser(t, shared, false)
	m := newMac(t, shared, u)
	w := &crashWorld{mac: m, cur: u.password, known: []string{u.password}}
	w.items = m.keychainItems(w.known)["login.keychain-db"]
	start := m.invocationCount()
	path := w.forgetPassword()
	if a := m.account(); a.KeptKeychains != 1 {
		t.Errorf("the account shows %d kept keychains", a.KeptKeychains)
	}

	r := m.cli("", "keychain", "list", "--user", "alice")
	name := path[strings.LastIndex(path, "/")+1:]
	if r.code != 0 || !strings.Contains(r.stdout, name) || !strings.Contains(r.stdout, text.CLIRecoverHeading.S()) {
		t.Fatalf("keychain list: %s", r)
	}

	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wrongStart := m.invocationCount()
	r = m.cli(lines("1", "Not-the-old-Pw-1", w.cur), "keychain", "recover", "--stdin", "--user", "alice")
	if r.code != 1 || !strings.Contains(r.stderr, text.ErrKeychainOld.S()) {
		t.Fatalf("recover with a wrong old password: %s", r)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a wrong old password changed the kept keychain")
	}
	login, _ := m.sim.LoginKeychainPath("alice")
	for _, su := range mustSnapshot(t, m).Users {
		if su.Name == "alice" && !slices.Equal(su.SearchList, []string{login}) {
			t.Errorf("a wrong old password changed the search list: %q", su.SearchList)
		}
	}
	for _, inv := range m.invocationsSince(wrongStart) {
		if inv.Tool == "launchctl" || inv.Tool == "sudo" {
			t.Errorf("a wrong old password reached the user's session: %s %v", inv.Tool, inv.Argv)
		}
	}

	r = m.cli(lines("1", w.known[0], w.cur), "keychain", "recover", "--stdin", "--user", "alice")
	if r.code != 0 || !strings.Contains(r.stdout, text.CLIRecovered.S()) {
		t.Fatalf("recover: %s", r)
	}
	w.recovered(path)
	m.places(w.cur, w.known[0])
	a := m.account()
	if a.State != localapi.StateInSync || a.KeptKeychains != 0 || a.LastOperation == nil || a.LastOperation.Kind != localapi.OpKeychainRecover {
		t.Errorf("account after recovery: %s, %d kept, last %+v", a.State, a.KeptKeychains, a.LastOperation)
	}
	if op := m.lastOp(); op.Keychain != name || op.State != localapi.OpDone {
		t.Errorf("journal: %+v", op)
	}
	if fl := failedLogins(m.invocationsSince(start)); len(fl) > 0 {
		t.Errorf("failed local logins: %v", fl)
	}
	assertNoSecrets(t, m, u, append(w.known, "Not-the-old-Pw-1", adminPW)...)

	// A later change moves the recovered keychain along with the login
	// keychain: it keeps every item and opens with the new password.
	next := newPassword()
	if r := m.cli(lines(w.cur, next), "change", "--stdin", "--user", "alice"); r.code != 0 {
		t.Fatalf("change after the recovery: %s", r)
	}
	w.known = append(w.known, next)
	w.cur = next
	m.places(next)
	w.recovered(path)
	assertNoSecrets(t, m, u, append(w.known, "Not-the-old-Pw-1", adminPW)...)

	r = m.cli("", "keychain", "list", "--user", "alice")
	if !strings.Contains(r.stdout, text.CLIKeptLine(1, localapi.KeptKeychain{Name: name, Recovered: true, KeptAt: keptAt(t, m)})) {
		t.Errorf("list after recovery:\n%s", r.stdout)
	}
}

// keptAt is when the kept keychain was set aside, as lockstepd lists it.
func keptAt(t *testing.T, m *mac) (at time.Time) {
	kept, err := m.client.KeptKeychains(t.Context(), "alice")
	if err != nil || len(kept.Keychains) == 0 {
		t.Fatalf("kept keychains: %+v %v", kept, err)
	}
	return kept.Keychains[0].KeptAt
}
