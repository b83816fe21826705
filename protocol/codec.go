package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrTooLarge is returned for a frame over MaxMessageSize.
var ErrTooLarge = errors.New("message too large")

// kinds says, for every known type, who sends it and whether it mutates.
var kinds = map[string]struct {
	request  bool // agent → directory, answered by a result
	mutating bool // needs an idempotency key
	push     bool // directory → agent, carries Seq
}{
	TypeHello:             {},
	TypeAuth:              {},
	TypeWelcome:           {},
	TypeResult:            {},
	TypeVerifyPassword:    {request: true},
	TypeChangePassword:    {request: true, mutating: true},
	TypeGetPolicy:         {request: true},
	TypeGetAccount:        {request: true},
	TypeAckSync:           {request: true, mutating: true},
	TypeAckPush:           {},
	TypePasswordReset:     {push: true},
	TypePolicyChanged:     {push: true},
	TypeAccountLocked:     {push: true},
	TypeAccountUnlocked:   {push: true},
	TypeExpiryApproaching: {push: true},

	TypeBeginMFAEnrollment:   {request: true},
	TypeConfirmMFAEnrollment: {request: true, mutating: true},
	TypeReportPlaces:         {request: true},
	TypeMFAEnrollment:        {push: true},
}

// IsRequest reports whether typ is a request that expects a result.
func IsRequest(typ string) bool { return kinds[typ].request }

// IsMutating reports whether typ changes state and so needs an idempotency key.
func IsMutating(typ string) bool { return kinds[typ].mutating }

// IsPush reports whether typ is a push from the directory.
func IsPush(typ string) bool { return kinds[typ].push }

// Decode parses and validates one frame. It refuses oversized input, unknown
// versions and types, missing ids and keys, and trailing data. The returned
// error is a *Error with code bad_request or unsupported, ready to send back.
// It makes no copy of data but the envelope's Body, which a caller holding
// a secret clears (see Envelope.Body).
func Decode(data []byte) (*Envelope, error) {
	if len(data) > MaxMessageSize {
		return nil, &Error{Code: CodeBadRequest, Message: ErrTooLarge.Error()}
	}
	// Unmarshal reads data in place; a json.Decoder would first copy the
	// frame (a password in it, base64) into a buffer nobody wipes.
	var env Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) && strings.HasSuffix(se.Error(), "after top-level value") {
			return nil, Errorf(CodeBadRequest, "trailing data after the message")
		}
		return nil, Errorf(CodeBadRequest, "invalid JSON: %v", err)
	}
	if err := env.Validate(); err != nil {
		return nil, err
	}
	return &env, nil
}

// Validate checks the envelope's framing (not its body).
func (e *Envelope) Validate() error {
	if e.V != Version {
		return Errorf(CodeUnsupported, "protocol version %d is not supported (this side speaks %d)", e.V, Version)
	}
	k, known := kinds[e.Type]
	if !known {
		return Errorf(CodeUnsupported, "unknown message type %q", truncate(e.Type, 32))
	}
	if len(e.ID) > MaxIDLen || !utf8.ValidString(e.ID) {
		return Errorf(CodeBadRequest, "id longer than %d bytes", MaxIDLen)
	}
	if len(e.IdempotencyKey) > MaxIDLen || !utf8.ValidString(e.IdempotencyKey) {
		return Errorf(CodeBadRequest, "idempotency_key longer than %d bytes", MaxIDLen)
	}
	if (k.request || e.Type == TypeResult) && e.ID == "" {
		return Errorf(CodeBadRequest, "%s needs an id", e.Type)
	}
	if k.mutating && e.IdempotencyKey == "" {
		return Errorf(CodeBadRequest, "%s needs an idempotency_key", e.Type)
	}
	if k.push && e.Seq == 0 {
		return Errorf(CodeBadRequest, "%s needs a seq", e.Type)
	}
	return nil
}

// Decode decodes the envelope's body into v and validates it when v has a
// Validate method. Unknown fields are ignored so that newer peers can add
// optional ones.
func (e *Envelope) Decode(v any) error {
	body := e.Body
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return Errorf(CodeBadRequest, "invalid %s body: %v", e.Type, err)
	}
	if val, ok := v.(interface{ Validate() error }); ok {
		if err := val.Validate(); err != nil {
			var pe *Error
			if errors.As(err, &pe) {
				return pe
			}
			return Errorf(CodeBadRequest, "invalid %s: %v", e.Type, err)
		}
	}
	return nil
}

// New builds an envelope with body marshalled from v (which may be nil).
func New(typ string, v any) (*Envelope, error) {
	env := &Envelope{V: Version, Type: typ}
	if v != nil {
		b, err := Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", typ, err)
		}
		env.Body = b
	}
	return env, nil
}

// Result builds the reply to req carrying v, or err when err is non-nil.
func Result(req *Envelope, v any, err *Error) (*Envelope, error) {
	if err != nil {
		return &Envelope{V: Version, Type: TypeResult, ID: req.ID, Error: err}, nil
	}
	env, e := New(TypeResult, v)
	if e != nil {
		return nil, e
	}
	env.ID = req.ID
	return env, nil
}

// Encode marshals an envelope and checks it fits the peer's read limit. The
// body is copied into the result only (see Marshal): wipe it after use when
// the body holds a secret.
func Encode(e *Envelope) ([]byte, error) {
	b, err := encodeEnvelope(e)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", e.Type, err)
	}
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("encoding %s: %w (%d bytes)", e.Type, ErrTooLarge, len(b))
	}
	return b, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// validName checks a user, local or host name.
func validName(field, s string) error {
	if s == "" {
		return Errorf(CodeBadRequest, "%s is required", field)
	}
	if len(s) > MaxNameLen || !utf8.ValidString(s) {
		return Errorf(CodeBadRequest, "%s is not a valid name", field)
	}
	for _, r := range s {
		if Unprintable(r) {
			return Errorf(CodeBadRequest, "%s contains a control character", field)
		}
	}
	return nil
}

// Unprintable reports the runes a name may not hold because a terminal or
// a text view would act on them rather than show them: C0 and C1 control
// characters (ESC, CSI...), DEL, line and paragraph separators and the
// bidirectional overrides and isolates that reorder text.
func Unprintable(r rune) bool {
	switch {
	case unicode.IsControl(r): // C0, DEL, C1
		return true
	case r == '\u2028' || r == '\u2029':
		return true
	case r == '\u061c' || r == '\u200e' || r == '\u200f' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069'):
		return true
	}
	return false
}

func validSecret(field string, s Secret) error {
	if len(s) == 0 {
		return Errorf(CodeBadRequest, "%s is required", field)
	}
	if len(s) > 4*MaxPasswordBytes {
		return Errorf(CodeBadRequest, "%s is too long", field)
	}
	return nil
}

// Validate implements body validation.
func (r *Hello) Validate() error {
	if len(r.Challenge) < 16 {
		return Errorf(CodeBadRequest, "challenge too short")
	}
	return nil
}

// Validate implements body validation.
func (r *Auth) Validate() error {
	if err := validName("device_id", r.DeviceID); err != nil {
		return err
	}
	if len(r.Signature) != 64 {
		return Errorf(CodeBadRequest, "signature must be 64 bytes")
	}
	return nil
}

// Validate implements body validation.
func (r *EnrollRequest) Validate() error {
	if err := validSecret("token", r.Token); err != nil {
		return err
	}
	if len(r.PublicKey) != 32 {
		return Errorf(CodeBadRequest, "public_key must be a 32-byte Ed25519 key")
	}
	return validName("hostname", r.Hostname)
}

// Validate implements body validation.
func (r *VerifyPasswordRequest) Validate() error {
	if err := validName("user", r.User); err != nil {
		return err
	}
	return validSecret("password", r.Password)
}

// Validate implements body validation.
func (r *ChangePasswordRequest) Validate() error {
	if err := validName("user", r.User); err != nil {
		return err
	}
	if err := validSecret("current", r.Current); err != nil {
		return err
	}
	if err := validSecret("new", r.New); err != nil {
		return err
	}
	if len(r.TOTP) > 16 {
		return Errorf(CodeBadRequest, "totp is too long")
	}
	return nil
}

// Validate implements body validation.
func (r *GetAccountRequest) Validate() error {
	if err := validName("user", r.User); err != nil {
		return err
	}
	if r.LocalName != "" {
		return validName("local_name", r.LocalName)
	}
	return nil
}

// Validate implements body validation.
func (r *AckSyncRequest) Validate() error {
	if err := validName("user", r.User); err != nil {
		return err
	}
	if r.PasswordVersion < 1 {
		return Errorf(CodeBadRequest, "password_version must be positive")
	}
	return nil
}

// Validate implements body validation.
func (r *AckPush) Validate() error {
	if r.Seq == 0 {
		return Errorf(CodeBadRequest, "seq must be positive")
	}
	return nil
}
