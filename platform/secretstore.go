package platform

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// SecretStore keeps the few secrets the daemon itself must hold (the service
// account's password). On macOS with cgo it is the System keychain; elsewhere
// a root-only directory.
type SecretStore interface {
	// Get returns the secret; ErrSecretNotFound when there is none.
	Get(name string) ([]byte, error)
	// Put stores or replaces the secret.
	Put(name string, secret []byte) error
	// Delete removes the secret; deleting a missing secret is not an error.
	Delete(name string) error
}

var secretName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// FileStore is a SecretStore in a directory only its owner can read: the
// directory is 0700, each secret a 0600 file written atomically (temporary
// file, fsync, rename, directory fsync).
type FileStore struct {
	Dir string
}

// NewFileStore returns a FileStore in dir (created 0700 on first Put).
func NewFileStore(dir string) *FileStore { return &FileStore{Dir: dir} }

func (s *FileStore) path(name string) (string, error) {
	if !secretName.MatchString(name) {
		return "", fmt.Errorf("secret name %q: invalid", name)
	}
	return filepath.Join(s.Dir, name), nil
}

// checkDir refuses a directory others can read or that is not ours.
func (s *FileStore) checkDir() error {
	fi, err := os.Lstat(s.Dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("secret store %s: not a directory", s.Dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("secret store %s: mode %v is open to others", s.Dir, fi.Mode().Perm())
	}
	if uid, _ := fileOwner(fi); uid != os.Geteuid() {
		return fmt.Errorf("secret store %s: owned by uid %d", s.Dir, uid)
	}
	return nil
}

// Get implements SecretStore.
func (s *FileStore) Get(name string) ([]byte, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	if err := s.checkDir(); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", name, ErrSecretNotFound)
		}
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, ErrSecretNotFound)
	}
	return b, err
}

// Put implements SecretStore.
func (s *FileStore) Put(name string, secret []byte) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	if err := s.checkDir(); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.Dir, "."+name+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(secret); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return err
	}
	d, err := os.Open(s.Dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Delete implements SecretStore.
func (s *FileStore) Delete(name string) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
