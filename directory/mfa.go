package directory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"
	"unicode"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// MFA with an enrolment period.
//
// An administrator's MFA reset may give the user N days (1 to 365) to
// enrol a new authenticator themselves instead of receiving a secret: the
// old secret is dropped at once, the user's password alone is enough
// until the period ends (verify and change need no code), the user's Macs
// are told by a push (protocol.MFAEnrollment, never a secret), and an
// enrolment (begin: a fresh secret made here, handed to the user alone;
// confirm: a code from it) makes codes required again. A period that ends
// with nothing enrolled leaves an account that needs a code no one can
// give: the administrator resets MFA again. The same holds for users of a
// directory behind Lockstep (AD), whose TOTP is Lockstep's own.

// pendingEnrolTTL is how long a begun enrolment waits for its code.
const pendingEnrolTTL = 30 * time.Minute

var (
	errEnrolmentOver = protocol.Errorf(protocol.CodeMFAEnrollmentExpired,
		"The time to set up an authenticator has ended; ask IT to reset your MFA.")
	errNotEnrolling = protocol.Errorf(protocol.CodeMFANotEnrolling,
		"No authenticator set-up is waiting for this account; start it again.")
)

// enrolmentOver refuses a change without a code for an account whose
// enrolment period ended with nothing enrolled; nil for an account in its
// period or without MFA.
func (s *Server) enrolmentOver(a actor, u store.User) *protocol.Error {
	if u.TOTPSecret != nil || u.MFAEnrollUntil.IsZero() || s.now().Before(u.MFAEnrollUntil) {
		return nil
	}
	s.noise(a, "mfa_enrollment_expired", u.Name, nil)
	return errEnrolmentOver
}

// enrolling says whether u is in an enrolment period now.
func (s *Server) enrolling(u store.User) bool {
	return u.TOTPSecret == nil && !u.MFAEnrollUntil.IsZero() && s.now().Before(u.MFAEnrollUntil)
}

// setMFA enables, disables or resets a user's TOTP for an administrator
// (the admin API, the web console).
func (s *Server) setMFA(ctx context.Context, a actor, name string, req admin.MFARequest) (admin.UserResponse, *protocol.Error) {
	switch req.Action {
	case admin.MFAEnable, admin.MFAReset:
		if req.EnrollDays != 0 && (req.EnrollDays < protocol.MinEnrollDays || req.EnrollDays > protocol.MaxEnrollDays) {
			return admin.UserResponse{}, protocol.Errorf(protocol.CodeBadRequest, "the enrolment period must be %d to %d days, not %d",
				protocol.MinEnrollDays, protocol.MaxEnrollDays, req.EnrollDays)
		}
	case admin.MFADisable:
		if req.EnrollDays != 0 {
			return admin.UserResponse{}, protocol.Errorf(protocol.CodeBadRequest, "an enrolment period goes with enable or reset, not disable")
		}
	default:
		return admin.UserResponse{}, protocol.Errorf(protocol.CodeBadRequest, "action must be enable, disable or reset")
	}
	if e := s.ensureName(ctx, name); e != nil {
		return admin.UserResponse{}, e
	}
	var sealed []byte
	var mfa *admin.TOTPEnrollment
	if req.Action != admin.MFADisable && req.EnrollDays == 0 {
		secret, uri, err := newTOTPKey(s.cfg.Issuer, name)
		if err != nil {
			return admin.UserResponse{}, s.internalError("totp key not made", err, "user", name)
		}
		if sealed, err = s.keys.seal(name, secret); err != nil {
			clear(secret)
			return admin.UserResponse{}, s.internalError("totp key not sealed", err, "user", name)
		}
		mfa = &admin.TOTPEnrollment{URI: protocol.Secret(uri), Secret: protocol.Secret(b32.EncodeToString(secret))}
		clear(secret)
	}
	var out admin.User
	var perr *protocol.Error
	err := s.update(ctx, func(tx store.Tx, ob *outbox) error {
		perr = nil
		u, err := tx.User(ctx, name)
		if err != nil {
			return err
		}
		on := u.TOTPSecret != nil || !u.MFAEnrollUntil.IsZero()
		switch {
		case req.Action == admin.MFAEnable && on:
			perr = protocol.Errorf(admin.CodeExists, "MFA is already enabled for %q; use reset to replace the secret", name)
			return nil
		case req.Action == admin.MFAReset && !on:
			perr = protocol.Errorf(protocol.CodeBadRequest, "MFA is not enabled for %q; use enable", name)
			return nil
		}
		wasEnrolling := u.TOTPSecret == nil && !u.MFAEnrollUntil.IsZero()
		u.TOTPSecret, u.TOTPLastStep = sealed, 0
		u.TOTPPending, u.TOTPPendingAt = nil, time.Time{}
		u.MFAEnrollUntil = time.Time{}
		detail := map[string]string(nil)
		if req.EnrollDays != 0 {
			u.MFAEnrollUntil = ob.now.Add(time.Duration(req.EnrollDays) * 24 * time.Hour)
			detail = map[string]string{"enroll_days": fmt.Sprint(req.EnrollDays), "enroll_until": u.MFAEnrollUntil.Format(time.RFC3339)}
		}
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		switch {
		case req.EnrollDays != 0:
			until := u.MFAEnrollUntil
			err = ob.toUser(ctx, tx, name, "", protocol.TypeMFAEnrollment, protocol.MFAEnrollment{User: name, Required: true, Until: &until, MFA: true})
		case wasEnrolling:
			err = ob.toUser(ctx, tx, name, "", protocol.TypeMFAEnrollment, protocol.MFAEnrollment{User: name, MFA: sealed != nil})
		}
		if err != nil {
			return err
		}
		if err := a.audit(ctx, tx, ob.now, "mfa_"+req.Action, name, detail); err != nil {
			return err
		}
		out, err = s.adminUser(ctx, tx, u, true)
		return err
	})
	if err != nil {
		return admin.UserResponse{}, s.userError("mfa not changed", name, err)
	}
	if perr != nil {
		return admin.UserResponse{}, perr
	}
	s.log.Info("mfa changed", "user", name, "action", req.Action, "enroll_days", req.EnrollDays)
	return admin.UserResponse{User: out, MFA: mfa}, nil
}

// beginEnrolment makes a fresh secret for a user in an enrolment period
// and keeps it, sealed, until a code confirms it; the secret goes to the
// caller alone (never a push, a log line or the audit log). Beginning
// again replaces it.
func (s *Server) beginEnrolment(ctx context.Context, a actor, name string) (protocol.MFAEnrollmentKey, *protocol.Error) {
	u, perr := s.loadUser(ctx, name)
	if perr != nil {
		return protocol.MFAEnrollmentKey{}, perr
	}
	if u.TOTPSecret != nil || u.MFAEnrollUntil.IsZero() {
		return protocol.MFAEnrollmentKey{}, errNotEnrolling
	}
	if !s.enrolling(u) {
		return protocol.MFAEnrollmentKey{}, errEnrolmentOver
	}
	secret, uri, err := newTOTPKey(s.cfg.Issuer, name)
	if err != nil {
		return protocol.MFAEnrollmentKey{}, s.internalError("totp key not made", err, "user", name)
	}
	defer clear(secret)
	sealed, err := s.keys.seal(name, secret)
	if err != nil {
		return protocol.MFAEnrollmentKey{}, s.internalError("totp key not sealed", err, "user", name)
	}
	var until time.Time
	err = s.update(ctx, func(tx store.Tx, ob *outbox) error {
		perr = nil
		cur, err := tx.User(ctx, name)
		if err != nil {
			return err
		}
		if !s.enrolling(cur) {
			perr = errNotEnrolling
			return nil
		}
		cur.TOTPPending, cur.TOTPPendingAt = sealed, ob.now
		until = cur.MFAEnrollUntil
		if err := tx.UpdateUser(ctx, cur); err != nil {
			return err
		}
		return a.audit(ctx, tx, ob.now, "mfa_enrollment_begun", name, nil)
	})
	if err != nil {
		return protocol.MFAEnrollmentKey{}, s.userError("enrolment not begun", name, err)
	}
	if perr != nil {
		return protocol.MFAEnrollmentKey{}, perr
	}
	return protocol.MFAEnrollmentKey{Secret: protocol.Secret(b32.EncodeToString(secret)), URI: protocol.Secret(uri), Until: until}, nil
}

// confirmEnrolment checks a code against the begun enrolment's secret
// and, when it matches, makes that secret the user's: codes are required
// from then on and the user's Macs are told the enrolment is done. A
// wrong code counts towards lockout like any wrong code.
//
// commit, when set, records the outcome in the transaction that enrols
// (the agent websocket's idempotency record).
func (s *Server) confirmEnrolment(ctx context.Context, a actor, name, code string, commit commitFunc) (protocol.AccountState, *protocol.Error) {
	u, perr := s.loadUser(ctx, name)
	if perr != nil {
		return protocol.AccountState{}, perr
	}
	if s.locked(u) {
		return protocol.AccountState{}, lockedError(u)
	}
	if u.TOTPSecret == nil && !u.MFAEnrollUntil.IsZero() && !s.enrolling(u) {
		return protocol.AccountState{}, errEnrolmentOver
	}
	if !s.enrolling(u) || u.TOTPPending == nil || s.now().Sub(u.TOTPPendingAt) > pendingEnrolTTL {
		return protocol.AccountState{}, errNotEnrolling
	}
	if code == "" {
		return protocol.AccountState{}, protocol.Errorf(protocol.CodeMFARequired, "A verification code from the authenticator app is needed.")
	}
	secret, err := s.keys.open(name, u.TOTPPending)
	if err != nil {
		return protocol.AccountState{}, s.internalError("pending totp secret not opened", err, "user", name)
	}
	step, ok := totpMatch(secret, code, s.now())
	clear(secret)
	if !ok {
		return protocol.AccountState{}, s.recordFailure(ctx, a, name, wrongCode)
	}
	var st protocol.AccountState
	err = s.update(ctx, func(tx store.Tx, ob *outbox) error {
		perr = nil
		cur, err := tx.User(ctx, name)
		if err != nil {
			return err
		}
		if !bytes.Equal(cur.TOTPPending, u.TOTPPending) || !s.enrolling(cur) {
			perr = errNotEnrolling // begun again, or reset, meanwhile
			return nil
		}
		cur.TOTPSecret, cur.TOTPLastStep = cur.TOTPPending, step
		cur.TOTPPending, cur.TOTPPendingAt, cur.MFAEnrollUntil = nil, time.Time{}, time.Time{}
		cur.MFAFailedCount, cur.MFAFailedWindowStart = 0, time.Time{}
		if err := tx.UpdateUser(ctx, cur); err != nil {
			return err
		}
		if err := ob.toUser(ctx, tx, name, "", protocol.TypeMFAEnrollment, protocol.MFAEnrollment{User: name, MFA: true}); err != nil {
			return err
		}
		if err := a.audit(ctx, tx, ob.now, "mfa_enrolled", name, nil); err != nil {
			return err
		}
		sa, err := tx.SourceAccount(ctx, name)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		st = s.accountState(cur, sa)
		if commit != nil {
			return commit(ctx, tx, st)
		}
		return nil
	})
	if err != nil {
		return protocol.AccountState{}, s.userError("enrolment not confirmed", name, err)
	}
	if perr != nil {
		return protocol.AccountState{}, perr
	}
	s.log.Info("mfa enrolled", "user", name)
	return st, nil
}

// deviceEnrolment is the agent websocket's gate in front of an enrolment
// step: the device must be bound to the user (CodeNotBound otherwise,
// whether or not the user exists) and within its write rate.
func (s *Server) deviceEnrolment(ctx context.Context, a actor, user string) *protocol.Error {
	_, bound, err := s.bound(ctx, a.device, user)
	if err != nil {
		return s.internalError("binding not read", err, "user", user, "device_id", a.device)
	}
	if !bound {
		return errNotBound
	}
	if ok, wait := s.limits.allowKey(&s.limits.device, a.device, s.now()); !ok {
		s.noise(a, "rate_limited", user, nil)
		return &protocol.Error{Code: protocol.CodeRateLimited, Message: "Too many requests; wait before trying again.", RetryAfter: retrySeconds(wait)}
	}
	return nil
}

// checkEmail validates an address an administrator gives: a bare
// addr-spec (no display name), at most 254 bytes, no control or bidi
// characters. It returns the normalized form; "" stays "".
func checkEmail(s string) (string, *protocol.Error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	bad := protocol.Errorf(protocol.CodeBadRequest, "the e-mail address is not valid (give it as name@example.com)")
	if len(s) > 254 {
		return "", bad
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || unicode.IsSpace(r) {
			return "", bad
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return "", bad
	}
	return store.NormalizeEmail(s), nil
}

// adminEditUser changes a built-in user's display name or address.
func (s *Server) adminEditUser(w http.ResponseWriter, r *http.Request, a actor) {
	var req admin.EditUserRequest
	if e := decodeBody(r, &req); e != nil {
		fail(w, e)
		return
	}
	u, e := s.editUser(r.Context(), a, r.PathValue("name"), req)
	if e != nil {
		fail(w, e)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *Server) editUser(ctx context.Context, a actor, name string, req admin.EditUserRequest) (admin.User, *protocol.Error) {
	if !s.src.Info().ManagesUsers {
		return admin.User{}, protocol.Errorf(protocol.CodeUnsupported, "%s owns the users' names and addresses: change them there",
			s.src.Info().Name)
	}
	var email string
	if req.Email != nil {
		var e *protocol.Error
		if email, e = checkEmail(*req.Email); e != nil {
			return admin.User{}, e
		}
	}
	if req.DisplayName != nil && (len(*req.DisplayName) > protocol.MaxNameLen || checkDisplay(*req.DisplayName) != nil) {
		return admin.User{}, protocol.Errorf(protocol.CodeBadRequest, "the display name is too long or holds control characters")
	}
	var out admin.User
	err := s.update(ctx, func(tx store.Tx, ob *outbox) error {
		u, err := tx.User(ctx, name)
		if err != nil {
			return err
		}
		detail := map[string]string{}
		if req.DisplayName != nil && *req.DisplayName != u.DisplayName {
			u.DisplayName, detail["display_name"] = *req.DisplayName, "changed"
		}
		if req.Email != nil && email != u.Email {
			u.Email, detail["email"] = email, "changed"
		}
		if len(detail) > 0 {
			if err := tx.UpdateUser(ctx, u); err != nil {
				return err
			}
			if err := a.audit(ctx, tx, ob.now, "user_edited", name, detail); err != nil {
				return err
			}
		}
		out, err = s.adminUser(ctx, tx, u, true)
		return err
	})
	if err != nil {
		return admin.User{}, s.userError("user not edited", name, err)
	}
	return out, nil
}

// checkDisplay refuses control and bidi characters in a display name.
func checkDisplay(s string) *protocol.Error {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return protocol.Errorf(protocol.CodeBadRequest, "control characters are not allowed")
		}
	}
	return nil
}
