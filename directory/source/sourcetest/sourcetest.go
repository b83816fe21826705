// Package sourcetest is the conformance suite every source.Source passes:
// the built-in store (in package directory), Active Directory (package ad,
// against a real Samba AD DC) and, later, OpenLDAP. It drives a source only
// through the interface, so what it checks is what the hub may rely on.
package sourcetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Fixture is a source under test and what the suite needs beside it.
type Fixture struct {
	Source source.Source
	// NewUser makes a user in the source's scope with this password and a
	// display name, and returns the user's name.
	NewUser func(t *testing.T, password string) string
	// Elsewhere sets a password as an administrator's tool other than
	// Lockstep does (AD: an LDAP modify as the domain administrator); nil
	// for a source nobody else writes to (the built-in store).
	Elsewhere func(t *testing.T, user, password string, temporary bool)
	// LockoutThreshold is how many wrong passwords lock an account.
	LockoutThreshold int
}

var seq atomic.Int64

// Password returns a fresh password that meets the built-in default
// policy and AD's default complexity: 16+ characters of four kinds.
func Password() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("Pw-%s-%d-Zz", hex.EncodeToString(b), seq.Add(1))
}

// Run runs the suite. Each test makes its own users, so tests run in
// parallel.
func Run(t *testing.T, f Fixture) {
	tests := []struct {
		name string
		fn   func(*testing.T, Fixture)
	}{
		{"Verify", testVerify},
		{"ChangeAsTheUser", testChange},
		{"ChangeWrongCurrent", testChangeWrongCurrent},
		{"ChangeRefusedByPolicy", testChangePolicy},
		{"ChangeHistory", testChangeHistory},
		{"ChangeStoppedByVerifiedHook", testVerifiedHookStops},
		{"CommitFailure", testCommitFailure},
		{"ResetTemporaryThenChange", testResetTemporary},
		{"ResetPermanent", testResetPermanent},
		{"LockoutAndUnlock", testLockout},
		{"PolicyAndAccounts", testPolicyAccounts},
		{"WatchReportsChangesElsewhere", testWatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, f)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// mustVerify checks that pw is user's password.
func mustVerify(t *testing.T, f Fixture, user, pw string) source.Account {
	t.Helper()
	a, err := f.Source.Verify(ctx(t), user, []byte(pw), source.Attempt{})
	if err != nil {
		t.Fatalf("Verify(%s, the right password) = %v", user, err)
	}
	if a.User != user {
		t.Fatalf("Verify(%s) returned the account of %q", user, a.User)
	}
	return a
}

// mustRefuse checks that pw is not user's password; as a stranger, so
// that the built-in store does not count it (AD does: keep them few).
func mustRefuse(t *testing.T, f Fixture, user, pw string) {
	t.Helper()
	_, err := f.Source.Verify(ctx(t), user, []byte(pw), source.Attempt{Stranger: true})
	if !errors.Is(err, source.ErrWrongPassword) {
		t.Fatalf("Verify(%s, a wrong password) = %v, want ErrWrongPassword", user, err)
	}
}

func testVerify(t *testing.T, f Fixture) {
	pw := Password()
	u := f.NewUser(t, pw)
	a := mustVerify(t, f, u, pw)
	if a.Stamp == "" || a.MustChange || a.Locked || a.Disabled {
		t.Fatalf("a fresh account: %+v", a)
	}
	mustRefuse(t, f, u, pw+"x")
	if _, err := f.Source.Verify(ctx(t), u, nil, source.Attempt{Stranger: true}); !errors.Is(err, source.ErrWrongPassword) {
		t.Fatalf("Verify with an empty password = %v, want ErrWrongPassword (an empty bind must never pass)", err)
	}
	if _, err := f.Source.Verify(ctx(t), "nobody-"+hex.EncodeToString([]byte(pw[3:7])), []byte(pw), source.Attempt{Stranger: true}); !errors.Is(err, source.ErrUnknownUser) {
		t.Fatalf("Verify of an unknown user = %v, want ErrUnknownUser", err)
	}
	got, err := f.Source.Account(ctx(t), u)
	if err != nil || got.User != u || got.Stamp != a.Stamp {
		t.Fatalf("Account(%s) = %+v, %v; Verify said %+v", u, got, err, a)
	}
	if _, err := f.Source.Account(ctx(t), "nobody-x1"); !errors.Is(err, source.ErrUnknownUser) {
		t.Fatalf("Account of an unknown user = %v", err)
	}
}

// hookLog records the order the hooks ran in.
type hookLog struct {
	mu    sync.Mutex
	calls []string
	acct  map[string]source.Account
}

func (h *hookLog) hooks() source.Hooks {
	rec := func(name string) func(context.Context, source.Account) error {
		return func(_ context.Context, a source.Account) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.calls = append(h.calls, name)
			if h.acct == nil {
				h.acct = map[string]source.Account{}
			}
			h.acct[name] = a
			return nil
		}
	}
	return source.Hooks{Verified: rec("verified"), Commit: rec("commit")}
}

func testChange(t *testing.T, f Fixture) {
	old, nw := Password(), Password()
	u := f.NewUser(t, old)
	before := mustVerify(t, f, u, old)
	var h hookLog
	a, err := f.Source.Change(ctx(t), u, []byte(old), []byte(nw), source.Attempt{}, h.hooks())
	if err != nil {
		t.Fatalf("Change: %v", err)
	}
	if !slices.Equal(h.calls, []string{"verified", "commit"}) {
		t.Fatalf("hooks ran %v, want verified then commit", h.calls)
	}
	if a.Stamp == before.Stamp || h.acct["commit"].Stamp != a.Stamp || h.acct["verified"].Stamp != before.Stamp {
		t.Fatalf("stamps: before %q, verified %q, commit %q, returned %q: the change must show in the stamp",
			before.Stamp, h.acct["verified"].Stamp, h.acct["commit"].Stamp, a.Stamp)
	}
	if a.MustChange {
		t.Fatal("a changed password still must change")
	}
	mustVerify(t, f, u, nw)
	mustRefuse(t, f, u, old)
}

func testChangeWrongCurrent(t *testing.T, f Fixture) {
	pw := Password()
	u := f.NewUser(t, pw)
	var h hookLog
	_, err := f.Source.Change(ctx(t), u, []byte(pw+"x"), []byte(Password()), source.Attempt{Stranger: true}, h.hooks())
	if !errors.Is(err, source.ErrWrongPassword) {
		t.Fatalf("Change with a wrong current password = %v, want ErrWrongPassword", err)
	}
	if len(h.calls) != 0 {
		t.Fatalf("hooks ran %v for a refused change", h.calls)
	}
	mustVerify(t, f, u, pw)
}

func testChangePolicy(t *testing.T, f Fixture) {
	pw := Password()
	u := f.NewUser(t, pw)
	var h hookLog
	_, err := f.Source.Change(ctx(t), u, []byte(pw), []byte("Ab1!"), source.Attempt{}, h.hooks())
	var pe *source.PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("Change to a 4-character password = %v, want a PolicyError", err)
	}
	if !slices.ContainsFunc(pe.Violations, func(v protocol.Violation) bool { return v.Code == protocol.RuleMinLength && v.Message != "" }) {
		t.Fatalf("violations %+v lack %s with a sentence", pe.Violations, protocol.RuleMinLength)
	}
	if slices.Contains(h.calls, "commit") {
		t.Fatal("commit ran for a refused change")
	}
	mustVerify(t, f, u, pw)
}

func testChangeHistory(t *testing.T, f Fixture) {
	p1, p2 := Password(), Password()
	u := f.NewUser(t, p1)
	if _, err := f.Source.Change(ctx(t), u, []byte(p1), []byte(p2), source.Attempt{}, source.Hooks{}); err != nil {
		t.Fatal(err)
	}
	_, err := f.Source.Change(ctx(t), u, []byte(p2), []byte(p1), source.Attempt{}, source.Hooks{})
	var pe *source.PolicyError
	if !errors.As(err, &pe) || !slices.ContainsFunc(pe.Violations, func(v protocol.Violation) bool { return v.Code == protocol.RuleHistory }) {
		t.Fatalf("changing back to the previous password = %v, want a PolicyError with %s", err, protocol.RuleHistory)
	}
	mustVerify(t, f, u, p2)
}

func testVerifiedHookStops(t *testing.T, f Fixture) {
	pw := Password()
	u := f.NewUser(t, pw)
	stop := errors.New("wrong second factor")
	_, err := f.Source.Change(ctx(t), u, []byte(pw), []byte(Password()), source.Attempt{},
		source.Hooks{Verified: func(context.Context, source.Account) error { return stop }})
	if !errors.Is(err, stop) {
		t.Fatalf("Change whose Verified hook failed = %v, want that error", err)
	}
	mustVerify(t, f, u, pw)
}

// A failed commit: a source that writes in the hub's transaction rolls the
// change back; a remote one has changed the password already, and says so
// in its stamp (which the hub then reports as a change).
func testCommitFailure(t *testing.T, f Fixture) {
	old, nw := Password(), Password()
	u := f.NewUser(t, old)
	before := mustVerify(t, f, u, old)
	fail := errors.New("the hub could not record it")
	_, err := f.Source.Change(ctx(t), u, []byte(old), []byte(nw), source.Attempt{},
		source.Hooks{Commit: func(context.Context, source.Account) error { return fail }})
	if !errors.Is(err, fail) {
		t.Fatalf("Change whose commit failed = %v, want that error", err)
	}
	if f.Source.Info().External {
		a := mustVerify(t, f, u, nw)
		if a.Stamp == before.Stamp {
			t.Fatal("the remote change is not in the stamp")
		}
		return
	}
	mustVerify(t, f, u, old)
	mustRefuse(t, f, u, nw)
}

func testResetTemporary(t *testing.T, f Fixture) {
	old, temp, perm := Password(), Password(), Password()
	u := f.NewUser(t, old)
	before := mustVerify(t, f, u, old)
	var h hookLog
	a, err := f.Source.Reset(ctx(t), u, []byte(temp), true, h.hooks())
	if err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if !a.MustChange || a.Stamp == before.Stamp || !slices.Equal(h.calls, []string{"commit"}) || !h.acct["commit"].MustChange {
		t.Fatalf("after a temporary reset: %+v, hooks %v", a, h.calls)
	}
	// A right temporary password is not an error: it must be changed.
	v := mustVerify(t, f, u, temp)
	if !v.MustChange {
		t.Fatalf("Verify with the temporary password: %+v, want MustChange", v)
	}
	mustRefuse(t, f, u, old)
	c, err := f.Source.Change(ctx(t), u, []byte(temp), []byte(perm), source.Attempt{}, source.Hooks{})
	if err != nil {
		t.Fatalf("changing the temporary password: %v", err)
	}
	if c.MustChange {
		t.Fatal("still must change after the change")
	}
	if v := mustVerify(t, f, u, perm); v.MustChange {
		t.Fatal("the permanent password must change")
	}
}

func testResetPermanent(t *testing.T, f Fixture) {
	old, temp, perm := Password(), Password(), Password()
	u := f.NewUser(t, old)
	if _, err := f.Source.Reset(ctx(t), u, []byte(temp), true, source.Hooks{}); err != nil {
		t.Fatal(err)
	}
	a, err := f.Source.Reset(ctx(t), u, []byte(perm), false, source.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if a.MustChange {
		t.Fatal("a reset that is not temporary left the must-change mark")
	}
	if v := mustVerify(t, f, u, perm); v.MustChange {
		t.Fatalf("Verify after a permanent reset: %+v", v)
	}
	if _, err := f.Source.Reset(ctx(t), "nobody-x2", []byte(perm), false, source.Hooks{}); !errors.Is(err, source.ErrUnknownUser) {
		t.Fatalf("Reset of an unknown user = %v", err)
	}
}

func testLockout(t *testing.T, f Fixture) {
	pw := Password()
	u := f.NewUser(t, pw)
	var err error
	for i := 0; i < f.LockoutThreshold; i++ {
		_, err = f.Source.Verify(ctx(t), u, []byte(fmt.Sprintf("Wrong-Pass-%d!", i)), source.Attempt{})
	}
	var le *source.LockedError
	if !errors.As(err, &le) || !le.Account.Locked {
		t.Fatalf("after %d wrong passwords: %v, want a LockedError", f.LockoutThreshold, err)
	}
	// Locked: even the right password is refused.
	if _, err := f.Source.Verify(ctx(t), u, []byte(pw), source.Attempt{}); !errors.As(err, &le) {
		t.Fatalf("the right password while locked = %v, want a LockedError", err)
	}
	a, err := f.Source.Account(ctx(t), u)
	if err != nil || !a.Locked {
		t.Fatalf("Account while locked: %+v, %v", a, err)
	}
	var h hookLog
	a, err = f.Source.Unlock(ctx(t), u, h.hooks())
	if err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if a.Locked || !slices.Equal(h.calls, []string{"commit"}) || h.acct["commit"].Locked {
		t.Fatalf("after Unlock: %+v, hooks %v", a, h.calls)
	}
	mustVerify(t, f, u, pw)
}

func testPolicyAccounts(t *testing.T, f Fixture) {
	p, err := f.Source.Policy(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Rules.Validate(); err != nil {
		t.Fatalf("the source's policy does not validate: %v (%+v)", err, p.Rules)
	}
	if p.LockoutThreshold != f.LockoutThreshold {
		t.Fatalf("lockout threshold %d, want %d", p.LockoutThreshold, f.LockoutThreshold)
	}
	// What the source says it enforces it enforces: a password failing
	// only the minimum length is refused.
	short := "Aa1!Aa1!Aa1!Aa1!"[:p.Rules.MinLength-1]
	if p.Rules.MinLength > 1 && len(p.Rules.Check("x", []byte(short))) == 0 {
		t.Fatalf("the policy passes %q, shorter than its minimum %d", short, p.Rules.MinLength)
	}
	pw := Password()
	u := f.NewUser(t, pw)
	all, err := f.Source.Accounts(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(all, func(a source.Account) bool { return a.User == u }) {
		t.Fatalf("Accounts (%d) lack %s", len(all), u)
	}
}

func testWatch(t *testing.T, f Fixture) {
	if f.Elsewhere == nil {
		t.Skip("nobody but Lockstep writes to this source")
	}
	pw, other := Password(), Password()
	u := f.NewUser(t, pw)
	before := mustVerify(t, f, u, pw)
	wctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	events := make(chan source.Event, 64)
	done := make(chan error, 1)
	go func() {
		done <- f.Source.Watch(wctx, nil, func(e source.Event) {
			if e.User != u {
				return // other tests' users
			}
			select {
			case events <- e:
			case <-wctx.Done():
			}
		})
	}()
	// Whatever the source reports, the change made elsewhere must come:
	// a temporary reset, seen with its new stamp and must-change mark.
	f.Elsewhere(t, u, other, true)
	deadline := time.After(30 * time.Second)
	for {
		select {
		case e := <-events:
			if e.User == u && e.Account.Stamp != before.Stamp && e.Account.MustChange {
				cancel()
				if err := <-done; !errors.Is(err, context.Canceled) {
					t.Fatalf("Watch returned %v after its context ended", err)
				}
				return
			}
		case err := <-done:
			t.Fatalf("Watch returned early: %v", err)
		case <-deadline:
			t.Fatal("a reset made elsewhere was not reported within 30 s")
		}
	}
}
