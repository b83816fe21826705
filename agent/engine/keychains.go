package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// Getting a kept keychain back. After a forgotten-password sync the old
// login keychain sits aside, sealed by the password the user forgot; when
// they remember it, a recovery re-keys that keychain to the current Mac
// password and puts it back in the user's keychain search list, unlocked
// in their session, so its saved passwords work again. It never touches the
// account's password in any place, so it never leaves the account needing
// a sync: it ends done, failed (nothing changed), or incomplete (something
// changed; running it again observes what is done and finishes). Nothing is
// renamed or deleted.

var recoverSteps = []string{StepVerify, StepKeptRekey, StepSearchList}

// KeptKeychains lists local's kept keychains, newest first, and which ones a
// recovery put back.
func (e *Engine) KeptKeychains(ctx context.Context, local string) ([]KeptKeychain, error) {
	acct, err := e.lookupManaged(ctx, local)
	if err != nil {
		return nil, err
	}
	return e.listKept(acct)
}

// listKept lists acct's kept keychains, marks the recovered ones and records
// how many are left to recover (the tray offers a recovery while any is).
func (e *Engine) listKept(acct LocalAccount) ([]KeptKeychain, error) {
	kept, err := e.opt.Mac.Keychain.Kept(acct)
	if err != nil {
		return nil, &Error{Code: codes.Platform, Detail: err.Error()}
	}
	e.mu.Lock()
	r := e.recordLocked(acct.Name)
	left := 0
	for i := range kept {
		kept[i].Recovered = slices.Contains(r.Recovered, kept[i].Name)
		if !kept[i].Recovered {
			left++
		}
	}
	changed := r.KeptCount != left
	r.KeptCount = left
	if changed {
		if err := e.saveLocked(); err != nil {
			e.log.Error("account state not saved", "err", err)
		}
	}
	e.mu.Unlock()
	if changed {
		e.opt.Emit(Event{Type: EventStatus})
	}
	return kept, nil
}

// lookupManaged reads local's account and refuses one Lockstep leaves
// alone. A recovery needs no directory.
func (e *Engine) lookupManaged(ctx context.Context, local string) (LocalAccount, error) {
	acct, err := e.opt.Mac.Accounts.Lookup(ctx, local)
	if err != nil {
		if errors.Is(err, ErrNoSuchUser) {
			return acct, &Error{Code: codes.NoLocalUser, Params: map[string]string{"user": local}}
		}
		return acct, &Error{Code: codes.Platform, Detail: err.Error()}
	}
	if err := untouchable(acct); err != nil {
		return acct, err
	}
	return acct, nil
}

// RecoverKeychain puts the kept keychain req.Name back: it checks the
// current password on the Mac (the login keychain first, which costs no
// login), re-keys the kept keychain from req.Old to req.Current unless it
// already opens with the current password, and puts it in the user's
// search list, unlocked in the user's session.
func (e *Engine) RecoverKeychain(ctx context.Context, local string, req RecoverRequest, progress func(Step)) (*Operation, error) {
	switch {
	case req.Current.Empty():
		return nil, fieldError(codes.Missing, FieldCurrent)
	case req.Old.Empty():
		return nil, fieldError(codes.Missing, FieldOld)
	}
	acct, err := e.lookupManaged(ctx, local)
	if err != nil {
		return nil, err
	}
	kept, err := e.listKept(acct)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(kept, func(k KeptKeychain) bool { return k.Name == req.Name })
	if i < 0 {
		return nil, &Error{Code: codes.NoKeptKeychain, Params: map[string]string{"name": req.Name}}
	}
	k := kept[i]
	o, err := e.begin(local, OpKeychainRecover, recoverSteps, progress)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	o.ent.Keychain = k.Name
	e.mu.Unlock()
	kc := e.opt.Mac.Keychain

	err = o.step(StepVerify, func() (Text, error) { return e.verifyCurrentForRecover(ctx, acct, req) })
	if err == nil {
		err = o.step(StepKeptRekey, func() (Text, error) {
			opens, err := kc.OpensKept(ctx, acct, k.Name, req.Current)
			switch {
			case err != nil:
				return Text{}, err
			case opens:
				// A recovery stopped after its re-key: done already.
				return Text{}, skip{reasonDone, T(codes.StepKeptDone, "path", k.Path)}
			}
			o.mutated = true
			if err := kc.RekeyKept(ctx, acct, k.Name, req.Old, req.Current); err != nil {
				if errors.Is(err, ErrWrongPassword) {
					// set-keychain-password refused it before changing
					// anything.
					o.mutated = false
					return Text{}, &Error{Code: codes.Keychain, Field: FieldOld, Params: map[string]string{"which": "old"}}
				}
				return Text{}, err
			}
			return T(codes.StepKeptRekeyed, "path", k.Path), nil
		})
	}
	if err == nil {
		err = o.step(StepSearchList, func() (Text, error) {
			o.mutated = true
			added, err := kc.AddToSearchList(ctx, acct, k.Name)
			if err != nil {
				return Text{}, fmt.Errorf("putting %s back in the keychain list: %w", k.Path, err)
			}
			if err := kc.UnlockForUser(ctx, acct, k.Name, req.Current); err != nil {
				return Text{}, fmt.Errorf("unlocking %s in the user's session: %w", k.Path, err)
			}
			if !added {
				return T(codes.StepSearchListDone, "path", k.Path), nil
			}
			return T(codes.StepSearchListAdded, "path", k.Path), nil
		})
	}
	if err != nil {
		return o.finish(err, nil), nil
	}
	where := []string{"path", k.Path}
	if len(k.LocalItems) > 0 {
		where = append(where, "local_items", strings.Join(k.LocalItems, ","))
	}
	o.note(T(codes.NoteKeychainRecovered, where...))
	op := o.finish(nil, func(r *record) {
		if !slices.Contains(r.Recovered, k.Name) {
			r.Recovered = append(r.Recovered, k.Name)
		}
		r.KeptCount = max(0, r.KeptCount-1)
	})
	return op, nil
}

// verifyCurrentForRecover checks that the current password is the Mac's:
// it opens the login keychain (a keychain check, not a login), or, with no
// login keychain or one that does not take it, the account. A login
// keychain on another password than the account's is refused: recovering
// to a password the login keychain does not have would leave two keychains
// apart.
func (e *Engine) verifyCurrentForRecover(ctx context.Context, acct LocalAccount, req RecoverRequest) (Text, error) {
	mac := e.opt.Mac
	exists, err := mac.Keychain.Exists(acct)
	if err != nil {
		return Text{}, err
	}
	if exists {
		opens, err := mac.Keychain.Opens(ctx, acct, req.Current)
		if err != nil {
			return Text{}, err
		}
		if opens {
			return T(codes.StepRecoverCurrentOK), nil
		}
	}
	if err := verifyLocal(ctx, mac.Accounts, acct.Name, req.Current); err != nil {
		if errors.Is(err, ErrWrongPassword) {
			return Text{}, fieldError(codes.WrongLocal, FieldCurrent)
		}
		return Text{}, err
	}
	if exists {
		return Text{}, &Error{Code: codes.Keychain, Params: map[string]string{"which": "current"}}
	}
	return T(codes.StepRecoverCurrentOK), nil
}
