package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/macsim"
	"github.com/lockstep-dev/lockstep/macsim/macsimtest"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// 1. A change from the CLI with the TOTP code moves every place.
func TestChangeMovesEveryPlace(t *testing.T) {
	t.Parallel()
	u := newUser(t, shared, true)
	m := newMac(t, shared, u)
	old, nw := u.password, newPassword()

	r := m.cli(lines(old, nw, u.code(t)), "change", "--stdin", "--user", "alice")
	if r.code != 0 || !strings.Contains(r.stdout, text.CLIDone.S()) {
		t.Fatalf("change: %s", r)
	}
	u.password = nw
	m.places(nw, old)
	if items := m.keychainItems([]string{nw})["login.keychain-db"]; len(items) != 2 {
		t.Errorf("keychain items after the re-key: %v", items)
	}
	snap, _ := m.sim.Snapshot()
	if !snap.PrebootCurrent {
		t.Error("Preboot was not refreshed")
	}
	op := m.lastOp()
	if op.State != localapi.OpDone {
		t.Fatalf("journal: %s", op.State)
	}
	for _, s := range op.Steps {
		if s.State != localapi.StepDone {
			t.Errorf("journal step %s = %s (%+v)", s.Name, s.State, s.Text)
		}
	}
	a := m.account()
	if a.State != localapi.StateInSync {
		t.Fatalf("status = %s (%+v)", a.State, a.Reason)
	}
	// The directory knows the Mac holds the new version.
	du, err := shared.admin.User(t.Context(), u.name)
	if err != nil {
		t.Fatal(err)
	}
	// (The other device is the tests' probe, linked when it checked the
	// password.)
	i := slices.IndexFunc(du.Devices, func(d admin.Binding) bool { return d.LocalName == "alice" })
	if i < 0 || du.Devices[i].SyncedVersion != du.PasswordVersion {
		t.Fatalf("directory's view of the device: %+v (password version %d)", du.Devices, du.PasswordVersion)
	}
	assertNoSecrets(t, m, u, old, nw)
}

// 2. An admin's temporary reset shows as "sync needed" on the watch stream
// within a second; sync then a required change to a permanent password.
func TestAdminResetTemporarySyncThenChange(t *testing.T) {
	t.Parallel()
	u := newUser(t, shared, true)
	m := newMac(t, shared, u)
	old, temp, perm := u.password, newPassword(), newPassword()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	seen := make(chan time.Time, 1)
	ready := make(chan struct{})
	go m.client.Watch(ctx, func(ev localapi.Event) error {
		if ev.Type != localapi.EventStatus || ev.Status == nil {
			return nil
		}
		select {
		case <-ready:
		default:
			close(ready) // the first event is the current status
			return nil
		}
		for _, a := range ev.Status.Accounts {
			if a.LocalUser == "alice" && a.State == localapi.StateSyncNeeded {
				select {
				case seen <- time.Now():
				default:
				}
			}
		}
		return nil
	})
	<-ready
	resetAt := time.Now()
	if _, err := shared.admin.ResetPassword(t.Context(), u.name, admin.ResetRequest{Password: protocol.Secret(temp), Temporary: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-seen:
		if d := at.Sub(resetAt); d > time.Second {
			t.Fatalf("sync needed reached the watch stream after %v, want within 1s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reset never reached the watch stream")
	}
	if a := m.account(); a.Reason.Code != codes.ReasonResetTemporary {
		t.Errorf("reason = %+v", a.Reason)
	}

	r := m.cli(lines(old, temp), "sync", "--stdin", "--user", "alice")
	if r.code != 0 || !strings.Contains(r.stderr, text.CLITemporaryLater.S()) {
		t.Fatalf("sync: %s", r)
	}
	m.places(temp, old)
	if a := m.account(); a.State != localapi.StateTemporary {
		t.Fatalf("after sync: %s", a.State)
	}
	r = m.cli(lines(temp, perm, u.code(t)), "change", "--stdin", "--user", "alice")
	if r.code != 0 {
		t.Fatalf("change from the temporary password: %s", r)
	}
	m.places(perm, old, temp)
	if a := m.account(); a.State != localapi.StateInSync {
		t.Fatalf("final state %s", a.State)
	}
	assertNoSecrets(t, m, u, old, temp, perm)
}

// 2b. The same chain in one command: sync, then the change it requires.
func TestTemporarySyncChainsIntoChange(t *testing.T) {
	t.Parallel()
	u := newUser(t, shared, false)
	m := newMac(t, shared, u)
	old, temp, perm := u.password, newPassword(), newPassword()
	if _, err := shared.admin.ResetPassword(t.Context(), u.name, admin.ResetRequest{Password: protocol.Secret(temp), Temporary: true}); err != nil {
		t.Fatal(err)
	}
	m.waitState(localapi.StateSyncNeeded)
	r := m.cli(lines(old, temp, perm), "sync", "--stdin", "--user", "alice")
	if r.code != 0 || strings.Count(r.stdout, "Done: every place") != 2 {
		t.Fatalf("sync+change: %s", r)
	}
	m.places(perm, old, temp)
}

// 3. Forgotten previous password, through the service account.
func TestForgotPreviousPassword(t *testing.T) {
	t.Parallel()
	u := newUser(t, shared, false)
	m := newMac(t, shared, u)
	old, nw := u.password, newPassword()
	before := m.keychainItems([]string{old})["login.keychain-db"]
	if len(before) == 0 {
		t.Fatal("the simulated keychain has no items to lose")
	}

	// Without the service account the path is refused, clearly.
	if _, err := shared.admin.ResetPassword(t.Context(), u.name, admin.ResetRequest{Password: protocol.Secret(nw)}); err != nil {
		t.Fatal(err)
	}
	m.waitState(localapi.StateSyncNeeded)
	r := m.cli(lines(nw), "sync", "--forgot-previous", "--stdin", "--user", "alice")
	if r.code == 0 || !strings.Contains(r.stderr, text.ErrNoServiceAcct.S()) {
		t.Fatalf("forgot without service account: %s", r)
	}

	r = m.cli(lines(adminPW), "service-account", "setup", "--admin", "admin", "--stdin")
	if r.code != 0 || !strings.Contains(r.stdout, text.ServiceReady.S()) {
		t.Fatalf("service-account setup: %s", r)
	}
	if st := m.status(); !st.ServiceAccount.Usable {
		t.Fatalf("service account status %+v", st.ServiceAccount)
	}
	// Alice had taken her login keychain out of her search list.
	if err := setSearchList(m); err != nil {
		t.Fatal(err)
	}
	r = m.cli(lines(nw), "sync", "--forgot-previous", "--stdin", "--user", "alice")
	if r.code != 0 {
		t.Fatalf("forgot-previous sync: %s", r)
	}
	m.places(nw, old)
	// The new login keychain is in her search list, as her session sees
	// it; no keychain preference was set (login-keychain -s sets nothing
	// on a Mac, and the default is the login keychain by its path).
	login, err := m.sim.LoginKeychainPath("alice")
	if err != nil {
		t.Fatal(err)
	}
	if got := searchList(t, m); !slices.Equal(got, []string{login}) {
		t.Errorf("alice's search list after the sync = %q, want her new login keychain", got)
	}
	for _, su := range mustSnapshot(t, m).Users {
		if su.Name == "alice" && su.DefaultKeychain != "" {
			t.Errorf("default keychain preference set to %q", su.DefaultKeychain)
		}
	}
	// The old keychain is still there under its new name, with its items,
	// and still opens with the old password; the user was told where.
	items := m.keychainItems([]string{old})
	var moved string
	for name, its := range items {
		if strings.HasPrefix(name, "login_renamed_") {
			moved = name
			if !slices.Equal(its, before) {
				t.Errorf("moved keychain items = %v, want %v", its, before)
			}
		}
	}
	if moved == "" {
		t.Fatalf("no moved-aside keychain opens with the old password: %v", items)
	}
	if !strings.Contains(r.stdout, moved) {
		t.Errorf("the user was not told where the old keychain is:\n%s", r.stdout)
	}
	// The Local Items folder, sealed by the same old password, was moved
	// aside beside it (never deleted), and the user told where.
	home := ""
	for _, su := range mustSnapshot(t, m).Users {
		if su.Name == "alice" {
			home = su.Home
		}
	}
	kcDir := filepath.Join(home, "Library", "Keychains")
	entries, _ := os.ReadDir(kcDir)
	var localItems []string
	for _, e := range entries {
		if e.IsDir() {
			localItems = append(localItems, e.Name())
		}
	}
	if len(localItems) != 1 || !strings.Contains(localItems[0], "_renamed_") || !strings.Contains(r.stdout, filepath.Join(kcDir, localItems[0])) {
		t.Errorf("Local Items after a forgotten-password sync: %v; told:\n%s", localItems, r.stdout)
	}
	assertNoSecrets(t, m, u, old, nw, adminPW)
}

// 4. Refusals: each a clear error, nothing changed anywhere.
func TestRefusalsChangeNothing(t *testing.T) {
	t.Parallel()
	u := newUser(t, shared, true)
	m := newMac(t, shared, u)
	old := u.password
	unchanged := func(what string) {
		t.Helper()
		m.places(old)
		if a := m.account(); a.State == localapi.StateSyncNeeded {
			t.Fatalf("%s left the account %s", what, a.State)
		}
	}

	// Refusals that stop before the directory never use the code, so these
	// pass a dummy one and keep real codes for the cases that need them.
	r := m.cli(lines("Not-My-Passw0rd", newPassword(), "111111"), "change", "--stdin", "--user", "alice")
	if r.code != 1 || !strings.Contains(r.stderr, text.ErrWrongCurrent.S()) {
		t.Fatalf("wrong current: %s", r)
	}
	unchanged("a wrong current password")

	r = m.cli(lines(old, newPassword(), "000000"), "change", "--stdin", "--user", "alice")
	if r.code != 1 || !strings.Contains(r.stderr, text.ErrMFAInvalid.S()) {
		t.Fatalf("wrong code: %s", r)
	}
	unchanged("a wrong code")

	r = m.cli(lines(old, "short"), "change", "--stdin", "--user", "alice")
	if r.code != 1 || !strings.Contains(r.stderr, text.CLIPolicyUnmet.S()) || !strings.Contains(r.stderr, text.RuleMinLength.N(12)) {
		t.Fatalf("policy: %s", r)
	}
	unchanged("a policy violation")

	// A code that worked once is refused the second time.
	code := u.code(t)
	mid := newPassword()
	if r = m.cli(lines(old, mid, code), "change", "--stdin", "--user", "alice"); r.code != 0 {
		t.Fatalf("change: %s", r)
	}
	old = mid
	r = m.cli(lines(old, newPassword(), code), "change", "--stdin", "--user", "alice")
	if r.code != 1 || !strings.Contains(r.stderr, text.ErrMFAReplayed.S()) {
		t.Fatalf("replayed code: %s", r)
	}
	unchanged("a replayed code")

	// Locked by failures elsewhere (another of the user's devices): a
	// clear refusal.
	probe := probeSession(t, shared, u.name)
	for i := 0; i < 5; i++ {
		probe.Request(t.Context(), protocol.TypeVerifyPassword, "", protocol.VerifyPasswordRequest{User: u.name, Password: protocol.Secret("wrong-guess")}, nil, 10*time.Second)
	}
	m.waitState(localapi.StateLocked)
	r = m.cli(lines(old, newPassword(), "111111"), "change", "--stdin", "--user", "alice")
	locked := text.ErrLockedPlain.S()
	if a := m.account(); a.LockedUntil != nil {
		locked = text.ErrLocked.S(map[string]any{"Until": text.Clock(*a.LockedUntil)})
	}
	if r.code != 1 || !strings.Contains(r.stderr, locked) {
		t.Fatalf("locked: %s", r)
	}
	if _, err := shared.admin.Unlock(t.Context(), u.name); err != nil {
		t.Fatal(err)
	}
	m.waitState(localapi.StateInSync)
	unchanged("a locked account")
}

// 4b. The directory offline: a clear error, nothing changed; back online,
// the change works.
func TestDirectoryOffline(t *testing.T) {
	t.Parallel()
	data, err := os.MkdirTemp("", "lse-dir-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(data)
	d, err := startDirectory(data, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop()
	u := newUser(t, d, false)
	m := newMac(t, d, u)
	old := u.password
	d.stop()
	m.eventually("lockstepd to see the directory offline", 30*time.Second, func() bool {
		return m.status().Directory.State != localapi.ConnConnected
	})
	r := m.cli(lines(old, newPassword()), "change", "--stdin", "--user", "alice")
	if r.code != 4 || !strings.Contains(r.stderr, text.ErrOffline.S()) {
		t.Fatalf("offline: %s", r)
	}
	if ok, _ := m.sim.CheckPassword("alice", []byte(old)); !ok {
		t.Fatal("the Mac account changed while offline")
	}
	d.restart(t)
	m.waitConnected()
	nw := newPassword()
	if r = m.cli(lines(old, nw), "change", "--stdin", "--user", "alice"); r.code != 0 {
		t.Fatalf("change once back: %s", r)
	}
	m.places(nw, old)
}

// 7. Peer credentials on the real socket: bob cannot read or act on
// alice's account.
func TestOtherUsersCannotTouchAlice(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("needs root to run the CLI as the simulated users")
	}
	u := newUser(t, shared, false)
	m := newMac(t, shared, u)
	const aliceUID, bobUID = 502, 503

	r := m.cliAs(aliceUID, "", "status", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"local_user": "alice"`) || strings.Contains(r.stdout, `"local_user": "bob"`) {
		t.Fatalf("alice's status: %s", r)
	}
	r = m.cliAs(bobUID, "", "status", "--json")
	if strings.Contains(r.stdout, `"local_user": "alice"`) || strings.Contains(r.stdout, u.name) {
		t.Fatalf("bob sees alice: %s", r)
	}
	// bob is not in the directory; the directory answers as for a user the
	// Mac is not linked to, and bob is told how to link.
	if !strings.Contains(r.stdout, `"state": "not_linked"`) || !strings.Contains(r.stdout, `"code": "reason.not_linked"`) || !strings.Contains(r.stdout, `"message": "`+text.ReasonNotLinked.S()+`"`) {
		t.Errorf("bob's status does not say his account is not linked: %s", r)
	}
	nw := newPassword()
	r = m.cliAs(bobUID, lines(u.password, nw), "change", "--stdin", "--user", "alice")
	if r.code == 0 || !strings.Contains(r.stderr, text.ErrForbiddenOther.S(map[string]any{"user": "bob"})) {
		t.Fatalf("bob changing alice: %s", r)
	}
	r = m.cliAs(bobUID, lines(u.password, nw), "sync", "--stdin", "--user", "alice")
	if r.code == 0 {
		t.Fatalf("bob syncing alice: %s", r)
	}
	r = m.cliAs(bobUID, lines(adminPW), "service-account", "setup", "--admin", "admin", "--stdin")
	if r.code == 0 || !strings.Contains(r.stderr, text.ErrForbiddenRoot.S()) {
		t.Fatalf("bob setting up the service account: %s", r)
	}
	m.places(u.password)
	// alice acts on her own account without naming it.
	r = m.cliAs(aliceUID, lines(u.password, nw), "change", "--stdin")
	if r.code != 0 {
		t.Fatalf("alice's own change: %s", r)
	}
	m.places(nw, u.password)
}

// 8. The directory restarts: every agent reconnects by itself, and resets
// made while an agent was away arrive.
func TestDirectoryRestartReconnectsAndDeliversMissed(t *testing.T) {
	t.Parallel()
	data, err := os.MkdirTemp("", "lse-dir-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(data)
	d, err := startDirectory(data, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop()
	u1, u2 := newUser(t, d, false), newUser(t, d, false)
	m1, m2 := newMac(t, d, u1), newMac(t, d, u2)

	d.restart(t)
	m1.waitConnected()
	m2.waitConnected()
	if _, err := d.admin.ResetPassword(t.Context(), u1.name, admin.ResetRequest{Password: protocol.Secret(newPassword())}); err != nil {
		t.Fatal(err)
	}
	m1.waitState(localapi.StateSyncNeeded)

	// m2's daemon is down while its user is reset, and the directory
	// restarts meanwhile: the reset still arrives.
	m2.stop()
	if _, err := d.admin.ResetPassword(t.Context(), u2.name, admin.ResetRequest{Password: protocol.Secret(newPassword()), Temporary: true}); err != nil {
		t.Fatal(err)
	}
	d.restart(t)
	m2.start()
	m2.waitState(localapi.StateSyncNeeded)
	if a := m2.account(); !a.Temporary {
		t.Fatalf("missed temporary reset: %+v", a)
	}
}

// assertNoSecrets checks that no password, TOTP secret or code reached an
// argv or environment the simulator recorded, a log line, the journal or
// any state file of lockstepd (its secret store aside, which holds only the
// device key and the service account's password, by design).
func assertNoSecrets(t *testing.T, m *mac, u *user, passwords ...string) {
	t.Helper()
	secrets := append([]string{}, passwords...)
	if u.secret != "" {
		secrets = append(secrets, u.secret)
	}
	var raw [][]byte
	for _, s := range secrets {
		raw = append(raw, []byte(s))
	}
	invs := macsimtest.AssertNoSecrets(t, m.sim, raw...)
	if len(invs) == 0 {
		t.Fatal("the simulator recorded no invocation")
	}
	stdinFed := false
	for _, inv := range invs {
		stdinFed = stdinFed || inv.StdinBytes > 0 || len(inv.Prompts) > 0
	}
	if !stdinFed {
		t.Error("no secret went over stdin or a terminal: was anything checked?")
	}
	logs := m.logText() + m.dir.log.String()
	// The status file MDM reads, which every local user can read.
	if b, err := os.ReadFile(m.statusPlist); err == nil {
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("a secret is in the status file %s", m.statusPlist)
			}
		}
	} else {
		t.Errorf("no status file: %v", err)
	}
	filepath.WalkDir(m.stateDir, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			if de != nil && de.IsDir() && de.Name() == "secrets" {
				return filepath.SkipDir
			}
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("a secret is in %s", p)
			}
		}
		return nil
	})
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a secret is in the logs")
		}
	}
}

// The doctor finds what is out of step and says how to fix it; the
// diagnostics bundle is useful and holds no secret.
func TestDoctorAndDiagnose(t *testing.T) {
	t.Parallel()
	u := newUser(t, shared, false)
	m := newMac(t, shared, u)

	r := m.cli(lines(u.password), "doctor", "--password", "--stdin", "--user", "alice")
	if r.code != 0 || strings.Count(r.stdout, "✓") < 4 {
		t.Fatalf("doctor on a healthy Mac: %s", r)
	}
	// The keychain falls behind (a change made outside Lockstep).
	path, err := m.sim.LoginKeychainPath("alice")
	if err != nil {
		t.Fatal(err)
	}
	other := newPassword()
	if err := rekeyKeychain(m, path, u.password, other); err != nil {
		t.Fatal(err)
	}
	r = m.cli(lines(u.password), "doctor", "--password", "--stdin", "--user", "alice")
	if r.code != 1 || !strings.Contains(r.stdout, text.DoctorKCWrong.S()) || !strings.Contains(r.stdout, text.FixSyncKeychain.S()) {
		t.Fatalf("doctor with the keychain behind: %s", r)
	}
	// The sync the doctor suggests, with the keychain's password as the
	// previous one, brings it back.
	r = m.cli(lines(other, u.password), "sync", "--stdin", "--user", "alice")
	if r.code != 0 {
		t.Fatalf("sync: %s", r)
	}
	m.places(u.password, other)

	out := filepath.Join(t.TempDir(), "bundle.json")
	r = m.cli("", "diagnose", "--out", out)
	if r.code != 0 {
		t.Fatalf("diagnose: %s", r)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"operations"`, `"logs"`, `"config"`, `"DirectoryURL"`, `"status"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("bundle lacks %s", want)
		}
	}
	for _, secret := range []string{u.password, other, m.token} {
		if strings.Contains(string(b), secret) {
			t.Errorf("a secret is in the diagnostics bundle")
		}
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("bundle mode %v", fi.Mode())
	}
}

// rekeyKeychain changes a keychain's password behind Lockstep's back, as the
// user would with Keychain Access, through the simulated security tool.
func rekeyKeychain(m *mac, path, old, new string) error {
	cmd := exec.Command(filepath.Join(m.sim.ToolsDir(), "security"), "set-keychain-password", path)
	cmd.Stdin = strings.NewReader(lines(old, new, new))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 502, Gid: 20}
	} else {
		// Without root it cannot become alice; macsim takes a step that
		// carries her USER and LOGNAME as hers (macsim's actAsNamedUser).
		cmd.Env = []string{"PATH=/usr/bin:/bin", "USER=alice", "LOGNAME=alice", "HOME=" + filepath.Dir(filepath.Dir(filepath.Dir(path)))}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("security set-keychain-password: %v: %s", err, out)
	}
	return nil
}

// setSearchList sets alice's keychain search list in her own session, as
// she would with Keychain Access: `launchctl asuser 502 sudo -u alice
// security list-keychains -d user -s PATH...` (facts K1-K4).
func setSearchList(m *mac, paths ...string) error {
	tools := m.sim.ToolsDir()
	args := append([]string{"asuser", "502", filepath.Join(tools, "sudo"), "-u", "alice", filepath.Join(tools, "security"), "list-keychains", "-d", "user", "-s"}, paths...)
	cmd := exec.Command(filepath.Join(tools, "launchctl"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("set alice's search list: %v: %s", err, out)
	}
	return nil
}

// searchList is alice's keychain search list as her session sees it.
func searchList(t testing.TB, m *mac) []string {
	t.Helper()
	for _, u := range mustSnapshot(t, m).Users {
		if u.Name == "alice" {
			return u.SearchList
		}
	}
	t.Fatal("no alice on the simulated Mac")
	return nil
}

func mustSnapshot(t testing.TB, m *mac) *macsim.Snapshot {
	t.Helper()
	snap, err := m.sim.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// The Mac's own password rules are shown beside the directory's and
// checked before the directory changes: a password the directory takes but
// the Mac would refuse never reaches the directory.
func TestMacPolicyCheckedBeforeTheDirectory(t *testing.T) {
	t.Parallel()
	u := newUser(t, shared, false)
	spec := macSpec(u.password)
	spec.PasswordPolicies = []macsim.ContentPolicy{
		{ID: "com.apple.defaultpasswordpolicy.fde", Content: "policyAttributePassword matches '.{4,}+'", Description: "Enter a password that is four characters or more."},
		{ID: "ProfilePayload:0B1C:minLength", Content: "policyAttributePassword matches '.{24,}'", Description: "Contain at least 24 characters."},
	}
	m := newMacWith(t, shared, u, spec)
	r := m.cli("", "policy", "--user", "alice")
	if r.code != 0 || !strings.Contains(r.stdout, text.MacRulesHeading.S()) || !strings.Contains(r.stdout, "Contain at least 24 characters.") {
		t.Fatalf("policy: %s", r)
	}
	short := newPassword() // meets the directory's policy, not the Mac's
	r = m.cli(lines(u.password, short), "change", "--stdin", "--user", "alice")
	if r.code != 1 || !strings.Contains(r.stderr, "Contain at least 24 characters.") {
		t.Fatalf("change to a password the Mac refuses: %s", r)
	}
	if !m.dirAccepts(u.password) {
		t.Fatal("the directory changed")
	}
	m.places(u.password)
	long := short + "-long-enough-for-the-mac"
	if r := m.cli(lines(u.password, long), "change", "--stdin", "--user", "alice"); r.code != 0 {
		t.Fatalf("change meeting both policies: %s", r)
	}
	m.places(long, u.password)
}

// Accounts Lockstep must not manage are refused, saying why and what IT
// should do, before anything changes.
func TestUnmanagedAccountsRefused(t *testing.T) {
	t.Parallel()
	u := newUser(t, shared, false)
	spec := macSpec(u.password)
	spec.Users = append(spec.Users,
		macsim.UserSpec{Name: "mona", UID: 510, Password: u.password, MobileFrom: "/Active Directory/CORP/corp.example.com"},
		macsim.UserSpec{Name: "nate", UID: 511, Password: u.password, HomeDirectory: "<home_dir><url>smb://fs01.corp.example.com/Users</url><path>nate</path></home_dir>"})
	m := newMacWith(t, shared, u, spec)
	for name, want := range map[string]string{
		"mona": text.ErrUnmanagedMobile.S(map[string]any{"user": "mona", "node": "/Active Directory/CORP/corp.example.com"}) + "\n  → " + text.FixAskITMobile.S(),
		"nate": text.ErrUnmanagedNetwork.S(map[string]any{"user": "nate"}) + "\n  → " + text.FixAskITNetwork.S(),
	} {
		n := m.invocationCount()
		r := m.cli(lines(u.password, newPassword()), "change", "--stdin", "--user", name)
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("change of %s: %s", name, r)
		}
		for _, inv := range m.invocationsSince(n) {
			switch inv.Verb {
			case "passwd", "authonly", "resetPasswordFor", "set-keychain-password", "create-keychain", "interactive", "updatePreboot":
				t.Errorf("refusing %s still ran %s %s", name, inv.Tool, inv.Verb)
			}
		}
	}
}
