package directory

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/internal/tools/testtool"

	"github.com/gorilla/websocket"
	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/protocol"
)

const alicePW = "Initial-Secret-91x"

func change(user, cur, next, totp string) protocol.ChangePasswordRequest {
	return protocol.ChangePasswordRequest{User: user, Current: protocol.Secret(cur), New: protocol.Secret(next), TOTP: totp}
}

func TestPolicyViolations(t *testing.T) {
	e := newEnv(t)
	pol := protocol.DefaultPolicy()
	pol.RequireSymbol = true
	pol.HistoryCount = 3
	if _, err := e.adm.SetPolicy(t.Context(), pol); err != nil {
		t.Fatal(err)
	}
	const start = "Start-Pass-77!"
	e.addUser("alice", start, false)
	dev := e.enroll("alice")
	a := e.connect(dev, 0)
	a.bind("alice")

	// Walk the history: start → second → third; then both old ones are
	// refused, and the current one too.
	second, third := e.secret("Second-Pass-88!"), e.secret("Third-Pass-99!")
	a.ok(protocol.TypeChangePassword, "h1", change("alice", start, second, ""), nil)
	a.ok(protocol.TypeChangePassword, "h2", change("alice", second, third, ""), nil)

	tests := []struct {
		name string
		pw   string
		rule string
	}{
		{"too short", "Ab1!", protocol.RuleMinLength},
		{"no upper", "lowercase-only-1!", protocol.RuleUpper},
		{"no lower", "UPPERCASE-ONLY-1!", protocol.RuleLower},
		{"no digit", "No-Digits-Here!!", protocol.RuleDigit},
		{"no symbol", "NoSymbolsHere123", protocol.RuleSymbol},
		{"user name", "xx-Alice-2024!yy", protocol.RuleNotUsername},
		{"too long", "Aa1!" + strings.Repeat("x", protocol.MaxPasswordBytes), protocol.RuleMaxLength},
		{"control char", "Control\tChar-12!", protocol.RulePrintable},
		{"history: current", third, protocol.RuleHistory},
		{"history: previous", second, protocol.RuleHistory},
		{"history: first", start, protocol.RuleHistory},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.secret(tt.pw)
			perr := a.fails(protocol.TypeChangePassword, fmt.Sprintf("v%d", i), change("alice", third, tt.pw, ""), protocol.CodePolicyViolation)
			var codes []string
			for _, v := range perr.Violations {
				codes = append(codes, v.Code)
				if v.Message == "" {
					t.Errorf("violation %s has no sentence", v.Code)
				}
			}
			if !slices.Contains(codes, tt.rule) {
				t.Fatalf("violations %v lack %s", codes, tt.rule)
			}
		})
	}

	// The admin paths enforce the policy too: add, reset with a given
	// password (history included), and a temporary one.
	if _, err := e.adm.AddUser(t.Context(), admin.AddUserRequest{Name: "bob", Password: protocol.Secret("weak")}); !isCode(err, protocol.CodePolicyViolation) {
		t.Fatalf("AddUser weak = %v", err)
	}
	_, err := e.adm.ResetPassword(t.Context(), "alice", admin.ResetRequest{Password: protocol.Secret(second), Temporary: true})
	if !isCode(err, protocol.CodePolicyViolation) {
		t.Fatalf("temporary reset to an old password = %v", err)
	}
	// A generated temporary password meets the policy and is then in the
	// history.
	res, err := e.adm.ResetPassword(t.Context(), "alice", admin.ResetRequest{Temporary: true})
	if err != nil {
		t.Fatal(err)
	}
	tmp := e.secret(string(res.Password))
	if vs := pol.Check("alice", res.Password); len(vs) != 0 {
		t.Fatalf("generated password violates %v", vs)
	}
	if !res.User.MustChange {
		t.Fatal("temporary reset did not set must_change")
	}
	perr := a.fails(protocol.TypeChangePassword, "back-to-temp", change("alice", tmp, tmp, ""), protocol.CodePolicyViolation)
	if len(perr.Violations) != 1 || perr.Violations[0].Code != protocol.RuleHistory {
		t.Fatalf("changing to the temporary password itself: %+v", perr.Violations)
	}
	var st protocol.AccountState
	a.ok(protocol.TypeChangePassword, "final", change("alice", tmp, e.secret("Fourth-Pass-11!"), ""), &st)
	if st.MustChange || st.PasswordVersion != 5 {
		t.Fatalf("after change: %+v", st)
	}
	if p := decodeAs[protocol.Policy](t, a.call(protocol.TypeGetPolicy, "", nil)); p != pol {
		t.Fatalf("get_policy = %+v, want %+v", p, pol)
	}
	if a.welcome.Policy != pol {
		t.Fatalf("welcome policy = %+v", a.welcome.Policy)
	}
}

// oathtool computes a code with the independent implementation.
func oathtool(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	path := testtool.Need(t, "oathtool", "oathtool")
	cmd := exec.Command(path, "--totp", "-b", "--now", at.UTC().Format("2006-01-02 15:04:05 UTC"), "-")
	cmd.Stdin = strings.NewReader(secret + "\n") // the secret stays off argv
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestTOTPWithOathtool(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Lockout.Threshold = 10 })
	res := e.addUser("alice", alicePW, true)
	if res.MFA == nil || !strings.HasPrefix(string(res.MFA.URI), "otpauth://totp/") {
		t.Fatalf("no otpauth URI: %+v", res.MFA)
	}
	secret := string(res.MFA.Secret)
	dev := e.enroll("alice")
	a := e.connect(dev, 0)
	a.bind("alice")
	now := e.clock.Now()
	cur := alicePW
	next := func() string { return e.secret(fmt.Sprintf("Next-Pass-%d-x", time.Now().UnixNano()%1e9)) }

	// No code, codes two steps away (±60 s) and garbage are refused.
	a.fails(protocol.TypeChangePassword, "k0", change("alice", cur, next(), ""), protocol.CodeMFARequired)
	a.fails(protocol.TypeChangePassword, "k1", change("alice", cur, next(), oathtool(t, secret, now.Add(-60*time.Second))), protocol.CodeMFAInvalid)
	a.fails(protocol.TypeChangePassword, "k2", change("alice", cur, next(), oathtool(t, secret, now.Add(60*time.Second))), protocol.CodeMFAInvalid)
	a.fails(protocol.TypeChangePassword, "k3", change("alice", cur, next(), "12345a"), protocol.CodeMFAInvalid)

	// One step behind is accepted; the same code again is a replay.
	behind := oathtool(t, secret, now.Add(-30*time.Second))
	n1 := next()
	a.ok(protocol.TypeChangePassword, "k4", change("alice", cur, n1, behind), nil)
	cur = n1
	a.fails(protocol.TypeChangePassword, "k5", change("alice", cur, next(), behind), protocol.CodeMFAReplayed)

	// The current step and one ahead are accepted, in order; after the one
	// ahead, the current code counts as used.
	present, ahead := oathtool(t, secret, now), oathtool(t, secret, now.Add(30*time.Second))
	n2 := next()
	a.ok(protocol.TypeChangePassword, "k6", change("alice", cur, n2, present), nil)
	cur = n2
	a.fails(protocol.TypeChangePassword, "k7", change("alice", cur, next(), present), protocol.CodeMFAReplayed)
	n3 := next()
	a.ok(protocol.TypeChangePassword, "k8", change("alice", cur, n3, ahead), nil)
	cur = n3

	// Later, a fresh code from oathtool works once.
	e.clock.Advance(2 * time.Minute)
	fresh := oathtool(t, secret, e.clock.Now())
	n4 := next()
	a.ok(protocol.TypeChangePassword, "k9", change("alice", cur, n4, fresh), nil)
	a.fails(protocol.TypeChangePassword, "k10", change("alice", n4, next(), fresh), protocol.CodeMFAReplayed)

	evs := e.audit("alice")
	for _, ev := range []string{"mfa_replayed", "auth_failed", "password_changed"} {
		if !hasEvent(evs, ev) {
			t.Errorf("audit lacks %s", ev)
		}
	}
	// MFA reset issues a new secret: the old one stops working.
	r2, err := e.adm.SetMFA(t.Context(), "alice", admin.MFAReset)
	if err != nil || r2.MFA == nil {
		t.Fatalf("SetMFA reset: %v", err)
	}
	e.secret(string(r2.MFA.Secret))
	e.clock.Advance(time.Minute)
	a.fails(protocol.TypeChangePassword, "k11", change("alice", n4, next(), oathtool(t, secret, e.clock.Now())), protocol.CodeMFAInvalid)
	n5 := next()
	a.ok(protocol.TypeChangePassword, "k12", change("alice", n4, n5, oathtool(t, string(r2.MFA.Secret), e.clock.Now())), nil)
	if _, err := e.adm.SetMFA(t.Context(), "alice", admin.MFADisable); err != nil {
		t.Fatal(err)
	}
	a.ok(protocol.TypeChangePassword, "k13", change("alice", n5, next(), ""), nil)
}

func verify(user, pw string) protocol.VerifyPasswordRequest {
	return protocol.VerifyPasswordRequest{User: user, Password: protocol.Secret(pw)}
}

func TestLockoutAndUnlock(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Lockout = Lockout{Threshold: 3, Window: 10 * time.Minute, Duration: 15 * time.Minute}
	})
	e.addUser("alice", alicePW, false)
	dev := e.enroll("alice")
	a := e.connect(dev, 0)
	a.bind("alice")
	wrong := e.secret("Wrong-Guess-000")

	a.fails(protocol.TypeVerifyPassword, "", verify("alice", wrong), protocol.CodeWrongPassword)
	a.fails(protocol.TypeVerifyPassword, "", verify("alice", wrong), protocol.CodeWrongPassword)
	// Failures outside the window start a new count.
	e.clock.Advance(11 * time.Minute)
	a.fails(protocol.TypeVerifyPassword, "", verify("alice", wrong), protocol.CodeWrongPassword)
	a.fails(protocol.TypeVerifyPassword, "", verify("alice", wrong), protocol.CodeWrongPassword)
	perr := a.fails(protocol.TypeVerifyPassword, "", verify("alice", wrong), protocol.CodeLocked)
	if perr.LockedUntil == nil || !perr.LockedUntil.Equal(e.clock.Now().Add(15*time.Minute)) {
		t.Fatalf("locked_until = %v", perr.LockedUntil)
	}
	p := a.push()
	if p.Type != protocol.TypeAccountLocked || decodeAs[protocol.AccountLocked](t, p).User != "alice" {
		t.Fatalf("push = %s %s", p.Type, p.Body)
	}
	// The right password does not get through a lock.
	a.fails(protocol.TypeVerifyPassword, "", verify("alice", alicePW), protocol.CodeLocked)
	u, err := e.adm.User(t.Context(), "alice")
	if err != nil || !u.Locked {
		t.Fatalf("admin view: %+v %v", u, err)
	}

	// Admin unlock: pushed at once, and the password works.
	if _, err := e.adm.Unlock(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	if p := a.push(); p.Type != protocol.TypeAccountUnlocked {
		t.Fatalf("push = %s", p.Type)
	}
	var st protocol.AccountState
	a.ok(protocol.TypeVerifyPassword, "", verify("alice", alicePW), &st)
	if st.Locked {
		t.Fatal("still locked")
	}

	// A lock also ends by itself after its duration.
	for range 3 {
		a.call(protocol.TypeVerifyPassword, "", verify("alice", wrong))
	}
	a.push()
	e.clock.Advance(16 * time.Minute)
	a.ok(protocol.TypeVerifyPassword, "", verify("alice", alicePW), nil)

	// An admin reset of a locked account unlocks it too.
	for range 3 {
		a.call(protocol.TypeVerifyPassword, "", verify("alice", wrong))
	}
	if p := a.push(); p.Type != protocol.TypeAccountLocked {
		t.Fatalf("push %s", p.Type)
	}
	if _, err := e.adm.ResetPassword(t.Context(), "alice", admin.ResetRequest{Password: protocol.Secret(e.secret("After-Lock-Reset-1"))}); err != nil {
		t.Fatal(err)
	}
	got := []string{a.push().Type, a.push().Type}
	if !slices.Contains(got, protocol.TypeAccountUnlocked) || !slices.Contains(got, protocol.TypePasswordReset) {
		t.Fatalf("pushes after reset of a locked account: %v", got)
	}
	a.ok(protocol.TypeVerifyPassword, "", verify("alice", "After-Lock-Reset-1"), nil)

	evs := e.audit("alice")
	for _, ev := range []string{"auth_failed", "account_locked", "account_unlocked", "password_verified", "password_check_locked"} {
		if !hasEvent(evs, ev) {
			t.Errorf("audit lacks %s", ev)
		}
	}
	if _, err := e.adm.Unlock(t.Context(), "nobody"); !isCode(err, protocol.CodeUnknownUser) {
		t.Fatalf("unlock unknown = %v", err)
	}
}

func TestRateLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.AccountRate = Rate{Every: time.Minute, Burst: 3}
		c.DeviceRate = Rate{Every: time.Minute, Burst: 5}
	})
	e.addUser("alice", alicePW, false)
	e.addUser("bob", "Secret-Words-42", false)
	a := e.connect(e.enroll("alice", "bob"), 0)
	for range 3 {
		a.ok(protocol.TypeVerifyPassword, "", verify("alice", alicePW), nil)
	}
	perr := a.fails(protocol.TypeVerifyPassword, "", verify("alice", alicePW), protocol.CodeRateLimited)
	if perr.RetryAfter < 1 || perr.RetryAfter > 60 {
		t.Fatalf("retry_after = %d", perr.RetryAfter)
	}
	// Another account from the same device: its own bucket has room, but
	// the device's has two tokens left (3 used, 1 refused took none).
	a.ok(protocol.TypeVerifyPassword, "", verify("bob", "Secret-Words-42"), nil)
	a.ok(protocol.TypeVerifyPassword, "", verify("bob", "Secret-Words-42"), nil)
	perr = a.fails(protocol.TypeVerifyPassword, "", verify("bob", "Secret-Words-42"), protocol.CodeRateLimited)
	if perr.RetryAfter < 1 {
		t.Fatalf("retry_after = %d", perr.RetryAfter)
	}
	// Changes are limited the same way; refusals are not remembered as
	// first outcomes, so the same key works once tokens are back.
	a.fails(protocol.TypeChangePassword, "c1", change("alice", alicePW, e.secret("Changed-Pass-55"), ""), protocol.CodeRateLimited)
	e.clock.Advance(2 * time.Minute)
	a.ok(protocol.TypeChangePassword, "c1", change("alice", alicePW, "Changed-Pass-55", ""), nil)
	if !hasEvent(e.audit("alice"), "rate_limited") {
		t.Error("audit lacks rate_limited")
	}
}

func TestIdempotentRetryAfterReconnect(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePW, false)
	dev := e.enroll("alice")
	a := e.connect(dev, 0)
	a.bind("alice")
	next := e.secret("Brand-New-Pass-1")
	req := change("alice", alicePW, next, "")
	first := a.call(protocol.TypeChangePassword, "change-1", req)
	if first.Error != nil {
		t.Fatal(first.Error)
	}
	// The connection drops before the agent trusts the result; it
	// reconnects and retries with the same key.
	a.ws.Close()
	b := e.connect(dev, 0)
	again := b.call(protocol.TypeChangePassword, "change-1", req)
	if again.Error != nil {
		t.Fatalf("retry failed: %v (it must return the first outcome, not a reuse error)", again.Error)
	}
	s1, s2 := decodeAs[protocol.AccountState](t, first), decodeAs[protocol.AccountState](t, again)
	if s1.PasswordVersion != 2 || s2.PasswordVersion != 2 {
		t.Fatalf("versions %d, %d; want 2 and 2 (applied once)", s1.PasswordVersion, s2.PasswordVersion)
	}
	if u, _ := e.adm.User(t.Context(), "alice"); u.PasswordVersion != 2 {
		t.Fatalf("directory version %d", u.PasswordVersion)
	}
	// Same key, different request: refused.
	b.fails(protocol.TypeChangePassword, "change-1", change("alice", next, e.secret("Other-New-Pass-2"), ""), protocol.CodeIdempotencyReuse)
	// A failed first outcome is remembered as well: the retry does not
	// count a second failure.
	bad := change("alice", e.secret("Not-The-Password-3"), "Other-New-Pass-2", "")
	b.fails(protocol.TypeChangePassword, "change-2", bad, protocol.CodeWrongPassword)
	b.fails(protocol.TypeChangePassword, "change-2", bad, protocol.CodeWrongPassword)
	if u, _ := e.adm.User(t.Context(), "alice"); u.FailedAttempts != 1 {
		t.Fatalf("failed attempts %d, want 1", u.FailedAttempts)
	}
	// Keys are per device: another device may use the same key.
	c := e.connect(e.enroll(), 0)
	c.ok(protocol.TypeChangePassword, "change-1", change("alice", next, "Third-New-Pass-3", ""), nil)
	// ack_sync is idempotent too.
	b.ok(protocol.TypeAckSync, "sync-1", protocol.AckSyncRequest{User: "alice", PasswordVersion: 2}, nil)
	b.ok(protocol.TypeAckSync, "sync-1", protocol.AckSyncRequest{User: "alice", PasswordVersion: 2}, nil)
	b.fails(protocol.TypeAckSync, "sync-1", protocol.AckSyncRequest{User: "alice", PasswordVersion: 3}, protocol.CodeIdempotencyReuse)
}

func TestPushesAndMissedPushesOnReconnect(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePW, false)
	dev, other := e.enroll("alice"), e.enroll("alice")
	a := e.connect(dev, 0)
	st := a.bind("alice")
	if st.PasswordVersion != 1 {
		t.Fatalf("state %+v", st)
	}
	o := e.connect(other, 0)
	// The Mac's local short name may differ from the directory name.
	o.ok(protocol.TypeGetAccount, "", protocol.GetAccountRequest{User: "alice", LocalName: "aliddell"}, nil)

	// Live: an admin reset reaches the connected agent at once.
	if _, err := e.adm.ResetPassword(t.Context(), "alice", admin.ResetRequest{Password: protocol.Secret(e.secret("Reset-By-Admin-1"))}); err != nil {
		t.Fatal(err)
	}
	p := a.push()
	r := decodeAs[protocol.PasswordReset](t, p)
	if p.Type != protocol.TypePasswordReset || r.User != "alice" || r.Temporary || r.PasswordVersion != 2 || p.Seq != 1 {
		t.Fatalf("push %s seq %d %+v", p.Type, p.Seq, r)
	}
	o.push()
	a.writeRaw(mustEncode(t, protocol.TypeAckPush, protocol.AckPush{Seq: 1}))

	// A change from one device is pushed to the user's other devices only.
	o.ok(protocol.TypeChangePassword, "k1", change("alice", "Reset-By-Admin-1", e.secret("Changed-On-Other-2"), ""), nil)
	if p := a.push(); decodeAs[protocol.PasswordReset](t, p).PasswordVersion != 3 || p.Seq != 2 {
		t.Fatalf("push to the other device: %s", p.Body)
	}
	o.noPush()
	a.writeRaw(mustEncode(t, protocol.TypeAckPush, protocol.AckPush{Seq: 2}))

	// Offline: two temporary resets; the agent reconnects and gets both,
	// in order, after the welcome.
	a.ws.Close()
	<-a.done
	for i := range 2 {
		if _, err := e.adm.ResetPassword(t.Context(), "alice", admin.ResetRequest{Temporary: true}); err != nil {
			t.Fatalf("reset %d: %v", i, err)
		}
	}
	for range 2 {
		if p := o.push(); p.Type != protocol.TypePasswordReset {
			t.Fatalf("push to the connected device: %s", p.Type)
		}
	}
	b := e.connect(dev, 2)
	for _, want := range []struct {
		seq uint64
		ver int64
	}{{3, 4}, {4, 5}} {
		p := b.push()
		r := decodeAs[protocol.PasswordReset](t, p)
		if p.Seq != want.seq || r.PasswordVersion != want.ver || !r.Temporary {
			t.Fatalf("missed push seq %d %+v, want seq %d version %d temporary", p.Seq, r, want.seq, want.ver)
		}
	}
	b.noPush()
	// Acknowledged pushes are pruned; one not acknowledged comes again
	// when the agent says it has not processed it.
	b.writeRaw(mustEncode(t, protocol.TypeAckPush, protocol.AckPush{Seq: 3}))
	b.ok(protocol.TypeGetPolicy, "", nil, nil)
	b.ws.Close()
	c := e.connect(dev, 3)
	if p := c.push(); p.Seq != 4 {
		t.Fatalf("redelivered seq %d, want 4", p.Seq)
	}
	c.noPush()

	// Policy changes go to every device.
	pol := e.srv.Policy()
	pol.MinLength = 14
	if _, err := e.adm.SetPolicy(t.Context(), pol); err != nil {
		t.Fatal(err)
	}
	for _, ag := range []*agent{c, o} {
		p := ag.push()
		if p.Type != protocol.TypePolicyChanged || decodeAs[protocol.PolicyChanged](t, p).Policy.MinLength != 14 {
			t.Fatalf("policy push %s %s", p.Type, p.Body)
		}
	}

	// ack_sync is recorded and shown per device.
	c.ok(protocol.TypeAckSync, "s1", protocol.AckSyncRequest{User: "alice", PasswordVersion: 5}, nil)
	c.fails(protocol.TypeAckSync, "s2", protocol.AckSyncRequest{User: "alice", PasswordVersion: 6}, protocol.CodeBadRequest)
	u, err := e.adm.User(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range u.Devices {
		if d.DeviceID == dev.id {
			found = d.SyncedVersion == 5 && d.Connected && d.LocalName == "alice"
		}
	}
	for _, d := range u.Devices {
		if d.DeviceID == other.id && d.LocalName != "aliddell" {
			t.Fatalf("local name of the other device: %q", d.LocalName)
		}
	}
	if !found || len(u.Devices) != 2 {
		t.Fatalf("devices %+v", u.Devices)
	}
}

func mustEncode(t *testing.T, typ string, v any) []byte {
	t.Helper()
	env, err := protocol.New(typ, v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := protocol.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeviceAuthRefusals(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll()

	t.Run("forged signature", func(t *testing.T) {
		_, forger, _ := ed25519.GenerateKey(rand.Reader)
		ws, hello := e.dialRaw()
		defer ws.Close()
		sendAuth(t, ws, dev.id, ed25519.Sign(forger, protocol.AuthMessage(dev.id, hello.Challenge)), 0)
		expectRefused(t, ws)
	})
	t.Run("replayed signature", func(t *testing.T) {
		a := e.connect(dev, 0)
		old := ed25519.Sign(dev.key, protocol.AuthMessage(dev.id, a.hello.Challenge))
		ws, hello := e.dialRaw()
		defer ws.Close()
		if string(hello.Challenge) == string(a.hello.Challenge) {
			t.Fatal("challenge repeated")
		}
		sendAuth(t, ws, dev.id, old, 0)
		expectRefused(t, ws)
	})
	t.Run("unknown device", func(t *testing.T) {
		_, key, _ := ed25519.GenerateKey(rand.Reader)
		ws, hello := e.dialRaw()
		defer ws.Close()
		sendAuth(t, ws, "dev_UNKNOWN", ed25519.Sign(key, protocol.AuthMessage("dev_UNKNOWN", hello.Challenge)), 0)
		expectRefused(t, ws)
	})
	t.Run("signature for another device id", func(t *testing.T) {
		other := e.enroll()
		ws, hello := e.dialRaw()
		defer ws.Close()
		sendAuth(t, ws, dev.id, ed25519.Sign(other.key, protocol.AuthMessage(other.id, hello.Challenge)), 0)
		expectRefused(t, ws)
	})
	t.Run("request before auth", func(t *testing.T) {
		ws, _ := e.dialRaw()
		defer ws.Close()
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"v":1,"type":"get_policy","id":"1"}`)); err != nil {
			t.Fatal(err)
		}
		expectRefused(t, ws)
	})
	// Four failures from one address: the first noisePerKey are written,
	// the rest counted in one audit_suppressed event.
	e.srv.flushNoise()
	var fails, suppressed int
	for _, ev := range e.audit("") {
		switch {
		case ev.Event == "device_auth_failed":
			fails++
		case ev.Event == "audit_suppressed" && ev.Detail["event"] == "device_auth_failed":
			suppressed, _ = strconv.Atoi(ev.Detail["count"])
		}
	}
	if fails != noisePerKey || fails+suppressed != 4 {
		t.Fatalf("%d device_auth_failed audit events and %d suppressed, want %d and %d", fails, suppressed, noisePerKey, 4-noisePerKey)
	}
}

func TestEnrollmentTokens(t *testing.T) {
	e := newEnv(t)
	tok, err := e.adm.CreateEnrollToken(t.Context(), admin.EnrollTokenRequest{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e.secret(string(tok.Token))
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	id, err := e.enrollWith(tok.Token, pub)
	if err != nil {
		t.Fatal(err)
	}
	e.connect(device{id: id, key: priv}, 0)
	// One time only.
	pub2, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := e.enrollWith(tok.Token, pub2); !isCode(err, protocol.CodeUnauthorized) {
		t.Fatalf("second use = %v", err)
	}
	// Expiring.
	tok2, err := e.adm.CreateEnrollToken(t.Context(), admin.EnrollTokenRequest{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e.secret(string(tok2.Token))
	e.clock.Advance(time.Hour)
	if _, err := e.enrollWith(tok2.Token, pub2); !isCode(err, protocol.CodeUnauthorized) {
		t.Fatalf("expired token = %v", err)
	}
	if _, err := e.enrollWith(protocol.Secret("lst_made-up"), pub2); !isCode(err, protocol.CodeUnauthorized) {
		t.Fatalf("made-up token = %v", err)
	}
	if _, err := e.enrollWith(tok2.Token, pub2[:10]); !isCode(err, protocol.CodeBadRequest) {
		t.Fatalf("short key = %v", err)
	}
	evs := e.audit("")
	if !hasEvent(evs, "device_enrolled") || !hasEvent(evs, "enroll_failed") || !hasEvent(evs, "enroll_token_created") {
		t.Fatalf("audit: %+v", evs)
	}
}

func TestMalformedAndOversizedFrames(t *testing.T) {
	e := newEnv(t)
	a := e.connect(e.enroll(), 0)
	b := e.connect(e.enroll(), 0)

	bad := []struct {
		frame string
		code  string
		id    string
	}{
		{`{"v":2,"type":"get_policy","id":"x1"}`, protocol.CodeUnsupported, "x1"},
		{`{"v":1,"type":"format_disk","id":"x2"}`, protocol.CodeUnsupported, "x2"},
		{`{"v":1,"type":"change_password","id":"x3"}`, protocol.CodeBadRequest, "x3"},
		{`{"v":1,"type":"verify_password","id":"x4","body":{"user":42}}`, protocol.CodeBadRequest, "x4"},
		{`{"v":1,"type":"welcome","id":"x5"}`, protocol.CodeBadRequest, "x5"},
		{`{"v":1,"type":"get_account","id":"x6","body":{"user":""}}`, protocol.CodeBadRequest, "x6"},
		{`{"v":1,"type":"get_policy","id":"x7"} trailing`, protocol.CodeBadRequest, "x7"},
	}
	for _, tt := range bad {
		ch := make(chan *protocol.Envelope, 1)
		a.mu.Lock()
		a.waiting[tt.id] = ch
		a.mu.Unlock()
		a.writeRaw([]byte(tt.frame))
		var res *protocol.Envelope
		select {
		case res = <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("no answer to %s", tt.frame)
		}
		if res.Error == nil || res.Error.Code != tt.code {
			t.Fatalf("%s → %+v, want %s", tt.frame, res.Error, tt.code)
		}
	}
	// Frames that cannot be answered (no readable id, not JSON, binary)
	// close only their own connection, with 1007 or 1003.
	for _, tt := range []struct {
		frame  string
		binary bool
		code   int
	}{
		{`{"v":1,`, false, websocket.CloseInvalidFramePayloadData},
		{`not json at all`, false, websocket.CloseInvalidFramePayloadData},
		{`{"v":1,"type":"get_policy"}`, false, websocket.CloseInvalidFramePayloadData},
		{`{"v":1,"type":"get_policy","id":"1"}`, true, websocket.CloseUnsupportedData},
	} {
		c := e.connect(e.enroll(), 0)
		typ := websocket.TextMessage
		if tt.binary {
			typ = websocket.BinaryMessage
		}
		if err := c.ws.WriteMessage(typ, []byte(tt.frame)); err != nil {
			t.Fatal(err)
		}
		<-c.done
		if !websocket.IsCloseError(c.closeErr, tt.code) {
			t.Fatalf("%s: %v, want close %d", tt.frame, c.closeErr, tt.code)
		}
	}
	// The connection still works after every refusal.
	a.ok(protocol.TypeGetPolicy, "", nil, nil)

	// Oversized: the connection is closed with 1009; the other one lives.
	a.writeRaw([]byte(`{"v":1,"type":"get_policy","id":"big","body":"` + strings.Repeat("x", protocol.MaxMessageSize) + `"}`))
	<-a.done
	if !websocket.IsCloseError(a.closeErr, websocket.CloseMessageTooBig) {
		t.Fatalf("oversized frame: %v, want close 1009", a.closeErr)
	}
	b.ok(protocol.TypeGetPolicy, "", nil, nil)
	waitFor(t, "only the good connection left", func() bool { return e.srv.Stats().Connections == 1 })
	b.ok(protocol.TypeGetPolicy, "", nil, nil)
}

func TestAdminAPIAuth(t *testing.T) {
	e := newEnv(t)
	st, err := os.Stat(filepath.Join(e.dir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("admin token mode %o, want 600", st.Mode().Perm())
	}
	files := []string{ServerKeyFile, KeyFile, CAKeyFile}
	if e.dbURL == "" {
		files = append(files, DBFile)
	}
	for _, f := range files {
		if st, err := os.Stat(filepath.Join(e.dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 600", f, st.Mode().Perm(), err)
		}
	}
	info, err := admin.ReadInfo(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"wrong", "", string(e.srv.AdminToken()) + "x"} {
		cl, err := admin.New(admin.Config{URL: info.URL, CAFile: info.CAFile, Token: []byte(tok + " ")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Users(t.Context()); !isCode(err, protocol.CodeUnauthorized) {
			t.Fatalf("token %q: %v, want unauthorized", tok, err)
		}
	}
	if _, err := e.adm.Users(t.Context()); err != nil {
		t.Fatalf("right token: %v", err)
	}
	stats, err := e.adm.Stats(t.Context(), true)
	if err != nil || stats.Goroutines == 0 {
		t.Fatalf("stats %+v %v", stats, err)
	}
	if !hasEvent(e.audit(""), "admin_auth_failed") {
		t.Fatal("audit lacks admin_auth_failed")
	}
	// A second server on the same data directory keeps the token and CA.
	if _, err := os.Stat(e.srv.CAFile()); err != nil {
		t.Fatal(err)
	}
}

func TestExpiryWarnings(t *testing.T) {
	e := newEnv(t)
	pol := e.srv.Policy()
	pol.MaxAgeDays, pol.ExpiryWarningDays = 30, 10
	if _, err := e.adm.SetPolicy(t.Context(), pol); err != nil {
		t.Fatal(err)
	}
	e.addUser("alice", alicePW, false)
	a := e.connect(e.enroll("alice"), 0)
	a.bind("alice")
	if err := e.srv.scanExpiry(t.Context()); err != nil {
		t.Fatal(err)
	}
	a.noPush() // 30 days left, outside the window

	e.clock.Advance(21 * 24 * time.Hour)
	if err := e.srv.scanExpiry(t.Context()); err != nil {
		t.Fatal(err)
	}
	p := a.push()
	w := decodeAs[protocol.ExpiryApproaching](t, p)
	if p.Type != protocol.TypeExpiryApproaching || w.User != "alice" || w.DaysLeft != 9 {
		t.Fatalf("push %s %+v", p.Type, w)
	}
	// At most once a day.
	e.clock.Advance(time.Hour)
	if err := e.srv.scanExpiry(t.Context()); err != nil {
		t.Fatal(err)
	}
	a.noPush()
	e.clock.Advance(24 * time.Hour)
	if err := e.srv.scanExpiry(t.Context()); err != nil {
		t.Fatal(err)
	}
	if w := decodeAs[protocol.ExpiryApproaching](t, a.push()); w.DaysLeft != 7 {
		t.Fatalf("second warning %+v", w)
	}
	var st protocol.AccountState
	a.ok(protocol.TypeGetAccount, "", protocol.GetAccountRequest{User: "alice"}, &st)
	if st.ExpiresAt == nil || st.ExpiresAt.Sub(e.clock.Now()) > 8*24*time.Hour {
		t.Fatalf("expires_at %v", st.ExpiresAt)
	}
}

// TestRehashOnVerify checks that a hash made with weaker parameters is
// replaced on the next successful verification.
func TestRehashOnVerify(t *testing.T) {
	dir := t.TempDir()
	weak := Argon2Params{Time: 1, MemoryKiB: 32, Threads: 1}
	e := newEnv(t, func(c *Config) { c.DataDir = dir; c.Argon2 = weak })
	e.addUser("alice", alicePW, false)
	if err := e.srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	e2 := newEnvNoCleanup(t, dir)
	a := e2.connect(e2.enroll(), 0)
	a.ok(protocol.TypeVerifyPassword, "", verify("alice", alicePW), nil)
	u, perr := e2.srv.loadUser(t.Context(), "alice")
	if perr != nil {
		t.Fatal(perr)
	}
	p, _, _, err := decodeHash(u.PasswordHash)
	if err != nil || p != testArgon2 {
		t.Fatalf("hash params after verify = %+v (%v), want %+v", p, err, testArgon2)
	}
	a.ok(protocol.TypeVerifyPassword, "", verify("alice", alicePW), nil)
}

// TestKeepalive checks that the shared ping wheel keeps answering agents
// connected and drops one that stopped answering pings.
func TestKeepalive(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PingInterval = 100 * time.Millisecond })
	a := e.connect(e.enroll(), 0)
	if a.welcome.PingSeconds != 1 {
		t.Fatalf("ping_seconds %d for a 100 ms interval, want the minimum 1", a.welcome.PingSeconds)
	}
	// A silent agent: authenticates, then never reads, so never pongs.
	dev := e.enroll()
	ws, hello := e.dialRaw()
	defer ws.Close()
	sendAuth(t, ws, dev.id, ed25519.Sign(dev.key, protocol.AuthMessage(dev.id, hello.Challenge)), 0)
	waitFor(t, "both connected", func() bool { return e.srv.Stats().Connections == 2 })
	waitFor(t, "the silent agent dropped", func() bool { return !e.srv.hub.connected(dev.id) })
	a.ok(protocol.TypeGetPolicy, "", nil, nil)
	if !e.srv.hub.connected(a.welcome.DeviceID) {
		t.Fatal("the answering agent was dropped")
	}
}
