package platform

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/macsim"
)

// keptMac is the test Mac after a forgotten-password sync of alice: her old
// login keychain (alicePW, two items) kept aside at a fixed time, and a new,
// empty one with the current password.
func keptMac(t *testing.T) (*mac, *Keychains, KeptKeychain, []macsim.KeychainItem) {
	t.Helper()
	spec := testSpec()
	spec.Users[1].LocalItems = true
	m := newMac(t, spec)
	kc := NewKeychains(m.r)
	kc.now = func() time.Time { return time.Date(2026, 3, 4, 9, 30, 0, 0, time.UTC) }
	items := m.wantKeychain(t, "alice", alicePW)
	a := m.account(t, "alice")
	mv, err := kc.MoveAside(t.Context(), a)
	if err != nil || len(mv.LocalItems) != 1 {
		t.Fatalf("MoveAside: %+v %v", mv, err)
	}
	if _, err := kc.Create(t.Context(), a, []byte(currentPW)); err != nil {
		t.Fatal(err)
	}
	kept, err := kc.Kept(a)
	if err != nil || len(kept) != 1 {
		t.Fatalf("Kept = %+v %v", kept, err)
	}
	return m, kc, kept[0], items
}

const currentPW = "Alice-now-3"

// Kept lists what MoveAside and macOS set aside, with when, and nothing else.
func TestKeptKeychains(t *testing.T) {
	t.Parallel()
	m, kc, k, _ := keptMac(t)
	a := m.account(t, "alice")
	dir := filepath.Dir(k.Path)
	if k.Name != "login_renamed_20260304T093000Z.keychain-db" || !k.KeptAt.Equal(time.Date(2026, 3, 4, 9, 30, 0, 0, time.UTC)) ||
		len(k.LocalItems) != 1 || filepath.Dir(k.LocalItems[0]) != dir {
		t.Errorf("kept keychain = %+v", k)
	}
	// One macOS renamed (§5.7): dated by the file; a symlink and a folder
	// with a kept name are not keychains.
	mac := filepath.Join(dir, "login_renamed_1.keychain-db")
	if err := os.WriteFile(mac, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	when := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(mac, when, when); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(mac, 502, 20); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "login_renamed_2.keychain-db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "login_renamed_3.keychain-db"), 0o700); err != nil {
		t.Fatal(err)
	}
	all, err := kc.Kept(a)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range all {
		names = append(names, x.Name)
	}
	if !slices.Equal(names, []string{k.Name, "login_renamed_1.keychain-db"}) || !all[1].KeptAt.Equal(when) {
		t.Errorf("kept = %+v", all)
	}
	if got, err := kc.Kept(m.account(t, "bob")); err != nil || len(got) != 0 {
		t.Errorf("bob's kept keychains = %+v %v", got, err)
	}
	if _, err := kc.OpensKept(t.Context(), a, "login.keychain-db", []byte(currentPW)); !errors.Is(err, ErrKeychainMissing) {
		t.Errorf("OpensKept of the login keychain = %v, want ErrKeychainMissing", err)
	}
	if _, err := kc.OpensKept(t.Context(), a, "../../../etc/passwd", []byte(currentPW)); !errors.Is(err, ErrKeychainMissing) {
		t.Errorf("OpensKept of a path = %v", err)
	}
}

// A wrong old password changes nothing, even with the kept keychain
// unlocked in every session; the right one re-keys it with every item, and
// the verdict is the lockstepd-session check's (§5.8).
func TestRekeyKept(t *testing.T) {
	t.Parallel()
	m, kc, k, items := keptMac(t)
	a := m.account(t, "alice")
	ctx := t.Context()
	// Unlocked in alice's GUI session and in the system session, where an
	// unlock takes any password.
	if err := m.sim.RunTool("launchctl", []string{"asuser", "502", filepath.Join(m.sim.ToolsDir(), "security"), "unlock-keychain", k.Path}, []byte(alicePW+"\n")); err != nil {
		t.Fatal(err)
	}
	if err := m.sim.RunTool("security", []string{"unlock-keychain", k.Path}, []byte(alicePW+"\n")); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(k.Path)
	if ok, err := kc.OpensKept(ctx, a, k.Name, []byte("Not-the-old-1")); err != nil || ok {
		t.Errorf("OpensKept(wrong) on an unlocked keychain = %t %v", ok, err)
	}
	if ok, err := kc.OpensKept(ctx, a, k.Name, []byte(alicePW)); err != nil || !ok {
		t.Errorf("OpensKept(old) = %t %v", ok, err)
	}
	err := kc.RekeyKept(ctx, a, k.Name, []byte("Not-the-old-1"), []byte(currentPW))
	if !errors.Is(err, ErrKeychainWrongPassword) {
		t.Fatalf("RekeyKept(wrong old) = %v", err)
	}
	if after, _ := os.ReadFile(k.Path); !bytes.Equal(before, after) {
		t.Error("a wrong old password changed the kept keychain")
	}
	if err := kc.RekeyKept(ctx, a, k.Name, []byte(alicePW), []byte(currentPW)); err != nil {
		t.Fatalf("RekeyKept: %v", err)
	}
	got, err := m.sim.OpenKeychain(k.Path, []byte(currentPW))
	if err != nil || !reflect.DeepEqual(got, items) {
		t.Errorf("kept keychain with the current password = %+v %v, want %+v", got, err, items)
	}
	if _, err := m.sim.OpenKeychain(k.Path, []byte(alicePW)); err == nil {
		t.Error("the old password still opens it")
	}
	if ok, err := kc.OpensKept(ctx, a, k.Name, []byte(currentPW)); err != nil || !ok {
		t.Errorf("OpensKept(current) after = %t %v", ok, err)
	}
	for _, li := range k.LocalItems {
		if _, err := os.Stat(li); err != nil {
			t.Errorf("Local Items gone: %v", err)
		}
	}
	m.noSecrets(t, alicePW, currentPW, "Not-the-old-1")
}

// The kept keychain goes back in the search list in alice's own session
// (launchctl asuser, sudo -u), after what was there, and is unlocked there;
// nothing is locked, nothing outside her session changes.
func TestAddToSearchListAndUnlock(t *testing.T) {
	t.Parallel()
	m, kc, k, _ := keptMac(t)
	a := m.account(t, "alice")
	ctx := t.Context()
	login, _ := m.sim.LoginKeychainPath("alice")
	if list, err := kc.SearchList(ctx, a); err != nil || !slices.Equal(list, []string{login}) {
		t.Fatalf("SearchList = %q %v", list, err)
	}
	if in, err := kc.InSearchList(ctx, a, k.Path); err != nil || in {
		t.Fatalf("InSearchList before = %t %v", in, err)
	}
	if err := kc.RekeyKept(ctx, a, k.Name, []byte(alicePW), []byte(currentPW)); err != nil {
		t.Fatal(err)
	}
	if added, err := kc.AddToSearchList(ctx, a, k.Name); err != nil || !added {
		t.Fatalf("AddToSearchList: %t %v", added, err)
	}
	if got := m.user(t, "alice").SearchList; !slices.Equal(got, []string{login, k.Path}) {
		t.Errorf("alice's search list = %q", got)
	}
	start := len(m.invocations(t))
	if added, err := kc.AddToSearchList(ctx, a, k.Name); err != nil || added {
		t.Fatalf("AddToSearchList again: %t %v", added, err)
	}
	if n := len(invocationsOf(m.invocations(t)[start:], "security", "")); n != 1 {
		t.Errorf("adding again ran security %d times, want the one read", n)
	}
	gui := macsim.GUISession(502)
	if ok, _ := m.sim.UnlockedIn(gui, k.Path); ok {
		t.Fatal("unlocked in alice's session before UnlockForUser")
	}
	if err := kc.UnlockForUser(ctx, a, k.Name, []byte(currentPW)); err != nil {
		t.Fatalf("UnlockForUser: %v", err)
	}
	if ok, _ := m.sim.UnlockedIn(gui, k.Path); !ok {
		t.Error("not unlocked in alice's session")
	}
	if ok, _ := m.sim.UnlockedIn(gui, login); !ok {
		t.Error("her login keychain is no longer unlocked in her session")
	}
	invs := m.noSecrets(t, alicePW, currentPW)
	for _, inv := range invs[start:] {
		if inv.Tool == "security" && (inv.Session != gui || (os.Geteuid() == 0 && inv.EUID != 502)) {
			t.Errorf("security %s ran in %q as %d, want alice's session as alice", inv.Verb, inv.Session, inv.EUID)
		}
	}
}

func (m *mac) invocations(t *testing.T) []macsim.Invocation {
	t.Helper()
	invs, err := m.sim.Invocations()
	if err != nil {
		t.Fatal(err)
	}
	return invs
}

func TestParseKeychainList(t *testing.T) {
	got, err := parseKeychainList("    \"/Users/dev/Library/Keychains/login.keychain-db\"\n    \"/Library/Keychains/System.keychain\"\n")
	if err != nil || !slices.Equal(got, []string{"/Users/dev/Library/Keychains/login.keychain-db", "/Library/Keychains/System.keychain"}) {
		t.Errorf("parse = %q %v", got, err)
	}
	if got, err := parseKeychainList(""); err != nil || len(got) != 0 {
		t.Errorf("empty = %q %v", got, err)
	}
	if _, err := parseKeychainList("security: SecKeychainCopyDomainSearchList user: oops\n"); !errors.Is(err, ErrToolFailed) {
		t.Errorf("garbage = %v", err)
	}
}
