package protocol

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Redacted is what a Secret prints as, in every format and log.
const Redacted = "[REDACTED]"

// Secret holds a password or token. It travels on the wire as base64 JSON
// but never prints: String, GoString, Format and LogValue all redact, so a
// secret cannot reach a log line or an error message by accident. Call Wipe
// when done with it.
type Secret []byte

// String implements fmt.Stringer.
func (Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer (%#v).
func (Secret) GoString() string { return Redacted }

// Format implements fmt.Formatter so that every verb, %x and %q included,
// redacts.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON encodes the bytes as base64, as for []byte.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal([]byte(s)) }

// UnmarshalJSON decodes base64, as for []byte.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v []byte
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	*s = v
	return nil
}

// Bytes returns the underlying bytes. The caller must not keep them past
// Wipe.
func (s Secret) Bytes() []byte { return s }

// Empty reports whether the secret has no bytes.
func (s Secret) Empty() bool { return len(s) == 0 }

// Equal compares two secrets.
func (s Secret) Equal(o Secret) bool {
	if len(s) != len(o) {
		return false
	}
	var d byte
	for i := range s {
		d |= s[i] ^ o[i]
	}
	return d == 0
}

// Clone returns an independent copy.
func (s Secret) Clone() Secret {
	if s == nil {
		return nil
	}
	return append(Secret(nil), s...)
}

// Wipe overwrites the bytes with zeros.
func (s Secret) Wipe() { clear(s) }
