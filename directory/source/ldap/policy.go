package ldap

import (
	"context"
	"math"
	"strconv"
	"strings"
	"time"

	ldapv3 "github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/source/ldapconn"
	"github.com/lockstep-dev/lockstep/protocol"
)

// A pwdPolicy entry's settings (draft-behera; OpenLDAP's ppolicy).
var policyAttrs = []string{"cn", "pwdMinLength", "pwdCheckQuality", "pwdInHistory", "pwdMaxAge", "pwdMinAge", "pwdExpireWarning",
	"pwdMaxFailure", "pwdLockout", "pwdLockoutDuration", "pwdMustChange", "pwdGraceAuthNLimit", "pwdAllowUserChange"}

// expiryWarningDays is when Macs start warning before a password expires
// when the policy's pwdExpireWarning is 0 (ppolicy then warns never).
const expiryWarningDays = 14

// ppolicy is one pwdPolicy entry.
type ppolicy struct {
	dn, name        string
	minLength       int // 0 when pwdCheckQuality is 0 (ppolicy then checks no length)
	inHistory       int
	maxAge, minAge  time.Duration
	expireWarning   time.Duration
	maxFailure      int
	lockout         bool
	lockoutDuration time.Duration
	mustChange      bool
	graceLimit      int
}

func policyFromEntry(e *ldapv3.Entry) ppolicy {
	num := func(name string) int {
		n, _ := strconv.Atoi(e.GetAttributeValue(name))
		return max(n, 0)
	}
	secs := func(name string) time.Duration { return time.Duration(num(name)) * time.Second }
	yes := func(name string) bool { return strings.EqualFold(e.GetAttributeValue(name), "TRUE") }
	p := ppolicy{dn: e.DN, name: e.GetAttributeValue("cn"), inHistory: num("pwdInHistory"), maxAge: secs("pwdMaxAge"),
		minAge: secs("pwdMinAge"), expireWarning: secs("pwdExpireWarning"), maxFailure: num("pwdMaxFailure"),
		lockout: yes("pwdLockout"), lockoutDuration: secs("pwdLockoutDuration"), mustChange: yes("pwdMustChange"),
		graceLimit: num("pwdGraceAuthNLimit")}
	if num("pwdCheckQuality") > 0 {
		p.minLength = num("pwdMinLength")
	}
	return p
}

// source maps the policy to Lockstep's: ppolicy has length, history and
// ages, and no character classes (Lockstep's own rules may add them).
func (p ppolicy) source() source.Policy {
	r := protocol.Policy{MinLength: max(1, min(p.minLength, protocol.MaxPasswordBytes)), HistoryCount: min(p.inHistory, 50)}
	days := func(d time.Duration) int { return int(math.Ceil(d.Hours() / 24)) }
	if p.maxAge > 0 {
		r.MaxAgeDays = min(days(p.maxAge), 3650)
		warn := expiryWarningDays
		if p.expireWarning > 0 {
			warn = days(p.expireWarning)
		}
		r.ExpiryWarningDays = max(0, min(warn, r.MaxAgeDays-1))
	}
	if p.minAge > 0 {
		r.MinAgeDays = min(days(p.minAge), 998)
	}
	out := source.Policy{Rules: r, Name: p.name}
	if p.lockout {
		out.LockoutThreshold = p.maxFailure
		out.LockoutDuration = p.lockoutDuration
	}
	return out
}

// Policy implements source.Source: the default policy (PolicyDN, or the
// one under the base DN).
func (s *Source) Policy(ctx context.Context) (source.Policy, error) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	p := s.policies[s.def].source()
	p.Name = ""
	return p, nil
}

func (s *Source) defaultDN() string {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return s.def
}

// loadPolicies finds the default policy: PolicyDN, or the one pwdPolicy
// entry under the base DN; a setting that names none is a *ConfigError.
func (s *Source) loadPolicies(ctx context.Context) error {
	var dn string
	if s.cfg.PolicyDN != "" {
		es, err := s.svc.Search(ctx, s.cfg.PolicyDN, ldapv3.ScopeBaseObject, "(objectClass=pwdPolicy)", policyAttrs)
		switch {
		case ldapv3.IsErrorWithCode(err, ldapv3.LDAPResultNoSuchObject), err == nil && len(es) == 0:
			return &ConfigError{Field: "PolicyDN", Problem: "is not a pwdPolicy entry the bind account can read", Err: err}
		case err != nil:
			return &ConfigError{Field: "PolicyDN", Problem: "cannot be read", Err: err}
		}
		s.remember(es[0])
		dn = es[0].DN
	} else {
		es, err := s.svc.Search(ctx, s.cfg.BaseDN, ldapv3.ScopeWholeSubtree, "(objectClass=pwdPolicy)", policyAttrs)
		if err != nil {
			return &ConfigError{Field: "PolicyDN", Problem: "is not set and the pwdPolicy entries under the base DN cannot be read", Err: err}
		}
		switch len(es) {
		case 0:
			return &ConfigError{Field: "PolicyDN", Problem: "is needed: there is no pwdPolicy entry under the base DN (name ppolicy_default's entry)"}
		case 1:
		default:
			return &ConfigError{Field: "PolicyDN", Problem: "is needed: there are " + strconv.Itoa(len(es)) + " pwdPolicy entries under the base DN (name ppolicy_default's entry)"}
		}
		s.remember(es[0])
		dn = es[0].DN
	}
	s.pmu.Lock()
	s.def = normDN(dn)
	s.pmu.Unlock()
	return nil
}

func (s *Source) remember(e *ldapv3.Entry) ppolicy {
	p := policyFromEntry(e)
	s.pmu.Lock()
	s.policies[normDN(e.DN)] = p
	s.pmu.Unlock()
	return p
}

// userPolicy is the policy of a user whose pwdPolicySubentry is dn ("" for
// the default), read once and then kept (policy changes are watched).
func (s *Source) userPolicy(ctx context.Context, dn string) ppolicy {
	s.pmu.Lock()
	def := s.policies[s.def]
	p, ok := s.policies[normDN(dn)]
	s.pmu.Unlock()
	if dn == "" || ok {
		if ok {
			return p
		}
		return def
	}
	es, err := s.svc.Search(ctx, dn, ldapv3.ScopeBaseObject, "(objectClass=pwdPolicy)", policyAttrs)
	if err != nil || len(es) != 1 {
		s.log.Warn("a user's pwdPolicySubentry is not readable; using the default policy", "policy_dn", dn, "err", err)
		return def
	}
	return s.remember(es[0])
}

// policyDNs lists the policies read so far.
func (s *Source) policyDNs() []string {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	out := make([]string, 0, len(s.policies))
	for _, p := range s.policies {
		out = append(out, p.dn)
	}
	return out
}

// reloadPolicies reads every known policy again and reports whether one
// changed.
func (s *Source) reloadPolicies(ctx context.Context) (bool, error) {
	changed := false
	for _, dn := range s.policyDNs() {
		es, err := s.svc.Search(ctx, dn, ldapv3.ScopeBaseObject, "(objectClass=pwdPolicy)", policyAttrs)
		if err != nil && !ldapv3.IsErrorWithCode(err, ldapv3.LDAPResultNoSuchObject) {
			return changed, ldapconn.Unavailable("reading the password policy", err)
		}
		if len(es) != 1 {
			continue
		}
		p := policyFromEntry(es[0])
		s.pmu.Lock()
		if old := s.policies[normDN(dn)]; old != p {
			changed = true
			s.policies[normDN(dn)] = p
		}
		s.pmu.Unlock()
	}
	return changed, nil
}
