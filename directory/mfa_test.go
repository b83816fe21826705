package directory

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/protocol"
)

// TestMFAEnrolmentPeriod: an MFA reset with an enrolment period drops the
// old secret, tells the user's Mac (no secret in the push), lets the
// password alone change it, hands a fresh secret to the Mac that begins
// the enrolment, and, once a code from it confirms it, requires codes.
func TestMFAEnrolmentPeriod(t *testing.T) {
	e := newEnv(t)
	res := e.addUser("alice", alicePW, true)
	oldSecret := string(res.MFA.Secret)
	dev := e.enroll("alice")
	a := e.connect(dev, 0)
	a.bind("alice")
	ctx := t.Context()

	for _, bad := range []admin.MFARequest{{Action: admin.MFAReset, EnrollDays: 366}, {Action: admin.MFAReset, EnrollDays: -1},
		{Action: admin.MFADisable, EnrollDays: 3}} {
		if _, err := e.adm.SetMFAWith(ctx, "alice", bad); !isCode(err, protocol.CodeBadRequest) {
			t.Fatalf("SetMFA %+v: %v, want bad_request", bad, err)
		}
	}
	start := e.clock.Now()
	r, err := e.adm.SetMFAWith(ctx, "alice", admin.MFARequest{Action: admin.MFAReset, EnrollDays: 7})
	if err != nil {
		t.Fatal(err)
	}
	until := start.Add(7 * 24 * time.Hour)
	if r.MFA != nil || !r.User.MFA || r.User.MFAEnrollBy == nil || !r.User.MFAEnrollBy.Equal(until) {
		t.Fatalf("reset with a period: %+v (mfa %+v)", r.User, r.MFA)
	}
	p := a.push()
	if p.Type != protocol.TypeMFAEnrollment {
		t.Fatalf("push %s, want %s", p.Type, protocol.TypeMFAEnrollment)
	}
	if strings.Contains(string(p.Body), "secret") || strings.Contains(string(p.Body), "otpauth") {
		t.Fatalf("push carries a secret: %s", p.Body)
	}
	if pe := decodeAs[protocol.MFAEnrollment](t, p); !pe.Required || pe.User != "alice" || pe.Until == nil || !pe.Until.Equal(until) {
		t.Fatalf("push %+v", pe)
	}
	st := a.bind("alice")
	if !st.MFA || st.MFAEnrollBy == nil || !st.MFAEnrollBy.Equal(until) || st.MFACodeNeeded() {
		t.Fatalf("account during the period: %+v", st)
	}
	// The old secret's codes are gone; the password alone changes it.
	a.ok(protocol.TypeChangePassword, "c1", change("alice", alicePW, e.secret("During-Period-1!"), oathtool(t, oldSecret, e.clock.Now())), nil)
	a.ok(protocol.TypeChangePassword, "c2", change("alice", "During-Period-1!", e.secret("During-Period-2!"), ""), nil)
	cur := "During-Period-2!"

	// Begin: a fresh secret, to this Mac only.
	var key protocol.MFAEnrollmentKey
	a.ok(protocol.TypeBeginMFAEnrollment, "", protocol.MFAEnrollmentRequest{User: "alice"}, &key)
	e.secret(string(key.Secret))
	u, err := url.Parse(string(key.URI))
	if err != nil || u.Scheme != "otpauth" || u.Query().Get("secret") != string(key.Secret) || !key.Until.Equal(until) {
		t.Fatalf("enrolment key: %v %+v until %v", err, u, key.Until)
	}
	if string(key.Secret) == oldSecret {
		t.Fatal("the old secret was handed out again")
	}
	// Beginning again replaces the secret: the first one no longer confirms.
	var key2 protocol.MFAEnrollmentKey
	a.ok(protocol.TypeBeginMFAEnrollment, "", protocol.MFAEnrollmentRequest{User: "alice"}, &key2)
	e.secret(string(key2.Secret))
	a.fails(protocol.TypeConfirmMFAEnrollment, "e1", protocol.ConfirmMFAEnrollmentRequest{User: "alice",
		Code: oathtool(t, string(key.Secret), e.clock.Now())}, protocol.CodeMFAInvalid)
	a.fails(protocol.TypeConfirmMFAEnrollment, "e2", protocol.ConfirmMFAEnrollmentRequest{User: "alice", Code: ""}, protocol.CodeMFARequired)
	var done protocol.AccountState
	a.ok(protocol.TypeConfirmMFAEnrollment, "e3", protocol.ConfirmMFAEnrollmentRequest{User: "alice",
		Code: oathtool(t, string(key2.Secret), e.clock.Now())}, &done)
	if !done.MFA || done.MFAEnrollBy != nil || !done.MFACodeNeeded() {
		t.Fatalf("after enrolment: %+v", done)
	}
	if pe := decodeAs[protocol.MFAEnrollment](t, a.push()); pe.Required || pe.User != "alice" || !pe.MFA {
		t.Fatalf("enrolled push %+v", pe)
	}
	// Retrying the confirmation with its key returns the first outcome.
	var again protocol.AccountState
	a.ok(protocol.TypeConfirmMFAEnrollment, "e3", protocol.ConfirmMFAEnrollmentRequest{User: "alice",
		Code: oathtool(t, string(key2.Secret), e.clock.Now())}, &again)
	// Codes are required now, from the new secret; the code that confirmed
	// is spent.
	a.fails(protocol.TypeChangePassword, "c3", change("alice", cur, e.secret("After-Enrol-1!"), ""), protocol.CodeMFARequired)
	a.fails(protocol.TypeChangePassword, "c4", change("alice", cur, "After-Enrol-1!", oathtool(t, string(key2.Secret), e.clock.Now())), protocol.CodeMFAReplayed)
	e.clock.Advance(30 * time.Second)
	a.ok(protocol.TypeChangePassword, "c5", change("alice", cur, "After-Enrol-1!", oathtool(t, string(key2.Secret), e.clock.Now())), nil)
	a.fails(protocol.TypeBeginMFAEnrollment, "", protocol.MFAEnrollmentRequest{User: "alice"}, protocol.CodeMFANotEnrolling)

	evs := e.audit("alice")
	for _, want := range []string{"mfa_reset", "mfa_enrollment_begun", "mfa_enrolled"} {
		if !hasEvent(evs, want) {
			t.Errorf("no %s in the audit log", want)
		}
	}
	for _, ev := range evs {
		if ev.Event == "mfa_reset" && ev.Detail["enroll_days"] != "7" {
			t.Errorf("mfa_reset detail %v", ev.Detail)
		}
	}
}

// TestMFAEnrolmentExpires: a period that ends with nothing enrolled
// leaves an account whose changes need a code no one can give.
func TestMFAEnrolmentExpires(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePW, false)
	dev := e.enroll("alice")
	a := e.connect(dev, 0)
	a.bind("alice")
	if _, err := e.adm.SetMFAWith(t.Context(), "alice", admin.MFARequest{Action: admin.MFAEnable, EnrollDays: 1}); err != nil {
		t.Fatal(err)
	}
	a.push()
	var key protocol.MFAEnrollmentKey
	a.ok(protocol.TypeBeginMFAEnrollment, "", protocol.MFAEnrollmentRequest{User: "alice"}, &key)
	e.secret(string(key.Secret))
	// A begun enrolment waits 30 minutes for its code.
	e.clock.Advance(31 * time.Minute)
	a.fails(protocol.TypeConfirmMFAEnrollment, "x1", protocol.ConfirmMFAEnrollmentRequest{User: "alice",
		Code: oathtool(t, string(key.Secret), e.clock.Now())}, protocol.CodeMFANotEnrolling)
	e.clock.Advance(24 * time.Hour)
	a.fails(protocol.TypeChangePassword, "x2", change("alice", alicePW, e.secret("Too-Late-Pass-1!"), ""), protocol.CodeMFAEnrollmentExpired)
	a.fails(protocol.TypeBeginMFAEnrollment, "", protocol.MFAEnrollmentRequest{User: "alice"}, protocol.CodeMFAEnrollmentExpired)
	st := a.bind("alice")
	if !st.MFA || st.MFAEnrollBy == nil || st.MFAEnrollBy.After(e.clock.Now()) {
		t.Fatalf("expired enrolment: %+v", st)
	}
	// The administrator resets again: a new period.
	if _, err := e.adm.SetMFAWith(t.Context(), "alice", admin.MFARequest{Action: admin.MFAReset, EnrollDays: 2}); err != nil {
		t.Fatal(err)
	}
	a.ok(protocol.TypeChangePassword, "x3", change("alice", alicePW, "Too-Late-Pass-1!", ""), nil)
	// Disabling ends the period and tells the Mac.
	a.push() // the new period
	if _, err := e.adm.SetMFA(t.Context(), "alice", admin.MFADisable); err != nil {
		t.Fatal(err)
	}
	for {
		p := a.push()
		if p.Type != protocol.TypeMFAEnrollment {
			continue // the change's own pushes to other devices: none here, but be exact below
		}
		if pe := decodeAs[protocol.MFAEnrollment](t, p); pe.Required || pe.MFA {
			t.Fatalf("disable pushed %+v", pe)
		}
		break
	}
	if st := a.bind("alice"); st.MFA || st.MFAEnrollBy != nil {
		t.Fatalf("after disable: %+v", st)
	}
}

// TestMFAEnrolmentStrangers: a Mac not bound to the user learns nothing,
// and the Go API audits the acting person.
func TestMFAEnrolmentStrangers(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePW, true)
	e.addUser("bob", "Second-Secret-77y", false)
	bobMac := e.connect(e.enroll("bob"), 0)
	if _, err := e.adm.SetMFAWith(t.Context(), "alice", admin.MFARequest{Action: admin.MFAReset, EnrollDays: 3}); err != nil {
		t.Fatal(err)
	}
	bobMac.fails(protocol.TypeBeginMFAEnrollment, "", protocol.MFAEnrollmentRequest{User: "alice"}, protocol.CodeNotBound)
	bobMac.fails(protocol.TypeBeginMFAEnrollment, "", protocol.MFAEnrollmentRequest{User: "nobody"}, protocol.CodeNotBound)
	bobMac.fails(protocol.TypeConfirmMFAEnrollment, "s1", protocol.ConfirmMFAEnrollmentRequest{User: "alice", Code: "123456"}, protocol.CodeNotBound)
	bobMac.noPush()

	// The portal's path, through the Go API.
	by := Actor{Kind: ActorUser, Name: "alice", Addr: "192.0.2.7"}
	key, err := e.srv.BeginMFAEnrollment(t.Context(), by, "alice")
	if err != nil {
		t.Fatal(err)
	}
	e.secret(string(key.Secret))
	if _, err := e.srv.ConfirmMFAEnrollment(t.Context(), by, "alice", "000000"); !isCode(err, protocol.CodeMFAInvalid) {
		t.Fatalf("wrong code: %v", err)
	}
	st, err := e.srv.ConfirmMFAEnrollment(t.Context(), by, "alice", oathtool(t, string(key.Secret), e.clock.Now()))
	if err != nil || !st.MFACodeNeeded() {
		t.Fatalf("confirm: %+v %v", st, err)
	}
	var actors []string
	for _, ev := range e.audit("alice") {
		if strings.HasPrefix(ev.Event, "mfa_enrol") {
			actors = append(actors, ev.Actor)
		}
	}
	if strings.Join(actors, ",") != "user:alice,user:alice" {
		t.Fatalf("enrolment audited as %v", actors)
	}
	b, _ := json.Marshal(st)
	if strings.Contains(string(b), string(key.Secret)) {
		t.Fatal("the account state holds the secret")
	}
}
