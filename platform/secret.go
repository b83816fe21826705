package platform

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
)

// maxSecret is getpass(3)'s limit (_PASSWORD_LEN): a longer answer would be
// silently truncated by the tool, so it is refused instead.
const maxSecret = 128

// checkSecret reports whether pw can answer a tool prompt unchanged.
func checkSecret(what string, pw []byte) error {
	switch {
	case len(pw) == 0:
		return fmt.Errorf("%s: empty: %w", what, ErrUnusableSecret)
	case len(pw) > maxSecret:
		return fmt.Errorf("%s: longer than %d bytes: %w", what, maxSecret, ErrUnusableSecret)
	case bytes.ContainsAny(pw, "\n\r\x00"):
		return fmt.Errorf("%s: contains a line break or NUL: %w", what, ErrUnusableSecret)
	}
	return nil
}

// lines joins secrets as answers to successive prompts ("a\nb\n"). The
// caller wipes the result.
func lines(secrets ...[]byte) []byte {
	n := 0
	for _, s := range secrets {
		n += len(s) + 1
	}
	b := make([]byte, 0, n)
	for _, s := range secrets {
		b = append(append(b, s...), '\n')
	}
	return b
}

// wipe zeroes a buffer that held a secret.
func wipe(b []byte) { clear(b) }

// randomPassword returns 256 bits from crypto/rand as 43 URL-safe base64
// characters: no line breaks, well inside getpass's 128-byte limit.
func randomPassword() ([]byte, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("random password: %w", err)
	}
	pw := make([]byte, base64.RawURLEncoding.EncodedLen(len(raw)))
	base64.RawURLEncoding.Encode(pw, raw)
	wipe(raw)
	return pw, nil
}

// shortName is a macOS account short name; anything else never reaches a
// tool's argv.
var shortName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,243}$`)

func checkName(name string) error {
	if !shortName.MatchString(name) {
		return fmt.Errorf("%q: %w", name, ErrInvalidName)
	}
	return nil
}
