package engine_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/agent/enginetest"
	"github.com/lockstep-dev/lockstep/agent/journal"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

type harness struct {
	t    *testing.T
	dir  string
	mac  *enginetest.Mac
	d    *enginetest.Directory
	j    *journal.Journal
	now  func() time.Time
	e    *engine.Engine
	evs  []engine.Event
	evMu sync.Mutex
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, dir: t.TempDir(), mac: enginetest.NewMac(), d: enginetest.NewDirectory()}
	h.start()
	if err := h.e.Bind(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) start() {
	j, err := journal.Open(filepath.Join(h.dir, "ops"))
	if err != nil {
		h.t.Fatal(err)
	}
	m := h.mac
	h.j = j
	h.e, err = engine.New(engine.Options{StateDir: h.dir, Journal: j, Directory: h.d, Now: h.now,
		Mac:  m.Platform(),
		Emit: func(ev engine.Event) { h.evMu.Lock(); h.evs = append(h.evs, ev); h.evMu.Unlock() }})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) account() engine.Account {
	a := h.e.Accounts([]string{"alice"})
	if len(a) != 1 {
		h.t.Fatalf("accounts = %v", a)
	}
	return a[0]
}

func (h *harness) places(wantLocal, wantKeychain string) {
	h.t.Helper()
	h.mac.Lock()
	defer h.mac.Unlock()
	if h.mac.Local["alice"] != wantLocal || h.mac.Keychain["alice"] != wantKeychain {
		h.t.Fatalf("local=%q keychain=%q, want %q %q", h.mac.Local["alice"], h.mac.Keychain["alice"], wantLocal, wantKeychain)
	}
}

const (
	oldPW  = "Old-Passw0rd!"
	newPW  = "New-Passw0rd-2026"
	tempPW = "Temp-Passw0rd-99"
)

func change(cur, nw, totp string) engine.ChangeRequest {
	return engine.ChangeRequest{Current: protocol.Secret(cur), New: protocol.Secret(nw), TOTP: totp}
}

func TestChangeMovesEveryPlace(t *testing.T) {
	h := newHarness(t)
	var steps []string
	op, err := h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), func(s engine.Step) {
		if s.State != engine.StepRunning {
			steps = append(steps, s.Name+"="+s.State)
		}
	})
	if err != nil || op.State != engine.OpDone {
		t.Fatalf("Change = %+v, %v", op, err)
	}
	h.places(newPW, newPW)
	if h.d.Passwords["alice"] != newPW || h.mac.Preboots != 1 || len(h.d.Acks) != 1 || h.d.Acks[0] != 2 {
		t.Fatalf("directory %q, preboot %d, acks %v", h.d.Passwords["alice"], h.mac.Preboots, h.d.Acks)
	}
	if h.mac.FailedLogins != 0 {
		t.Fatalf("a change with the right passwords made %d failed logins", h.mac.FailedLogins)
	}
	want := "validate=done,verify_current=done,directory=done,local_account=done,keychain=done,filevault=done,preboot=done,acknowledge=done"
	if strings.Join(steps, ",") != want {
		t.Fatalf("steps = %v", steps)
	}
	a := h.account()
	if a.State != engine.StateInSync || a.LastOperation == nil || a.LastOperation.ID != op.ID {
		t.Fatalf("account after change = %+v", a)
	}
	for _, p := range a.Places {
		if p.State != engine.PlaceOK {
			t.Fatalf("place %s = %s", p.Name, p.State)
		}
	}
}

func TestChangeRefusalsChangeNothing(t *testing.T) {
	tests := []struct {
		name     string
		req      engine.ChangeRequest
		setup    func(h *harness)
		code     string
		field    string
		failedAt string
	}{
		{"wrong current", change("nope", newPW, "123456"), nil, codes.WrongLocal, engine.FieldCurrent, engine.StepVerify},
		{"policy", change(oldPW, "short", "123456"), nil, protocol.CodePolicyViolation, engine.FieldNew, engine.StepValidate},
		{"same password", change(oldPW, oldPW, "123456"), nil, protocol.CodePolicyViolation, engine.FieldNew, engine.StepValidate},
		{"mfa missing", change(oldPW, newPW, ""), nil, protocol.CodeMFARequired, engine.FieldTOTP, engine.StepValidate},
		{"mfa wrong", change(oldPW, newPW, "000000"), nil, protocol.CodeMFAInvalid, engine.FieldTOTP, engine.StepDirectory},
		{"offline", change(oldPW, newPW, "123456"), func(h *harness) { h.d.Online = false }, codes.Offline, "", engine.StepValidate},
		{"keychain behind", change(oldPW, newPW, "123456"), func(h *harness) { h.mac.Keychain["alice"] = "older" }, codes.Keychain, "", engine.StepVerify},
		{"directory refuses current", change(oldPW, newPW, "123456"), func(h *harness) { h.d.Passwords["alice"] = "elsewhere" }, protocol.CodeWrongPassword, engine.FieldCurrent, engine.StepDirectory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.setup != nil {
				tt.setup(h)
			}
			kc := h.mac.Keychain["alice"]
			op, err := h.e.Change(t.Context(), "alice", tt.req, nil)
			if err != nil {
				t.Fatalf("Change did not start: %v", err)
			}
			if op.State != engine.OpFailed || op.Error == nil || op.Error.Code != tt.code || op.Error.Field != tt.field {
				t.Fatalf("op = %s %+v", op.State, op.Error)
			}
			// The step that refused is marked failed, and none after it ran.
			failed := -1
			for i, s := range op.Steps {
				if s.Name == tt.failedAt {
					failed = i
				}
			}
			if failed < 0 {
				t.Fatalf("no %s step in %+v", tt.failedAt, op.Steps)
			}
			if s := op.Steps[failed]; s.State != engine.StepFailed {
				t.Fatalf("step %s = %s, want failed", s.Name, s.State)
			}
			for _, s := range op.Steps[failed+1:] {
				if s.State != engine.StepSkipped {
					t.Fatalf("step %s after the refusal = %s, want skipped", s.Name, s.State)
				}
			}
			h.places(oldPW, kc)
			if h.d.States["alice"].PasswordVersion != 1 {
				t.Fatal("directory changed")
			}
			if a := h.account(); a.State == engine.StateSyncNeeded {
				t.Fatalf("a refusal left the account %s", a.State)
			}
		})
	}
}

func TestFailureAfterDirectoryNeedsSyncAndSyncResolves(t *testing.T) {
	for _, failAt := range []string{"change", "rekey", "preboot"} {
		t.Run(failAt, func(t *testing.T) {
			h := newHarness(t)
			h.mac.Fail[failAt] = errors.New("injected " + failAt + " failure")
			op, _ := h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), nil)
			if op.State != engine.OpSyncNeeded || op.Error == nil || op.Error.Code != codes.Platform {
				t.Fatalf("op = %s %+v", op.State, op.Error)
			}
			if a := h.account(); a.State != engine.StateSyncNeeded || a.Reason.Code != codes.ReasonStopped || a.Reason.Params["error"] != codes.Platform {
				t.Fatalf("state = %s %+v", a.State, a.Reason)
			}
			// A change is refused until the Mac is synced.
			if _, err := h.e.Change(t.Context(), "alice", change(oldPW, "Another-Passw0rd", "123456"), nil); !errors.Is(err, &engine.Error{Code: codes.SyncFirst}) {
				t.Fatalf("change while sync needed = %v", err)
			}
			op, err := h.e.Sync(t.Context(), "alice", engine.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret(newPW)}, nil)
			if err != nil || op.State != engine.OpDone {
				t.Fatalf("sync = %+v, %v", op, err)
			}
			h.places(newPW, newPW)
			if a := h.account(); a.State != engine.StateInSync {
				t.Fatalf("after sync: %s (%s)", a.State, a.Reason)
			}
		})
	}
}

func TestAdminResetTemporaryThenChange(t *testing.T) {
	h := newHarness(t)
	env, _ := protocol.New(protocol.TypePasswordReset, h.d.Reset("alice", tempPW, true))
	env.Seq = 1
	if err := h.e.HandlePush(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	a := h.account()
	if a.State != engine.StateSyncNeeded || a.Reason.Code != codes.ReasonResetTemporary {
		t.Fatalf("after reset push: %s %+v", a.State, a.Reason)
	}
	var notices int
	for _, ev := range h.evs {
		if ev.Type == engine.EventNotice && ev.Notice.Kind == engine.NoticeReset {
			notices++
		}
	}
	if notices != 1 {
		t.Fatalf("reset notices = %d", notices)
	}
	// Wrong previous password: nothing changes.
	op, _ := h.e.Sync(t.Context(), "alice", engine.SyncRequest{Previous: protocol.Secret("wrong"), New: protocol.Secret(tempPW)}, nil)
	if op.State != engine.OpFailed || op.Error.Field != engine.FieldPrevious {
		t.Fatalf("wrong previous: %s %+v", op.State, op.Error)
	}
	h.places(oldPW, oldPW)
	op, err := h.e.Sync(t.Context(), "alice", engine.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret(tempPW)}, nil)
	if err != nil || op.State != engine.OpDone || op.NextAction != engine.OpChange {
		t.Fatalf("sync = %+v, %v", op, err)
	}
	h.places(tempPW, tempPW)
	if a := h.account(); a.State != engine.StateTemporary {
		t.Fatalf("after temp sync: %s", a.State)
	}
	if h.mac.FailedLogins != 1 {
		t.Fatalf("failed logins = %d, want 1 (the wrong previous password only)", h.mac.FailedLogins)
	}
	op, err = h.e.Change(t.Context(), "alice", change(tempPW, newPW, "123456"), nil)
	if err != nil || op.State != engine.OpDone {
		t.Fatalf("change from temporary = %+v, %v", op, err)
	}
	h.places(newPW, newPW)
	if a := h.account(); a.State != engine.StateInSync {
		t.Fatalf("final state %s", a.State)
	}
}

func TestForgotPreviousMovesKeychainAside(t *testing.T) {
	h := newHarness(t)
	h.d.Reset("alice", newPW, false)
	op, err := h.e.Sync(t.Context(), "alice", engine.SyncRequest{New: protocol.Secret(newPW), ForgotPrevious: true}, nil)
	if err != nil || op.State != engine.OpDone {
		t.Fatalf("sync = %+v, %v", op, err)
	}
	h.places(newPW, newPW)
	if len(h.mac.Moved) != 1 || !strings.HasSuffix(h.mac.Moved[0], "="+oldPW) {
		t.Fatalf("moved = %v", h.mac.Moved)
	}
	if len(op.Notes) == 0 || op.Notes[0].Code != codes.NoteKeychainKept || !strings.Contains(op.Notes[0].Params["path"], "login_renamed_1") {
		t.Fatalf("the user is not told where the old keychain is: %v", op.Notes)
	}
	if h.mac.FailedLogins != 0 {
		t.Fatalf("a forgotten-password sync made %d failed logins", h.mac.FailedLogins)
	}
	h.mac.ServiceUsable = false
	if _, err := h.e.Sync(t.Context(), "alice", engine.SyncRequest{New: protocol.Secret(newPW), ForgotPrevious: true}, nil); !errors.Is(err, &engine.Error{Code: codes.NoServiceAccount}) {
		t.Fatalf("forgot without service account = %v", err)
	}
}

// A forgotten-password sync stopped after the new keychain was made but
// before it was listed in the user's search list lists it when run again,
// and moves nothing else aside.
func TestForgotRunAgainListsTheNewKeychain(t *testing.T) {
	h := newHarness(t)
	h.mac.Unlisted = map[string]bool{"alice": true}
	h.mac.Fail["login_search_list"] = errors.New("list-keychains: boom")
	h.d.Reset("alice", newPW, false)
	op, err := h.e.Sync(t.Context(), "alice", engine.SyncRequest{New: protocol.Secret(newPW), ForgotPrevious: true}, nil)
	if err == nil && op.State == engine.OpDone {
		t.Fatalf("sync with the listing failing = %+v", op)
	}
	if !h.mac.Unlisted["alice"] {
		t.Fatal("the failing listing listed the keychain")
	}
	op, err = h.e.Sync(t.Context(), "alice", engine.SyncRequest{New: protocol.Secret(newPW), ForgotPrevious: true}, nil)
	if err != nil || op.State != engine.OpDone {
		t.Fatalf("sync run again = %+v, %v", op, err)
	}
	h.places(newPW, newPW)
	if h.mac.Unlisted["alice"] {
		t.Error("the new login keychain is still not in alice's search list")
	}
	if len(h.mac.Moved) != 1 || !strings.HasSuffix(h.mac.Moved[0], "="+oldPW) {
		t.Errorf("moved = %v, want only the old keychain", h.mac.Moved)
	}
	if h.mac.FailedLogins != 0 {
		t.Errorf("%d failed logins", h.mac.FailedLogins)
	}
}

func TestRecoveryAfterCrash(t *testing.T) {
	tests := []struct {
		name      string
		steps     map[string]string
		kind      string
		wantState string
		syncNeed  bool
	}{
		{"before anything", map[string]string{engine.StepValidate: engine.StepDone, engine.StepVerify: engine.StepRunning}, engine.OpChange, engine.OpFailed, false},
		{"during local step", map[string]string{engine.StepDirectory: engine.StepDone, engine.StepLocal: engine.StepRunning}, engine.OpChange, engine.OpSyncNeeded, true},
		{"during directory step", map[string]string{engine.StepDirectory: engine.StepRunning}, engine.OpChange, engine.OpSyncNeeded, true},
		{"sync verifying", map[string]string{engine.StepDirectory: engine.StepDone, engine.StepVerify: engine.StepRunning}, engine.OpSync, engine.OpFailed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ent := &journal.Entry{Format: journal.Format, ID: "crashed", Kind: tt.kind, LocalUser: "alice", State: engine.OpRunning, StartedAt: time.Now()}
			for _, name := range engine.ChangeSteps {
				st := tt.steps[name]
				if st == "" {
					st = engine.StepPending
				}
				ent.Steps = append(ent.Steps, journal.Step{Name: name, State: st})
			}
			if err := h.j.Write(ent); err != nil {
				t.Fatal(err)
			}
			h.start() // lockstepd restarts
			got, err := h.j.Read("crashed")
			if err != nil || got.State != tt.wantState || got.Error.Code != codes.Interrupted {
				t.Fatalf("recovered = %+v, %v", got, err)
			}
			if a := h.account(); (a.State == engine.StateSyncNeeded) != tt.syncNeed {
				t.Fatalf("state = %s", a.State)
			}
		})
	}
}

func TestUnconfirmedDirectoryChangeSettledByDirectory(t *testing.T) {
	h := newHarness(t)
	h.d.FailNext = errors.New("connection lost")
	op, _ := h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), nil)
	if op.State != engine.OpSyncNeeded {
		t.Fatalf("op = %s", op.State)
	}
	// The directory never applied it: the next refresh clears "sync needed".
	if err := h.e.Bind(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	if a := h.account(); a.State != engine.StateInSync {
		t.Fatalf("after refresh: %s (%s)", a.State, a.Reason)
	}
	h.places(oldPW, oldPW)
}

func TestThrottleProtectsDirectoryAccount(t *testing.T) {
	h := newHarness(t)
	h.d.Reset("alice", newPW, false)
	for i := 0; i < 3; i++ {
		op, _ := h.e.Sync(t.Context(), "alice", engine.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret("Wrong-Guess-1")}, nil)
		if op.Error.Code != protocol.CodeWrongPassword {
			t.Fatalf("attempt %d: %+v", i, op.Error)
		}
	}
	op, _ := h.e.Sync(t.Context(), "alice", engine.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret(newPW)}, nil)
	if op.Error == nil || op.Error.Code != codes.Throttled || op.Error.RetryAfter <= 0 {
		t.Fatalf("fourth attempt = %+v", op.Error)
	}
	if h.d.Verifies != 3 {
		t.Fatalf("directory saw %d attempts, want 3", h.d.Verifies)
	}
}

func TestOneOperationPerAccount(t *testing.T) {
	h := newHarness(t)
	block := make(chan struct{})
	started := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), func(s engine.Step) {
			if s.Name == engine.StepValidate && s.State == engine.StepRunning {
				close(started)
				<-block
			}
		})
	}()
	<-started
	_, err := h.e.Sync(t.Context(), "alice", engine.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret(newPW)}, nil)
	close(block)
	<-finished
	if !errors.Is(err, &engine.Error{Code: codes.Busy}) {
		t.Fatalf("second operation = %v", err)
	}
}

func TestThrottleFollowsDirectoryLockout(t *testing.T) {
	h := newHarness(t)
	h.e.SetLockoutThreshold(3) // the directory locks at 3: the agent stops at 1
	h.d.Reset("alice", newPW, false)
	op, _ := h.e.Sync(t.Context(), "alice", engine.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret("Wrong-Guess-1")}, nil)
	if op.Error.Code != protocol.CodeWrongPassword {
		t.Fatalf("first attempt: %+v", op.Error)
	}
	op, _ = h.e.Sync(t.Context(), "alice", engine.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret(newPW)}, nil)
	if op.Error == nil || op.Error.Code != codes.Throttled {
		t.Fatalf("second attempt = %+v", op.Error)
	}
	if h.d.Verifies != 1 {
		t.Fatalf("directory saw %d attempts, want 1", h.d.Verifies)
	}
}

func TestExpiryPushWarnsOncePerDay(t *testing.T) {
	h := newHarness(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.Local)
	h.now = func() time.Time { return now }
	h.start()
	pol := h.d.Policy()
	pol.ExpiryWarningDays = 14
	h.e.SetPolicy(pol)
	push := func(seq uint64) {
		env, _ := protocol.New(protocol.TypeExpiryApproaching, protocol.ExpiryApproaching{User: "alice", ExpiresAt: now.Add(5*24*time.Hour + time.Hour), DaysLeft: 5})
		env.Seq = seq
		if err := h.e.HandlePush(t.Context(), env); err != nil {
			t.Fatal(err)
		}
	}
	push(1)
	push(2) // the scanner's next run, or a re-delivery: no second notice
	a := h.account()
	if a.State != engine.StateExpiring || a.DaysLeft == nil || *a.DaysLeft != 5 || a.Reason.Code != codes.ReasonExpires || a.Reason.Params["days"] != "5" {
		t.Fatalf("account = %s %v %+v", a.State, a.DaysLeft, a.Reason)
	}
	var notices []string
	for _, ev := range h.evs {
		if ev.Type == engine.EventNotice && ev.Notice.Kind == engine.NoticeExpiry {
			notices = append(notices, ev.Notice.ID+" days="+ev.Notice.Params["days"])
		}
	}
	if len(notices) != 1 {
		t.Fatalf("expiry notices = %q", notices)
	}
}

func TestDaysUntilCountsCalendarDays(t *testing.T) {
	at := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.Local) }
	tests := []struct {
		now, exp time.Time
		want     int
	}{
		{at(23, 12), at(23, 18), 0},
		{at(23, 23), at(24, 1), 1},
		{at(23, 1), at(24, 23), 1},
		{at(23, 12), at(28, 13), 5},
		{at(23, 12), at(21, 12), -2},
	}
	for _, tt := range tests {
		if got := engine.DaysUntil(tt.now, tt.exp); got != tt.want {
			t.Errorf("daysUntil(%v, %v) = %d, want %d", tt.now, tt.exp, got, tt.want)
		}
	}
}

// After a crash in the local step, the next sync learns from the journal and
// the account's passwordLastSetTime which password the account takes, and
// tries only that one: no failed login either way.
func TestSyncAfterInterruptedLocalStepMakesNoFailedLogin(t *testing.T) {
	for _, landed := range []bool{true, false} {
		t.Run(fmt.Sprintf("change landed %v", landed), func(t *testing.T) {
			h := newHarness(t)
			st := h.d.Reset("alice", newPW, false)
			ent := &journal.Entry{Format: journal.Format, ID: "crashed", Kind: engine.OpSync, LocalUser: "alice",
				State: engine.OpRunning, StartedAt: time.Now(), DirectoryUser: "alice", TargetVersion: st.PasswordVersion, LocalBefore: 1}
			for _, name := range engine.SyncSteps {
				state := engine.StepPending
				switch name {
				case engine.StepDirectory, engine.StepVerify:
					state = engine.StepDone
				case engine.StepLocal:
					state = engine.StepRunning
				}
				ent.Steps = append(ent.Steps, journal.Step{Name: name, State: state})
			}
			if err := h.j.Write(ent); err != nil {
				t.Fatal(err)
			}
			if err := h.e.SetLastOpID("alice", "crashed"); err != nil {
				t.Fatal(err)
			}
			if landed {
				h.mac.Local["alice"], h.mac.LastSet["alice"] = newPW, 2
			}
			h.start() // lockstepd restarts and recovers the journal
			if a := h.account(); a.State != engine.StateSyncNeeded {
				t.Fatalf("after the crash: %s", a.State)
			}
			op, err := h.e.Sync(t.Context(), "alice", engine.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret(newPW)}, nil)
			if err != nil || op.State != engine.OpDone {
				t.Fatalf("sync = %+v, %v", op, err)
			}
			h.places(newPW, newPW)
			if h.mac.FailedLogins != 0 {
				t.Fatalf("%d failed logins", h.mac.FailedLogins)
			}
			if s := op.Steps[2]; landed != (s.State == engine.StepSkipped) {
				t.Fatalf("local step %+v", s)
			}
		})
	}
}

// The Mac's own password rules are checked before the directory changes: a
// password the Mac would refuse never reaches the directory.
func TestChangeRefusedByMacPolicyBeforeTheDirectory(t *testing.T) {
	h := newHarness(t)
	h.mac.Rules = []protocol.LocalRule{{ID: "ProfilePayload:X:minLength", Pattern: ".{20,}", Descriptions: map[string]string{"en": "Contain at least 20 characters."}}}
	op, err := h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), nil)
	if err != nil || op.State != engine.OpFailed || op.Error.Code != codes.MacPolicy || op.Error.Params["source"] != "new" ||
		len(op.Error.Violations) != 1 || op.Error.Violations[0].Code != protocol.RuleMacPolicy ||
		op.Error.Violations[0].Message != "Contain at least 20 characters." {
		t.Fatalf("change = %+v, %v", op.Error, err)
	}
	if h.d.Passwords["alice"] != oldPW {
		t.Fatal("the directory took a password the Mac refuses")
	}
	h.places(oldPW, oldPW)
	long := newPW + "-long-enough"
	if op, err := h.e.Change(t.Context(), "alice", change(oldPW, long, "123456"), nil); err != nil || op.State != engine.OpDone {
		t.Fatalf("change meeting both policies = %+v, %v", op, err)
	}
}

// Accounts Lockstep must not manage are refused, with the reason, before
// anything changes.
func TestUnmanagedAccountsRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*engine.LocalAccount)
		kind string
		node string
	}{
		{"mobile", func(a *engine.LocalAccount) {
			a.Mobile, a.OriginalNodeName = true, "/Active Directory/CORP/corp.example.com"
		}, "mobile", "/Active Directory/CORP/corp.example.com"},
		{"disabled", func(a *engine.LocalAccount) { a.Disabled = true }, "disabled", ""},
		{"network home", func(a *engine.LocalAccount) { a.NetworkHome = true }, "network_home", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.mac.EditAccount = tt.edit
			_, err := h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), nil)
			var le *engine.Error
			if !errors.As(err, &le) || le.Code != codes.Unmanaged || le.Params["kind"] != tt.kind || le.Params["node"] != tt.node || le.Params["user"] != "alice" {
				t.Fatalf("change = %v", err)
			}
			if _, err := h.e.Sync(t.Context(), "alice", engine.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret(newPW)}, nil); !errors.As(err, &le) || le.Code != codes.Unmanaged {
				t.Fatalf("sync = %v", err)
			}
			h.places(oldPW, oldPW)
			if h.d.Passwords["alice"] != oldPW {
				t.Fatal("the directory changed")
			}
		})
	}
}
