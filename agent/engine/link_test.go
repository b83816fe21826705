package engine_test

import (
	"errors"
	"testing"

	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/agent/enginetest"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// newUnlinked is a harness whose directory links a Mac to a user only on
// proof, and has not been given it.
func newUnlinked(t *testing.T) *harness {
	h := &harness{t: t, dir: t.TempDir(), mac: enginetest.NewMac(), d: enginetest.NewDirectory()}
	h.d.Proof = true
	h.start()
	return h
}

// The directory does not link the Mac to alice: her account says so and
// what to do; every operation is refused with that; a wrong password does
// not link it (and counts against the engine's own budget); the right one
// does, and the account shows its normal state.
func TestNotLinkedUntilThePasswordIsGiven(t *testing.T) {
	h := newUnlinked(t)
	err := h.e.Bind(t.Context(), "alice")
	var le *engine.Error
	if !errors.As(err, &le) || le.Code != codes.NotBound {
		t.Fatalf("Bind = %v, want %s", err, codes.NotBound)
	}
	a := h.account()
	if a.State != engine.StateNotLinked || a.Reason.Code != codes.ReasonNotLinked {
		t.Fatalf("account = %s: %+v", a.State, a.Reason)
	}
	if _, err := h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), nil); !errors.As(err, &le) || le.Code != codes.NotBound {
		t.Fatalf("change while not linked = %v", err)
	}

	_, err = h.e.Link(t.Context(), "alice", protocol.Secret("Not-her-Passw0rd"))
	if !errors.As(err, &le) || le.Code != protocol.CodeWrongPassword || le.Field != engine.FieldPassword {
		t.Fatalf("link with a wrong password = %v", err)
	}
	if a := h.account(); a.State != engine.StateNotLinked {
		t.Fatalf("after a wrong password: %s", a.State)
	}

	a, err = h.e.Link(t.Context(), "alice", protocol.Secret(oldPW))
	if err != nil {
		t.Fatal(err)
	}
	if a.State != engine.StateInSync || !a.MFA {
		t.Fatalf("after linking: %s (%+v)", a.State, a.Reason)
	}
	if !h.e.IsBound("alice") {
		t.Error("linked but not bound")
	}
	if op, err := h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), nil); err != nil || op.State != engine.OpDone {
		t.Fatalf("change once linked = %+v, %v", op, err)
	}
}

// Link's password checks go through the engine's throttle: past the
// budget it refuses without asking the directory, so linking can never
// lock the user out.
func TestLinkIsThrottled(t *testing.T) {
	h := newUnlinked(t)
	_ = h.e.Bind(t.Context(), "alice")
	budget := engine.DefaultThrottle().MaxFailures
	for i := 0; i < budget; i++ {
		if _, err := h.e.Link(t.Context(), "alice", protocol.Secret("Wrong-Passw0rd-1")); err == nil {
			t.Fatal("a wrong password linked")
		}
	}
	before := h.d.Verifies
	_, err := h.e.Link(t.Context(), "alice", protocol.Secret(oldPW))
	var le *engine.Error
	if !errors.As(err, &le) || le.Code != codes.Throttled {
		t.Fatalf("link past the budget = %v", err)
	}
	if h.d.Verifies != before {
		t.Error("the directory was asked past the budget")
	}
}

// A Mac that was linked and no longer is (it enrolled again, or IT undid
// the assignment) shows it; a change or sync, whose directory step takes
// the password, links it again.
func TestOperationWithThePasswordLinksAgain(t *testing.T) {
	h := newHarness(t)
	h.d.Lock()
	h.d.Proof = true
	h.d.Unlock()
	_ = h.e.Bind(t.Context(), "alice")
	if a := h.account(); a.State != engine.StateNotLinked {
		t.Fatalf("after the directory dropped the link: %s", a.State)
	}
	op, err := h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), nil)
	if err != nil || op.State != engine.OpDone {
		t.Fatalf("change = %+v, %v", op, err)
	}
	h.e.Relink(t.Context(), "alice", op)
	if a := h.account(); a.State != engine.StateInSync {
		t.Fatalf("after the change: %s (%+v)", a.State, a.Reason)
	}
}
