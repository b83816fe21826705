package directory

// Tests of issue 10's attacks, each through the real websocket or admin
// API with real TLS on loopback.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/protocol"
)

// TestMFAFailuresSurvivePasswordSuccess (issue 10, item 1): wrong TOTP
// codes with the right password, and a right password-only verification
// between every four of them, must still lock the account at the
// threshold: a first factor never clears the count of second ones.
func TestMFAFailuresSurvivePasswordSuccess(t *testing.T) {
	e := newEnv(t) // threshold 5
	e.addUser("alice", alicePW, true)
	a := e.connect(e.enroll("alice"), 0)
	wrong := 0
	for cycle := range 4 {
		for i := range 4 {
			wrong++
			res := a.call(protocol.TypeChangePassword, fmt.Sprintf("c%d-%d", cycle, i),
				change("alice", alicePW, e.secret("Never-Set-Pass-1"), "abcdef"))
			if res.Error != nil && res.Error.Code == protocol.CodeLocked {
				if wrong != 5 {
					t.Fatalf("locked after %d wrong codes, want 5", wrong)
				}
				if u, err := e.adm.User(t.Context(), "alice"); err != nil || !u.Locked {
					t.Fatalf("user show after the lock: %+v %v", u, err)
				}
				return
			}
			if res.Error == nil || res.Error.Code != protocol.CodeMFAInvalid {
				t.Fatalf("wrong code %d: %+v", wrong, res.Error)
			}
		}
		a.ok(protocol.TypeVerifyPassword, "", verify("alice", alicePW), nil)
	}
	u, _ := e.adm.User(t.Context(), "alice")
	t.Fatalf("%d wrong codes with password-only verifications between them left the account unlocked (locked=%v)", wrong, u.Locked)
}

// TestLockDecidedWithTheOutcome (item 2): a change whose argon2id work
// outlasts the wrong guesses that lock the account is refused, not applied
// while `user show` says locked.
func TestLockDecidedWithTheOutcome(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		// Checks that take a few milliseconds each, all at once.
		c.Argon2 = Argon2Params{Time: 1, MemoryKiB: 4096, Threads: 1}
		c.HashMemoryKiB = 64 << 10
	})
	pol := e.srv.Policy()
	pol.HistoryCount = 20
	if _, err := e.adm.SetPolicy(t.Context(), pol); err != nil {
		t.Fatal(err)
	}
	e.addUser("alice", alicePW, false)
	// Ten previous passwords: the change checks the new one against each.
	for range 10 {
		res, err := e.adm.ResetPassword(t.Context(), "alice", admin.ResetRequest{})
		if err != nil {
			t.Fatal(err)
		}
		e.secret(string(res.Password))
	}
	cur := e.secret("Current-Pass-42")
	if _, err := e.adm.ResetPassword(t.Context(), "alice", admin.ResetRequest{Password: protocol.Secret(cur)}); err != nil {
		t.Fatal(err)
	}
	before, _ := e.adm.User(t.Context(), "alice")
	a := e.connect(e.enroll("alice"), 0)
	wrong := e.secret("Wrong-Guess-000")
	var changeRes *protocol.Envelope
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		changeRes = a.call(protocol.TypeChangePassword, "k", change("alice", cur, e.secret("After-Lock-77"), ""))
	}()
	for range 7 {
		wg.Add(1)
		go func() { defer wg.Done(); a.call(protocol.TypeVerifyPassword, "", verify("alice", wrong)) }()
	}
	wg.Wait()
	u, err := e.adm.User(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !u.Locked {
		t.Fatalf("seven wrong passwords did not lock the account: %+v", u)
	}
	if changeRes.Error == nil || u.PasswordVersion != before.PasswordVersion {
		t.Fatalf("the change was applied (version %d → %d) while user show says locked; result %s %+v",
			before.PasswordVersion, u.PasswordVersion, changeRes.Body, changeRes.Error)
	}
	if changeRes.Error.Code != protocol.CodeLocked {
		t.Fatalf("change refused with %+v, want locked", changeRes.Error)
	}
}

// TestGetAccountNeedsBinding (item 3): a device learns nothing about a
// user it is not bound to: get_account answers not_bound, the same for a
// real and an unknown user, and spends no lockout budget.
func TestGetAccountNeedsBinding(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePW, false)
	stranger := e.connect(e.enroll(), 0)
	var answers []string
	for _, name := range []string{"alice", "nobody-here"} {
		for range 20 {
			perr := stranger.fails(protocol.TypeGetAccount, "", protocol.GetAccountRequest{User: name, LocalName: name}, protocol.CodeNotBound)
			b, _ := json.Marshal(perr)
			answers = append(answers, string(b))
		}
		stranger.fails(protocol.TypeAckSync, "ack-"+name, protocol.AckSyncRequest{User: name, PasswordVersion: 1}, protocol.CodeNotBound)
	}
	if distinct := slices.Compact(answers); len(distinct) != 1 {
		t.Fatalf("answers differ: %v", distinct)
	}
	u, err := e.adm.User(t.Context(), "alice")
	if err != nil || u.FailedAttempts != 0 || len(u.Devices) != 0 {
		t.Fatalf("alice after a stranger's get_account calls: %+v %v", u, err)
	}
	if hasEvent(e.audit("alice"), "auth_failed") || hasEvent(e.audit("alice"), "device_bound") {
		t.Fatal("a stranger's get_account left an audit trail on alice")
	}
	// Pushes for alice do not reach it.
	if _, err := e.adm.ResetPassword(t.Context(), "alice", admin.ResetRequest{Temporary: true}); err != nil {
		t.Fatal(err)
	}
	stranger.noPush()
}

// TestBindingByProof (item 3): a device binds itself to a user by proving
// the user's password; before that every failure reads as a wrong
// password, for a real user and an unknown one alike (locked or not), and
// wrong guesses from such devices lock only their linking, not the user's
// own Macs.
func TestBindingByProof(t *testing.T) {
	e := newEnv(t) // threshold 5
	e.addUser("alice", alicePW, false)
	own := e.connect(e.enroll("alice"), 0)
	stranger := e.connect(e.enroll(), 0)
	wrong := e.secret("Wrong-Guess-000")

	real := stranger.fails(protocol.TypeVerifyPassword, "", verify("alice", wrong), protocol.CodeWrongPassword)
	unknown := stranger.fails(protocol.TypeVerifyPassword, "", verify("nobody-here", wrong), protocol.CodeWrongPassword)
	if fmt.Sprint(real) != fmt.Sprint(unknown) {
		t.Fatalf("a real user answers %+v, an unknown one %+v", real, unknown)
	}
	stranger.fails(protocol.TypeChangePassword, "c1", change("nobody-here", wrong, "New-Pass-1234x", ""), protocol.CodeWrongPassword)
	// Guesses from strangers: the fifth blocks linking for a while, even
	// with the right password, and still reads as a wrong password; the
	// user's own Mac is not locked.
	for range 4 {
		stranger.fails(protocol.TypeVerifyPassword, "", verify("alice", wrong), protocol.CodeWrongPassword)
	}
	stranger.fails(protocol.TypeVerifyPassword, "", verify("alice", alicePW), protocol.CodeWrongPassword)
	stranger.fails(protocol.TypeGetAccount, "", protocol.GetAccountRequest{User: "alice"}, protocol.CodeNotBound)
	var st protocol.AccountState
	own.ok(protocol.TypeVerifyPassword, "", verify("alice", alicePW), &st)
	if st.Locked {
		t.Fatal("strangers' guesses locked the user's own Mac out")
	}
	own.noPush() // no account_locked either
	if !hasEvent(e.audit("alice"), "binding_locked") {
		t.Error("audit lacks binding_locked")
	}
	// A locked account tells a stranger nothing either.
	for range 5 {
		own.call(protocol.TypeVerifyPassword, "", verify("alice", wrong))
	}
	if p := own.push(); p.Type != protocol.TypeAccountLocked {
		t.Fatalf("push %s", p.Type)
	}
	e.clock.Advance(16 * time.Minute) // the linking block ends; the lock too
	for range 5 {
		own.call(protocol.TypeVerifyPassword, "", verify("alice", wrong))
	}
	own.push()
	stranger.fails(protocol.TypeVerifyPassword, "", verify("alice", alicePW), protocol.CodeWrongPassword)
	if _, err := e.adm.Unlock(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	own.push()

	// The right password binds: state, then pushes.
	stranger.ok(protocol.TypeVerifyPassword, "", verify("alice", alicePW), &st)
	if st.User != "alice" {
		t.Fatalf("state %+v", st)
	}
	stranger.ok(protocol.TypeGetAccount, "", protocol.GetAccountRequest{User: "alice", LocalName: "ali"}, &st)
	if _, err := e.adm.ResetPassword(t.Context(), "alice", admin.ResetRequest{Temporary: true}); err != nil {
		t.Fatal(err)
	}
	if p := stranger.push(); p.Type != protocol.TypePasswordReset {
		t.Fatalf("push %s", p.Type)
	}
	ds, err := e.adm.Devices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.ID == stranger.welcome.DeviceID && (len(d.Users) != 1 || d.Users[0].BoundBy != "password" || d.Users[0].LocalName != "ali") {
			t.Fatalf("device list %+v", d)
		}
	}
}

// TestUnknownAndRealUsersCostTheSame (item 3): a wrong password for an
// unknown user costs the argon2id check a real one does, with the same
// parameters, and answers the same, so neither the answer nor its time
// tells which names exist. Counted, not timed (timings belong in
// benchmarks): BenchmarkUnknownUserTiming in cmd/lockstep-directory reports
// both answer-time distributions against the real binary.
func TestUnknownAndRealUsersCostTheSame(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePW, false)
	stranger := e.connect(e.enroll(), 0)
	wrong := e.secret("Wrong-Guess-000")
	var answers []string
	for _, name := range []string{"alice", "nobody-here"} {
		before := e.srv.hash.checksWith(testArgon2)
		res := stranger.call(protocol.TypeVerifyPassword, "", verify(name, wrong))
		if res.Error == nil || res.Error.Code != protocol.CodeWrongPassword {
			t.Fatalf("%s: %+v, want the wrong-password answer", name, res.Error)
		}
		answers = append(answers, fmt.Sprintf("%+v", *res.Error))
		if n := e.srv.hash.checksWith(testArgon2) - before; n != 1 {
			t.Errorf("%s: %d argon2id checks at the configured cost, want 1", name, n)
		}
	}
	if answers[0] != answers[1] {
		t.Errorf("a real and an unknown user answer differently:\n%s\n%s", answers[0], answers[1])
	}
}

// TestEnrollmentTokenAndAdminAssignment (item 3): an enrollment token binds
// the users it names; an administrator assigns and unassigns users; the
// device list shows each binding and how it was made.
func TestEnrollmentTokenAndAdminAssignment(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePW, false)
	e.addUser("bob", "Secret-Words-42", false)
	if _, err := e.adm.CreateEnrollToken(t.Context(), admin.EnrollTokenRequest{Users: []string{"nobody-here"}}); !isCode(err, protocol.CodeUnknownUser) {
		t.Fatalf("token for an unknown user: %v", err)
	}
	dev := e.enroll("alice")
	a := e.connect(dev, 0)
	a.bind("alice")
	a.fails(protocol.TypeGetAccount, "", protocol.GetAccountRequest{User: "bob"}, protocol.CodeNotBound)
	if _, err := e.adm.AssignDevice(t.Context(), dev.id, "bob"); err != nil {
		t.Fatal(err)
	}
	a.bind("bob")
	d, err := e.adm.UnassignDevice(t.Context(), dev.id, "alice")
	if err != nil || len(d.Users) != 1 || d.Users[0].User != "bob" || d.Users[0].BoundBy != "admin" {
		t.Fatalf("unassign: %+v %v", d, err)
	}
	a.fails(protocol.TypeGetAccount, "", protocol.GetAccountRequest{User: "alice"}, protocol.CodeNotBound)
	if _, err := e.adm.ResetPassword(t.Context(), "alice", admin.ResetRequest{Temporary: true}); err != nil {
		t.Fatal(err)
	}
	a.noPush()
	if _, err := e.adm.UnassignDevice(t.Context(), dev.id, "alice"); !isCode(err, admin.CodeNotFound) {
		t.Fatalf("second unassign: %v", err)
	}
	if _, err := e.adm.AssignDevice(t.Context(), "dev_NOPE", "bob"); !isCode(err, admin.CodeNotFound) {
		t.Fatalf("assign to an unknown device: %v", err)
	}
	evs := e.audit("")
	for _, ev := range []string{"device_assigned", "device_unassigned"} {
		if !hasEvent(evs, ev) {
			t.Errorf("audit lacks %s", ev)
		}
	}
	for _, ev := range evs {
		if ev.Event == "device_enrolled" && ev.Detail["users"] != "alice" {
			t.Errorf("enrollment audit %+v", ev)
		}
	}
}

// TestRevokeDevice (item 3): an administrator revokes a device: its open
// connection is closed at once with CloseRevoked, its key is refused from
// then on, and the audit names the administrator.
func TestRevokeDevice(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePW, false)
	dev := e.enroll("alice")
	a := e.connect(dev, 0)
	a.bind("alice")
	d, err := e.adm.RevokeDevice(t.Context(), dev.id)
	if err != nil || d.RevokedAt == nil {
		t.Fatalf("revoke: %+v %v", d, err)
	}
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked device is still connected")
	}
	if !websocket.IsCloseError(a.closeErr, protocol.CloseRevoked) {
		t.Fatalf("closed with %v, want %d", a.closeErr, protocol.CloseRevoked)
	}
	ws, hello := e.dialRaw()
	defer ws.Close()
	sendAuth(t, ws, dev.id, ed25519.Sign(dev.key, protocol.AuthMessage(dev.id, hello.Challenge)), 0)
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, protocol.CloseRevoked) {
		t.Fatalf("reconnecting: %v, want close %d", err, protocol.CloseRevoked)
	}
	found := false
	for _, ev := range e.audit("") {
		if ev.Event == "device_revoked" && ev.Actor == "admin" && ev.Detail["device_id"] == dev.id && ev.Detail["users"] == "alice" {
			found = true
		}
	}
	if !found {
		t.Fatal("no device_revoked audit event by the admin")
	}
	if u, _ := e.adm.User(t.Context(), "alice"); len(u.Devices) != 0 {
		t.Fatalf("alice is still bound to the revoked device: %+v", u.Devices)
	}
	if _, err := e.adm.AssignDevice(t.Context(), dev.id, "alice"); !isCode(err, protocol.CodeBadRequest) {
		t.Fatalf("assigning a revoked device: %v", err)
	}
	if _, err := e.adm.RevokeDevice(t.Context(), "dev_NOPE"); !isCode(err, admin.CodeNotFound) {
		t.Fatalf("revoking an unknown device: %v", err)
	}
}

// TestNoiseIsBounded (item 4): a flood of failed handshakes and of
// refused requests writes a bounded number of audit rows, with counts of
// the rest; an address whose handshakes keep failing is refused before
// any work, while another address connects.
func TestNoiseIsBounded(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AddressRate = Rate{Every: time.Hour, Burst: 200} })
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	const flood = 150
	for range flood {
		ws, hello := e.dialRaw()
		sendAuth(t, ws, "dev_UNKNOWN", ed25519.Sign(key, protocol.AuthMessage("dev_UNKNOWN", hello.Challenge)), 0)
		expectRefused(t, ws)
		ws.Close()
	}
	e.srv.flushNoise()
	count := func(evs []admin.AuditEvent, event string) (rows, suppressed int) {
		for _, ev := range evs {
			switch {
			case ev.Event == event:
				rows++
			case ev.Event == "audit_suppressed" && ev.Detail["event"] == event:
				var n int
				fmt.Sscan(ev.Detail["count"], &n)
				suppressed += n
			}
		}
		return rows, suppressed
	}
	rows, suppressed := count(e.audit(""), "device_auth_failed")
	if rows > noisePerKey || rows+suppressed != flood {
		t.Fatalf("%d failed handshakes wrote %d audit rows and counted %d, want at most %d rows and the rest counted",
			flood, rows, suppressed, noisePerKey)
	}

	// A device flooding writes (distinct idempotency keys) is refused past
	// its bucket; the refusals are counted, not written one by one.
	e2 := newEnv(t, func(c *Config) { c.DeviceRate = Rate{Every: time.Hour, Burst: 20} })
	e2.addUser("alice", alicePW, false)
	dev := e2.enroll("alice")
	a := e2.connect(dev, 0)
	refused := 0
	for i := range 200 {
		res := a.call(protocol.TypeAckSync, fmt.Sprintf("ack-%d", i), protocol.AckSyncRequest{User: "alice", PasswordVersion: 1})
		if res.Error != nil && res.Error.Code == protocol.CodeRateLimited {
			refused++
		}
	}
	e2.srv.flushNoise()
	evs := e2.audit("")
	acks, _ := count(evs, "sync_acknowledged")
	limited, limitedCounted := count(evs, "rate_limited")
	if refused != 180 || acks != 20 || limited > noisePerKey || limited+limitedCounted != 180 {
		t.Fatalf("200 writes: %d refused, %d written, %d rate_limited rows and %d counted", refused, acks, limited, limitedCounted)
	}
	stored := 0
	for i := range 200 {
		if _, err := e2.srv.lookupIdempotency(t, dev.id, fmt.Sprintf("ack-%d", i)); err == nil {
			stored++
		}
	}
	if stored != 20 {
		t.Fatalf("%d idempotency records, want 20", stored)
	}

	// Handshakes from an address that keeps failing are refused before
	// the websocket upgrade; another address still connects.
	e3 := newEnv(t, func(c *Config) { c.AddressRate = Rate{Every: time.Hour, Burst: 5} })
	good := e3.enroll()
	for range 5 {
		ws, hello := e3.dialRaw()
		sendAuth(t, ws, "dev_UNKNOWN", ed25519.Sign(key, protocol.AuthMessage("dev_UNKNOWN", hello.Challenge)), 0)
		expectRefused(t, ws)
		ws.Close()
	}
	d := websocket.Dialer{TLSClientConfig: e3.tlsConfig(), HandshakeTimeout: 5 * time.Second}
	_, resp, err := d.Dial("wss"+strings.TrimPrefix(e3.url, "https")+protocol.AgentPath, nil)
	if err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("a sixth handshake from a failing address: %v %v, want HTTP 429", err, resp)
	}
	e3.connectFrom("127.0.0.2", good)
	waitFor(t, "the refusal logged at warn", func() bool { return strings.Contains(e3.logs.String(), "too many failures from one address") })
}

// TestLimitsPerDeviceAndUser (item 7): one device guessing made-up names,
// or guessing one user's password, cannot block other devices behind the
// same address, nor the user's own Mac.
func TestLimitsPerDeviceAndUser(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.DeviceRate = Rate{Every: time.Hour, Burst: 5}
		c.AccountRate = Rate{Every: time.Hour, Burst: 5}
		// What an address may do unauthenticated: about as tight (enough
		// for the enrollments below).
		c.AddressRate = Rate{Every: time.Hour, Burst: 10}
	})
	e.addUser("alice", alicePW, false)
	e.addUser("bob", "Secret-Words-42", false)
	noisy := e.connect(e.enroll(), 0)
	for i := range 8 {
		res := noisy.call(protocol.TypeVerifyPassword, "", verify(fmt.Sprintf("made-up-%d", i), "Some-Guess-1"))
		if want := protocol.CodeWrongPassword; i >= 5 {
			want = protocol.CodeRateLimited
			if res.Error == nil || res.Error.Code != want {
				t.Fatalf("guess %d: %+v, want %s", i, res.Error, want)
			}
		}
	}
	// Another device behind the same address checks its users' passwords.
	alices := e.connect(e.enroll("alice"), 0)
	alices.ok(protocol.TypeVerifyPassword, "", verify("alice", alicePW), nil)
	bobs := e.connect(e.enroll("bob"), 0)
	bobs.ok(protocol.TypeVerifyPassword, "", verify("bob", "Secret-Words-42"), nil)
	// Strangers guessing bob's password drain only the strangers' bucket
	// for bob: bob's own Mac goes on.
	for i := range 3 {
		other := e.connect(e.enroll(), 0)
		for range 2 {
			other.call(protocol.TypeVerifyPassword, "", verify("bob", fmt.Sprintf("Guess-%d-xx", i)))
		}
	}
	for range 4 {
		bobs.ok(protocol.TypeVerifyPassword, "", verify("bob", "Secret-Words-42"), nil)
	}
}

// TestTLS12OffersOnlyAEAD (item 15): a TLS 1.2 client offering only CBC
// suites is refused; AEAD suites work, and TLS 1.3 as well.
func TestTLS12OffersOnlyAEAD(t *testing.T) {
	e := newEnv(t)
	tryTLS := func(max uint16, suites []uint16) error {
		cfg := e.tlsConfig()
		cfg.MaxVersion, cfg.CipherSuites = max, suites
		return e.tlsDial(cfg)
	}
	cbc := []uint16{0xc009, 0xc00a, 0xc013, 0xc014, 0x002f, 0x0035, 0xc023, 0xc027, 0x003c} // ECDHE/RSA CBC-SHA(256)
	if err := tryTLS(0x0303, cbc); err == nil {
		t.Fatal("a TLS 1.2 handshake with CBC suites only succeeded")
	}
	if err := tryTLS(0x0303, []uint16{0xc02b}); err != nil { // ECDHE-ECDSA-AES128-GCM-SHA256
		t.Fatalf("TLS 1.2 with AES-GCM: %v", err)
	}
	if err := tryTLS(0x0304, nil); err != nil {
		t.Fatalf("TLS 1.3: %v", err)
	}
}

// TestConnectionCapPerAddress (item 5): one address holds at most
// MaxConnsPerAddress connections; the ones beyond are closed at once
// (long before the 10 s handshake timeout would close them), the refusal
// is logged at warn with a count, and another address is served. The
// flood comes from 127.0.0.3, which nothing else in the test uses.
func TestConnectionCapPerAddress(t *testing.T) {
	const limit, extra = 20, 15
	e := newEnv(t, func(c *Config) { c.MaxConnsPerAddress = limit })
	addr := strings.TrimPrefix(e.url, "https://")
	flooder := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range limit + extra {
		c, err := flooder.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// held reports whether the server keeps c open: a closed one reads
	// EOF at once, a held one times out (it waits for our TLS hello).
	held := func(c net.Conn, wait time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		_, err := c.Read(make([]byte, 1))
		return isTimeout(err)
	}
	closed := 0
	start := time.Now()
	for _, c := range conns {
		if !held(c, max(50*time.Millisecond, 5*time.Second-time.Since(start))) {
			closed++
		}
	}
	if closed != extra {
		t.Fatalf("%d of %d idle connections from one address were closed, want %d (the cap is %d)", closed, limit+extra, extra, limit)
	}
	// Other addresses are served meanwhile.
	dev := e.enroll()
	e.connectFrom("127.0.0.2", dev).ok(protocol.TypeGetPolicy, "", nil, nil)
	waitFor(t, "the refusal logged at warn with a count", func() bool {
		return strings.Contains(e.logs.String(), `"level":"WARN","msg":"connection refused: too many from one address","addr":"127.0.0.3","limit":20,"count":`)
	})
	// Closing them frees the address's slots.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	waitFor(t, "the address to be served again", func() bool {
		c, err := flooder.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		return held(c, 200*time.Millisecond)
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestSlowRequestsTimedOut (item 5): an enrollment request whose body
// trickles in (a byte every half second) is cut off after the request
// timeout instead of holding the connection.
func TestSlowRequestsTimedOut(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RequestTimeout = time.Second })
	for _, path := range []string{protocol.EnrollPath, admin.PathEnrollTokens} {
		c, err := tls.Dial("tcp", strings.TrimPrefix(e.url, "https://"), e.tlsConfig())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
			path, e.srv.AdminToken())
		start := time.Now()
		cut := false
		for time.Since(start) < 15*time.Second {
			if _, err := c.Write([]byte(" ")); err != nil {
				cut = true
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		c.Close()
		if !cut {
			t.Fatalf("%s: a body sent a byte every 500 ms held the connection for %v", path, time.Since(start).Round(time.Second))
		}
		t.Logf("%s: cut off after %v", path, time.Since(start).Round(100*time.Millisecond))
	}
}

// sqliteOnly skips a test about the SQLite file when the suite runs on
// PostgreSQL.
func sqliteOnly(t *testing.T) {
	if os.Getenv("LOCKSTEP_TEST_STORE") == "postgres" {
		t.Skip("about the SQLite database file")
	}
}

// startFails starts a server on dir and returns New's error.
func startFails(t *testing.T, dir string) error {
	t.Helper()
	srv, err := New(Config{DataDir: dir, Argon2: testArgon2})
	if err == nil {
		_ = srv.Shutdown(t.Context())
	}
	return err
}

// TestCorruptionRefusedAtStart (item 9): a zero-length directory.db beside
// the keys, or one with a damaged page, is refused at start with what to
// do, instead of starting an empty directory with the old keys or failing
// request by request.
func TestCorruptionRefusedAtStart(t *testing.T) {
	sqliteOnly(t)
	dir := t.TempDir()
	e := newEnv(t, func(c *Config) { c.DataDir = dir })
	for i := range 300 {
		e.addUser(fmt.Sprintf("user-%03d-with-a-long-name-%s", i, strings.Repeat("x", 60)), alicePW, false)
	}
	if err := e.srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, DBFile)
	good, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := startFails(t, dir); err == nil || !strings.Contains(err.Error(), "missing or empty") || !strings.Contains(err.Error(), "backup") {
		t.Fatalf("start with an empty directory.db beside the keys: %v", err)
	}
	if st, _ := os.Stat(db); st.Size() != 0 {
		t.Fatal("the refused start wrote to the empty database")
	}
	// A damaged page in the middle of the users table.
	bad := bytes.Clone(good)
	for i := 8 * 4096; i < 8*4096+512; i++ {
		bad[i] ^= 0x5a
	}
	if err := os.WriteFile(db, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := startFails(t, dir); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("start with a damaged page: %v", err)
	}
	if err := os.WriteFile(db, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := startFails(t, dir); err != nil {
		t.Fatalf("start with the good file again: %v", err)
	}
}

// TestAdminFailureCauseLogged (item 9): when an admin call fails inside
// the directory, the caller gets a generic sentence and the log gets the
// cause. Here a table is dropped under the running server.
func TestAdminFailureCauseLogged(t *testing.T) {
	sqliteOnly(t)
	e := newEnv(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, DBFile)+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TABLE enroll_tokens`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.adm.CreateEnrollToken(t.Context(), admin.EnrollTokenRequest{}); !isCode(err, protocol.CodeInternal) {
		t.Fatalf("enroll-token create without its table: %v", err)
	}
	waitFor(t, "the cause in the log", func() bool {
		return strings.Contains(e.logs.String(), `"msg":"admin request failed"`) && strings.Contains(e.logs.String(), "no such table: enroll_tokens")
	})
}

// TestPermissionsRefused (item 11): a data directory others can write, or
// key and database files others can read or write, are refused at start.
func TestPermissionsRefused(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, func(c *Config) { c.DataDir = dir })
	if err := e.srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	files := []string{CAKeyFile, KeyFile, ServerKeyFile, AdminTokenFile}
	if e.dbURL == "" {
		files = append(files, DBFile)
	}
	for _, f := range files {
		path := filepath.Join(dir, f)
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		err := startFails(t, dir)
		if err == nil || !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("start with %s mode 666: %v", f, err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := startFails(t, dir); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Errorf("start with the data directory mode 777: %v", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if e.dbURL == "" {
		if err := startFails(t, dir); err != nil {
			t.Fatalf("start with sound modes: %v", err)
		}
	}
}

// TestNoTerminalEscapesOnTheWire (item 14): device ids, user names and
// host names carrying C1 control characters (CSI), ESC or bidi overrides
// are refused as bad requests, and none reaches the audit log.
func TestNoTerminalEscapesOnTheWire(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePW, false)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	evil := []string{"dev_\u009b31mX", "dev_\x1b[2J", "dev_\u202eX", "dev_\u0085"}
	for _, id := range evil {
		ws, hello := e.dialRaw()
		sendAuth(t, ws, id, ed25519.Sign(key, protocol.AuthMessage(id, hello.Challenge)), 0)
		expectRefused(t, ws)
		ws.Close()
	}
	a := e.connect(e.enroll("alice"), 0)
	for _, name := range evil {
		a.fails(protocol.TypeVerifyPassword, "", verify(name, "Some-Guess-1"), protocol.CodeBadRequest)
		a.fails(protocol.TypeGetAccount, "", protocol.GetAccountRequest{User: "alice", LocalName: name}, protocol.CodeBadRequest)
	}
	tok, err := e.adm.CreateEnrollToken(t.Context(), admin.EnrollTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	e.secret(string(tok.Token))
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	body, _ := json.Marshal(protocol.EnrollRequest{Token: tok.Token, PublicKey: pub, Hostname: "mac\u009b31m"})
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: e.tlsConfig()}}
	resp, err := hc.Post(e.url+protocol.EnrollPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("enrolling with a C1 host name: HTTP %d", resp.StatusCode)
	}
	e.srv.flushNoise()
	for _, ev := range e.audit("") {
		for _, s := range append([]string{ev.User, ev.Device, ev.Source}, slices.Collect(maps.Values(ev.Detail))...) {
			if strings.IndexFunc(s, protocol.Unprintable) >= 0 {
				t.Fatalf("audit event %+v holds a control character", ev)
			}
		}
	}
}

// TestAdminWritesWhenDiskNearlyFull (item 4): on a small file system
// (a tmpfs the test mounts) filled to below the disk reserve, a flood of
// failed handshakes and enrollments writes nothing and new devices are
// refused, so the administrator's writes still go through. Needs root to
// mount the file system.
func TestAdminWritesWhenDiskNearlyFull(t *testing.T) {
	sqliteOnly(t)
	if os.Getuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m,mode=700", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })
	data := filepath.Join(mnt, "data")
	e := newEnv(t, func(c *Config) {
		c.DataDir = data
		c.DiskReserveMiB = 8
		c.AddressRate = Rate{Every: time.Nanosecond, Burst: 1 << 20}
	})
	e.addUser("alice", alicePW, false)
	tok, err := e.adm.CreateEnrollToken(t.Context(), admin.EnrollTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	e.secret(string(tok.Token))
	// Leave 2 MiB free, well below the reserve (1.5 MiB before the source
	// accounts table: each reset writes one more page).
	free, err := freeBytes(mnt)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "filler"), make([]byte, free-4<<19), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the free-space check is cached for a second
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 250 {
				ws, hello := e.dialRaw()
				sendAuth(t, ws, "dev_UNKNOWN", ed25519.Sign(key, protocol.AuthMessage("dev_UNKNOWN", hello.Challenge)), 0)
				_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _, _ = ws.ReadMessage()
				ws.Close()
			}
		}()
	}
	wg.Wait()
	for i := range 20 {
		name := fmt.Sprintf("user-%02d", i)
		e.addUser(name, alicePW, false)
		if _, err := e.adm.ResetPassword(t.Context(), name, admin.ResetRequest{Password: protocol.Secret(e.secret(fmt.Sprintf("Reset-Pass-%02d-x", i)))}); err != nil {
			t.Fatalf("admin reset %d with the disk nearly full: %v\n%s", i, err, tail(e.logs.String(), 1500))
		}
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := e.enrollWith(tok.Token, pub); err == nil || !strings.Contains(err.Error(), "cannot enroll devices now") {
		t.Fatalf("enrolling with the disk nearly full: %v", err)
	}
	if !strings.Contains(e.logs.String(), "disk nearly full") {
		t.Fatal("the nearly full disk was not logged")
	}
	e.srv.flushNoise()
	if !strings.Contains(e.logs.String(), "audit events not written: the disk is nearly full") {
		t.Fatal("the dropped noise was not logged")
	}
}

// TestRetentionPrunes (item 4): audit events and idempotency records older
// than their retention are deleted by the scan loop; newer ones stay.
func TestRetentionPrunes(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.AuditRetention = 2 * time.Hour
		c.IdempotencyRetention = time.Hour
		c.ScanInterval = 50 * time.Millisecond
	})
	e.addUser("alice", alicePW, false)
	a := e.connect(e.enroll("alice"), 0)
	a.ok(protocol.TypeAckSync, "ack-1", protocol.AckSyncRequest{User: "alice", PasswordVersion: 1}, nil)
	old := len(e.audit(""))
	e.clock.Advance(90 * time.Minute)
	e.addUser("bob", "Secret-Words-42", false)
	waitFor(t, "the idempotency record to be pruned", func() bool {
		_, err := e.srv.lookupIdempotency(t, a.welcome.DeviceID, "ack-1")
		return err != nil
	})
	if !hasEvent(e.audit(""), "user_created") {
		t.Fatal("audit pruned too early")
	}
	e.clock.Advance(time.Hour) // alice's events are now 2.5 h old, bob's 1 h
	waitFor(t, "the old audit events to be pruned", func() bool {
		evs := e.audit("")
		for _, ev := range evs {
			if ev.User == "alice" {
				return false
			}
		}
		return len(evs) > 0
	})
	for _, ev := range e.audit("") {
		if ev.Event == "user_created" && ev.User != "bob" {
			t.Fatalf("unexpected event %+v", ev)
		}
	}
	if !hasEvent(e.audit("bob"), "user_created") {
		t.Fatalf("bob's newer event was pruned (of %d old events)", old)
	}
	// The first outcome is forgotten: the same key with another request is
	// a new request (refused on its own merits), not a reuse.
	a.fails(protocol.TypeAckSync, "ack-1", protocol.AckSyncRequest{User: "alice", PasswordVersion: 2}, protocol.CodeBadRequest)
}
