package platform

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFileStore(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "secrets")
	s := NewFileStore(dir)
	if _, err := s.Get("service-account"); !errors.Is(err, ErrSecretNotFound) {
		t.Errorf("Get before Put: %v", err)
	}
	if err := s.Put("service-account", []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("service-account", []byte("s3cret-2")); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Get("service-account"); err != nil || !bytes.Equal(b, []byte("s3cret-2")) {
		t.Errorf("Get = %q %v", b, err)
	}
	di, _ := os.Stat(dir)
	fi, _ := os.Stat(filepath.Join(dir, "service-account"))
	if di.Mode().Perm() != 0o700 || fi.Mode().Perm() != 0o600 {
		t.Errorf("modes: dir %v file %v", di.Mode(), fi.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("leftover files: %v", ents)
	}
	for _, bad := range []string{"../x", "", "A", "a/b"} {
		if err := s.Put(bad, []byte("x")); err == nil {
			t.Errorf("Put(%q) accepted", bad)
		}
	}
	if err := s.Delete("service-account"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("service-account"); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := s.Get("service-account"); !errors.Is(err, ErrSecretNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	// A directory others can read is refused.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("service-account", []byte("x")); err == nil {
		t.Error("Put into a 0755 directory accepted")
	}
	if _, err := s.Get("service-account"); err == nil || errors.Is(err, ErrSecretNotFound) {
		t.Errorf("Get from a 0755 directory: %v", err)
	}
}

func TestSystemSecretStoreOffMac(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "s")
	s := NewSystemSecretStore(SecretService, dir)
	if err := s.Put("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "k")); err != nil {
		t.Errorf("off macOS the system store is a root-only directory: %v", err)
	}
}

func TestRandomPassword(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		pw, err := randomPassword()
		if err != nil {
			t.Fatal(err)
		}
		if err := checkSecret("pw", pw); err != nil || len(pw) != 43 {
			t.Fatalf("random password %q: %v", pw, err)
		}
		if seen[string(pw)] {
			t.Fatal("repeated random password")
		}
		seen[string(pw)] = true
	}
}
