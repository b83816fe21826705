package directory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// builtin is the directory's own store as a source.Source: argon2id
// hashes, the policy set with `policy set`, history, and lockout. It keeps
// its part of each user in the users table (the hash, must-change, the
// count of wrong passwords and the lock) beside the hub's part (the
// password version, TOTP, the other failure counts), and writes in the
// hub's transactions, so that a change and its pushes commit together
// (Hooks.Commit runs inside the transaction, reached through the context).
type builtin struct{ s *Server }

var _ source.Source = builtin{}

// Info implements source.Source.
func (b builtin) Info() source.Info {
	return source.Info{Kind: "builtin", Name: "Lockstep's own store", UserAttr: "name", ManagesUsers: true, External: false, ManagesPolicy: true}
}

// txKey carries the transaction a built-in write runs in to the hub's
// Commit hook, which then writes in it too (see Server.inTx).
type txKey struct{}

type txCtx struct {
	tx  store.Tx
	out *outbox
}

// stamp identifies a password hash without revealing it: every set makes a
// new salt, so a new stamp.
func stamp(hash string) string {
	if hash == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(hash))
	return hex.EncodeToString(sum[:8])
}

// account is the source's view of a user row.
func (b builtin) account(u store.User) source.Account {
	a := source.Account{User: u.Name, DisplayName: u.DisplayName, Stamp: stamp(u.PasswordHash), ChangedAt: u.PasswordChangedAt,
		MustChange: u.MustChange, Email: u.Email}
	if exp, ok := b.s.expiry(u); ok {
		a.ExpiresAt = &exp
	}
	if b.s.locked(u) {
		until := u.LockedUntil
		a.Locked, a.LockedUntil = true, &until
	}
	return a
}

func (b builtin) load(ctx context.Context, name string) (store.User, error) {
	var u store.User
	err := b.s.st.View(ctx, func(tx store.Tx) error {
		var err error
		u, err = tx.User(ctx, name)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return u, source.ErrUnknownUser
	}
	return u, err
}

// Verify implements source.Source. A stranger's failures are the hub's to
// count (they must not lock the user's own Macs); a locked account costs a
// stranger the same argon2id work as any other, so that the lock tells it
// nothing.
func (b builtin) Verify(ctx context.Context, name string, pw []byte, at source.Attempt) (source.Account, error) {
	u, ok, rehash, err := b.check(ctx, name, pw, at)
	if err != nil {
		return source.Account{}, err
	}
	if !ok {
		return source.Account{}, b.failed(ctx, name, at)
	}
	var newHash string
	if rehash {
		if newHash, err = b.s.hash.Hash(ctx, pw); err != nil {
			b.s.log.Error("password not rehashed", "user", name, "err", err)
			newHash = ""
		}
	}
	var cur store.User
	var locked bool
	err = b.s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		if cur, err = tx.User(ctx, name); err != nil {
			return err
		}
		// The lock is decided with the outcome: one that came while this
		// check waited for argon2 wins.
		if locked = b.s.locked(cur); locked {
			return nil
		}
		changed := cur.FailedCount != 0
		cur.FailedCount, cur.FailedWindowStart = 0, time.Time{}
		if newHash != "" && cur.PasswordHash == u.PasswordHash {
			cur.PasswordHash, changed = newHash, true
			// Stronger parameters are not a new password: the recorded
			// stamp follows the new hash.
			if sa, err := tx.SourceAccount(ctx, name); err == nil && sa.Stamp == stamp(u.PasswordHash) {
				sa.Stamp = stamp(newHash)
				if err := tx.PutSourceAccount(ctx, sa); err != nil {
					return err
				}
			}
		}
		if !changed {
			return nil
		}
		return tx.UpdateUser(ctx, cur)
	})
	if errors.Is(err, store.ErrNotFound) {
		return source.Account{}, source.ErrUnknownUser // deleted meanwhile
	}
	if err != nil {
		return source.Account{}, err
	}
	if locked {
		return b.account(cur), &source.LockedError{Account: b.account(cur)}
	}
	return b.account(cur), nil
}

// check verifies pw against the stored hash: ok false for a wrong one, an
// error for an unknown user or a locked account.
func (b builtin) check(ctx context.Context, name string, pw []byte, at source.Attempt) (store.User, bool, bool, error) {
	u, err := b.load(ctx, name)
	if errors.Is(err, source.ErrUnknownUser) || (err == nil && at.Stranger && b.s.locked(u)) {
		if derr := b.s.hash.VerifyDummy(ctx, pw); derr != nil {
			return u, false, false, derr
		}
		if err != nil {
			return u, false, false, err
		}
		return u, false, false, &source.LockedError{Account: b.account(u)}
	}
	if err != nil {
		return u, false, false, err
	}
	if b.s.locked(u) {
		return u, false, false, &source.LockedError{Account: b.account(u)}
	}
	ok, rehash, err := b.s.hash.Verify(ctx, u.PasswordHash, pw)
	return u, ok, rehash, err
}

// failed counts a wrong password from one of the user's own devices (a
// stranger's is the hub's to count) and locks the account at the
// threshold.
func (b builtin) failed(ctx context.Context, name string, at source.Attempt) error {
	if at.Stranger {
		return source.ErrWrongPassword
	}
	var lockedNow *store.User
	err := b.s.st.Update(ctx, func(tx store.Tx) error {
		lockedNow = nil
		u, err := tx.User(ctx, name)
		if err != nil {
			return err
		}
		now := b.s.now()
		if u.FailedWindowStart.IsZero() || now.Sub(u.FailedWindowStart) > b.s.cfg.Lockout.Window {
			u.FailedCount, u.FailedWindowStart = 0, now
		}
		u.FailedCount++
		if u.FailedCount >= b.s.cfg.Lockout.Threshold && !b.s.locked(u) {
			u.LockedUntil = now.Add(b.s.cfg.Lockout.Duration)
			u.FailedCount, u.FailedWindowStart = 0, time.Time{}
			u.MFAFailedCount, u.MFAFailedWindowStart = 0, time.Time{}
			lockedNow = &u
		}
		return tx.UpdateUser(ctx, u)
	})
	if errors.Is(err, store.ErrNotFound) {
		return source.ErrUnknownUser
	}
	if err != nil {
		return err
	}
	if lockedNow != nil {
		return &source.LockedError{Account: b.account(*lockedNow)}
	}
	return source.ErrWrongPassword
}

// Change implements source.Source.
func (b builtin) Change(ctx context.Context, name string, current, next []byte, at source.Attempt, h source.Hooks) (source.Account, error) {
	u, ok, _, err := b.check(ctx, name, current, at)
	if err != nil {
		return source.Account{}, err
	}
	if !ok {
		return source.Account{}, b.failed(ctx, name, at)
	}
	before := b.account(u)
	if h.Verified != nil {
		if err := h.Verified(ctx, before); err != nil {
			return before, err
		}
	}
	vs, err := b.s.checkNew(ctx, name, u.PasswordHash, next)
	if err != nil {
		return before, err
	}
	if len(vs) > 0 {
		return before, &source.PolicyError{Violations: vs}
	}
	return b.set(ctx, name, next, false, false, u.PasswordHash, h)
}

// set stores a new password (in a transaction that also runs h.Commit).
// expect, when not empty, is the hash the password must still have: a
// change made meanwhile refuses this one.
func (b builtin) set(ctx context.Context, name string, pw []byte, temporary, unlock bool, expect string, h source.Hooks) (source.Account, error) {
	hash, err := b.s.hash.Hash(ctx, pw)
	if err != nil {
		return source.Account{}, err
	}
	var res source.Account
	var refused error
	err = b.s.update(ctx, func(tx store.Tx, out *outbox) error {
		refused = nil
		cur, err := tx.User(ctx, name)
		if err != nil {
			return err
		}
		if expect != "" {
			switch {
			case b.s.locked(cur):
				refused = &source.LockedError{Account: b.account(cur)}
				return nil
			case cur.PasswordHash != expect:
				refused = errChangedMeanwhile
				return nil
			}
		}
		cur.PasswordHash = hash
		cur.PasswordChangedAt = out.now
		cur.MustChange = temporary
		cur.FailedCount, cur.FailedWindowStart = 0, time.Time{}
		if unlock {
			cur.LockedUntil = time.Time{}
		}
		if err := tx.UpdateUser(ctx, cur); err != nil {
			return err
		}
		if err := tx.AddPasswordHistory(ctx, name, hash, out.now, maxHistory); err != nil {
			return err
		}
		res = b.account(cur)
		if h.Commit != nil {
			return h.Commit(context.WithValue(ctx, txKey{}, txCtx{tx: tx, out: out}), res)
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return source.Account{}, source.ErrUnknownUser
	}
	if err != nil {
		return source.Account{}, err
	}
	if refused != nil {
		return source.Account{}, refused
	}
	return res, nil
}

// errChangedMeanwhile refuses a change whose current password was
// replaced while it was checked.
var errChangedMeanwhile = protocol.Errorf(protocol.CodeWrongPassword, "The password changed meanwhile; enter the current one again.")

// Reset implements source.Source. The policy applies, history included;
// a reset also ends a lockout (the user has a new password to try).
func (b builtin) Reset(ctx context.Context, name string, pw []byte, temporary bool, h source.Hooks) (source.Account, error) {
	u, err := b.load(ctx, name)
	if err != nil {
		return source.Account{}, err
	}
	vs, err := b.s.checkNew(ctx, name, u.PasswordHash, pw)
	if err != nil {
		return source.Account{}, err
	}
	if len(vs) > 0 {
		return source.Account{}, &source.PolicyError{Violations: vs}
	}
	return b.set(ctx, name, pw, temporary, true, "", h)
}

// Unlock implements source.Source: it clears the lock and the counts of
// wrong passwords (the hub clears its own counts in h.Commit).
func (b builtin) Unlock(ctx context.Context, name string, h source.Hooks) (source.Account, error) {
	var res source.Account
	err := b.s.update(ctx, func(tx store.Tx, out *outbox) error {
		u, err := tx.User(ctx, name)
		if err != nil {
			return err
		}
		u.LockedUntil, u.FailedCount, u.FailedWindowStart = time.Time{}, 0, time.Time{}
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		res = b.account(u)
		if h.Commit != nil {
			return h.Commit(context.WithValue(ctx, txKey{}, txCtx{tx: tx, out: out}), res)
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return source.Account{}, source.ErrUnknownUser
	}
	return res, err
}

// Account implements source.Source.
func (b builtin) Account(ctx context.Context, name string) (source.Account, error) {
	if tc, ok := ctx.Value(txKey{}).(txCtx); ok {
		u, err := tc.tx.User(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return source.Account{}, source.ErrUnknownUser
		}
		return b.account(u), err
	}
	u, err := b.load(ctx, name)
	if err != nil {
		return source.Account{}, err
	}
	return b.account(u), nil
}

// Accounts implements source.Source.
func (b builtin) Accounts(ctx context.Context) ([]source.Account, error) {
	var us []store.User
	if err := b.s.st.View(ctx, func(tx store.Tx) error {
		var err error
		us, err = tx.Users(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	out := make([]source.Account, 0, len(us))
	for _, u := range us {
		out = append(out, b.account(u))
	}
	return out, nil
}

// Policy implements source.Source: the policy set with `policy set`.
func (b builtin) Policy(context.Context) (source.Policy, error) {
	return source.Policy{Rules: *b.s.policy.Load(), LockoutThreshold: b.s.cfg.Lockout.Threshold,
		LockoutDuration: b.s.cfg.Lockout.Duration}, nil
}

// Watch implements source.Source: nobody but this directory writes to its
// store (replicas sharing PostgreSQL announce their pushes through the
// change feed), so there is nothing to report.
func (b builtin) Watch(ctx context.Context, _ []byte, _ func(source.Event)) error {
	<-ctx.Done()
	return ctx.Err()
}

// checkNew applies the policy to a new password: the local rules and the
// history (the current password and the previous ones).
func (s *Server) checkNew(ctx context.Context, user string, current string, pw []byte) ([]protocol.Violation, error) {
	pol := s.Policy()
	vs := pol.Check(user, pw)
	if pol.HistoryCount == 0 {
		return vs, nil
	}
	hashes := []string{}
	if current != "" {
		hashes = append(hashes, current)
	}
	var hist []string
	if err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		hist, err = tx.PasswordHistory(ctx, user, pol.HistoryCount)
		return err
	}); err != nil {
		return nil, err
	}
	for _, h := range hist {
		if len(hashes) >= pol.HistoryCount {
			break
		}
		if h != current {
			hashes = append(hashes, h)
		}
	}
	for _, h := range hashes {
		ok, _, err := s.hash.Verify(ctx, h, pw)
		if err != nil {
			return nil, err
		}
		if ok {
			return append(vs, pol.HistoryViolation()), nil
		}
	}
	return vs, nil
}
