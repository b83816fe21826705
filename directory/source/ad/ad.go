// Package ad is Active Directory as Lockstep's source of truth
// (source.Source): users found by sAMAccountName under a base DN, their
// passwords verified by binding as them, changed with AD's own change
// operation (so that AD applies its complexity, history and minimum age),
// reset and unlocked with the bind account's delegated rights, the policy
// read from the domain and from fine-grained password settings, and every
// change made anywhere reported at once through AD's change notification
// control (polling uSNChanged where the DC refuses it).
//
// One file per concern: conn.go (connection and TLS), bind.go (verify and
// AD's bind sub-codes), password.go (change, reset, unlock), policy.go
// (domain policy and PSOs), account.go (reading users), watch.go (change
// notification, catch-up, polling).
package ad

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/source/ldapconn"
)

// Config configures the source. URL, BaseDN, BindDN and BindPassword are
// required.
type Config struct {
	// URL is ldaps://HOST[:PORT], or ldap://HOST[:PORT] for StartTLS; the
	// certificate is always verified.
	URL string
	// CAFile is a PEM file of the CA(s) that sign the DC's certificate
	// ("" for the system roots).
	CAFile string
	// BaseDN is where users are looked for (the whole subtree).
	BaseDN string
	// BindDN is Lockstep's own account: a DN or user@domain.
	BindDN string
	// BindPassword is its password; the caller wipes it after Close.
	BindPassword []byte
	// UserFilter narrows the users in scope (an LDAP filter, for example
	// a group's memberOf).
	UserFilter string
	// Timeout bounds each LDAP operation (default 10 s).
	Timeout time.Duration
	// PollInterval is how often uSNChanged is polled when the DC refuses
	// change notification (default 30 s).
	PollInterval time.Duration
	// Log receives the source's log; nil discards it.
	Log *slog.Logger
	// Now is the clock (lockout ends, expiry); nil means time.Now.
	Now func() time.Time
}

// ConfigError is a setting the DC or the checks refused; Field names the
// Config field, so that a command line can name its flag.
type ConfigError = ldapconn.ConfigError

// Source is Active Directory.
type Source struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	d      *ldapconn.Dialer
	svc    *ldapconn.Service
	binds  *ldapconn.Pool // idle connections for user binds
	ops    ldapconn.Counters
	filter string // the users-in-scope filter, without the name
	caps   capabilities

	pmu     sync.Mutex
	domain  source.Policy
	psos    map[string]source.Policy // by DN, lower case
	polAt   time.Time
	watcher *watcher
}

var (
	_ source.Source      = (*Source)(nil)
	_ source.EmailFinder = (*Source)(nil)
)

// capabilities are what the DC said it supports, at start.
type capabilities struct {
	notify      bool   // LDAP_SERVER_NOTIFICATION_OID
	service     string // dsServiceName: which DC this is
	defaultNC   string
	passwordsNC string // CN=Password Settings Container
}

// New connects to the DC, checks every setting against it (reachable,
// certificate trusted, bind accepted, base DN present, filter valid) and
// returns the source. An error about a setting is a *ConfigError.
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
	for _, f := range []struct{ name, v string }{{"URL", cfg.URL}, {"BaseDN", cfg.BaseDN}, {"BindDN", cfg.BindDN}} {
		if strings.TrimSpace(f.v) == "" {
			return nil, &ConfigError{Field: f.name, Problem: "is required"}
		}
	}
	if len(cfg.BindPassword) == 0 {
		return nil, &ConfigError{Field: "BindPassword", Problem: "is empty"}
	}
	if _, err := ldap.ParseDN(cfg.BaseDN); err != nil {
		return nil, &ConfigError{Field: "BaseDN", Problem: "is not a distinguished name", Err: err}
	}
	s := &Source{cfg: cfg, log: cfg.Log, now: cfg.Now, psos: map[string]source.Policy{}}
	s.filter = "(&(objectCategory=person)(objectClass=user)"
	if f := strings.TrimSpace(cfg.UserFilter); f != "" {
		if !strings.HasPrefix(f, "(") {
			f = "(" + f + ")"
		}
		if _, err := ldap.CompileFilter(f); err != nil {
			return nil, &ConfigError{Field: "UserFilter", Problem: "is not a valid LDAP filter", Err: err}
		}
		s.filter += f
	}
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
	if _, err := s.loadPolicies(ctx); err != nil {
		s.svc.Close()
		return nil, err
	}
	s.watcher = newWatcher(s)
	return s, nil
}

// check connects, binds and reads the rootDSE and the base DN, turning
// each failure into the setting it is about.
func (s *Source) check(ctx context.Context) error {
	c, err := s.d.Dial(ctx)
	if err != nil {
		return ldapconn.DialError(err, "the domain controller")
	}
	defer c.Close()
	if err := s.svc.BindAs(c); err != nil {
		var le *ldap.Error
		if errors.As(err, &le) && le.ResultCode == ldap.LDAPResultInvalidCredentials {
			return &ConfigError{Field: "BindPassword", Problem: "was refused for " + s.cfg.BindDN + " (" + bindReason(err) + ")", Err: err}
		}
		return &ConfigError{Field: "BindDN", Problem: "could not bind", Err: err}
	}
	root, err := s.d.Search(c, "", ldap.ScopeBaseObject, "(objectClass=*)",
		[]string{"supportedControl", "dsServiceName", "defaultNamingContext", "highestCommittedUSN"})
	if err != nil || len(root) != 1 {
		return &ConfigError{Field: "URL", Problem: "does not look like Active Directory (no rootDSE)", Err: err}
	}
	for _, oid := range root[0].GetAttributeValues("supportedControl") {
		if oid == ldap.ControlTypeMicrosoftNotification {
			s.caps.notify = true
		}
	}
	s.caps.service = root[0].GetAttributeValue("dsServiceName")
	s.caps.defaultNC = root[0].GetAttributeValue("defaultNamingContext")
	if s.caps.defaultNC == "" {
		return &ConfigError{Field: "URL", Problem: "does not look like Active Directory (no defaultNamingContext)"}
	}
	s.caps.passwordsNC = "CN=Password Settings Container,CN=System," + s.caps.defaultNC
	if _, err := s.d.Search(c, s.cfg.BaseDN, ldap.ScopeBaseObject, "(objectClass=*)", []string{"objectClass"}); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return &ConfigError{Field: "BaseDN", Problem: "does not exist in the directory", Err: err}
		}
		return &ConfigError{Field: "BaseDN", Problem: "cannot be read", Err: err}
	}
	if !strings.HasSuffix(strings.ToLower(normDN(s.cfg.BaseDN)), strings.ToLower(normDN(s.caps.defaultNC))) {
		return &ConfigError{Field: "BaseDN", Problem: "is not in the domain " + s.caps.defaultNC}
	}
	if _, err := s.d.Search(c, s.cfg.BaseDN, ldap.ScopeWholeSubtree, "(&"+s.filter+")(sAMAccountName=lockstep-probe-none))", []string{"dn"}); err != nil {
		return &ConfigError{Field: "UserFilter", Problem: "was refused by the directory", Err: err}
	}
	s.log.Info("active directory connected", "url", s.cfg.URL, "dc", s.caps.service, "base_dn", s.cfg.BaseDN,
		"change_notification", s.caps.notify)
	return nil
}

// Info implements source.Source.
func (s *Source) Info() source.Info {
	return source.Info{Kind: "ad", Name: "Active Directory", UserAttr: "sAMAccountName", ManagesUsers: false, External: true, ManagesPolicy: false}
}

// Close ends every connection.
func (s *Source) Close() error {
	s.svc.Close()
	s.binds.Close()
	return nil
}

// Stats counts the LDAP operations made so far.
type Stats struct {
	Dials, Binds, Searches, Modifies int64
	// Notifications is how many change-notification searches are open;
	// Polling is true when the DC refused them and uSNChanged is polled.
	Notifications int
	Polling       bool
}

// Stats returns the operation counts.
func (s *Source) Stats() Stats {
	st := Stats{Dials: s.ops.Dials.Load(), Binds: s.ops.Binds.Load(), Searches: s.ops.Searches.Load(), Modifies: s.ops.Modifies.Load()}
	if s.watcher != nil {
		st.Notifications, st.Polling = s.watcher.state()
	}
	return st
}

// normDN removes spaces after commas, for suffix comparisons.
func normDN(dn string) string {
	parts := strings.Split(dn, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return strings.Join(parts, ",")
}
