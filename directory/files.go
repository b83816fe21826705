package directory

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

var b64url = base64.RawURLEncoding

// Files the server keeps in its data directory.
const (
	DBFile         = "directory.db"
	CAFile         = "ca.pem"
	CAKeyFile      = "ca-key.pem"
	CertFile       = "server.pem"
	KeyFile        = "server-key.pem"
	ServerKeyFile  = "server.key"
	AdminTokenFile = "admin.token"
	// AdminInfoFile is admin.json: the admin API's URL, CA and token path,
	// written on every start so that admin commands need only --data.
	AdminInfoFile = "admin.json"
)

// writeFileAtomic writes data to path with mode through a temporary file,
// fsync and rename, so a crash leaves the old file or the new one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// loadOrCreateSecret reads a 0600 file of n random bytes (base64), creating
// it on first use. A file readable by others is refused.
func loadOrCreateSecret(path string, n int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, n)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("reading random bytes: %w", err)
		}
		enc := base64.RawURLEncoding.EncodeToString(raw)
		if err := writeFileAtomic(path, []byte(enc+"\n"), 0o600); err != nil {
			return nil, err
		}
		return []byte(enc), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %o); chmod 600 it", path, st.Mode().Perm())
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b, nil
}

// ensureTLS returns the server certificate: the configured one, or one
// issued by a local CA kept in dir (both made on first start; the server
// certificate is renewed when it nears expiry or lacks a wanted name).
func ensureTLS(dir string, hosts []string, now time.Time) (tls.Certificate, error) {
	caPath, caKeyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	caCert, caKey, err := loadPair(caPath, caKeyPath)
	if errors.Is(err, fs.ErrNotExist) {
		caCert, caKey, err = createCA(caPath, caKeyPath, now)
	}
	if err != nil {
		return tls.Certificate{}, err
	}
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	cert, _, err := loadPair(certPath, keyPath)
	if err == nil && certCovers(cert, caCert, hosts, now) {
		return tls.LoadX509KeyPair(certPath, keyPath)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, err
	}
	if err := createServerCert(certPath, keyPath, caCert, caKey, hosts, now); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certPath, keyPath)
}

func certCovers(c, ca *x509.Certificate, hosts []string, now time.Time) bool {
	if now.Add(30*24*time.Hour).After(c.NotAfter) || c.CheckSignatureFrom(ca) != nil {
		return false
	}
	for _, h := range hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func loadPair(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cblock, _ := pem.Decode(cb)
	kblock, _ := pem.Decode(kb)
	if cblock == nil || kblock == nil {
		return nil, nil, fmt.Errorf("%s or %s is not PEM", certPath, keyPath)
	}
	cert, err := x509.ParseCertificate(cblock.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing %s: %w", certPath, err)
	}
	key, err := x509.ParseECPrivateKey(kblock.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing %s: %w", keyPath, err)
	}
	return cert, key, nil
}

func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding key: %w", err)
	}
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func createCA(certPath, keyPath string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "Lockstep directory local CA " + host},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	if err := writePair(certPath, keyPath, der, key); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func createServerCert(certPath, keyPath string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating server key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("creating server certificate: %w", err)
	}
	return writePair(certPath, keyPath, der, key)
}

// certHosts is the name list of a generated certificate.
func certHosts(extra []string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		hosts = append(hosts, h)
	}
	seen := map[string]bool{}
	var out []string
	for _, h := range append(hosts, extra...) {
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// checkPermissions refuses a data directory or key and database files that
// others could change or read: a key anyone can replace, or a database
// anyone can edit, would let them impersonate the directory or any user.
// (admin.token and the master key are checked as they are read.)
func checkPermissions(cfg Config) error {
	st, err := os.Stat(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", cfg.DataDir)
	}
	if m := st.Mode().Perm(); m&0o022 != 0 {
		return fmt.Errorf("data directory %s is writable by others (mode %o): chmod 700 it", cfg.DataDir, m)
	}
	private := []string{CAKeyFile, KeyFile, ServerKeyFile, AdminTokenFile}
	if cfg.DatabaseURL == "" {
		private = append(private, DBFile, DBFile+"-wal", DBFile+"-shm")
	}
	for _, name := range private {
		if err := ownerOnly(filepath.Join(cfg.DataDir, name), 0o077); err != nil {
			return err
		}
	}
	// A configured key may be shared with a group (ssl-cert on Debian),
	// but never writable by it nor open to everyone.
	if cfg.KeyFile != "" {
		if err := ownerOnly(cfg.KeyFile, 0o027); err != nil {
			return err
		}
	}
	return nil
}

// ownerOnly refuses path when its mode has any of the bits in forbidden;
// a missing file is fine (it is made with the right mode).
func ownerOnly(path string, forbidden os.FileMode) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	if m := st.Mode().Perm(); m&forbidden != 0 {
		return fmt.Errorf("%s is open to others (mode %o): chmod 600 it", path, m)
	}
	return nil
}
