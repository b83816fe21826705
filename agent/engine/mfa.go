package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"

	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// MFA enrolment on the Mac: after an administrator reset the user's MFA
// with an enrolment period (the directory's mfa_enrollment push), the
// account is in StateMFAEnroll and the user sets up an authenticator from
// the menu bar or `lockstep mfa enroll`. The secret the directory makes
// passes through the engine to the caller alone: it is not an operation,
// so nothing of it reaches the journal, the account state, a notice or a
// log line.

// BeginEnrollment asks the directory for a fresh secret for local's user.
func (e *Engine) BeginEnrollment(ctx context.Context, local string) (EnrollmentKey, error) {
	dirUser, err := e.enrolling(local)
	if err != nil {
		return EnrollmentKey{}, err
	}
	k, err := e.opt.Directory.BeginMFAEnrollment(ctx, dirUser)
	if err != nil {
		return EnrollmentKey{}, e.enrolError(err)
	}
	return EnrollmentKey{Secret: k.Secret, URI: k.URI, Until: k.Until}, nil
}

// ConfirmEnrollment confirms the begun enrolment with a code from the
// authenticator; the account then needs codes, and is returned as it
// stands.
func (e *Engine) ConfirmEnrollment(ctx context.Context, local, code string) (Account, error) {
	dirUser, err := e.enrolling(local)
	if err != nil {
		return Account{}, err
	}
	if code == "" {
		return Account{}, fieldError(codes.Missing, FieldTOTP)
	}
	if !protocol.ValidTOTPCode(code) {
		return Account{}, fieldError(codes.MFAFormat, FieldTOTP)
	}
	if wait, ok := e.throttle.allow(dirUser); !ok {
		return Account{}, throttledError(wait)
	}
	var key [8]byte
	_, _ = rand.Read(key[:])
	st, err := e.opt.Directory.ConfirmMFAEnrollment(ctx, "enrol-"+hex.EncodeToString(key[:]), dirUser, code)
	if err != nil {
		var pe *protocol.Error
		if errors.As(err, &pe) && (pe.Code == protocol.CodeMFAInvalid || pe.Code == protocol.CodeMFAReplayed) {
			e.throttle.fail(dirUser)
		}
		return Account{}, e.enrolError(err)
	}
	e.throttle.success(dirUser)
	_ = e.update(local, func(r *record) {
		s := st
		r.Dir, r.DirAt = &s, e.opt.Now()
	})
	e.log.Info("mfa enrolled", "local_user", local)
	e.report(local)
	acc := e.Accounts([]string{local})
	if len(acc) == 0 {
		return Account{}, &Error{Code: codes.NoLocalUser, Params: map[string]string{"user": local}}
	}
	return acc[0], nil
}

// enrolling checks that local's user must enrol now and the directory can
// be asked, and returns the directory user.
func (e *Engine) enrolling(local string) (string, error) {
	e.mu.Lock()
	r, ok := e.accounts[local]
	var a Account
	if ok {
		a = e.viewLocked(r)
	}
	e.mu.Unlock()
	switch {
	case !ok || r.Dir == nil:
		return "", &Error{Code: codes.NoLocalUser, Params: map[string]string{"user": local}}
	case r.NotLinked:
		return "", notLinkedError()
	case a.MFAEnrollBy == nil && r.Dir.MFAEnrollBy != nil:
		return "", &Error{Code: protocol.CodeMFAEnrollmentExpired}
	case a.MFAEnrollBy == nil:
		return "", &Error{Code: protocol.CodeMFANotEnrolling}
	case !e.opt.Directory.Connected():
		return "", offlineError()
	}
	return r.DirectoryUser, nil
}

// enrolError is a failed enrolment step as the engine says it.
func (e *Engine) enrolError(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return e.apiError(pe, FieldTOTP)
	}
	return offlineError()
}

// report hands what local's places are now (never a secret) to
// Options.Report, which tells the directory, so that IT sees which Macs
// are out of step. It runs after every operation and binding; it does no
// network work itself.
func (e *Engine) report(local string) {
	if e.opt.Report == nil {
		return
	}
	e.mu.Lock()
	r, ok := e.accounts[local]
	if !ok || r.Dir == nil || r.NotLinked {
		e.mu.Unlock()
		return
	}
	dirUser, at := r.DirectoryUser, r.DirAt
	a := e.viewLocked(r)
	e.mu.Unlock()
	if at.IsZero() {
		at = e.opt.Now()
	}
	var ps []protocol.PlaceReport
	for _, p := range a.Places {
		when := at
		if p.ChangedAt != nil {
			when = *p.ChangedAt
		}
		ps = append(ps, protocol.PlaceReport{Place: p.Name, State: p.State, At: when.UTC()})
	}
	e.opt.Report(dirUser, ps)
}
