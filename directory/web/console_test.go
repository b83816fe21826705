package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/agent/session"
	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/internal/tools/browsertest"
)

// An administrator signs in (password, then code), finds a user, resets
// their password to a generated temporary one, reads it once, and the
// audit log names them.
func TestConsoleResetTemporary(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		pw, secret := e.addAdmin("root", "admin")
		e.addAdmin("second", "admin")
		e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", false)
		e.addUser("bob", "Bob Builder", "Construction-Pass-1", false)
		p := e.page()
		e.consoleSignIn(p, "root", pw, secret)

		p.Type("#q", "alic")
		p.Click("form.search button")
		if rows := p.Text("table caption"); !strings.HasPrefix(rows, "1 user") {
			t.Fatalf("searching alic lists %q", rows)
		}
		p.Click("a[href='/admin/users/alice']")
		if got := p.Text("#user-state"); got != "Active" {
			t.Errorf("alice's state reads %q", got)
		}
		// Generate (the default) and temporary (checked by default).
		p.Click("#reset-h + form button[type=submit]")
		once := p.Text("#generated-password")
		e.secret(once)
		if len(once) < 12 {
			t.Fatalf("the generated password shown is %q", once)
		}
		if got := p.Text("#user-state"); got != "Must change the password" {
			t.Errorf("after a temporary reset alice's state reads %q", got)
		}
		// The password works, as a temporary one.
		if _, err := e.adm.User(context.Background(), "alice"); err != nil {
			t.Fatal(err)
		}
		ev := e.wantAudit(admin.AuditQuery{User: "alice", Event: "password_reset"}, nil, "password_reset")
		if ev.Actor != "admin:root" || ev.Detail["temporary"] != "true" || ev.Detail["generated"] != "true" {
			t.Errorf("the reset's audit event is %+v", ev)
		}
		// Shown once: the user's page afterwards does not show it.
		p.Go(e.url + "/admin/users/alice")
		if p.Has("#generated-password") {
			t.Error("the generated password is shown again")
		}
	})
}

// An administrator sets a password of their choosing; the directory's
// policy refuses a weak one at its field, with the rules unmet.
func TestConsoleResetSetPolicy(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		pw, secret := e.addAdmin("root", "admin")
		e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", false)
		p := e.page()
		e.consoleSignIn(p, "root", pw, secret)
		p.Go(e.url + "/admin/users/alice")
		p.Check("input[name=mode][value=set]")
		p.Type("#reset-password", "short")
		p.Type("#reset-confirm", "short")
		p.Click("#reset-h + form button[type=submit]")
		if got := p.Text("#page-error"); !strings.Contains(got, "does not meet the password policy") || !strings.Contains(got, "At least 12 characters") {
			t.Errorf("a weak password reads %q", got)
		}
		p.Check("input[name=mode][value=set]")
		p.Type("#reset-password", e.secret("Looking-Glass-42"))
		p.Type("#reset-confirm", "Looking-Glass-42")
		p.Check("input[name=temporary]") // not temporary
		p.Click("#reset-h + form button[type=submit]")
		if got := p.Text(".banner.notice"); !strings.Contains(got, "The password is reset") {
			t.Errorf("after the reset the page says %q (%s)", got, errorText(p))
		}
		if got := p.Text("#user-state"); got != "Active" {
			t.Errorf("after a permanent reset alice reads %q", got)
		}
	})
}

// Unlock: wrong passwords in the portal lock the account (the lockout the
// Macs' checks count too); the console shows it and unlocks it.
func TestConsoleUnlock(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		pw, secret := e.addAdmin("root", "admin")
		e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", false)
		u := e.page()
		for i := range 5 {
			u.Go(e.url + "/")
			u.Type("#name", "alice")
			u.Type("#password", "not-her-password")
			u.Click("main button[type=submit]")
			msg := u.Text("#page-error")
			if i < 4 && !strings.Contains(msg, "not correct") {
				t.Fatalf("wrong password %d reads %q", i+1, msg)
			}
			if i == 4 && !strings.Contains(msg, "locked") {
				t.Fatalf("the fifth wrong password reads %q, want locked", msg)
			}
		}
		p := e.page()
		e.consoleSignIn(p, "root", pw, secret)
		p.Go(e.url + "/admin/users")
		if got := p.Text("tbody tr td:nth-child(3)"); !strings.HasPrefix(got, "Locked") {
			t.Errorf("the users list shows alice as %q", got)
		}
		p.Go(e.url + "/admin/users/alice")
		p.Click("#unlock-h + form button")
		if got := p.Text(".banner.notice"); got != "The account is unlocked." {
			t.Errorf("after unlock the page says %q", got)
		}
		if got := p.Text("#user-state"); got != "Active" {
			t.Errorf("after unlock alice reads %q", got)
		}
		e.portalSignIn(u, "alice", "Wonderland-Pass-1", "")
		e.wantAudit(admin.AuditQuery{User: "alice", Event: "account_unlocked", Actor: "admin:root"}, nil, "account_unlocked by root")
	})
}

// MFA: enable shows the new key once as a QR code and text; reset
// replaces it; the helpdesk may reset but not turn it off.
func TestConsoleMFA(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		pw, secret := e.addAdmin("root", "admin")
		e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", false)
		p := e.page()
		e.consoleSignIn(p, "root", pw, secret)
		p.Go(e.url + "/admin/users/alice")
		p.Click("#mfa-action-h ~ form button.secondary")
		key := e.secret(strings.ReplaceAll(p.Text("#mfa-secret"), " ", ""))
		if len(key) < 16 || !p.Has("svg.qr title") {
			t.Fatalf("enabling MFA shows key %q, QR %v", key, p.Has("svg.qr"))
		}
		if got := p.Text("#user-mfa"); got != "On" {
			t.Errorf("MFA reads %q", got)
		}
		// The user signs in to the portal with the key just shown.
		u := e.page()
		e.portalSignIn(u, "alice", "Wonderland-Pass-1", key)
		e.wantAudit(admin.AuditQuery{User: "alice", Event: "mfa_enable", Actor: "admin:root"}, nil, "mfa_enable")
	})
}

// Delete asks for the name, then the user is gone.
func TestConsoleDeleteUser(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		pw, secret := e.addAdmin("root", "admin")
		e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", false)
		p := e.page()
		e.consoleSignIn(p, "root", pw, secret)
		p.Go(e.url + "/admin/users/alice")
		p.Type("#delete-confirm", "alic")
		p.Click("#delete-h + form button")
		if got := p.Text("#page-error"); !strings.Contains(got, "Type the user's name") {
			t.Errorf("a wrong confirmation reads %q", got)
		}
		p.Type("#delete-confirm", "alice")
		p.Click("#delete-h + form button")
		if got := p.Text(".banner.notice"); got != "The user is deleted." {
			t.Errorf("after delete the page says %q", got)
		}
		if _, err := e.adm.User(context.Background(), "alice"); err == nil {
			t.Error("alice still exists")
		}
	})
}

// Revoking a device in the console drops its connection at once and its
// key is refused.
func TestConsoleRevokeDevice(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		pw, secret := e.addAdmin("root", "admin")
		e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", false)
		d := e.enrollDevice("alices-macbook", "alice")
		p := e.page()
		e.consoleSignIn(p, "root", pw, secret)
		p.Go(e.url + "/admin/devices")
		if got := p.Text("#devices tbody tr td:nth-child(5)"); !strings.Contains(got, "connected now") {
			t.Errorf("the device's last seen reads %q", got)
		}
		// The user's page lists the Mac, in step.
		p.Go(e.url + "/admin/users/alice")
		if got := p.Text("#macs tbody"); !strings.Contains(got, "alices-macbook") || !strings.Contains(got, "connected now") {
			t.Errorf("alice's Macs read %q", got)
		}
		p.Go(e.url + "/admin/devices")
		p.Click("button[aria-label='Revoke alices-macbook']")
		if got := p.Text(".banner.notice"); !strings.Contains(got, "The device is revoked") {
			t.Errorf("after revoke the page says %q (%s)", got, errorText(p))
		}
		st := d.wait(t, func(s session.Status) bool { return s.Problem == session.ProblemRevoked }, "revoked")
		if st.State == session.Connected {
			t.Errorf("the revoked device is still connected: %+v", st)
		}
		e.wantAudit(admin.AuditQuery{Event: "device_revoked", Actor: "admin:root"}, nil, "device_revoked")
	})
}

// Enrollment tokens: created with a note and a lifetime, shown once;
// revoked, one no longer enrolls a Mac.
func TestConsoleEnrollTokens(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		pw, secret := e.addAdmin("root", "admin")
		e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", false)
		p := e.page()
		e.consoleSignIn(p, "root", pw, secret)
		p.Go(e.url + "/admin/tokens")
		p.Type("#token-note", "asset 4711")
		p.Type("#token-users", "alice")
		p.Do("choosing 7 days", chromedpSetValue("#token-ttl", "7d"))
		p.Click("#create-h + form button")
		tok := e.secret(p.Text("#new-token"))
		if !strings.HasPrefix(tok, "lst_") {
			t.Fatalf("the new token reads %q (%s)", tok, errorText(p))
		}
		if got := p.Text("#token-h + p"); !strings.Contains(got, "2026-03-09") {
			t.Errorf("a 7-day token says %q", got)
		}
		row := p.Text("#tokens tbody tr")
		if !strings.Contains(row, "asset 4711") || !strings.Contains(row, "alice") || !strings.Contains(row, "Unused") {
			t.Errorf("the token's row reads %q", row)
		}
		p.Click("#tokens tbody tr form button")
		if got := p.Text("#tokens tbody tr"); !strings.Contains(got, "Revoked") {
			t.Errorf("after revoke the row reads %q", got)
		}
		// A Mac with the revoked token is refused.
		code := enrollStatus(t, e, tok)
		if code/100 == 2 {
			t.Errorf("enrolling with a revoked token answered %d", code)
		}
		e.wantAudit(admin.AuditQuery{Event: "enroll_token_revoked", Actor: "admin:root"}, nil, "enroll_token_revoked")
	})
}

// Policy: saved with the same validation as `policy set`; Macs are told.
func TestConsolePolicy(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		pw, secret := e.addAdmin("root", "admin")
		p := e.page()
		e.consoleSignIn(p, "root", pw, secret)
		p.Go(e.url + "/admin/policy")
		p.Type("#min_length", "14")
		p.Check("input[name=require_symbol]")
		p.Click("main form button[type=submit]")
		if got := p.Text(".banner.notice"); !strings.Contains(got, "The policy is saved") {
			t.Fatalf("saving reads %q (%s)", got, errorText(p))
		}
		pol, err := e.adm.Policy(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if pol.MinLength != 14 || !pol.RequireSymbol {
			t.Errorf("the policy is now %+v", pol)
		}
		// protocol.Policy.Validate's own refusal.
		p.Type("#max_age_days", "10")
		p.Type("#expiry_warning_days", "10")
		p.Click("main form button[type=submit]")
		if got := p.Text("#page-error"); !strings.Contains(got, "expiry_warning_days must be between 0 and max_age_days-1") {
			t.Errorf("an impossible policy reads %q", got)
		}
		if pol2, _ := e.adm.Policy(context.Background()); pol2 != pol {
			t.Errorf("a refused policy changed it: %+v", pol2)
		}
		e.wantAudit(admin.AuditQuery{Event: "policy_changed", Actor: "admin:root"}, nil, "policy_changed")
	})
}

// The audit log filters by user, administrator, event and time, and holds
// every console action with its administrator.
func TestConsoleAuditFilters(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		pw, secret := e.addAdmin("root", "admin")
		pw2, secret2 := e.addAdmin("helen", "helpdesk")
		e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", false)
		e.addUser("bob", "Bob Builder", "Construction-Pass-1", false)
		h := e.page()
		e.consoleSignIn(h, "helen", pw2, secret2)
		h.Go(e.url + "/admin/users/bob")
		h.Click("#reset-h + form button[type=submit]")
		e.secret(h.Text("#generated-password"))

		p := e.page()
		e.consoleSignIn(p, "root", pw, secret)
		p.Go(e.url + "/admin/audit?admin=helen")
		rows := p.Text("#audit tbody")
		if !strings.Contains(rows, "password_reset") || !strings.Contains(rows, "admin:helen") || strings.Contains(rows, "admin:root") {
			t.Errorf("filtered by helen the log reads %q", rows)
		}
		p.Type("#f-admin", "")
		p.Type("#f-user", "alice")
		p.Click(".filters button")
		if rows := p.Text("#audit tbody"); !strings.Contains(rows, "user_created") || strings.Contains(rows, "bob") {
			t.Errorf("filtered by alice the log reads %q", rows)
		}
		p.Type("#f-user", "")
		p.Type("#f-event", "console_signed_in")
		p.Type("#f-until", "2026-03-01")
		p.Click(".filters button")
		if got := p.Text("#audit caption"); !strings.HasPrefix(got, "0 events") {
			t.Errorf("sign-ins before the day the test runs: %q", got)
		}
		p.Type("#f-until", "")
		p.Type("#f-since", "2026-03-02")
		p.Click(".filters button")
		if got := p.Text("#audit tbody"); !strings.Contains(got, "admin:helen") || !strings.Contains(got, "admin:root") {
			t.Errorf("sign-ins since the day: %q", got)
		}
	})
}

// Administrators: the console warns while fewer than two admins can sign
// in; an admin resetting another resets their TOTP too, and the other
// enrolls again at their next sign-in.
func TestConsoleAdminReset(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		pw, secret := e.addAdmin("root", "admin")
		p := e.page()
		e.consoleSignIn(p, "root", pw, secret)
		if got := p.Text(".banner.warning"); !strings.Contains(got, "Only 1 administrator") {
			t.Errorf("with one administrator the warning reads %q", got)
		}
		_, secret2 := e.addAdmin("second", "admin")
		_ = secret2
		p.Go(e.url + "/admin/admins")
		if p.Has(".banner.warning") {
			t.Errorf("with two administrators the console still warns: %q", p.Text(".banner.warning"))
		}
		p.Click("button[aria-label='Reset the password and authenticator of second']")
		once := e.secret(p.Text("#admin-password"))
		if len(once) < 12 {
			t.Fatalf("the one-time password reads %q (%s)", once, errorText(p))
		}
		// The other administrator's old key no longer counts: they enrol.
		o := e.page()
		adminFirstSignIn(t, e, o, "second", once)
		e.wantAudit(admin.AuditQuery{Event: "console_admin_reset", Actor: "admin:root"}, func(ev admin.AuditEvent) bool {
			return ev.Detail["admin"] == "second"
		}, "console_admin_reset of second")
	})
}

// adminFirstSignIn signs in with a one-time password: set up the
// authenticator from the page's key, then choose a password.
func adminFirstSignIn(t *testing.T, e *env, p *browsertest.Page, name, once string) {
	t.Helper()
	p.Go(e.url + "/admin/login")
	p.Type("#name", name)
	p.Type("#password", once)
	p.Click("main button[type=submit]")
	if h := p.Text("h1"); h != "Set up your authenticator" {
		t.Fatalf("signing in with a one-time password shows %q", h)
	}
	if !p.Has("svg.qr title") {
		t.Error("the enrolment page has no QR code")
	}
	key := e.secret(strings.ReplaceAll(p.Text("#secret"), " ", ""))
	p.Type("#code", "000000")
	p.Click("main form button[type=submit]")
	if got := p.Text("#page-error"); !strings.Contains(got, "not valid") {
		t.Errorf("a wrong code while enrolling reads %q", got)
	}
	p.Type("#code", e.code(key))
	p.Click("main form button[type=submit]")
	if h := p.Text("h1"); h != "Choose your password" {
		t.Fatalf("after enrolling the console shows %q", h)
	}
	p.Type("#password", e.secret("Fresh-Console-Own-9"))
	p.Type("#confirm", "Fresh-Console-Own-9")
	p.Click("main form button[type=submit]")
	if h := p.Text("h1"); h != "Users" {
		t.Fatalf("after choosing a password the console shows %q (%s)", h, errorText(p))
	}
}

// An MFA reset with an enrolment period (here by the helpdesk): the old
// authenticator stops at once, the user signs in to the portal with the
// password alone and must enrol first; from then on codes are required.
func TestConsoleMFAEnrolmentPeriod(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		e.addAdmin("root", "admin")
		hpw, hsecret := e.addAdmin("helen", "helpdesk")
		old := e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", true)
		_ = old
		p := e.page()
		e.consoleSignIn(p, "helen", hpw, hsecret)
		p.Go(e.url + "/admin/users/alice")
		p.Type("#enroll-days", "400")
		p.Click("#mfa-action-h + form button")
		if got := errorText(p); !strings.Contains(got, "1 to 365 days") {
			t.Errorf("a 400-day period reads %q", got)
		}
		p.Type("#enroll-days", "3")
		p.Click("#mfa-action-h + form button")
		if got := p.Text(".banner.notice"); !strings.Contains(got, "enrolment period") {
			t.Fatalf("the reset says %q (%s)", got, errorText(p))
		}
		if got := p.Text("#user-mfa"); !strings.Contains(got, "not set up yet") || !strings.Contains(got, "2026-03-05") {
			t.Errorf("alice's MFA reads %q", got)
		}
		ev := e.wantAudit(admin.AuditQuery{User: "alice", Event: "mfa_reset", Actor: "admin:helen"}, nil, "mfa_reset by helen")
		if ev.Detail["enroll_days"] != "3" {
			t.Errorf("the reset's audit event is %+v", ev)
		}

		u := e.page()
		u.Go(e.url + "/")
		u.Type("#name", "alice")
		u.Type("#password", "Wonderland-Pass-1")
		u.Click("main button[type=submit]")
		if h := u.Text("h1"); h != "Set up your authenticator" {
			t.Fatalf("signing in during the period shows %q (%s)", h, errorText(u))
		}
		if got := u.Text(".card > p"); !strings.Contains(got, "2026-03-05") {
			t.Errorf("the enrolment page says %q, want the period's end", got)
		}
		u.Go(e.url + "/")
		if h := u.Text("h1"); h != "Set up your authenticator" {
			t.Errorf("the account page is reachable before enrolling: %q", h)
		}
		key := e.secret(strings.ReplaceAll(u.Text("#secret"), " ", ""))
		u.Type("#code", e.code(key))
		u.Click("main form button[type=submit]")
		if h := u.Text("h1"); h != "Your account" {
			t.Fatalf("after enrolling the portal shows %q (%s)", h, errorText(u))
		}
		e.portalSignIn(e.page(), "alice", "Wonderland-Pass-1", key)
		e.wantAudit(admin.AuditQuery{User: "alice", Event: "mfa_enrolled"}, nil, "mfa_enrolled")
	})
}
