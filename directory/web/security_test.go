package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/internal/tools/browsertest"
)

// csrfOf is the page's CSRF token, as its forms carry it.
func csrfOf(p *browsertest.Page) string {
	return browsertest.Eval[string](p, `document.querySelector('meta[name="csrf-token"]').content`)
}

// evalAwait evaluates a promise.
func evalAwait(p *browsertest.Page, script string) int {
	var n int
	p.Do("evaluating", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		var err error
		n, err = chromedp.Evaluate[int](script, chromedp.EvalAwaitPromise)(ctx, t)
		return err
	}))
	return n
}

// postAwait sends a form from inside the page (so the browser adds its
// cookies and Sec-Fetch-Site: same-origin, as a form of the page would)
// and returns the status.
func postAwait(p *browsertest.Page, path string, fields map[string]string) int {
	var parts []string
	for k, v := range fields {
		parts = append(parts, fmt.Sprintf("%q: %q", k, v))
	}
	return evalAwait(p, fmt.Sprintf(`fetch(%q, {method: "POST", body: new URLSearchParams({%s}), redirect: "manual"}).then(r => r.status)`,
		path, strings.Join(parts, ", ")))
}

// A form without the session's CSRF token, or with a forged one, is
// refused, changes nothing and is audited.
func TestSecurityCSRF(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		pw, secret := e.addAdmin("root", "admin")
		e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", false)
		p := e.page()
		e.consoleSignIn(p, "root", pw, secret)
		for _, tc := range []struct {
			name   string
			fields map[string]string
		}{
			{"missing", map[string]string{"confirm_name": "alice"}},
			{"forged", map[string]string{"confirm_name": "alice", "csrf": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
			{"another session's", map[string]string{"confirm_name": "alice", "csrf": otherCSRF(t, e)}},
		} {
			if st := postAwait(p, "/admin/users/alice/delete", tc.fields); st != 403 {
				t.Errorf("a %s CSRF token answered %d, want 403", tc.name, st)
			}
		}
		if _, err := e.adm.User(context.Background(), "alice"); err != nil {
			t.Fatalf("alice is gone after refused deletions: %v", err)
		}
		e.wantAudit(admin.AuditQuery{Event: "web_csrf_refused"}, func(ev admin.AuditEvent) bool {
			return ev.Actor == "admin:root" && ev.Detail["path"] == "/admin/users/alice/delete"
		}, "web_csrf_refused by root")
		// The sign-in form too: without the pre-session token.
		q := e.page()
		q.Go(e.url + "/admin/login")
		if st := postAwait(q, "/admin/login", map[string]string{"name": "root", "password": pw}); st != 403 {
			t.Errorf("a sign-in without its CSRF token answered %d", st)
		}
	})
}

// otherCSRF is a valid CSRF token of another browser's session.
func otherCSRF(t *testing.T, e *env) string {
	t.Helper()
	pw, secret := e.addAdmin("other", "admin")
	o := e.page()
	e.consoleSignIn(o, "other", pw, secret)
	return csrfOf(o)
}

// cookie reads the browser's session cookie (HttpOnly: no page script can).
func cookie(t *testing.T, p *browsertest.Page, name string) *network.Cookie {
	t.Helper()
	var out *network.Cookie
	p.Do("reading cookies", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
		if err != nil {
			return err
		}
		for _, c := range res.Cookies {
			if c.Name == name {
				out = c
			}
		}
		return nil
	}))
	if out == nil {
		t.Fatalf("no cookie %s", name)
	}
	return out
}

// setCookie plants a cookie in another browser, as a thief would.
func setCookie(t *testing.T, p *browsertest.Page, url string, c *network.Cookie) {
	t.Helper()
	p.Do("planting a cookie", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		yes := true
		_, err := cdp.Call(ctx, tg, network.SetCookie, network.SetCookieParams{Name: c.Name, Value: c.Value, URL: url + "/",
			Secure: &yes, HTTPOnly: &yes, SameSite: network.CookieSameSiteStrict})
		return err
	}))
}

// The session cookie is Secure, HttpOnly, SameSite=Strict and host-only;
// replayed after sign-out or after the idle timeout it opens nothing, and
// that is audited.
func TestSecuritySessionReplay(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		pw, secret := e.addAdmin("root", "admin")
		p := e.page()
		e.consoleSignIn(p, "root", pw, secret)
		c := cookie(t, p, "__Host-lockstep-console")
		if !c.Secure || !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/" || !c.Session {
			t.Errorf("the session cookie is %+v", c)
		}
		if browsertest.Eval[string](p, `document.cookie`) != "" {
			t.Error("a page script can read a cookie")
		}
		// The same cookie in another browser works while the session lives
		// (it is the bearer), and not after sign-out.
		thief := e.page()
		setCookie(t, thief, e.url, c)
		thief.Go(e.url + "/admin/users")
		if h := thief.Text("h1"); h != "Users" {
			t.Fatalf("the planted live cookie shows %q", h)
		}
		p.Click("form.signout button")
		if got := p.Text(".banner.notice"); got != "You are signed out." {
			t.Errorf("signing out says %q", got)
		}
		thief.Go(e.url + "/admin/users")
		if h := thief.Text("h1"); h != "Sign in" || !strings.Contains(thief.Text(".banner.notice"), "session has ended") {
			t.Errorf("the cookie replayed after sign-out shows %q", h)
		}
		if st := postAwait(thief, "/admin/users/alice/unlock", map[string]string{"csrf": "x"}); st != 403 {
			t.Errorf("a POST with the dead cookie answered %d", st)
		}
		e.wantAudit(admin.AuditQuery{Event: "web_session_refused"}, func(ev admin.AuditEvent) bool {
			return ev.Detail["reason"] == "unknown_session"
		}, "web_session_refused (unknown_session)")

		// Idle timeout: 15 minutes without a request end the session.
		e.consoleSignIn(p, "root", pw, secret)
		c = cookie(t, p, "__Host-lockstep-console")
		e.clock.Advance(16 * time.Minute)
		p.Go(e.url + "/admin/users")
		if h := p.Text("h1"); h != "Sign in" {
			t.Errorf("after 16 idle minutes the console shows %q", h)
		}
		thief2 := e.page()
		setCookie(t, thief2, e.url, c)
		thief2.Go(e.url + "/admin/users")
		if h := thief2.Text("h1"); h != "Sign in" {
			t.Errorf("the idle session's cookie replayed shows %q", h)
		}
		e.wantAudit(admin.AuditQuery{Event: "web_session_refused"}, func(ev admin.AuditEvent) bool {
			return ev.Detail["reason"] == "idle_timeout"
		}, "web_session_refused (idle_timeout)")
	})
}

// The helpdesk handles users only: no devices, policy, tokens or
// administrators, by link or by a forged request; the auditor reads
// everything and posts nothing.
func TestSecurityRoles(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		e.addAdmin("root", "admin")
		hpw, hsecret := e.addAdmin("helen", "helpdesk")
		apw, asecret := e.addAdmin("audrey", "auditor")
		e.addUser("alice", "Alice Liddell", "Wonderland-Pass-1", true)
		d := e.enrollDevice("alices-macbook", "alice")
		_ = d

		h := e.page()
		e.consoleSignIn(h, "helen", hpw, hsecret)
		nav := h.Text("nav")
		if strings.Contains(nav, "Devices") || strings.Contains(nav, "Policy") || strings.Contains(nav, "Administrators") {
			t.Errorf("the helpdesk's menu reads %q", nav)
		}
		for _, path := range []string{"/admin/devices", "/admin/policy", "/admin/tokens", "/admin/admins", "/admin/audit"} {
			h.Go(e.url + path)
			if got := h.Text("#page-error"); got != "Your role does not allow this." {
				t.Errorf("the helpdesk opening %s reads %q", path, got)
			}
		}
		h.Go(e.url + "/admin/users/alice")
		if h.Has("#delete-h") || h.Has("input[value=disable]") {
			t.Error("the helpdesk is offered delete or MFA off")
		}
		tok := csrfOf(h)
		for _, tc := range []struct {
			path   string
			fields map[string]string
		}{
			{"/admin/policy", map[string]string{"csrf": tok, "min_length": "4", "history_count": "0", "max_age_days": "0", "expiry_warning_days": "0"}},
			{"/admin/users/alice/delete", map[string]string{"csrf": tok, "confirm_name": "alice"}},
			{"/admin/users/alice/mfa", map[string]string{"csrf": tok, "action": "disable"}},
			{"/admin/admins/root/reset", map[string]string{"csrf": tok}},
			{"/admin/tokens", map[string]string{"csrf": tok, "ttl": "24h"}},
		} {
			if st := postAwait(h, tc.path, tc.fields); st != 403 {
				t.Errorf("the helpdesk posting %s answered %d, want 403", tc.path, st)
			}
		}
		if pol, _ := e.adm.Policy(context.Background()); pol.MinLength == 4 {
			t.Error("the helpdesk changed the policy")
		}
		if u, _ := e.adm.User(context.Background(), "alice"); !u.MFA {
			t.Error("the helpdesk turned MFA off")
		}
		e.wantAudit(admin.AuditQuery{Event: "web_forbidden", Actor: "admin:helen"}, func(ev admin.AuditEvent) bool {
			return ev.Detail["path"] == "/admin/policy" && ev.Detail["reason"] == "role"
		}, "web_forbidden of helen's policy post")

		a := e.page()
		e.consoleSignIn(a, "audrey", apw, asecret)
		for _, path := range []string{"/admin/devices", "/admin/policy", "/admin/tokens", "/admin/admins", "/admin/audit", "/admin/users/alice"} {
			a.Go(e.url + path)
			if a.Has("#page-error") {
				t.Errorf("the auditor reading %s: %s", path, errorText(a))
			}
			if a.Has("main form[method=post]") {
				t.Errorf("the auditor is offered a form on %s", path)
			}
		}
		atok := csrfOf(a)
		for _, path := range []string{"/admin/users/alice/reset", "/admin/users/alice/unlock", "/admin/devices/x/revoke", "/admin/policy"} {
			if st := postAwait(a, path, map[string]string{"csrf": atok, "mode": "generate"}); st != 403 {
				t.Errorf("the auditor posting %s answered %d, want 403", path, st)
			}
		}
		if u, _ := e.adm.User(context.Background(), "alice"); u.PasswordVersion != 1 {
			t.Error("the auditor reset alice's password")
		}
		e.wantAudit(admin.AuditQuery{Event: "web_forbidden", Actor: "admin:audrey"}, nil, "web_forbidden of audrey")
	})
}

// Script in any field a person fills is refused and audited; what pages
// show of stored text (a display name from the directory) is escaped, and
// no script runs.
func TestSecurityScriptInFields(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		e := newEnv(t, store)
		pw, secret := e.addAdmin("root", "admin")
		const payload = `"><img src=x id=pwned onerror="document.title='pwned'"><script>document.title='pwned'</script>`
		e.addUser("alice", payload, "Wonderland-Pass-1", false)
		p := e.page()
		e.consoleSignIn(p, "root", pw, secret)
		inert := func(where string) {
			t.Helper()
			if p.Title() == "pwned" || p.Has("#pwned") || p.Has("main script") {
				t.Errorf("script ran or markup was injected on %s", where)
			}
		}
		p.Go(e.url + "/admin/users")
		if got := p.Text("tbody tr td"); got != payload {
			t.Errorf("the display name reads %q, want it as text", got)
		}
		inert("the users list")
		p.Go(e.url + "/admin/users/alice")
		inert("the user's page")

		// Console forms: each field, typed as a person would.
		for _, tc := range []struct {
			page, field, submit string
		}{
			{"/admin/users", "#q", "form.search button"},
			{"/admin/audit", "#f-user", ".filters button"},
			{"/admin/audit", "#f-admin", ".filters button"},
			{"/admin/audit", "#f-event", ".filters button"},
			{"/admin/audit", "#f-since", ".filters button"},
			{"/admin/tokens", "#token-note", "#create-h + form button"},
			{"/admin/tokens", "#token-users", "#create-h + form button"},
			{"/admin/policy", "#min_length", "main form button[type=submit]"},
			{"/admin/users/alice", "#delete-confirm", "#delete-h + form button"},
		} {
			// Refusals are audited at most 3 a minute per person (noise):
			// a minute between them writes each.
			e.clock.Advance(time.Minute)
			p.Go(e.url + tc.page)
			p.Type(tc.field, payload)
			p.Click(tc.submit)
			if got := errorText(p); !strings.Contains(got, "held < or >") {
				t.Errorf("script in %s on %s: %q", tc.field, tc.page, got)
			}
			inert(tc.field + " on " + tc.page)
		}
		if ts, _ := e.adm.EnrollTokens(context.Background()); len(ts) != 0 {
			t.Errorf("a token was made from a refused form: %+v", ts)
		}
		e.wantAudit(admin.AuditQuery{Event: "web_input_refused", Actor: "admin:root"}, func(ev admin.AuditEvent) bool {
			return ev.Detail["field"] == "note"
		}, "web_input_refused of the token note")

		// The sign-in forms, without a session.
		for _, path := range []string{"/admin/login", "/"} {
			q := e.page()
			q.Go(e.url + path)
			q.Type("#name", payload)
			q.Type("#password", "whatever")
			q.Click("main button[type=submit]")
			if got := errorText(q); !strings.Contains(got, "held < or >") {
				t.Errorf("script in the sign-in name on %s: %q", path, got)
			}
			if q.Title() == "pwned" || q.Has("#pwned") {
				t.Errorf("script ran on %s", path)
			}
		}
		e.wantAudit(admin.AuditQuery{Event: "web_input_refused"}, func(ev admin.AuditEvent) bool {
			return ev.Detail["path"] == "/login" && ev.Detail["field"] == "name"
		}, "web_input_refused of the portal's sign-in")
	})
}
