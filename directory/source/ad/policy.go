package ad

import (
	"context"
	"math"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/source/ldapconn"
	"github.com/lockstep-dev/lockstep/protocol"
)

// The domain's password settings, on the domain head.
var domainPolicyAttrs = []string{"minPwdLength", "pwdProperties", "pwdHistoryLength", "maxPwdAge", "minPwdAge",
	"lockoutThreshold", "lockoutDuration", "uSNChanged"}

// A fine-grained policy's (msDS-PasswordSettings).
var psoAttrs = []string{"cn", "msDS-MinimumPasswordLength", "msDS-PasswordComplexityEnabled", "msDS-PasswordHistoryLength",
	"msDS-MaximumPasswordAge", "msDS-MinimumPasswordAge", "msDS-LockoutThreshold", "msDS-LockoutDuration"}

// domainPasswordComplex is pwdProperties' complexity bit.
const domainPasswordComplex = 0x1

// expiryWarningDays is when Macs start warning before an AD password
// expires (AD has no such setting; Windows warns 5-14 days ahead).
const expiryWarningDays = 14

// Policy implements source.Source: the domain's policy.
func (s *Source) Policy(ctx context.Context) (source.Policy, error) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return s.domain, nil
}

// loadPolicies reads the domain's policy and every fine-grained policy
// the bind account can read, and reports whether anything changed.
func (s *Source) loadPolicies(ctx context.Context) (bool, error) {
	var head, psos []*ldap.Entry
	err := s.svc.Do(ctx, func(c *ldap.Conn) error {
		var err error
		if head, err = s.d.Search(c, s.caps.defaultNC, ldap.ScopeBaseObject, "(objectClass=*)", domainPolicyAttrs); err != nil {
			return err
		}
		psos, err = s.d.Search(c, s.caps.passwordsNC, ldap.ScopeSingleLevel, "(objectClass=msDS-PasswordSettings)", psoAttrs)
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) || ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
			psos, err = nil, nil // no PSOs, or none this account may read
		}
		return err
	})
	if err != nil {
		return false, ldapconn.Unavailable("reading the password policy", err)
	}
	if len(head) != 1 {
		return false, ldapconn.Unavailable("reading the password policy", ldap.NewError(ldap.LDAPResultNoSuchObject, nil))
	}
	h := head[0]
	dom := policyFrom(h.GetAttributeValue("minPwdLength"), attrInt(h, "pwdProperties")&domainPasswordComplex != 0,
		attrInt(h, "pwdHistoryLength"), attrInt(h, "maxPwdAge"), attrInt(h, "minPwdAge"), attrInt(h, "lockoutThreshold"),
		attrInt(h, "lockoutDuration"))
	byDN := map[string]source.Policy{}
	for _, e := range psos {
		p := policyFrom(e.GetAttributeValue("msDS-MinimumPasswordLength"), strings.EqualFold(e.GetAttributeValue("msDS-PasswordComplexityEnabled"), "TRUE"),
			attrInt(e, "msDS-PasswordHistoryLength"), attrInt(e, "msDS-MaximumPasswordAge"), attrInt(e, "msDS-MinimumPasswordAge"),
			attrInt(e, "msDS-LockoutThreshold"), attrInt(e, "msDS-LockoutDuration"))
		p.Name = e.GetAttributeValue("cn")
		byDN[strings.ToLower(normDN(e.DN))] = p
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	changed := !samePolicy(s.domain, dom) || len(byDN) != len(s.psos)
	for k, p := range byDN {
		if old, ok := s.psos[k]; !ok || !samePolicy(old, p) {
			changed = true
		}
	}
	s.domain, s.psos, s.polAt = dom, byDN, s.now()
	return changed, nil
}

// userPolicy is the policy of a user whose msDS-ResultantPSO is pso.
func (s *Source) userPolicy(ctx context.Context, pso string) source.Policy {
	s.pmu.Lock()
	p, ok := s.psos[strings.ToLower(normDN(pso))]
	dom := s.domain
	s.pmu.Unlock()
	if pso == "" || ok {
		if ok {
			return p
		}
		return dom
	}
	// A PSO made since the last read: read them again.
	if _, err := s.loadPolicies(ctx); err == nil {
		s.pmu.Lock()
		p, ok = s.psos[strings.ToLower(normDN(pso))]
		s.pmu.Unlock()
		if ok {
			return p
		}
	}
	return dom
}

// policyFrom maps AD's settings to Lockstep's policy.
func policyFrom(minLen string, complex bool, history, maxAge, minAge, lockThreshold, lockDuration int64) source.Policy {
	n := int(attrIntString(minLen))
	n = max(1, min(n, protocol.MaxPasswordBytes))
	r := protocol.Policy{MinLength: n, HistoryCount: int(min(max(history, 0), 50))}
	if complex {
		// AD's complexity: three of five kinds, not the account name, not
		// a part of the display name.
		r.MinCategories, r.DisallowUsername, r.DisallowNameParts = 3, true, true
	}
	if d := interval(maxAge); d > 0 {
		r.MaxAgeDays = int(min(math.Ceil(d.Hours()/24), 3650))
		r.ExpiryWarningDays = min(expiryWarningDays, r.MaxAgeDays-1)
	}
	if d := interval(minAge); d > 0 {
		r.MinAgeDays = int(min(math.Ceil(d.Hours()/24), 998))
	}
	p := source.Policy{Rules: r, LockoutThreshold: int(max(lockThreshold, 0))}
	if lockDuration != math.MinInt64 {
		p.LockoutDuration = interval(lockDuration)
	}
	return p
}

func attrIntString(v string) int64 {
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

func samePolicy(a, b source.Policy) bool {
	return a.Name == b.Name && a.LockoutThreshold == b.LockoutThreshold && a.LockoutDuration == b.LockoutDuration &&
		a.Rules.MinLength == b.Rules.MinLength && a.Rules.MinCategories == b.Rules.MinCategories &&
		a.Rules.HistoryCount == b.Rules.HistoryCount && a.Rules.MaxAgeDays == b.Rules.MaxAgeDays &&
		a.Rules.MinAgeDays == b.Rules.MinAgeDays && a.Rules.DisallowNameParts == b.Rules.DisallowNameParts
}
