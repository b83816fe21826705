package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/internal/tools/browsertest"
)

// A user signs in with password and code, changes the password while the
// checklist follows what they type, and their Macs are told at once.
func TestPortalChangePassword(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		secret := e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", true)
		d := e.enrollDevice("alices-macbook", "alice")
		d.ack(t, "alice", 1)
		p := e.page()
		e.portalSignIn(p, "alice", "Wonderland-Pass-1", secret)
		if got := p.Text("#macs tbody"); !strings.Contains(got, "alices-macbook") || !strings.Contains(got, "In step") {
			t.Errorf("alice's Macs read %q", got)
		}
		p.Click("a[href='/password']")
		p.Type("#current", "Wonderland-Pass-1")
		p.Type("#new", "abc")
		waitRule(t, p, "min_length", false)
		waitRule(t, p, "lower", true)
		waitRule(t, p, "upper", false)
		p.Type("#new", e.secret("Looking-Glass-Door-7"))
		for _, r := range []string{"min_length", "upper", "lower", "digit", "not_username"} {
			waitRule(t, p, r, true)
		}
		if got := p.Text("li[data-rule=history]"); !strings.Contains(got, "checked when you save") {
			t.Errorf("the history rule reads %q", got)
		}
		p.Type("#confirm", "Looking-Glass-Door-7")
		p.Click("#change-form button[type=submit]")
		if p.Has("#page-error") {
			t.Fatalf("the change was refused: %s", errorText(p))
		}
		if got := p.Text(".banner.notice"); !strings.Contains(got, "Your password is changed") {
			t.Fatalf("after the change the page says %q", got)
		}
		// The Mac has not synced the new version: the page says so.
		if got := p.Text("#macs tbody"); !strings.Contains(got, "Sync needed") {
			t.Errorf("after the change alice's Macs read %q", got)
		}
		u, err := e.adm.User(context.Background(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		if u.PasswordVersion != 2 {
			t.Errorf("the password version is %d, want 2", u.PasswordVersion)
		}
		ev := e.wantAudit(admin.AuditQuery{User: "alice", Event: "password_changed"}, nil, "password_changed")
		if ev.Actor != "user:alice" {
			t.Errorf("the change's audit event is %+v", ev)
		}
		// History: the old password is refused, with the directory's reason.
		p.Go(e.url + "/password")
		p.Type("#current", "Looking-Glass-Door-7")
		p.Type("#new", "Wonderland-Pass-1")
		p.Type("#confirm", "Wonderland-Pass-1")
		p.Click("#change-form button[type=submit]")
		if got := p.Text("#page-error"); !strings.Contains(got, "last 5 passwords") {
			t.Errorf("reusing the old password reads %q", got)
		}
	})
}

// waitRule waits until the checklist marks rule met or unmet.
func waitRule(t *testing.T, p *browsertest.Page, rule string, met bool) {
	t.Helper()
	want := "not met"
	if met {
		want = "met"
	}
	sel := "li[data-rule=" + rule + "] .state"
	var got string
	for range 100 {
		got = browsertest.Eval[string](p, `document.querySelector("`+sel+`").textContent`)
		if got == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("the checklist's %s reads %q, want %q", rule, got, want)
}

// A user with a temporary password must choose their own before anything
// else.
func TestPortalTemporaryPassword(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", false)
		res, err := e.adm.ResetPassword(context.Background(), "alice", admin.ResetRequest{Temporary: true})
		if err != nil {
			t.Fatal(err)
		}
		tmp := e.secret(string(res.Password))
		p := e.page()
		p.Go(e.url + "/")
		p.Type("#name", "alice")
		p.Type("#password", tmp)
		p.Click("main button[type=submit]")
		if h := p.Text("h1"); h != "Change your password" || !strings.Contains(p.Text("#change-form"), "temporary") {
			t.Fatalf("a temporary password leads to %q", h)
		}
		p.Go(e.url + "/")
		if h := p.Text("h1"); h != "Change your password" {
			t.Errorf("the account page is reachable before the change: %q", h)
		}
		p.Type("#current", tmp)
		p.Type("#new", e.secret("Own-Choice-Passw0rd"))
		p.Type("#confirm", "Own-Choice-Passw0rd")
		p.Click("#change-form button[type=submit]")
		if h := p.Text("h1"); h != "Your account" {
			t.Fatalf("after the change the portal shows %q (%s)", h, errorText(p))
		}
	})
}

// A user without MFA sets up an authenticator from the portal: a QR code
// made on the server, the key as text, a confirming code; from then on
// the portal asks for codes.
func TestPortalEnrolMFA(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", false)
		p := e.page()
		e.portalSignIn(p, "alice", "Wonderland-Pass-1", "")
		p.Click("a[href='/mfa']")
		if h := p.Text("h1"); h != "Set up your authenticator" {
			t.Fatalf("setting up MFA shows %q", h)
		}
		if got := browsertest.Eval[string](p, `document.querySelector("svg.qr title").textContent`); got != "QR code of your authenticator key" {
			t.Errorf("the QR code is labelled %q", got)
		}
		key := e.secret(strings.ReplaceAll(p.Text("#secret"), " ", ""))
		// A reload shows the same key, not a new one.
		p.Go(e.url + "/enrol")
		if again := strings.ReplaceAll(p.Text("#secret"), " ", ""); again != key {
			t.Error("reloading the enrolment page changed the key")
		}
		p.Type("#code", e.code(key))
		p.Click("main form button[type=submit]")
		if h := p.Text("h1"); h != "Your account" {
			t.Fatalf("after enrolling the portal shows %q (%s)", h, errorText(p))
		}
		u, err := e.adm.User(context.Background(), "alice")
		if err != nil || !u.MFA {
			t.Fatalf("after enrolling MFA is %v (%v)", u.MFA, err)
		}
		q := e.page()
		e.portalSignIn(q, "alice", "Wonderland-Pass-1", key)
		e.wantAudit(admin.AuditQuery{User: "alice", Event: "mfa_enrolled"}, nil, "mfa_enrolled")
	})
}
