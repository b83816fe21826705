package macsim

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
)

// A simulated keychain file is JSON: a random master key wrapped (AES-GCM)
// under a key derived from the keychain password, and items encrypted under
// the master key. Changing the password re-wraps the master key only, so the
// items survive a re-key exactly as on macOS, and a keychain opened with a
// wrong password yields nothing.
const keychainFormat = "macsim-keychain/1"

type keychainFile struct {
	Format string `json:"format"`
	// ID names the keychain's master key: it survives a re-key and differs
	// for a new keychain made at the same path (securityd's unlocked state
	// in a session follows the key, not the file name).
	ID          string         `json:"id"`
	Salt        []byte         `json:"salt"`
	Iterations  int            `json:"iterations"`
	WrappedKey  []byte         `json:"wrapped_key"`
	LockOnSleep bool           `json:"lock_on_sleep"`
	Timeout     int            `json:"timeout_seconds"`
	Items       []keychainItem `json:"items"`
}

type keychainItem struct {
	Service string `json:"service"`
	Account string `json:"account"`
	Data    []byte `json:"data"`
}

// KeychainItem is a decrypted generic password item of a simulated keychain.
type KeychainItem struct {
	Service string `json:"service"`
	Account string `json:"account"`
	Secret  string `json:"secret"`
}

var (
	errKeychainPassphrase = errors.New("wrong keychain password")
	errKeychainCorrupt    = errors.New("not a simulated keychain")
)

func seal(key, plain []byte) []byte {
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, gcm.NonceSize())
	_, _ = rand.Read(nonce)
	return gcm.Seal(nonce, nonce, plain, nil)
}

func unseal(key, sealed []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, errKeychainCorrupt
	}
	return gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], nil)
}

func newKeychainFile(password []byte, items []KeychainItem) ([]byte, error) {
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	kf := keychainFile{Format: keychainFormat, ID: newUUID(), LockOnSleep: true, Timeout: 300}
	kf.wrap(master, password)
	for _, it := range items {
		kf.Items = append(kf.Items, keychainItem{Service: it.Service, Account: it.Account, Data: seal(master, []byte(it.Secret))})
	}
	return json.MarshalIndent(kf, "", "  ")
}

func (kf *keychainFile) wrap(master, password []byte) {
	kf.Salt = make([]byte, 16)
	_, _ = rand.Read(kf.Salt)
	kf.Iterations = hashIterations
	kf.WrappedKey = seal(derive(password, kf.Salt, kf.Iterations, 32), master)
}

func parseKeychainFile(data []byte) (*keychainFile, error) {
	var kf keychainFile
	if err := json.Unmarshal(data, &kf); err != nil || kf.Format != keychainFormat {
		return nil, errKeychainCorrupt
	}
	return &kf, nil
}

func (kf *keychainFile) unlock(password []byte) ([]byte, error) {
	master, err := unseal(derive(password, kf.Salt, kf.Iterations, 32), kf.WrappedKey)
	if err != nil {
		return nil, errKeychainPassphrase
	}
	return master, nil
}

// rekeyKeychain returns the keychain re-wrapped from old to new password.
func rekeyKeychain(data, oldPW, newPW []byte) ([]byte, error) {
	kf, err := parseKeychainFile(data)
	if err != nil {
		return nil, err
	}
	master, err := kf.unlock(oldPW)
	if err != nil {
		return nil, err
	}
	kf.wrap(master, newPW)
	return json.MarshalIndent(kf, "", "  ")
}

// ReadKeychain decrypts a simulated keychain file with password; it fails
// when the password does not open the keychain. Tests use it to prove that a
// re-keyed keychain still holds every item.
func ReadKeychain(data, password []byte) ([]KeychainItem, error) {
	kf, err := parseKeychainFile(data)
	if err != nil {
		return nil, err
	}
	master, err := kf.unlock(password)
	if err != nil {
		return nil, err
	}
	items := make([]KeychainItem, 0, len(kf.Items))
	for _, it := range kf.Items {
		plain, err := unseal(master, it.Data)
		if err != nil {
			return nil, fmt.Errorf("item %s/%s: %w", it.Service, it.Account, errKeychainCorrupt)
		}
		items = append(items, KeychainItem{Service: it.Service, Account: it.Account, Secret: string(plain)})
	}
	return items, nil
}
