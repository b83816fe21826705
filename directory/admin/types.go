// Package admin is the client of lockstep-directory's admin API: the HTTPS
// API that the `lockstep-directory` admin commands, scripts and other
// programs' tests use to manage users, devices and policy on a RUNNING
// directory, so that a reset reaches connected agents at once.
//
// Every call carries the admin token as a bearer token. Secrets (passwords,
// TOTP secrets, enrollment tokens) travel in request and response bodies
// as protocol.Secret, never in URLs, and never print.
package admin

import (
	"time"

	"github.com/lockstep-dev/lockstep/protocol"
)

// API paths, under the directory's base URL.
const (
	PathUsers        = "/v1/admin/users"
	PathEnrollTokens = "/v1/admin/enroll-tokens"
	PathPolicy       = "/v1/admin/policy"
	PathAudit        = "/v1/admin/audit"
	PathDevices      = "/v1/admin/devices"
	PathStats        = "/v1/admin/stats"
)

// Error codes the admin API adds to protocol's.
const (
	CodeExists   = "exists"    // the user already exists
	CodeNotFound = "not_found" // no such object (users: protocol.CodeUnknownUser): a device, an assignment
	// CodeNotPermitted: the directory behind Lockstep (Active Directory)
	// refused an action its bind account has no right to take; the message
	// names the right.
	CodeNotPermitted = "not_permitted"
	// CodeResetLinkInvalid: a password reset link that was used, expired
	// or never made (one answer for all three).
	CodeResetLinkInvalid = "reset_link_invalid"
)

// MFA actions for SetMFA.
const (
	MFAEnable  = "enable"  // give the user a TOTP secret (refused if already on)
	MFADisable = "disable" // remove it
	MFAReset   = "reset"   // replace it with a new one
)

// Info is admin.json in the directory's data directory: where the admin
// API is and how to trust and authenticate to it.
type Info struct {
	URL string `json:"url"`
	// CAFile is the PEM file of the CA that signed the server certificate;
	// empty means the system roots.
	CAFile string `json:"ca_file,omitempty"`
	// TokenFile holds the admin token (mode 0600).
	TokenFile string `json:"token_file"`
}

// User is the admin view of an account.
type User struct {
	Name              string     `json:"name"`
	DisplayName       string     `json:"display_name,omitempty"`
	PasswordVersion   int64      `json:"password_version"`
	PasswordChangedAt time.Time  `json:"password_changed_at"`
	ExpiresAt         *time.Time `json:"expires_at,omitempty"`
	MustChange        bool       `json:"must_change"`
	MFA               bool       `json:"mfa"`
	Locked            bool       `json:"locked"`
	LockedUntil       *time.Time `json:"locked_until,omitempty"`
	FailedAttempts    int        `json:"failed_attempts"`
	CreatedAt         time.Time  `json:"created_at"`
	// Devices lists the devices the user is bound to.
	Devices []Binding `json:"devices"`
	// Source names where the password lives ("builtin", "ad"); Where is
	// the account's place there (AD: its distinguished name); Disabled is
	// an account the source will not let sign in; Policy names a
	// fine-grained password policy that applies to it.
	Source   string `json:"source,omitempty"`
	Where    string `json:"where,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
	Policy   string `json:"policy,omitempty"`
	// Email is where password reset links go (AD: the account's mail).
	Email string `json:"email,omitempty"`
	// MFAEnrollBy is set while the user's MFA was reset with an enrolment
	// period and no authenticator is enrolled yet: the period's end
	// (MFA is then true; after it codes are required and none can be
	// given until MFA is reset again).
	MFAEnrollBy *time.Time `json:"mfa_enroll_by,omitempty"`
	// Expired is a password past its maximum age; GraceLogins how many
	// more logins it allows (an LDAP directory's pwdGraceAuthNLimit).
	Expired     bool `json:"expired,omitempty"`
	GraceLogins int  `json:"grace_logins,omitempty"`
}

// Binding is one device a user is bound to, with what it has synced.
type Binding struct {
	DeviceID  string `json:"device_id"`
	Hostname  string `json:"hostname"`
	LocalName string `json:"local_name"`
	// SyncedVersion is the password version the device last acknowledged
	// as held everywhere on the Mac (0: never).
	SyncedVersion int64      `json:"synced_version"`
	SyncedAt      *time.Time `json:"synced_at,omitempty"`
	LastSeenAt    *time.Time `json:"last_seen_at,omitempty"`
	Connected     bool       `json:"connected"`
	// Places are the device's last report of each place where the
	// password lives (none before its first report).
	Places []Place `json:"places,omitempty"`
}

// Place is one place's state as a device last reported it: Place is
// protocol.PlaceDirectory, PlaceLocal (the Mac account), PlaceFileVault or
// PlaceKeychain; State protocol.PlaceOK, PlaceBehind, PlaceUnknown or
// PlaceNotApplicable; At when the Mac established it, ReportedAt when the
// directory heard of it.
type Place struct {
	Place      string    `json:"place"`
	State      string    `json:"state"`
	At         time.Time `json:"at"`
	ReportedAt time.Time `json:"reported_at"`
}

// AddUserRequest creates a user with an initial password, which must meet
// the policy.
type AddUserRequest struct {
	Name        string          `json:"name"`
	DisplayName string          `json:"display_name,omitempty"`
	Password    protocol.Secret `json:"password"`
	// MFA gives the user a TOTP secret, returned once in the response.
	MFA bool `json:"mfa,omitempty"`
	// Temporary makes the initial password one the user must change.
	Temporary bool `json:"temporary,omitempty"`
	// Email is where the user's password reset links go.
	Email string `json:"email,omitempty"`
}

// EditUserRequest changes what is given of a user of the built-in store
// (nil: unchanged; "" clears).
type EditUserRequest struct {
	DisplayName *string `json:"display_name,omitempty"`
	Email       *string `json:"email,omitempty"`
}

// UserResponse is the result of the user commands; MFA is set only when a
// TOTP secret was just created, and Password only when the directory
// generated one.
type UserResponse struct {
	User     User            `json:"user"`
	MFA      *TOTPEnrollment `json:"mfa,omitempty"`
	Password protocol.Secret `json:"password,omitempty"`
}

// TOTPEnrollment is a new TOTP secret, shown once: the otpauth:// URI for
// authenticator apps and the bare base32 secret.
type TOTPEnrollment struct {
	URI    protocol.Secret `json:"uri"`
	Secret protocol.Secret `json:"secret"`
}

// ResetRequest sets a user's password as an administrator. With an empty
// Password the directory generates one that meets the policy (returned
// once). The policy applies to a given one, history included.
type ResetRequest struct {
	Password  protocol.Secret `json:"password,omitempty"`
	Temporary bool            `json:"temporary"`
}

// MFARequest enables, disables or resets a user's TOTP. With EnrollDays
// (protocol.MinEnrollDays to MaxEnrollDays; enable and reset only) no
// secret is made here: the user has that many days in which the password
// alone is enough and must enrol an authenticator themselves (from the Mac
// or the portal); the user's Macs are told at once.
type MFARequest struct {
	Action     string `json:"action"`
	EnrollDays int    `json:"enroll_days,omitempty"`
}

// EnrollTokenRequest creates a one-time enrollment token.
type EnrollTokenRequest struct {
	// TTL is the token's lifetime; zero means the server's default.
	TTL  time.Duration `json:"ttl,omitempty"`
	Note string        `json:"note,omitempty"`
	// Users are bound to the device that enrolls with the token (each
	// must exist): the device can read their state and receives their
	// pushes at once. Other users it must link by proving their password.
	Users []string `json:"users,omitempty"`
}

// Device is an enrolled Mac.
type Device struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	// Note is the note of the enrollment token it used.
	Note       string       `json:"note,omitempty"`
	Users      []DeviceUser `json:"users"`
	EnrolledAt time.Time    `json:"enrolled_at"`
	LastSeenAt *time.Time   `json:"last_seen_at,omitempty"`
	LastAddr   string       `json:"last_addr,omitempty"`
	RevokedAt  *time.Time   `json:"revoked_at,omitempty"`
	// Connected says whether it is connected to the replica that answered.
	Connected bool `json:"connected"`
}

// DeviceUser is a user bound to a device, and how: BoundBy is "admin"
// (assigned), "enrollment" (named by the token), "password" (the user
// proved the password from the device) or "legacy" (bound before binding
// needed proof).
type DeviceUser struct {
	User      string    `json:"user"`
	LocalName string    `json:"local_name"`
	BoundBy   string    `json:"bound_by"`
	BoundAt   time.Time `json:"bound_at"`
}

// EnrollToken is a new enrollment token, shown once.
type EnrollToken struct {
	Token     protocol.Secret `json:"token"`
	ExpiresAt time.Time       `json:"expires_at"`
}

// AuditQuery filters the audit log; zero fields match everything.
type AuditQuery struct {
	User string
	// Actor is who acted exactly ("admin:alice" for a console
	// administrator, "admin" for the admin token); Event an event name.
	Actor string
	Event string
	Since time.Time
	// Until is exclusive; zero means now.
	Until time.Time
	Limit int
}

// AuditEvent is one audit log entry.
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

// Stats is a snapshot of the running server, for load generators and
// monitoring.
type Stats struct {
	// Connections counts authenticated agent websockets.
	Connections int `json:"connections"`
	// Pending counts handshakes and requests in progress.
	Pending    int    `json:"pending"`
	Goroutines int    `json:"goroutines"`
	HeapBytes  uint64 `json:"heap_bytes"`
	StackBytes uint64 `json:"stack_bytes"`
	// SysBytes is the memory obtained from the OS.
	SysBytes uint64 `json:"sys_bytes"`
}

// ErrorBody is the JSON body of every failed admin call.
type ErrorBody struct {
	Error *protocol.Error `json:"error"`
}
