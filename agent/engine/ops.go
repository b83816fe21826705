package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/lockstep-dev/lockstep/agent/journal"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// How long an operation waits for a directory session before it reports the
// directory offline, and how long a change keeps re-sending its directory
// request across reconnects before it gives up on a confirmation.
const (
	offlineWait = 10 * time.Second
	confirmWait = 60 * time.Second
)

// skipReason says why a step did nothing; decisions read it, never the
// text.
type skipReason int

const (
	// reasonDone: the place already holds the new password.
	reasonDone skipReason = iota + 1
	// reasonNotApplicable: the place does not exist on this Mac or for
	// this account (no keychain yet, FileVault off, not a FileVault user).
	reasonNotApplicable
	// reasonDeferred: the step will happen later (the acknowledgement).
	reasonDeferred
	// reasonForgotten: the previous password is forgotten, so it is not
	// verified.
	reasonForgotten
)

// skip ends a step as skipped, with its reason and what to tell the user.
type skip struct {
	reason skipReason
	text   Text
}

func (s skip) Error() string { return "skipped: " + s.text.Code }

// run is one operation in progress.
type run struct {
	e        *Engine
	ent      *journal.Entry
	progress func(Step)
	// mutated is set once a place may have changed; a failure after that
	// ends in "sync needed" rather than "failed, nothing changed".
	mutated bool
	// skips are the typed reasons of the steps that were skipped.
	skips map[string]skipReason
	// temporary is set when the password the operation applies is one the
	// directory wants replaced; finish then asks for a change next.
	temporary bool
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// prepare looks the account up and makes sure the engine knows its
// directory state, before any operation starts.
func (e *Engine) prepare(ctx context.Context, local string) (LocalAccount, *record, error) {
	acct, err := e.opt.Mac.Accounts.Lookup(ctx, local)
	if err != nil {
		if errors.Is(err, ErrNoSuchUser) {
			return acct, nil, &Error{Code: codes.NoLocalUser, Params: map[string]string{"user": local}}
		}
		return acct, nil, &Error{Code: codes.Platform, Detail: err.Error()}
	}
	if err := untouchable(acct); err != nil {
		return acct, nil, err
	}
	e.mu.Lock()
	known := e.recordLocked(local).Dir != nil
	e.mu.Unlock()
	if !known {
		if !e.opt.Directory.Connected() {
			return acct, nil, offlineError()
		}
		if err := e.Bind(ctx, local); err != nil {
			return acct, nil, e.apiError(err, "")
		}
	}
	e.mu.Lock()
	r := *e.recordLocked(local)
	e.mu.Unlock()
	return acct, &r, nil
}

// untouchable refuses, before anything changes, an account whose password
// Lockstep must not manage: a disabled one, a mobile account cached from a
// network directory (that directory owns its password, and the Mac syncs it
// at login), and one whose home, and so its keychain, is not on this Mac.
func untouchable(a LocalAccount) *Error {
	kind := unmanagedKind(a)
	if kind == "" {
		return nil
	}
	return &Error{Code: codes.Unmanaged, Params: map[string]string{"user": a.Name, "kind": kind, "node": a.OriginalNodeName}}
}

// unmanagedKind says why Lockstep leaves an account alone ("" when it does
// not): "disabled", "mobile" or "network_home".
func unmanagedKind(a LocalAccount) string {
	switch {
	case a.Disabled:
		return "disabled"
	case a.Mobile:
		return "mobile"
	case a.NetworkHome:
		return "network_home"
	}
	return ""
}

func offlineError() *Error {
	return &Error{Code: codes.Offline, Params: map[string]string{"when": "before"}}
}

// begin registers an operation as running for local and journals it.
func (e *Engine) begin(local, kind string, steps []string, progress func(Step)) (*run, error) {
	if progress == nil {
		progress = func(Step) {}
	}
	e.mu.Lock()
	if e.running[local] != nil {
		e.mu.Unlock()
		return nil, &Error{Code: codes.Busy}
	}
	r := e.recordLocked(local)
	ent := &journal.Entry{ID: newID(), Kind: kind, LocalUser: local, State: OpRunning,
		StartedAt: e.opt.Now().UTC(), DirectoryUser: r.DirectoryUser}
	for _, s := range steps {
		ent.Steps = append(ent.Steps, journal.Step{Name: s, State: StepPending})
	}
	if err := e.opt.Journal.Write(ent); err != nil {
		e.mu.Unlock()
		return nil, &Error{Code: codes.Platform, Detail: "the operation journal could not be written: " + err.Error()}
	}
	e.running[local] = ent
	if kind == OpKeychainRecover && r.PasswordOpID == "" {
		r.PasswordOpID = r.LastOpID
	}
	r.LastOpID = ent.ID
	if kind != OpKeychainRecover {
		r.PasswordOpID = ent.ID
	}
	if err := e.saveLocked(); err != nil {
		e.log.Error("account state not saved", "err", err)
	}
	e.mu.Unlock()
	e.log.Info("operation started", "op_id", ent.ID, "kind", kind, "local_user", local)
	e.opt.Emit(Event{Type: EventStatus})
	return &run{e: e, ent: ent, progress: progress, skips: map[string]skipReason{}}, nil
}

// step runs one journalled step. fn returns what the step did, a skip, or
// the error that failed it.
func (o *run) step(name string, fn func() (Text, error)) error {
	o.set(name, StepRunning, Text{})
	text, err := fn()
	var sk skip
	switch {
	case errors.As(err, &sk):
		o.skips[name] = sk.reason
		o.set(name, StepSkipped, sk.text)
		return nil
	case err != nil:
		// Why it failed is the operation's Error, said once.
		o.set(name, StepFailed, Text{})
		return err
	}
	o.set(name, StepDone, text)
	return nil
}

func (o *run) set(name, state string, text Text) {
	o.e.mu.Lock()
	st := o.ent.Step(name)
	if st == nil {
		o.ent.Steps = append(o.ent.Steps, journal.Step{Name: name})
		st = &o.ent.Steps[len(o.ent.Steps)-1]
	}
	st.State, st.Text, st.At = state, toJournalText(text), o.e.opt.Now().UTC()
	step := stepFromJournal(*st)
	op := opFromJournal(o.ent)
	err := o.e.opt.Journal.Write(o.ent)
	o.e.mu.Unlock()
	if err != nil {
		o.e.log.Error("journal not written", "op_id", o.ent.ID, "err", err)
	}
	o.e.log.Info("operation step", "op_id", o.ent.ID, "step", name, "state", state)
	o.progress(step)
	o.e.opt.Emit(Event{Type: EventStep, Step: &step, Operation: op})
}

// note adds something the user must know to the operation.
func (o *run) note(t Text) {
	o.e.mu.Lock()
	o.ent.Notes = append(o.ent.Notes, toJournalText(t))
	o.e.mu.Unlock()
}

// finish ends the operation. On success, onDone updates the account record.
func (o *run) finish(err error, onDone func(r *record)) *Operation {
	e := o.e
	now := e.opt.Now().UTC()
	e.mu.Lock()
	ent := o.ent
	ent.FinishedAt = &now
	r := e.recordLocked(ent.LocalUser)
	switch {
	case err == nil:
		ent.State = OpDone
		if o.temporary {
			ent.NextAction = OpChange
			ent.Notes = append(ent.Notes, toJournalText(T(codes.NoteTemporary)))
		}
		if onDone != nil {
			onDone(r)
		}
	case !o.mutated || ent.Kind == OpKeychainRecover:
		// A keychain recovery never touches the account's password:
		// stopped part-way it is incomplete, and running it again finishes
		// it; the account is as in step as it was.
		ent.State = OpFailed
		if o.mutated {
			ent.State = OpIncomplete
		}
		ent.Error = toJournalError(e.apiError(err, ""))
		for i := range ent.Steps {
			if ent.Steps[i].State == StepPending {
				ent.Steps[i].State = StepSkipped
			}
		}
	default:
		ent.State = OpSyncNeeded
		ae := e.apiError(err, "")
		ent.Error = toJournalError(ae)
		r.SyncNeeded = true
		r.Reason = T(codes.ReasonStopped, "error", ae.Code)
		e.markBehind(r, now)
	}
	delete(e.running, ent.LocalUser)
	if werr := e.opt.Journal.Write(ent); werr != nil {
		e.log.Error("journal not written", "op_id", ent.ID, "err", werr)
	}
	if serr := e.saveLocked(); serr != nil {
		e.log.Error("account state not saved", "err", serr)
	}
	op := opFromJournal(ent)
	e.mu.Unlock()
	e.log.Info("operation finished", "op_id", op.ID, "state", op.State)
	e.opt.Emit(Event{Type: EventResult, Operation: op})
	e.opt.Emit(Event{Type: EventStatus})
	e.report(op.LocalUser)
	if op.State == OpDone && op.Kind != OpKeychainRecover {
		e.send(&Notice{Kind: NoticeSynced, ID: "synced-" + op.ID, LocalUser: op.LocalUser})
	}
	return op
}

// markPlaces records the places an operation verified.
func (e *Engine) markPlaces(r *record, now time.Time, steps []Step, skips map[string]skipReason) {
	for _, s := range steps {
		var place string
		switch s.Name {
		case StepLocal:
			place = PlaceLocal
		case StepKeychain:
			place = PlaceKeychain
		case StepFileVault:
			place = PlaceFileVault
		default:
			continue
		}
		p := r.Places[place]
		p.Name = place
		switch s.State {
		case StepDone:
			t := now
			p.State, p.Text, p.ChangedAt = PlaceOK, s.Text, &t
		case StepSkipped:
			if skips[s.Name] == reasonNotApplicable {
				p.State = PlaceNotApplicable
			} else {
				p.State = PlaceOK
			}
			p.Text = s.Text
		}
		r.Places[place] = p
	}
}

var changeSteps = []string{StepValidate, StepVerify, StepDirectory, StepLocal,
	StepKeychain, StepFileVault, StepPreboot, StepAck}

var syncSteps = []string{StepDirectory, StepVerify, StepLocal,
	StepKeychain, StepFileVault, StepPreboot, StepAck}

// Change changes the password in the directory first, then on the Mac:
// local account, keychain, FileVault, Preboot, and acknowledges the sync.
func (e *Engine) Change(ctx context.Context, local string, req ChangeRequest, progress func(Step)) (*Operation, error) {
	acct, rec, err := e.prepare(ctx, local)
	if err != nil {
		return nil, err
	}
	switch {
	case rec.SyncNeeded:
		return nil, &Error{Code: codes.SyncFirst}
	case rec.Dir.Locked && (rec.Dir.LockedUntil == nil || rec.Dir.LockedUntil.After(e.opt.Now())):
		return nil, lockedError(rec.Dir.LockedUntil)
	}
	o, err := e.begin(local, OpChange, changeSteps, progress)
	if err != nil {
		return nil, err
	}
	dirUser := rec.DirectoryUser
	var st protocol.AccountState
	m := &macRun{run: o, acct: acct, old: req.Current, new: req.New}

	err = o.step(StepValidate, func() (Text, error) {
		if req.Current.Empty() {
			return Text{}, fieldError(codes.Missing, FieldCurrent)
		}
		if v := e.Policy().Check(dirUser, req.New); len(v) > 0 {
			return Text{}, &Error{Code: protocol.CodePolicyViolation, Field: FieldNew, Violations: v}
		}
		if req.New.Equal(req.Current) {
			return Text{}, &Error{Code: protocol.CodePolicyViolation, Field: FieldNew,
				Violations: []protocol.Violation{e.Policy().HistoryViolation()}}
		}
		if unmet, err := e.checkLocalRules(ctx, local, req.New); err != nil {
			return Text{}, err
		} else if len(unmet) > 0 {
			return Text{}, localPolicyError(unmet, "new")
		}
		if rec.Dir.MFACodeNeeded() && req.TOTP == "" {
			return Text{}, fieldError(protocol.CodeMFARequired, FieldTOTP)
		}
		if req.TOTP != "" && !protocol.ValidTOTPCode(req.TOTP) {
			return Text{}, fieldError(codes.MFAFormat, FieldTOTP)
		}
		if !e.opt.Directory.Connected() {
			return Text{}, offlineError()
		}
		if wait, ok := e.throttle.allow(dirUser); !ok {
			return Text{}, throttledError(wait)
		}
		return T(codes.StepValidated), nil
	})
	if err != nil {
		return o.finish(err, nil), nil
	}

	err = o.step(StepVerify, func() (Text, error) {
		if err := verifyLocal(ctx, e.opt.Mac.Accounts, local, req.Current); err != nil {
			if errors.Is(err, ErrWrongPassword) {
				return Text{}, fieldError(codes.WrongLocal, FieldCurrent)
			}
			return Text{}, err
		}
		if ok, err := e.opt.Mac.Keychain.Exists(acct); err != nil {
			return Text{}, err
		} else if ok {
			if opens, err := e.opt.Mac.Keychain.Opens(ctx, acct, req.Current); err != nil {
				return Text{}, err
			} else if !opens {
				return Text{}, &Error{Code: codes.Keychain, Params: map[string]string{"which": "current"}}
			}
		}
		return T(codes.StepCurrentOK), nil
	})
	if err != nil {
		return o.finish(err, nil), nil
	}

	err = o.step(StepDirectory, func() (Text, error) {
		o.mutated = true // from here the directory may hold the new password
		_ = e.update(local, func(r *record) { r.CheckVersion = rec.Dir.PasswordVersion })
		cctx, cancel := context.WithTimeout(ctx, confirmWait)
		defer cancel()
		var derr error
		st, derr = e.opt.Directory.ChangePassword(cctx, "change-"+o.ent.ID, protocol.ChangePasswordRequest{
			User: dirUser, Current: req.Current, New: req.New, TOTP: req.TOTP})
		var pe *protocol.Error
		if errors.As(derr, &pe) {
			// A definite refusal: the directory did not change.
			o.mutated = false
			_ = e.update(local, func(r *record) { r.CheckVersion = 0 })
			switch pe.Code {
			case protocol.CodeWrongPassword, protocol.CodeMFAInvalid, protocol.CodeMFAReplayed:
				e.throttle.fail(dirUser)
			}
			return Text{}, e.apiError(pe, FieldCurrent)
		}
		if derr != nil {
			return Text{}, &Error{Code: codes.Offline, Params: map[string]string{"when": "unconfirmed"}}
		}
		e.throttle.success(dirUser)
		e.mu.Lock()
		o.ent.TargetVersion = st.PasswordVersion
		e.mu.Unlock()
		_ = e.update(local, func(r *record) {
			r.CheckVersion = 0
			s := st
			r.Dir, r.DirAt = &s, e.opt.Now()
		})
		return T(codes.StepDirChanged, "version", strconv.FormatInt(st.PasswordVersion, 10)), nil
	})
	if err != nil {
		return o.finish(err, nil), nil
	}
	if err := e.applyMac(ctx, m); err != nil {
		return o.finish(err, nil), nil
	}
	return o.finish(nil, e.synced(o, st)), nil
}

// localPolicyError is the refusal of a password the Mac's own policy would
// refuse, with the Mac's rules it fails. source says whose password it is:
// "new" (the user's choice) or "directory" (what the directory holds).
func localPolicyError(unmet []protocol.LocalRule, source string) *Error {
	out := &Error{Code: codes.MacPolicy, Field: FieldNew, Params: map[string]string{"source": source}}
	for _, r := range unmet {
		out.Violations = append(out.Violations, r.Violation())
	}
	return out
}

// Sync brings the Mac in line with a password set in the directory.
func (e *Engine) Sync(ctx context.Context, local string, req SyncRequest, progress func(Step)) (*Operation, error) {
	if req.New.Empty() {
		return nil, fieldError(codes.Missing, FieldNew)
	}
	if !req.ForgotPrevious && req.Previous.Empty() {
		return nil, fieldError(codes.Missing, FieldPrevious)
	}
	if req.ForgotPrevious {
		if st := e.opt.Mac.Service.Status(ctx); !st.Usable {
			return nil, &Error{Code: codes.NoServiceAccount}
		}
	}
	acct, rec, err := e.prepare(ctx, local)
	if err != nil {
		return nil, err
	}
	if rec.Dir.Locked && (rec.Dir.LockedUntil == nil || rec.Dir.LockedUntil.After(e.opt.Now())) {
		return nil, lockedError(rec.Dir.LockedUntil)
	}
	kind := OpSync
	if req.ForgotPrevious {
		kind = OpSyncForgot
	}
	prior := e.priorFor(rec.passwordOp())
	o, err := e.begin(local, kind, syncSteps, progress)
	if err != nil {
		return nil, err
	}
	dirUser := rec.DirectoryUser
	var st protocol.AccountState
	m := &macRun{run: o, acct: acct, old: req.Previous, new: req.New, forgot: req.ForgotPrevious, prior: prior, syncedVersion: rec.SyncedVersion}

	err = o.step(StepDirectory, func() (Text, error) {
		if wait, ok := e.throttle.allow(dirUser); !ok {
			return Text{}, throttledError(wait)
		}
		var derr error
		st, derr = e.opt.Directory.VerifyPassword(ctx, dirUser, req.New)
		var pe *protocol.Error
		if errors.As(derr, &pe) {
			if pe.Code == protocol.CodeWrongPassword {
				e.throttle.fail(dirUser)
			}
			return Text{}, e.apiError(pe, FieldNew)
		}
		if derr != nil {
			return Text{}, offlineError()
		}
		e.throttle.success(dirUser)
		e.mu.Lock()
		o.ent.TargetVersion = st.PasswordVersion
		e.mu.Unlock()
		_ = e.update(local, func(r *record) { s := st; r.Dir, r.DirAt = &s, e.opt.Now() })
		// The directory holds this password whatever the Mac says; a
		// password the Mac's policy refuses cannot be synced here.
		if unmet, err := e.checkLocalRules(ctx, local, req.New); err != nil {
			return Text{}, err
		} else if len(unmet) > 0 {
			return Text{}, localPolicyError(unmet, "directory")
		}
		return T(codes.StepDirVerified), nil
	})
	if err != nil {
		return o.finish(err, nil), nil
	}
	if err := e.applyMac(ctx, m); err != nil {
		return o.finish(err, nil), nil
	}
	o.temporary = st.MustChange
	return o.finish(nil, e.synced(o, st)), nil
}

// synced returns the record update for a finished operation.
func (e *Engine) synced(o *run, st protocol.AccountState) func(r *record) {
	return func(r *record) {
		s := st
		r.Dir, r.DirAt = &s, e.opt.Now()
		r.SyncedVersion, r.Assumed = st.PasswordVersion, false
		r.SyncNeeded, r.Reason, r.CheckVersion = false, Text{}, 0
		e.markPlaces(r, e.opt.Now().UTC(), opFromJournal(o.ent).Steps, o.skips)
	}
}

func ackKey(local string, version int64) string { return fmt.Sprintf("ack-%s-%d", local, version) }

func fieldError(code, field string) *Error { return &Error{Code: code, Field: field} }

func lockedError(until *time.Time) *Error { return &Error{Code: protocol.CodeLocked, Until: until} }

func throttledError(wait time.Duration) *Error {
	return &Error{Code: codes.Throttled, RetryAfter: max(1, int(wait.Seconds()))}
}

// apiError turns any error into an *Error. field is where a directory
// wrong_password points.
func (e *Engine) apiError(err error, field string) *Error {
	var le *Error
	if errors.As(err, &le) {
		return le
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		out := &Error{Code: pe.Code, Violations: pe.Violations, RetryAfter: pe.RetryAfter, Until: lockEnd(pe.LockedUntil)}
		switch pe.Code {
		case protocol.CodeWrongPassword:
			out.Field = field
		case protocol.CodeMFARequired, protocol.CodeMFAInvalid, protocol.CodeMFAReplayed:
			out.Field = FieldTOTP
		case protocol.CodePolicyViolation:
			out.Field = FieldNew
		case protocol.CodeInternal, protocol.CodeBadRequest, protocol.CodeUnsupported:
			out.Detail = pe.Message // the directory's own words, for IT
		}
		return out
	}
	if errors.Is(err, ErrWrongPassword) {
		return &Error{Code: codes.WrongLocal}
	}
	return &Error{Code: codes.Platform, Detail: err.Error()}
}
