// Package ldap is an LDAP directory with the password-policy overlay
// (OpenLDAP's ppolicy, draft-behera) as Lockstep's source of truth
// (source.Source): users found by an attribute (uid by default) under a
// base DN, their passwords verified by binding as them with the password
// policy request control (so that a temporary, expired or locked password
// is told apart from a wrong one), changed with the Password Modify
// extended operation (RFC 3062) bound as the user (so that ppolicy applies
// its quality check, minimum length and history), reset and unlocked with
// the bind account's write access, the policy read from the pwdPolicy
// entries, and every change made anywhere reported at once through a
// syncrepl refreshAndPersist search (RFC 4533) whose cookie the hub keeps,
// polling pwdChangedTime where the server has no syncprov.
//
// One file per concern: ldap.go (settings and start-up checks), bind.go
// (verify and the ppolicy control), password.go (change, reset, unlock),
// policy.go (pwdPolicy entries), account.go (reading users), watch.go
// (syncrepl, polling).
package ldap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	ldapv3 "github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/source/ldapconn"
)

// Config configures the source. URL, BaseDN, BindDN and BindPassword are
// required.
type Config struct {
	// URL is ldaps://HOST[:PORT], or ldap://HOST[:PORT] for StartTLS; the
	// certificate is always verified.
	URL string
	// CAFile is a PEM file of the CA(s) that sign the server's certificate
	// ("" for the system roots).
	CAFile string
	// BaseDN is where users are looked for (the whole subtree).
	BaseDN string
	// BindDN is Lockstep's own account.
	BindDN string
	// BindPassword is its password; the caller wipes it after Close.
	BindPassword []byte
	// UserAttr is the attribute that holds the name Macs map to (default
	// uid).
	UserAttr string
	// UserFilter narrows the users in scope (an LDAP filter, for example
	// a group's memberOf).
	UserFilter string
	// PolicyDN is the pwdPolicy entry for users without a
	// pwdPolicySubentry of their own; "" for the one pwdPolicy entry under
	// the base DN.
	PolicyDN string
	// Timeout bounds each LDAP operation (default 10 s).
	Timeout time.Duration
	// PollInterval is how often pwdChangedTime is polled when the server
	// has no syncprov (default 30 s).
	PollInterval time.Duration
	// Log receives the source's log; nil discards it.
	Log *slog.Logger
	// Now is the clock (lockout ends, expiry); nil means time.Now.
	Now func() time.Time
}

// ConfigError is a setting the server or the checks refused; Field names
// the Config field, so that a command line can name its flag.
type ConfigError = ldapconn.ConfigError

// OIDs the source looks for in the rootDSE.
const (
	oidSyncRequest    = ldapv3.ControlTypeSyncRequest
	oidPasswordPolicy = ldapv3.ControlTypeBeheraPasswordPolicy
	oidPasswordModify = "1.3.6.1.4.1.4203.1.11.1"
)

// Source is an LDAP directory with ppolicy.
type Source struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	d      *ldapconn.Dialer
	svc    *ldapconn.Service
	binds  *ldapconn.Pool
	ops    ldapconn.Counters
	filter string // the users-in-scope filter, without the name
	scope  string // identifies base, filter and attribute in checkpoints
	caps   capabilities

	pmu      sync.Mutex
	policies map[string]ppolicy // by normalised DN
	def      string             // the default policy's normalised DN

	wmu     sync.Mutex
	syncing bool // a syncrepl search is in its persist phase
	polling bool
}

var _ source.Source = (*Source)(nil)

// capabilities are what the server said it supports, at start.
type capabilities struct {
	syncrepl, ppolicy, passwordModify bool
}

// New connects to the server, checks every setting against it (reachable,
// certificate trusted, bind accepted, base DN present, filter valid, a
// policy found) and returns the source. An error about a setting is a
// *ConfigError.
func New(ctx context.Context, cfg Config) (*Source, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.UserAttr == "" {
		cfg.UserAttr = "uid"
	}
	for _, f := range []struct{ name, v string }{{"URL", cfg.URL}, {"BaseDN", cfg.BaseDN}, {"BindDN", cfg.BindDN}} {
		if strings.TrimSpace(f.v) == "" {
			return nil, &ConfigError{Field: f.name, Problem: "is required"}
		}
	}
	if len(cfg.BindPassword) == 0 {
		return nil, &ConfigError{Field: "BindPassword", Problem: "is empty"}
	}
	for _, f := range []struct{ name, v string }{{"BaseDN", cfg.BaseDN}, {"BindDN", cfg.BindDN}, {"PolicyDN", cfg.PolicyDN}} {
		if f.v == "" {
			continue
		}
		if _, err := ldapv3.ParseDN(f.v); err != nil {
			return nil, &ConfigError{Field: f.name, Problem: "is not a distinguished name", Err: err}
		}
	}
	if !validAttr(cfg.UserAttr) {
		return nil, &ConfigError{Field: "UserAttr", Problem: "is not an attribute name"}
	}
	s := &Source{cfg: cfg, log: cfg.Log, now: cfg.Now, policies: map[string]ppolicy{}}
	s.filter = "(&(" + cfg.UserAttr + "=*)"
	if f := strings.TrimSpace(cfg.UserFilter); f != "" {
		if !strings.HasPrefix(f, "(") {
			f = "(" + f + ")"
		}
		if _, err := ldapv3.CompileFilter(f); err != nil {
			return nil, &ConfigError{Field: "UserFilter", Problem: "is not a valid LDAP filter", Err: err}
		}
		s.filter += f
	}
	sum := sha256.Sum256([]byte(strings.ToLower(normDN(cfg.BaseDN)) + "\x00" + s.filter + "\x00" + strings.ToLower(cfg.UserAttr)))
	s.scope = hex.EncodeToString(sum[:8])
	d, err := ldapconn.NewDialer(cfg.URL, cfg.CAFile, cfg.Timeout, &s.ops)
	if err != nil {
		return nil, err
	}
	s.d, s.binds = d, ldapconn.NewPool(d, 4)
	s.svc = ldapconn.NewService(d, cfg.BindDN, cfg.BindPassword)
	if err := s.check(ctx); err != nil {
		s.svc.Close()
		return nil, err
	}
	if err := s.loadPolicies(ctx); err != nil {
		s.svc.Close()
		return nil, err
	}
	return s, nil
}

// validAttr accepts an attribute description's name (RFC 4512 keystring).
func validAttr(a string) bool {
	if a == "" || len(a) > 64 || !(a[0] >= 'a' && a[0] <= 'z' || a[0] >= 'A' && a[0] <= 'Z') {
		return false
	}
	for _, c := range a {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// check connects, binds and reads the rootDSE and the base DN, turning
// each failure into the setting it is about.
func (s *Source) check(ctx context.Context) error {
	c, err := s.d.Dial(ctx)
	if err != nil {
		return ldapconn.DialError(err, "the LDAP server")
	}
	defer c.Close()
	if err := s.svc.BindAs(c); err != nil {
		if ldapv3.IsErrorWithCode(err, ldapv3.LDAPResultInvalidCredentials) {
			return &ConfigError{Field: "BindPassword", Problem: "was refused for " + s.cfg.BindDN + " (wrong password, no such account, or locked)", Err: err}
		}
		return &ConfigError{Field: "BindDN", Problem: "could not bind", Err: err}
	}
	root, err := s.d.Search(c, "", ldapv3.ScopeBaseObject, "(objectClass=*)", []string{"supportedControl", "supportedExtension", "namingContexts"})
	if err != nil || len(root) != 1 {
		return &ConfigError{Field: "URL", Problem: "does not look like an LDAP server (no rootDSE)", Err: err}
	}
	for _, oid := range root[0].GetAttributeValues("supportedControl") {
		switch oid {
		case oidSyncRequest:
			s.caps.syncrepl = true
		case oidPasswordPolicy:
			s.caps.ppolicy = true
		}
	}
	for _, oid := range root[0].GetAttributeValues("supportedExtension") {
		if oid == oidPasswordModify {
			s.caps.passwordModify = true
		}
	}
	if !s.caps.passwordModify {
		return &ConfigError{Field: "URL", Problem: "is a server without the Password Modify extended operation (RFC 3062), which changes from the Mac need"}
	}
	if _, err := s.d.Search(c, s.cfg.BaseDN, ldapv3.ScopeBaseObject, "(objectClass=*)", []string{"objectClass"}); err != nil {
		if ldapv3.IsErrorWithCode(err, ldapv3.LDAPResultNoSuchObject) {
			return &ConfigError{Field: "BaseDN", Problem: "does not exist in the directory", Err: err}
		}
		return &ConfigError{Field: "BaseDN", Problem: "cannot be read", Err: err}
	}
	if _, err := s.d.Search(c, s.cfg.BaseDN, ldapv3.ScopeWholeSubtree, s.userFilter("lockstep-probe-none"), []string{"dn"}); err != nil {
		if ldapv3.IsErrorWithCode(err, ldapv3.LDAPResultUndefinedAttributeType) || ldapv3.IsErrorWithCode(err, ldapv3.LDAPResultInappropriateMatching) {
			return &ConfigError{Field: "UserAttr", Problem: "is not an attribute the server knows", Err: err}
		}
		return &ConfigError{Field: "UserFilter", Problem: "was refused by the directory", Err: err}
	}
	if !s.caps.ppolicy {
		s.log.Warn("the LDAP server does not offer the password policy control: temporary, expired and locked passwords are read from the entries")
	}
	if !s.caps.syncrepl {
		s.log.Info("no syncprov on the LDAP server (no syncrepl): polling pwdChangedTime", "interval", s.cfg.PollInterval.String())
	}
	s.log.Info("ldap directory connected", "url", s.cfg.URL, "base_dn", s.cfg.BaseDN, "user_attr", s.cfg.UserAttr,
		"syncrepl", s.caps.syncrepl, "ppolicy_control", s.caps.ppolicy)
	return nil
}

// Info implements source.Source.
func (s *Source) Info() source.Info {
	return source.Info{Kind: "ldap", Name: "OpenLDAP", UserAttr: s.cfg.UserAttr, ManagesUsers: false, External: true,
		ManagesPolicy: false, ExtraRules: true}
}

// Close ends every connection.
func (s *Source) Close() error {
	s.svc.Close()
	s.binds.Close()
	return nil
}

// Stats counts the LDAP operations made so far and says how changes are
// watched.
type Stats struct {
	Dials, Binds, Searches, Modifies int64
	// Syncing is true while a syncrepl search is in its persist phase;
	// Polling while pwdChangedTime is polled instead.
	Syncing, Polling bool
}

// Stats returns the operation counts.
func (s *Source) Stats() Stats {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return Stats{Dials: s.ops.Dials.Load(), Binds: s.ops.Binds.Load(), Searches: s.ops.Searches.Load(), Modifies: s.ops.Modifies.Load(),
		Syncing: s.syncing, Polling: s.polling}
}

// normDN is dn in a form fit for comparisons (lower case, no spaces
// around separators); dn itself when it does not parse.
func normDN(dn string) string {
	p, err := ldapv3.ParseDN(dn)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(dn))
	}
	var b strings.Builder
	for i, r := range p.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, a := range r.Attributes {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(strings.ToLower(a.Type) + "=" + strings.ToLower(a.Value))
		}
	}
	return b.String()
}

// errRefused means the server refused syncrepl.
var errRefused = errors.New("syncrepl refused")
