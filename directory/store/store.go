// Package store is the directory's persistence: users, devices, bindings,
// push outboxes, enrollment tokens, idempotency records, policy and audit.
//
// The directory talks to storage only through [Store] and [Tx], so the
// embedded SQLite implementation here can be joined by a PostgreSQL one for
// several replicas without touching the service. Every method of Tx runs in
// the transaction it belongs to; business rules (policy, lockout, TOTP) live
// in the directory, not here.
package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/protocol"
)

// Errors a Tx returns; callers test them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// PolicySettingPrefix starts the names of settings that are part of the
// password policy (PutSetting).
const PolicySettingPrefix = "policy."

// Store opens transactions. Update runs fn in a read-write transaction that
// commits when fn returns nil and rolls back otherwise; View runs a read-only
// one. fn may be called again when the backend asks for a retry, so it must
// not have side effects outside the transaction.
type Store interface {
	Update(ctx context.Context, fn func(Tx) error) error
	View(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// Tx is one transaction's view of the data.
type Tx interface {
	User(ctx context.Context, name string) (User, error)
	Users(ctx context.Context) ([]User, error)
	// UsersChangedBefore lists users whose password was set before t, for
	// the expiry scanner.
	UsersChangedBefore(ctx context.Context, t time.Time) ([]User, error)
	CreateUser(ctx context.Context, u User) error
	UpdateUser(ctx context.Context, u User) error
	DeleteUser(ctx context.Context, name string) error
	// PasswordHistory returns the user's previous password hashes, newest
	// first, at most n.
	PasswordHistory(ctx context.Context, user string, n int) ([]string, error)
	// AddPasswordHistory records a hash and keeps only the newest keep.
	AddPasswordHistory(ctx context.Context, user, hash string, at time.Time, keep int) error

	Device(ctx context.Context, id string) (Device, error)
	Devices(ctx context.Context) ([]Device, error)
	CreateDevice(ctx context.Context, d Device) error
	// TouchDevice records that the device connected at from addr.
	TouchDevice(ctx context.Context, id string, at time.Time, addr string) error
	// RevokeDevice marks a device revoked and deletes its bindings and
	// stored pushes; ErrNotFound for an unknown device. A Store shared
	// between replicas reports it to the others (Change.Revoked).
	RevokeDevice(ctx context.Context, id string, at time.Time) error
	// RevokedDevices lists the ids of revoked devices.
	RevokedDevices(ctx context.Context) ([]string, error)

	// Bind binds a user to a device under a local name, keeping the synced
	// version (and BoundBy) when the binding exists.
	Bind(ctx context.Context, b Binding) error
	// Unbind removes a binding; ErrNotFound when there is none.
	Unbind(ctx context.Context, deviceID, user string) error
	Binding(ctx context.Context, deviceID, user string) (Binding, error)
	UserBindings(ctx context.Context, user string) ([]Binding, error)
	// DeviceBindings lists a device's bindings, by user.
	DeviceBindings(ctx context.Context, deviceID string) ([]Binding, error)
	// Bindings lists every binding, by device then user.
	Bindings(ctx context.Context) ([]Binding, error)
	SetSyncedVersion(ctx context.Context, deviceID, user string, version int64, at time.Time) error
	SetExpiryWarned(ctx context.Context, deviceID, user string, at time.Time) error

	// AppendPush stores a push for a device under its next sequence number.
	AppendPush(ctx context.Context, deviceID, typ string, body []byte, at time.Time) (uint64, error)
	// Pushes lists a device's stored pushes with Seq > after, oldest first.
	Pushes(ctx context.Context, deviceID string, after uint64) ([]Push, error)
	// AckPushes deletes a device's pushes up to and including seq.
	AckPushes(ctx context.Context, deviceID string, seq uint64) error

	CreateEnrollToken(ctx context.Context, t EnrollToken) error
	EnrollToken(ctx context.Context, hash []byte) (EnrollToken, error)
	UseEnrollToken(ctx context.Context, hash []byte, deviceID string, at time.Time) error

	Idempotency(ctx context.Context, deviceID, key string) (IdempotencyRecord, error)
	// PutIdempotency stores a record once (ErrExists when the key has one)
	// and keeps only the device's newest keep records.
	PutIdempotency(ctx context.Context, r IdempotencyRecord, keep int) error
	PruneIdempotency(ctx context.Context, before time.Time) error

	// Policy returns the stored policy, or ErrNotFound before the first set.
	Policy(ctx context.Context) (protocol.Policy, error)
	SetPolicy(ctx context.Context, p protocol.Policy) error

	// Setting returns a named value (any name but "policy"), or
	// ErrNotFound.
	Setting(ctx context.Context, name string) ([]byte, error)
	// CreateSetting stores a named value once: ErrExists when the name is
	// already set (by this process or, with a shared database, another).
	CreateSetting(ctx context.Context, name string, value []byte) error
	// PutSetting stores a named value, replacing the one before; a name
	// that starts with PolicySettingPrefix is part of the policy (other
	// replicas reload theirs, as after SetPolicy).
	PutSetting(ctx context.Context, name string, value []byte) error

	// SourceAccount returns what the hub recorded of a user's account in
	// the source, or ErrNotFound; PutSourceAccount stores it.
	SourceAccount(ctx context.Context, user string) (SourceAccount, error)
	PutSourceAccount(ctx context.Context, a SourceAccount) error

	// UsersByEmail lists the users whose Email is email (normalized).
	UsersByEmail(ctx context.Context, email string) ([]User, error)

	// CreateResetToken stores a password reset token (its hash only).
	CreateResetToken(ctx context.Context, t ResetToken) error
	// ResetToken reads a token by hash; ErrNotFound when there is none.
	ResetToken(ctx context.Context, hash []byte) (ResetToken, error)
	// UseResetToken marks a token used; ErrNotFound when it is unknown or
	// already used, so two redemptions racing cannot both succeed.
	UseResetToken(ctx context.Context, hash []byte, at time.Time) error
	// ExpireResetTokens ends every unused, unexpired token of user at at
	// and says how many it ended.
	ExpireResetTokens(ctx context.Context, user string, at time.Time) (int, error)
	// PruneResetTokens deletes tokens that expired before before.
	PruneResetTokens(ctx context.Context, before time.Time) (int, error)

	// PutPlaceStates records what a device last reported of its user's
	// places, replacing the earlier report of each place given. The
	// binding must exist (ErrNotFound otherwise); unbinding or revoking
	// deletes the reports with it.
	PutPlaceStates(ctx context.Context, deviceID, user string, ps []PlaceState) error
	// PlaceStates lists what every device bound to user reported, by
	// device then place.
	PlaceStates(ctx context.Context, user string) ([]PlaceState, error)

	Audit(ctx context.Context, e AuditEvent) error
	AuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// PruneAudit deletes at most limit events older than before, oldest
	// first, and says how many it deleted.
	PruneAudit(ctx context.Context, before time.Time, limit int) (int, error)

	ConsoleTx
}

// Change is what other directory replicas committed to a shared database
// that this replica must act on. A Store shared between replicas reports
// changes through its Listen method; an embedded one has no other writer
// and so no changes to report.
type Change struct {
	// Devices have new pushes in their outboxes.
	Devices []string
	// AllDevices means any device may have new pushes (too many to list).
	AllDevices bool
	// Policy means the password policy was set.
	Policy bool
	// Revoked devices were revoked: close their connections.
	Revoked []string
	// Resync means changes may have been missed (the feed just connected
	// or reconnected): treat every device and the policy as changed, and
	// check every connected device for revocation.
	Resync bool
}

// User is a directory account.
type User struct {
	Name        string
	DisplayName string
	// PasswordHash is an encoded argon2id hash carrying its parameters.
	PasswordHash      string
	PasswordVersion   int64
	PasswordChangedAt time.Time
	MustChange        bool
	// FailedCount counts wrong passwords since FailedWindowStart.
	FailedCount       int
	FailedWindowStart time.Time
	// MFAFailedCount counts wrong second factors since
	// MFAFailedWindowStart. It is kept apart from FailedCount because a
	// right password must never clear a count of wrong codes.
	MFAFailedCount       int
	MFAFailedWindowStart time.Time
	// LinkFailedCount counts wrong passwords from devices not bound to the
	// user since LinkFailedWindowStart; at the lockout threshold
	// LinkLockedUntil stops such devices from proving the password (and so
	// from binding) without locking the user's own Macs.
	LinkFailedCount       int
	LinkFailedWindowStart time.Time
	LinkLockedUntil       time.Time
	// LockedUntil is zero when the account is not locked.
	LockedUntil time.Time
	// TOTPSecret is the sealed (encrypted) TOTP secret; nil without MFA.
	TOTPSecret []byte
	// TOTPLastStep is the last accepted time step; codes at or before it
	// are replays.
	TOTPLastStep int64
	CreatedAt    time.Time
	// Email is where password reset links go ("" for none), stored
	// lower-case (see NormalizeEmail). With a directory behind Lockstep
	// the source's address (AD: mail) wins; this is the built-in store's.
	Email string
	// MFAEnrollUntil, when set and TOTPSecret is nil, is the end of an
	// enrolment period an administrator gave with an MFA reset: until
	// then the user's password alone is enough and the user must enrol a
	// new authenticator; after it a code is required and none can be
	// given until an administrator resets MFA again.
	MFAEnrollUntil time.Time
	// TOTPPending is a sealed secret handed out to the user by an
	// enrolment that began at TOTPPendingAt and has not been confirmed
	// with a code yet; it never checks a code but the confirming one.
	TOTPPending   []byte
	TOTPPendingAt time.Time
}

// NormalizeEmail is how addresses are stored and compared: trimmed and
// lower-cased (the local part is case-sensitive in theory, in no mail
// system a directory sends to).
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Device is an enrolled Mac.
type Device struct {
	ID         string
	Hostname   string
	PublicKey  []byte
	CreatedAt  time.Time
	LastSeenAt time.Time
	// LastSeq is the highest push sequence allocated to the device.
	LastSeq uint64
	// Note is the note of the enrollment token the device used.
	Note string
	// LastAddr is the address the device last connected from.
	LastAddr string
	// RevokedAt is when an administrator revoked the device (zero: not
	// revoked); a revoked device's key is refused.
	RevokedAt time.Time
}

// Binding ties a directory user to a device under the device's local name.
type Binding struct {
	DeviceID       string
	User           string
	LocalName      string
	SyncedVersion  int64
	SyncedAt       time.Time
	BoundAt        time.Time
	ExpiryWarnedAt time.Time
	// BoundBy says how the binding was made (the BoundBy constants).
	BoundBy string
}

// How a user was bound to a device.
const (
	BoundByAdmin      = "admin"      // an administrator's assignment
	BoundByEnrollment = "enrollment" // named by the enrollment token
	BoundByPassword   = "password"   // the user's right password from the device
	BoundByLegacy     = "legacy"     // made before bindings needed proof
)

// Push is one stored push awaiting acknowledgement.
type Push struct {
	DeviceID  string
	Seq       uint64
	Type      string
	Body      []byte
	CreatedAt time.Time
}

// EnrollToken is a one-time enrollment token; only its hash is stored.
type EnrollToken struct {
	Hash      []byte
	Note      string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
	DeviceID  string
	// Users are bound to the device that enrolls with the token.
	Users []string
	// RevokedAt is when an administrator revoked the unused token (zero:
	// not revoked); it then expired at once.
	RevokedAt time.Time
}

// IdempotencyRecord remembers the first outcome of a mutating request.
type IdempotencyRecord struct {
	DeviceID string
	Key      string
	// Fingerprint is a keyed MAC of the request, never the request itself.
	Fingerprint []byte
	// Outcome is the encoded result envelope.
	Outcome   []byte
	CreatedAt time.Time
}

// ResetToken is a single-use password reset link; only a SHA-256 hash of
// the token is stored, so a copy of the database cannot be used to reset.
type ResetToken struct {
	Hash      []byte
	User      string
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is when it was redeemed (zero: not yet).
	UsedAt time.Time
}

// PlaceState is one place's state as a device last reported it for a user
// (the place and state names are protocol.Place*), never a secret.
type PlaceState struct {
	DeviceID string
	User     string
	Place    string
	State    string
	// At is when the device last established that state; ReportedAt when
	// the directory received it.
	At         time.Time
	ReportedAt time.Time
}

// AuditEvent is one security event. Detail never holds a secret.
type AuditEvent struct {
	ID     int64             `json:"id"`
	At     time.Time         `json:"at"`
	Event  string            `json:"event"`
	Actor  string            `json:"actor,omitempty"`
	User   string            `json:"user,omitempty"`
	Device string            `json:"device,omitempty"`
	Source string            `json:"source,omitempty"`
	Detail map[string]string `json:"detail,omitempty"`
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	User string
	// Actor matches the actor exactly ("admin:alice" for a console
	// administrator); Event the event's name.
	Actor string
	Event string
	// Since and Until bound the time (Until exclusive; zero: now).
	Since time.Time
	Until time.Time
	Limit int
}
