package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Link links this Mac to local's directory user. The directory links a
// device to a user once the user's password is given from it, so Link
// checks the password with the directory (verify_password, which counts
// towards lockout and so goes through the engine's own throttle), and then
// binds the account as at start. The Mac's places are not touched: the
// password is the directory's, which the Mac may not hold yet, and a wrong
// password on the Mac would count as a failed login there.
func (e *Engine) Link(ctx context.Context, local string, password protocol.Secret) (localapi.Account, error) {
	if password.Empty() {
		return localapi.Account{}, fieldError(localapi.CodeBadRequest, localapi.FieldPassword, "Enter your directory password.")
	}
	if _, err := e.opt.Mac.Accounts.Lookup(ctx, local); err != nil {
		if errors.Is(err, ErrNoSuchUser) {
			return localapi.Account{}, &localapi.Error{Code: localapi.CodeBadRequest, Message: fmt.Sprintf("There is no local account named %q.", local)}
		}
		return localapi.Account{}, &localapi.Error{Code: localapi.CodePlatform, Message: "Could not read the Mac account: " + err.Error()}
	}
	e.mu.Lock()
	r := e.recordLocked(local)
	dirUser, busy := r.DirectoryUser, e.running[local] != nil
	e.mu.Unlock()
	if busy {
		return localapi.Account{}, &localapi.Error{Code: localapi.CodeBusy, Message: "Another password operation is running for this account.", Hint: "Wait for it to finish."}
	}
	if !e.opt.Directory.Connected() {
		return localapi.Account{}, offlineError()
	}
	if wait, ok := e.throttle.allow(dirUser); !ok {
		return localapi.Account{}, throttledError(wait)
	}
	_, err := e.opt.Directory.VerifyPassword(ctx, dirUser, password)
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe) && pe.Code == protocol.CodeWrongPassword:
		e.throttle.fail(dirUser)
		e.log.Info("link refused", "local_user", local, "reason", pe.Code)
		return localapi.Account{}, fieldError(protocol.CodeWrongPassword, localapi.FieldPassword, "That is not your directory password.")
	case errors.As(err, &pe):
		return localapi.Account{}, e.apiError(pe, localapi.FieldPassword)
	case err != nil:
		return localapi.Account{}, offlineError()
	}
	e.throttle.success(dirUser)
	if err := e.Bind(ctx, local); err != nil {
		e.log.Warn("account not bound after its password was verified", "local_user", local, "err", err)
		var le *localapi.Error
		if errors.As(err, &le) {
			return localapi.Account{}, le
		}
		return localapi.Account{}, offlineError()
	}
	e.log.Info("account linked", "local_user", local)
	return e.Accounts([]string{local})[0], nil
}

// Relink binds local again after op when the account was not linked and
// op's directory step took the user's password (a sync's verify_password,
// a change's change_password): the directory links the Mac to the user on
// that proof, so the account is linked now.
func (e *Engine) Relink(ctx context.Context, local string, op *localapi.Operation) {
	if op == nil || e.IsLinked(local) {
		return
	}
	for _, s := range op.Steps {
		if s.Name == localapi.StepDirectory && s.State == localapi.StepDone {
			if err := e.Bind(ctx, local); err != nil {
				e.log.Warn("account not bound after its password was verified", "local_user", local, "err", err)
			}
			return
		}
	}
}
