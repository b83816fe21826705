// Package smtptest runs a real SMTP server for tests: Debian's aiosmtpd
// (python3-aiosmtpd) on a free loopback port, with a certificate from a
// throwaway CA the test trusts, STARTTLS or TLS from the first byte, and
// AUTH; every message it accepts is kept in a directory the test reads.
// Without /usr/bin/python3 and aiosmtpd a test is skipped, or fails when
// the environment says CI=true. It is imported by test files only.
package smtptest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

//go:embed smtpd.py
var script []byte

// Python is Debian's interpreter, which has python3-aiosmtpd (a python3 on
// PATH may be another installation without it).
const Python = "/usr/bin/python3"

// Options say how the server listens.
type Options struct {
	// Implicit: TLS from the first byte (smtps); otherwise STARTTLS, which
	// the server requires before MAIL.
	Implicit bool
	// NoTLS: a server that offers no TLS at all (to test refusal).
	NoTLS bool
	// User and Password: AUTH required with these (none when User is "").
	User, Password string
}

// Server is a running test SMTP server.
type Server struct {
	// Addr is 127.0.0.1:PORT.
	Addr string
	// CAPool and CAFile trust the server's certificate.
	CAPool *x509.CertPool
	CAFile string
	// Implicit is a server that speaks TLS from the first byte.
	Implicit bool
	out      string
}

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	// TLS and Auth say how the session that sent it was made.
	TLS, Auth bool
	// Raw is the message as received; Msg its parsed form.
	Raw []byte
	Msg *mail.Message
}

// URL is the server's URL for a Mailer: smtps:// or smtp://, with the
// user when there is one.
func (s *Server) URL(user string) string {
	scheme := "smtp"
	if s.Implicit {
		scheme = "smtps"
	}
	u := ""
	if user != "" {
		u = user + "@"
	}
	return scheme + "://" + u + s.Addr
}

// Available says whether the server can run here.
func Available() error {
	if _, err := os.Stat(Python); err != nil {
		return fmt.Errorf("%s not found (apt-get install python3-aiosmtpd)", Python)
	}
	if out, err := exec.Command(Python, "-c", "import aiosmtpd").CombinedOutput(); err != nil {
		return fmt.Errorf("python3-aiosmtpd is not installed (%s)", strings.TrimSpace(string(out)))
	}
	return nil
}

// Start starts a server for t and stops it when t ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("SMTP test server: %v", err)
		}
		t.Skipf("SMTP test server: %v", err)
	}
	dir := t.TempDir()
	caPEM, certPEM, keyPEM := certs(t)
	files := map[string][]byte{"ca.pem": caPEM, "cert.pem": certPEM, "key.pem": keyPEM, "smtpd.py": script}
	if opt.User != "" {
		files["password"] = []byte(opt.Password + "\n")
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "messages")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join(dir, "smtpd.py"), "--cert", filepath.Join(dir, "cert.pem"), "--key", filepath.Join(dir, "key.pem"), "--out", out}
	if opt.Implicit {
		args = append(args, "--implicit")
	}
	if opt.NoTLS {
		args = append(args, "--no-tls")
	}
	if opt.User != "" {
		args = append(args, "--user", opt.User, "--password-file", filepath.Join(dir, "password"))
	}
	cmd := exec.Command(Python, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting aiosmtpd: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- p
			}
		}
		close(ready)
	}()
	var port string
	select {
	case p, ok := <-ready:
		if !ok {
			t.Fatalf("aiosmtpd exited: %s", stderr.String())
		}
		port = p
	case <-time.After(30 * time.Second):
		t.Fatalf("aiosmtpd did not start: %s", stderr.String())
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &Server{Addr: net.JoinHostPort("127.0.0.1", port), CAPool: pool, CAFile: filepath.Join(dir, "ca.pem"),
		Implicit: opt.Implicit, out: out}
}

// Messages lists the messages accepted so far, oldest first.
func (s *Server) Messages(t testing.TB) []Message {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(s.out, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	var out []Message
	for _, n := range names {
		var meta struct {
			MailFrom string   `json:"mail_from"`
			RcptTos  []string `json:"rcpt_tos"`
			TLS      bool     `json:"tls"`
			Auth     bool     `json:"auth"`
		}
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &meta); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(strings.TrimSuffix(n, ".json") + ".eml")
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
		if err != nil {
			t.Fatalf("message %s does not parse: %v", n, err)
		}
		out = append(out, Message{From: meta.MailFrom, To: meta.RcptTos, TLS: meta.TLS, Auth: meta.Auth, Raw: raw, Msg: msg})
	}
	return out
}

// certs makes a CA and a certificate for 127.0.0.1 and localhost.
func certs(t testing.TB) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Lockstep test SMTP CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}
