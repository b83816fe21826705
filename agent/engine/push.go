package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
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
		return e.forUser(p.User, func(r *record) *Notice {
			if p.PasswordVersion <= r.SyncedVersion || e.runningFor(r.LocalUser, p.PasswordVersion) {
				return nil // this Mac already holds it, or is setting it
			}
			d := e.dirState(r)
			d.PasswordVersion = max(d.PasswordVersion, p.PasswordVersion)
			d.MustChange = p.Temporary
			d.PasswordChangedAt = p.At
			r.SyncNeeded = true
			r.Reason = T(codes.ReasonReset)
			n := &Notice{Kind: NoticeReset, ID: resetID(d.PasswordVersion)}
			if p.Temporary {
				r.Reason = T(codes.ReasonResetTemporary)
				n.Params = map[string]string{"temporary": "true"}
			}
			e.markBehind(r, e.opt.Now())
			return n
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
		return e.forUser(p.User, func(r *record) *Notice {
			d := e.dirState(r)
			d.Locked, d.LockedUntil = true, lockEnd(&p.Until)
			return lockedNotice(p.Until)
		})
	case protocol.TypeAccountUnlocked:
		var p protocol.AccountUnlocked
		if err := env.Decode(&p); err != nil {
			return err
		}
		return e.forUser(p.User, func(r *record) *Notice {
			d := e.dirState(r)
			if !d.Locked {
				return nil
			}
			d.Locked, d.LockedUntil = false, nil
			return &Notice{Kind: NoticeUnlocked, ID: "unlocked-" + e.opt.Now().UTC().Format(time.RFC3339Nano)}
		})
	case protocol.TypeExpiryApproaching:
		var p protocol.ExpiryApproaching
		if err := env.Decode(&p); err != nil {
			return err
		}
		return e.forUser(p.User, func(r *record) *Notice {
			d := e.dirState(r)
			exp := p.ExpiresAt
			d.ExpiresAt = &exp
			today := e.opt.Now().Local().Format("2006-01-02")
			if r.ExpiryNotice == today {
				return nil
			}
			r.ExpiryNotice = today
			return expiryNotice(today, daysUntil(e.opt.Now(), exp))
		})
	case protocol.TypeMFAEnrollment:
		var p protocol.MFAEnrollment
		if err := env.Decode(&p); err != nil {
			return err
		}
		return e.forUser(p.User, func(r *record) *Notice {
			d := e.dirState(r)
			d.MFA = p.MFA
			if !p.Required || p.Until == nil {
				d.MFAEnrollBy = nil
				return nil
			}
			until := p.Until.UTC()
			d.MFAEnrollBy = &until
			return mfaEnrollNotice(until)
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
// sends the notice fn returns (nil for none).
func (e *Engine) forUser(dirUser string, fn func(r *record) *Notice) error {
	var notices []*Notice
	e.mu.Lock()
	for _, r := range e.accounts {
		if r.DirectoryUser != dirUser {
			continue
		}
		if n := fn(r); n != nil {
			n.LocalUser = r.LocalUser
			notices = append(notices, n)
		}
	}
	err := e.saveLocked()
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("saving account state: %w", err)
	}
	e.opt.Emit(Event{Type: EventStatus})
	for _, n := range notices {
		e.send(n)
	}
	return nil
}

func resetID(version int64) string { return "reset-v" + strconv.FormatInt(version, 10) }

// lockedNotice tells of a lock announced to end at until (a lock without
// an end says nothing of one; its ID still names that lock).
func lockedNotice(until time.Time) *Notice {
	u := until.UTC().Format(time.RFC3339)
	n := &Notice{Kind: NoticeLocked, ID: "locked-" + u}
	if lockEnd(&until) != nil {
		n.Params = map[string]string{"until": u}
	}
	return n
}

// mfaEnrollNotice asks the user to set up an authenticator by until; it
// carries no secret (none exists until the user begins the enrolment).
func mfaEnrollNotice(until time.Time) *Notice {
	u := until.UTC().Format(time.RFC3339)
	return &Notice{Kind: NoticeMFAEnroll, ID: "mfa-enroll-" + u, Params: map[string]string{"until": u}}
}

func expiryNotice(day string, days int) *Notice {
	return &Notice{Kind: NoticeExpiry, ID: "expiry-" + day, Params: map[string]string{"days": strconv.Itoa(days)}}
}

// Standing returns the notices that still stand for local: a reset the Mac
// has not synced yet, a lock, an approaching expiry. A watcher that comes
// (or comes back) is told them, with the IDs they were first sent with, so
// a user who logs in after a reset hears of it once.
func (e *Engine) Standing(local string) []Notice {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.accounts[local]
	if !ok || r.Dir == nil {
		return nil
	}
	a := e.viewLocked(r)
	var n *Notice
	switch a.State {
	case StateSyncNeeded:
		switch r.Reason.Code {
		case codes.ReasonReset, codes.ReasonChangedElsewhere:
			n = &Notice{Kind: NoticeReset, ID: resetID(r.Dir.PasswordVersion)}
		case codes.ReasonResetTemporary:
			n = &Notice{Kind: NoticeReset, ID: resetID(r.Dir.PasswordVersion), Params: map[string]string{"temporary": "true"}}
		}
	case StateLocked:
		if a.LockedUntil != nil {
			n = lockedNotice(*a.LockedUntil)
		}
	case StateExpiring:
		n = expiryNotice(e.opt.Now().Local().Format("2006-01-02"), *a.DaysLeft)
	case StateMFAEnroll:
		n = mfaEnrollNotice(*a.MFAEnrollBy)
	}
	if n == nil {
		return nil
	}
	n.LocalUser, n.At = local, e.opt.Now().UTC()
	return []Notice{*n}
}

func (e *Engine) send(n *Notice) {
	n.At = e.opt.Now().UTC()
	e.log.Info("notice", "kind", n.Kind, "local_user", n.LocalUser)
	e.opt.Emit(Event{Type: EventNotice, Notice: n})
}

// lockEnd is when a lock ends, or nil when only an administrator ends it:
// a directory that locks until unlocked (Active Directory with a lockout
// duration of "never") sends the largest time it can, 9999-12-31.
func lockEnd(t *time.Time) *time.Time {
	if t == nil || t.IsZero() || t.Year() >= 9999 {
		return nil
	}
	u := *t
	return &u
}
