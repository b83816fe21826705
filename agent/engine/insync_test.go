package engine_test

import (
	"errors"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/protocol"
)

func inSync(a engine.Account) string {
	if a.InSync == nil {
		return "unknown"
	}
	if *a.InSync {
		return "true"
	}
	return "false"
}

func push(t *testing.T, h *harness, typ string, body any) {
	t.Helper()
	env, err := protocol.New(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	env.Seq = 1
	if err := h.e.HandlePush(t.Context(), env); err != nil {
		t.Fatal(err)
	}
}

// InSync is what MDM's smart groups read: a sync that is needed reads
// false whatever state is shown (a lock comes first in the list of states),
// and the engine says nothing while it does not know.
func TestInSyncVerdict(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, h *harness)
		state string
		want  string
	}{
		{"bound and in step", func(*testing.T, *harness) {}, engine.StateInSync, "true"},
		{"reset by an administrator", func(t *testing.T, h *harness) {
			push(t, h, protocol.TypePasswordReset, h.d.Reset("alice", newPW, false))
		}, engine.StateSyncNeeded, "false"},
		{"locked while a sync is needed", func(t *testing.T, h *harness) {
			push(t, h, protocol.TypePasswordReset, h.d.Reset("alice", newPW, false))
			push(t, h, protocol.TypeAccountLocked, h.d.LockUser("alice", time.Now().Add(time.Hour)))
		}, engine.StateLocked, "false"},
		{"locked while in step", func(t *testing.T, h *harness) {
			push(t, h, protocol.TypeAccountLocked, h.d.LockUser("alice", time.Now().Add(time.Hour)))
		}, engine.StateLocked, "true"},
		{"temporary password synced", func(t *testing.T, h *harness) {
			push(t, h, protocol.TypePasswordReset, h.d.Reset("alice", tempPW, true))
			if op, err := h.e.Sync(t.Context(), "alice", engine.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret(tempPW)}, nil); err != nil || op.State != engine.OpDone {
				t.Fatalf("sync = %+v, %v", op, err)
			}
		}, engine.StateTemporary, "true"},
		{"stopped part-way", func(t *testing.T, h *harness) {
			h.mac.Fail["rekey"] = errors.New("injected rekey failure")
			h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), nil)
		}, engine.StateSyncNeeded, "false"},
		{"no longer linked", func(t *testing.T, h *harness) {
			h.d.Lock()
			h.d.Proof = true
			h.d.Unlock()
			h.e.Bind(t.Context(), "alice")
		}, engine.StateNotLinked, "unknown"},
		{"known but never heard of", func(t *testing.T, h *harness) { h.e.Touch("bob") }, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			tt.setup(t, h)
			if tt.state == "" {
				bob := h.e.Accounts([]string{"bob"})
				if len(bob) != 1 || bob[0].State != engine.StateUnknown || bob[0].InSync != nil {
					t.Fatalf("bob = %+v", bob)
				}
				return
			}
			a := h.account()
			if a.State != tt.state || inSync(a) != tt.want {
				t.Fatalf("state %s, in sync %s; want %s, %s", a.State, inSync(a), tt.state, tt.want)
			}
		})
	}
}

// While an operation runs its outcome decides, so the engine does not
// guess; when it ends, the verdict is there again.
func TestInSyncUnknownWhileBusy(t *testing.T) {
	h := newHarness(t)
	var during []string
	op, err := h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), func(s engine.Step) {
		a := h.account()
		during = append(during, a.State+"/"+inSync(a))
	})
	if err != nil || op.State != engine.OpDone {
		t.Fatalf("change = %+v, %v", op, err)
	}
	if len(during) == 0 {
		t.Fatal("no step seen")
	}
	for _, d := range during {
		if d != engine.StateBusy+"/unknown" {
			t.Fatalf("during the change: %v", during)
		}
	}
	if a := h.account(); inSync(a) != "true" {
		t.Fatalf("after the change: %s", inSync(a))
	}
}

// Touch tells watchers of a new account, as every other change of state
// does.
func TestTouchPublishesNewAccount(t *testing.T) {
	h := newHarness(t)
	count := func() int {
		h.evMu.Lock()
		defer h.evMu.Unlock()
		n := 0
		for _, ev := range h.evs {
			if ev.Type == engine.EventStatus {
				n++
			}
		}
		return n
	}
	before := count()
	h.e.Touch("bob")
	h.e.Touch("bob")
	h.e.Touch("alice")
	if got := count() - before; got != 1 {
		t.Fatalf("status events = %d, want 1 (for bob, once)", got)
	}
}

func TestNextChange(t *testing.T) {
	now := time.Date(2026, 3, 10, 15, 30, 0, 0, time.Local)
	midnight := time.Date(2026, 3, 11, 0, 0, 0, 0, time.Local)
	tests := []struct {
		name  string
		setup func(t *testing.T, h *harness)
		want  time.Duration // 0: none
	}{
		{"nothing waits on the clock", func(*testing.T, *harness) {}, 0},
		{"a lock ends", func(t *testing.T, h *harness) {
			push(t, h, protocol.TypeAccountLocked, h.d.LockUser("alice", now.Add(15*time.Minute)))
		}, 15 * time.Minute},
		{"a lock only IT ends", func(t *testing.T, h *harness) {
			push(t, h, protocol.TypeAccountLocked, h.d.LockUser("alice", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)))
		}, 0},
		{"a password expires: the days left change at midnight", func(t *testing.T, h *harness) {
			push(t, h, protocol.TypeExpiryApproaching, protocol.ExpiryApproaching{User: "alice", ExpiresAt: now.Add(20 * 24 * time.Hour), DaysLeft: 20})
		}, midnight.Sub(now)},
		{"a lock that ends before midnight comes first", func(t *testing.T, h *harness) {
			push(t, h, protocol.TypeExpiryApproaching, protocol.ExpiryApproaching{User: "alice", ExpiresAt: now.Add(20 * 24 * time.Hour), DaysLeft: 20})
			push(t, h, protocol.TypeAccountLocked, h.d.LockUser("alice", now.Add(time.Hour)))
		}, time.Hour},
		{"a lock that has ended waits for nothing", func(t *testing.T, h *harness) {
			push(t, h, protocol.TypeAccountLocked, h.d.LockUser("alice", now.Add(-time.Minute)))
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.now = func() time.Time { return now }
			h.start()
			tt.setup(t, h)
			at, ok := h.e.NextChange()
			if ok != (tt.want != 0) || (ok && at.Sub(now) != tt.want) {
				t.Fatalf("NextChange = %v, %v; want now + %v", at, ok, tt.want)
			}
		})
	}
}
