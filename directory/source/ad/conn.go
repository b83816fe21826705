package ad

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
)

// dialer makes verified TLS connections to the DC: LDAPS, or StartTLS on
// ldap:// before anything else is sent. There is no plain-text mode.
type dialer struct {
	url      *url.URL
	tls      *tls.Config
	timeout  time.Duration
	startTLS bool
	ops      *counters
}

// counters count the LDAP operations the source makes, by kind, so that
// the load it puts on the DC can be measured (Source.Stats).
type counters struct {
	dials, binds, searches, modifies atomic.Int64
}

func newDialer(rawURL, caFile string, timeout time.Duration, ops *counters) (*dialer, error) {
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
	return &dialer{url: u, tls: cfg, timeout: timeout, startTLS: u.Scheme == "ldap", ops: ops}, nil
}

// dial connects and secures a connection; it is not bound yet.
func (d *dialer) dial(ctx context.Context) (*ldap.Conn, error) {
	d.ops.dials.Add(1)
	nd := &net.Dialer{Timeout: d.timeout}
	var c *ldap.Conn
	var err error
	if d.startTLS {
		c, err = ldap.DialURL("ldap://"+d.url.Host, ldap.DialWithDialer(nd))
		if err == nil {
			c.SetTimeout(d.timeout)
			if err = c.StartTLS(d.tls.Clone()); err != nil {
				c.Close()
				return nil, fmt.Errorf("StartTLS with %s: %w", d.url.Host, err)
			}
		}
	} else {
		c, err = ldap.DialURL("ldaps://"+d.url.Host, ldap.DialWithDialer(nd), ldap.DialWithTLSConfig(d.tls.Clone()))
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", d.url.Host, err)
	}
	c.SetTimeout(d.timeout)
	return c, nil
}

// bind binds c as dn with password without copying the password into a
// string the garbage collector would keep (go-ldap takes a string; this
// one is a view of the caller's bytes, which the caller wipes).
func (d *dialer) bind(c *ldap.Conn, dn string, password []byte) error {
	d.ops.binds.Add(1)
	if len(password) == 0 {
		// An empty password makes an unauthenticated bind, which succeeds.
		return &ldap.Error{ResultCode: ldap.LDAPResultInvalidCredentials, Err: errors.New("empty password")}
	}
	_, err := c.SimpleBind(&ldap.SimpleBindRequest{Username: dn, Password: unsafe.String(&password[0], len(password))})
	return err
}

// service is the connection bound as Lockstep's own account, for reads,
// resets and unlocks; it is re-established when it breaks.
type service struct {
	d        *dialer
	bindDN   string
	password []byte

	mu   sync.Mutex
	conn *ldap.Conn
}

// get returns a bound connection, dialling and binding again when the last
// one broke.
func (s *service) get(ctx context.Context) (*ldap.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && !s.conn.IsClosing() {
		return s.conn, nil
	}
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	c, err := s.d.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnreachable, err)
	}
	if err := s.d.bind(c, s.bindDN, s.password); err != nil {
		c.Close()
		return nil, fmt.Errorf("binding as %s: %w", s.bindDN, err)
	}
	s.conn = c
	return c, nil
}

// do runs op on the service connection, once more on a fresh one when the
// connection turned out to be broken.
func (s *service) do(ctx context.Context, op func(*ldap.Conn) error) error {
	for attempt := 0; ; attempt++ {
		c, err := s.get(ctx)
		if err != nil {
			return err
		}
		err = op(c)
		if attempt == 0 && isNetwork(err) {
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

func (s *service) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

var errUnreachable = errors.New("the domain controller is unreachable")

// isNetwork reports an error of the connection rather than of the
// operation.
func isNetwork(err error) bool {
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

// search runs a search on c, paging through large results.
func (d *dialer) search(c *ldap.Conn, base string, scope int, filter string, attrs []string) ([]*ldap.Entry, error) {
	d.ops.searches.Add(1)
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
