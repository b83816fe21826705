package ldap

import (
	"context"
	"errors"
	"time"

	ldapv3 "github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/source/ldapconn"
)

// bindResult is what a bind as the user said, with the password policy
// control's answer (draft-behera: error, timeBeforeExpiration,
// graceAuthNsRemaining).
type bindResult struct {
	ok      bool // the bind succeeded: the connection is bound as the user
	wrong   bool // invalidCredentials without a policy reason
	locked  bool // accountLocked
	expired bool // passwordExpired (no grace left: the bind failed)
	reset   bool // changeAfterReset: a temporary password
	expire  time.Duration
	grace   int // graceAuthNsRemaining; -1 when not sent
}

// bindAs binds c as dn with the password policy request control.
func (s *Source) bindAs(c *ldapv3.Conn, dn string, password []byte) (bindResult, error) {
	res, err := s.d.Bind(c, dn, password, ldapv3.NewControlBeheraPasswordPolicy())
	r := bindResult{ok: err == nil, grace: -1}
	if res != nil {
		for _, ctl := range res.Controls {
			pp, ok := ctl.(*ldapv3.ControlBeheraPasswordPolicy)
			if !ok {
				continue
			}
			switch pp.Error {
			case 0:
				r.expired = true
			case 1:
				r.locked = true
			case 2:
				r.reset = true
			}
			if pp.Expire >= 0 {
				r.expire = time.Duration(pp.Expire) * time.Second
			}
			if pp.Grace >= 0 {
				r.grace = int(pp.Grace)
			}
		}
	}
	if err == nil {
		return r, nil
	}
	if ldapv3.IsErrorWithCode(err, ldapv3.LDAPResultInvalidCredentials) {
		r.wrong = !r.locked && !r.expired
		return r, nil
	}
	if ldapconn.IsNetwork(err) {
		return r, ldapconn.Unavailable("binding as a user", err)
	}
	return r, ldapconn.Unavailable("binding as a user", err)
}

// Verify implements source.Source: a bind as the user, whose password
// policy control says what ppolicy thinks of the password and the account.
func (s *Source) Verify(ctx context.Context, user string, password []byte, _ source.Attempt) (source.Account, error) {
	e, err := s.find(ctx, user)
	dn := ""
	switch {
	case errors.Is(err, source.ErrUnknownUser):
		// The same work as for a real user: a bind that fails.
		dn = s.cfg.UserAttr + "=lockstep-no-such-user," + s.cfg.BaseDN
	case err != nil:
		return source.Account{}, err
	default:
		dn = e.DN
	}
	c, err := s.binds.Get(ctx)
	if err != nil {
		return source.Account{}, ldapconn.Unavailable("connecting for a user bind", err)
	}
	r, err := s.bindAs(c, dn, password)
	s.binds.Put(c) // a connection bound as a user serves only user binds
	if err != nil {
		return source.Account{}, err
	}
	if e == nil {
		return source.Account{}, source.ErrUnknownUser
	}
	return s.verdict(ctx, user, r)
}

// verdict turns a bind's answer into the account's state or a refusal,
// reading the account again (a failed bind may have locked it).
func (s *Source) verdict(ctx context.Context, user string, r bindResult) (source.Account, error) {
	a, err := s.Account(ctx, user)
	if err != nil {
		return source.Account{}, err
	}
	switch {
	case r.locked:
		a.Locked = true
		return a, &source.LockedError{Account: a}
	case r.wrong && a.Locked:
		// This failure locked it (or the server hides locks:
		// ppolicy_use_lockout off).
		return a, &source.LockedError{Account: a}
	case r.wrong:
		return a, source.ErrWrongPassword
	case r.expired:
		// The right password, expired, no grace login left.
		a.MustChange, a.Expired, a.GraceLogins = true, true, 0
		return a, nil
	}
	if r.reset {
		a.MustChange = true
	}
	if r.grace >= 0 {
		a.MustChange, a.Expired, a.GraceLogins = true, true, r.grace
	}
	if r.expire > 0 && a.ExpiresAt == nil {
		t := s.now().Add(r.expire)
		a.ExpiresAt = &t
	}
	return a, nil
}
