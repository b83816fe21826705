package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// How the hub turns what a source says into pushes, once per device.
//
// Every account the hub hears of (a verification, a change, a reset, a
// source's report of a change made anywhere) goes through observe, in a
// transaction, against what the hub recorded (store.SourceAccount): a new
// password stamp is a new password version, pushed as a reset to the
// user's devices (but the one that made the change); a lock or an unlock
// the devices were not told of is pushed. Because the comparison and the
// record are one serializable transaction, replicas sharing a database
// that hear of the same change (each has a watcher on AD) push it once:
// the second finds the stamp recorded. A change through Lockstep on a
// remote source first records an intent, so that the source's report of
// it, which can come before the change's own commit, is not pushed back as
// a change made elsewhere.

// cause says why observe runs.
type cause struct {
	// set is a password Lockstep set (a change or an administrator's
	// reset): a new stamp is a new version even without an earlier one.
	// Otherwise a stamp counts only against one recorded before (the first
	// one seen is the baseline).
	set bool
	// own is a change a device made through Lockstep: device is not told
	// (it knows), and the intent the change recorded ends.
	own    bool
	device string
	// watched is a source's report of a change made anywhere.
	watched bool
}

// indefinite is the lock end pushed for a lock an administrator must end
// (protocol.AccountLocked needs a time).
var indefinite = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// observe records acct and stores the pushes it calls for; it returns the
// account's wire state. The user's row must exist (see ensure).
func (s *Server) observe(ctx context.Context, tx store.Tx, out *outbox, acct source.Account, c cause) (protocol.AccountState, error) {
	u, err := tx.User(ctx, acct.User)
	if err != nil {
		return protocol.AccountState{}, err
	}
	sa, err := tx.SourceAccount(ctx, acct.User)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return protocol.AccountState{}, err
	}
	sa.User = acct.User
	now := out.now
	if c.watched && sa.ChangingUntil.After(now) && acct.Stamp != sa.Stamp {
		// A change through Lockstep is in flight for this user: its own
		// commit records it. (If it never commits, the intent expires and
		// a later report, or the recheck, records it as a change.)
		s.recheckAt(acct.User, sa.ChangingUntil)
		return s.accountState(u, sa), nil
	}
	pwChanged := acct.Stamp != sa.Stamp && (c.set || sa.Stamp != "")
	mustNow := acct.MustChange && !u.MustChange && !c.own
	if pwChanged || mustNow {
		u.PasswordVersion++
		u.PasswordChangedAt = acct.ChangedAt
		if u.PasswordChangedAt.IsZero() {
			u.PasswordChangedAt = now
		}
		u.MustChange = acct.MustChange
		if err := out.toUser(ctx, tx, u.Name, c.device, protocol.TypePasswordReset, protocol.PasswordReset{User: u.Name,
			Temporary: acct.MustChange, PasswordVersion: u.PasswordVersion, At: now}); err != nil {
			return protocol.AccountState{}, err
		}
		if c.watched {
			if err := (actor{kind: "system"}).audit(ctx, tx, now, "password_changed_elsewhere", u.Name, map[string]string{
				"password_version": fmt.Sprint(u.PasswordVersion), "temporary": fmt.Sprint(acct.MustChange), "source": s.src.Info().Kind}); err != nil {
				return protocol.AccountState{}, err
			}
			s.log.Info("password changed in the directory", "user", u.Name, "temporary", acct.MustChange, "password_version", u.PasswordVersion)
		}
	} else {
		u.MustChange = acct.MustChange
	}
	if acct.DisplayName != "" && len(acct.DisplayName) <= protocol.MaxNameLen {
		u.DisplayName = acct.DisplayName
	}
	if acct.ChangedAt.After(u.PasswordChangedAt) {
		u.PasswordChangedAt = acct.ChangedAt
	}
	// The lock: the source's, or the hub's own (wrong second factors).
	locked, until := acct.Locked, time.Time{}
	if acct.LockedUntil != nil {
		until = *acct.LockedUntil
	}
	if s.locked(u) && (!locked || (!until.IsZero() && u.LockedUntil.After(until))) {
		locked, until = true, u.LockedUntil
	}
	announced := sa.Locked && (sa.LockedUntil.IsZero() || sa.LockedUntil.After(now))
	switch {
	case locked && (!announced || !sa.LockedUntil.Equal(until)):
		push := until
		if push.IsZero() {
			push = indefinite
		}
		if err := out.toUser(ctx, tx, u.Name, "", protocol.TypeAccountLocked, protocol.AccountLocked{User: u.Name, Until: push}); err != nil {
			return protocol.AccountState{}, err
		}
		if err := (actor{kind: "system"}).audit(ctx, tx, now, "account_locked", u.Name, map[string]string{"until": push.Format(time.RFC3339),
			"source": s.src.Info().Kind}); err != nil {
			return protocol.AccountState{}, err
		}
		s.log.Info("account locked", "user", u.Name, "until", push)
	case !locked && announced:
		if err := out.toUser(ctx, tx, u.Name, "", protocol.TypeAccountUnlocked, protocol.AccountUnlocked{User: u.Name}); err != nil {
			return protocol.AccountState{}, err
		}
	}
	sa.Locked, sa.LockedUntil = locked, until
	sa.Stamp = acct.Stamp
	if c.own && s.src.Info().External {
		sa.ChangingUntil, sa.ChangingDevice, sa.ChangingKey, sa.BeforeStamp = time.Time{}, "", "", ""
	}
	if err := tx.UpdateUser(ctx, u); err != nil {
		return protocol.AccountState{}, err
	}
	if err := tx.PutSourceAccount(ctx, sa); err != nil {
		return protocol.AccountState{}, err
	}
	return s.accountState(u, sa), nil
}

// inTx runs fn in the transaction ctx carries (a built-in write's own), or
// in a new one.
func (s *Server) inTx(ctx context.Context, fn func(store.Tx, *outbox) error) error {
	if tc, ok := ctx.Value(txKey{}).(txCtx); ok {
		return fn(tc.tx, tc.out)
	}
	return s.update(ctx, fn)
}

// sourceAccountIn is what the hub last knew of the source's account of
// name, inside tx: the built-in store's row itself, or, for a remote
// source (which the hub never asks from inside a transaction), the state
// it recorded.
func (s *Server) sourceAccountIn(ctx context.Context, tx store.Tx, out *outbox, name string) (source.Account, error) {
	u, err := tx.User(ctx, name)
	if err != nil {
		return source.Account{}, err
	}
	if b, ok := s.src.(builtin); ok {
		return b.account(u), nil
	}
	sa, err := tx.SourceAccount(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return source.Account{}, err
	}
	a := source.Account{User: name, DisplayName: u.DisplayName, Stamp: sa.Stamp, ChangedAt: u.PasswordChangedAt, MustChange: u.MustChange,
		Locked: sa.Locked && (sa.LockedUntil.IsZero() || sa.LockedUntil.After(out.now))}
	if a.Locked && !sa.LockedUntil.IsZero() {
		until := sa.LockedUntil
		a.LockedUntil = &until
	}
	return a, nil
}

// ensure makes the hub's record of a user the source holds (a remote
// source's users are created in its own tools), with the account as its
// baseline: version 1, nothing pushed.
func (s *Server) ensure(ctx context.Context, acct source.Account) *protocol.Error {
	if acct.User == "" || len(acct.User) > protocol.MaxNameLen {
		return errWrongPassword
	}
	var exists bool
	if err := s.st.View(ctx, func(tx store.Tx) error {
		_, err := tx.User(ctx, acct.User)
		exists = err == nil
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}); err != nil {
		return s.internalError("user not read", err, "user", acct.User)
	}
	if exists {
		return nil
	}
	err := s.update(ctx, func(tx store.Tx, out *outbox) error {
		changed := acct.ChangedAt
		if changed.IsZero() {
			changed = out.now
		}
		u := store.User{Name: acct.User, DisplayName: acct.DisplayName, PasswordVersion: 1, PasswordChangedAt: changed,
			MustChange: acct.MustChange, CreatedAt: out.now}
		if len(u.DisplayName) > protocol.MaxNameLen {
			u.DisplayName = ""
		}
		if err := tx.CreateUser(ctx, u); errors.Is(err, store.ErrExists) {
			return nil // another request or replica made it
		} else if err != nil {
			return err
		}
		sa := store.SourceAccount{User: acct.User, Stamp: acct.Stamp, Locked: acct.Locked}
		if acct.LockedUntil != nil {
			sa.LockedUntil = *acct.LockedUntil
		}
		if err := tx.PutSourceAccount(ctx, sa); err != nil {
			return err
		}
		return (actor{kind: "system"}).audit(ctx, tx, out.now, "user_seen", acct.User, map[string]string{"source": s.src.Info().Kind})
	})
	if err != nil {
		return s.internalError("user record not created", err, "user", acct.User)
	}
	return nil
}

// ensureName is ensure for a user named by an administrator: unknown_user
// when the source has no such user.
func (s *Server) ensureName(ctx context.Context, name string) *protocol.Error {
	if s.src.Info().ManagesUsers {
		return nil // the hub's records are the users
	}
	acct, err := s.src.Account(ctx, name)
	if errors.Is(err, source.ErrUnknownUser) {
		return protocol.Errorf(protocol.CodeUnknownUser, "no directory user %q", name)
	}
	if err != nil {
		return s.internalError("the directory could not read the user", err, "user", name)
	}
	s.notePolicy(acct)
	return s.ensure(ctx, acct)
}

// noteAccount records and pushes what a source said of an account outside
// a change (a lock a failed check revealed).
func (s *Server) noteAccount(ctx context.Context, acct source.Account) {
	if acct.User == "" {
		return
	}
	err := s.update(ctx, func(tx store.Tx, out *outbox) error {
		if _, err := tx.User(ctx, acct.User); errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		_, err := s.observe(ctx, tx, out, acct, cause{})
		return err
	})
	if err != nil {
		s.log.Error("account state not recorded", "user", acct.User, "err", err)
	}
}

// intend records that a change through Lockstep is in flight (a remote
// source only).
func (s *Server) intend(ctx context.Context, user, device, key, before string) error {
	return s.update(ctx, func(tx store.Tx, out *outbox) error {
		sa, err := tx.SourceAccount(ctx, user)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if errors.Is(err, store.ErrNotFound) {
			sa = store.SourceAccount{User: user, Stamp: before}
		}
		sa.ChangingUntil, sa.ChangingDevice, sa.ChangingKey, sa.BeforeStamp = out.now.Add(intentTTL), device, key, before
		return tx.PutSourceAccount(ctx, sa)
	})
}

// clearIntent ends an intent a refused change recorded.
func (s *Server) clearIntent(ctx context.Context, user, device, key string) {
	err := s.update(ctx, func(tx store.Tx, out *outbox) error {
		sa, err := tx.SourceAccount(ctx, user)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil || sa.ChangingDevice != device || sa.ChangingKey != key {
			return err
		}
		sa.ChangingUntil, sa.ChangingDevice, sa.ChangingKey, sa.BeforeStamp = time.Time{}, "", "", ""
		return tx.PutSourceAccount(ctx, sa)
	})
	if err != nil {
		s.log.Error("change intent not cleared", "user", user, "err", err)
	}
}

// settleRetry answers a retried change whose first attempt reached a
// remote source but whose outcome was never recorded (the directory
// stopped between the two): when the intent of that attempt (same device,
// same idempotency key) is there and the source's stamp moved since, the
// change was made, and is recorded now without asking the source again
// (the current password would no longer be right).
func (s *Server) settleRetry(ctx context.Context, a actor, user, key string, h source.Hooks) (protocol.AccountState, bool, *protocol.Error) {
	var sa store.SourceAccount
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		sa, err = tx.SourceAccount(ctx, user)
		return err
	})
	if err != nil || sa.ChangingDevice != a.device || sa.ChangingKey != key || key == "" {
		return protocol.AccountState{}, false, nil
	}
	acct, err := s.src.Account(ctx, user)
	if err != nil || acct.Stamp == sa.BeforeStamp {
		return protocol.AccountState{}, false, nil
	}
	s.log.Info("retried change found made", "user", user, "device_id", a.device)
	var st protocol.AccountState
	err = s.update(ctx, func(tx store.Tx, out *outbox) error {
		return h.Commit(context.WithValue(ctx, txKey{}, txCtx{tx: tx, out: out}), acct)
	})
	if err != nil {
		return st, true, s.internalError("retried change not recorded", err, "user", user)
	}
	v, _ := s.stateNow(ctx, user)
	return v, true, nil
}

// stateNow reads a user's wire state.
func (s *Server) stateNow(ctx context.Context, user string) (protocol.AccountState, error) {
	var st protocol.AccountState
	err := s.st.View(ctx, func(tx store.Tx) error {
		u, err := tx.User(ctx, user)
		if err != nil {
			return err
		}
		sa, err := tx.SourceAccount(ctx, user)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		st = s.accountState(u, sa)
		return nil
	})
	return st, err
}

// onSourceEvent acts on a source's report.
func (s *Server) onSourceEvent(ev source.Event) {
	ctx := s.ctx
	if ev.Checkpoint != nil {
		// Every event before it was handled (fn runs in order): the next
		// watch may start from here.
		if err := s.st.Update(ctx, func(tx store.Tx) error {
			return tx.PutSetting(ctx, s.checkpointSetting(), ev.Checkpoint)
		}); err != nil && ctx.Err() == nil {
			s.log.Warn("directory watch checkpoint not stored", "err", err)
		}
		return
	}
	if ev.Policy {
		s.sourcePolicyChanged(ctx)
		return
	}
	if ev.User == "" {
		return
	}
	s.notePolicy(ev.Account)
	err := s.update(ctx, func(tx store.Tx, out *outbox) error {
		if _, err := tx.User(ctx, ev.User); errors.Is(err, store.ErrNotFound) {
			return nil // no device knows this user: nothing to tell
		} else if err != nil {
			return err
		}
		_, err := s.observe(ctx, tx, out, ev.Account, cause{watched: true})
		return err
	})
	if err != nil && ctx.Err() == nil {
		s.log.Error("directory change not recorded", "user", ev.User, "err", err)
	}
	s.sourceEvents.Add(1)
}

// recheckAt reads a user from the source again once an intent that held
// back its report ended, in case the change it announced never committed.
func (s *Server) recheckAt(user string, at time.Time) {
	d := time.Until(at) + time.Second
	time.AfterFunc(d, func() {
		if s.closing.Load() {
			return
		}
		acct, err := s.src.Account(s.ctx, user)
		if err != nil {
			return
		}
		s.onSourceEvent(source.Event{User: user, Account: acct})
	})
}

// checkpointSetting names the setting that keeps where a source's watch
// can resume (OpenLDAP's sync cookie).
func (s *Server) checkpointSetting() string { return "source_checkpoint:" + s.src.Info().Kind }

// watchSource runs the source's watcher until the server stops, from the
// checkpoint it last reported.
func (s *Server) watchSource(ctx context.Context) {
	var from []byte
	if err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		from, err = tx.Setting(ctx, s.checkpointSetting())
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}); err != nil {
		s.log.Warn("directory watch checkpoint not read; starting from the beginning", "err", err)
		from = nil
	}
	err := s.src.Watch(ctx, from, s.onSourceEvent)
	if err != nil && ctx.Err() == nil {
		s.log.Error("directory watcher stopped", "err", err)
	}
}

// userPolicies holds, per user, the fine-grained policy a source reported
// (AD's msDS-ResultantPSO), for the checks and the policies sent to their
// Macs.
type userPolicies struct {
	mu sync.Mutex
	m  map[string]source.Policy
}

// notePolicy remembers a user's own policy (or that it has none).
func (s *Server) notePolicy(acct source.Account) {
	if acct.User == "" {
		return
	}
	s.upol.mu.Lock()
	defer s.upol.mu.Unlock()
	if acct.Policy == nil {
		delete(s.upol.m, acct.User)
		return
	}
	if s.upol.m == nil {
		s.upol.m = map[string]source.Policy{}
	}
	s.upol.m[acct.User] = *acct.Policy
}

// userPolicy is the rules a user's new password must meet.
func (s *Server) userPolicy(acct source.Account) protocol.Policy {
	if acct.Policy != nil {
		return s.withOwnRules(acct.Policy.Rules)
	}
	s.upol.mu.Lock()
	p, ok := s.upol.m[acct.User]
	s.upol.mu.Unlock()
	if ok {
		return s.withOwnRules(p.Rules)
	}
	return s.Policy()
}

// devicePolicy is the policy a device is sent: the default one, or the
// fine-grained one all its users share, with its users' name parts when
// the policy forbids them.
func (s *Server) devicePolicy(ctx context.Context, device string) protocol.Policy {
	base := s.Policy()
	if s.src.Info().ManagesPolicy {
		return base
	}
	var users []store.User
	_ = s.st.View(ctx, func(tx store.Tx) error {
		bs, err := tx.DeviceBindings(ctx, device)
		if err != nil {
			return err
		}
		for _, b := range bs {
			if u, err := tx.User(ctx, b.User); err == nil {
				users = append(users, u)
			}
		}
		return nil
	})
	if len(users) == 0 {
		return base
	}
	s.upol.mu.Lock()
	var shared *source.Policy
	same := true
	for i, u := range users {
		p, ok := s.upol.m[u.Name]
		switch {
		case i == 0 && ok:
			shared = &p
		case (shared == nil) != !ok, shared != nil && ok && shared.Name != p.Name:
			same = false
		}
	}
	s.upol.mu.Unlock()
	if same && shared != nil {
		base = s.withOwnRules(shared.Rules)
	}
	if base.DisallowNameParts {
		names, parts := make([]string, 0, len(users)), map[string][]string{}
		for _, u := range users {
			names = append(names, u.Name)
			parts[u.Name] = protocol.NameParts(u.DisplayName)
		}
		base.NameParts = protocol.EncodeNameParts(names, parts)
	}
	return base
}

// loadSourcePolicy publishes a remote source's default policy.
func (s *Server) loadSourcePolicy(ctx context.Context) error {
	p, err := s.src.Policy(ctx)
	if err != nil {
		return err
	}
	r := p.Rules
	s.srcRules.Store(&r)
	merged := s.withOwnRules(r)
	s.policy.Store(&merged)
	s.lockoutThreshold.Store(int64(p.LockoutThreshold))
	return nil
}

// sourcePolicyChanged reloads a remote source's policy and sends every
// device its own.
func (s *Server) sourcePolicyChanged(ctx context.Context) {
	if err := s.loadSourcePolicy(ctx); err != nil {
		s.log.Error("directory policy not reloaded", "err", err)
		return
	}
	// Users' fine-grained policies may have changed too.
	if accts, err := s.src.Accounts(ctx); err == nil {
		for _, a := range accts {
			s.notePolicy(a)
		}
	}
	var devs []store.Device
	if err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		devs, err = tx.Devices(ctx)
		return err
	}); err != nil {
		s.log.Error("devices not listed for a policy push", "err", err)
		return
	}
	for _, d := range devs {
		if !d.RevokedAt.IsZero() {
			continue
		}
		body, err := jsonMarshal(protocol.PolicyChanged{Policy: s.devicePolicy(ctx, d.ID)})
		if err != nil {
			continue
		}
		id := d.ID
		if err := s.update(ctx, func(tx store.Tx, out *outbox) error {
			return out.addRaw(ctx, tx, id, protocol.TypePolicyChanged, body)
		}); err != nil {
			s.log.Error("policy push not stored", "device_id", id, "err", err)
		}
	}
	s.log.Info("directory policy changed", "devices", len(devs))
}

// welcomeThreshold is the lockout threshold agents keep below.
func (s *Server) welcomeThreshold() int {
	if n := int(s.lockoutThreshold.Load()); n > 0 {
		return n
	}
	return s.cfg.Lockout.Threshold
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
