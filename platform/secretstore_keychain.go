//go:build darwin && cgo

package platform

import (
	"errors"
	"fmt"

	"github.com/keybase/go-keychain"
)

// KeychainStore is a SecretStore in the System keychain: generic password
// items of one service. A root LaunchDaemon's default keychain is the System
// keychain, so the items land there.
type KeychainStore struct {
	Service string
}

// NewSystemSecretStore returns the System keychain store (macOS with cgo).
// dir is unused; it exists so every build has the same constructor.
func NewSystemSecretStore(service, dir string) SecretStore { return &KeychainStore{Service: service} }

// Get implements SecretStore.
func (s *KeychainStore) Get(name string) ([]byte, error) {
	b, err := keychain.GetGenericPassword(s.Service, name, "", "")
	if err != nil {
		return nil, fmt.Errorf("keychain %s/%s: %w", s.Service, name, err)
	}
	if b == nil {
		return nil, fmt.Errorf("%s: %w", name, ErrSecretNotFound)
	}
	return b, nil
}

// Put implements SecretStore.
func (s *KeychainStore) Put(name string, secret []byte) error {
	item := keychain.NewGenericPassword(s.Service, name, "Lockstep "+name, secret, "")
	err := keychain.AddItem(item)
	if errors.Is(err, keychain.ErrorDuplicateItem) {
		query := keychain.NewItem()
		query.SetSecClass(keychain.SecClassGenericPassword)
		query.SetService(s.Service)
		query.SetAccount(name)
		update := keychain.NewItem()
		update.SetData(secret)
		err = keychain.UpdateItem(query, update)
	}
	if err != nil {
		return fmt.Errorf("keychain %s/%s: %w", s.Service, name, err)
	}
	return nil
}

// Delete implements SecretStore.
func (s *KeychainStore) Delete(name string) error {
	err := keychain.DeleteGenericPasswordItem(s.Service, name)
	if err != nil && !errors.Is(err, keychain.ErrorItemNotFound) {
		return fmt.Errorf("keychain %s/%s: %w", s.Service, name, err)
	}
	return nil
}
