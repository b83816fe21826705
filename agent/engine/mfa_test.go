package engine_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/agent/enginetest"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// The enrolment push puts the account in mfa_enroll with a notice (no
// secret in either); a change then needs no code; the key goes to the
// caller of BeginEnrollment and to no event, state file or journal entry;
// a confirmed code ends the state and codes are needed again.
func TestEnrolmentPeriod(t *testing.T) {
	h := newHarness(t)
	until := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	env, _ := protocol.New(protocol.TypeMFAEnrollment, h.d.ResetMFA("alice", until))
	env.Seq = 1
	if err := h.e.HandlePush(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	a := h.account()
	if a.State != engine.StateMFAEnroll || a.MFAEnrollBy == nil || !a.MFAEnrollBy.Equal(until) ||
		a.Reason.Code != codes.ReasonMFAEnroll || a.Reason.Params["until"] != until.Format(time.RFC3339) {
		t.Fatalf("after the push: %s %+v by %v", a.State, a.Reason, a.MFAEnrollBy)
	}
	if p := h.e.PolicyFor(t.Context(), "alice"); p.MFA {
		t.Error("the policy asks for a code during the period")
	}
	st := h.e.Standing("alice")
	if len(st) != 1 || st[0].Kind != engine.NoticeMFAEnroll || st[0].Params["until"] != until.Format(time.RFC3339) {
		t.Fatalf("standing notices %+v", st)
	}
	op, err := h.e.Change(t.Context(), "alice", change(oldPW, newPW, ""), nil)
	if err != nil || op.State != engine.OpDone {
		t.Fatalf("a change without a code during the period: %+v %v", op, err)
	}
	key, err := h.e.BeginEnrollment(t.Context(), "alice")
	if err != nil || string(key.Secret) != enginetest.EnrollSecret || !key.Until.Equal(until) || !strings.HasPrefix(string(key.URI), "otpauth://") {
		t.Fatalf("begin: %+v %v", key, err)
	}
	if _, err := h.e.ConfirmEnrollment(t.Context(), "alice", "12345"); !errors.Is(err, &engine.Error{Code: codes.MFAFormat}) {
		t.Fatalf("a short code: %v", err)
	}
	if _, err := h.e.ConfirmEnrollment(t.Context(), "alice", "000000"); !errors.Is(err, &engine.Error{Code: protocol.CodeMFAInvalid}) {
		t.Fatalf("a wrong code: %v", err)
	}
	code, _ := totp.GenerateCode(enginetest.EnrollSecret, time.Now())
	a, err = h.e.ConfirmEnrollment(t.Context(), "alice", code)
	if err != nil || a.State == engine.StateMFAEnroll || a.MFAEnrollBy != nil || !a.MFA {
		t.Fatalf("confirm: %+v %v", a, err)
	}
	if p := h.e.PolicyFor(t.Context(), "alice"); !p.MFA {
		t.Error("codes are not needed after the enrolment")
	}
	if _, err := h.e.BeginEnrollment(t.Context(), "alice"); !errors.Is(err, &engine.Error{Code: protocol.CodeMFANotEnrolling}) {
		t.Fatalf("begin after the enrolment: %v", err)
	}
	// The key is nowhere but in BeginEnrollment's answer.
	h.evMu.Lock()
	evs, _ := json.Marshal(h.evs)
	h.evMu.Unlock()
	if strings.Contains(string(evs), enginetest.EnrollSecret) {
		t.Error("the key is in an event")
	}
	filepath.Walk(h.dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), enginetest.EnrollSecret) {
				t.Errorf("the key is in %s", p)
			}
		}
		return nil
	})
}

// Once the period is over, the engine says so rather than asking the
// directory.
func TestEnrolmentOver(t *testing.T) {
	h := newHarness(t)
	env, _ := protocol.New(protocol.TypeMFAEnrollment, h.d.ResetMFA("alice", time.Now().Add(-time.Minute)))
	env.Seq = 1
	if err := h.e.HandlePush(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	if a := h.account(); a.State == engine.StateMFAEnroll {
		t.Fatal("a period that has ended still asks for the set-up")
	}
	if _, err := h.e.BeginEnrollment(t.Context(), "alice"); !errors.Is(err, &engine.Error{Code: protocol.CodeMFAEnrollmentExpired}) {
		t.Fatalf("begin: %v", err)
	}
}
