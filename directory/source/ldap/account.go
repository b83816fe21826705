package ldap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	ldapv3 "github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/source/ldapconn"
)

// ppolicy's operational attributes of a user, and what else the source
// reads. userPassword and pwdHistory are read only to tell one setting of
// the password from another (the stamp): pwdChangedTime has one-second
// resolution.
var stateAttrs = []string{"displayName", "cn", "pwdChangedTime", "pwdReset", "pwdAccountLockedTime", "pwdGraceUseTime",
	"pwdPolicySubentry", "pwdHistory", "userPassword", "modifyTimestamp"}

func (s *Source) userAttrs() []string { return append([]string{s.cfg.UserAttr}, stateAttrs...) }

// userFilter is the filter for one user by name, within scope.
func (s *Source) userFilter(name string) string {
	return "(&" + s.filter + ")(" + s.cfg.UserAttr + "=" + ldapv3.EscapeFilter(name) + "))"
}

// allFilter is every user in scope.
func (s *Source) allFilter() string { return s.filter + ")" }

// validName refuses names no directory user can have (and so need no
// search).
func validName(name string) bool {
	return name != "" && len(name) <= 256 && !strings.ContainsAny(name, "\x00\n\r")
}

// find reads one user in scope: ErrUnknownUser when there is none.
func (s *Source) find(ctx context.Context, name string) (*ldapv3.Entry, error) {
	if !validName(name) {
		return nil, source.ErrUnknownUser
	}
	es, err := s.svc.Search(ctx, s.cfg.BaseDN, ldapv3.ScopeWholeSubtree, s.userFilter(name), s.userAttrs())
	if err != nil {
		return nil, ldapconn.Unavailable("looking up "+name, err)
	}
	switch len(es) {
	case 0:
		return nil, source.ErrUnknownUser
	case 1:
		return es[0], nil
	}
	return nil, fmt.Errorf("%d users in scope have %s=%q: %w", len(es), s.cfg.UserAttr, name, source.ErrUnavailable)
}

// Account implements source.Source.
func (s *Source) Account(ctx context.Context, user string) (source.Account, error) {
	e, err := s.find(ctx, user)
	if err != nil {
		return source.Account{}, err
	}
	return s.account(ctx, e), nil
}

// Accounts implements source.Source.
func (s *Source) Accounts(ctx context.Context) ([]source.Account, error) {
	es, err := s.svc.Search(ctx, s.cfg.BaseDN, ldapv3.ScopeWholeSubtree, s.allFilter(), s.userAttrs())
	if err != nil {
		return nil, ldapconn.Unavailable("listing users", err)
	}
	out := make([]source.Account, 0, len(es))
	for _, e := range es {
		out = append(out, s.account(ctx, e))
	}
	return out, nil
}

// lockedForever is ppolicy's pwdAccountLockedTime for an account an
// administrator locked: it stays locked until unlocked, whatever the
// lockout duration.
const lockedForever = "000001010000Z"

// account turns an entry into an Account.
func (s *Source) account(ctx context.Context, e *ldapv3.Entry) source.Account {
	now := s.now()
	a := source.Account{User: e.GetAttributeValue(s.cfg.UserAttr), DisplayName: e.GetAttributeValue("displayName"), Where: e.DN}
	if a.DisplayName == "" {
		a.DisplayName = e.GetAttributeValue("cn")
	}
	pol := s.userPolicy(ctx, e.GetAttributeValue("pwdPolicySubentry"))
	if pol.name != "" && normDN(pol.dn) != s.defaultDN() {
		p := pol.source()
		a.Policy = &p
	}
	changed := e.GetAttributeValue("pwdChangedTime")
	if t, ok := genTime(changed); ok {
		a.ChangedAt = t
		if pol.maxAge > 0 {
			exp := t.Add(pol.maxAge)
			a.ExpiresAt = &exp
			if !exp.After(now) {
				a.MustChange, a.Expired = true, true
			}
		}
	}
	if strings.EqualFold(e.GetAttributeValue("pwdReset"), "TRUE") {
		a.MustChange = true
	}
	if a.Expired && pol.graceLimit > 0 {
		a.GraceLogins = max(0, pol.graceLimit-len(e.GetAttributeValues("pwdGraceUseTime")))
	}
	if lt := e.GetAttributeValue("pwdAccountLockedTime"); lt != "" {
		start, ok := genTime(lt)
		switch {
		case lt == lockedForever || !ok || pol.lockoutDuration == 0:
			a.Locked = true // until an administrator unlocks it
		case start.Add(pol.lockoutDuration).After(now):
			end := start.Add(pol.lockoutDuration)
			a.Locked, a.LockedUntil = true, &end
		}
	}
	a.Stamp = stamp(changed, e)
	return a
}

// stamp identifies one setting of the password: pwdChangedTime (seconds)
// and a digest of the stored password and its history where the bind
// account may read them (each setting stores a new salted hash, and adds
// the previous one to pwdHistory), so that two settings within a second
// differ.
func stamp(changed string, e *ldapv3.Entry) string {
	vals := append(append([]string{}, e.GetAttributeValues("userPassword")...), e.GetAttributeValues("pwdHistory")...)
	if len(vals) == 0 {
		if changed == "" {
			return "t0"
		}
		return "t" + changed
	}
	sort.Strings(vals)
	h := sha256.New()
	for _, v := range vals {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	return "t" + changed + "-" + hex.EncodeToString(h.Sum(nil)[:6])
}

// genTime parses an LDAP GeneralizedTime (with or without fractions, in
// UTC).
func genTime(v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	for _, layout := range []string{"20060102150405Z", "20060102150405.999999Z", "200601021504Z"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
