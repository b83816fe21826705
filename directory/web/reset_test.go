package web_test

import (
	"bytes"
	"context"
	"io"
	"mime/quotedprintable"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory"
	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/directory/mail"
	"github.com/lockstep-dev/lockstep/internal/tools/smtptest"
	"github.com/lockstep-dev/lockstep/protocol"
)

var linkRE = regexp.MustCompile(`https://[^\s]+/reset\?token=[A-Za-z0-9_%-]+`)

// The forgotten password, as a person does it: "send me a reset link",
// the mail (through a real SMTP server), the link's page with the live
// checklist and, for a user with MFA, a code; the link works once, and
// not after it expires; both refusals are audited.
func TestPortalForgottenPassword(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		smtp := smtptest.Start(t, smtptest.Options{User: "mailer", Password: "smtp-pw-123"})
		m, err := mail.New(mail.Config{URL: smtp.URL("mailer"), From: "lockstep@example.com", Password: []byte("smtp-pw-123"),
			RootCAs: smtp.CAPool, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, store, func(c *directory.Config) { c.Mailer = m; c.ResetLinkTTL = 30 * time.Minute })
		res, err := e.adm.AddUser(context.Background(), admin.AddUserRequest{Name: "alice", DisplayName: "Alice Liddell",
			Password: protocol.Secret(e.secret("Wonderland-Pass-1")), Email: "alice@example.com", MFA: true})
		if err != nil {
			t.Fatal(err)
		}
		key := e.secret(string(res.MFA.Secret))

		p := e.page()
		p.Go(e.url + "/")
		p.Click("a[href='/forgot']")
		p.Type("#who", "alice@example.com")
		p.Click("main button[type=submit]")
		sent := p.Text(".banner.notice")
		if !strings.Contains(sent, "a reset link is on its way") {
			t.Fatalf("asking for a link says %q (%s)", sent, errorText(p))
		}
		// An unknown address gets the same answer.
		p.Type("#who", "nobody@example.com")
		p.Click("main button[type=submit]")
		if got := p.Text(".banner.notice"); got != sent {
			t.Errorf("an unknown address says %q, a known one %q", got, sent)
		}
		link := linkIn(t, smtp, "alice@example.com")
		e.secret(link[strings.Index(link, "=")+1:])
		if !strings.HasPrefix(link, e.url+"/reset?token=") {
			t.Errorf("the mailed link is %q, want it on %s", link, e.url)
		}

		p.Go(link)
		if got := p.Text("#change-form p"); !strings.Contains(got, "alice") {
			t.Fatalf("the link's page reads %q (%s)", got, errorText(p))
		}
		p.Type("#new", "short")
		waitRule(t, p, "min_length", false)
		p.Type("#new", e.secret("Rabbit-Hole-Deep-9"))
		waitRule(t, p, "min_length", true)
		p.Type("#confirm", "Rabbit-Hole-Deep-9")
		p.Type("#code", "000000")
		p.Click("#change-form button[type=submit]")
		if got := errorText(p); !strings.Contains(got, "code is not valid") {
			t.Errorf("a wrong code reads %q", got)
		}
		p.Type("#new", "Rabbit-Hole-Deep-9")
		p.Type("#confirm", "Rabbit-Hole-Deep-9")
		p.Type("#code", e.code(key))
		p.Click("#change-form button[type=submit]")
		if got := p.Text(".banner.notice"); !strings.Contains(got, "Your password is reset") {
			t.Fatalf("after the reset the page says %q (%s)", got, errorText(p))
		}
		e.portalSignIn(e.page(), "alice", "Rabbit-Hole-Deep-9", key)

		// Used twice: refused, audited.
		p.Go(link)
		if got := errorText(p); !strings.Contains(got, "not valid") {
			t.Errorf("the link used again reads %q", got)
		}
		e.wantAudit(admin.AuditQuery{Event: "reset_link_refused"}, func(ev admin.AuditEvent) bool { return ev.Detail["reason"] == "used" },
			"reset_link_refused (used)")

		// Expired: a new link, 31 minutes later.
		p.Go(e.url + "/forgot")
		p.Type("#who", "alice")
		p.Click("main button[type=submit]")
		late := linkIn(t, smtp, "alice@example.com")
		e.secret(late[strings.Index(late, "=")+1:])
		e.clock.Advance(31 * time.Minute)
		p.Go(late)
		if got := errorText(p); !strings.Contains(got, "not valid") {
			t.Errorf("the expired link reads %q", got)
		}
		e.wantAudit(admin.AuditQuery{Event: "reset_link_refused"}, func(ev admin.AuditEvent) bool { return ev.Detail["reason"] == "expired" },
			"reset_link_refused (expired)")
	})
}

// linkIn waits for the newest mail to addr and returns the link in it.
func linkIn(t *testing.T, smtp *smtptest.Server, addr string) string {
	t.Helper()
	for range 200 {
		for _, m := range smtp.Messages(t) {
			if len(m.To) == 0 || m.To[0] != addr {
				continue
			}
			var r io.Reader = bytes.NewReader(m.Raw[bytes.Index(m.Raw, []byte("\r\n\r\n"))+4:])
			if strings.EqualFold(m.Msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
				r = quotedprintable.NewReader(r)
			}
			body, _ := io.ReadAll(r)
			if l := linkRE.FindString(string(body)); l != "" && !usedLinks[l] {
				usedLinks[l] = true
				return l
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("no new mail with a link to %s", addr)
	return ""
}

var usedLinks = map[string]bool{}
