package directory

import (
	"io"
	"mime/quotedprintable"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/directory/mail"
	"github.com/lockstep-dev/lockstep/internal/tools/smtptest"
	"github.com/lockstep-dev/lockstep/protocol"
)

var portal = Actor{Kind: ActorUser, Addr: "192.0.2.10"}

// TestResetLinks: a link made for a user (by name or address) sets a new
// password once, pushes it to the user's Macs, and is refused after use,
// after expiry and after it was ended; the policy applies and a refusal
// spends nothing.
func TestResetLinks(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.secret(alicePW)
	if _, err := e.adm.AddUser(ctx, admin.AddUserRequest{Name: "alice", Password: protocol.Secret(alicePW), Email: "Alice@Example.com"}); err != nil {
		t.Fatal(err)
	}
	a := e.connect(e.enroll("alice"), 0)
	a.bind("alice")
	if _, err := e.srv.CreateResetLink(ctx, portal, "nobody@example.com"); !isCode(err, protocol.CodeUnknownUser) {
		t.Fatalf("link for an unknown address: %v", err)
	}
	link, err := e.srv.CreateResetLink(ctx, portal, "ALICE@example.COM")
	if err != nil {
		t.Fatal(err)
	}
	e.secret(string(link.Token))
	if link.User != "alice" || link.Email != "alice@example.com" || !link.ExpiresAt.Equal(e.clock.Now().Add(time.Hour)) || len(link.Token) < 40 {
		t.Fatalf("link %+v", link)
	}
	info, err := e.srv.CheckResetLink(ctx, portal, link.Token)
	if err != nil || info.User != "alice" || info.NeedsCode {
		t.Fatalf("check: %+v %v", info, err)
	}
	// A password the policy refuses spends nothing.
	if _, err := e.srv.RedeemResetLink(ctx, portal, link.Token, []byte("short"), ""); !isCode(err, protocol.CodePolicyViolation) {
		t.Fatalf("weak password: %v", err)
	}
	if _, err := e.srv.RedeemResetLink(ctx, portal, link.Token, []byte(alicePW), ""); !isCode(err, protocol.CodePolicyViolation) {
		t.Fatalf("the current password again: %v", err)
	}
	newPW := e.secret("Reset-By-Link-1!")
	st, err := e.srv.RedeemResetLink(ctx, portal, link.Token, []byte(newPW), "")
	if err != nil || st.PasswordVersion != 2 || st.MustChange {
		t.Fatalf("redeem: %+v %v", st, err)
	}
	p := a.push()
	if r := decodeAs[protocol.PasswordReset](t, p); p.Type != protocol.TypePasswordReset || r.PasswordVersion != 2 || r.Temporary {
		t.Fatalf("push %s %+v", p.Type, r)
	}
	a.ok(protocol.TypeVerifyPassword, "", protocol.VerifyPasswordRequest{User: "alice", Password: protocol.Secret(newPW)}, nil)
	// Used: refused, whatever is asked.
	for _, try := range []func() error{
		func() error { _, err := e.srv.CheckResetLink(ctx, portal, link.Token); return err },
		func() error {
			_, err := e.srv.RedeemResetLink(ctx, portal, link.Token, []byte("Reset-By-Link-2!"), "")
			return err
		},
		func() error {
			_, err := e.srv.RedeemResetLink(ctx, portal, []byte("made-up-token"), []byte("Reset-By-Link-2!"), "")
			return err
		},
	} {
		if err := try(); !isCode(err, admin.CodeResetLinkInvalid) {
			t.Fatalf("used or unknown link: %v", err)
		}
	}
	// Expired.
	late, err := e.srv.CreateResetLink(ctx, portal, "alice")
	if err != nil {
		t.Fatal(err)
	}
	e.secret(string(late.Token))
	e.clock.Advance(time.Hour)
	if _, err := e.srv.RedeemResetLink(ctx, portal, late.Token, []byte("Reset-By-Link-2!"), ""); !isCode(err, admin.CodeResetLinkInvalid) {
		t.Fatalf("expired link: %v", err)
	}
	// Ended by an administrator; a redeemed link ends the user's others.
	l1, _ := e.srv.CreateResetLink(ctx, portal, "alice")
	l2, _ := e.srv.CreateResetLink(ctx, portal, "alice")
	e.secret(string(l1.Token))
	e.secret(string(l2.Token))
	if n, err := e.srv.ExpireResetLinks(ctx, Actor{Kind: ActorAdmin, Name: "root"}, "alice"); err != nil || n != 2 {
		t.Fatalf("expire: %d %v", n, err)
	}
	if _, err := e.srv.RedeemResetLink(ctx, portal, l1.Token, []byte("Reset-By-Link-2!"), ""); !isCode(err, admin.CodeResetLinkInvalid) {
		t.Fatalf("ended link: %v", err)
	}
	l3, _ := e.srv.CreateResetLink(ctx, portal, "alice")
	l4, _ := e.srv.CreateResetLink(ctx, portal, "alice")
	e.secret(string(l3.Token))
	e.secret(string(l4.Token))
	if _, err := e.srv.RedeemResetLink(ctx, portal, l3.Token, []byte(e.secret("Reset-By-Link-3!")), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.RedeemResetLink(ctx, portal, l4.Token, []byte("Reset-By-Link-4!"), ""); !isCode(err, admin.CodeResetLinkInvalid) {
		t.Fatalf("a second outstanding link after a reset: %v", err)
	}
	evs := e.audit("alice")
	reasons := map[string]bool{}
	for _, ev := range evs {
		if ev.Event == "reset_link_refused" {
			reasons[ev.Detail["reason"]] = true
		}
	}
	for _, want := range []string{"used", "expired"} {
		if !reasons[want] {
			t.Errorf("no reset_link_refused with reason %s: %v", want, reasons)
		}
	}
	for _, want := range []string{"reset_link_created", "password_reset_by_link", "reset_links_expired"} {
		if !hasEvent(evs, want) {
			t.Errorf("no %s in the audit log", want)
		}
	}
}

// TestResetLinkMFA: for a user with MFA the link alone is not enough.
func TestResetLinkMFA(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.addUser("alice", alicePW, true)
	secret := string(res.MFA.Secret)
	link, err := e.srv.CreateResetLink(ctx, portal, "alice")
	if err != nil {
		t.Fatal(err)
	}
	e.secret(string(link.Token))
	if info, err := e.srv.CheckResetLink(ctx, portal, link.Token); err != nil || !info.NeedsCode {
		t.Fatalf("check: %+v %v", info, err)
	}
	pw := []byte(e.secret("Reset-With-Code-1!"))
	if _, err := e.srv.RedeemResetLink(ctx, portal, link.Token, pw, ""); !isCode(err, protocol.CodeMFARequired) {
		t.Fatalf("no code: %v", err)
	}
	if _, err := e.srv.RedeemResetLink(ctx, portal, link.Token, pw, "000000"); !isCode(err, protocol.CodeMFAInvalid) {
		t.Fatalf("wrong code: %v", err)
	}
	code := oathtool(t, secret, e.clock.Now())
	if _, err := e.srv.RedeemResetLink(ctx, portal, link.Token, pw, code); err != nil {
		t.Fatalf("with the code: %v", err)
	}
	// The code is spent with it.
	link2, _ := e.srv.CreateResetLink(ctx, portal, "alice")
	e.secret(string(link2.Token))
	if _, err := e.srv.RedeemResetLink(ctx, portal, link2.Token, []byte("Reset-With-Code-2!"), code); !isCode(err, protocol.CodeMFAReplayed) {
		t.Fatalf("replayed code: %v", err)
	}
	// During an enrolment period the link is enough.
	if _, err := e.adm.SetMFAWith(ctx, "alice", admin.MFARequest{Action: admin.MFAReset, EnrollDays: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.RedeemResetLink(ctx, portal, link2.Token, []byte(e.secret("Reset-With-Code-2!")), ""); err != nil {
		t.Fatalf("during the enrolment period: %v", err)
	}
}

// TestSendResetLink mails a link through a real SMTP server (aiosmtpd,
// STARTTLS, signed in) and resets with the token the mail carries.
func TestSendResetLink(t *testing.T) {
	smtp := smtptest.Start(t, smtptest.Options{User: "mailer", Password: "smtp-pw-123"})
	m, err := mail.New(mail.Config{URL: smtp.URL("mailer"), From: "lockstep@example.com", Password: []byte("smtp-pw-123"),
		RootCAs: smtp.CAPool, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.Mailer = m; c.ResetLinkTTL = 30 * time.Minute })
	ctx := t.Context()
	e.secret(alicePW)
	if _, err := e.adm.AddUser(ctx, admin.AddUserRequest{Name: "alice", Password: protocol.Secret(alicePW), Email: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	e.addUser("bob", "Second-Secret-77y", false) // no address
	linkURL := func(tok string) string { return "https://dir.example.com/reset?token=" + url.QueryEscape(tok) }
	if err := e.srv.SendResetLink(ctx, portal, "bob", linkURL); !isCode(err, protocol.CodeBadRequest) {
		t.Fatalf("no address: %v", err)
	}
	if err := e.srv.SendResetLink(ctx, portal, "nobody@example.com", linkURL); !isCode(err, protocol.CodeUnknownUser) {
		t.Fatalf("unknown address: %v", err)
	}
	if err := e.srv.SendResetLink(ctx, portal, "alice@example.com", linkURL); err != nil {
		t.Fatal(err)
	}
	msgs := smtp.Messages(t)
	if len(msgs) != 1 || msgs[0].To[0] != "alice@example.com" || !msgs[0].TLS || !msgs[0].Auth {
		t.Fatalf("messages %+v", msgs)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msgs[0].Msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	found := regexp.MustCompile(`https://dir\.example\.com/reset\?token=([A-Za-z0-9_-]+)`).FindSubmatch(body)
	if found == nil || !strings.Contains(string(body), "30 minutes") || !strings.Contains(string(body), "alice") {
		t.Fatalf("mail body %q", body)
	}
	token := found[1]
	e.secret(string(token))
	if _, err := e.srv.RedeemResetLink(ctx, portal, token, []byte(e.secret("Mailed-Reset-1!")), ""); err != nil {
		t.Fatal(err)
	}
	if !hasEvent(e.audit("alice"), "reset_link_sent") {
		t.Error("no reset_link_sent in the audit log")
	}
	// Without a mailer the directory says so.
	e2 := newEnv(t)
	e2.addUser("alice", alicePW, false)
	if err := e2.srv.SendResetLink(ctx, portal, "alice", linkURL); !isCode(err, protocol.CodeUnsupported) {
		t.Fatalf("no mailer: %v", err)
	}
}

// TestEditUserAndEmail: addresses are checked, stored normalized and shown.
func TestEditUserAndEmail(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.addUser("alice", alicePW, false)
	for _, bad := range []string{"not-an-address", "Alice <a@example.com>", "a@b", "a@example.com\r\nBcc: x@y.z", "a\u202e@example.com"} {
		if _, err := e.adm.EditUser(ctx, "alice", admin.EditUserRequest{Email: &bad}); !isCode(err, protocol.CodeBadRequest) {
			t.Errorf("address %q: %v", bad, err)
		}
	}
	addr, name := " Alice.Liddell@Example.org ", "Alice Liddell"
	u, err := e.adm.EditUser(ctx, "alice", admin.EditUserRequest{Email: &addr, DisplayName: &name})
	if err != nil || u.Email != "alice.liddell@example.org" || u.DisplayName != name {
		t.Fatalf("edit: %+v %v", u, err)
	}
	shown, err := e.srv.ShowUser(ctx, "alice")
	if err != nil || shown.Email != "alice.liddell@example.org" {
		t.Fatalf("show: %+v %v", shown, err)
	}
	empty := ""
	if u, err := e.adm.EditUser(ctx, "alice", admin.EditUserRequest{Email: &empty}); err != nil || u.Email != "" {
		t.Fatalf("clearing: %+v %v", u, err)
	}
	if !hasEvent(e.audit("alice"), "user_edited") {
		t.Error("no user_edited in the audit log")
	}
}

// TestPlaceReports: a Mac reports each place's state for its user; the
// console reads it with the user; strangers and bad reports are refused.
func TestPlaceReports(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePW, false)
	e.addUser("bob", "Second-Secret-77y", false)
	dev := e.enroll("alice")
	a := e.connect(dev, 0)
	a.bind("alice")
	at := e.clock.Now().Add(-time.Minute)
	a.ok(protocol.TypeReportPlaces, "", protocol.ReportPlacesRequest{User: "alice", Places: []protocol.PlaceReport{
		{Place: protocol.PlaceDirectory, State: protocol.PlaceOK, At: at},
		{Place: protocol.PlaceLocal, State: protocol.PlaceOK, At: at},
		{Place: protocol.PlaceFileVault, State: protocol.PlaceNotApplicable, At: at},
		{Place: protocol.PlaceKeychain, State: protocol.PlaceBehind, At: at.Add(time.Hour)}, // a clock ahead
	}}, nil)
	a.fails(protocol.TypeReportPlaces, "", protocol.ReportPlacesRequest{User: "bob", Places: []protocol.PlaceReport{
		{Place: protocol.PlaceLocal, State: protocol.PlaceOK, At: at}}}, protocol.CodeNotBound)
	for _, bad := range [][]protocol.PlaceReport{
		{{Place: "password", State: protocol.PlaceOK}},
		{{Place: protocol.PlaceLocal, State: "hunter2"}},
		{{Place: protocol.PlaceLocal, State: protocol.PlaceOK}, {Place: protocol.PlaceLocal, State: protocol.PlaceOK}},
	} {
		a.fails(protocol.TypeReportPlaces, "", protocol.ReportPlacesRequest{User: "alice", Places: bad}, protocol.CodeBadRequest)
	}
	u, err := e.srv.ShowUser(t.Context(), "alice")
	if err != nil || len(u.Devices) != 1 {
		t.Fatalf("show: %+v %v", u, err)
	}
	got := map[string]admin.Place{}
	for _, p := range u.Devices[0].Places {
		got[p.Place] = p
	}
	if len(got) != 4 || got["keychain"].State != "behind" || !got["keychain"].At.Equal(e.clock.Now()) || !got["local"].At.Equal(at) ||
		got["filevault"].State != "not_applicable" {
		t.Fatalf("places %+v", got)
	}
	// The admin API shows the same.
	au, err := e.adm.User(t.Context(), "alice")
	if err != nil || len(au.Devices) != 1 || len(au.Devices[0].Places) != 4 {
		t.Fatalf("admin show: %+v %v", au, err)
	}
	if _, err := e.adm.RevokeDevice(t.Context(), dev.id); err != nil {
		t.Fatal(err)
	}
	if u, _ := e.srv.ShowUser(t.Context(), "alice"); len(u.Devices) != 0 {
		t.Fatalf("after revoking: %+v", u.Devices)
	}
}
