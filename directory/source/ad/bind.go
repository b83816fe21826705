package ad

import (
	"context"
	"errors"
	"regexp"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/source/ldapconn"
)

// AD's bind sub-codes: the "data NNN" of an invalidCredentials (49)
// answer, the Win32 error of the failed logon.
const (
	subNoSuchUser      = "525"
	subWrongPassword   = "52e"
	subNotPermitted    = "530" // logon hours
	subWorkstation     = "531"
	subPasswordExpired = "532"
	subDisabled        = "533"
	subAccountExpired  = "701"
	subMustChange      = "773"
	subLocked          = "775"
)

var subCodeRE = regexp.MustCompile(`(?i)\bdata ([0-9a-f]{3,8})\b`)

// subCode returns the "data NNN" of an AD bind error, lower case, or "".
func subCode(err error) string {
	var le *ldap.Error
	if !errors.As(err, &le) || le.ResultCode != ldap.LDAPResultInvalidCredentials || le.Err == nil {
		return ""
	}
	m := subCodeRE.FindStringSubmatch(le.Err.Error())
	if m == nil {
		return ""
	}
	return m[1]
}

// bindReason says in words why a bind was refused, for errors about the
// bind account.
func bindReason(err error) string {
	switch subCode(err) {
	case subWrongPassword, subNoSuchUser:
		return "wrong password or no such account"
	case subPasswordExpired:
		return "its password expired"
	case subMustChange:
		return "its password must be changed first"
	case subDisabled:
		return "the account is disabled"
	case subAccountExpired:
		return "the account expired"
	case subLocked:
		return "the account is locked out"
	case subNotPermitted, subWorkstation:
		return "the account may not sign in now or from here"
	}
	return "refused"
}

// bindAs binds as the user at dn. It returns the connection, bound, when
// the password is right and nothing stands in the way (the caller releases
// it), and otherwise the bind's verdict: nil connection with must=true for
// a right password that must be changed first (773, 532), or an error
// (source.ErrWrongPassword, ErrDisabled, *LockedError is left to the
// caller, which knows the account).
func (s *Source) bindAs(ctx context.Context, dn string, password []byte) (c *ldap.Conn, sub string, err error) {
	c, err = s.binds.Get(ctx)
	if err != nil {
		return nil, "", ldapconn.Unavailable("connecting for a user bind", err)
	}
	_, err = s.d.Bind(c, dn, password)
	if err == nil {
		return c, "", nil
	}
	sub = subCode(err)
	if sub == "" {
		c.Close()
		if ldapconn.IsNetwork(err) {
			return nil, "", ldapconn.Unavailable("binding as a user", err)
		}
		var le *ldap.Error
		if errors.As(err, &le) && le.ResultCode == ldap.LDAPResultInvalidCredentials {
			return nil, subWrongPassword, nil
		}
		return nil, "", ldapconn.Unavailable("binding as a user", err)
	}
	s.binds.Put(c) // a refused bind leaves the connection anonymous
	return nil, sub, nil
}

// Verify implements source.Source: a bind as the user, whose sub-code
// says what AD thinks of the password and the account.
func (s *Source) Verify(ctx context.Context, user string, password []byte, _ source.Attempt) (source.Account, error) {
	e, err := s.find(ctx, user)
	dn := ""
	switch {
	case errors.Is(err, source.ErrUnknownUser):
		// The same work as for a real user: a bind that fails.
		dn = "CN=lockstep-no-such-user," + s.cfg.BaseDN
	case err != nil:
		return source.Account{}, err
	default:
		dn = e.DN
	}
	if !utf8.Valid(password) {
		// No AD password is invalid UTF-8 (unicodePwd is UTF-16): not
		// worth a failed bind against the user's lockout.
		if e == nil {
			return source.Account{}, source.ErrUnknownUser
		}
		return source.Account{}, source.ErrWrongPassword
	}
	c, sub, err := s.bindAs(ctx, dn, password)
	if err != nil {
		return source.Account{}, err
	}
	if c != nil {
		s.binds.Put(c)
	}
	if e == nil {
		return source.Account{}, source.ErrUnknownUser
	}
	return s.verdict(ctx, user, sub)
}

// verdict turns a bind's sub-code into the account's state or a refusal,
// reading the account again (a failed bind may have locked it).
func (s *Source) verdict(ctx context.Context, user, sub string) (source.Account, error) {
	a, err := s.Account(ctx, user)
	if err != nil {
		return source.Account{}, err
	}
	switch sub {
	case "":
		return a, nil
	case subMustChange, subPasswordExpired:
		a.MustChange = true
		a.Expired = sub == subPasswordExpired
		return a, nil
	case subLocked:
		a.Locked = true
		return a, &source.LockedError{Account: a}
	case subDisabled, subAccountExpired, subNotPermitted, subWorkstation:
		return a, source.ErrDisabled
	}
	if a.Locked {
		// This failure locked it.
		return a, &source.LockedError{Account: a}
	}
	return a, source.ErrWrongPassword
}
