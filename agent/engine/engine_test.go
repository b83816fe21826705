package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/agent/journal"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
)

// fakeMac is an in-memory Mac: accounts, keychains, FileVault. The real
// platform code is tested against the simulator; this fake lets the
// engine's decisions be tested quickly and exhaustively.
type fakeMac struct {
	mu       sync.Mutex
	local    map[string]string
	keychain map[string]string // "" = no keychain
	moved    []string
	token    map[string]bool
	fvOn     bool
	fvUsers  map[string]bool
	preboot  int
	usable   bool
	fail     map[string]error // by operation name, fires once
	// failedLogins counts Verify and Change calls with a wrong password:
	// each is a failed login on a real Mac.
	failedLogins int
	rules        []protocol.LocalRule
	lastSet      map[string]float64  // passwordLastSetTime
	acct         func(*LocalAccount) // edits what Lookup returns
}

func newFakeMac() *fakeMac {
	return &fakeMac{
		local: map[string]string{"alice": "Old-Passw0rd!"}, keychain: map[string]string{"alice": "Old-Passw0rd!"},
		token: map[string]bool{"alice": true}, fvOn: true, fvUsers: map[string]bool{"alice": true},
		usable: true, fail: map[string]error{}, lastSet: map[string]float64{"alice": 1},
	}
}

func (m *fakeMac) failing(op string) error {
	if err, ok := m.fail[op]; ok {
		delete(m.fail, op)
		return err
	}
	return nil
}

func (m *fakeMac) Lookup(_ context.Context, name string) (LocalAccount, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.local[name]; !ok {
		return LocalAccount{}, ErrNoSuchUser
	}
	a := LocalAccount{Name: name, UID: 501, GID: 20, Home: "/Users/" + name, SecureToken: m.token[name], PasswordLastSet: m.lastSet[name]}
	if m.acct != nil {
		m.acct(&a)
	}
	return a, nil
}
func (m *fakeMac) LookupUID(context.Context, int) (string, error) { return "alice", nil }
func (m *fakeMac) Verify(_ context.Context, name string, pw []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failing("verify"); err != nil {
		return err
	}
	if m.local[name] != string(pw) {
		m.failedLogins++
		return ErrWrongPassword
	}
	return nil
}
func (m *fakeMac) Change(_ context.Context, a LocalAccount, old, new []byte) (Verified, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failing("change"); err != nil {
		return Verified{}, err
	}
	if m.local[a.Name] != string(old) {
		m.failedLogins++
		return Verified{}, ErrWrongPassword
	}
	m.local[a.Name] = string(new)
	m.lastSet[a.Name]++
	return Verified{SecureToken: m.token[a.Name]}, nil
}
func (m *fakeMac) PasswordRules(context.Context, string) ([]protocol.LocalRule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rules, nil
}
func (m *fakeMac) Exists(a LocalAccount) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keychain[a.Name] != "", nil
}
func (m *fakeMac) Opens(_ context.Context, a LocalAccount, pw []byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keychain[a.Name] == string(pw), nil
}
func (m *fakeMac) Rekey(_ context.Context, a LocalAccount, old, new []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failing("rekey"); err != nil {
		return err
	}
	if m.keychain[a.Name] != string(old) {
		return ErrWrongPassword
	}
	m.keychain[a.Name] = string(new)
	return nil
}
func (m *fakeMac) MoveAside(_ context.Context, a LocalAccount) (Moved, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := fmt.Sprintf("/Users/%s/Library/Keychains/login_renamed_%d.keychain-db", a.Name, len(m.moved)+1)
	m.moved = append(m.moved, p+"="+m.keychain[a.Name])
	m.keychain[a.Name] = ""
	return Moved{Login: p}, nil
}
func (m *fakeMac) Create(_ context.Context, a LocalAccount, pw []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keychain[a.Name] = string(pw)
	return nil
}
func (m *fakeMac) Active(context.Context) (bool, error) { return m.fvOn, nil }
func (m *fakeMac) IsUser(_ context.Context, n string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fvUsers[n], nil
}
func (m *fakeMac) SecureToken(_ context.Context, n string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.token[n], nil
}
func (m *fakeMac) RefreshPreboot(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failing("preboot"); err != nil {
		return err
	}
	m.preboot++
	return nil
}
func (m *fakeMac) Status(context.Context) localapi.ServiceAccountStatus {
	return localapi.ServiceAccountStatus{Present: m.usable, SecureToken: m.usable, Usable: m.usable}
}
func (m *fakeMac) Setup(context.Context, string, []byte) error { return nil }
func (m *fakeMac) Rotate(context.Context) error                { return nil }
func (m *fakeMac) Remove(context.Context) error                { return nil }
func (m *fakeMac) Reset(_ context.Context, a LocalAccount, pw []byte) (Verified, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.local[a.Name] = string(pw) // authorised by a token holder: the token is kept
	m.lastSet[a.Name]++
	return Verified{SecureToken: m.token[a.Name]}, nil
}

// fakeDir is an in-memory directory.
type fakeDir struct {
	mu        sync.Mutex
	connected bool
	pw        map[string]string
	state     map[string]protocol.AccountState
	results   map[string]protocol.AccountState // idempotency
	failNext  error
	acks      []int64
	verifies  int
	// proof makes get_account answer not_bound for a user until the
	// user's password was given (verify or change), as the directory does.
	proof bool
	bound map[string]bool
}

func newFakeDir() *fakeDir {
	return &fakeDir{connected: true, pw: map[string]string{"alice": "Old-Passw0rd!"},
		state:   map[string]protocol.AccountState{"alice": {User: "alice", PasswordVersion: 1, MFA: true}},
		results: map[string]protocol.AccountState{}, bound: map[string]bool{}}
}

func (d *fakeDir) Connected() bool         { d.mu.Lock(); defer d.mu.Unlock(); return d.connected }
func (d *fakeDir) Policy() protocol.Policy { return protocol.DefaultPolicy() }
func (d *fakeDir) VerifyPassword(_ context.Context, u string, pw protocol.Secret) (protocol.AccountState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.verifies++
	if d.pw[u] != string(pw) {
		return protocol.AccountState{}, protocol.Errorf(protocol.CodeWrongPassword, "wrong")
	}
	d.bound[u] = true
	return d.state[u], nil
}
func (d *fakeDir) ChangePassword(_ context.Context, key string, r protocol.ChangePasswordRequest) (protocol.AccountState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.failNext; err != nil {
		d.failNext = nil
		return protocol.AccountState{}, err
	}
	if st, ok := d.results[key]; ok {
		return st, nil
	}
	if d.pw[r.User] != string(r.Current) {
		return protocol.AccountState{}, protocol.Errorf(protocol.CodeWrongPassword, "wrong")
	}
	if d.state[r.User].MFA && r.TOTP != "123456" {
		return protocol.AccountState{}, protocol.Errorf(protocol.CodeMFAInvalid, "bad code")
	}
	d.pw[r.User] = string(r.New)
	d.bound[r.User] = true
	st := d.state[r.User]
	st.PasswordVersion++
	st.MustChange = false
	d.state[r.User] = st
	d.results[key] = st
	return st, nil
}
func (d *fakeDir) GetAccount(_ context.Context, u, _ string) (protocol.AccountState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.connected {
		return protocol.AccountState{}, errors.New("offline")
	}
	if d.proof && !d.bound[u] {
		return protocol.AccountState{}, protocol.Errorf(protocol.CodeNotBound, "not bound")
	}
	return d.state[u], nil
}
func (d *fakeDir) AckSync(_ context.Context, _, _ string, v int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.acks = append(d.acks, v)
	return nil
}

// reset is what an administrator does in the directory.
func (d *fakeDir) reset(u, pw string, temporary bool) protocol.PasswordReset {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pw[u] = pw
	st := d.state[u]
	st.PasswordVersion++
	st.MustChange = temporary
	d.state[u] = st
	return protocol.PasswordReset{User: u, Temporary: temporary, PasswordVersion: st.PasswordVersion, At: time.Now()}
}

type harness struct {
	t    *testing.T
	dir  string
	mac  *fakeMac
	d    *fakeDir
	e    *Engine
	evs  []localapi.Event
	evMu sync.Mutex
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, dir: t.TempDir(), mac: newFakeMac(), d: newFakeDir()}
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
	h.e, err = New(Options{StateDir: h.dir, Journal: j, Directory: h.d,
		Mac:  Mac{Accounts: m, Keychain: m, FileVault: m, Service: m},
		Emit: func(ev localapi.Event) { h.evMu.Lock(); h.evs = append(h.evs, ev); h.evMu.Unlock() }})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) account() localapi.Account {
	a := h.e.Accounts([]string{"alice"})
	if len(a) != 1 {
		h.t.Fatalf("accounts = %v", a)
	}
	return a[0]
}

func (h *harness) places(wantLocal, wantKeychain string) {
	h.t.Helper()
	h.mac.mu.Lock()
	defer h.mac.mu.Unlock()
	if h.mac.local["alice"] != wantLocal || h.mac.keychain["alice"] != wantKeychain {
		h.t.Fatalf("local=%q keychain=%q, want %q %q", h.mac.local["alice"], h.mac.keychain["alice"], wantLocal, wantKeychain)
	}
}

const (
	oldPW  = "Old-Passw0rd!"
	newPW  = "New-Passw0rd-2026"
	tempPW = "Temp-Passw0rd-99"
)

func change(cur, nw, totp string) localapi.ChangeRequest {
	return localapi.ChangeRequest{Current: protocol.Secret(cur), New: protocol.Secret(nw), TOTP: totp}
}

func TestChangeMovesEveryPlace(t *testing.T) {
	h := newHarness(t)
	var steps []string
	op, err := h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), func(s localapi.Step) {
		if s.State != localapi.StepRunning {
			steps = append(steps, s.Name+"="+s.State)
		}
	})
	if err != nil || op.State != localapi.OpDone {
		t.Fatalf("Change = %+v, %v", op, err)
	}
	h.places(newPW, newPW)
	if h.d.pw["alice"] != newPW || h.mac.preboot != 1 || len(h.d.acks) != 1 || h.d.acks[0] != 2 {
		t.Fatalf("directory %q, preboot %d, acks %v", h.d.pw["alice"], h.mac.preboot, h.d.acks)
	}
	if h.mac.failedLogins != 0 {
		t.Fatalf("a change with the right passwords made %d failed logins", h.mac.failedLogins)
	}
	want := "validate=done,verify_current=done,directory=done,local_account=done,keychain=done,filevault=done,preboot=done,acknowledge=done"
	if strings.Join(steps, ",") != want {
		t.Fatalf("steps = %v", steps)
	}
	a := h.account()
	if a.State != localapi.StateInSync || a.LastOperation == nil || a.LastOperation.ID != op.ID {
		t.Fatalf("account after change = %+v", a)
	}
	for _, p := range a.Places {
		if p.State != localapi.PlaceOK {
			t.Fatalf("place %s = %s", p.Name, p.State)
		}
	}
}

func TestChangeRefusalsChangeNothing(t *testing.T) {
	tests := []struct {
		name     string
		req      localapi.ChangeRequest
		setup    func(h *harness)
		code     string
		field    string
		failedAt string
	}{
		{"wrong current", change("nope", newPW, "123456"), nil, localapi.CodeWrongLocal, localapi.FieldCurrent, localapi.StepVerify},
		{"policy", change(oldPW, "short", "123456"), nil, protocol.CodePolicyViolation, localapi.FieldNew, localapi.StepValidate},
		{"same password", change(oldPW, oldPW, "123456"), nil, protocol.CodePolicyViolation, localapi.FieldNew, localapi.StepValidate},
		{"mfa missing", change(oldPW, newPW, ""), nil, protocol.CodeMFARequired, localapi.FieldTOTP, localapi.StepValidate},
		{"mfa wrong", change(oldPW, newPW, "000000"), nil, protocol.CodeMFAInvalid, localapi.FieldTOTP, localapi.StepDirectory},
		{"offline", change(oldPW, newPW, "123456"), func(h *harness) { h.d.connected = false }, localapi.CodeOffline, "", localapi.StepValidate},
		{"keychain behind", change(oldPW, newPW, "123456"), func(h *harness) { h.mac.keychain["alice"] = "older" }, localapi.CodeKeychain, "", localapi.StepVerify},
		{"directory refuses current", change(oldPW, newPW, "123456"), func(h *harness) { h.d.pw["alice"] = "elsewhere" }, protocol.CodeWrongPassword, localapi.FieldCurrent, localapi.StepDirectory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.setup != nil {
				tt.setup(h)
			}
			kc := h.mac.keychain["alice"]
			op, err := h.e.Change(t.Context(), "alice", tt.req, nil)
			if err != nil {
				t.Fatalf("Change did not start: %v", err)
			}
			if op.State != localapi.OpFailed || op.Error == nil || op.Error.Code != tt.code || op.Error.Field != tt.field {
				t.Fatalf("op = %s %+v", op.State, op.Error)
			}
			for _, s := range op.Steps {
				if s.Name == tt.failedAt && s.State != localapi.StepFailed {
					t.Fatalf("step %s = %s", s.Name, s.State)
				}
			}
			h.places(oldPW, kc)
			if h.d.state["alice"].PasswordVersion != 1 {
				t.Fatal("directory changed")
			}
			if a := h.account(); a.State == localapi.StateSyncNeeded {
				t.Fatalf("a refusal left the account %s", a.State)
			}
		})
	}
}

func TestFailureAfterDirectoryNeedsSyncAndSyncResolves(t *testing.T) {
	for _, failAt := range []string{"change", "rekey", "preboot"} {
		t.Run(failAt, func(t *testing.T) {
			h := newHarness(t)
			h.mac.fail[failAt] = errors.New("injected " + failAt + " failure")
			op, _ := h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), nil)
			if op.State != localapi.OpSyncNeeded || !strings.Contains(op.Error.Hint, "lockstep sync") {
				t.Fatalf("op = %s %+v", op.State, op.Error)
			}
			if a := h.account(); a.State != localapi.StateSyncNeeded {
				t.Fatalf("state = %s", a.State)
			}
			// A change is refused until the Mac is synced.
			if _, err := h.e.Change(t.Context(), "alice", change(oldPW, "Another-Passw0rd", "123456"), nil); !errors.Is(err, &localapi.Error{Code: localapi.CodeSyncFirst}) {
				t.Fatalf("change while sync needed = %v", err)
			}
			op, err := h.e.Sync(t.Context(), "alice", localapi.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret(newPW)}, nil)
			if err != nil || op.State != localapi.OpDone {
				t.Fatalf("sync = %+v, %v", op, err)
			}
			h.places(newPW, newPW)
			if a := h.account(); a.State != localapi.StateInSync {
				t.Fatalf("after sync: %s (%s)", a.State, a.Reason)
			}
		})
	}
}

func TestAdminResetTemporaryThenChange(t *testing.T) {
	h := newHarness(t)
	env, _ := protocol.New(protocol.TypePasswordReset, h.d.reset("alice", tempPW, true))
	env.Seq = 1
	if err := h.e.HandlePush(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	a := h.account()
	if a.State != localapi.StateSyncNeeded || !strings.Contains(a.Reason, "temporary") {
		t.Fatalf("after reset push: %s %q", a.State, a.Reason)
	}
	var notices int
	for _, ev := range h.evs {
		if ev.Type == localapi.EventNotice && ev.Notice.Kind == localapi.NoticeReset {
			notices++
		}
	}
	if notices != 1 {
		t.Fatalf("reset notices = %d", notices)
	}
	// Wrong previous password: nothing changes.
	op, _ := h.e.Sync(t.Context(), "alice", localapi.SyncRequest{Previous: protocol.Secret("wrong"), New: protocol.Secret(tempPW)}, nil)
	if op.State != localapi.OpFailed || op.Error.Field != localapi.FieldPrevious {
		t.Fatalf("wrong previous: %s %+v", op.State, op.Error)
	}
	h.places(oldPW, oldPW)
	op, err := h.e.Sync(t.Context(), "alice", localapi.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret(tempPW)}, nil)
	if err != nil || op.State != localapi.OpDone || op.NextAction != localapi.OpChange {
		t.Fatalf("sync = %+v, %v", op, err)
	}
	h.places(tempPW, tempPW)
	if a := h.account(); a.State != localapi.StateTemporary {
		t.Fatalf("after temp sync: %s", a.State)
	}
	if h.mac.failedLogins != 1 {
		t.Fatalf("failed logins = %d, want 1 (the wrong previous password only)", h.mac.failedLogins)
	}
	op, err = h.e.Change(t.Context(), "alice", change(tempPW, newPW, "123456"), nil)
	if err != nil || op.State != localapi.OpDone {
		t.Fatalf("change from temporary = %+v, %v", op, err)
	}
	h.places(newPW, newPW)
	if a := h.account(); a.State != localapi.StateInSync {
		t.Fatalf("final state %s", a.State)
	}
}

func TestForgotPreviousMovesKeychainAside(t *testing.T) {
	h := newHarness(t)
	h.d.reset("alice", newPW, false)
	op, err := h.e.Sync(t.Context(), "alice", localapi.SyncRequest{New: protocol.Secret(newPW), ForgotPrevious: true}, nil)
	if err != nil || op.State != localapi.OpDone {
		t.Fatalf("sync = %+v, %v", op, err)
	}
	h.places(newPW, newPW)
	if len(h.mac.moved) != 1 || !strings.HasSuffix(h.mac.moved[0], "="+oldPW) {
		t.Fatalf("moved = %v", h.mac.moved)
	}
	if len(op.Notes) == 0 || !strings.Contains(op.Notes[0], "login_renamed_1") {
		t.Fatalf("the user is not told where the old keychain is: %v", op.Notes)
	}
	if h.mac.failedLogins != 0 {
		t.Fatalf("a forgotten-password sync made %d failed logins", h.mac.failedLogins)
	}
	h.mac.usable = false
	if _, err := h.e.Sync(t.Context(), "alice", localapi.SyncRequest{New: protocol.Secret(newPW), ForgotPrevious: true}, nil); !errors.Is(err, &localapi.Error{Code: localapi.CodeNoServiceAcct}) {
		t.Fatalf("forgot without service account = %v", err)
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
		{"before anything", map[string]string{localapi.StepValidate: localapi.StepDone, localapi.StepVerify: localapi.StepRunning}, localapi.OpChange, localapi.OpFailed, false},
		{"during local step", map[string]string{localapi.StepDirectory: localapi.StepDone, localapi.StepLocal: localapi.StepRunning}, localapi.OpChange, localapi.OpSyncNeeded, true},
		{"during directory step", map[string]string{localapi.StepDirectory: localapi.StepRunning}, localapi.OpChange, localapi.OpSyncNeeded, true},
		{"sync verifying", map[string]string{localapi.StepDirectory: localapi.StepDone, localapi.StepVerify: localapi.StepRunning}, localapi.OpSync, localapi.OpFailed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ent := &journal.Entry{Operation: localapi.Operation{ID: "crashed", Kind: tt.kind, LocalUser: "alice", State: localapi.OpRunning, StartedAt: time.Now()}}
			for _, name := range changeSteps {
				st := tt.steps[name]
				if st == "" {
					st = localapi.StepPending
				}
				ent.Steps = append(ent.Steps, localapi.Step{Name: name, State: st})
			}
			if err := h.e.opt.Journal.Write(ent); err != nil {
				t.Fatal(err)
			}
			h.start() // lockstepd restarts
			got, err := h.e.opt.Journal.Read("crashed")
			if err != nil || got.State != tt.wantState || got.Error.Code != localapi.CodeInterrupted {
				t.Fatalf("recovered = %+v, %v", got, err)
			}
			if a := h.account(); (a.State == localapi.StateSyncNeeded) != tt.syncNeed {
				t.Fatalf("state = %s", a.State)
			}
		})
	}
}

func TestUnconfirmedDirectoryChangeSettledByDirectory(t *testing.T) {
	h := newHarness(t)
	h.d.failNext = errors.New("connection lost")
	op, _ := h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), nil)
	if op.State != localapi.OpSyncNeeded {
		t.Fatalf("op = %s", op.State)
	}
	// The directory never applied it: the next refresh clears "sync needed".
	if err := h.e.Bind(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	if a := h.account(); a.State != localapi.StateInSync {
		t.Fatalf("after refresh: %s (%s)", a.State, a.Reason)
	}
	h.places(oldPW, oldPW)
}

func TestThrottleProtectsDirectoryAccount(t *testing.T) {
	h := newHarness(t)
	h.d.reset("alice", newPW, false)
	for i := 0; i < 3; i++ {
		op, _ := h.e.Sync(t.Context(), "alice", localapi.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret("Wrong-Guess-1")}, nil)
		if op.Error.Code != protocol.CodeWrongPassword {
			t.Fatalf("attempt %d: %+v", i, op.Error)
		}
	}
	op, _ := h.e.Sync(t.Context(), "alice", localapi.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret(newPW)}, nil)
	if op.Error == nil || op.Error.Code != localapi.CodeThrottled || op.Error.RetryAfter <= 0 {
		t.Fatalf("fourth attempt = %+v", op.Error)
	}
	if h.d.verifies != 3 {
		t.Fatalf("directory saw %d attempts, want 3", h.d.verifies)
	}
}

func TestOneOperationPerAccount(t *testing.T) {
	h := newHarness(t)
	block := make(chan struct{})
	started := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), func(s localapi.Step) {
			if s.Name == localapi.StepValidate && s.State == localapi.StepRunning {
				close(started)
				<-block
			}
		})
	}()
	<-started
	_, err := h.e.Sync(t.Context(), "alice", localapi.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret(newPW)}, nil)
	close(block)
	<-finished
	if !errors.Is(err, &localapi.Error{Code: localapi.CodeBusy}) {
		t.Fatalf("second operation = %v", err)
	}
}

func TestThrottleFollowsDirectoryLockout(t *testing.T) {
	h := newHarness(t)
	h.e.SetLockoutThreshold(3) // the directory locks at 3: the agent stops at 1
	h.d.reset("alice", newPW, false)
	op, _ := h.e.Sync(t.Context(), "alice", localapi.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret("Wrong-Guess-1")}, nil)
	if op.Error.Code != protocol.CodeWrongPassword {
		t.Fatalf("first attempt: %+v", op.Error)
	}
	op, _ = h.e.Sync(t.Context(), "alice", localapi.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret(newPW)}, nil)
	if op.Error == nil || op.Error.Code != localapi.CodeThrottled {
		t.Fatalf("second attempt = %+v", op.Error)
	}
	if h.d.verifies != 1 {
		t.Fatalf("directory saw %d attempts, want 1", h.d.verifies)
	}
}

func TestExpiryPushWarnsOncePerDay(t *testing.T) {
	h := newHarness(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.Local)
	h.e.opt.Now = func() time.Time { return now }
	h.e.opt.ExpiryWarningDays = 14
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
	if a.State != localapi.StateExpiring || a.DaysLeft == nil || *a.DaysLeft != 5 || !strings.Contains(a.Reason, "5 days") {
		t.Fatalf("account = %s %v %q", a.State, a.DaysLeft, a.Reason)
	}
	var notices []string
	for _, ev := range h.evs {
		if ev.Type == localapi.EventNotice && ev.Notice.Kind == localapi.NoticeExpiry {
			notices = append(notices, ev.Notice.Body)
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
		if got := daysUntil(tt.now, tt.exp); got != tt.want {
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
			st := h.d.reset("alice", newPW, false)
			ent := &journal.Entry{Operation: localapi.Operation{ID: "crashed", Kind: localapi.OpSync, LocalUser: "alice",
				State: localapi.OpRunning, StartedAt: time.Now()}, DirectoryUser: "alice", TargetVersion: st.PasswordVersion, LocalBefore: 1}
			for _, name := range syncSteps {
				state := localapi.StepPending
				switch name {
				case localapi.StepDirectory, localapi.StepVerify:
					state = localapi.StepDone
				case localapi.StepLocal:
					state = localapi.StepRunning
				}
				ent.Steps = append(ent.Steps, localapi.Step{Name: name, State: state})
			}
			if err := h.e.opt.Journal.Write(ent); err != nil {
				t.Fatal(err)
			}
			_ = h.e.update("alice", func(r *record) { r.LastOpID = "crashed" })
			if landed {
				h.mac.local["alice"], h.mac.lastSet["alice"] = newPW, 2
			}
			h.start() // lockstepd restarts and recovers the journal
			if a := h.account(); a.State != localapi.StateSyncNeeded {
				t.Fatalf("after the crash: %s", a.State)
			}
			op, err := h.e.Sync(t.Context(), "alice", localapi.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret(newPW)}, nil)
			if err != nil || op.State != localapi.OpDone {
				t.Fatalf("sync = %+v, %v", op, err)
			}
			h.places(newPW, newPW)
			if h.mac.failedLogins != 0 {
				t.Fatalf("%d failed logins", h.mac.failedLogins)
			}
			if s := op.Steps[2]; landed != (s.State == localapi.StepSkipped) {
				t.Fatalf("local step %+v", s)
			}
		})
	}
}

// The Mac's own password rules are checked before the directory changes: a
// password the Mac would refuse never reaches the directory.
func TestChangeRefusedByMacPolicyBeforeTheDirectory(t *testing.T) {
	h := newHarness(t)
	h.mac.rules = []protocol.LocalRule{{ID: "ProfilePayload:X:minLength", Pattern: ".{20,}", Descriptions: map[string]string{"en": "Contain at least 20 characters."}}}
	op, err := h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), nil)
	if err != nil || op.State != localapi.OpFailed || op.Error.Code != protocol.CodePolicyViolation ||
		len(op.Error.Violations) != 1 || op.Error.Violations[0].Code != protocol.RuleMacPolicy ||
		op.Error.Violations[0].Message != "Contain at least 20 characters." {
		t.Fatalf("change = %+v, %v", op.Error, err)
	}
	if h.d.pw["alice"] != oldPW {
		t.Fatal("the directory took a password the Mac refuses")
	}
	h.places(oldPW, oldPW)
	long := newPW + "-long-enough"
	if op, err := h.e.Change(t.Context(), "alice", change(oldPW, long, "123456"), nil); err != nil || op.State != localapi.OpDone {
		t.Fatalf("change meeting both policies = %+v, %v", op, err)
	}
}

// Accounts Lockstep must not manage are refused, with the reason, before
// anything changes.
func TestUnmanagedAccountsRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*LocalAccount)
		want string
	}{
		{"mobile", func(a *LocalAccount) { a.Mobile, a.OriginalNodeName = true, "/Active Directory/CORP/corp.example.com" }, "mobile account from /Active Directory/CORP"},
		{"disabled", func(a *LocalAccount) { a.Disabled = true }, "is disabled"},
		{"network home", func(a *LocalAccount) { a.NetworkHome = true }, "network server"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.mac.acct = tt.edit
			_, err := h.e.Change(t.Context(), "alice", change(oldPW, newPW, "123456"), nil)
			var le *localapi.Error
			if !errors.As(err, &le) || le.Code != localapi.CodeUnmanaged || !strings.Contains(le.Message, tt.want) || le.Hint == "" {
				t.Fatalf("change = %v", err)
			}
			if _, err := h.e.Sync(t.Context(), "alice", localapi.SyncRequest{Previous: protocol.Secret(oldPW), New: protocol.Secret(newPW)}, nil); !errors.As(err, &le) || le.Code != localapi.CodeUnmanaged {
				t.Fatalf("sync = %v", err)
			}
			h.places(oldPW, oldPW)
			if h.d.pw["alice"] != oldPW {
				t.Fatal("the directory changed")
			}
		})
	}
}
