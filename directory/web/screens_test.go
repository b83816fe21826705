package web_test

import (
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/internal/tools/browsertest"
)

// Every page of the console and the portal, in the light and the dark
// appearance: axe-core finds no serious or critical accessibility
// violation, and the page looks as its golden screenshot in testdata/
// (shown in the README). What differs from run to run (secrets, QR codes,
// device and token ids) is masked before the screenshot; times come from
// the test's clock.

// stabilize replaces what is random on a page by placeholders of the same
// length.
const stabilize = `(function(){
  const same = s => s.replace(/[^\s]/g, "X");
  document.querySelectorAll("code.secret, small.id, #tokens tbody code").forEach(e => { e.textContent = same(e.textContent); });
  document.querySelectorAll("svg.qr path").forEach(e => e.setAttribute("d", "M4 4h8v8h-8z"));
  document.querySelectorAll("#tokens td, #devices td").forEach(e => { e.textContent = e.textContent.replace(/dev_[A-Z0-9]+/g, m => same(m)); });
  return true;
})()`

// shot checks one page in both appearances.
func shot(t *testing.T, p *browsertest.Page, name string) {
	t.Helper()
	for _, dark := range []bool{false, true} {
		scheme := "light"
		if dark {
			scheme = "dark"
		}
		p.Scheme(dark)
		p.Axe(name + " (" + scheme + ")")
		browsertest.Eval[bool](p, stabilize)
		p.Golden("testdata", name+"-"+scheme)
	}
	p.Scheme(false)
}

func TestScreens(t *testing.T) {
	e := newEnv(t, "sqlite")
	pw, secret := e.addAdmin("root", "admin")
	e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", false)
	bobKey := e.addUser("bob", "Bob Builder", "Construction-Pass-1", true)
	e.addUser("carol", "Carol Danvers", "Marvellous-Pass-1", false)
	d := e.enrollDevice("alices-macbook", "alice")
	d.ack(t, "alice", 1)
	e.enrollDevice("bobs-imac", "bob")

	// The console.
	p := e.page()
	p.Go(e.url + "/admin/login")
	shot(t, p, "console-login")
	p.Type("#name", "root")
	p.Type("#password", pw)
	p.Click("button[type=submit]")
	shot(t, p, "console-code")
	p.Type("#code", e.code(secret))
	p.Click("main button[type=submit]")
	shot(t, p, "console-users")
	p.Go(e.url + "/admin/users/alice")
	p.Click("#reset-h + form button[type=submit]")
	e.secret(p.Text("#generated-password"))
	shot(t, p, "console-user-reset")
	p.Go(e.url + "/admin/devices")
	shot(t, p, "console-devices")
	p.Go(e.url + "/admin/tokens")
	p.Type("#token-note", "asset 4711")
	p.Type("#token-users", "carol")
	p.Click("#create-h + form button")
	e.secret(p.Text("#new-token"))
	shot(t, p, "console-tokens")
	p.Go(e.url + "/admin/policy")
	shot(t, p, "console-policy")
	p.Go(e.url + "/admin/audit?user=alice")
	shot(t, p, "console-audit")
	p.Go(e.url + "/admin/admins")
	shot(t, p, "console-admins")
	p.Go(e.url + "/admin/users/nobody")
	shot(t, p, "console-user-unknown")

	// A first sign-in after break-glass: enrolment, then a new password.
	res, err := e.adm.RecoverAdmin(t.Context(), "root")
	if err != nil {
		t.Fatal(err)
	}
	once := e.secret(string(res.Password))
	q := e.page()
	q.Go(e.url + "/admin/login")
	q.Type("#name", "root")
	q.Type("#password", once)
	q.Click("main button[type=submit]")
	shot(t, q, "console-enrol")
	key := strings.ReplaceAll(q.Text("#secret"), " ", "")
	q.Type("#code", e.code(key))
	q.Click("main form button[type=submit]")
	shot(t, q, "console-admin-password")

	// The portal.
	u := e.page()
	u.Go(e.url + "/")
	shot(t, u, "portal-login")
	u.Type("#name", "bob")
	u.Type("#password", "Construction-Pass-1")
	u.Click("main button[type=submit]")
	shot(t, u, "portal-code")
	u.Type("#code", e.code(bobKey))
	u.Click("main button[type=submit]")
	shot(t, u, "portal-home")
	u.Click("a[href='/password']")
	u.Type("#current", "Construction-Pass-1")
	u.Type("#new", "build-it-now")
	waitRule(t, u, "upper", false)
	waitRule(t, u, "min_length", true)
	shot(t, u, "portal-password")
	c := e.page()
	e.portalSignIn(c, "carol", "Marvellous-Pass-1", "")
	c.Click("a[href='/mfa']")
	shot(t, c, "portal-enrol")

	// Refusals have pages too.
	c.Go(e.url + "/nowhere")
	shot(t, c, "portal-not-found")
}

// The check of the check: axe-core, as the tests run it, does report a
// serious violation (an image without a text alternative, a field without
// a label).
func TestAxeFindsViolations(t *testing.T) {
	e := newEnv(t, "sqlite")
	p := e.page()
	p.Go(e.url + "/admin/login")
	browsertest.Eval[bool](p, `document.querySelector("main").insertAdjacentHTML("beforeend", '<img src="/assets/none.png"><input id="unlabelled">'); true`)
	found := map[string]bool{}
	for _, v := range p.AxeAll("a broken page") {
		found[v.ID+"/"+v.Impact] = true
	}
	if !found["image-alt/critical"] || !found["label/critical"] {
		t.Errorf("axe-core found %v on a page with an unlabelled image and field", found)
	}
}

// Every page works with the keyboard alone: a skip link first, then each
// field and button in order, and Enter submits.
func TestKeyboardOnly(t *testing.T) {
	e := newEnv(t, "sqlite")
	pw, secret := e.addAdmin("root", "admin")
	e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", false)
	p := e.page()
	p.Go(e.url + "/admin/login")
	// The sign-in page focuses the name; Tab goes to the password, then the
	// button.
	if f := p.Focused(); f != "#name" {
		t.Errorf("the sign-in page starts with the focus on %q", f)
	}
	p.Press("root")
	p.Press("\t")
	if f := p.Focused(); f != "#password" {
		t.Errorf("Tab from the name goes to %q", f)
	}
	p.Press(pw)
	p.Press("\t")
	if f := p.Focused(); f != "button:Continue" {
		t.Errorf("Tab from the password goes to %q", f)
	}
	p.PressNav("\r")
	if f := p.Focused(); f != "#code" {
		t.Fatalf("the code page starts with the focus on %q (%s)", f, errorText(p))
	}
	p.Press(e.code(secret))
	p.PressNav("\r")
	if h := p.Text("h1"); h != "Users" {
		t.Fatalf("signing in by keyboard ends on %q", h)
	}
	// From the top of the users page: the skip link, then the menu.
	p.Press("\t")
	if f := p.Focused(); f != "a:Skip to content" {
		t.Errorf("the first Tab reaches %q, want the skip link", f)
	}
	p.Press("\t")
	if f := p.Focused(); f != "a:Users" {
		t.Errorf("the second Tab reaches %q, want the menu", f)
	}
	// Reach alice's link by Tab, open it with Enter, reset by keyboard.
	for range 30 {
		p.Press("\t")
		if p.Focused() == "a:alice" {
			break
		}
	}
	if f := p.Focused(); f != "a:alice" {
		t.Fatalf("Tab never reached alice's link (at %q)", f)
	}
	p.PressNav("\r")
	for range 40 {
		p.Press("\t")
		if p.Focused() == "button:Reset password" {
			break
		}
	}
	if f := p.Focused(); f != "button:Reset password" {
		t.Fatalf("Tab never reached the reset button (at %q)", f)
	}
	p.PressNav("\r")
	if !p.Has("#generated-password") {
		t.Errorf("Enter on the reset button did not reset: %s", errorText(p))
	} else {
		e.secret(p.Text("#generated-password"))
	}
}
