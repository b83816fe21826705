package platform

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lockstep-dev/lockstep/macsim"
)

// runHelper is the test binary re-executed as a stand-in daemon, so a fault
// can kill it mid-step.
func runHelper(kind string) int {
	r := NewRunner(Config{ToolsDir: os.Getenv("PLATFORM_TEST_TOOLS"), RunUserStepsAsSelf: os.Geteuid() != 0})
	svc := NewServiceAccount(r, NewFileStore(os.Getenv("PLATFORM_TEST_STORE")))
	switch kind {
	case "rotate":
		if err := svc.Rotate(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	return 2
}

func newService(t *testing.T, m *mac) (*ServiceAccount, *FileStore) {
	t.Helper()
	store := NewFileStore(filepath.Join(t.TempDir(), "secrets"))
	return NewServiceAccount(m.r, store), store
}

func storedPassword(t *testing.T, store *FileStore) string {
	t.Helper()
	b, err := store.Get(secretCurrent)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServiceAccountLifecycle(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	svc, store := newService(t, m)
	ctx := t.Context()

	if st, err := svc.Status(ctx); err != nil || st.Exists || st.Ready() {
		t.Fatalf("before Create: %+v %v", st, err)
	}
	if err := svc.Create(ctx, "admin", []byte(adminPW)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	st, err := svc.Status(ctx)
	if err != nil || !st.Ready() || st.UID < 401 || st.UID > 499 {
		t.Fatalf("after Create: %+v %v", st, err)
	}
	truth := m.user(t, "_lockstep")
	if !truth.Hidden || !truth.Admin || !truth.SecureToken || !truth.CryptoUser || truth.RealName != "Lockstep" || truth.Home != "/var/empty" {
		t.Errorf("service account truth = %+v", truth)
	}
	pw := storedPassword(t, store)
	if len(pw) < 43 || len(pw) > maxSecret {
		t.Errorf("stored password has %d bytes", len(pw))
	}
	m.wantPassword(t, "_lockstep", pw, true)
	m.wantFileVault(t, "_lockstep", pw, true)
	if !m.snapshot(t).PrebootCurrent {
		t.Error("Preboot not refreshed after the token grant")
	}
	fi, err := os.Stat(filepath.Join(store.Dir, secretCurrent))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode: %v %v", fi.Mode(), err)
	}
	if di, err := os.Stat(store.Dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("secret dir mode: %v %v", di.Mode(), err)
	}

	// Again: nothing to do.
	before, _ := m.sim.Invocations()
	if err := svc.Create(ctx, "admin", []byte(adminPW)); err != nil {
		t.Fatalf("second Create: %v", err)
	}
	after, _ := m.sim.Invocations()
	for _, inv := range after[len(before):] {
		if inv.Verb == "addUser" || inv.Verb == "secureTokenOn" || inv.Verb == "resetPasswordFor" {
			t.Errorf("second Create ran %s", inv.Verb)
		}
	}
	if storedPassword(t, store) != pw {
		t.Error("second Create changed the password")
	}

	// Rotate: a change with the old password keeps the token and FileVault.
	if err := svc.Rotate(ctx); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	pw2 := storedPassword(t, store)
	if pw2 == pw {
		t.Fatal("Rotate kept the password")
	}
	m.wantPassword(t, "_lockstep", pw2, true)
	m.wantPassword(t, "_lockstep", pw, false)
	m.wantFileVault(t, "_lockstep", pw2, true)
	if u := m.user(t, "_lockstep"); !u.SecureToken {
		t.Error("Rotate lost the SecureToken")
	}

	// A forgotten password: reset alice with the service account.
	if _, err := svc.ResetUserPassword(ctx, m.account(t, "alice"), []byte("Alice-reset-9")); err != nil {
		t.Fatalf("ResetUserPassword: %v", err)
	}
	m.wantPassword(t, "alice", "Alice-reset-9", true)
	m.wantFileVault(t, "alice", "Alice-reset-9", true)
	if u := m.user(t, "alice"); !u.SecureToken {
		t.Error("reset by the service account lost alice's token")
	}
	m.wantKeychain(t, "alice", alicePW) // a reset never re-keys the keychain

	invs := m.noSecrets(t, pw, pw2, adminPW, "Alice-reset-9")
	for _, inv := range invocationsOf(invs, "sysadminctl", "") {
		if inv.Verb != "secureTokenStatus" && (!inv.TTY || inv.StdinBytes == 0) {
			t.Errorf("sysadminctl %s: secrets not answered on the terminal: %+v", inv.Verb, inv)
		}
	}

	if err := svc.Remove(ctx); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if st, err := svc.Status(ctx); err != nil || st.Exists || st.PasswordStored {
		t.Errorf("after Remove: %+v %v", st, err)
	}
	for _, c := range m.snapshot(t).CryptoUsers {
		if c.UUID == truth.GeneratedUID {
			t.Error("crypto user left behind")
		}
	}
	if err := svc.Remove(ctx); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestServiceAccountCreateRefused(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	ctx := t.Context()
	cases := []struct {
		admin, pw string
		want      error
	}{
		{"admin", "Wrong-pass-1", ErrWrongPassword},
		{"dave", davePW, ErrNoSecureToken}, // admin without a token
		{"alice", alicePW, ErrNotAdmin},    // token, not admin
		{"nobody", "Whatever-1", ErrNoSuchUser},
	}
	for _, c := range cases {
		svc, _ := newService(t, m)
		if err := svc.Create(ctx, c.admin, []byte(c.pw)); !errors.Is(err, c.want) {
			t.Errorf("Create by %s: %v, want %v", c.admin, err, c.want)
		}
	}
	for _, u := range m.snapshot(t).Users {
		if u.Name == "_lockstep" {
			t.Error("service account created anyway")
		}
	}
}

// sysadminctl prints "Done!" even when the grant silently failed: only the
// status check can tell.
func TestServiceAccountSilentTokenFailure(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	if err := m.sim.AddFault(macsim.Fault{Tool: "sysadminctl", Verb: "secureTokenOn", Fail: "Done!", Count: 1}); err != nil {
		t.Fatal(err)
	}
	svc, _ := newService(t, m)
	err := svc.Create(t.Context(), "admin", []byte(adminPW))
	if !errors.Is(err, ErrNotApplied) {
		t.Fatalf("Create with a silently failed grant: %v, want ErrNotApplied", err)
	}
	// The next Create repairs it.
	if err := svc.Create(t.Context(), "admin", []byte(adminPW)); err != nil {
		t.Fatalf("repairing Create: %v", err)
	}
	if u := m.user(t, "_lockstep"); !u.SecureToken {
		t.Error("no token after repair")
	}
}

// The daemon dies right after dscl changed the password, before it stored
// the new one as current: the next Rotate must adopt the pending password.
func TestServiceAccountRotateCrash(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	svc, store := newService(t, m)
	ctx := t.Context()
	if err := svc.Create(ctx, "admin", []byte(adminPW)); err != nil {
		t.Fatal(err)
	}
	old := storedPassword(t, store)
	if err := m.sim.AddFault(macsim.Fault{Tool: "dscl", Verb: "passwd", CrashCaller: true, Count: 1}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PLATFORM_TEST_HELPER=rotate", "PLATFORM_TEST_TOOLS="+m.sim.ToolsDir(), "PLATFORM_TEST_STORE="+store.Dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper was not killed mid-rotation: %v %s", err, out)
	}
	m.wantPassword(t, "_lockstep", old, false) // the change landed
	st, err := svc.Status(ctx)
	if err != nil || !st.RotationPending || st.PasswordWorks || st.Ready() {
		t.Fatalf("after the crash: %+v %v", st, err)
	}
	pending, err := store.Get(secretPending)
	if err != nil {
		t.Fatal(err)
	}
	m.wantPassword(t, "_lockstep", string(pending), true)

	if err := svc.Rotate(ctx); err != nil {
		t.Fatalf("Rotate after crash: %v", err)
	}
	now := storedPassword(t, store)
	m.wantPassword(t, "_lockstep", now, true)
	if st, err := svc.Status(ctx); err != nil || !st.Ready() {
		t.Errorf("after recovery: %+v %v", st, err)
	}
}

// A pending password whose change never happened is dropped.
func TestServiceAccountRotateRollback(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	svc, store := newService(t, m)
	ctx := t.Context()
	if err := svc.Create(ctx, "admin", []byte(adminPW)); err != nil {
		t.Fatal(err)
	}
	old := storedPassword(t, store)
	if err := m.sim.AddFault(macsim.Fault{Tool: "dscl", Verb: "passwd", Fail: "<dscl_cmd> DS Error: -14120 (eDSPermissionError)", Exit: 40, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Rotate(ctx); !errors.Is(err, ErrPermission) {
		t.Fatalf("Rotate with failing dscl: %v, want ErrPermission", err)
	}
	if _, err := store.Get(secretPending); !errors.Is(err, ErrSecretNotFound) {
		t.Errorf("pending password kept after a failed change: %v", err)
	}
	if storedPassword(t, store) != old {
		t.Error("current password replaced after a failed change")
	}
	m.wantPassword(t, "_lockstep", old, true)
	if _, err := svc.ResetUserPassword(ctx, m.account(t, "bob"), []byte("Bob-reset-pass-3")); err != nil {
		t.Fatalf("ResetUserPassword: %v", err)
	}
}

// sysadminctl's prompt texts are unknown (macos-tools.md §11.4-5): under
// every plausible variant the simulator offers, the service account is set
// up and resets a forgotten password; where the prompts cannot be told
// apart, the run stops at the first prompt, quoting it, and nothing changes.
func TestServiceAccountUnderPromptVariants(t *testing.T) {
	t.Parallel()
	for _, variant := range []string{"named", "realname", "user-first", "generic", "stderr", "ambiguous"} {
		t.Run(variant, func(t *testing.T) {
			t.Parallel()
			m := newMac(t, testSpec())
			if err := m.sim.SetQuirk("sysadminctl-prompts", variant); err != nil {
				t.Fatal(err)
			}
			svc, _ := newService(t, m)
			ctx := t.Context()
			err := svc.Create(ctx, "admin", []byte(adminPW))
			if variant == "ambiguous" {
				var te *ToolError
				if !errors.Is(err, ErrUnknownPrompt) || !errors.As(err, &te) || !strings.Contains(te.Message, `"Password:"`) {
					t.Fatalf("Create with prompts that cannot be told apart = %v", err)
				}
				for _, u := range m.snapshot(t).Users {
					if u.Name == "_lockstep" {
						t.Fatal("the service account was created anyway")
					}
				}
				// sysadminctl was killed at its first prompt, before it could
				// record its run.
				invs := m.noSecrets(t, adminPW)
				if p := invocationsOf(invs, "sysadminctl", "addUser"); len(p) != 0 {
					t.Fatalf("addUser ran to its end: %+v", p)
				}
				if fl := authFailures(invs); len(fl) != 0 {
					t.Fatalf("failed logins: %v", fl)
				}
				return
			}
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if _, err := svc.ResetUserPassword(ctx, m.account(t, "alice"), []byte("Alice-reset-9")); err != nil {
				t.Fatalf("ResetUserPassword: %v", err)
			}
			m.wantPassword(t, "alice", "Alice-reset-9", true)
			m.wantFileVault(t, "alice", "Alice-reset-9", true)
			invs := m.noSecrets(t, adminPW, "Alice-reset-9")
			if fl := authFailures(invs); len(fl) != 0 {
				t.Fatalf("a wrong answer to a prompt: failed logins %v", fl)
			}
		})
	}
}

// The administrator's short name is one a prompt may hold as a word
// ("admin"): it still names its account after "for".
func TestPromptRulesTellAccountsApart(t *testing.T) {
	admin := Account{Name: "admin", RealName: "Local Admin"}
	alice := Account{Name: "alice", RealName: "Alice Example"}
	svc := Account{Name: "_lockstep", RealName: "Lockstep"}
	cases := []struct {
		name          string
		admin, user   Account
		prompts, want []string // want: "A", "U", or an error
	}{
		{"named", admin, svc, []string{"Enter admin password for admin:", "Enter password for _lockstep:"}, []string{"A", "U"}},
		{"user named admin", svc, Account{Name: "admin"}, []string{"Enter admin password for _lockstep:", "Enter new password for admin:", "Re-enter new password for admin:"}, []string{"A", "U", "U"}},
		{"full names", admin, alice, []string{"Enter new password for Alice Example:", "Password for Local Admin:"}, []string{"U", "A"}},
		{"one left", admin, alice, []string{"Enter admin password for admin:", "New password:", "Retype new password:"}, []string{"A", "U", "U"}},
		{"ambiguous first", admin, alice, []string{"Password:"}, []string{"error"}},
		{"both named", admin, alice, []string{"Password of admin for alice:"}, []string{"error"}},
		{"asked again", admin, alice, []string{"Enter admin password for admin:", "Enter admin password for admin:"}, []string{"A", "error"}},
		{"prefix is not a name", Account{Name: "al"}, alice, []string{"Enter password for alice:", "Enter password for al:"}, []string{"U", "A"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := sysadminctlPrompter(c.admin, []byte("A"), c.user, []byte("U"), 2)
			for i, prompt := range c.prompts {
				got, err := p.Answer(prompt)
				if c.want[i] == "error" {
					if err == nil || !strings.Contains(err.Error(), prompt) {
						t.Fatalf("prompt %q answered %q, want a refusal quoting it (%v)", prompt, got, err)
					}
					return
				}
				if err != nil || string(got) != c.want[i] {
					t.Fatalf("prompt %q: %q %v, want %s", prompt, got, err, c.want[i])
				}
			}
		})
	}
}
