package platform

import (
	"errors"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/macsim"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	acc := NewAccounts(m.r)
	ctx := t.Context()
	for _, c := range []struct {
		name string
		want func(Account) bool
	}{
		{"alice", func(a Account) bool {
			return a.UID == 502 && a.GID == 20 && a.RealName == "Alice Example" && a.SecureToken && !a.Admin && !a.Hidden && !a.Disabled &&
				a.Shell == "/bin/zsh" && strings.HasSuffix(a.Home, "/Users/alice")
		}},
		{"admin", func(a Account) bool { return a.Admin && a.SecureToken && a.RealName == "Local Admin" }},
		{"bob", func(a Account) bool { return !a.SecureToken && !a.Admin }},
		{"carol", func(a Account) bool { return a.Disabled }},
		{"dave", func(a Account) bool { return a.Admin && !a.SecureToken }},
	} {
		a, err := acc.Lookup(ctx, c.name)
		if err != nil {
			t.Fatalf("Lookup(%s): %v", c.name, err)
		}
		if !c.want(a) {
			t.Errorf("Lookup(%s) = %+v", c.name, a)
		}
		if truth := m.user(t, c.name); a.GeneratedUID != truth.GeneratedUID || a.Home != truth.Home {
			t.Errorf("Lookup(%s) GeneratedUID/Home %s %s, truth %s %s", c.name, a.GeneratedUID, a.Home, truth.GeneratedUID, truth.Home)
		}
	}
	if _, err := acc.Lookup(ctx, "nobody"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("Lookup(nobody) = %v, want ErrNoSuchUser", err)
	}
	for _, bad := range []string{"../etc", "-x", "a b", ""} {
		if _, err := acc.Lookup(ctx, bad); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Lookup(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
	// Hidden: set by dscl like the service account.
	if res, err := m.r.Run(ctx, Cmd{Tool: Dscl, Args: []string{".", "-create", "/Users/bob", "IsHidden", "1"}}); err != nil || res.Exit != 0 {
		t.Fatalf("dscl -create: %v %+v", err, res)
	}
	if a, err := acc.Lookup(ctx, "bob"); err != nil || !a.Hidden {
		t.Errorf("hidden bob = %+v %v", a, err)
	}
	uids, err := acc.List(ctx)
	if err != nil || uids["alice"] != 502 || uids["root"] != 0 {
		t.Errorf("List = %v %v", uids, err)
	}
}

func TestVerifyPassword(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	acc := NewAccounts(m.r)
	ctx := t.Context()
	if err := acc.VerifyPassword(ctx, "alice", []byte(alicePW)); err != nil {
		t.Fatalf("right password: %v", err)
	}
	err := acc.VerifyPassword(ctx, "alice", []byte("Wrong-pass-1"))
	var te *ToolError
	if !errors.Is(err, ErrWrongPassword) || !errors.As(err, &te) {
		t.Fatalf("wrong password: %v", err)
	}
	if te.Exit != 10 || te.Status != -14090 || te.StatusName != "eDSAuthFailed" ||
		te.Message != "Authentication for node /Local/Default failed. (-14090, eDSAuthFailed)" {
		t.Errorf("ToolError = %+v", te)
	}
	if err := acc.VerifyPassword(ctx, "carol", []byte(carolPW)); !errors.Is(err, ErrAccountDisabled) {
		t.Errorf("disabled: %v", err)
	}
	if err := acc.VerifyPassword(ctx, "nobody", []byte("Whatever-1")); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("unknown user: %v", err)
	}
	before, _ := m.sim.Invocations()
	for _, bad := range []string{"", "two\nlines", "cr\rhere", "nul\x00", strings.Repeat("x", 129)} {
		if err := acc.VerifyPassword(ctx, "alice", []byte(bad)); !errors.Is(err, ErrUnusableSecret) {
			t.Errorf("VerifyPassword(%q) = %v, want ErrUnusableSecret", bad, err)
		}
	}
	if err := acc.VerifyPassword(ctx, "alice", []byte(strings.Repeat("x", 128))); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("128-byte password: %v, want a normal ErrWrongPassword", err)
	}
	after, _ := m.sim.Invocations()
	if len(after) != len(before)+1 {
		t.Errorf("unusable secrets reached a tool: %d runs", len(after)-len(before))
	}
	invs := m.noSecrets(t, alicePW, "Wrong-pass-1", carolPW)
	last := invs[len(invs)-1]
	if last.StdinBytes != 129 || last.Prompts[0] != "Password:" || strings.Join(last.Argv, " ") != "dscl /Local/Default -authonly alice" {
		t.Errorf("authonly invocation = %+v", last)
	}
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	const newPW = "Alice-new-pass-2"
	cases := []struct {
		name, user, old, new string
		fault                *macsim.Fault
		want                 error
		applied              bool
	}{
		{name: "token user keeps token and FileVault", user: "alice", old: alicePW, new: newPW, applied: true},
		{name: "user without token", user: "bob", old: bobPW, new: newPW, applied: true},
		{name: "broken crypto user", user: "erin", old: erinPW, new: newPW, applied: true},
		{name: "wrong old password", user: "alice", old: "Wrong-pass-1", new: newPW, want: ErrWrongPassword},
		{name: "wrong old password, no token", user: "bob", old: "Wrong-pass-1", new: newPW, want: ErrWrongPassword},
		{name: "policy", user: "alice", old: alicePW, new: "short", want: ErrPolicy},
		{name: "disabled", user: "carol", old: carolPW, new: newPW, want: ErrAccountDisabled},
		{name: "no such user", user: "nobody", old: alicePW, new: newPW, want: ErrNoSuchUser},
		{name: "dscl fails", user: "alice", old: alicePW, new: newPW, want: ErrToolFailed,
			fault: &macsim.Fault{Tool: "dscl", Verb: "passwd", Fail: "Operation failed with error: something", Exit: 70}},
		{name: "dscl claims success, changes nothing", user: "alice", old: alicePW, new: newPW, want: ErrNotApplied,
			fault: &macsim.Fault{Tool: "dscl", Verb: "passwd", Stdout: "", Fail: "ok", Exit: 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := newMac(t, testSpec())
			if c.fault != nil {
				if err := m.sim.AddFault(*c.fault); err != nil {
					t.Fatal(err)
				}
			}
			v, err := NewAccounts(m.r).ChangePassword(t.Context(), m.account(t, c.user), []byte(c.old), []byte(c.new))
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("ChangePassword = %v, want %v", err, c.want)
			}
			if c.user == "nobody" {
				return
			}
			pw := map[string]string{"alice": alicePW, "bob": bobPW, "carol": carolPW, "erin": erinPW}[c.user]
			m.wantPassword(t, c.user, c.new, c.applied)
			m.wantPassword(t, c.user, pw, !c.applied)
			u := m.user(t, c.user)
			if c.user == "alice" && !u.SecureToken {
				t.Error("lost the SecureToken")
			}
			// A change with the old password moves FileVault along.
			if u.CryptoUser {
				m.wantFileVault(t, c.user, c.new, c.applied)
			}
			if u.CryptoUser || c.user == "alice" {
				m.wantKeychain(t, c.user, pw) // dscl never re-keys the keychain
			}
			invs := m.noSecrets(t, c.old, c.new, pw)
			if c.applied {
				// As the user, so dscl asks for the old password too.
				p := invocationsOf(invs, "dscl", "passwd")
				u := m.user(t, c.user)
				if len(p) != 1 || p[0].StdinBytes != len(c.new)+len(c.old)+2 || len(p[0].Prompts) != 2 ||
					p[0].EUID != u.UID || p[0].Env["HOME"] != u.Home {
					t.Errorf("passwd invocations = %+v", p)
				}
			}
			// The old password is not tried on its own first: a right one
			// makes no failed login, a wrong one exactly one (dscl -passwd's
			// own refusal).
			wantFailures := 0
			if errors.Is(c.want, ErrWrongPassword) || errors.Is(c.want, ErrNotApplied) {
				wantFailures = 1 // the wrong old password, or the check of a change that did not happen
			}
			if fl := authFailures(invs); len(fl) != wantFailures {
				t.Errorf("failed logins = %v, want %d", fl, wantFailures)
			}
			if tokenUser := c.user == "alice"; c.applied && v.SecureToken != tokenUser {
				t.Errorf("Verified = %+v", v)
			}
		})
	}
}

func TestResetPassword(t *testing.T) {
	t.Parallel()
	const newPW = "Reset-pass-77"
	cases := []struct {
		name, user, admin, adminPW string
		fault                      *macsim.Fault
		want                       error
		applied                    bool
		fileVaultFollows           bool
	}{
		{name: "token user by token admin", user: "alice", admin: "admin", adminPW: adminPW, applied: true, fileVaultFollows: true},
		{name: "token user by admin without token", user: "alice", admin: "dave", adminPW: davePW, want: ErrNoSecureToken},
		{name: "wrong admin password", user: "alice", admin: "admin", adminPW: "Wrong-pass-1", want: ErrWrongPassword},
		{name: "non-admin credentials", user: "alice", admin: "bob", adminPW: bobPW, want: ErrWrongPassword},
		{name: "user without token", user: "bob", admin: "dave", adminPW: davePW, applied: true},
		{name: "broken crypto user: FileVault keeps the old password", user: "erin", admin: "admin", adminPW: adminPW, applied: true},
		{name: "no such user", user: "nobody", admin: "admin", adminPW: adminPW, want: ErrNoSuchUser},
		{name: "policy", user: "bob", admin: "admin", adminPW: adminPW, want: ErrPolicy},
		{name: "refusal injected", user: "bob", admin: "admin", adminPW: adminPW, want: ErrNoSecureToken,
			fault: &macsim.Fault{Tool: "sysadminctl", Verb: "resetPasswordFor", Fail: "Operation is not permitted without secure token unlock."}},
		{name: "exit 0, nothing said, nothing done", user: "alice", admin: "admin", adminPW: adminPW, want: ErrNotApplied,
			fault: &macsim.Fault{Tool: "sysadminctl", Verb: "resetPasswordFor", Fail: "Something went sideways"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := newMac(t, testSpec())
			if c.fault != nil {
				if err := m.sim.AddFault(*c.fault); err != nil {
					t.Fatal(err)
				}
			}
			pw := newPW
			if c.name == "policy" {
				pw = "short"
			}
			v, err := NewAccounts(m.r).ResetPassword(t.Context(), m.account(t, c.user), []byte(pw), m.account(t, c.admin), []byte(c.adminPW))
			if c.applied && v.SecureToken != (c.user == "alice") {
				t.Errorf("Verified = %+v", v)
			}
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("ResetPassword = %v, want %v", err, c.want)
			}
			if c.user == "nobody" {
				return
			}
			var te *ToolError
			if c.want != nil && c.want != ErrNoSuchUser && (!errors.As(err, &te) || te.Tool != Sysadminctl || te.Message == "") {
				t.Errorf("error carries no sysadminctl text: %#v", err)
			}
			old := map[string]string{"alice": alicePW, "bob": bobPW, "erin": erinPW}[c.user]
			m.wantPassword(t, c.user, pw, c.applied)
			m.wantPassword(t, c.user, old, !c.applied)
			u := m.user(t, c.user)
			if c.user == "alice" && !u.SecureToken {
				t.Error("lost the SecureToken")
			}
			if u.CryptoUser {
				m.wantFileVault(t, c.user, pw, c.fileVaultFollows)
				m.wantFileVault(t, c.user, old, !c.fileVaultFollows)
			}
			if c.user == "alice" || c.user == "erin" {
				m.wantKeychain(t, c.user, old) // a reset never re-keys the keychain
			}
			invs := m.noSecrets(t, pw, c.adminPW, old)
			for _, inv := range invocationsOf(invs, "sysadminctl", "resetPasswordFor") {
				if c.fault == nil && (!inv.TTY || len(inv.Prompts) != 3) {
					t.Errorf("reset prompts not answered on a terminal: %+v", inv)
				}
			}
		})
	}
}

func TestResetPasswordRefusesSelfAuthorisation(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	_, err := NewAccounts(m.r).ResetPassword(t.Context(), m.account(t, "admin"), []byte("Admin-new-pass"), m.account(t, "admin"), []byte(adminPW))
	if !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("self-authorised reset: %v", err)
	}
}
