package engine

import (
	"context"
	"fmt"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
)

// HandlePush applies one push from the directory. It is idempotent: the
// session re-delivers a push until it is acknowledged.
func (e *Engine) HandlePush(_ context.Context, env *protocol.Envelope) error {
	switch env.Type {
	case protocol.TypePasswordReset:
		var p protocol.PasswordReset
		if err := env.Decode(&p); err != nil {
			return err
		}
		return e.forUser(p.User, func(r *record) (string, string, string) {
			if p.PasswordVersion <= r.SyncedVersion || e.runningFor(r.LocalUser, p.PasswordVersion) {
				return "", "", "" // this Mac already holds it, or is setting it
			}
			d := e.dirState(r)
			d.PasswordVersion = max(d.PasswordVersion, p.PasswordVersion)
			d.MustChange = p.Temporary
			d.PasswordChangedAt = p.At
			r.SyncNeeded = true
			if p.Temporary {
				r.Reason = "An administrator gave you a temporary password. Sync your Mac with it, then choose a new password."
			} else {
				r.Reason = "Your password was reset in the directory. Sync your Mac with the new password."
			}
			e.markBehind(r, e.opt.Now())
			return localapi.NoticeReset, "Your password was reset", r.Reason
		})
	case protocol.TypePolicyChanged:
		var p protocol.PolicyChanged
		if err := env.Decode(&p); err != nil {
			return err
		}
		e.SetPolicy(p.Policy)
		return nil
	case protocol.TypeAccountLocked:
		var p protocol.AccountLocked
		if err := env.Decode(&p); err != nil {
			return err
		}
		return e.forUser(p.User, func(r *record) (string, string, string) {
			d := e.dirState(r)
			until := p.Until
			d.Locked, d.LockedUntil = true, &until
			return localapi.NoticeLocked, "Your account is locked",
				fmt.Sprintf("Too many failed sign-ins locked your directory account until %s.", until.Local().Format("15:04"))
		})
	case protocol.TypeAccountUnlocked:
		var p protocol.AccountUnlocked
		if err := env.Decode(&p); err != nil {
			return err
		}
		return e.forUser(p.User, func(r *record) (string, string, string) {
			d := e.dirState(r)
			if !d.Locked {
				return "", "", ""
			}
			d.Locked, d.LockedUntil = false, nil
			return localapi.NoticeUnlocked, "Your account is unlocked", "You can sign in and change your password again."
		})
	case protocol.TypeExpiryApproaching:
		var p protocol.ExpiryApproaching
		if err := env.Decode(&p); err != nil {
			return err
		}
		return e.forUser(p.User, func(r *record) (string, string, string) {
			d := e.dirState(r)
			exp := p.ExpiresAt
			d.ExpiresAt = &exp
			today := e.opt.Now().Local().Format("2006-01-02")
			if r.ExpiryNotice == today {
				return "", "", ""
			}
			r.ExpiryNotice = today
			return localapi.NoticeExpiry, "Password expiring", expiryText(daysUntil(e.opt.Now(), exp))
		})
	}
	e.log.Warn("push type not handled", "type", env.Type)
	return nil
}

// dirState returns r's directory state, creating it if a push comes first.
func (e *Engine) dirState(r *record) *protocol.AccountState {
	if r.Dir == nil {
		r.Dir = &protocol.AccountState{User: r.DirectoryUser}
	}
	return r.Dir
}

// forUser applies fn to every local account bound to the directory user and
// sends the notice fn returns (kind "" for none).
func (e *Engine) forUser(dirUser string, fn func(r *record) (kind, title, body string)) error {
	type notice struct{ kind, local, title, body string }
	var notices []notice
	e.mu.Lock()
	for _, r := range e.accounts {
		if r.DirectoryUser != dirUser {
			continue
		}
		if k, t, b := fn(r); k != "" {
			notices = append(notices, notice{k, r.LocalUser, t, b})
		}
	}
	err := e.saveLocked()
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("saving account state: %w", err)
	}
	e.opt.Emit(localapi.Event{Type: localapi.EventStatus})
	for _, n := range notices {
		e.notice(n.kind, n.local, n.title, n.body)
	}
	return nil
}

func (e *Engine) notice(kind, local, title, body string) {
	e.log.Info("notice", "kind", kind, "local_user", local)
	e.opt.Emit(localapi.Event{Type: localapi.EventNotice, Notice: &localapi.Notice{
		Kind: kind, LocalUser: local, Title: title, Body: body, At: e.opt.Now().UTC()}})
}
