package macsim_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lockstep-dev/lockstep/macsim"
	"github.com/lockstep-dev/lockstep/macsim/macsimtest"
)

// asAlice runs a tool as alice where the test may switch users (root); as a
// normal user it runs as the test's own uid, which owns the files.
func asAlice() *syscall.Credential {
	if os.Geteuid() != 0 {
		return nil
	}
	return &syscall.Credential{Uid: 502, Gid: 20}
}

func unlocked(t *testing.T, sim *macsim.Sim, id, path string) bool {
	t.Helper()
	ok, err := sim.UnlockedIn(id, path)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// The unlock state belongs to a security session (macos-tools.md §5.8): the
// console user's login keychain is unlocked in their GUI session from login;
// a tool run by this test is in the system session, as lockstepd's are;
// unlock-keychain on a keychain already unlocked in the caller's session
// takes any password; lock-keychain locks it in the caller's session only;
// children share their parent's session and setsid does not change it.
func TestKeychainUnlockStatePerSession(t *testing.T) {
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	path, err := sim.LoginKeychainPath("alice")
	if err != nil {
		t.Fatal(err)
	}
	gui := macsim.GUISession(502)
	if !unlocked(t, sim, gui, path) || unlocked(t, sim, macsim.SystemSession, path) {
		t.Fatal("after login the keychain must be unlocked in alice's GUI session only")
	}
	cred := asAlice()
	// Locked in the system session: a wrong password is refused, the right
	// one unlocks it there.
	if r := tool(t, sim, cred, "", "security", "unlock-keychain", "-p", "wrong-pw", path); r.exit != 51 {
		t.Fatalf("wrong password on a locked keychain: %+v", r)
	}
	if r := tool(t, sim, cred, "alice-pw-1\n", "security", "unlock-keychain", path); r.exit != 0 {
		t.Fatalf("right password: %+v", r)
	}
	if !unlocked(t, sim, macsim.SystemSession, path) {
		t.Fatal("not unlocked in the system session")
	}
	// Now any password "opens" it, in this session.
	if r := tool(t, sim, cred, "", "security", "unlock-keychain", "-p", "wrong-pw", path); r.exit != 0 {
		t.Fatalf("wrong password on an unlocked keychain: %+v (securityd does nothing when unlocked)", r)
	}
	// lock-keychain locks it in this session only.
	if r := tool(t, sim, cred, "", "security", "lock-keychain", path); r.exit != 0 {
		t.Fatalf("lock-keychain: %+v", r)
	}
	if unlocked(t, sim, macsim.SystemSession, path) || !unlocked(t, sim, gui, path) {
		t.Fatal("lock-keychain must lock the caller's session only")
	}
	if r := tool(t, sim, cred, "", "security", "unlock-keychain", "-p", "wrong-pw", path); r.exit != 51 {
		t.Fatalf("wrong password after lock: %+v", r)
	}
	// In alice's GUI session (launchctl asuser), through a child that
	// called setsid(2), the keychain is unlocked: any password passes there.
	security := filepath.Join(sim.ToolsDir(), "security")
	if r := tool(t, sim, nil, "", "launchctl", "asuser", "502", "/usr/bin/setsid", "--wait", security, "unlock-keychain", "-p", "wrong-pw", path); r.exit != 0 {
		t.Fatalf("wrong password in the GUI session: %+v", r)
	}
	recs, _ := sim.Invocations()
	last := recs[len(recs)-1]
	if last.Tool != "security" || last.Session != gui {
		t.Fatalf("the child of launchctl asuser ran in %q: %+v", last.Session, last)
	}
}

func TestLaunchctlAsuserNeedsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: run as a uid that is not the simulated superuser")
	}
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	r := tool(t, sim, &syscall.Credential{Uid: 503, Gid: 20}, "", "launchctl", "asuser", "502", "/bin/true")
	if r.exit == 0 || !strings.Contains(r.stderr, "requires root") {
		t.Fatalf("launchctl asuser as bob: %+v", r)
	}
}

// set-keychain-password locks first, so a wrong old password is refused
// even on an unlocked keychain; a re-key keeps the master key, so a session
// that had it unlocked keeps it unlocked; a new keychain at the same path
// is another keychain and starts locked elsewhere.
func TestKeychainRekeyAndCreateAcrossSessions(t *testing.T) {
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	path, _ := sim.LoginKeychainPath("alice")
	cred := asAlice()
	if r := tool(t, sim, cred, "alice-pw-1\n", "security", "unlock-keychain", path); r.exit != 0 {
		t.Fatal(r)
	}
	if r := tool(t, sim, cred, "wrong-pw\nnew-pw-22\nnew-pw-22\n", "security", "set-keychain-password", path); r.exit != 51 {
		t.Fatalf("re-key with a wrong old password on an unlocked keychain: %+v", r)
	}
	if r := tool(t, sim, cred, "alice-pw-1\nnew-pw-22\nnew-pw-22\n", "security", "set-keychain-password", path); r.exit != 0 {
		t.Fatalf("re-key: %+v", r)
	}
	if !unlocked(t, sim, macsim.GUISession(502), path) {
		t.Fatal("a re-key locked the user's session")
	}
	if !unlocked(t, sim, macsim.SystemSession, path) {
		t.Fatal("a re-key leaves the keychain unlocked in the caller's session")
	}
	// Replace the file: the GUI session's unlock was for the old keychain.
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	if r := tool(t, sim, cred, "fresh-pw-3\nfresh-pw-3\n", "security", "create-keychain", path); r.exit != 0 {
		t.Fatalf("create-keychain: %+v", r)
	}
	if !unlocked(t, sim, macsim.SystemSession, path) {
		t.Fatal("a new keychain is unlocked in the session that made it")
	}
	if r := tool(t, sim, nil, "", "launchctl", "asuser", "502", filepath.Join(sim.ToolsDir(), "security"), "unlock-keychain", "-p", "wrong-pw", path); r.exit != 51 {
		t.Fatalf("the GUI session took a wrong password for a keychain it never unlocked: %+v", r)
	}
}

// security -i reads commands from stdin and reports each failing one;
// it exits with the last command's status.
func TestSecurityInteractive(t *testing.T) {
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	path, _ := sim.LoginKeychainPath("alice")
	in := "lock-keychain \"" + path + "\"\nunlock-keychain -p \"alice-pw-1\" \"" + path + "\"\nlock-keychain \"" + path + "\"\nunlock-keychain -p 'wr\"ong' \"" + path + "\"\n"
	r := tool(t, sim, asAlice(), in, "security", "-i")
	if r.exit != 51 || strings.Count(r.stderr, "unlock-keychain: returned -25293") != 1 || strings.Count(r.stderr, "SecKeychainUnlock") != 1 {
		t.Fatalf("security -i = %+v", r)
	}
	recs, _ := sim.Invocations()
	last := recs[len(recs)-1]
	if last.Verb != "interactive" || strings.Join(last.Commands, ",") != "lock-keychain,unlock-keychain,lock-keychain,unlock-keychain" ||
		strings.Contains(strings.Join(last.Argv, " "), "alice-pw-1") {
		t.Fatalf("record = %+v", last)
	}
	if err := sim.SetQuirk("unlock-accepts-any", "on"); err != nil {
		t.Fatal(err)
	}
	if r := tool(t, sim, asAlice(), in, "security", "-i"); r.exit != 0 {
		t.Fatalf("with unlock-accepts-any the control passes: %+v", r)
	}
}

// The Mac's own password rules: pwpolicy shows them, dscl -passwd and
// sysadminctl refuse a password that fails one; the must-change and lockout
// policies and accountPolicyData follow the logins.
func TestLocalPolicies(t *testing.T) {
	t.Parallel()
	sp := spec()
	sp.PasswordPolicies = []macsim.ContentPolicy{
		{ID: "com.apple.defaultpasswordpolicy.fde", Content: "policyAttributePassword matches '.{4,}+'", Description: "Enter a password that is four characters or more."},
		{ID: "ProfilePayload:6F1D:requireAlphanumeric", Content: "policyAttributePassword matches '(?=.*[0-9])(?=.*[A-Za-z]).*'", Description: "Contain at least one number and one alphabetic character."},
	}
	sp.MaxFailedLogins = 3
	sp.Users[2].MustChangeLocal = true // bob
	sim := macsimtest.New(t, bin, sp)
	r := tool(t, sim, nil, "", "pwpolicy", "-getaccountpolicies")
	if r.exit != 0 || !strings.HasPrefix(r.stdout, "Getting global account policies\n<?xml") ||
		!strings.Contains(r.stdout, "(?=.*[0-9])(?=.*[A-Za-z]).*") || !strings.Contains(r.stdout, "policyAttributeMaximumFailedAuthentications") {
		t.Fatalf("pwpolicy = %+v", r)
	}
	if r := tool(t, sim, nil, "", "pwpolicy", "-u", "alice", "-getaccountpolicies"); !strings.HasPrefix(r.stdout, "Getting account policies for user <alice>\n") {
		t.Fatalf("pwpolicy -u = %+v", r)
	}
	before := policyData(t, sim, "alice")
	if r := tool(t, sim, nil, "", "dscl", ".", "-passwd", "/Users/alice", "alice-pw-1", "lettersonly"); r.exit != 85 ||
		!strings.Contains(r.stdout, "eDSAuthPasswordQualityCheckFailed") {
		t.Fatalf("passwd with a password the policy refuses: %+v", r)
	}
	if r := tool(t, sim, nil, "", "dscl", ".", "-passwd", "/Users/alice", "alice-pw-1", "letters-and-1"); r.exit != 0 {
		t.Fatalf("passwd: %+v", r)
	}
	if after := policyData(t, sim, "alice"); after == before || !strings.Contains(after, "passwordLastSetTime") {
		t.Fatalf("accountPolicyData did not record the change:\n%s\n%s", before, after)
	}
	// bob's password is right but must be changed.
	if r := tool(t, sim, nil, "bob-pw-11\n", "dscl", "/Local/Default", "-authonly", "bob"); r.exit != 81 || !strings.Contains(r.stderr, "eDSAuthNewPasswordRequired") {
		t.Fatalf("authonly of a must-change account: %+v", r)
	}
	// Three failed logins lock alice out, even with the right password.
	for range 3 {
		tool(t, sim, nil, "wrong-pw\n", "dscl", "/Local/Default", "-authonly", "alice")
	}
	if r := tool(t, sim, nil, "letters-and-1\n", "dscl", "/Local/Default", "-authonly", "alice"); r.exit != 87 {
		t.Fatalf("authonly after 3 failures: %+v", r)
	}
	recs, _ := sim.Invocations()
	failures := 0
	for _, rec := range recs {
		failures += len(rec.AuthFailures)
	}
	if failures != 4 {
		t.Fatalf("recorded failed logins = %d, want 4", failures)
	}
}

func policyData(t *testing.T, sim *macsim.Sim, user string) string {
	t.Helper()
	return tool(t, sim, nil, "", "dscl", ".", "-read", "/Users/"+user, "accountPolicyData").stdout
}

// sysadminctl's prompt variants: each is recorded, in the variant's order.
func TestSysadminctlPromptVariants(t *testing.T) {
	t.Parallel()
	for variant, want := range map[string]string{
		"named":      "Enter admin password for admin:|Enter new password for bob:|Re-enter new password for bob:",
		"realname":   "Enter admin password for Local Admin:|Enter new password for bob:|Re-enter new password for bob:",
		"user-first": "Enter new password for bob:|Re-enter new password for bob:|Enter admin password for admin:",
		"generic":    "Enter admin password for admin:|New password:|Retype new password:",
		"ambiguous":  "Password:|Password:|Password:",
	} {
		sim := macsimtest.New(t, bin, spec())
		if err := sim.SetQuirk("sysadminctl-prompts", variant); err != nil {
			t.Fatal(err)
		}
		stdin := "admin-pw-1\nbob-new-pw-4\nbob-new-pw-4\n"
		if variant == "user-first" {
			stdin = "bob-new-pw-4\nbob-new-pw-4\nadmin-pw-1\n"
		}
		tool(t, sim, nil, stdin, "sysadminctl", "-adminUser", "admin", "-adminPassword", "-", "-resetPasswordFor", "bob", "-newPassword", "-")
		recs, _ := sim.Invocations()
		if got := strings.Join(recs[len(recs)-1].Prompts, "|"); got != want {
			t.Errorf("%s: prompts %q, want %q", variant, got, want)
		}
		wantPassword(t, sim, "bob", "bob-new-pw-4", true)
	}
	if err := macsimtest.New(t, bin, spec()).SetQuirk("sysadminctl-prompts", "made-up"); err == nil {
		t.Error("an unknown variant was accepted")
	}
}
