// Package slapdtest runs a real OpenLDAP server for tests: Debian's slapd as
// a plain process of the test's own user, from a slapd.conf written in a
// temporary directory (back_mdb, the ppolicy overlay with a default policy
// and cleartext hashing, syncprov for RFC 4533 syncrepl), serving LDAPS
// with a certificate for IP:127.0.0.1 signed by a test CA (so TLS is
// verified as in production) and plain LDAP for StartTLS, on free high
// ports of 127.0.0.1. It is imported by test files only.
//
// Need starts one server per test binary (Main stops it); Start starts one
// of a test's own (without syncprov, for the polling fallback; stopped when
// the test ends). Tests share the one server: each makes its own OU and
// users (NewOU), so they can run in parallel. Without the Debian packages
// (slapd, ldap-utils) a test is skipped, or fails when the environment
// says CI=true. slapd needs no root here, so the tests run as any user.
package slapdtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/internal/tools/testpki"
)

// The tree every server of this package serves.
const (
	BaseDN = "dc=lockstep,dc=test"
	// PolicyDN is the default password policy (ppolicy_default).
	PolicyDN = "cn=default,ou=policies," + BaseDN
	// AdminsDN is the group whose members may reset passwords and unlock
	// accounts (write userPassword, pwdAccountLockedTime and pwdReset).
	AdminsDN = "cn=lockstep-admins,ou=groups," + BaseDN
	// RootDN is slapd's rootdn, which ppolicy does not hold to the
	// policy: used only to set the tree up.
	RootDN = "cn=root," + BaseDN
	// HelpdeskDN is an administrator in AdminsDN, to whom ppolicy applies
	// as to any administrator: a password it sets gets pwdReset.
	HelpdeskDN = "cn=helpdesk,ou=staff," + BaseDN
)

// The default policy's settings (PolicyDN).
const (
	MinLength       = 12
	InHistory       = 5
	MaxAge          = 90 * 24 * time.Hour
	ExpireWarning   = 14 * 24 * time.Hour
	MaxFailure      = 5
	LockoutDuration = 15 * time.Minute
	GraceLogins     = 2
)

// Server is a running slapd.
type Server struct {
	// Dir holds slapd.conf, the database, the TLS files and the log.
	Dir string
	// CAFile is the PEM file of the CA that signed the server's
	// certificate.
	CAFile string
	// URL is the LDAPS address; StartTLSURL the plain one, for StartTLS.
	URL, StartTLSURL string
	// Syncprov says whether the server offers syncrepl.
	Syncprov bool
	// RootPassword is RootDN's, HelpdeskPassword HelpdeskDN's.
	RootPassword, HelpdeskPassword string
	// HelpdeskPasswordFile holds HelpdeskPassword (0600), for ldapmodify
	// -y.
	HelpdeskPasswordFile string

	cmd    *exec.Cmd
	exited chan struct{}
	seq    atomic.Int64
}

var (
	once    sync.Once
	shared  *Server
	startEr error
)

// Main runs the package's tests and then stops the shared server if one
// was started. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the shared server, if one was started: for a TestMain
// that does more than Main.
func Stop() {
	if shared != nil {
		shared.Stop()
	}
}

// Need returns the shared server (with syncprov), starting it on first use;
// a test is skipped (or fails in CI) when slapd cannot run here.
func Need(tb testing.TB) *Server {
	tb.Helper()
	once.Do(func() { shared, startEr = start(true) })
	if startEr != nil {
		skipOrFail(tb, startEr)
	}
	return shared
}

// Start starts a server of the test's own, stopped when the test ends.
func Start(tb testing.TB, syncprov bool) *Server {
	tb.Helper()
	s, err := start(syncprov)
	if err != nil {
		skipOrFail(tb, err)
	}
	tb.Cleanup(s.Stop)
	return s
}

func skipOrFail(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("slapd is required in CI: %v", err)
	}
	tb.Skipf("skipping: no slapd for tests: %v", err)
}

// Stop stops the server and removes its files.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
	_ = os.RemoveAll(s.Dir)
}

var confTmpl = template.Must(template.New("slapd.conf").Parse(`# slapdtest: a throwaway OpenLDAP for Lockstep's tests
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
{{if .Syncprov}}moduleload syncprov
{{end}}pidfile {{.Dir}}/slapd.pid
argsfile {{.Dir}}/slapd.args
TLSCACertificateFile {{.CA}}
TLSCertificateFile {{.Cert}}
TLSCertificateKeyFile {{.Key}}
password-hash {SSHA}

database mdb
suffix "{{.Base}}"
rootdn "{{.Root}}"
rootpw {{.RootHash}}
directory {{.Dir}}/db
maxsize 268435456
index objectClass eq
index uid,cn eq
index entryCSN,entryUUID eq
# slapd's default size limit is 500 entries: Lockstep's account reads every
# user in scope (as the README's set-up says).
limits users size=unlimited
{{if .Syncprov}}
overlay syncprov
syncprov-checkpoint 100 10
syncprov-sessionlog 1000
{{end}}
overlay ppolicy
ppolicy_default "{{.Policy}}"
ppolicy_hash_cleartext
ppolicy_use_lockout

access to attrs=userPassword
	by self write
	by group.exact="{{.Admins}}" write
	by anonymous auth
	by * none
access to attrs=pwdAccountLockedTime,pwdReset,pwdFailureTime,pwdGraceUseTime
	by group.exact="{{.Admins}}" write
	by users read
	by * none
access to *
	by group.exact="{{.Admins}}" write
	by users read
	by * none
`))

func start(syncprov bool) (*Server, error) {
	for _, p := range []struct{ bin, pkg string }{{"/usr/sbin/slapd", "slapd"}, {"ldapmodify", "ldap-utils"}} {
		if _, err := exec.LookPath(p.bin); err != nil {
			return nil, fmt.Errorf("%s not installed (Debian packages slapd ldap-utils; see .ci/run)", p.bin)
		}
	}
	dir, err := os.MkdirTemp("", "lockstep-slapdtest-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		return nil, err
	}
	pki, err := testpki.Write(dir, "slapd.lockstep.test")
	if err != nil {
		return nil, fmt.Errorf("making slapd's certificate: %w", err)
	}
	s := &Server{Dir: dir, CAFile: pki.CA, Syncprov: syncprov, RootPassword: "Root-" + randHex(8) + "-Pw1!",
		HelpdeskPassword: "Help-" + randHex(8) + "-Pw1!", exited: make(chan struct{})}
	var conf bytes.Buffer
	if err := confTmpl.Execute(&conf, map[string]any{"Syncprov": syncprov, "Dir": dir, "CA": pki.CA, "Cert": pki.Cert, "Key": pki.Key,
		"Base": BaseDN, "Root": RootDN, "RootHash": ssha(s.RootPassword), "Policy": PolicyDN, "Admins": AdminsDN}); err != nil {
		return nil, err
	}
	confFile := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(confFile, conf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	s.HelpdeskPasswordFile = filepath.Join(dir, "helpdesk.pw")
	// ldapmodify -y sends the file's bytes as they are: no newline.
	if err := os.WriteFile(s.HelpdeskPasswordFile, []byte(s.HelpdeskPassword), 0o600); err != nil {
		return nil, err
	}
	// Free ports: listen, note, close; slapd binds them a moment later
	// (another process taking one then is retried).
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		s.URL = "ldaps://127.0.0.1:" + strconv.Itoa(ports[0])
		s.StartTLSURL = "ldap://127.0.0.1:" + strconv.Itoa(ports[1])
		if lastErr = s.run(confFile); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		return nil, lastErr
	}
	if err := s.populate(); err != nil {
		s.Stop()
		return nil, fmt.Errorf("populating slapd: %w", err)
	}
	ok = true
	return s, nil
}

// run starts slapd and waits until it serves a verified LDAPS bind.
func (s *Server) run(confFile string) error {
	logf, err := os.Create(filepath.Join(s.Dir, "slapd.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	// -d 0: in the foreground, logging nothing but failures to start.
	s.cmd = exec.Command("/usr/sbin/slapd", "-f", confFile, "-h", s.URL+"/ "+s.StartTLSURL+"/", "-d", "0")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	s.cmd.SysProcAttr = serverProcAttr()
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting slapd: %w", err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			b, _ := os.ReadFile(filepath.Join(s.Dir, "slapd.log"))
			s.cmd = nil
			return fmt.Errorf("slapd exited at start:\n%s", b)
		default:
		}
		if c, err := s.dial(RootDN, s.RootPassword); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
	return errors.New("slapd did not serve LDAPS within 20 s")
}

func freePorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// populate adds the tree: the base, ou=people, ou=policies with the
// default policy, ou=groups with the administrators' group, ou=staff with
// the helpdesk.
func (s *Server) populate() error {
	c, err := s.dial(RootDN, s.RootPassword)
	if err != nil {
		return err
	}
	defer c.Close()
	add := func(dn string, attrs map[string][]string) error {
		a := ldap.NewAddRequest(dn, nil)
		for k, v := range attrs {
			a.Attribute(k, v)
		}
		if err := c.Add(a); err != nil {
			return fmt.Errorf("adding %s: %w", dn, err)
		}
		return nil
	}
	secs := func(d time.Duration) []string { return []string{strconv.Itoa(int(d.Seconds()))} }
	for _, e := range []struct {
		dn    string
		attrs map[string][]string
	}{
		{BaseDN, map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {"lockstep"}, "o": {"Lockstep tests"}}},
		{"ou=people," + BaseDN, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"people"}}},
		{"ou=staff," + BaseDN, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"staff"}}},
		{"ou=groups," + BaseDN, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"groups"}}},
		{"ou=policies," + BaseDN, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"policies"}}},
		{PolicyDN, map[string][]string{"objectClass": {"device", "pwdPolicy"}, "cn": {"default"},
			"pwdAttribute": {"userPassword"}, "pwdMinLength": {strconv.Itoa(MinLength)}, "pwdCheckQuality": {"1"},
			"pwdInHistory": {strconv.Itoa(InHistory)}, "pwdMaxAge": secs(MaxAge), "pwdExpireWarning": secs(ExpireWarning),
			"pwdMaxFailure": {strconv.Itoa(MaxFailure)}, "pwdLockout": {"TRUE"}, "pwdLockoutDuration": secs(LockoutDuration),
			"pwdFailureCountInterval": secs(LockoutDuration), "pwdMustChange": {"TRUE"}, "pwdAllowUserChange": {"TRUE"},
			"pwdSafeModify": {"FALSE"}, "pwdGraceAuthNLimit": {strconv.Itoa(GraceLogins)}}},
		{HelpdeskDN, map[string][]string{"objectClass": {"inetOrgPerson"}, "cn": {"helpdesk"}, "sn": {"Desk"},
			"userPassword": {s.HelpdeskPassword}}},
		{AdminsDN, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {"lockstep-admins"}, "member": {HelpdeskDN}}},
	} {
		if err := add(e.dn, e.attrs); err != nil {
			return err
		}
	}
	return nil
}

// TLSConfig trusts the test CA only.
func (s *Server) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(s.CAFile)
	pool.AppendCertsFromPEM(b)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

func (s *Server) dial(dn, password string) (*ldap.Conn, error) {
	c, err := ldap.DialURL(s.URL, ldap.DialWithTLSConfig(s.TLSConfig()))
	if err != nil {
		return nil, err
	}
	if err := c.Bind(dn, password); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Root returns a connection bound as the rootdn (no password policy
// applies to it), closed when the test ends.
func (s *Server) Root(tb testing.TB) *ldap.Conn {
	tb.Helper()
	c, err := s.dial(RootDN, s.RootPassword)
	if err != nil {
		tb.Fatalf("root bind: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// Helpdesk returns a connection bound as the helpdesk administrator,
// closed when the test ends.
func (s *Server) Helpdesk(tb testing.TB) *ldap.Conn {
	tb.Helper()
	c, err := s.dial(HelpdeskDN, s.HelpdeskPassword)
	if err != nil {
		tb.Fatalf("helpdesk bind: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// NewOU creates an OU of its own for a test, under ou=people, and returns
// its DN.
func (s *Server) NewOU(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d-%s", s.seq.Add(1), randHex(3))
	dn := "ou=" + name + ",ou=people," + BaseDN
	a := ldap.NewAddRequest(dn, nil)
	a.Attribute("objectClass", []string{"organizationalUnit"})
	a.Attribute("ou", []string{name})
	if err := s.Root(tb).Add(a); err != nil {
		tb.Fatalf("adding %s: %v", dn, err)
	}
	return dn
}

// User is a test user in the directory.
type User struct {
	Name, DisplayName, DN, Password string
}

// AddUser creates a user (inetOrgPerson with posixAccount, as Linux-first
// directories hold them) in ou with a password, as the helpdesk would, and
// returns it; the name is made unique. The password is set by the rootdn,
// so it is not marked for reset.
func (s *Server) AddUser(tb testing.TB, ou, prefix, password string) User {
	tb.Helper()
	n := s.seq.Add(1)
	name := fmt.Sprintf("%s%d%s", prefix, n, randHex(2))
	u := User{Name: name, DisplayName: "Test " + strings.ToUpper(name[:1]) + name[1:] + " Person", Password: password,
		DN: "uid=" + name + "," + ou}
	a := ldap.NewAddRequest(u.DN, nil)
	a.Attribute("objectClass", []string{"inetOrgPerson", "posixAccount"})
	a.Attribute("uid", []string{name})
	a.Attribute("cn", []string{u.DisplayName})
	a.Attribute("sn", []string{"Person"})
	a.Attribute("displayName", []string{u.DisplayName})
	a.Attribute("uidNumber", []string{strconv.FormatInt(10000+n, 10)})
	a.Attribute("gidNumber", []string{"10000"})
	a.Attribute("homeDirectory", []string{"/home/" + name})
	a.Attribute("userPassword", []string{password})
	if err := s.Root(tb).Add(a); err != nil {
		tb.Fatalf("adding user %s: %v", name, err)
	}
	return u
}

// ServiceAccount creates an account for Lockstep to bind as, in ou; admin
// makes it a member of AdminsDN (it may then reset and unlock).
func (s *Server) ServiceAccount(tb testing.TB, ou string, admin bool) User {
	tb.Helper()
	u := s.AddUser(tb, ou, "svc", "Svc-"+randHex(6)+"-Pw1!")
	if admin {
		m := ldap.NewModifyRequest(AdminsDN, nil)
		m.Add("member", []string{u.DN})
		if err := s.Root(tb).Modify(m); err != nil {
			tb.Fatalf("adding %s to the administrators: %v", u.DN, err)
		}
	}
	return u
}

// SetPassword resets a user's password as the helpdesk over LDAP, as an
// administrator's tool does. Temporary also sets pwdReset: TRUE in the same
// modify (slapd 2.5's ppolicy does not set it by itself, even with
// pwdMustChange; it keeps one sent with the password); otherwise ppolicy
// removes any pwdReset.
func (s *Server) SetPassword(tb testing.TB, dn, password string, temporary bool) {
	tb.Helper()
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace("userPassword", []string{password})
	if temporary {
		m.Replace("pwdReset", []string{"TRUE"})
	}
	if err := s.Helpdesk(tb).Modify(m); err != nil {
		tb.Fatalf("resetting %s: %v", dn, err)
	}
}

// ResetLDIF is the LDIF of an administrator's reset for ldapmodify.
func ResetLDIF(dn, password string, temporary bool) string {
	l := "dn: " + dn + "\nchangetype: modify\nreplace: userPassword\nuserPassword: " + password + "\n"
	if temporary {
		l += "-\nreplace: pwdReset\npwdReset: TRUE\n"
	}
	return l
}

// LDAPModify runs the real ldapmodify as the helpdesk (its password from
// a file with -y, never the command line) with ldif on stdin.
func (s *Server) LDAPModify(tb testing.TB, ldif string) {
	tb.Helper()
	out, err := s.LDAPModifyErr(ldif)
	if err != nil {
		tb.Fatalf("ldapmodify: %v\n%s", err, out)
	}
}

// LDAPModifyErr is LDAPModify that returns the error.
func (s *Server) LDAPModifyErr(ldif string) (string, error) {
	cmd := exec.Command("ldapmodify", "-H", s.URL, "-x", "-D", HelpdeskDN, "-y", s.HelpdeskPasswordFile)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "LDAPTLS_CACERT=" + s.CAFile, "LDAPTLS_REQCERT=demand"}
	cmd.Stdin = strings.NewReader(ldif)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Bind reports whether dn binds with password, and the error when not.
func (s *Server) Bind(dn, password string) error {
	c, err := s.dial(dn, password)
	if err == nil {
		c.Close()
	}
	return err
}

// Entry reads attrs of dn as the rootdn (operational ones included when
// named).
func (s *Server) Entry(tb testing.TB, dn string, attrs ...string) *ldap.Entry {
	tb.Helper()
	res, err := s.Root(tb).Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 10, false,
		"(objectClass=*)", attrs, nil))
	if err != nil || len(res.Entries) != 1 {
		tb.Fatalf("reading %s: %v", dn, err)
	}
	return res.Entries[0]
}

// relax is the Relax Rules control (draft-zeilenga-ldap-relax), with which
// the rootdn may write operational attributes such as pwdChangedTime.
const relax = "1.3.6.1.4.1.4203.666.5.12"

// SetChangedTime moves a user's pwdChangedTime (as the rootdn, with the
// Relax Rules control), to age a password without waiting.
func (s *Server) SetChangedTime(tb testing.TB, dn string, at time.Time) {
	tb.Helper()
	m := ldap.NewModifyRequest(dn, []ldap.Control{ldap.NewControlString(relax, true, "")})
	m.Replace("pwdChangedTime", []string{at.UTC().Format("20060102150405Z")})
	if err := s.Root(tb).Modify(m); err != nil {
		tb.Fatalf("setting pwdChangedTime of %s: %v", dn, err)
	}
}

// PasswordFile writes password to a 0600 file in the test's temporary
// directory and returns its path.
func PasswordFile(tb testing.TB, password string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "bind.password")
	if err := os.WriteFile(p, []byte(password+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// Context gives a test's LDAP helpers a deadline.
func Context(tb testing.TB) (context.Context, context.CancelFunc) {
	return context.WithTimeout(tb.Context(), 30*time.Second)
}

// ssha is the {SSHA} form of a password, for rootpw (so that the
// configuration file holds no password).
func ssha(pw string) string {
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	h := sha1.New()
	h.Write([]byte(pw))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...))
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
