package engine

import (
	"context"
	"errors"

	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// Link links this Mac to local's directory user. The directory links a
// device to a user once the user's password is given from it, so Link
// checks the password with the directory (verify_password, which counts
// towards lockout and so goes through the engine's own throttle), and then
// binds the account as at start. The Mac's places are not touched: the
// password is the directory's, which the Mac may not hold yet, and a wrong
// password on the Mac would count as a failed login there.
func (e *Engine) Link(ctx context.Context, local string, password protocol.Secret) (Account, error) {
	if password.Empty() {
		return Account{}, fieldError(codes.Missing, FieldPassword)
	}
	if _, err := e.opt.Mac.Accounts.Lookup(ctx, local); err != nil {
		if errors.Is(err, ErrNoSuchUser) {
			return Account{}, &Error{Code: codes.NoLocalUser, Params: map[string]string{"user": local}}
		}
		return Account{}, &Error{Code: codes.Platform, Detail: err.Error()}
	}
	e.mu.Lock()
	r := e.recordLocked(local)
	dirUser, busy := r.DirectoryUser, e.running[local] != nil
	e.mu.Unlock()
	if busy {
		return Account{}, &Error{Code: codes.Busy}
	}
	if !e.opt.Directory.Connected() {
		return Account{}, offlineError()
	}
	if wait, ok := e.throttle.allow(dirUser); !ok {
		return Account{}, throttledError(wait)
	}
	_, err := e.opt.Directory.VerifyPassword(ctx, dirUser, password)
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe) && pe.Code == protocol.CodeWrongPassword:
		e.throttle.fail(dirUser)
		e.log.Info("link refused", "local_user", local, "reason", pe.Code)
		return Account{}, fieldError(protocol.CodeWrongPassword, FieldPassword)
	case errors.As(err, &pe):
		return Account{}, e.apiError(pe, FieldPassword)
	case err != nil:
		return Account{}, offlineError()
	}
	e.throttle.success(dirUser)
	if err := e.Bind(ctx, local); err != nil {
		e.log.Warn("account not bound after its password was verified", "local_user", local, "err", err)
		var le *Error
		if errors.As(err, &le) {
			return Account{}, le
		}
		return Account{}, offlineError()
	}
	e.log.Info("account linked", "local_user", local)
	return e.Accounts([]string{local})[0], nil
}

// Relink binds local again after op when the account was not linked and
// op's directory step took the user's password (a sync's verify_password,
// a change's change_password): the directory links the Mac to the user on
// that proof, so the account is linked now.
func (e *Engine) Relink(ctx context.Context, local string, op *Operation) {
	if op == nil || e.IsLinked(local) {
		return
	}
	for _, s := range op.Steps {
		if s.Name == StepDirectory && s.State == StepDone {
			if err := e.Bind(ctx, local); err != nil {
				e.log.Warn("account not bound after its password was verified", "local_user", local, "err", err)
			}
			return
		}
	}
}
