package ldap

import (
	"context"
	"errors"
	"strings"

	ldapv3 "github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/source/ldapconn"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Change implements source.Source with the Password Modify extended
// operation (RFC 3062) on a connection bound as the user, with the current
// password, so that ppolicy applies its quality check, minimum length and
// history as to the user's own change, and removes pwdReset. When the
// password expired with no grace login left (the user cannot bind), the
// operation runs on Lockstep's connection, where the current password is
// the proof (slapd verifies it).
func (s *Source) Change(ctx context.Context, user string, current, next []byte, _ source.Attempt, h source.Hooks) (source.Account, error) {
	e, err := s.find(ctx, user)
	if err != nil {
		return source.Account{}, err
	}
	c, err := s.binds.Get(ctx)
	if err != nil {
		return source.Account{}, ldapconn.Unavailable("connecting for a user bind", err)
	}
	defer s.binds.Put(c)
	r, err := s.bindAs(c, e.DN, current)
	if err != nil {
		return source.Account{}, err
	}
	before, err := s.verdict(ctx, user, r)
	if err != nil {
		return before, err
	}
	if h.Verified != nil {
		if err := h.Verified(ctx, before); err != nil {
			return before, err
		}
	}
	req := &ldapv3.PasswordModifyRequest{OldPassword: ldapconn.View(current), NewPassword: ldapconn.View(next)}
	s.ops.Modifies.Add(1)
	if r.ok {
		_, err = c.PasswordModify(req)
	} else {
		req.UserIdentity = e.DN
		err = s.svc.Do(ctx, func(sc *ldapv3.Conn) error { _, err := sc.PasswordModify(req); return err })
	}
	if err != nil {
		if ldapconn.IsNetwork(err) {
			// The answer was lost: see whether the server took the change.
			if after, aerr := s.Account(ctx, user); aerr == nil && after.Stamp != before.Stamp {
				return h.Committed(ctx, after)
			}
			return before, ldapconn.Unavailable("changing the password", err)
		}
		return before, s.changeError(err, before, next)
	}
	after, err := s.Account(ctx, user)
	if err != nil {
		return before, err
	}
	return h.Committed(ctx, after)
}

// ppolicy's refusals of a new password (its diagnostic messages, which
// the Password Modify response carries without the control).
const (
	msgQuality    = "fails quality checking policy"
	msgHistory    = "is in history of old passwords"
	msgUnchanged  = "is not being changed from existing value"
	msgTooYoung   = "is too young to change"
	msgNotAllowed = "user alteration of password is not allowed"
	msgOldWrong   = "unwilling to verify old password"
	msgMustSupply = "must supply correct old password"
)

// changeError turns a refused write of a password into the source's
// error: a policy refusal with the rules it broke, a wrong current
// password, or a right the account lacks.
func (s *Source) changeError(err error, a source.Account, next []byte) error {
	var le *ldapv3.Error
	if !errors.As(err, &le) {
		return ldapconn.Unavailable("changing the password", err)
	}
	msg := ""
	if le.Err != nil {
		msg = strings.ToLower(le.Err.Error())
	}
	switch {
	case strings.Contains(msg, msgOldWrong), strings.Contains(msg, msgMustSupply):
		return source.ErrWrongPassword
	case strings.Contains(msg, msgNotAllowed):
		return &source.NotPermittedError{Action: "change passwords", Need: "pwdAllowUserChange: TRUE in the password policy"}
	case le.ResultCode == ldapv3.LDAPResultConstraintViolation:
		return s.policyError(msg, a, next)
	case le.ResultCode == ldapv3.LDAPResultInsufficientAccessRights:
		return &source.NotPermittedError{Action: "change passwords", Need: "write access to userPassword for the user (by self write)"}
	}
	return ldapconn.Unavailable("changing the password", err)
}

// policyError says which rules a refused password broke. ppolicy's
// quality refusal covers both the minimum length and a quality module's
// verdict: a password shorter than pwdMinLength (in bytes, as ppolicy
// counts) is the first.
func (s *Source) policyError(msg string, a source.Account, next []byte) error {
	pol, _ := s.Policy(context.Background())
	if a.Policy != nil {
		pol = *a.Policy
	}
	rules := pol.Rules.Rules()
	pick := func(code string) protocol.Violation {
		for _, r := range rules {
			if r.Code == code {
				return protocol.Violation{Code: r.Code, Message: r.Message}
			}
		}
		return protocol.Violation{Code: code, Message: "Meets the directory's rules"}
	}
	var vs []protocol.Violation
	switch {
	case strings.Contains(msg, msgQuality) && len(next) < pol.Rules.MinLength:
		vs = append(vs, pick(protocol.RuleMinLength))
	case strings.Contains(msg, msgHistory), strings.Contains(msg, msgUnchanged):
		vs = append(vs, pick(protocol.RuleHistory))
	case strings.Contains(msg, msgTooYoung):
		vs = append(vs, pick(protocol.RuleMinAge))
	default:
		// A quality module's refusal, or a constraint of the server's own.
		vs = append(vs, protocol.Violation{Code: "directory_policy", Message: "Meets the directory's rules"})
	}
	return &source.PolicyError{Violations: vs, Detail: msg}
}

// Reset implements source.Source: an administrator's reset replaces
// userPassword (write access to it); temporary also sets pwdReset: TRUE in
// the same modify, so that the server never holds the new password without
// its mark (ppolicy keeps a pwdReset sent with the password, and removes
// it otherwise).
func (s *Source) Reset(ctx context.Context, user string, password []byte, temporary bool, h source.Hooks) (source.Account, error) {
	e, err := s.find(ctx, user)
	if err != nil {
		return source.Account{}, err
	}
	m := ldapv3.NewModifyRequest(e.DN, nil)
	m.Replace("userPassword", []string{ldapconn.View(password)})
	if temporary {
		m.Replace("pwdReset", []string{"TRUE"})
	}
	if err := s.svc.Modify(ctx, m); err != nil {
		if ldapv3.IsErrorWithCode(err, ldapv3.LDAPResultInsufficientAccessRights) {
			need := "write access to userPassword on the users"
			if temporary {
				need = "write access to userPassword and pwdReset on the users"
			}
			return source.Account{}, &source.NotPermittedError{Action: "reset passwords", Need: need}
		}
		if ldapv3.IsErrorWithCode(err, ldapv3.LDAPResultConstraintViolation) {
			var le *ldapv3.Error
			errors.As(err, &le)
			return source.Account{}, s.policyError(strings.ToLower(le.Error()), s.account(ctx, e), password)
		}
		return source.Account{}, ldapconn.Unavailable("resetting the password", err)
	}
	a, err := s.Account(ctx, user)
	if err != nil {
		return a, err
	}
	return h.Committed(ctx, a)
}

// Unlock implements source.Source: pwdAccountLockedTime removed (write
// access to it); ppolicy then forgets the failures too.
func (s *Source) Unlock(ctx context.Context, user string, h source.Hooks) (source.Account, error) {
	e, err := s.find(ctx, user)
	if err != nil {
		return source.Account{}, err
	}
	m := ldapv3.NewModifyRequest(e.DN, nil)
	m.Delete("pwdAccountLockedTime", nil)
	if err := s.svc.Modify(ctx, m); err != nil && !ldapv3.IsErrorWithCode(err, ldapv3.LDAPResultNoSuchAttribute) {
		if ldapv3.IsErrorWithCode(err, ldapv3.LDAPResultInsufficientAccessRights) {
			return source.Account{}, &source.NotPermittedError{Action: "unlock accounts", Need: "write access to pwdAccountLockedTime on the users"}
		}
		return source.Account{}, ldapconn.Unavailable("unlocking the account", err)
	}
	a, err := s.Account(ctx, user)
	if err != nil {
		return a, err
	}
	return h.Committed(ctx, a)
}
