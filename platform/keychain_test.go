package platform

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/macsim"
)

func TestKeychainOpensAndRekey(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	kc := NewKeychains(m.r)
	ctx := t.Context()
	items := m.wantKeychain(t, "alice", alicePW)

	if ok, err := kc.Exists(m.account(t, "alice")); err != nil || !ok {
		t.Errorf("Exists(alice) = %t %v", ok, err)
	}
	if ok, err := kc.Exists(m.account(t, "frank")); err != nil || ok {
		t.Errorf("Exists(frank) = %t %v", ok, err)
	}
	if ok, err := kc.Opens(ctx, m.account(t, "alice"), []byte(alicePW)); err != nil || !ok {
		t.Errorf("Opens(right) = %t %v", ok, err)
	}
	if ok, err := kc.Opens(ctx, m.account(t, "alice"), []byte("Wrong-pass-1")); err != nil || ok {
		t.Errorf("Opens(wrong) = %t %v", ok, err)
	}
	if _, err := kc.Opens(ctx, m.account(t, "frank"), []byte(frankPW)); !errors.Is(err, ErrKeychainMissing) {
		t.Errorf("Opens(missing) = %v, want ErrKeychainMissing", err)
	}

	err := kc.Rekey(ctx, m.account(t, "alice"), []byte("Wrong-pass-1"), []byte("Alice-new-pass-2"))
	var te *ToolError
	if !errors.Is(err, ErrKeychainWrongPassword) || !errors.As(err, &te) || te.Exit != 51 ||
		te.Message != "The user name or passphrase you entered is not correct." {
		t.Fatalf("Rekey with a wrong old password: %v", err)
	}
	m.wantKeychain(t, "alice", alicePW)
	if err := kc.Rekey(ctx, m.account(t, "frank"), []byte(frankPW), []byte("Frank-new-pass")); !errors.Is(err, ErrKeychainMissing) {
		t.Errorf("Rekey(missing) = %v", err)
	}

	if err := kc.Rekey(ctx, m.account(t, "alice"), []byte(alicePW), []byte("Alice-new-pass-2")); err != nil {
		t.Fatalf("Rekey: %v", err)
	}
	after := m.wantKeychain(t, "alice", "Alice-new-pass-2")
	if !reflect.DeepEqual(after, items) || len(items) != 2 {
		t.Errorf("items after re-key = %+v, want %+v", after, items)
	}
	p, _ := m.sim.LoginKeychainPath("alice")
	if _, err := m.sim.OpenKeychain(p, []byte(alicePW)); err == nil {
		t.Error("the old password still opens the keychain")
	}
	alice := m.user(t, "alice")
	if os.Geteuid() == 0 && (alice.Keychains[0].UID != 502 || alice.Keychains[0].Mode != "-rw-------") {
		t.Errorf("keychain file after re-key = %+v", alice.Keychains[0])
	}

	invs := m.noSecrets(t, alicePW, "Alice-new-pass-2", "Wrong-pass-1", frankPW)
	for _, inv := range invocationsOf(invs, "security", "") {
		if inv.Env["HOME"] != m.user(t, inv.Env["USER"]).Home || inv.Env["USER"] == "" {
			t.Errorf("security ran without the user's HOME: %v", inv.Env)
		}
		if os.Geteuid() == 0 && inv.EUID != m.user(t, inv.Env["USER"]).UID {
			t.Errorf("security ran as uid %d for %s", inv.EUID, inv.Env["USER"])
		}
	}
	rk := invocationsOf(invs, "security", "set-keychain-password")
	if len(rk) != 3 || rk[2].StdinBytes != len(alicePW)+2*len("Alice-new-pass-2")+3 {
		t.Errorf("set-keychain-password runs = %+v", rk)
	}
}

func TestKeychainMoveAsideAndCreate(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	kc := NewKeychains(m.r)
	now := time.Date(2026, 11, 23, 10, 15, 30, 0, time.UTC)
	kc.now = func() time.Time { return now }
	ctx := t.Context()
	items := m.wantKeychain(t, "alice", alicePW)
	orig, _ := m.sim.LoginKeychainPath("alice")
	dir := filepath.Dir(orig)

	// Something already has the first name: never overwritten.
	squatter := filepath.Join(dir, "login_renamed_20261123T101530Z.keychain-db")
	if err := os.WriteFile(squatter, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	mv, err := kc.MoveAside(ctx, m.account(t, "alice"))
	if err != nil {
		t.Fatalf("MoveAside: %v", err)
	}
	moved := mv.Login
	if moved != filepath.Join(dir, "login_renamed_20261123T101530Z_2.keychain-db") {
		t.Errorf("moved to %s", moved)
	}
	if b, _ := os.ReadFile(squatter); string(b) != "precious" {
		t.Error("MoveAside overwrote an existing file")
	}
	if _, err := os.Lstat(orig); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("login keychain still there: %v", err)
	}
	if got, err := m.sim.OpenKeychain(moved, []byte(alicePW)); err != nil || !reflect.DeepEqual(got, items) {
		t.Errorf("moved keychain = %+v %v, want every item", got, err)
	}
	if _, err := kc.MoveAside(ctx, m.account(t, "alice")); !errors.Is(err, ErrKeychainMissing) {
		t.Errorf("second MoveAside = %v, want ErrKeychainMissing", err)
	}

	path, err := kc.Create(ctx, m.account(t, "alice"), []byte("Alice-reset-9"))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if path != orig {
		t.Errorf("created %s, want %s", path, orig)
	}
	if got := m.wantKeychain(t, "alice", "Alice-reset-9"); len(got) != 0 {
		t.Errorf("new keychain has items %+v", got)
	}
	u := m.user(t, "alice")
	// No keychain preference is set: the login keychain is found by its
	// path, and the default (none set) is the login keychain (Create).
	if u.DefaultKeychain != "" {
		t.Errorf("default keychain preference = %q, want none", u.DefaultKeychain)
	}
	if !slices.Contains(u.SearchList, orig) {
		t.Errorf("alice's search list = %q, want the new login keychain in it", u.SearchList)
	}
	invs := m.invocations(t)
	for _, inv := range invocationsOf(invs, "security", "") {
		if inv.Verb == "login-keychain" || inv.Verb == "default-keychain" {
			t.Errorf("Create ran security %s", inv.Verb)
		}
	}
	if lists := invocationsOf(invs, "security", "list-keychains"); len(lists) != 1 || lists[0].Session != macsim.GUISession(502) {
		t.Errorf("search list runs = %+v, want one read in alice's session", lists)
	}
	names := map[string]bool{}
	for _, k := range u.Keychains {
		names[k.Name] = true
		if os.Geteuid() == 0 && k.Name == LoginKeychainName && k.UID != 502 {
			t.Errorf("new keychain owned by uid %d", k.UID)
		}
	}
	if !names[LoginKeychainName] || !names[filepath.Base(moved)] || !names[filepath.Base(squatter)] {
		t.Errorf("keychain files = %v", names)
	}
	if _, err := kc.Create(ctx, m.account(t, "alice"), []byte("Alice-reset-9")); !errors.Is(err, ErrKeychainExists) {
		t.Errorf("Create over an existing keychain = %v", err)
	}
	m.noSecrets(t, alicePW, "Alice-reset-9")
}

// A user whose search list lost the login keychain gets the new one back
// in it, after what is there, in her own session; Create reads it back.
func TestKeychainCreateListsTheLoginKeychain(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	kc := NewKeychains(m.r)
	ctx := t.Context()
	a := m.account(t, "alice")
	login, _ := m.sim.LoginKeychainPath("alice")
	other := filepath.Join(filepath.Dir(login), "work.keychain-db")
	if res, err := kc.inUserSession(ctx, a, "list-keychains", nil, "list-keychains", "-d", "user", "-s", other); err != nil || res.Exit != 0 {
		t.Fatalf("set alice's list: %+v %v", res, err)
	}
	if _, err := kc.MoveAside(ctx, a); err != nil {
		t.Fatal(err)
	}
	start := len(m.invocations(t))
	if _, err := kc.Create(ctx, a, []byte("Alice-reset-9")); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got := m.user(t, "alice").SearchList; !slices.Equal(got, []string{other, login}) {
		t.Errorf("alice's search list = %q, want %q", got, []string{other, login})
	}
	lists := invocationsOf(m.invocations(t)[start:], "security", "list-keychains")
	if list, err := kc.SearchList(ctx, a); err != nil || !slices.Equal(list, []string{other, login}) {
		t.Errorf("her session sees %q %v", list, err)
	}
	if len(lists) != 3 {
		t.Errorf("Create ran list-keychains %d times, want read, set, read back", len(lists))
	}
	for _, inv := range lists {
		if inv.Session != macsim.GUISession(502) || (os.Geteuid() == 0 && inv.EUID != 502) {
			t.Errorf("list-keychains ran in %q as %d, want alice's session as alice", inv.Session, inv.EUID)
		}
	}
	m.noSecrets(t, "Alice-reset-9")
}

func TestKeychainCreateMakesDirectory(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	kc := NewKeychains(m.r)
	home := m.user(t, "frank").Home
	if err := os.RemoveAll(filepath.Join(home, "Library")); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.MoveAside(t.Context(), m.account(t, "frank")); !errors.Is(err, ErrKeychainMissing) {
		t.Errorf("MoveAside without ~/Library: %v", err)
	}
	if _, err := kc.Create(t.Context(), m.account(t, "frank"), []byte(frankPW)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	for _, d := range []string{filepath.Join(home, "Library"), filepath.Join(home, "Library", "Keychains")} {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v", d, fi.Mode(), err)
		}
		if uid, _ := fileOwner(fi); os.Geteuid() == 0 && uid != 507 {
			t.Errorf("%s owned by %d", d, uid)
		}
	}
	m.wantKeychain(t, "frank", frankPW)
}

// A user who points ~/Library/Keychains elsewhere does not get the daemon
// to move files there.
func TestKeychainRefusesSymlinkedDirectory(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	home := m.user(t, "alice").Home
	elsewhere := t.TempDir()
	kcDir := filepath.Join(home, "Library", "Keychains")
	if err := os.Rename(kcDir, filepath.Join(home, "Library", "Keychains.real")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, kcDir); err != nil {
		t.Fatal(err)
	}
	if _, err := NewKeychains(m.r).MoveAside(t.Context(), m.account(t, "alice")); err == nil || errors.Is(err, ErrKeychainMissing) {
		t.Errorf("MoveAside through a symlink: %v", err)
	}
}

// As root, security run as one user cannot read another user's keychain,
// as on macOS (file permissions).
func TestKeychainOtherUsersFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as two simulated users")
	}
	t.Parallel()
	m := newMac(t, testSpec())
	acc := NewAccounts(m.r)
	bob, err := acc.Lookup(t.Context(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := m.sim.LoginKeychainPath("alice")
	res, err := m.r.Run(t.Context(), Cmd{Tool: Security, Args: []string{"unlock-keychain", p}, Stdin: []byte(alicePW + "\n"), As: bob.Credential()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Exit == 0 {
		t.Fatal("bob unlocked alice's keychain")
	}
	if _, msg := parseSecurityError(string(res.Stderr)); msg != "UNIX[Permission denied]" {
		t.Errorf("stderr = %q", res.Stderr)
	}
	invs, _ := m.sim.Invocations()
	last := invs[len(invs)-1]
	if last.UID != 503 || last.EUID != 503 || last.GID != 20 || last.Env["HOME"] != bob.Home {
		t.Errorf("ran as %+v", last)
	}
}

func TestKeychainFaults(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	kc := NewKeychains(m.r)
	ctx := t.Context()
	// security claims success but changed nothing: observation catches it.
	if err := m.sim.AddFault(macsim.Fault{Tool: "security", Verb: "set-keychain-password", Fail: " ", Exit: 0, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := kc.Rekey(ctx, m.account(t, "alice"), []byte(alicePW), []byte("Alice-new-pass-2")); !errors.Is(err, ErrNotApplied) {
		t.Errorf("Rekey with a silent failure: %v", err)
	}
	if err := m.sim.AddFault(macsim.Fault{Tool: "security", Verb: "unlock-keychain", Fail: "security: SecKeychainUnlock x: User interaction is not allowed.", Exit: 36, Count: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := kc.Opens(ctx, m.account(t, "alice"), []byte(alicePW))
	var te *ToolError
	if !errors.Is(err, ErrToolFailed) || !errors.As(err, &te) || te.Message != "User interaction is not allowed." {
		t.Errorf("Opens with errSecInteractionNotAllowed: %v", err)
	}
	if regexp.MustCompile(`Alice-pass`).MatchString(m.log.String()) {
		t.Error("password in the log")
	}
}

// Every keychain verdict holds whatever the sessions' unlock state
// (macos-tools.md §5.8): with the login keychain unlocked in alice's GUI
// session (from login), in lockstepd's own session (here, the test's), or in
// both, the right password opens it and a wrong one never does; the check
// leaves it locked in lockstepd's session and alice's session as it was.
func TestKeychainVerdictsWhateverTheSession(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		gui, system  bool
		acceptsAny   bool
		wantUntrusty bool
	}{
		{name: "locked everywhere"},
		{name: "unlocked in the GUI session", gui: true},
		{name: "unlocked in lockstepd's session", system: true},
		{name: "unlocked in both", gui: true, system: true},
		{name: "a macOS that accepts any password", gui: true, acceptsAny: true, wantUntrusty: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sp := testSpec()
			if !tc.gui {
				sp.ConsoleUser = ""
			}
			m := newMac(t, sp)
			alice := m.account(t, "alice")
			path := loginKeychainPath(alice)
			if tc.system {
				if err := m.sim.RunTool("security", []string{"unlock-keychain", path}, []byte(alicePW+"\n")); err != nil {
					t.Fatal(err)
				}
			}
			if tc.acceptsAny {
				if err := m.sim.SetQuirk("unlock-accepts-any", "on"); err != nil {
					t.Fatal(err)
				}
			}
			kc := NewKeychains(m.r)
			ctx := t.Context()
			right, rerr := kc.Opens(ctx, alice, []byte(alicePW))
			wrong, werr := kc.Opens(ctx, alice, []byte("Wrong-pass-1"))
			if tc.wantUntrusty {
				if !errors.Is(rerr, ErrCannotVerify) || !errors.Is(werr, ErrCannotVerify) {
					t.Fatalf("verdicts on a Mac that takes any password: %v, %v; want ErrCannotVerify", rerr, werr)
				}
				return
			}
			if rerr != nil || !right {
				t.Errorf("right password: %t %v", right, rerr)
			}
			if werr != nil || wrong {
				t.Errorf("a wrong password was taken as opening the keychain: %t %v", wrong, werr)
			}
			if ok, _ := m.sim.UnlockedIn(macsim.SystemSession, path); ok {
				t.Error("the check left the keychain unlocked in lockstepd's session")
			}
			if ok, _ := m.sim.UnlockedIn(macsim.GUISession(502), path); ok != tc.gui {
				t.Errorf("alice's GUI session: unlocked %t, want %t as before", ok, tc.gui)
			}
			// A re-key with a wrong old password is refused whatever was
			// unlocked; with the right one it verifies both passwords.
			if err := kc.Rekey(ctx, alice, []byte("Wrong-pass-1"), []byte("Alice-new-pass-2")); !errors.Is(err, ErrKeychainWrongPassword) {
				t.Errorf("re-key with a wrong old password: %v", err)
			}
			if err := kc.Rekey(ctx, alice, []byte(alicePW), []byte("Alice-new-pass-2")); err != nil {
				t.Fatalf("re-key: %v", err)
			}
			m.wantKeychain(t, "alice", "Alice-new-pass-2")
			if ok, _ := m.sim.UnlockedIn(macsim.GUISession(502), path); ok != tc.gui {
				t.Errorf("the re-key changed alice's GUI session: unlocked %t", ok)
			}
			m.noSecrets(t, alicePW, "Wrong-pass-1", "Alice-new-pass-2")
		})
	}
}

// A forgotten-password reset moves the Local Items folder aside too, beside
// the login keychain, and tells where.
func TestKeychainMoveAsideLocalItems(t *testing.T) {
	t.Parallel()
	sp := testSpec()
	sp.Users[1].LocalItems = true
	m := newMac(t, sp)
	kc := NewKeychains(m.r)
	kc.now = func() time.Time { return time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) }
	alice := m.account(t, "alice")
	dir := filepath.Join(alice.Home, "Library", "Keychains")
	var uuid string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			uuid = e.Name()
		}
	}
	if !localItemsName.MatchString(uuid) {
		t.Fatalf("no Local Items folder in %v", entries)
	}
	mv, err := kc.MoveAside(t.Context(), alice)
	if err != nil {
		t.Fatal(err)
	}
	wantLI := filepath.Join(dir, uuid+"_renamed_20261201T090000Z")
	if mv.Login != filepath.Join(dir, "login_renamed_20261201T090000Z.keychain-db") || len(mv.LocalItems) != 1 || mv.LocalItems[0] != wantLI {
		t.Fatalf("moved = %+v", mv)
	}
	if b, err := os.ReadFile(filepath.Join(wantLI, "keychain-2.db")); err != nil || !strings.Contains(string(b), "alice") {
		t.Fatalf("Local Items content after the move: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, uuid)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Local Items still in place: %v", err)
	}
	// A second folder of the same name later is never overwritten.
	if err := os.Mkdir(filepath.Join(dir, uuid), 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(filepath.Join(dir, uuid), 502, 20); err != nil {
			t.Fatal(err)
		}
	}
	mv, err = kc.MoveAside(t.Context(), alice)
	if err != nil || mv.Login != "" || len(mv.LocalItems) != 1 || mv.LocalItems[0] != wantLI+"_2" {
		t.Fatalf("second move = %+v %v", mv, err)
	}
}
