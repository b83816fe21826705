package directory

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/lockstep-dev/lockstep/protocol"
)

// TOTP parameters: the ones every standard authenticator app uses.
const (
	totpPeriod = 30
	totpSkew   = 1
)

// totpDigits is protocol.TOTPDigits, which the Mac checks codes against.
const totpDigits = otp.Digits(protocol.TOTPDigits)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// newTOTPKey makes a fresh secret for user and returns it with its
// otpauth:// URI.
func newTOTPKey(issuer, user string) (secret []byte, uri string, err error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: user, Period: totpPeriod,
		SecretSize: 20, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, "", fmt.Errorf("generating TOTP key: %w", err)
	}
	secret, err = b32.DecodeString(key.Secret())
	if err != nil {
		return nil, "", fmt.Errorf("decoding TOTP key: %w", err)
	}
	return secret, key.URL(), nil
}

// totpMatch finds the time step, within ±totpSkew of now, whose code is
// code. It does not check replay: the caller compares the step with the
// last one used.
func totpMatch(secret []byte, code string, now time.Time) (step int64, ok bool) {
	if !protocol.ValidTOTPCode(code) {
		return 0, false
	}
	enc := b32.EncodeToString(secret)
	cur := now.Unix() / totpPeriod
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		s := cur + d
		want, err := totp.GenerateCodeCustom(enc, time.Unix(s*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// secrets holds the server's local keys, derived from one random key in a
// 0600 file in the data directory: one seals TOTP secrets in the database,
// the other MACs idempotent requests, so neither a TOTP secret nor a
// password digest is ever stored in the clear.
type secrets struct {
	aead   cipher.AEAD
	macKey []byte
	// webKey keys the web pages' CSRF tokens, the same on every replica.
	webKey []byte
}

func newSecrets(master []byte) (*secrets, error) {
	if len(master) != 32 {
		return nil, errors.New("server key must be 32 bytes")
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, master)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("lockstep totp seal v1"))
	if err != nil {
		return nil, fmt.Errorf("creating cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("creating cipher: %w", err)
	}
	return &secrets{aead: aead, macKey: derive("lockstep idempotency v1"), webKey: derive("lockstep web csrf v1")}, nil
}

// keyCheck is a one-way check value of the master key. The database keeps
// it so that a replica started with a different key is refused; it tells
// nothing about the key.
func keyCheck(master []byte) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("lockstep master key check v1"))
	return m.Sum(nil)
}

// seal encrypts plaintext bound to the user name.
func (s *secrets) seal(user string, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("reading nonce: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plaintext, []byte(user)), nil
}

func (s *secrets) open(user string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed TOTP secret is too short")
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(user))
	if err != nil {
		return nil, fmt.Errorf("opening TOTP secret: %w", err)
	}
	return pt, nil
}

// fingerprint MACs a request so that a retried one can be recognised
// without storing what it contained. A final block of zeros flushes the
// hash's input buffer, so no byte of a part (a password) stays in it.
func (s *secrets) fingerprint(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, s.macKey)
	for _, p := range parts {
		var l [8]byte
		for i := range l {
			l[i] = byte(len(p) >> (8 * i))
		}
		m.Write(l[:])
		m.Write(p)
	}
	var flush [sha256.BlockSize]byte
	m.Write(flush[:])
	return m.Sum(nil)
}
