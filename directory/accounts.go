package directory

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// maxHistory is how many old hashes are kept, whatever the policy says,
// so that raising history_count takes effect with the passwords already
// known.
const maxHistory = 50

// outbox collects the pushes a transaction stores; they are delivered to
// live connections only after it commits.
type outbox struct {
	now   time.Time
	items []pending
}

func (o *outbox) addRaw(ctx context.Context, tx store.Tx, deviceID, typ string, body []byte) error {
	seq, err := tx.AppendPush(ctx, deviceID, typ, body, o.now)
	if err != nil {
		return err
	}
	o.items = append(o.items, pending{deviceID: deviceID, seq: seq, typ: typ, body: body})
	return nil
}

// toUser stores v as a push to every device bound to user except skip.
func (o *outbox) toUser(ctx context.Context, tx store.Tx, user, skip, typ string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", typ, err)
	}
	bs, err := tx.UserBindings(ctx, user)
	if err != nil {
		return err
	}
	for _, b := range bs {
		if b.DeviceID == skip {
			continue
		}
		if err := o.addRaw(ctx, tx, b.DeviceID, typ, body); err != nil {
			return err
		}
	}
	return nil
}

// update runs fn in a write transaction and delivers its pushes after the
// commit.
func (s *Server) update(ctx context.Context, fn func(store.Tx, *outbox) error) error {
	var out *outbox
	err := s.st.Update(ctx, func(tx store.Tx) error {
		out = &outbox{now: s.now()}
		return fn(tx, out)
	})
	if err == nil {
		s.hub.deliver(out.items)
	}
	return err
}

// actor says who caused an event, for the audit log.
type actor struct {
	kind   string // "device", "admin", "system"
	device string
	addr   string
}

func (a actor) audit(ctx context.Context, tx store.Tx, at time.Time, event, user string, detail map[string]string) error {
	return tx.Audit(ctx, store.AuditEvent{At: at, Event: event, Actor: a.kind, User: user, Device: a.device, Source: a.addr, Detail: detail})
}

// auditAsync records an event through the batcher.
func (s *Server) auditAsync(a actor, event, user string, detail map[string]string) {
	at := s.now()
	s.bg.add(func(ctx context.Context, tx store.Tx) error { return a.audit(ctx, tx, at, event, user, detail) })
}

// accountState is the wire view of a user.
func (s *Server) accountState(u store.User) protocol.AccountState {
	st := protocol.AccountState{
		User:              u.Name,
		DisplayName:       u.DisplayName,
		PasswordVersion:   u.PasswordVersion,
		PasswordChangedAt: u.PasswordChangedAt,
		MustChange:        u.MustChange,
		MFA:               u.TOTPSecret != nil,
	}
	if exp, ok := s.expiry(u); ok {
		st.ExpiresAt = &exp
	}
	if s.locked(u) {
		st.Locked = true
		until := u.LockedUntil
		st.LockedUntil = &until
	}
	return st
}

func (s *Server) expiry(u store.User) (time.Time, bool) {
	days := s.Policy().MaxAgeDays
	if days == 0 {
		return time.Time{}, false
	}
	return u.PasswordChangedAt.Add(time.Duration(days) * 24 * time.Hour), true
}

func (s *Server) locked(u store.User) bool {
	return !u.LockedUntil.IsZero() && s.now().Before(u.LockedUntil)
}

func lockedError(u store.User) *protocol.Error {
	until := u.LockedUntil
	return &protocol.Error{Code: protocol.CodeLocked, Message: "The account is locked after too many failed attempts.", LockedUntil: &until}
}

func internalError(err error) *protocol.Error {
	_ = err
	return protocol.Errorf(protocol.CodeInternal, "the directory could not complete the request; try again")
}

// loadUser reads a user outside any write.
func (s *Server) loadUser(ctx context.Context, name string) (store.User, *protocol.Error) {
	var u store.User
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		u, err = tx.User(ctx, name)
		return err
	})
	if err != nil {
		return u, s.userError("user not read", name, err)
	}
	return u, nil
}

// checkPassword rate-limits, refuses locked accounts and verifies pw; a
// wrong password counts towards lockout. It returns the user as read.
func (s *Server) checkPassword(ctx context.Context, a actor, name string, pw []byte) (store.User, bool, *protocol.Error) {
	if ok, wait := s.limits.allow(name, a.addr, s.now()); !ok {
		s.auditAsync(a, "rate_limited", name, nil)
		return store.User{}, false, &protocol.Error{Code: protocol.CodeRateLimited,
			Message: "Too many attempts; wait before trying again.", RetryAfter: retrySeconds(wait)}
	}
	u, perr := s.loadUser(ctx, name)
	if perr != nil {
		if perr.Code == protocol.CodeUnknownUser {
			s.auditAsync(a, "password_check_unknown_user", name, nil)
		}
		return u, false, perr
	}
	if s.locked(u) {
		s.auditAsync(a, "password_check_locked", name, nil)
		return u, false, lockedError(u)
	}
	ok, rehash, err := s.hash.Verify(ctx, u.PasswordHash, pw)
	if err != nil {
		s.log.Error("password not verified", "user", name, "err", err)
		return u, false, internalError(err)
	}
	if !ok {
		return u, false, s.recordFailure(ctx, a, name, "wrong_password")
	}
	return u, rehash, nil
}

// recordFailure counts a failed password or TOTP check and locks the
// account when the count reaches the threshold within the window.
func (s *Server) recordFailure(ctx context.Context, a actor, name, reason string) *protocol.Error {
	var lockedNow store.User
	err := s.update(ctx, func(tx store.Tx, out *outbox) error {
		lockedNow = store.User{}
		u, err := tx.User(ctx, name)
		if err != nil {
			return err
		}
		now := out.now
		if u.FailedWindowStart.IsZero() || now.Sub(u.FailedWindowStart) > s.cfg.Lockout.Window {
			u.FailedCount, u.FailedWindowStart = 0, now
		}
		u.FailedCount++
		if err := a.audit(ctx, tx, now, "auth_failed", name, map[string]string{"reason": reason, "failures": fmt.Sprint(u.FailedCount)}); err != nil {
			return err
		}
		if u.FailedCount >= s.cfg.Lockout.Threshold && !s.locked(u) {
			u.LockedUntil = now.Add(s.cfg.Lockout.Duration)
			u.FailedCount, u.FailedWindowStart = 0, time.Time{}
			lockedNow = u
			if err := a.audit(ctx, tx, now, "account_locked", name, map[string]string{"until": u.LockedUntil.Format(time.RFC3339)}); err != nil {
				return err
			}
			if err := out.toUser(ctx, tx, name, "", protocol.TypeAccountLocked, protocol.AccountLocked{User: name, Until: u.LockedUntil}); err != nil {
				return err
			}
		}
		return tx.UpdateUser(ctx, u)
	})
	if err != nil {
		s.log.Error("failure not recorded", "user", name, "err", err)
		return internalError(err)
	}
	if lockedNow.Name != "" {
		s.log.Info("account locked", "user", name, "until", lockedNow.LockedUntil)
		return lockedError(lockedNow)
	}
	if reason == "mfa_invalid" {
		return protocol.Errorf(protocol.CodeMFAInvalid, "The verification code is not valid.")
	}
	return protocol.Errorf(protocol.CodeWrongPassword, "The password is not correct.")
}

// verifyPassword answers verify_password.
func (s *Server) verifyPassword(ctx context.Context, a actor, req *protocol.VerifyPasswordRequest) (protocol.AccountState, *protocol.Error) {
	u, rehash, perr := s.checkPassword(ctx, a, req.User, req.Password)
	if perr != nil {
		return protocol.AccountState{}, perr
	}
	var newHash string
	if rehash {
		h, err := s.hash.Hash(ctx, req.Password)
		if err != nil {
			s.log.Error("password not rehashed", "user", u.Name, "err", err)
		}
		newHash = h
	}
	err := s.update(ctx, func(tx store.Tx, out *outbox) error {
		cur, err := tx.User(ctx, u.Name)
		if err != nil {
			return err
		}
		changed := false
		if cur.FailedCount != 0 {
			cur.FailedCount, cur.FailedWindowStart = 0, time.Time{}
			changed = true
		}
		if newHash != "" && cur.PasswordHash == u.PasswordHash {
			cur.PasswordHash = newHash
			changed = true
		}
		u = cur
		if err := a.audit(ctx, tx, out.now, "password_verified", u.Name, map[string]string{"rehashed": fmt.Sprint(newHash != "")}); err != nil {
			return err
		}
		if !changed {
			return nil
		}
		return tx.UpdateUser(ctx, cur)
	})
	if err != nil {
		s.log.Error("verification not recorded", "user", u.Name, "err", err)
		return protocol.AccountState{}, internalError(err)
	}
	return s.accountState(u), nil
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

func policyError(vs []protocol.Violation) *protocol.Error {
	return &protocol.Error{Code: protocol.CodePolicyViolation, Message: "The new password does not meet the password policy.", Violations: vs}
}

// changePassword answers change_password. commit runs inside the
// transaction that makes the change, to record the idempotent outcome
// atomically with it.
func (s *Server) changePassword(ctx context.Context, a actor, req *protocol.ChangePasswordRequest,
	commit func(context.Context, store.Tx, protocol.AccountState) error) (protocol.AccountState, *protocol.Error) {
	u, _, perr := s.checkPassword(ctx, a, req.User, req.Current)
	if perr != nil {
		return protocol.AccountState{}, perr
	}
	step := int64(0)
	if u.TOTPSecret != nil {
		if req.TOTP == "" {
			return protocol.AccountState{}, protocol.Errorf(protocol.CodeMFARequired, "This account needs a verification code from the authenticator app.")
		}
		secret, err := s.keys.open(u.Name, u.TOTPSecret)
		if err != nil {
			s.log.Error("totp secret not opened", "user", u.Name, "err", err)
			return protocol.AccountState{}, internalError(err)
		}
		st, ok := totpMatch(secret, req.TOTP, s.now())
		clear(secret)
		if !ok {
			return protocol.AccountState{}, s.recordFailure(ctx, a, u.Name, "mfa_invalid")
		}
		if st <= u.TOTPLastStep {
			s.auditAsync(a, "mfa_replayed", u.Name, nil)
			return protocol.AccountState{}, protocol.Errorf(protocol.CodeMFAReplayed, "This verification code was already used; wait for the next one.")
		}
		step = st
	}
	vs, err := s.checkNew(ctx, u.Name, u.PasswordHash, req.New)
	if err != nil {
		s.log.Error("policy check failed", "user", u.Name, "err", err)
		return protocol.AccountState{}, internalError(err)
	}
	if len(vs) > 0 {
		s.auditAsync(a, "password_change_refused", u.Name, map[string]string{"violations": violationCodes(vs)})
		return protocol.AccountState{}, policyError(vs)
	}
	hash, err := s.hash.Hash(ctx, req.New)
	if err != nil {
		return protocol.AccountState{}, internalError(err)
	}
	var res protocol.AccountState
	var perr2 *protocol.Error
	err = s.update(ctx, func(tx store.Tx, out *outbox) error {
		perr2 = nil
		cur, err := tx.User(ctx, u.Name)
		if err != nil {
			return err
		}
		if cur.PasswordVersion != u.PasswordVersion {
			perr2 = protocol.Errorf(protocol.CodeWrongPassword, "The password changed meanwhile; enter the current one again.")
			return nil
		}
		if step != 0 && step <= cur.TOTPLastStep {
			perr2 = protocol.Errorf(protocol.CodeMFAReplayed, "This verification code was already used; wait for the next one.")
			return nil
		}
		if step != 0 {
			cur.TOTPLastStep = step
		}
		s.setPassword(&cur, hash, false, out.now)
		if err := tx.UpdateUser(ctx, cur); err != nil {
			return err
		}
		if err := tx.AddPasswordHistory(ctx, cur.Name, hash, out.now, maxHistory); err != nil {
			return err
		}
		if err := a.audit(ctx, tx, out.now, "password_changed", cur.Name, map[string]string{"password_version": fmt.Sprint(cur.PasswordVersion)}); err != nil {
			return err
		}
		if err := out.toUser(ctx, tx, cur.Name, a.device, protocol.TypePasswordReset,
			protocol.PasswordReset{User: cur.Name, PasswordVersion: cur.PasswordVersion, At: out.now}); err != nil {
			return err
		}
		res = s.accountState(cur)
		if commit != nil {
			return commit(ctx, tx, res)
		}
		return nil
	})
	if err != nil {
		s.log.Error("password change failed", "user", u.Name, "err", err)
		return protocol.AccountState{}, internalError(err)
	}
	if perr2 != nil {
		return protocol.AccountState{}, perr2
	}
	s.log.Info("password changed", "user", u.Name, "device_id", a.device, "password_version", res.PasswordVersion)
	return res, nil
}

// setPassword applies a new hash to u.
func (s *Server) setPassword(u *store.User, hash string, temporary bool, now time.Time) {
	u.PasswordHash = hash
	u.PasswordVersion++
	u.PasswordChangedAt = now
	u.MustChange = temporary
	u.FailedCount, u.FailedWindowStart = 0, time.Time{}
}

func violationCodes(vs []protocol.Violation) string {
	var b []byte
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, v.Code...)
	}
	return string(b)
}

// generatePassword makes a random password that meets the policy.
func generatePassword(pol protocol.Policy, user string) ([]byte, error) {
	const (
		upper   = "ABCDEFGHJKLMNPQRSTUVWXYZ"
		lower   = "abcdefghijkmnopqrstuvwxyz"
		digits  = "23456789"
		symbols = "!#%+-=?@^_"
	)
	all := upper + lower + digits + symbols
	n := max(pol.MinLength, 16)
	for range 100 {
		pw := make([]byte, n)
		for i := range pw {
			k, err := rand.Int(rand.Reader, big.NewInt(int64(len(all))))
			if err != nil {
				return nil, err
			}
			pw[i] = all[k.Int64()]
		}
		if len(pol.Check(user, pw)) == 0 {
			return pw, nil
		}
		clear(pw)
	}
	return nil, errors.New("could not generate a password that meets the policy")
}
