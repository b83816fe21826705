package ad

import (
	"context"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/source/ldapconn"
	"github.com/lockstep-dev/lockstep/protocol"
)

// unicodePwd encodes a password as AD's unicodePwd wants it: in double
// quotes, UTF-16LE. The caller wipes the result.
func unicodePwd(pw []byte) []byte {
	out := make([]byte, 0, 2*(len(pw)+2))
	add := func(r rune) {
		for _, u := range utf16.Encode([]rune{r}) {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	add('"')
	for i := 0; i < len(pw); {
		r, n := utf8.DecodeRune(pw[i:])
		add(r)
		i += n
	}
	add('"')
	return out
}

// Change implements source.Source with AD's change operation: in one
// modify, delete the current unicodePwd and add the new one, so that AD
// checks the current password and applies its complexity, history and
// minimum age. It runs on a connection bound as the user; when AD will
// not let the user bind until the password is changed (773, 532), on
// Lockstep's own connection, where the deleted value is the proof.
func (s *Source) Change(ctx context.Context, user string, current, next []byte, _ source.Attempt, h source.Hooks) (source.Account, error) {
	e, err := s.find(ctx, user)
	if err != nil {
		return source.Account{}, err
	}
	if !utf8.Valid(current) {
		return source.Account{}, source.ErrWrongPassword
	}
	c, sub, err := s.bindAs(ctx, e.DN, current)
	if err != nil {
		return source.Account{}, err
	}
	if c != nil {
		defer s.binds.Put(c)
	}
	before, err := s.verdict(ctx, user, sub)
	if err != nil {
		return before, err
	}
	if h.Verified != nil {
		if err := h.Verified(ctx, before); err != nil {
			return before, err
		}
	}
	oldPwd, newPwd := unicodePwd(current), unicodePwd(next)
	defer clear(oldPwd)
	defer clear(newPwd)
	m := ldap.NewModifyRequest(e.DN, nil)
	m.Delete("unicodePwd", []string{ldapconn.View(oldPwd)})
	m.Add("unicodePwd", []string{ldapconn.View(newPwd)})
	s.ops.Modifies.Add(1)
	if c != nil {
		err = c.Modify(m)
	} else {
		err = s.svc.Do(ctx, func(sc *ldap.Conn) error { return sc.Modify(m) })
	}
	if err != nil {
		if ldapconn.IsNetwork(err) {
			// The answer was lost: see whether AD took the change.
			if after, aerr := s.Account(ctx, user); aerr == nil && after.Stamp != before.Stamp {
				return h.Committed(ctx, after)
			}
			return before, ldapconn.Unavailable("changing the password", err)
		}
		return before, s.changeError(ctx, err, before)
	}
	after, err := s.Account(ctx, user)
	if err != nil {
		return before, err
	}
	return h.Committed(ctx, after)
}

// AD's error codes in a refused password write (the Win32 error that
// starts the diagnostic message).
const (
	errPolicy       = "0000052d" // ERROR_PASSWORD_RESTRICTION
	errWrongOld     = "00000056" // ERROR_INVALID_PASSWORD
	errAccessDenied = "00000005"
	errInsuffAccess = "00002098" // INSUFF_ACCESS_RIGHTS
)

// changeError turns a refused modify into the source's error: a policy
// refusal with the rules it broke, a wrong current password, or a right the
// account lacks.
func (s *Source) changeError(ctx context.Context, err error, a source.Account) error {
	var le *ldap.Error
	if !errors.As(err, &le) {
		return ldapconn.Unavailable("changing the password", err)
	}
	msg := ""
	if le.Err != nil {
		msg = strings.ToLower(le.Err.Error())
	}
	switch {
	case strings.Contains(msg, errWrongOld):
		return source.ErrWrongPassword
	case le.ResultCode == ldap.LDAPResultConstraintViolation && strings.Contains(msg, errPolicy),
		le.ResultCode == ldap.LDAPResultConstraintViolation && strings.Contains(msg, "check_password_restrictions"):
		return s.policyError(ctx, msg, a)
	case le.ResultCode == ldap.LDAPResultInsufficientAccessRights || strings.Contains(msg, errInsuffAccess) || strings.Contains(msg, errAccessDenied):
		return &source.NotPermittedError{Action: "change", Need: "the Change Password right (granted to Everyone by default)"}
	}
	return ldapconn.Unavailable("changing the password", err)
}

// policyError says which rules a refused password broke. Windows DCs say
// only "0000052D"; Samba adds the reason, which picks the rule. Without
// one, the rules Lockstep cannot check before sending (history, minimum
// age) are the suspects, since the others were checked.
func (s *Source) policyError(ctx context.Context, msg string, a source.Account) error {
	pol, _ := s.Policy(ctx)
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
	case strings.Contains(msg, "too short"):
		vs = append(vs, pick(protocol.RuleMinLength))
	case strings.Contains(msg, "complexity"):
		vs = append(vs, pick(protocol.RuleCategories))
	case strings.Contains(msg, "history") || strings.Contains(msg, "already used"):
		vs = append(vs, pick(protocol.RuleHistory))
	case strings.Contains(msg, "too young") || strings.Contains(msg, "minimum password age"):
		vs = append(vs, pick(protocol.RuleMinAge))
	default:
		for _, r := range rules {
			if !r.Local {
				vs = append(vs, protocol.Violation{Code: r.Code, Message: r.Message})
			}
		}
		if len(vs) == 0 {
			vs = append(vs, protocol.Violation{Code: "directory_policy", Message: "Meets the directory's rules"})
		}
	}
	return &source.PolicyError{Violations: vs, Detail: msg}
}

// Reset implements source.Source: an administrator's reset replaces
// unicodePwd (the Reset Password right); temporary also sets pwdLastSet
// to 0 (writing pwdLastSet), in the same modify, so that AD never holds
// the new password without its must-change mark.
func (s *Source) Reset(ctx context.Context, user string, password []byte, temporary bool, h source.Hooks) (source.Account, error) {
	e, err := s.find(ctx, user)
	if err != nil {
		return source.Account{}, err
	}
	pwd := unicodePwd(password)
	defer clear(pwd)
	m := ldap.NewModifyRequest(e.DN, nil)
	m.Replace("unicodePwd", []string{ldapconn.View(pwd)})
	if temporary {
		m.Replace("pwdLastSet", []string{"0"})
	}
	s.ops.Modifies.Add(1)
	if err := s.svc.Do(ctx, func(c *ldap.Conn) error { return c.Modify(m) }); err != nil {
		if denied(err) {
			need := "the Reset Password right on the users' OU"
			if temporary {
				need = "the Reset Password right and Write pwdLastSet on the users' OU"
			}
			return source.Account{}, &source.NotPermittedError{Action: "reset passwords", Need: need}
		}
		var le *ldap.Error
		if errors.As(err, &le) && le.ResultCode == ldap.LDAPResultConstraintViolation {
			return source.Account{}, s.policyError(ctx, strings.ToLower(le.Error()), s.account(ctx, e))
		}
		return source.Account{}, ldapconn.Unavailable("resetting the password", err)
	}
	a, err := s.Account(ctx, user)
	if err != nil {
		return a, err
	}
	return h.Committed(ctx, a)
}

// Unlock implements source.Source: lockoutTime set to 0 (writing
// lockoutTime).
func (s *Source) Unlock(ctx context.Context, user string, h source.Hooks) (source.Account, error) {
	e, err := s.find(ctx, user)
	if err != nil {
		return source.Account{}, err
	}
	m := ldap.NewModifyRequest(e.DN, nil)
	m.Replace("lockoutTime", []string{"0"})
	s.ops.Modifies.Add(1)
	if err := s.svc.Do(ctx, func(c *ldap.Conn) error { return c.Modify(m) }); err != nil {
		if denied(err) {
			return source.Account{}, &source.NotPermittedError{Action: "unlock accounts", Need: "Write lockoutTime on the users' OU"}
		}
		return source.Account{}, ldapconn.Unavailable("unlocking the account", err)
	}
	a, err := s.Account(ctx, user)
	if err != nil {
		return a, err
	}
	return h.Committed(ctx, a)
}

// denied reports a write AD refused for want of a right.
func denied(err error) bool {
	var le *ldap.Error
	if !errors.As(err, &le) {
		return false
	}
	msg := ""
	if le.Err != nil {
		msg = strings.ToLower(le.Err.Error())
	}
	return le.ResultCode == ldap.LDAPResultInsufficientAccessRights || strings.Contains(msg, errInsuffAccess) ||
		(le.ResultCode == ldap.LDAPResultUnwillingToPerform && strings.Contains(msg, errAccessDenied))
}
