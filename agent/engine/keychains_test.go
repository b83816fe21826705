package engine_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// forgotten runs a forgotten-password sync to newPW: the old keychain
// (oldPW) is kept aside.
func forgotten(t *testing.T, h *harness) engine.KeptKeychain {
	t.Helper()
	h.d.Lock()
	h.d.Passwords["alice"] = newPW
	st := h.d.States["alice"]
	st.PasswordVersion++
	h.d.States["alice"] = st
	h.d.Unlock()
	op, err := h.e.Sync(t.Context(), "alice", engine.SyncRequest{New: protocol.Secret(newPW), ForgotPrevious: true}, nil)
	if err != nil || op.State != engine.OpDone {
		t.Fatalf("forgotten-password sync = %+v %v", op, err)
	}
	if n := h.account().KeptKeychains; n != 1 {
		t.Fatalf("account shows %d kept keychains after a forgotten-password sync", n)
	}
	kept, err := h.e.KeptKeychains(t.Context(), "alice")
	if err != nil || len(kept) != 1 || kept[0].Recovered {
		t.Fatalf("kept = %+v %v", kept, err)
	}
	return kept[0]
}

func recoverReq(name, old, cur string) engine.RecoverRequest {
	return engine.RecoverRequest{Name: name, Old: protocol.Secret(old), Current: protocol.Secret(cur)}
}

func TestRecoverKeychain(t *testing.T) {
	h := newHarness(t)
	k := forgotten(t, h)
	var steps []string
	op, err := h.e.RecoverKeychain(t.Context(), "alice", recoverReq(k.Name, oldPW, newPW), func(s engine.Step) {
		if s.State != engine.StepRunning {
			steps = append(steps, s.Name+"="+s.State)
		}
	})
	if err != nil || op.State != engine.OpDone || op.Kind != engine.OpKeychainRecover {
		t.Fatalf("RecoverKeychain = %+v %v", op, err)
	}
	if got := strings.Join(steps, ","); got != "verify_current=done,kept_keychain=done,search_list=done" {
		t.Errorf("steps = %s", got)
	}
	h.mac.Lock()
	if h.mac.Aside[0].Password != newPW || !slices.Equal(h.mac.SearchList["alice"], []string{k.Path}) ||
		!slices.Equal(h.mac.Unlocked, []string{k.Path}) || h.mac.FailedLogins != 0 {
		t.Errorf("after recovery: %+v, list %q, unlocked %q, failed logins %d", h.mac.Aside, h.mac.SearchList, h.mac.Unlocked, h.mac.FailedLogins)
	}
	h.mac.Unlock()
	if len(op.Notes) != 1 || op.Notes[0].Code != codes.NoteKeychainRecovered || op.Notes[0].Params["path"] != k.Path {
		t.Errorf("notes = %+v", op.Notes)
	}
	a := h.account()
	if a.State != engine.StateInSync || a.KeptKeychains != 0 {
		t.Errorf("account after recovery: %s, %d kept", a.State, a.KeptKeychains)
	}
	kept, _ := h.e.KeptKeychains(t.Context(), "alice")
	if len(kept) != 1 || !kept[0].Recovered {
		t.Errorf("kept after recovery = %+v", kept)
	}
	// Again: everything is found done.
	steps = nil
	op, err = h.e.RecoverKeychain(t.Context(), "alice", recoverReq(k.Name, oldPW, newPW), func(s engine.Step) {
		if s.State != engine.StepRunning {
			steps = append(steps, s.Name+"="+s.State)
		}
	})
	if err != nil || op.State != engine.OpDone {
		t.Fatalf("again = %+v %v", op, err)
	}
	if got := strings.Join(steps, ","); got != "verify_current=done,kept_keychain=skipped,search_list=done" ||
		op.Steps[2].Text.Code != codes.StepSearchListDone {
		t.Errorf("steps again = %s (%+v)", got, op.Steps)
	}
	for _, ev := range h.evs {
		if ev.Notice != nil && ev.Notice.Kind == engine.NoticeSynced && strings.Contains(ev.Notice.ID, op.ID) {
			t.Errorf("a recovery notified %+v", ev.Notice)
		}
	}
}

func TestRecoverKeychainRefusalsChangeNothing(t *testing.T) {
	tests := []struct {
		name        string
		old, cur    string
		keychain    string // a name other than the kept one's
		state, code string
		field       string
	}{
		{name: "wrong old password", old: "Not-the-old-1", cur: newPW, state: engine.OpFailed, code: codes.Keychain, field: engine.FieldOld},
		{name: "wrong current password", old: oldPW, cur: "Not-the-current-1", state: engine.OpFailed, code: codes.WrongLocal, field: engine.FieldCurrent},
		{name: "no such kept keychain", old: oldPW, cur: newPW, keychain: "login.keychain-db", code: codes.NoKeptKeychain},
		{name: "no old password", cur: newPW, code: codes.Missing, field: engine.FieldOld},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			k := forgotten(t, h)
			name := k.Name
			if tc.keychain != "" {
				name = tc.keychain
			}
			op, err := h.e.RecoverKeychain(t.Context(), "alice", recoverReq(name, tc.old, tc.cur), nil)
			var ee *engine.Error
			switch {
			case tc.state == "":
				if op != nil || !errors.As(err, &ee) || ee.Code != tc.code || ee.Field != tc.field {
					t.Fatalf("= %+v %v, want refusal %s", op, err, tc.code)
				}
			case err != nil || op.State != tc.state || op.Error == nil || op.Error.Code != tc.code || op.Error.Field != tc.field:
				t.Fatalf("= %+v %v", op, err)
			}
			h.mac.Lock()
			defer h.mac.Unlock()
			if h.mac.Aside[0].Password != oldPW || len(h.mac.SearchList["alice"]) != 0 || len(h.mac.Unlocked) != 0 {
				t.Errorf("a refused recovery changed something: %+v %q %q", h.mac.Aside, h.mac.SearchList, h.mac.Unlocked)
			}
		})
	}
}

// A recovery that stopped after its re-key is incomplete, never "sync
// needed"; running it again finishes it without the old password working
// any more.
func TestRecoverKeychainIncompleteThenFinished(t *testing.T) {
	h := newHarness(t)
	k := forgotten(t, h)
	h.mac.Lock()
	h.mac.Fail["search_list"] = errors.New("security: SecKeychainSetDomainSearchList user: UNIX[Operation not permitted]")
	h.mac.Unlock()
	op, err := h.e.RecoverKeychain(t.Context(), "alice", recoverReq(k.Name, oldPW, newPW), nil)
	if err != nil || op.State != engine.OpIncomplete || op.Error == nil || op.Error.Code != codes.Platform {
		t.Fatalf("= %+v %v", op, err)
	}
	if a := h.account(); a.State != engine.StateInSync {
		t.Errorf("account %s after an incomplete recovery", a.State)
	}
	op, err = h.e.RecoverKeychain(t.Context(), "alice", recoverReq(k.Name, "anything-now", newPW), nil)
	if err != nil || op.State != engine.OpDone || op.Steps[1].State != engine.StepSkipped {
		t.Fatalf("again = %+v %v", op, err)
	}
}

// A crash during a recovery ends incomplete at restart (failed when it had
// not reached the re-key), and leaves the account in step; a later sync
// still learns from the change or sync before it.
func TestRecoverKeychainCrash(t *testing.T) {
	for _, at := range []string{"rekey_kept", "search_list"} {
		t.Run(at, func(t *testing.T) {
			h := newHarness(t)
			k := forgotten(t, h)
			h.mac.Before = func(op string) {
				if op == at {
					panic("crash")
				}
			}
			func() {
				defer func() { _ = recover() }()
				_, _ = h.e.RecoverKeychain(t.Context(), "alice", recoverReq(k.Name, oldPW, newPW), nil)
			}()
			h.mac.Before = nil
			h.start()
			a := h.account()
			if a.State != engine.StateInSync || a.LastOperation == nil || a.LastOperation.State != engine.OpIncomplete ||
				a.LastOperation.Error.Code != codes.Interrupted {
				t.Fatalf("after restart: %s, last %+v", a.State, a.LastOperation)
			}
			op, err := h.e.RecoverKeychain(t.Context(), "alice", recoverReq(k.Name, oldPW, newPW), nil)
			if err != nil || op.State != engine.OpDone {
				t.Fatalf("after the crash = %+v %v", op, err)
			}
		})
	}
}

// A change after a recovery moves the recovered keychain along with the
// login keychain, so it keeps opening without a prompt.
func TestChangeRekeysRecoveredKeychain(t *testing.T) {
	h := newHarness(t)
	k := forgotten(t, h)
	if op, err := h.e.RecoverKeychain(t.Context(), "alice", recoverReq(k.Name, oldPW, newPW), nil); err != nil || op.State != engine.OpDone {
		t.Fatalf("recover = %+v %v", op, err)
	}
	const next = "Next-Passw0rd-2027"
	op, err := h.e.Change(t.Context(), "alice", change(newPW, next, "123456"), nil)
	if err != nil || op.State != engine.OpDone {
		t.Fatalf("change = %+v %v", op, err)
	}
	h.mac.Lock()
	defer h.mac.Unlock()
	if h.mac.Keychain["alice"] != next || h.mac.Aside[0].Password != next {
		t.Errorf("after the change: login %q, recovered %q", h.mac.Keychain["alice"], h.mac.Aside[0].Password)
	}
}
