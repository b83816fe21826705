// Package ldapconn is what the LDAP sources (Active Directory, OpenLDAP)
// share: verified TLS connections (LDAPS, or StartTLS before anything else
// is sent; there is no plain-text mode), binds that leave no copy of the
// password behind, Lockstep's own bound connection re-established when it
// breaks, a small pool of connections for user binds, counts of the
// operations made, and the settings errors that name their field.
package ldapconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
)

// ConfigError is a setting the server or the checks refused; Field names
// the Config field, so that a command line can name its flag.
type ConfigError struct {
	Field   string
	Problem string
	Err     error
}

func (e *ConfigError) Error() string {
	if e.Err != nil {
		return e.Field + " " + e.Problem + ": " + e.Err.Error()
	}
	return e.Field + " " + e.Problem
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Counters count the LDAP operations a source makes, by kind, so that the
// load it puts on the server can be measured.
type Counters struct {
	Dials, Binds, Searches, Modifies atomic.Int64
}

// Dialer makes verified TLS connections to the server.
type Dialer struct {
	URL      *url.URL
	tls      *tls.Config
	timeout  time.Duration
	startTLS bool
	Ops      *Counters
}

// NewDialer checks the URL and the CA file (fields URL and CAFile of a
// *ConfigError) and returns a dialer; ports default to 636 and 389.
func NewDialer(rawURL, caFile string, timeout time.Duration, ops *Counters) (*Dialer, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "ldaps" && u.Scheme != "ldap") {
		return nil, &ConfigError{Field: "URL", Problem: fmt.Sprintf("must be ldaps://HOST[:PORT] or ldap://HOST[:PORT] (StartTLS), not %q", rawURL)}
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return nil, &ConfigError{Field: "URL", Problem: "takes no path, query or user: give the base DN and bind DN with their own flags"}
	}
	if u.Port() == "" {
		port := "636"
		if u.Scheme == "ldap" {
			port = "389"
		}
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	cfg := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, &ConfigError{Field: "CAFile", Problem: "cannot be read", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, &ConfigError{Field: "CAFile", Problem: "holds no PEM certificate"}
		}
		cfg.RootCAs = pool
	}
	if ops == nil {
		ops = &Counters{}
	}
	return &Dialer{URL: u, tls: cfg, timeout: timeout, startTLS: u.Scheme == "ldap", Ops: ops}, nil
}

// Timeout is the bound on each operation.
func (d *Dialer) Timeout() time.Duration { return d.timeout }

// Dial connects and secures a connection; it is not bound yet.
func (d *Dialer) Dial(ctx context.Context) (*ldap.Conn, error) {
	d.Ops.Dials.Add(1)
	nd := &net.Dialer{Timeout: d.timeout}
	var c *ldap.Conn
	var err error
	if d.startTLS {
		c, err = ldap.DialURL("ldap://"+d.URL.Host, ldap.DialWithDialer(nd))
		if err == nil {
			c.SetTimeout(d.timeout)
			if err = c.StartTLS(d.tls.Clone()); err != nil {
				c.Close()
				return nil, fmt.Errorf("StartTLS with %s: %w", d.URL.Host, err)
			}
		}
	} else {
		c, err = ldap.DialURL("ldaps://"+d.URL.Host, ldap.DialWithDialer(nd), ldap.DialWithTLSConfig(d.tls.Clone()))
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", d.URL.Host, err)
	}
	c.SetTimeout(d.timeout)
	return c, nil
}

// DialError turns a failed first connection into the setting it is about:
// the CA file (an untrusted certificate), the URL (a host the certificate
// is not for, or unreachable). server names the server for people ("the
// domain controller").
func DialError(err error, server string) *ConfigError {
	var ce *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	switch {
	case errors.As(err, &he):
		return &ConfigError{Field: "URL", Problem: "names a host " + server + "'s certificate is not for", Err: err}
	case errors.As(err, &ce) || errors.As(err, &ue):
		return &ConfigError{Field: "CAFile", Problem: "does not hold the CA that signed " + server + "'s certificate", Err: err}
	}
	return &ConfigError{Field: "URL", Problem: "cannot be reached", Err: err}
}

// Bind binds c as dn with password without copying the password into a
// string the garbage collector would keep (go-ldap takes a string; this
// one is a view of the caller's bytes, which the caller wipes). An empty
// password is refused before anything is sent: it would make an
// unauthenticated bind, which succeeds.
func (d *Dialer) Bind(c *ldap.Conn, dn string, password []byte, controls ...ldap.Control) (*ldap.SimpleBindResult, error) {
	d.Ops.Binds.Add(1)
	if len(password) == 0 {
		return nil, &ldap.Error{ResultCode: ldap.LDAPResultInvalidCredentials, Err: errors.New("empty password")}
	}
	return c.SimpleBind(&ldap.SimpleBindRequest{Username: dn, Password: View(password), Controls: controls})
}

// View is a string sharing b's bytes (go-ldap takes passwords and
// attribute values as strings): no copy is left behind when b is wiped.
func View(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// Search runs a search on c, paging through large results.
func (d *Dialer) Search(c *ldap.Conn, base string, scope int, filter string, attrs []string) ([]*ldap.Entry, error) {
	d.Ops.Searches.Add(1)
	req := ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, 0, int(d.timeout/time.Second), false, filter, attrs, nil)
	if scope == ldap.ScopeBaseObject {
		res, err := c.Search(req)
		if err != nil {
			return nil, err
		}
		return res.Entries, nil
	}
	res, err := c.SearchWithPaging(req, 500)
	if err != nil {
		return nil, err
	}
	return res.Entries, nil
}

// ErrUnreachable wraps a failure to connect to the server.
var ErrUnreachable = errors.New("the directory server is unreachable")

// Service is the connection bound as Lockstep's own account, for reads,
// resets and unlocks; it is re-established when it breaks.
type Service struct {
	d        *Dialer
	bindDN   string
	password []byte

	mu   sync.Mutex
	conn *ldap.Conn
}

// NewService binds as bindDN with password (which the caller keeps and
// wipes after Close) whenever it needs a connection.
func NewService(d *Dialer, bindDN string, password []byte) *Service {
	return &Service{d: d, bindDN: bindDN, password: password}
}

// BindAs binds c as the service account.
func (s *Service) BindAs(c *ldap.Conn) error {
	_, err := s.d.Bind(c, s.bindDN, s.password)
	return err
}

// get returns a bound connection, dialling and binding again when the last
// one broke.
func (s *Service) get(ctx context.Context) (*ldap.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && !s.conn.IsClosing() {
		return s.conn, nil
	}
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	c, err := s.d.Dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	if err := s.BindAs(c); err != nil {
		c.Close()
		return nil, fmt.Errorf("binding as %s: %w", s.bindDN, err)
	}
	s.conn = c
	return c, nil
}

// Do runs op on the service connection, once more on a fresh one when the
// connection turned out to be broken.
func (s *Service) Do(ctx context.Context, op func(*ldap.Conn) error) error {
	for attempt := 0; ; attempt++ {
		c, err := s.get(ctx)
		if err != nil {
			return err
		}
		err = op(c)
		if attempt == 0 && IsNetwork(err) {
			s.mu.Lock()
			if s.conn == c {
				s.conn.Close()
				s.conn = nil
			}
			s.mu.Unlock()
			continue
		}
		return err
	}
}

// Search is Dialer.Search on the service connection.
func (s *Service) Search(ctx context.Context, base string, scope int, filter string, attrs []string) ([]*ldap.Entry, error) {
	var es []*ldap.Entry
	err := s.Do(ctx, func(c *ldap.Conn) error {
		var err error
		es, err = s.d.Search(c, base, scope, filter, attrs)
		return err
	})
	return es, err
}

// Modify runs m on the service connection.
func (s *Service) Modify(ctx context.Context, m *ldap.ModifyRequest) error {
	s.d.Ops.Modifies.Add(1)
	return s.Do(ctx, func(c *ldap.Conn) error { return c.Modify(m) })
}

// Close ends the connection.
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// IsNetwork reports an error of the connection rather than of the
// operation.
func IsNetwork(err error) bool {
	if err == nil {
		return false
	}
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode == ldap.ErrorNetwork || le.ResultCode == ldap.LDAPResultServerDown ||
			le.ResultCode == ldap.LDAPResultUnavailable
	}
	var ne net.Error
	return errors.As(err, &ne) || strings.Contains(err.Error(), "connection closed")
}

// Pool keeps a few idle connections for user binds. A connection left
// bound as a user is never used for anything but the next user bind.
type Pool struct {
	d    *Dialer
	idle chan *ldap.Conn
}

// NewPool keeps up to n idle connections.
func NewPool(d *Dialer, n int) *Pool { return &Pool{d: d, idle: make(chan *ldap.Conn, n)} }

// Get returns an idle connection, or a new one.
func (p *Pool) Get(ctx context.Context) (*ldap.Conn, error) {
	for {
		select {
		case c := <-p.idle:
			if !c.IsClosing() {
				return c, nil
			}
			c.Close()
			continue
		default:
		}
		return p.d.Dial(ctx)
	}
}

// Put gives a connection back, or closes it.
func (p *Pool) Put(c *ldap.Conn) {
	if c.IsClosing() {
		c.Close()
		return
	}
	select {
	case p.idle <- c:
	default:
		c.Close()
	}
}

// Close closes the idle connections.
func (p *Pool) Close() {
	for {
		select {
		case c := <-p.idle:
			c.Close()
		default:
			return
		}
	}
}

// Unavailable wraps an error of the server as source.ErrUnavailable,
// saying what failed.
func Unavailable(what string, err error) error {
	return fmt.Errorf("%s: %w: %v", what, source.ErrUnavailable, err)
}

// ParentDN is the container of dn.
func ParentDN(dn string) string {
	p, err := ldap.ParseDN(dn)
	if err != nil || len(p.RDNs) < 2 {
		return ""
	}
	out := &ldap.DN{RDNs: p.RDNs[1:]}
	return out.String()
}
