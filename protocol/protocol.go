// Package protocol defines the messages lockstepd and lockstep-directory
// exchange over the agent websocket, and how each one is validated.
//
// Both sides import this package and nothing else of the project, so the wire
// format lives in exactly one place. Every frame is one JSON [Envelope]; its
// Type says which body it carries. Requests carry an ID that the [TypeResult]
// reply echoes; mutating requests also carry an idempotency key so that a
// request retried after a reconnect returns the first outcome instead of
// being applied twice. Pushes from the directory carry a per-device sequence
// number so that an agent that was offline receives what it missed.
package protocol

import (
	"encoding/json"
	"time"
)

// Version is the protocol version spoken by this build. The server refuses a
// frame whose V differs, so a future incompatible change must bump it.
const Version = 1

// Size limits. They bound what a peer can make the other side allocate.
const (
	// MaxMessageSize is the websocket read limit on both sides, in bytes.
	MaxMessageSize = 16 << 10
	// MaxIDLen bounds request ids and idempotency keys.
	MaxIDLen = 64
	// MaxNameLen bounds user and device names.
	MaxNameLen = 128
)

// HTTP paths served by lockstep-directory.
const (
	// AgentPath is the websocket endpoint for enrolled devices.
	AgentPath = "/v1/agent"
	// EnrollPath is where a device trades an enrollment token for an id.
	EnrollPath = "/v1/enroll"
)

// CloseUnauthorized is the websocket close code the directory sends when a
// handshake fails: unknown device, bad or replayed signature, malformed auth.
// An agent seeing it should not retry with the same identity in a loop.
const CloseUnauthorized = 4401

// CloseRevoked is the websocket close code the directory sends when an
// administrator revoked the device: at once on its open connection, and on
// every later handshake signed with its key. The device must enroll again
// (with a new token) to come back.
const CloseRevoked = 4403

// Frame types. Requests flow agent to directory and are answered by a
// TypeResult frame with the same ID; pushes flow directory to agent and are
// acknowledged with TypeAckPush.
const (
	// Handshake.
	TypeHello   = "hello"   // directory → agent: fresh challenge
	TypeAuth    = "auth"    // agent → directory: signed challenge
	TypeWelcome = "welcome" // directory → agent: session accepted

	// Reply to any request.
	TypeResult = "result"

	// Requests.
	TypeVerifyPassword = "verify_password"
	TypeChangePassword = "change_password" // mutating
	TypeGetPolicy      = "get_policy"
	TypeGetAccount     = "get_account"
	TypeAckSync        = "ack_sync" // mutating
	TypeAckPush        = "ack_push"

	// Pushes.
	TypePasswordReset     = "password_reset"
	TypePolicyChanged     = "policy_changed"
	TypeAccountLocked     = "account_locked"
	TypeAccountUnlocked   = "account_unlocked"
	TypeExpiryApproaching = "expiry_approaching"
)

// Envelope is one websocket frame.
type Envelope struct {
	// V is the protocol version; always Version.
	V int `json:"v"`
	// Type names the body's shape.
	Type string `json:"type"`
	// ID identifies a request; the result echoes it.
	ID string `json:"id,omitempty"`
	// IdempotencyKey is required on mutating requests. A retried request
	// with the same key returns the first outcome.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Seq numbers pushes per device, from 1, without gaps.
	Seq uint64 `json:"seq,omitempty"`
	// Body holds the type-specific payload. A request's may hold a secret
	// (base64): whoever decoded it clears it when done.
	Body json.RawMessage `json:"body,omitempty"`
	// Error is set on a failed result.
	Error *Error `json:"error,omitempty"`
}

// Hello opens every agent connection: the agent must sign Challenge.
type Hello struct {
	Challenge  []byte    `json:"challenge"`
	ServerTime time.Time `json:"server_time"`
}

// Auth answers Hello with the device's signature over AuthMessage.
type Auth struct {
	DeviceID  string `json:"device_id"`
	Signature []byte `json:"signature"`
	// LastSeq is the highest push sequence the agent has processed; the
	// directory re-sends every push after it.
	LastSeq      uint64 `json:"last_seq"`
	AgentVersion string `json:"agent_version,omitempty"`
}

// Welcome accepts the session.
type Welcome struct {
	DeviceID string `json:"device_id"`
	Policy   Policy `json:"policy"`
	// PingSeconds is how often the directory pings; the agent sets its read
	// deadline from it.
	PingSeconds int `json:"ping_seconds"`
	// LockoutThreshold is how many failed password checks lock an account;
	// agents keep their own failures well below it.
	LockoutThreshold int `json:"lockout_threshold,omitempty"`
}

// authDomain separates Lockstep signatures from any other use of the key.
const authDomain = "lockstep-agent-auth-v1\x00"

// AuthMessage is the exact byte string a device signs to prove it holds its
// key: a domain tag, the device id and the fresh challenge. Binding the id
// stops a signature made for one device being presented for another.
func AuthMessage(deviceID string, challenge []byte) []byte {
	m := make([]byte, 0, len(authDomain)+len(deviceID)+1+len(challenge))
	m = append(m, authDomain...)
	m = append(m, deviceID...)
	m = append(m, 0)
	return append(m, challenge...)
}

// EnrollRequest trades a one-time enrollment token for a device id. It is
// posted as JSON to EnrollPath.
type EnrollRequest struct {
	Token     Secret `json:"token"`
	PublicKey []byte `json:"public_key"`
	Hostname  string `json:"hostname"`
}

// EnrollResponse names the new device.
type EnrollResponse struct {
	DeviceID string `json:"device_id"`
}

// VerifyPasswordRequest asks whether Password is the user's directory
// password. Failures count towards lockout. The right password binds the
// user to a device not yet bound to it; until then every failure, for a
// real user or an unknown one, is CodeWrongPassword.
type VerifyPasswordRequest struct {
	User     string `json:"user"`
	Password Secret `json:"password"`
}

// ChangePasswordRequest changes a password with the current one. TOTP is
// required when the account has MFA.
type ChangePasswordRequest struct {
	User    string `json:"user"`
	Current Secret `json:"current"`
	New     Secret `json:"new"`
	TOTP    string `json:"totp,omitempty"`
}

// GetAccountRequest reads the state of an account bound to the calling
// device (CodeNotBound otherwise) and records LocalName, the user's short
// name on the Mac.
type GetAccountRequest struct {
	User      string `json:"user"`
	LocalName string `json:"local_name,omitempty"`
}

// AckSyncRequest tells the directory that the device now holds
// PasswordVersion of the user's password in every place.
type AckSyncRequest struct {
	User            string `json:"user"`
	PasswordVersion int64  `json:"password_version"`
}

// AckPush acknowledges every push up to and including Seq.
type AckPush struct {
	Seq uint64 `json:"seq"`
}

// AccountState is the directory's view of a user, returned by
// verify_password, change_password and get_account.
type AccountState struct {
	User        string `json:"user"`
	DisplayName string `json:"display_name,omitempty"`
	// PasswordVersion increases by one on every change or reset.
	PasswordVersion   int64      `json:"password_version"`
	PasswordChangedAt time.Time  `json:"password_changed_at"`
	ExpiresAt         *time.Time `json:"expires_at,omitempty"`
	// MustChange marks a temporary password set by an administrator.
	MustChange  bool       `json:"must_change"`
	MFA         bool       `json:"mfa"`
	Locked      bool       `json:"locked"`
	LockedUntil *time.Time `json:"locked_until,omitempty"`
	// MFAEnrollBy, when set, says the account's MFA was reset with an
	// enrolment period ending then and no authenticator is enrolled yet:
	// until then no code is asked for and the user must enrol (MFA is
	// true); after it codes are required and cannot be given until an
	// administrator resets MFA again (CodeMFAEnrollmentExpired).
	MFAEnrollBy *time.Time `json:"mfa_enroll_by,omitempty"`
}

// MFACodeNeeded says whether a change must carry a TOTP code now.
func (a AccountState) MFACodeNeeded() bool { return a.MFA && a.MFAEnrollBy == nil }

// PasswordReset is pushed when a password was set by someone other than the
// device: an administrator reset (temporary or not) or a change elsewhere.
type PasswordReset struct {
	User            string    `json:"user"`
	Temporary       bool      `json:"temporary"`
	PasswordVersion int64     `json:"password_version"`
	At              time.Time `json:"at"`
}

// PolicyChanged is pushed to every device when the policy changes.
type PolicyChanged struct {
	Policy Policy `json:"policy"`
}

// AccountLocked is pushed when a user is locked out.
type AccountLocked struct {
	User  string    `json:"user"`
	Until time.Time `json:"until"`
}

// AccountUnlocked is pushed when a lock ends early (an administrator unlock).
type AccountUnlocked struct {
	User string `json:"user"`
}

// ExpiryApproaching is pushed when a password enters its warning window.
type ExpiryApproaching struct {
	User      string    `json:"user"`
	ExpiresAt time.Time `json:"expires_at"`
	DaysLeft  int       `json:"days_left"`
}
