// Package sambatest runs a real Active Directory domain controller for
// tests: Samba's AD DC, provisioned in a temporary directory once per test
// binary, serving LDAP, LDAPS (a certificate for IP:127.0.0.1 signed by a
// test CA, so TLS is verified as in production) and Kerberos on loopback,
// and stopped by Main. It is imported by test files only.
//
// Samba binds the fixed ports 389, 636 and 88, so it needs root and only
// one can run on a machine: as a normal user the tests are skipped (and
// say so), and a lock file makes a second test binary wait until the first
// one's DC stopped. Without the Debian packages (samba,
// samba-ad-provision, samba-dsdb-modules, samba-vfs-modules, winbind,
// ldap-utils) a test is skipped, or fails when the environment says
// CI=true. Tests share the one DC: each makes its own OU and users
// (NewOU), so they can run in parallel.
package sambatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/internal/tools/testpki"
)

// The domain every DC of this package serves.
const (
	Realm  = "LOCKSTEP.TEST"
	Domain = "LOCKSTEP"
	BaseDN = "DC=lockstep,DC=test"
	// URL is the DC's LDAPS address.
	URL = "ldaps://127.0.0.1:636"
	// StartTLSURL is its plain LDAP address, for StartTLS.
	StartTLSURL = "ldap://127.0.0.1:389"
)

// lockFile serialises the test binaries that start a DC on this machine.
const lockFile = "/tmp/lockstep-sambatest.lock"

// DC is the running domain controller.
type DC struct {
	// Dir holds the provisioned domain, the TLS files and the logs.
	Dir string
	// CAFile is the PEM file of the CA that signed the DC's certificate.
	CAFile string
	// AdminPassword is the domain Administrator's.
	AdminPassword string
	conf          string
	cmd           *exec.Cmd
	exited        chan struct{}
	lock          *os.File
	seq           atomic.Int64
}

var (
	once    sync.Once
	dc      *DC
	startEr error
)

// Main runs the package's tests and then stops the DC if one was started.
// Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the DC and removes its files. Main calls it.
func Stop() {
	if dc == nil {
		return
	}
	_ = dc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-dc.exited:
	case <-time.After(15 * time.Second):
		_ = dc.cmd.Process.Kill()
		<-dc.exited
	}
	_ = os.RemoveAll(dc.Dir)
	_ = dc.lock.Close() // releases the flock
	dc = nil
}

// Need returns the DC, starting it on first use; a test is skipped (or
// fails in CI) when it cannot run here.
func Need(tb testing.TB) *DC {
	tb.Helper()
	once.Do(func() { dc, startEr = start() })
	if startEr != nil {
		if os.Getenv("CI") == "true" && !errors.Is(startEr, errNotRoot) {
			tb.Fatalf("a Samba AD DC is required in CI: %v", startEr)
		}
		tb.Skipf("skipping: no Samba AD DC for tests: %v", startEr)
	}
	return dc
}

// errNotRoot skips even in CI when the tests do not run as root (CI runs
// them as root).
var errNotRoot = errors.New("Samba's AD DC binds ports 389, 636 and 88, which needs root")

func start() (*DC, error) {
	if os.Geteuid() != 0 {
		return nil, errNotRoot
	}
	for _, p := range []struct{ bin, pkg string }{{"samba", "samba"}, {"samba-tool", "samba"}, {"ldapsearch", "ldap-utils"}} {
		if _, err := exec.LookPath(p.bin); err != nil {
			return nil, fmt.Errorf("%s not installed (Debian packages samba samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind ldap-utils; see .ci/run)", p.bin)
		}
	}
	lock, err := os.OpenFile(lockFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	// One DC per machine: wait for another test binary's to stop.
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("locking %s: %w", lockFile, err)
	}
	d, err := provision(lock)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return d, nil
}

func provision(lock *os.File) (*DC, error) {
	for _, port := range []string{"389", "636", "88"} {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("port %s on 127.0.0.1 is already in use (another directory server, or a Samba left running?)", port)
		}
	}
	dir, err := os.MkdirTemp("", "lockstep-sambatest-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	d := &DC{Dir: dir, lock: lock, exited: make(chan struct{}), AdminPassword: "Adm1n-" + randHex(8) + "!"}
	pki, err := testpki.Write(dir, "dc."+strings.ToLower(Realm), "vm."+strings.ToLower(Realm))
	if err != nil {
		return nil, fmt.Errorf("making the DC's certificate: %w", err)
	}
	d.CAFile = pki.CA
	target := filepath.Join(dir, "dc")
	opt := func(s string) string { return "--option=" + s }
	args := []string{"domain", "provision", "--server-role=dc", "--dns-backend=NONE", "--use-rfc2307",
		"--realm=" + Realm, "--domain=" + Domain, "--adminpass=" + d.AdminPassword, "--targetdir=" + target,
		opt("posix:eadb=" + filepath.Join(target, "eadb.tdb")), opt("xattr_tdb:file=" + filepath.Join(target, "xattr.tdb")),
		opt("interfaces=lo"), opt("bind interfaces only=yes"),
		opt("tls enabled=yes"), opt("tls keyfile=" + pki.Key),
		opt("tls certfile=" + pki.Cert), opt("tls cafile=" + d.CAFile),
		// Only what the tests use: LDAP and Kerberos, in one process.
		opt("server services=ldap kdc"), opt("pid directory=" + target),
		opt("log file=" + filepath.Join(target, "log.%m")),
	}
	if out, err := run(exec.Command("samba-tool", args...)); err != nil {
		return nil, fmt.Errorf("samba-tool domain provision: %v\n%s", err, out)
	}
	d.conf = filepath.Join(target, "etc", "smb.conf")
	// Samba 4.17 accepts the previous password in LDAP binds for an hour
	// after a change ("old password allowed period", meant for NTLM), which
	// Windows DCs do not; provision does not write this option, so it is
	// added here.
	conf, err := os.ReadFile(d.conf)
	if err != nil {
		return nil, err
	}
	conf = bytes.Replace(conf, []byte("[global]\n"), []byte("[global]\n\told password allowed period = 0\n"), 1)
	if err := os.WriteFile(d.conf, conf, 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "samba.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// -M single: one process, so that a change made over LDAP wakes the
	// change-notification searches at once (Samba's prefork workers wake
	// each other only on a 5-second timer).
	d.cmd = exec.Command("samba", "-i", "-M", "single", "-s", d.conf)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	d.cmd.SysProcAttr = serverProcAttr()
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting samba: %w", err)
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	if err := d.waitLDAPS(60 * time.Second); err != nil {
		_ = d.cmd.Process.Kill()
		<-d.exited
		b, _ := os.ReadFile(filepath.Join(dir, "samba.log"))
		return nil, fmt.Errorf("%w\n%s", err, b)
	}
	// The tests' domain policy: complexity and history as shipped, no
	// minimum age (tests change passwords back to back), lockout after 5.
	if out, err := d.ToolErr("domain", "passwordsettings", "set", "--min-pwd-age=0", "--account-lockout-threshold=5"); err != nil {
		d.kill()
		return nil, fmt.Errorf("samba-tool domain passwordsettings: %v\n%s", err, out)
	}
	ok = true
	return d, nil
}

func (d *DC) kill() {
	_ = d.cmd.Process.Kill()
	<-d.exited
}

// waitLDAPS waits until the DC answers a verified LDAPS bind.
func (d *DC) waitLDAPS(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-d.exited:
			return errors.New("samba exited")
		default:
		}
		var c *ldap.Conn
		if c, err = d.dialAdmin(); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the DC did not serve LDAPS within %v: %w", wait, err)
}

// TLSConfig trusts the test CA only.
func (d *DC) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(d.CAFile)
	pool.AppendCertsFromPEM(b)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

func (d *DC) dialAdmin() (*ldap.Conn, error) {
	c, err := ldap.DialURL(URL, ldap.DialWithTLSConfig(d.TLSConfig()))
	if err != nil {
		return nil, err
	}
	if err := c.Bind("Administrator@"+strings.ToLower(Realm), d.AdminPassword); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Admin returns an LDAPS connection bound as the domain Administrator,
// closed when the test ends.
func (d *DC) Admin(tb testing.TB) *ldap.Conn {
	tb.Helper()
	c, err := d.dialAdmin()
	if err != nil {
		tb.Fatalf("admin bind: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// Tool runs samba-tool on the DC's own database (as an administrator
// logged on to the DC does) and fails the test on an error.
func (d *DC) Tool(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := d.ToolErr(args...)
	if err != nil {
		tb.Fatalf("samba-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// ToolErr is Tool that returns the error.
func (d *DC) ToolErr(args ...string) (string, error) {
	return run(exec.Command("samba-tool", append(args, "-s", d.conf)...))
}

// ToolLDAP runs samba-tool against the DC over LDAP, as the Administrator
// (the password in samba's PASSWD variable, not on the command line), as
// an administrator on another machine does.
func (d *DC) ToolLDAP(tb testing.TB, args ...string) string {
	tb.Helper()
	cmd := exec.Command("samba-tool", append(args, "-H", StartTLSURL, "-U", "Administrator", "-s", d.conf)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "PASSWD=" + d.AdminPassword}
	out, err := run(cmd)
	if err != nil {
		tb.Fatalf("samba-tool %s (over LDAP): %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func run(cmd *exec.Cmd) (string, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if cmd.Env == nil {
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	}
	err := cmd.Run()
	return out.String(), err
}

// NewOU creates an OU of its own for a test, under the base DN, and
// returns its DN. Names are unique per test binary.
func (d *DC) NewOU(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d-%s", d.seq.Add(1), randHex(3))
	dn := "OU=" + name + "," + BaseDN
	a := ldap.NewAddRequest(dn, nil)
	a.Attribute("objectClass", []string{"organizationalUnit"})
	if err := d.Admin(tb).Add(a); err != nil {
		tb.Fatalf("adding %s: %v", dn, err)
	}
	return dn
}

// User is a test user in AD.
type User struct {
	Name, DisplayName, DN, Password string
}

// AddUser creates an enabled user in ou with a password, and returns it.
// The name is made unique; display names hold it too (so that the
// complexity rule's name parts are per user).
func (d *DC) AddUser(tb testing.TB, ou, prefix, password string) User {
	tb.Helper()
	name := fmt.Sprintf("%s%d%s", prefix, d.seq.Add(1), randHex(2))
	u := User{Name: name, DisplayName: "Test " + strings.ToUpper(name[:1]) + name[1:] + " Person", Password: password,
		DN: "CN=" + name + "," + ou}
	a := ldap.NewAddRequest(u.DN, nil)
	a.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
	a.Attribute("sAMAccountName", []string{name})
	a.Attribute("userPrincipalName", []string{name + "@" + strings.ToLower(Realm)})
	a.Attribute("displayName", []string{u.DisplayName})
	a.Attribute("unicodePwd", []string{QuotedUTF16(password)})
	a.Attribute("userAccountControl", []string{"512"}) // a normal, enabled account
	if err := d.Admin(tb).Add(a); err != nil {
		tb.Fatalf("adding user %s: %v", name, err)
	}
	return u
}

// SetPassword resets a user's password as the Administrator over LDAP;
// mustChange also sets pwdLastSet to 0.
func (d *DC) SetPassword(tb testing.TB, dn, password string, mustChange bool) {
	tb.Helper()
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace("unicodePwd", []string{QuotedUTF16(password)})
	if mustChange {
		m.Replace("pwdLastSet", []string{"0"})
	}
	if err := d.Admin(tb).Modify(m); err != nil {
		tb.Fatalf("resetting %s: %v", dn, err)
	}
}

// Rights a service account can be given on an OU's user objects.
const (
	// RightReset is the Reset Password extended right.
	RightReset = "(OA;CI;CR;00299570-246d-11d0-a768-00aa006e0529;bf967aba-0de6-11d0-a285-00aa003049e2;%s)"
	// RightPwdLastSet is writing pwdLastSet (a temporary password).
	RightPwdLastSet = "(OA;CI;WP;bf967a0a-0de6-11d0-a285-00aa003049e2;bf967aba-0de6-11d0-a285-00aa003049e2;%s)"
	// RightLockoutTime is writing lockoutTime (unlock).
	RightLockoutTime = "(OA;CI;WP;28630ebf-41d5-11d1-a9c1-0000f80367c1;bf967aba-0de6-11d0-a285-00aa003049e2;%s)"
)

// ServiceAccount creates a user for Lockstep to bind as, in ou, with the
// given rights (Right constants) on ou's users, and returns it; a password
// file (0600) holding its password is in Dir.
func (d *DC) ServiceAccount(tb testing.TB, ou string, rights ...string) User {
	tb.Helper()
	u := d.AddUser(tb, ou, "svc", "Svc-"+randHex(6)+"-Pw1!")
	if len(rights) == 0 {
		return u
	}
	sid := d.SID(tb, u.DN)
	var sddl strings.Builder
	for _, r := range rights {
		fmt.Fprintf(&sddl, r, sid)
	}
	d.Tool(tb, "dsacl", "set", "--objectdn="+ou, "--sddl="+sddl.String())
	return u
}

// SID reads an object's SID in its string form.
func (d *DC) SID(tb testing.TB, dn string) string {
	tb.Helper()
	res, err := d.Admin(tb).Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 10, false,
		"(objectClass=*)", []string{"objectSid"}, nil))
	if err != nil || len(res.Entries) != 1 {
		tb.Fatalf("reading the SID of %s: %v", dn, err)
	}
	return SIDString(res.Entries[0].GetRawAttributeValue("objectSid"))
}

// SIDString formats a binary SID as S-1-....
func SIDString(b []byte) string {
	if len(b) < 8 {
		return ""
	}
	var auth uint64
	for _, x := range b[2:8] {
		auth = auth<<8 | uint64(x)
	}
	s := fmt.Sprintf("S-%d-%d", b[0], auth)
	for i := 0; i < int(b[1]) && 8+4*i+4 <= len(b); i++ {
		o := 8 + 4*i
		s += fmt.Sprintf("-%d", uint32(b[o])|uint32(b[o+1])<<8|uint32(b[o+2])<<16|uint32(b[o+3])<<24)
	}
	return s
}

// QuotedUTF16 is the form AD's unicodePwd takes: the password in double
// quotes, UTF-16LE.
func QuotedUTF16(pw string) string {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	return string(b)
}

// Bind reports whether user (a DN or user@realm) binds with password, and
// the error when not.
func (d *DC) Bind(user, password string) error {
	c, err := ldap.DialURL(URL, ldap.DialWithTLSConfig(d.TLSConfig()))
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Bind(user, password)
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

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
