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

// internalError is the answer when the directory itself failed: the
// caller gets a generic sentence, the log gets what failed and why.
func (s *Server) internalError(what string, err error, args ...any) *protocol.Error {
	s.log.Error(what, append(args, "err", err)...)
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

// bound reports whether user is bound to device.
func (s *Server) bound(ctx context.Context, device, user string) (store.Binding, bool, error) {
	var b store.Binding
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		b, err = tx.Binding(ctx, device, user)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return b, false, nil
	}
	return b, err == nil, err
}

func (s *Server) linkLocked(u store.User) bool {
	return !u.LinkLockedUntil.IsZero() && s.now().Before(u.LinkLockedUntil)
}

// Answers that must not tell a device anything about a user it is not
// bound to: every failure from such a device, for a real user or an
// unknown one, reads as a wrong password.
var (
	errWrongPassword = protocol.Errorf(protocol.CodeWrongPassword, "The password is not correct.")
	errNotBound      = protocol.Errorf(protocol.CodeNotBound, "This Mac is not linked to that directory user.")
)

// checked is a password check that passed.
type checked struct {
	u      store.User
	bound  bool
	rehash bool
}

// failure kinds, each counted apart (see store.User).
type failure int

const (
	wrongPassword failure = iota // from a device bound to the user
	wrongCode                    // a wrong second factor
	wrongLink                    // from a device not bound to the user
)

// checkPassword rate-limits, refuses locked accounts and verifies pw; a
// wrong password counts towards lockout. A device not bound to the user
// is told only "wrong password" whatever went wrong (unknown user, lock),
// after the same argon2id work, so that it learns nothing about the user
// until it has proved the password.
func (s *Server) checkPassword(ctx context.Context, a actor, name string, pw []byte) (checked, *protocol.Error) {
	_, bound, err := s.bound(ctx, a.device, name)
	if err != nil {
		return checked{}, s.internalError("binding not read", err, "user", name, "device_id", a.device)
	}
	if ok, wait := s.limits.allowCheck(a.device, name, bound, s.now()); !ok {
		s.noise(a, "rate_limited", name, nil)
		return checked{}, &protocol.Error{Code: protocol.CodeRateLimited,
			Message: "Too many attempts; wait before trying again.", RetryAfter: retrySeconds(wait)}
	}
	var u store.User
	err = s.st.View(ctx, func(tx store.Tx) error {
		var err error
		u, err = tx.User(ctx, name)
		return err
	})
	unknown := errors.Is(err, store.ErrNotFound)
	if err != nil && !unknown {
		return checked{}, s.internalError("user not read", err, "user", name)
	}
	if unknown || (!bound && (s.locked(u) || s.linkLocked(u))) {
		if err := s.hash.VerifyDummy(ctx, pw); err != nil {
			return checked{}, s.internalError("password not verified", err, "user", name)
		}
		return checked{}, s.recordFailure(ctx, a, name, wrongLink)
	}
	if s.locked(u) {
		s.noise(a, "password_check_locked", name, nil)
		return checked{}, lockedError(u)
	}
	ok, rehash, err := s.hash.Verify(ctx, u.PasswordHash, pw)
	if err != nil {
		return checked{}, s.internalError("password not verified", err, "user", name)
	}
	if !ok {
		kind := wrongPassword
		if !bound {
			kind = wrongLink
		}
		return checked{}, s.recordFailure(ctx, a, name, kind)
	}
	return checked{u: u, bound: bound, rehash: rehash}, nil
}

// stillAllowed decides, in the transaction that records a passed check's
// outcome, whether the account may still act: a lock that came while the
// check waited for argon2 wins over it.
func (s *Server) stillAllowed(cur store.User, bound bool) *protocol.Error {
	switch {
	case bound && s.locked(cur):
		return lockedError(cur)
	case !bound && (s.locked(cur) || s.linkLocked(cur)):
		return errWrongPassword
	}
	return nil
}

// bindByProof binds a device that has just proved the user's password.
func (s *Server) bindByProof(ctx context.Context, tx store.Tx, a actor, user string, at time.Time) error {
	if err := tx.Bind(ctx, store.Binding{DeviceID: a.device, User: user, LocalName: user, BoundAt: at, BoundBy: store.BoundByPassword}); err != nil {
		return err
	}
	return a.audit(ctx, tx, at, "device_bound", user, map[string]string{"by": store.BoundByPassword})
}

// recordFailure counts a failed check and locks the account when the
// count reaches the threshold within the window. Wrong passwords, wrong
// codes and wrong passwords from devices not bound to the user each have
// their own count, and no success of one kind clears another's.
func (s *Server) recordFailure(ctx context.Context, a actor, name string, kind failure) *protocol.Error {
	var lockedNow store.User
	reason := map[failure]string{wrongPassword: "wrong_password", wrongCode: "mfa_invalid", wrongLink: "wrong_password_unbound"}[kind]
	err := s.update(ctx, func(tx store.Tx, out *outbox) error {
		lockedNow = store.User{}
		u, err := tx.User(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return a.audit(ctx, tx, out.now, "auth_failed", name, map[string]string{"reason": "unknown_user"})
		}
		if err != nil {
			return err
		}
		now := out.now
		count, start := &u.FailedCount, &u.FailedWindowStart
		switch kind {
		case wrongCode:
			count, start = &u.MFAFailedCount, &u.MFAFailedWindowStart
		case wrongLink:
			count, start = &u.LinkFailedCount, &u.LinkFailedWindowStart
		}
		if start.IsZero() || now.Sub(*start) > s.cfg.Lockout.Window {
			*count, *start = 0, now
		}
		*count++
		if err := a.audit(ctx, tx, now, "auth_failed", name, map[string]string{"reason": reason, "failures": fmt.Sprint(*count)}); err != nil {
			return err
		}
		switch {
		case *count < s.cfg.Lockout.Threshold:
		case kind == wrongLink:
			// Devices not bound to the user may no longer try; the user's
			// own Macs are not locked and are told nothing.
			*count, *start = 0, time.Time{}
			u.LinkLockedUntil = now.Add(s.cfg.Lockout.Duration)
			if err := a.audit(ctx, tx, now, "binding_locked", name, map[string]string{"until": u.LinkLockedUntil.Format(time.RFC3339)}); err != nil {
				return err
			}
		case !s.locked(u):
			u.LockedUntil = now.Add(s.cfg.Lockout.Duration)
			u.FailedCount, u.FailedWindowStart = 0, time.Time{}
			u.MFAFailedCount, u.MFAFailedWindowStart = 0, time.Time{}
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
		return s.internalError("failure not recorded", err, "user", name)
	}
	switch {
	case kind == wrongLink:
		return errWrongPassword
	case lockedNow.Name != "":
		s.log.Info("account locked", "user", name, "until", lockedNow.LockedUntil)
		return lockedError(lockedNow)
	case kind == wrongCode:
		return protocol.Errorf(protocol.CodeMFAInvalid, "The verification code is not valid.")
	}
	return errWrongPassword
}

// verifyPassword answers verify_password. The right password from a device
// not yet bound to the user binds it.
func (s *Server) verifyPassword(ctx context.Context, a actor, req *protocol.VerifyPasswordRequest) (protocol.AccountState, *protocol.Error) {
	c, perr := s.checkPassword(ctx, a, req.User, req.Password)
	if perr != nil {
		return protocol.AccountState{}, perr
	}
	u := c.u
	var newHash string
	if c.rehash {
		h, err := s.hash.Hash(ctx, req.Password)
		if err != nil {
			s.log.Error("password not rehashed", "user", u.Name, "err", err)
		}
		newHash = h
	}
	err := s.update(ctx, func(tx store.Tx, out *outbox) error {
		perr = nil
		cur, err := tx.User(ctx, u.Name)
		if errors.Is(err, store.ErrNotFound) {
			perr = errWrongPassword // deleted meanwhile
			return nil
		}
		if err != nil {
			return err
		}
		if perr = s.stillAllowed(cur, c.bound); perr != nil {
			return nil
		}
		// A right password clears the count of wrong passwords, never that
		// of wrong second factors.
		changed := cur.FailedCount != 0 || cur.LinkFailedCount != 0
		cur.FailedCount, cur.FailedWindowStart = 0, time.Time{}
		cur.LinkFailedCount, cur.LinkFailedWindowStart = 0, time.Time{}
		if newHash != "" && cur.PasswordHash == u.PasswordHash {
			cur.PasswordHash = newHash
			changed = true
		}
		u = cur
		if !c.bound {
			if err := s.bindByProof(ctx, tx, a, u.Name, out.now); err != nil {
				return err
			}
		}
		if err := a.audit(ctx, tx, out.now, "password_verified", u.Name, map[string]string{"rehashed": fmt.Sprint(newHash != "")}); err != nil {
			return err
		}
		if !changed {
			return nil
		}
		return tx.UpdateUser(ctx, cur)
	})
	if err != nil {
		return protocol.AccountState{}, s.internalError("verification not recorded", err, "user", u.Name)
	}
	if perr != nil {
		return protocol.AccountState{}, perr
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
// atomically with it. A change from a device not yet bound to the user
// (right password, and code when the user has MFA) binds it.
func (s *Server) changePassword(ctx context.Context, a actor, req *protocol.ChangePasswordRequest,
	commit func(context.Context, store.Tx, protocol.AccountState) error) (protocol.AccountState, *protocol.Error) {
	c, perr := s.checkPassword(ctx, a, req.User, req.Current)
	if perr != nil {
		return protocol.AccountState{}, perr
	}
	u := c.u
	step := int64(0)
	if u.TOTPSecret != nil {
		if req.TOTP == "" {
			return protocol.AccountState{}, protocol.Errorf(protocol.CodeMFARequired, "This account needs a verification code from the authenticator app.")
		}
		secret, err := s.keys.open(u.Name, u.TOTPSecret)
		if err != nil {
			return protocol.AccountState{}, s.internalError("totp secret not opened", err, "user", u.Name)
		}
		st, ok := totpMatch(secret, req.TOTP, s.now())
		clear(secret)
		if !ok {
			return protocol.AccountState{}, s.recordFailure(ctx, a, u.Name, wrongCode)
		}
		if st <= u.TOTPLastStep {
			s.noise(a, "mfa_replayed", u.Name, nil)
			return protocol.AccountState{}, protocol.Errorf(protocol.CodeMFAReplayed, "This verification code was already used; wait for the next one.")
		}
		step = st
	}
	vs, err := s.checkNew(ctx, u.Name, u.PasswordHash, req.New)
	if err != nil {
		return protocol.AccountState{}, s.internalError("policy check failed", err, "user", u.Name)
	}
	if len(vs) > 0 {
		s.auditAsync(a, "password_change_refused", u.Name, map[string]string{"violations": violationCodes(vs)})
		return protocol.AccountState{}, policyError(vs)
	}
	hash, err := s.hash.Hash(ctx, req.New)
	if err != nil {
		return protocol.AccountState{}, s.internalError("password not hashed", err, "user", u.Name)
	}
	var res protocol.AccountState
	var perr2 *protocol.Error
	err = s.update(ctx, func(tx store.Tx, out *outbox) error {
		perr2 = nil
		cur, err := tx.User(ctx, u.Name)
		if errors.Is(err, store.ErrNotFound) {
			perr2 = errWrongPassword // deleted meanwhile
			return nil
		}
		if err != nil {
			return err
		}
		// The lock is decided here, with the outcome: one that came while
		// this change waited for argon2 refuses it.
		if perr2 = s.stillAllowed(cur, c.bound); perr2 != nil {
			return nil
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
			cur.MFAFailedCount, cur.MFAFailedWindowStart = 0, time.Time{}
		}
		s.setPassword(&cur, hash, false, out.now)
		if err := tx.UpdateUser(ctx, cur); err != nil {
			return err
		}
		if err := tx.AddPasswordHistory(ctx, cur.Name, hash, out.now, maxHistory); err != nil {
			return err
		}
		if !c.bound {
			if err := s.bindByProof(ctx, tx, a, cur.Name, out.now); err != nil {
				return err
			}
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
		return protocol.AccountState{}, s.internalError("password change failed", err, "user", u.Name)
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
	u.LinkFailedCount, u.LinkFailedWindowStart, u.LinkLockedUntil = 0, time.Time{}, time.Time{}
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
