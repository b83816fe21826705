// Package fakeapi is a stand-in for lockstepd's local API, for testing the
// menu-bar app without a daemon, a directory or a Mac.
//
// A Fake keeps one account's passwords and state in memory and answers like
// lockstepd does: it checks the current password, the MFA code (with replay
// rejection), the directory's policy and history, reports busy, offline and
// locked accounts, runs a change or sync as a journal of steps, and streams
// status changes and notices to watchers. Its methods have the same shape as
// localapi.Client's, so windows can be driven against it directly; Serve
// puts it behind a real unix socket speaking the local API's JSON and NDJSON
// streams, so the real client can be tested against it too.
//
// It is test support: it holds passwords as plain bytes and has no notion
// of peer credentials.
package fakeapi

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Options describe the account a Fake starts with.
type Options struct {
	LocalUser     string // default "alice"
	DirectoryUser string // default "alice@example.com"
	DisplayName   string // default "Alice Example"
	// Password is the password every place holds at the start.
	Password string
	// MFA turns on TOTP; ValidCodes are the codes the directory accepts
	// (each once).
	MFA        bool
	ValidCodes []string
	FileVault  bool
	// ServiceAccount makes the forgotten-password path available.
	ServiceAccount bool
	Policy         protocol.Policy
	// MacRules are the Mac's own password rules the policy reports.
	MacRules []protocol.LocalRule
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Version is the daemon version reported in Status.
	Version string
	// NotLinked starts the account not linked to this Mac by the
	// directory; Link with the password links it.
	NotLinked bool
}

// Fake is an in-memory lockstepd. It is safe for concurrent use.
type Fake struct {
	mu       sync.Mutex
	o        Options
	now      func() time.Time
	status   localapi.Status
	dir      []byte   // the directory's password
	mac      []byte   // what the Mac's places hold
	history  [][]byte // previous directory passwords, newest last
	used     map[string]bool
	running  bool
	down     bool
	opSeq    int
	watchers map[chan localapi.Event]struct{}
	stepHook func(localapi.Step)
	calls    []string
}

// New returns a Fake for an account in sync, connected to the directory.
func New(o Options) *Fake {
	if o.LocalUser == "" {
		o.LocalUser = "alice"
	}
	if o.DirectoryUser == "" {
		o.DirectoryUser = "alice@example.com"
	}
	if o.DisplayName == "" {
		o.DisplayName = "Alice Example"
	}
	if o.Policy == (protocol.Policy{}) {
		o.Policy = protocol.DefaultPolicy()
	}
	if o.Version == "" {
		o.Version = "1.0.0"
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	t := now()
	changed := t.Add(-10 * 24 * time.Hour)
	f := &Fake{
		o:        o,
		now:      now,
		dir:      []byte(o.Password),
		mac:      []byte(o.Password),
		used:     map[string]bool{},
		watchers: map[chan localapi.Event]struct{}{},
	}
	acct := localapi.Account{
		LocalUser:         o.LocalUser,
		DirectoryUser:     o.DirectoryUser,
		DisplayName:       o.DisplayName,
		State:             localapi.StateInSync,
		MFA:               o.MFA,
		PasswordChangedAt: &changed,
		FileVault:         o.FileVault,
	}
	f.status = localapi.Status{
		Version: o.Version,
		Directory: localapi.Connection{
			State:    localapi.ConnConnected,
			URL:      "wss://directory.example.com",
			Since:    t.Add(-time.Hour),
			DeviceID: "dev-7f3a",
		},
		Accounts: []localapi.Account{acct},
		ServiceAccount: localapi.ServiceAccountStatus{
			Present: o.ServiceAccount, SecureToken: o.ServiceAccount, Usable: o.ServiceAccount,
		},
	}
	if !o.ServiceAccount {
		f.status.ServiceAccount.Detail = "No service account is set up on this Mac."
	}
	f.setExpiryLocked(changed)
	f.setPlacesLocked(changed, localapi.PlaceOK)
	if o.NotLinked {
		a := &f.status.Accounts[0]
		a.State = localapi.StateNotLinked
		a.Reason = "This Mac is not linked to your directory account yet. Link it with your directory password."
		a.DisplayName, a.PasswordChangedAt, a.ExpiresAt, a.DaysLeft = "", nil, nil, nil
		f.setPlacesLocked(changed, localapi.PlaceUnknown)
	}
	return f
}

// Link links the account with the directory password.
func (f *Fake) Link(_ context.Context, req localapi.LinkRequest) (*localapi.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "link")
	if f.down {
		return nil, f.unavailable()
	}
	if f.status.Directory.State != localapi.ConnConnected {
		return nil, &localapi.Error{Code: localapi.CodeOffline, Message: "The directory is not reachable.",
			Hint: "Check the network connection and try again."}
	}
	if !bytes.Equal(req.Password, f.dir) {
		return nil, &localapi.Error{Code: protocol.CodeWrongPassword, Field: localapi.FieldPassword,
			Message: "That is not your directory password."}
	}
	a := &f.status.Accounts[0]
	t := f.now().Add(-10 * 24 * time.Hour)
	a.State, a.Reason, a.DisplayName, a.PasswordChangedAt = localapi.StateInSync, "", f.o.DisplayName, &t
	f.setExpiryLocked(t)
	f.setPlacesLocked(t, localapi.PlaceOK)
	f.publishStatusLocked()
	st := cloneStatus(f.status)
	return &st.Accounts[0], nil
}

// Calls lists the operations the fake was asked for ("change", "sync",
// "sync_forgot_previous", "link"), in order.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// SetStepHook installs fn to be called, on the operation's goroutine, after
// each step is reported. A test blocks in it to look at an operation in
// progress.
func (f *Fake) SetStepHook(fn func(localapi.Step)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stepHook = fn
}

// SetDown makes every call fail as if lockstepd were not running, and ends
// every watch stream.
func (f *Fake) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	if down {
		f.dropWatchersLocked()
	}
}

// DropWatchers ends every watch stream, as a lockstepd restart does.
func (f *Fake) DropWatchers() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropWatchersLocked()
}

func (f *Fake) dropWatchersLocked() {
	for ch := range f.watchers {
		close(ch)
		delete(f.watchers, ch)
	}
}

// Update changes the status with fn and tells watchers.
func (f *Fake) Update(fn func(*localapi.Status)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.status)
	f.publishStatusLocked()
}

// Notify sends a notice to watchers.
func (f *Fake) Notify(n localapi.Notice) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n.LocalUser == "" {
		n.LocalUser = f.o.LocalUser
	}
	if n.At.IsZero() {
		n.At = f.now()
	}
	f.publishLocked(localapi.Event{Type: localapi.EventNotice, Notice: &n})
}

// AdminReset sets a new directory password as an administrator would: the
// Mac falls behind, and watchers get the new status and a reset notice.
func (f *Fake) AdminReset(password string, temporary bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.history = append(f.history, f.dir)
	f.dir = []byte(password)
	t := f.now()
	a := &f.status.Accounts[0]
	a.State = localapi.StateSyncNeeded
	a.Reason = "Your password was reset by an administrator."
	a.Temporary = temporary
	a.PasswordChangedAt = &t
	f.setExpiryLocked(t)
	f.setPlacesLocked(t, localapi.PlaceBehind)
	f.publishStatusLocked()
	f.publishLocked(localapi.Event{Type: localapi.EventNotice, Notice: &localapi.Notice{
		Kind: localapi.NoticeReset, LocalUser: f.o.LocalUser, At: t,
		Title: "Your password was reset",
		Body:  "An administrator reset your directory password. Sync it to this Mac.",
	}})
}

// ExpireIn moves the password's expiry to days from now; within the
// policy's warning window the account turns "expiring".
func (f *Fake) ExpireIn(days int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := &f.status.Accounts[0]
	exp := f.now().Add(time.Duration(days)*24*time.Hour + time.Hour)
	a.ExpiresAt = &exp
	a.DaysLeft = &days
	if a.State == localapi.StateInSync || a.State == localapi.StateExpiring {
		a.State = localapi.StateInSync
		a.Reason = ""
		if days <= f.o.Policy.ExpiryWarningDays {
			a.State = localapi.StateExpiring
			a.Reason = "Your password expires soon."
		}
	}
	f.publishStatusLocked()
}

// Lock locks the account in the directory until until.
func (f *Fake) Lock(until time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := &f.status.Accounts[0]
	a.State = localapi.StateLocked
	a.Reason = "Too many wrong passwords were tried."
	a.LockedUntil = &until
	f.publishStatusLocked()
	f.publishLocked(localapi.Event{Type: localapi.EventNotice, Notice: &localapi.Notice{
		Kind: localapi.NoticeLocked, LocalUser: f.o.LocalUser, At: f.now(),
		Title: "Your account is locked",
		Body:  "Too many wrong passwords were tried.",
	}})
}

// SetConnection sets the directory connection state.
func (f *Fake) SetConnection(state string, since time.Time, lastErr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status.Directory.State = state
	f.status.Directory.Since = since
	f.status.Directory.LastError = lastErr
	f.publishStatusLocked()
}

// DirectoryPassword returns the password the directory now holds.
func (f *Fake) DirectoryPassword() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.dir)
}

// MacPassword returns the password the Mac's places now hold.
func (f *Fake) MacPassword() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.mac)
}

func (f *Fake) setExpiryLocked(changed time.Time) {
	a := &f.status.Accounts[0]
	if f.o.Policy.MaxAgeDays == 0 {
		a.ExpiresAt, a.DaysLeft = nil, nil
		return
	}
	exp := changed.Add(time.Duration(f.o.Policy.MaxAgeDays) * 24 * time.Hour)
	days := int(exp.Sub(f.now()).Hours() / 24)
	a.ExpiresAt, a.DaysLeft = &exp, &days
}

func (f *Fake) setPlacesLocked(at time.Time, local string) {
	a := &f.status.Accounts[0]
	d := at
	a.Places = []localapi.Place{
		{Name: localapi.PlaceDirectory, State: localapi.PlaceOK, ChangedAt: &d},
		{Name: localapi.PlaceLocal, State: local, ChangedAt: f.placeTime(local, at, 1)},
		{Name: localapi.PlaceKeychain, State: local, ChangedAt: f.placeTime(local, at, 2)},
	}
	fv := localapi.Place{Name: localapi.PlaceFileVault, State: local, ChangedAt: f.placeTime(local, at, 3)}
	if !f.o.FileVault {
		fv = localapi.Place{Name: localapi.PlaceFileVault, State: localapi.PlaceNotApplicable, Detail: "FileVault is off"}
	}
	a.Places = append(a.Places, fv)
}

// placeTime is when a place last changed: with the directory when it is in
// step, ten days earlier when it is behind.
func (f *Fake) placeTime(state string, at time.Time, n int) *time.Time {
	t := at.Add(time.Duration(n) * time.Second)
	if state == localapi.PlaceBehind {
		t = at.Add(-10 * 24 * time.Hour)
	}
	return &t
}

func (f *Fake) publishStatusLocked() {
	st := cloneStatus(f.status)
	f.publishLocked(localapi.Event{Type: localapi.EventStatus, Status: &st})
}

func (f *Fake) publishLocked(ev localapi.Event) {
	for ch := range f.watchers {
		select {
		case ch <- ev:
		default: // a watcher that falls behind is dropped; it reconnects
			close(ch)
			delete(f.watchers, ch)
		}
	}
}

func (f *Fake) unavailable() error {
	return fmt.Errorf("%w (fake lockstepd is stopped)", localapi.ErrUnavailable)
}

// Status returns the account's status.
func (f *Fake) Status(context.Context) (*localapi.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, f.unavailable()
	}
	st := cloneStatus(f.status)
	return &st, nil
}

// Policy returns the directory's policy for the account.
func (f *Fake) Policy(context.Context, string) (*localapi.PolicyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, f.unavailable()
	}
	if f.status.Directory.State != localapi.ConnConnected {
		return nil, &localapi.Error{Code: localapi.CodeOffline, Message: "The directory cannot be reached.",
			Hint: "Check your network connection."}
	}
	return &localapi.PolicyResponse{
		DirectoryUser: f.o.DirectoryUser,
		Policy:        f.o.Policy,
		Rules:         f.o.Policy.Rules(),
		MFA:           f.o.MFA,
		MacRules:      f.o.MacRules,
	}, nil
}

// Watch streams events to fn, starting with the status, until ctx ends,
// the fake drops its watchers or fn fails.
func (f *Fake) Watch(ctx context.Context, fn func(localapi.Event) error) error {
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		return f.unavailable()
	}
	ch := make(chan localapi.Event, 64)
	f.watchers[ch] = struct{}{}
	st := cloneStatus(f.status)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		if _, ok := f.watchers[ch]; ok {
			delete(f.watchers, ch)
		}
		f.mu.Unlock()
	}()
	if err := fn(localapi.Event{Type: localapi.EventStatus, Status: &st}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-ch:
			if !ok {
				return fmt.Errorf("reading lockstepd stream: unexpected EOF")
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
	}
}

// Change changes the password, reporting each step to onStep.
func (f *Fake) Change(ctx context.Context, req localapi.ChangeRequest, onStep func(localapi.Step)) (*localapi.Operation, error) {
	r, err := f.begin(localapi.OpChange)
	if err != nil {
		return nil, err
	}
	return f.finish(r.change(req, onStep))
}

// Sync brings the Mac in line with the directory.
func (f *Fake) Sync(ctx context.Context, req localapi.SyncRequest, onStep func(localapi.Step)) (*localapi.Operation, error) {
	kind := localapi.OpSync
	if req.ForgotPrevious {
		kind = localapi.OpSyncForgot
	}
	r, err := f.begin(kind)
	if err != nil {
		return nil, err
	}
	return f.finish(r.sync(req, onStep))
}

func (f *Fake) finish(op *localapi.Operation) (*localapi.Operation, error) {
	if op.Error != nil {
		return op, op.Error
	}
	return op, nil
}

// run is one operation in progress.
type run struct {
	f  *Fake
	op *localapi.Operation
}

// begin refuses an operation that cannot start (lockstepd answers those
// with an HTTP error, before any step) and marks the account busy.
func (f *Fake) begin(kind string) (*run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, f.unavailable()
	}
	a := &f.status.Accounts[0]
	switch {
	case f.running || a.State == localapi.StateBusy:
		return nil, &localapi.Error{Code: localapi.CodeBusy,
			Message: "Another password operation is running for this account.",
			Hint:    "Wait for it to finish, then try again."}
	case kind != localapi.OpChange && a.State != localapi.StateSyncNeeded:
		return nil, &localapi.Error{Code: localapi.CodeNotNeeded, Message: "This Mac is already in sync with the directory."}
	case kind == localapi.OpSyncForgot && !f.status.ServiceAccount.Usable:
		return nil, &localapi.Error{Code: localapi.CodeNoServiceAcct,
			Message: "This Mac cannot reset your account without your previous password.",
			Hint:    "Contact your IT department."}
	}
	f.running = true
	f.calls = append(f.calls, kind)
	f.opSeq++
	op := &localapi.Operation{
		ID:        "op-" + strconv.Itoa(f.opSeq),
		Kind:      kind,
		LocalUser: f.o.LocalUser,
		State:     localapi.OpRunning,
		StartedAt: f.now(),
	}
	return &run{f: f, op: op}, nil
}

// step records a step and reports it.
func (r *run) step(onStep func(localapi.Step), name, state, detail string) {
	r.f.mu.Lock()
	st := localapi.Step{Name: name, State: state, Detail: detail, At: r.f.now()}
	if i := slices.IndexFunc(r.op.Steps, func(s localapi.Step) bool { return s.Name == name }); i >= 0 {
		r.op.Steps[i] = st
	} else {
		r.op.Steps = append(r.op.Steps, st)
	}
	hook := r.f.stepHook
	opCopy := cloneOp(*r.op)
	r.f.publishLocked(localapi.Event{Type: localapi.EventStep, Step: &st, Operation: &opCopy})
	r.f.mu.Unlock()
	if onStep != nil {
		onStep(st)
	}
	if hook != nil {
		hook(st)
	}
}

// do runs one step: running, then done (nil) or failed.
func (r *run) do(onStep func(localapi.Step), name string, fn func() *localapi.Error) *localapi.Error {
	r.step(onStep, name, localapi.StepRunning, "")
	var e *localapi.Error
	if fn != nil {
		e = fn()
	}
	if e != nil {
		r.step(onStep, name, localapi.StepFailed, e.Message)
		return e
	}
	r.step(onStep, name, localapi.StepDone, "")
	return nil
}

// fail ends the operation with e. Nothing was changed when only the
// checks ran, so the account goes back to where it was.
func (r *run) fail(e *localapi.Error) *localapi.Operation {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	t := r.f.now()
	r.op.State = localapi.OpFailed
	r.op.Error = e
	r.op.FinishedAt = &t
	r.f.running = false
	r.f.status.Accounts[0].LastOperation = ptr(cloneOp(*r.op))
	r.f.publishStatusLocked()
	op := cloneOp(*r.op)
	r.f.publishLocked(localapi.Event{Type: localapi.EventResult, Operation: &op})
	return &op
}

func (r *run) skipFileVault(onStep func(localapi.Step)) {
	if r.f.o.FileVault {
		r.do(onStep, localapi.StepFileVault, nil)
		r.do(onStep, localapi.StepPreboot, nil)
		return
	}
	r.step(onStep, localapi.StepFileVault, localapi.StepSkipped, "FileVault is off on this Mac.")
	r.step(onStep, localapi.StepPreboot, localapi.StepSkipped, "FileVault is off on this Mac.")
}

func (r *run) connected() *localapi.Error {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	if r.f.status.Directory.State != localapi.ConnConnected {
		return &localapi.Error{Code: localapi.CodeOffline, Message: "The directory cannot be reached, so nothing was changed.",
			Hint: "Check your network connection and try again."}
	}
	a := r.f.status.Accounts[0]
	if a.State == localapi.StateLocked {
		return &localapi.Error{Code: protocol.CodeLocked, Message: "Your directory account is locked.",
			Hint: "Wait until it unlocks or contact your IT department.", Until: a.LockedUntil}
	}
	return nil
}

func (r *run) change(req localapi.ChangeRequest, onStep func(localapi.Step)) *localapi.Operation {
	f := r.f
	if e := r.do(onStep, localapi.StepValidate, func() *localapi.Error {
		if req.Current.Empty() || req.New.Empty() {
			return &localapi.Error{Code: localapi.CodeBadRequest, Message: "Both the current and the new password are needed."}
		}
		if v := f.o.Policy.Check(f.o.DirectoryUser, req.New); len(v) > 0 {
			return &localapi.Error{Code: protocol.CodePolicyViolation, Field: localapi.FieldNew,
				Message: "The new password does not meet the directory's rules.", Violations: v}
		}
		return nil
	}); e != nil {
		return r.fail(e)
	}
	if e := r.do(onStep, localapi.StepVerify, func() *localapi.Error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !bytes.Equal(req.Current, f.mac) {
			return &localapi.Error{Code: localapi.CodeWrongLocal, Field: localapi.FieldCurrent,
				Message: "That is not your current password."}
		}
		return nil
	}); e != nil {
		return r.fail(e)
	}
	if e := r.do(onStep, localapi.StepDirectory, func() *localapi.Error {
		if e := r.connected(); e != nil {
			return e
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.o.MFA {
			switch {
			case req.TOTP == "":
				return &localapi.Error{Code: protocol.CodeMFARequired, Field: localapi.FieldTOTP,
					Message: "Enter the code from your authenticator app."}
			case f.used[req.TOTP]:
				return &localapi.Error{Code: protocol.CodeMFAReplayed, Field: localapi.FieldTOTP,
					Message: "That code was already used."}
			case !slices.Contains(f.o.ValidCodes, req.TOTP):
				return &localapi.Error{Code: protocol.CodeMFAInvalid, Field: localapi.FieldTOTP,
					Message: "That code is not valid."}
			}
			f.used[req.TOTP] = true
		}
		reused := bytes.Equal(req.New, f.dir)
		for _, h := range lastN(f.history, f.o.Policy.HistoryCount-1) {
			reused = reused || bytes.Equal(req.New, h)
		}
		if reused && f.o.Policy.HistoryCount > 0 {
			return &localapi.Error{Code: protocol.CodePolicyViolation, Field: localapi.FieldNew,
				Message:    "The directory refused the new password.",
				Violations: []protocol.Violation{f.o.Policy.HistoryViolation()}}
		}
		f.history = append(f.history, f.dir)
		f.dir = slices.Clone(req.New)
		return nil
	}); e != nil {
		return r.fail(e)
	}
	return r.applyLocal(req.New, onStep, nil)
}

func (r *run) sync(req localapi.SyncRequest, onStep func(localapi.Step)) *localapi.Operation {
	f := r.f
	if e := r.do(onStep, localapi.StepDirectory, func() *localapi.Error {
		if e := r.connected(); e != nil {
			return e
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if !bytes.Equal(req.New, f.dir) {
			return &localapi.Error{Code: protocol.CodeWrongPassword, Field: localapi.FieldNew,
				Message: "That is not the password the directory holds for you."}
		}
		return nil
	}); e != nil {
		return r.fail(e)
	}
	var notes []string
	if req.ForgotPrevious {
		moved := "~/Library/Keychains/login-" + f.now().UTC().Format("20060102-150405") + ".keychain-db"
		notes = append(notes,
			"Your old login keychain was moved to "+moved+". It was not deleted.",
			"A new, empty login keychain was made. Passwords saved in the old one stay there; you can open it with your previous password if you remember it.")
	} else if e := r.do(onStep, localapi.StepVerify, func() *localapi.Error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !bytes.Equal(req.Previous, f.mac) {
			return &localapi.Error{Code: localapi.CodeWrongLocal, Field: localapi.FieldPrevious,
				Message: "That is not your previous Mac password."}
		}
		return nil
	}); e != nil {
		return r.fail(e)
	}
	return r.applyLocal(req.New, onStep, notes)
}

// applyLocal runs the Mac's steps and ends the operation done.
func (r *run) applyLocal(pw []byte, onStep func(localapi.Step), notes []string) *localapi.Operation {
	f := r.f
	r.do(onStep, localapi.StepLocal, nil)
	r.do(onStep, localapi.StepKeychain, nil)
	r.skipFileVault(onStep)
	r.do(onStep, localapi.StepAck, nil)

	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.now()
	f.mac = slices.Clone(pw)
	a := &f.status.Accounts[0]
	r.op.State = localapi.OpDone
	r.op.FinishedAt = &t
	r.op.Notes = notes
	if r.op.Kind != localapi.OpChange && a.Temporary {
		r.op.NextAction = localapi.OpChange
		a.State = localapi.StateTemporary
		a.Reason = "Your administrator set a temporary password. Choose a new one."
	} else {
		a.State = localapi.StateInSync
		a.Reason = ""
		a.Temporary = false
		if r.op.Kind == localapi.OpChange {
			a.PasswordChangedAt = &t
			f.setExpiryLocked(t)
		}
	}
	f.setPlacesLocked(t, localapi.PlaceOK)
	f.running = false
	a.LastOperation = ptr(cloneOp(*r.op))
	f.publishStatusLocked()
	op := cloneOp(*r.op)
	f.publishLocked(localapi.Event{Type: localapi.EventResult, Operation: &op})
	title := "Password synced"
	if r.op.Kind == localapi.OpChange {
		title = "Password changed"
	}
	f.publishLocked(localapi.Event{Type: localapi.EventNotice, Notice: &localapi.Notice{
		Kind: localapi.NoticeSynced, LocalUser: f.o.LocalUser, At: t, Title: title,
		Body: "Your directory, Mac account and login keychain now use the same password.",
	}})
	return &op
}

func lastN(h [][]byte, n int) [][]byte {
	if n <= 0 {
		return nil
	}
	if len(h) > n {
		return h[len(h)-n:]
	}
	return h
}

func ptr[T any](v T) *T { return &v }

func cloneOp(op localapi.Operation) localapi.Operation {
	op.Steps = slices.Clone(op.Steps)
	op.Notes = slices.Clone(op.Notes)
	if op.Error != nil {
		e := *op.Error
		e.Violations = slices.Clone(e.Violations)
		op.Error = &e
	}
	return op
}

// cloneStatus deep-copies a status so that callers cannot race the fake.
func cloneStatus(s localapi.Status) localapi.Status {
	s.Accounts = slices.Clone(s.Accounts)
	for i := range s.Accounts {
		a := &s.Accounts[i]
		a.Places = slices.Clone(a.Places)
		if a.LastOperation != nil {
			a.LastOperation = ptr(cloneOp(*a.LastOperation))
		}
	}
	return s
}
