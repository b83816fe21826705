package ad

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/source/ldapconn"
)

// userAttrs are what the source reads of a user.
var userAttrs = []string{"sAMAccountName", "displayName", "pwdLastSet", "lockoutTime", "userAccountControl",
	"msDS-User-Account-Control-Computed", "msDS-UserPasswordExpiryTimeComputed", "accountExpires",
	"replPropertyMetaData", "uSNChanged", "msDS-ResultantPSO", "objectClass", "isDeleted", "mail"}

// userAccountControl and msDS-User-Account-Control-Computed bits.
const (
	ufAccountDisable  = 0x0002
	ufLockout         = 0x0010
	ufDontExpire      = 0x10000
	ufPasswordExpired = 0x800000
)

// attidUnicodePwd is unicodePwd's attribute id in replPropertyMetaData.
const attidUnicodePwd = 0x0009005a

// never is AD's "no end" for 64-bit times and intervals.
const never = math.MaxInt64

// userFilter is the filter for one user by name, within scope.
func (s *Source) userFilter(name string) string {
	return "(&" + s.filter + ")(sAMAccountName=" + ldap.EscapeFilter(name) + "))"
}

// validName refuses names that cannot be a sAMAccountName (and so need no
// search): AD allows at most 20 characters there, none of "/\[]:;|=,+*?<>@.
func validName(name string) bool {
	return name != "" && len(name) <= 256 && !strings.ContainsAny(name, "\"/\\[]:;|=,+*?<>\x00")
}

// find reads one user in scope: ErrUnknownUser when there is none.
func (s *Source) find(ctx context.Context, name string) (*ldap.Entry, error) {
	if !validName(name) {
		return nil, source.ErrUnknownUser
	}
	var es []*ldap.Entry
	err := s.svc.Do(ctx, func(c *ldap.Conn) error {
		var err error
		es, err = s.d.Search(c, s.cfg.BaseDN, ldap.ScopeWholeSubtree, s.userFilter(name), userAttrs)
		return err
	})
	if err != nil {
		return nil, ldapconn.Unavailable("looking up "+name, err)
	}
	switch len(es) {
	case 0:
		return nil, source.ErrUnknownUser
	case 1:
	default:
		return nil, fmt.Errorf("%d users in scope are named %q: %w", len(es), name, source.ErrUnavailable)
	}
	e := es[0]
	// msDS-ResultantPSO is constructed: some DCs give it on base reads only.
	if e.GetAttributeValue("msDS-ResultantPSO") == "" {
		var base []*ldap.Entry
		if err := s.svc.Do(ctx, func(c *ldap.Conn) error {
			var err error
			base, err = s.d.Search(c, e.DN, ldap.ScopeBaseObject, "(objectClass=*)", []string{"msDS-ResultantPSO"})
			return err
		}); err == nil && len(base) == 1 {
			if v := base[0].GetAttributeValue("msDS-ResultantPSO"); v != "" {
				e.Attributes = append(e.Attributes, ldap.NewEntryAttribute("msDS-ResultantPSO", []string{v}))
			}
		}
	}
	return e, nil
}

// Account implements source.Source.
func (s *Source) Account(ctx context.Context, user string) (source.Account, error) {
	e, err := s.find(ctx, user)
	if err != nil {
		return source.Account{}, err
	}
	s.watcher.watchContainer(ldapconn.ParentDN(e.DN))
	return s.account(ctx, e), nil
}

// Accounts implements source.Source.
func (s *Source) Accounts(ctx context.Context) ([]source.Account, error) {
	var es []*ldap.Entry
	err := s.svc.Do(ctx, func(c *ldap.Conn) error {
		var err error
		es, err = s.d.Search(c, s.cfg.BaseDN, ldap.ScopeWholeSubtree, "(&"+s.filter+")(sAMAccountName=*))", userAttrs)
		return err
	})
	if err != nil {
		return nil, ldapconn.Unavailable("listing users", err)
	}
	out := make([]source.Account, 0, len(es))
	for _, e := range es {
		s.watcher.watchContainer(ldapconn.ParentDN(e.DN))
		out = append(out, s.account(ctx, e))
	}
	return out, nil
}

// AccountsByEmail implements source.EmailFinder: users in scope whose mail
// is email (AD compares mail without regard to case).
func (s *Source) AccountsByEmail(ctx context.Context, email string) ([]source.Account, error) {
	email = strings.TrimSpace(email)
	if email == "" || len(email) > 256 {
		return nil, nil
	}
	var es []*ldap.Entry
	err := s.svc.Do(ctx, func(c *ldap.Conn) error {
		var err error
		es, err = s.d.Search(c, s.cfg.BaseDN, ldap.ScopeWholeSubtree,
			"(&"+s.filter+")(sAMAccountName=*)(mail="+ldap.EscapeFilter(email)+"))", userAttrs)
		return err
	})
	if err != nil {
		return nil, ldapconn.Unavailable("looking up an address", err)
	}
	out := make([]source.Account, 0, len(es))
	for _, e := range es {
		out = append(out, s.account(ctx, e))
	}
	return out, nil
}

// account turns an entry into an Account.
func (s *Source) account(ctx context.Context, e *ldap.Entry) source.Account {
	now := s.now()
	uac := attrInt(e, "userAccountControl")
	computed := attrInt(e, "msDS-User-Account-Control-Computed")
	a := source.Account{User: e.GetAttributeValue("sAMAccountName"), DisplayName: e.GetAttributeValue("displayName"), Where: e.DN,
		Email: e.GetAttributeValue("mail")}
	pwdLastSet := attrInt(e, "pwdLastSet")
	if pwdLastSet == 0 {
		a.MustChange = true
	} else {
		a.ChangedAt = fileTime(pwdLastSet)
	}
	if computed&ufPasswordExpired != 0 {
		a.MustChange, a.Expired = true, true
	}
	if exp := attrInt(e, "msDS-UserPasswordExpiryTimeComputed"); exp != 0 && exp != never && uac&ufDontExpire == 0 {
		t := fileTime(exp)
		a.ExpiresAt = &t
		if !t.After(now) {
			a.MustChange, a.Expired = true, true
		}
	}
	if uac&ufAccountDisable != 0 {
		a.Disabled = true
	}
	if ae := attrInt(e, "accountExpires"); ae != 0 && ae != never && !fileTime(ae).After(now) {
		a.Disabled = true
	}
	pol := s.userPolicy(ctx, e.GetAttributeValue("msDS-ResultantPSO"))
	if pol.Name != "" {
		p := pol
		a.Policy = &p
	}
	if lt := attrInt(e, "lockoutTime"); lt != 0 {
		start := fileTime(lt)
		if pol.LockoutDuration > 0 {
			end := start.Add(pol.LockoutDuration)
			if end.After(now) {
				a.Locked, a.LockedUntil = true, &end
			}
		} else {
			a.Locked = true // until an administrator unlocks it
		}
	}
	if computed&ufLockout != 0 {
		a.Locked = true
	}
	if v, ok := pwdVersion(e.GetRawAttributeValue("replPropertyMetaData")); ok {
		a.Stamp = "v" + strconv.FormatUint(uint64(v), 10)
	} else {
		// Without replication metadata two temporary resets in a row look
		// alike (pwdLastSet stays 0).
		a.Stamp = "t" + strconv.FormatInt(pwdLastSet, 10)
	}
	return a
}

// pwdVersion reads the version of unicodePwd from a replPropertyMetaData
// blob (MS-DRSR REPL_PROPERTY_META_DATA_BLOB version 1: a 16-byte header
// with the count at 8, then 48-byte entries: attid, version, ...). It grows
// by one with every write of the password, whoever makes it.
func pwdVersion(b []byte) (uint32, bool) {
	if len(b) < 16 || binary.LittleEndian.Uint32(b) != 1 {
		return 0, false
	}
	n := int(binary.LittleEndian.Uint32(b[8:]))
	for i := 0; i < n && 16+48*(i+1) <= len(b); i++ {
		e := b[16+48*i:]
		if binary.LittleEndian.Uint32(e) == attidUnicodePwd {
			return binary.LittleEndian.Uint32(e[4:]), true
		}
	}
	return 0, false
}

func attrInt(e *ldap.Entry, name string) int64 {
	v, _ := strconv.ParseInt(e.GetAttributeValue(name), 10, 64)
	return v
}

// fileTime converts AD's 100-ns intervals since 1601 to a time.
func fileTime(v int64) time.Time {
	const epochDiff = 116444736000000000 // 1601 to 1970 in 100 ns
	return time.Unix(0, 0).Add(time.Duration(v-epochDiff) * 100).UTC()
}

// interval converts AD's negative 100-ns intervals (maxPwdAge and the
// rest) to a duration; "never" and zero are 0.
func interval(v int64) time.Duration {
	if v == math.MinInt64 || v == 0 {
		return 0
	}
	if v < 0 {
		v = -v
	}
	return time.Duration(v) * 100
}
