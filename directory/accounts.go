package directory

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/lockstep-dev/lockstep/directory/source"
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
	kind   string // "device", "admin", "user", "system", "console" (a sign-in)
	device string
	addr   string
	// name is the acting admin's or user's name through the Go API (the
	// web console, the portal); the audit log's actor is then "kind:name".
	name string
	// verified is a portal session that has passed its second factor.
	verified bool
}

// who is the actor as the audit log records it: "admin:alice" for a
// console administrator, "user:bob" for a portal user.
func (a actor) who() string {
	if a.name != "" {
		return a.kind + ":" + a.name
	}
	return a.kind
}

// portal reports a user acting for themselves through the web portal.
func (a actor) portal() bool { return a.kind == "user" }

func (a actor) audit(ctx context.Context, tx store.Tx, at time.Time, event, user string, detail map[string]string) error {
	return tx.Audit(ctx, store.AuditEvent{At: at, Event: event, Actor: a.who(), User: user, Device: a.device, Source: a.addr, Detail: detail})
}

// auditAsync records an event through the batcher.
func (s *Server) auditAsync(a actor, event, user string, detail map[string]string) {
	at := s.now()
	s.bg.add(func(ctx context.Context, tx store.Tx) error { return a.audit(ctx, tx, at, event, user, detail) })
}

// accountState is the wire view of a user: the hub's record (version,
// MFA) with the lock the source last reported (sa).
func (s *Server) accountState(u store.User, sa store.SourceAccount) protocol.AccountState {
	st := protocol.AccountState{
		User:              u.Name,
		DisplayName:       u.DisplayName,
		PasswordVersion:   u.PasswordVersion,
		PasswordChangedAt: u.PasswordChangedAt,
		MustChange:        u.MustChange,
		MFA:               u.TOTPSecret != nil || !u.MFAEnrollUntil.IsZero(),
	}
	if u.TOTPSecret == nil && !u.MFAEnrollUntil.IsZero() {
		until := u.MFAEnrollUntil
		st.MFAEnrollBy = &until
	}
	if exp, ok := s.expiry(u); ok && !u.MustChange {
		st.ExpiresAt = &exp
	}
	switch {
	case s.locked(u):
		st.Locked = true
		until := u.LockedUntil
		st.LockedUntil = &until
	case sa.Locked && sa.LockedUntil.IsZero():
		st.Locked = true // until an administrator unlocks it
	case sa.Locked && s.now().Before(sa.LockedUntil):
		st.Locked = true
		until := sa.LockedUntil
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

// failure kinds the hub counts itself, each apart (see store.User); wrong
// passwords from the user's own devices are the source's to count.
type failure int

const (
	wrongCode failure = iota // a wrong second factor
	wrongLink                // a wrong password from a device not bound to the user
)

// pre is what the hub knows before the source sees a password.
type pre struct {
	bound bool
	known bool // the hub has a record of the user
	u     store.User
}

// precheck rate-limits a password check and refuses what the hub refuses
// itself: a device not bound to the user while linking is blocked (told
// only "wrong password", after the work of a check), and the hub's own
// lock (wrong second factors) in front of a remote source.
func (s *Server) precheck(ctx context.Context, a actor, name string, pw []byte) (pre, *protocol.Error) {
	bound, limitKey, own := true, "web:"+a.addr, false
	if !a.portal() {
		// A portal user proves themselves with the password (and their
		// failures count towards the user's lockout, as from their own
		// Macs), but anyone can reach the portal: it takes from the
		// bucket of other parties, per address.
		var err error
		if _, bound, err = s.bound(ctx, a.device, name); err != nil {
			return pre{}, s.internalError("binding not read", err, "user", name, "device_id", a.device)
		}
		limitKey, own = a.device, bound
	}
	if ok, wait := s.limits.allowCheck(limitKey, name, own, s.now()); !ok {
		s.noise(a, "rate_limited", name, nil)
		return pre{}, &protocol.Error{Code: protocol.CodeRateLimited,
			Message: "Too many attempts; wait before trying again.", RetryAfter: retrySeconds(wait)}
	}
	p := pre{bound: bound}
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		p.u, err = tx.User(ctx, name)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return p, s.internalError("user not read", err, "user", name)
	}
	p.known = err == nil
	external := s.src.Info().External
	if !p.known && !bound && !s.src.Info().ManagesUsers && checkName(name) == nil {
		// A stranger trying a user of the directory behind Lockstep that no
		// Mac has used yet: make the record, so that its failures are
		// counted (each costs the user one of AD's own failed binds).
		if perr := s.ensureName(ctx, name); perr == nil {
			err = s.st.View(ctx, func(tx store.Tx) error {
				var err error
				p.u, err = tx.User(ctx, name)
				return err
			})
			p.known = err == nil
		}
	}
	switch {
	case p.known && !bound && s.linkLocked(p.u):
		if !external {
			if err := s.hash.VerifyDummy(ctx, pw); err != nil {
				return p, s.internalError("password not verified", err, "user", name)
			}
		}
		// A remote directory is not asked at all: its own lockout counts
		// every bind.
		return p, s.recordFailure(ctx, a, name, wrongLink)
	case p.known && bound && external && s.locked(p.u):
		s.noise(a, "password_check_locked", name, nil)
		return p, lockedError(p.u)
	}
	return p, nil
}

// sourceError turns a source's refusal into the device's answer. A device
// not bound to the user is told only "wrong password", whatever went
// wrong, and its failure is counted against linking.
func (s *Server) sourceError(ctx context.Context, a actor, name string, p pre, err error) *protocol.Error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe // the hub's own, from a hook
	}
	var le *source.LockedError
	var pol *source.PolicyError
	locked := errors.As(err, &le)
	refused := locked || errors.Is(err, source.ErrWrongPassword) || errors.Is(err, source.ErrUnknownUser) ||
		errors.Is(err, source.ErrDisabled)
	switch {
	case refused && !p.bound:
		if locked && p.known {
			s.noteAccount(ctx, le.Account) // announce the lock to the user's own Macs
		}
		return s.recordFailure(ctx, a, name, wrongLink)
	case locked:
		s.noise(a, "password_check_locked", name, nil)
		s.noteAccount(ctx, le.Account)
		return lockedFromSource(le.Account)
	case errors.Is(err, source.ErrWrongPassword), errors.Is(err, source.ErrUnknownUser):
		s.auditAsync(a, "auth_failed", name, map[string]string{"reason": "wrong_password"})
		return errWrongPassword
	case errors.Is(err, source.ErrDisabled):
		s.auditAsync(a, "auth_failed", name, map[string]string{"reason": "disabled"})
		return errDisabled
	case errors.As(err, &pol):
		if pol.Detail != "" {
			s.log.Info("directory refused a new password", "user", name, "detail", pol.Detail)
		}
		s.auditAsync(a, "password_change_refused", name, map[string]string{"violations": violationCodes(pol.Violations)})
		return policyError(pol.Violations)
	}
	return s.internalError("the directory could not check the password", err, "user", name)
}

var errDisabled = protocol.Errorf(protocol.CodeDisabled, "The directory account is disabled or has expired.")

// lockedFromSource is the answer for an account the source reports locked.
func lockedFromSource(acct source.Account) *protocol.Error {
	e := &protocol.Error{Code: protocol.CodeLocked, Message: "The account is locked after too many failed attempts."}
	if acct.LockedUntil != nil {
		until := *acct.LockedUntil
		e.LockedUntil = &until
	}
	return e
}

// recordFailure counts a wrong second factor or a stranger's wrong
// password and, at the threshold, locks the account (wrong codes) or its
// linking (strangers). No success of one kind clears another's count.
func (s *Server) recordFailure(ctx context.Context, a actor, name string, kind failure) *protocol.Error {
	var lockedNow store.User
	reason := map[failure]string{wrongCode: "mfa_invalid", wrongLink: "wrong_password_unbound"}[kind]
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
		count, start := &u.MFAFailedCount, &u.MFAFailedWindowStart
		if kind == wrongLink {
			count, start = &u.LinkFailedCount, &u.LinkFailedWindowStart
		}
		if start.IsZero() || now.Sub(*start) > s.cfg.Lockout.Window {
			*count, *start = 0, now
		}
		*count++
		if err := a.audit(ctx, tx, now, "auth_failed", name, map[string]string{"reason": reason, "failures": fmt.Sprint(*count)}); err != nil {
			return err
		}
		threshold := s.cfg.Lockout.Threshold
		if kind == wrongLink {
			threshold = s.linkThreshold()
		}
		switch {
		case *count < threshold:
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
			if err := tx.UpdateUser(ctx, u); err != nil {
				return err
			}
			// Announce it with the rest of the account's state.
			acct, err := s.sourceAccountIn(ctx, tx, out, name)
			if err != nil {
				return err
			}
			_, err = s.observe(ctx, tx, out, acct, cause{})
			return err
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
		return lockedError(lockedNow)
	}
	return protocol.Errorf(protocol.CodeMFAInvalid, "The verification code is not valid.")
}

// linkThreshold is how many wrong passwords strangers (devices not bound
// to the user) may try before linking is blocked. A remote directory
// counts each of them against the user's own lockout too (every failed
// bind does), so strangers stop two short of it.
func (s *Server) linkThreshold() int {
	n := s.cfg.Lockout.Threshold
	if ad := int(s.lockoutThreshold.Load()); s.src.Info().External && ad > 2 {
		n = min(n, ad-2)
	}
	return max(1, n)
}

// verifyPassword answers verify_password. The right password from a device
// not yet bound to the user binds it.
func (s *Server) verifyPassword(ctx context.Context, a actor, req *protocol.VerifyPasswordRequest) (protocol.AccountState, *protocol.Error) {
	p, perr := s.precheck(ctx, a, req.User, req.Password)
	if perr != nil {
		return protocol.AccountState{}, perr
	}
	acct, err := s.src.Verify(ctx, req.User, req.Password, source.Attempt{Stranger: !p.bound})
	if err != nil {
		return protocol.AccountState{}, s.sourceError(ctx, a, req.User, p, err)
	}
	if perr := s.ensure(ctx, acct); perr != nil {
		return protocol.AccountState{}, perr
	}
	var res protocol.AccountState
	err = s.update(ctx, func(tx store.Tx, out *outbox) error {
		perr = nil
		cur, err := tx.User(ctx, acct.User)
		if errors.Is(err, store.ErrNotFound) {
			perr = errWrongPassword // deleted meanwhile
			return nil
		}
		if err != nil {
			return err
		}
		if perr = s.stillAllowed(cur, p.bound); perr != nil {
			return nil
		}
		// A right password clears the strangers' count, never that of wrong
		// second factors.
		if cur.LinkFailedCount != 0 {
			cur.LinkFailedCount, cur.LinkFailedWindowStart = 0, time.Time{}
			if err := tx.UpdateUser(ctx, cur); err != nil {
				return err
			}
		}
		// What the source said of the account (a change made elsewhere not
		// yet reported, a lock) is recorded and pushed now.
		st, err := s.observe(ctx, tx, out, acct, cause{})
		if err != nil {
			return err
		}
		if !p.bound {
			if err := s.bindByProof(ctx, tx, a, acct.User, out.now); err != nil {
				return err
			}
		}
		res = st
		return a.audit(ctx, tx, out.now, "password_verified", acct.User, nil)
	})
	if err != nil {
		return protocol.AccountState{}, s.internalError("verification not recorded", err, "user", req.User)
	}
	if perr != nil {
		return protocol.AccountState{}, perr
	}
	s.notePolicy(acct)
	return res, nil
}

// stillAllowed decides, in the transaction that records a passed check's
// outcome, whether the account may still act: a lock that came while the
// check ran wins over it.
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

func policyError(vs []protocol.Violation) *protocol.Error {
	return &protocol.Error{Code: protocol.CodePolicyViolation, Message: "The new password does not meet the password policy.", Violations: vs}
}

// intentTTL bounds how long a change through Lockstep holds back the
// reports of a remote source's watcher for its user.
const intentTTL = 30 * time.Second

// changePassword answers change_password through the source. The second
// factor (Lockstep's own) is checked once the source proved the current
// password and before anything changes; commit records the idempotent
// outcome in the transaction that records the change (the source's own for
// the built-in store, the one right after AD accepted it otherwise). A
// change from a device not yet bound to the user binds it.
func (s *Server) changePassword(ctx context.Context, a actor, req *protocol.ChangePasswordRequest, key string,
	commit func(context.Context, store.Tx, protocol.AccountState) error) (protocol.AccountState, *protocol.Error) {
	p, perr := s.precheck(ctx, a, req.User, req.Current)
	if perr != nil {
		return protocol.AccountState{}, perr
	}
	external := s.src.Info().External
	var step int64
	var res protocol.AccountState
	hooks := source.Hooks{
		Verified: func(ctx context.Context, acct source.Account) error {
			if perr := s.ensure(ctx, acct); perr != nil {
				return perr
			}
			u, perr := s.loadUser(ctx, acct.User)
			if perr != nil {
				return perr
			}
			if u.TOTPSecret != nil && !a.verified {
				st, perr := s.checkTOTP(ctx, a, u, req.TOTP)
				if perr != nil {
					return perr
				}
				step = st
			} else if perr := s.enrolmentOver(a, u); perr != nil {
				return perr
			}
			if external {
				// Lockstep's local rules first (AD's own come when it is
				// sent): the name parts, which not every DC checks.
				pol := s.userPolicy(acct)
				pol.NameParts = protocol.EncodeNameParts([]string{acct.User}, map[string][]string{acct.User: protocol.NameParts(acct.DisplayName)})
				if vs := pol.Check(acct.User, req.New); len(vs) > 0 {
					s.auditAsync(a, "password_change_refused", acct.User, map[string]string{"violations": violationCodes(vs)})
					return policyError(vs)
				}
				if err := s.intend(ctx, acct.User, a.device, key, acct.Stamp); err != nil {
					return s.internalError("change intent not recorded", err, "user", acct.User)
				}
			}
			return nil
		},
		Commit: func(ctx context.Context, acct source.Account) error {
			return s.inTx(ctx, func(tx store.Tx, out *outbox) error {
				cur, err := tx.User(ctx, acct.User)
				if err != nil {
					return err
				}
				if perr := s.stillAllowed(cur, p.bound); perr != nil && !external {
					return perr
				}
				if step != 0 {
					if step <= cur.TOTPLastStep {
						return protocol.Errorf(protocol.CodeMFAReplayed, "This verification code was already used; wait for the next one.")
					}
					cur.TOTPLastStep = step
					cur.MFAFailedCount, cur.MFAFailedWindowStart = 0, time.Time{}
					if err := tx.UpdateUser(ctx, cur); err != nil {
						return err
					}
				}
				st, err := s.observe(ctx, tx, out, acct, cause{set: true, own: true, device: a.device})
				if err != nil {
					return err
				}
				if !p.bound {
					if err := s.bindByProof(ctx, tx, a, acct.User, out.now); err != nil {
						return err
					}
				}
				if err := a.audit(ctx, tx, out.now, "password_changed", acct.User, map[string]string{"password_version": fmt.Sprint(st.PasswordVersion)}); err != nil {
					return err
				}
				res = st
				if commit != nil {
					return commit(ctx, tx, st)
				}
				return nil
			})
		},
	}
	if external {
		if st, done, perr := s.settleRetry(ctx, a, req.User, key, hooks); done {
			return st, perr
		}
	}
	acct, err := s.src.Change(ctx, req.User, req.Current, req.New, source.Attempt{Stranger: !p.bound}, hooks)
	if err != nil {
		if external {
			s.clearIntent(ctx, req.User, a.device, key)
		}
		var pe *protocol.Error
		if errors.As(err, &pe) && pe.Code != protocol.CodeWrongPassword {
			return protocol.AccountState{}, pe
		}
		if errors.Is(err, errChangedMeanwhile) {
			return protocol.AccountState{}, errChangedMeanwhile
		}
		return protocol.AccountState{}, s.sourceError(ctx, a, req.User, p, err)
	}
	s.notePolicy(acct)
	s.log.Info("password changed", "user", acct.User, "device_id", a.device, "password_version", res.PasswordVersion)
	return res, nil
}

// checkTOTP checks a second factor; a wrong one counts towards lockout.
func (s *Server) checkTOTP(ctx context.Context, a actor, u store.User, code string) (int64, *protocol.Error) {
	if code == "" {
		return 0, protocol.Errorf(protocol.CodeMFARequired, "This account needs a verification code from the authenticator app.")
	}
	secret, err := s.keys.open(u.Name, u.TOTPSecret)
	if err != nil {
		return 0, s.internalError("totp secret not opened", err, "user", u.Name)
	}
	st, ok := totpMatch(secret, code, s.now())
	clear(secret)
	if !ok {
		return 0, s.recordFailure(ctx, a, u.Name, wrongCode)
	}
	if st <= u.TOTPLastStep {
		s.noise(a, "mfa_replayed", u.Name, nil)
		return 0, protocol.Errorf(protocol.CodeMFAReplayed, "This verification code was already used; wait for the next one.")
	}
	return st, nil
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
