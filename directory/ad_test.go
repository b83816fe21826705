package directory

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/directory/source/ad"
	"github.com/lockstep-dev/lockstep/directory/source/sourcetest"
	"github.com/lockstep-dev/lockstep/internal/tools/sambatest"
	"github.com/lockstep-dev/lockstep/protocol"
)

// adFixture is an OU of the test's own in the Samba DC, with a service
// account holding rights.
type adFixture struct {
	dc  *sambatest.DC
	ou  string
	svc sambatest.User
}

func newADFixture(t *testing.T, rights ...string) adFixture {
	t.Helper()
	dc := sambatest.Need(t)
	ou := dc.NewOU(t)
	return adFixture{dc: dc, ou: ou, svc: dc.ServiceAccount(t, ou, rights...)}
}

// source connects a new AD source (one per replica, as each replica has).
func (f adFixture) source(t *testing.T) *ad.Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := ad.New(ctx, ad.Config{URL: sambatest.URL, CAFile: f.dc.CAFile, BaseDN: f.ou, BindDN: f.svc.DN,
		BindPassword: []byte(f.svc.Password)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// watching waits until an AD source's change notification is up.
func watching(t *testing.T, e *testEnv) {
	t.Helper()
	s := e.srv.src.(*ad.Source)
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().Notifications < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the AD source's notification searches did not open")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventsAfter waits until the replica handled more than n source events.
func eventsAfter(t *testing.T, e *testEnv, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for e.srv.sourceEvents.Load() <= n {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not hear of the change from AD")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Several replicas on one PostgreSQL, each with its own AD source (so each
// hears every change from AD): a reset made in AD reaches the user's
// device once; a change from one of the user's Macs is not pushed back to
// it as a change made elsewhere, and reaches the user's other Mac once.
func TestReplicasPushADChangesOnce(t *testing.T) {
	f := newADFixture(t, sambatest.RightReset, sambatest.RightPwdLastSet, sambatest.RightLockoutTime)
	rs := replicas(t, 2, func(c *Config) { c.Source = f.source(t) })
	pw := sourcetest.Password()
	u := f.dc.AddUser(t, f.ou, "rep", pw)
	a := rs[0].connect(rs[0].enroll(u.Name), 0)
	b := rs[1].connect(rs[1].enroll(u.Name), 0)
	watching(t, rs[0])
	watching(t, rs[1])

	// A reset made in AD, heard by both replicas.
	n0, n1 := rs[0].srv.sourceEvents.Load(), rs[1].srv.sourceEvents.Load()
	temp := sourcetest.Password()
	f.dc.SetPassword(t, u.DN, temp, true)
	for _, dev := range []*agent{a, b} {
		p := dev.push()
		var r protocol.PasswordReset
		if err := p.Decode(&r); err != nil || p.Type != protocol.TypePasswordReset || !r.Temporary || r.PasswordVersion != 2 {
			t.Fatalf("push %s %s (%v)", p.Type, p.Body, err)
		}
	}
	eventsAfter(t, rs[0], n0)
	eventsAfter(t, rs[1], n1)
	a.noPush()
	b.noPush()

	// A change from Mac a: AD applies it; both replicas hear of it from
	// AD too; a gets no push, b gets one.
	n0, n1 = rs[0].srv.sourceEvents.Load(), rs[1].srv.sourceEvents.Load()
	perm := sourcetest.Password()
	var st protocol.AccountState
	a.ok(protocol.TypeChangePassword, "chg-1", change(u.Name, rs[0].secret(temp), rs[0].secret(perm), ""), &st)
	if st.PasswordVersion != 3 || st.MustChange {
		t.Fatalf("after the change: %+v", st)
	}
	if err := f.dc.Bind(u.DN, perm); err != nil {
		t.Fatalf("AD does not take the new password: %v", err)
	}
	if p := b.push(); p.Type != protocol.TypePasswordReset {
		t.Fatalf("b got %s", p.Type)
	}
	eventsAfter(t, rs[0], n0)
	eventsAfter(t, rs[1], n1)
	a.noPush()
	b.noPush()
}

// With a bind account that may only read, `user reset` and `user unlock`
// say which right it lacks; nothing changes.
func TestADAdminWithoutRights(t *testing.T) {
	f := newADFixture(t)
	e := newEnv(t, func(c *Config) { c.Source = f.source(t) })
	u := f.dc.AddUser(t, f.ou, "norights", sourcetest.Password())
	_, err := e.adm.ResetPassword(t.Context(), u.Name, admin.ResetRequest{Temporary: true})
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != admin.CodeNotPermitted || !strings.Contains(pe.Message, "may not reset passwords") ||
		!strings.Contains(pe.Message, "Reset Password") {
		t.Fatalf("reset without the right: %v", err)
	}
	_, err = e.adm.Unlock(t.Context(), u.Name)
	if !errors.As(err, &pe) || pe.Code != admin.CodeNotPermitted || !strings.Contains(pe.Message, "lockoutTime") {
		t.Fatalf("unlock without the right: %v", err)
	}
	if err := f.dc.Bind(u.DN, u.Password); err != nil {
		t.Fatalf("the refused reset changed the password: %v", err)
	}
	_, err = e.adm.AddUser(t.Context(), admin.AddUserRequest{Name: "newbie", Password: protocol.Secret("Pw-1234-New-Zz")})
	if !errors.As(err, &pe) || pe.Code != protocol.CodeUnsupported || !strings.Contains(pe.Message, "Active Directory owns the users") {
		t.Fatalf("user add: %v", err)
	}
}

// A device not bound to the user cannot lock the user out in AD: its wrong
// guesses stop counting (linking is blocked) two short of AD's threshold.
func TestADStrangersCannotLockTheUser(t *testing.T) {
	f := newADFixture(t)
	e := newEnv(t, func(c *Config) { c.Source = f.source(t) })
	u := f.dc.AddUser(t, f.ou, "strg", sourcetest.Password())
	stranger := e.connect(e.enroll(), 0)
	for i := range 8 {
		stranger.fails(protocol.TypeVerifyPassword, "", verify(u.Name, e.secret(fmt.Sprintf("Wrong-Guess-%d-x!", i))), protocol.CodeWrongPassword)
	}
	if err := f.dc.Bind(u.DN, u.Password); err != nil {
		t.Fatalf("a stranger's guesses locked the user in AD: %v", err)
	}
}

// TestADMFAEnrolmentAndResetLink (issue 14/15): Lockstep's TOTP for an AD
// user, reset with an enrolment period: the Mac is told, a change in AD
// goes through without a code, the enrolment makes codes required; a reset
// link found by the user's AD mail sets the password in AD.
func TestADMFAEnrolmentAndResetLink(t *testing.T) {
	f := newADFixture(t, sambatest.RightReset, sambatest.RightPwdLastSet)
	e := newEnv(t, func(c *Config) { c.Source = f.source(t) })
	pw := sourcetest.Password()
	u := f.dc.AddUser(t, f.ou, "enr", pw)
	addr := u.Name + "@mail.example.com"
	mod := ldap.NewModifyRequest(u.DN, nil)
	mod.Replace("mail", []string{strings.ToUpper(addr[:1]) + addr[1:]})
	if err := f.dc.Admin(t).Modify(mod); err != nil {
		t.Fatal(err)
	}
	a := e.connect(e.enroll(u.Name), 0)
	ctx := t.Context()
	if _, err := e.adm.SetMFAWith(ctx, u.Name, admin.MFARequest{Action: admin.MFAEnable, EnrollDays: 10}); err != nil {
		t.Fatal(err)
	}
	if p := a.push(); p.Type != protocol.TypeMFAEnrollment {
		t.Fatalf("push %s", p.Type)
	}
	next := sourcetest.Password()
	a.ok(protocol.TypeChangePassword, "ad-c1", change(u.Name, e.secret(pw), e.secret(next), ""), nil)
	var key protocol.MFAEnrollmentKey
	a.ok(protocol.TypeBeginMFAEnrollment, "", protocol.MFAEnrollmentRequest{User: u.Name}, &key)
	e.secret(string(key.Secret))
	a.ok(protocol.TypeConfirmMFAEnrollment, "ad-e1", protocol.ConfirmMFAEnrollmentRequest{User: u.Name,
		Code: oathtool(t, string(key.Secret), e.clock.Now())}, nil)
	a.fails(protocol.TypeChangePassword, "ad-c2", change(u.Name, next, e.secret(sourcetest.Password()), ""), protocol.CodeMFARequired)

	shown, err := e.srv.ShowUser(ctx, u.Name)
	if err != nil || !strings.EqualFold(shown.Email, addr) {
		t.Fatalf("show: %+v %v", shown, err)
	}
	link, err := e.srv.CreateResetLink(ctx, portal, strings.ToUpper(addr))
	if err != nil || link.User != u.Name {
		t.Fatalf("link by AD mail: %+v %v", link, err)
	}
	e.secret(string(link.Token))
	e.clock.Advance(30 * time.Second) // a fresh code
	reset := sourcetest.Password()
	if _, err := e.srv.RedeemResetLink(ctx, portal, link.Token, []byte(e.secret(reset)), oathtool(t, string(key.Secret), e.clock.Now())); err != nil {
		t.Fatal(err)
	}
	if err := f.dc.Bind(u.DN, reset); err != nil {
		t.Fatalf("AD does not take the password set by the link: %v", err)
	}
}
