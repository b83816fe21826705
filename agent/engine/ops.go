package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/agent/journal"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
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

// skip ends a step as skipped, with its reason and the text shown to the
// user.
type skip struct {
	reason skipReason
	text   string
}

func (s skip) Error() string { return s.text }

// run is one operation in progress.
type run struct {
	e        *Engine
	ent      *journal.Entry
	progress func(localapi.Step)
	// mutated is set once a place may have changed; a failure after that
	// ends in "sync needed" rather than "failed, nothing changed".
	mutated bool
	// skips are the typed reasons of the steps that were skipped.
	skips map[string]skipReason
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
			return acct, nil, &localapi.Error{Code: localapi.CodeBadRequest, Message: fmt.Sprintf("There is no local account named %q.", local)}
		}
		return acct, nil, &localapi.Error{Code: localapi.CodePlatform, Message: "Could not read the Mac account: " + err.Error()}
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
func untouchable(a LocalAccount) *localapi.Error {
	switch {
	case a.Disabled:
		return &localapi.Error{Code: localapi.CodeUnmanaged, Message: fmt.Sprintf("The Mac account %q is disabled, so Lockstep does not change its password.", a.Name),
			Hint: "Ask IT to enable the account first."}
	case a.Mobile:
		from := a.OriginalNodeName
		if from == "" {
			from = "a network directory"
		}
		return &localapi.Error{Code: localapi.CodeUnmanaged,
			Message: fmt.Sprintf("The Mac account %q is a mobile account from %s, which owns its password, so Lockstep leaves it alone.", a.Name, from),
			Hint:    "IT: change this password in that directory, or convert the account to a local one before managing it with Lockstep."}
	case a.NetworkHome:
		return &localapi.Error{Code: localapi.CodeUnmanaged,
			Message: fmt.Sprintf("The home folder of %q is on a network server, so its keychain is not on this Mac and Lockstep cannot keep it in step.", a.Name),
			Hint:    "IT: give the account a local home folder before managing it with Lockstep."}
	}
	return nil
}

func offlineError() *localapi.Error {
	return &localapi.Error{Code: localapi.CodeOffline, Message: "The directory is not reachable, so nothing was changed.",
		Hint: "Check the network connection and try again."}
}

// begin registers an operation as running for local and journals it.
func (e *Engine) begin(local, kind string, steps []string, progress func(localapi.Step)) (*run, error) {
	if progress == nil {
		progress = func(localapi.Step) {}
	}
	e.mu.Lock()
	if e.running[local] != nil {
		e.mu.Unlock()
		return nil, &localapi.Error{Code: localapi.CodeBusy, Message: "Another password operation is running for this account.", Hint: "Wait for it to finish."}
	}
	r := e.recordLocked(local)
	ent := &journal.Entry{
		Operation: localapi.Operation{ID: newID(), Kind: kind, LocalUser: local, State: localapi.OpRunning,
			StartedAt: e.opt.Now().UTC()},
		DirectoryUser: r.DirectoryUser,
	}
	for _, s := range steps {
		ent.Steps = append(ent.Steps, localapi.Step{Name: s, State: localapi.StepPending})
	}
	if err := e.opt.Journal.Write(ent); err != nil {
		e.mu.Unlock()
		return nil, &localapi.Error{Code: localapi.CodePlatform, Message: "Could not write the operation journal, so nothing was changed: " + err.Error()}
	}
	e.running[local] = ent
	r.LastOpID = ent.ID
	if err := e.saveLocked(); err != nil {
		e.log.Error("account state not saved", "err", err)
	}
	e.mu.Unlock()
	e.log.Info("operation started", "op_id", ent.ID, "kind", kind, "local_user", local)
	e.opt.Emit(localapi.Event{Type: localapi.EventStatus})
	return &run{e: e, ent: ent, progress: progress, skips: map[string]skipReason{}}, nil
}

// step runs one journalled step.
func (o *run) step(name string, fn func() (string, error)) error {
	o.set(name, localapi.StepRunning, "")
	detail, err := fn()
	var sk skip
	switch {
	case errors.As(err, &sk):
		o.skips[name] = sk.reason
		o.set(name, localapi.StepSkipped, sk.text)
		return nil
	case err != nil:
		o.set(name, localapi.StepFailed, o.e.apiError(err, "").Message)
		return err
	}
	o.set(name, localapi.StepDone, detail)
	return nil
}

func (o *run) set(name, state, detail string) {
	o.e.mu.Lock()
	st := o.ent.Step(name)
	if st == nil {
		o.ent.Steps = append(o.ent.Steps, localapi.Step{Name: name})
		st = &o.ent.Steps[len(o.ent.Steps)-1]
	}
	st.State, st.Detail, st.At = state, detail, o.e.opt.Now().UTC()
	step := *st
	op := o.ent.Operation
	op.Steps = append([]localapi.Step(nil), o.ent.Steps...)
	err := o.e.opt.Journal.Write(o.ent)
	o.e.mu.Unlock()
	if err != nil {
		o.e.log.Error("journal not written", "op_id", o.ent.ID, "err", err)
	}
	o.e.log.Info("operation step", "op_id", o.ent.ID, "step", name, "state", state)
	o.progress(step)
	o.e.opt.Emit(localapi.Event{Type: localapi.EventStep, Step: &step, Operation: &op})
}

// note adds something the user must know to the operation.
func (o *run) note(s string) {
	o.e.mu.Lock()
	o.ent.Notes = append(o.ent.Notes, s)
	o.e.mu.Unlock()
}

// finish ends the operation. On success, onDone updates the account record.
func (o *run) finish(err error, onDone func(r *record)) *localapi.Operation {
	e := o.e
	now := e.opt.Now().UTC()
	e.mu.Lock()
	ent := o.ent
	ent.FinishedAt = &now
	r := e.recordLocked(ent.LocalUser)
	switch {
	case err == nil:
		ent.State = localapi.OpDone
		if onDone != nil {
			onDone(r)
		}
	case !o.mutated:
		ent.State = localapi.OpFailed
		ent.Error = e.apiError(err, "")
		for i := range ent.Steps {
			if ent.Steps[i].State == localapi.StepPending {
				ent.Steps[i].State = localapi.StepSkipped
			}
		}
	default:
		ent.State = localapi.OpSyncNeeded
		ae := *e.apiError(err, "")
		if ae.Hint == "" {
			ae.Hint = "Nothing is lost: run Sync Password (`lockstep sync`) with your previous and new password to finish."
		}
		ent.Error = &ae
		r.SyncNeeded = true
		r.Reason = "The last password operation stopped part-way: " + ae.Message
		e.markBehind(r, now)
	}
	delete(e.running, ent.LocalUser)
	if werr := e.opt.Journal.Write(ent); werr != nil {
		e.log.Error("journal not written", "op_id", ent.ID, "err", werr)
	}
	if serr := e.saveLocked(); serr != nil {
		e.log.Error("account state not saved", "err", serr)
	}
	op := ent.Operation
	op.Steps = append([]localapi.Step(nil), ent.Steps...)
	e.mu.Unlock()
	e.log.Info("operation finished", "op_id", op.ID, "state", op.State)
	e.opt.Emit(localapi.Event{Type: localapi.EventResult, Operation: &op})
	e.opt.Emit(localapi.Event{Type: localapi.EventStatus})
	if op.State == localapi.OpDone {
		e.notice(localapi.NoticeSynced, op.LocalUser, "Password updated", doneSummary(&op))
	}
	return &op
}

func doneSummary(op *localapi.Operation) string {
	var places []string
	for _, s := range op.Steps {
		if s.State != localapi.StepDone {
			continue
		}
		switch s.Name {
		case localapi.StepDirectory:
			if op.Kind == localapi.OpChange {
				places = append(places, "directory")
			}
		case localapi.StepLocal:
			places = append(places, "Mac account")
		case localapi.StepFileVault:
			places = append(places, "FileVault")
		case localapi.StepKeychain:
			places = append(places, "login keychain")
		}
	}
	if len(places) == 0 {
		return "Every place already used your new password."
	}
	return "Now using your new password: " + strings.Join(places, ", ") + "."
}

// markPlaces records the places an operation verified.
func (e *Engine) markPlaces(r *record, now time.Time, steps []localapi.Step, skips map[string]skipReason) {
	for _, s := range steps {
		var place string
		switch s.Name {
		case localapi.StepLocal:
			place = localapi.PlaceLocal
		case localapi.StepKeychain:
			place = localapi.PlaceKeychain
		case localapi.StepFileVault:
			place = localapi.PlaceFileVault
		default:
			continue
		}
		p := r.Places[place]
		p.Name = place
		switch s.State {
		case localapi.StepDone:
			t := now
			p.State, p.Detail, p.ChangedAt = localapi.PlaceOK, s.Detail, &t
		case localapi.StepSkipped:
			if skips[s.Name] == reasonNotApplicable {
				p.State = localapi.PlaceNotApplicable
			} else {
				p.State = localapi.PlaceOK
			}
			p.Detail = s.Detail
		}
		r.Places[place] = p
	}
}

var changeSteps = []string{localapi.StepValidate, localapi.StepVerify, localapi.StepDirectory, localapi.StepLocal,
	localapi.StepKeychain, localapi.StepFileVault, localapi.StepPreboot, localapi.StepAck}

var syncSteps = []string{localapi.StepDirectory, localapi.StepVerify, localapi.StepLocal,
	localapi.StepKeychain, localapi.StepFileVault, localapi.StepPreboot, localapi.StepAck}

// Change changes the password in the directory first, then on the Mac:
// local account, keychain, FileVault, Preboot, and acknowledges the sync.
func (e *Engine) Change(ctx context.Context, local string, req localapi.ChangeRequest, progress func(localapi.Step)) (*localapi.Operation, error) {
	acct, rec, err := e.prepare(ctx, local)
	if err != nil {
		return nil, err
	}
	switch {
	case rec.SyncNeeded:
		return nil, &localapi.Error{Code: localapi.CodeSyncFirst, Message: "Your Mac is not in step with the directory yet, so the password cannot be changed.",
			Hint: "Sync your password first (Sync Password… or `lockstep sync`)."}
	case rec.Dir.Locked && (rec.Dir.LockedUntil == nil || rec.Dir.LockedUntil.After(e.opt.Now())):
		return nil, lockedError(rec.Dir.LockedUntil)
	}
	o, err := e.begin(local, localapi.OpChange, changeSteps, progress)
	if err != nil {
		return nil, err
	}
	dirUser := rec.DirectoryUser
	var st protocol.AccountState
	m := &macRun{run: o, acct: acct, old: req.Current, new: req.New}

	err = o.step(localapi.StepValidate, func() (string, error) {
		if req.Current.Empty() {
			return "", fieldError(localapi.CodeBadRequest, localapi.FieldCurrent, "Enter your current password.")
		}
		if v := e.Policy().Check(dirUser, req.New); len(v) > 0 {
			return "", &localapi.Error{Code: protocol.CodePolicyViolation, Field: localapi.FieldNew,
				Message: "The new password does not meet the password policy.", Violations: v}
		}
		if req.New.Equal(req.Current) {
			return "", &localapi.Error{Code: protocol.CodePolicyViolation, Field: localapi.FieldNew,
				Message:    "The new password must differ from the current one.",
				Violations: []protocol.Violation{e.Policy().HistoryViolation()}}
		}
		if unmet, err := e.checkLocalRules(ctx, local, req.New); err != nil {
			return "", err
		} else if len(unmet) > 0 {
			return "", localPolicyError(unmet)
		}
		if rec.Dir.MFA && req.TOTP == "" {
			return "", fieldError(protocol.CodeMFARequired, localapi.FieldTOTP, "Enter the 6-digit code from your authenticator app.")
		}
		if req.TOTP != "" && !sixDigits(req.TOTP) {
			return "", fieldError(protocol.CodeMFAInvalid, localapi.FieldTOTP, "The code must be 6 digits.")
		}
		if !e.opt.Directory.Connected() {
			return "", offlineError()
		}
		if wait, ok := e.throttle.allow(dirUser); !ok {
			return "", throttledError(wait)
		}
		return "The new password meets the policy.", nil
	})
	if err != nil {
		return o.finish(err, nil), nil
	}

	err = o.step(localapi.StepVerify, func() (string, error) {
		if err := verifyLocal(ctx, e.opt.Mac.Accounts, local, req.Current); err != nil {
			if errors.Is(err, ErrWrongPassword) {
				return "", fieldError(localapi.CodeWrongLocal, localapi.FieldCurrent, "That is not your current Mac password.")
			}
			return "", err
		}
		if ok, err := e.opt.Mac.Keychain.Exists(acct); err != nil {
			return "", err
		} else if ok {
			if opens, err := e.opt.Mac.Keychain.Opens(ctx, acct, req.Current); err != nil {
				return "", err
			} else if !opens {
				return "", &localapi.Error{Code: localapi.CodeKeychain,
					Message: "Your login keychain does not open with your current password, so it would be left behind.",
					Hint:    "Run Sync Password (`lockstep sync`) and enter the keychain's older password as the previous one, or choose that you don't remember it."}
			}
		}
		return "Your current password opens the Mac account and the keychain.", nil
	})
	if err != nil {
		return o.finish(err, nil), nil
	}

	err = o.step(localapi.StepDirectory, func() (string, error) {
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
			return "", e.apiError(pe, localapi.FieldCurrent)
		}
		if derr != nil {
			return "", &localapi.Error{Code: localapi.CodeOffline,
				Message: "The connection to the directory was lost before it confirmed the change.",
				Hint:    "Lockstep checks with the directory when it is back; if the change went through, sync your Mac with the new password."}
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
		return fmt.Sprintf("The directory holds the new password (version %d).", st.PasswordVersion), nil
	})
	if err != nil {
		return o.finish(err, nil), nil
	}
	if err := e.applyMac(ctx, m); err != nil {
		return o.finish(err, nil), nil
	}
	return o.finish(nil, e.synced(o, st)), nil
}

// localPolicyError is the refusal of a new password the Mac's own policy
// would refuse, with the Mac's rules it fails.
func localPolicyError(unmet []protocol.LocalRule) *localapi.Error {
	out := &localapi.Error{Code: protocol.CodePolicyViolation, Field: localapi.FieldNew,
		Message: "This Mac's own password policy would refuse the new password, so nothing was changed."}
	for _, r := range unmet {
		out.Violations = append(out.Violations, protocol.Violation{Code: protocol.RuleMacPolicy, Message: r.Description()})
	}
	return out
}

// Sync brings the Mac in line with a password set in the directory.
func (e *Engine) Sync(ctx context.Context, local string, req localapi.SyncRequest, progress func(localapi.Step)) (*localapi.Operation, error) {
	if req.New.Empty() {
		return nil, fieldError(localapi.CodeBadRequest, localapi.FieldNew, "Enter your new directory password.")
	}
	if !req.ForgotPrevious && req.Previous.Empty() {
		return nil, fieldError(localapi.CodeBadRequest, localapi.FieldPrevious, "Enter your previous Mac password, or choose that you don't remember it.")
	}
	if req.ForgotPrevious {
		if st := e.opt.Mac.Service.Status(ctx); !st.Usable {
			return nil, &localapi.Error{Code: localapi.CodeNoServiceAcct,
				Message: "This Mac cannot reset your password without the previous one: the Lockstep service account is not set up.",
				Hint:    "Ask IT to run `sudo lockstep service-account setup`, or enter your previous password."}
		}
	}
	acct, rec, err := e.prepare(ctx, local)
	if err != nil {
		return nil, err
	}
	if rec.Dir.Locked && (rec.Dir.LockedUntil == nil || rec.Dir.LockedUntil.After(e.opt.Now())) {
		return nil, lockedError(rec.Dir.LockedUntil)
	}
	kind := localapi.OpSync
	if req.ForgotPrevious {
		kind = localapi.OpSyncForgot
	}
	prior := e.priorFor(rec.LastOpID)
	o, err := e.begin(local, kind, syncSteps, progress)
	if err != nil {
		return nil, err
	}
	dirUser := rec.DirectoryUser
	var st protocol.AccountState
	m := &macRun{run: o, acct: acct, old: req.Previous, new: req.New, forgot: req.ForgotPrevious, prior: prior, syncedVersion: rec.SyncedVersion}

	err = o.step(localapi.StepDirectory, func() (string, error) {
		if wait, ok := e.throttle.allow(dirUser); !ok {
			return "", throttledError(wait)
		}
		var derr error
		st, derr = e.opt.Directory.VerifyPassword(ctx, dirUser, req.New)
		var pe *protocol.Error
		if errors.As(derr, &pe) {
			if pe.Code == protocol.CodeWrongPassword {
				e.throttle.fail(dirUser)
			}
			return "", e.apiError(pe, localapi.FieldNew)
		}
		if derr != nil {
			return "", offlineError()
		}
		e.throttle.success(dirUser)
		e.mu.Lock()
		o.ent.TargetVersion = st.PasswordVersion
		e.mu.Unlock()
		_ = e.update(local, func(r *record) { s := st; r.Dir, r.DirAt = &s, e.opt.Now() })
		// The directory holds this password whatever the Mac says; a
		// password the Mac's policy refuses cannot be synced here.
		if unmet, err := e.checkLocalRules(ctx, local, req.New); err != nil {
			return "", err
		} else if len(unmet) > 0 {
			le := localPolicyError(unmet)
			le.Message = "This Mac's own password policy refuses the directory's new password, so nothing on the Mac was changed."
			le.Hint = "Choose a password that meets both policies in the directory (or ask IT), then sync again."
			return "", le
		}
		return "The directory accepted the new password.", nil
	})
	if err != nil {
		return o.finish(err, nil), nil
	}
	if err := e.applyMac(ctx, m); err != nil {
		return o.finish(err, nil), nil
	}
	if st.MustChange {
		e.mu.Lock()
		o.ent.NextAction = localapi.OpChange
		o.ent.Notes = append(o.ent.Notes, "Your new password is temporary: choose a permanent one now.")
		e.mu.Unlock()
	}
	return o.finish(nil, e.synced(o, st)), nil
}

// synced returns the record update for a finished operation.
func (e *Engine) synced(o *run, st protocol.AccountState) func(r *record) {
	return func(r *record) {
		s := st
		r.Dir, r.DirAt = &s, e.opt.Now()
		r.SyncedVersion, r.Assumed = st.PasswordVersion, false
		r.SyncNeeded, r.Reason, r.CheckVersion = false, "", 0
		e.markPlaces(r, e.opt.Now().UTC(), o.ent.Steps, o.skips)
	}
}

func ackKey(local string, version int64) string { return fmt.Sprintf("ack-%s-%d", local, version) }

func sixDigits(s string) bool {
	if len(s) != 6 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func fieldError(code, field, msg string) *localapi.Error {
	return &localapi.Error{Code: code, Field: field, Message: msg}
}

func lockedError(until *time.Time) *localapi.Error {
	e := &localapi.Error{Code: protocol.CodeLocked, Message: "Your directory account is locked.", Until: until,
		Hint: "Wait for the lock to end or ask IT to unlock it."}
	if until != nil {
		e.Message = fmt.Sprintf("Your directory account is locked until %s.", until.Local().Format("15:04"))
	}
	return e
}

func throttledError(wait time.Duration) *localapi.Error {
	mins := int(wait.Round(time.Minute) / time.Minute)
	if mins < 1 {
		mins = 1
	}
	return &localapi.Error{Code: localapi.CodeThrottled, RetryAfter: int(wait.Seconds()),
		Message: "Too many wrong passwords were tried from this Mac, so Lockstep is pausing to keep your account from being locked.",
		Hint:    fmt.Sprintf("Try again in %d minute(s).", mins)}
}

// apiError turns any error into the local API's form. field is where a
// directory wrong_password points.
func (e *Engine) apiError(err error, field string) *localapi.Error {
	var le *localapi.Error
	if errors.As(err, &le) {
		return le
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		out := &localapi.Error{Code: pe.Code, Message: pe.Message, Violations: pe.Violations, RetryAfter: pe.RetryAfter, Until: pe.LockedUntil}
		switch pe.Code {
		case protocol.CodeWrongPassword:
			out.Field = field
			if field == localapi.FieldCurrent {
				out.Message = "The directory did not accept your current password."
				out.Hint = "If your password was changed elsewhere, sync your Mac first."
			} else {
				out.Message = "That is not your directory password."
			}
		case protocol.CodeMFARequired:
			out.Field, out.Message = localapi.FieldTOTP, "Enter the 6-digit code from your authenticator app."
		case protocol.CodeMFAInvalid:
			out.Field, out.Message = localapi.FieldTOTP, "That code is not right. Check the time on your phone and try the current code."
		case protocol.CodeMFAReplayed:
			out.Field, out.Message = localapi.FieldTOTP, "That code was already used. Wait for the next one."
		case protocol.CodePolicyViolation:
			out.Field, out.Message = localapi.FieldNew, "The new password does not meet the password policy."
		case protocol.CodeLocked:
			return lockedError(pe.LockedUntil)
		case protocol.CodeRateLimited:
			out.Hint = fmt.Sprintf("Try again in %d seconds.", pe.RetryAfter)
		case protocol.CodeUnknownUser:
			out.Message = "The directory does not know this account."
			out.Hint = "Ask IT to check the user mapping (UserMap)."
		}
		return out
	}
	if errors.Is(err, ErrWrongPassword) {
		return &localapi.Error{Code: localapi.CodeWrongLocal, Message: "The Mac did not accept the password."}
	}
	return &localapi.Error{Code: localapi.CodePlatform, Message: err.Error()}
}
