package web

import (
	"context"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// What the pages ask of the directory. The directory (package directory)
// implements these over its store, its source of passwords and its admin
// API's own handlers, so that the console runs the very checks the
// lockstep-directory commands run; the pages only decide who may ask.
// Refusals come back as *protocol.Error, whose message the page shows.

// Actor is who acts, for the audit log: a console administrator or a
// portal user, and the browser's address.
type Actor struct {
	Admin string
	User  string
	Addr  string
}

// Principal is who signed in with a right password, and what they must
// still do.
type Principal struct {
	Name string
	// Role is a console administrator's (store.RoleAdmin...).
	Role string
	// TOTP: a second factor is due. Enrol: TOTP must be set up first (an
	// administrator without one, a user in an enrolment period).
	TOTP, Enrol bool
	// MustChange: a one-time or temporary password that must be replaced.
	MustChange bool
	// EnrolUntil ends a user's enrolment period.
	EnrolUntil *time.Time
}

// Enrolment is a TOTP secret being set up: shown as a QR code and as text
// until the person confirms it with a code. Sealed is what the session
// keeps of it.
type Enrolment struct {
	URI    protocol.Secret
	Secret protocol.Secret
	Sealed []byte
}

// Source says what the directory behind Lockstep owns.
type Source struct {
	// Kind is "builtin" or "ad"; Name names it for people.
	Kind, Name    string
	ManagesUsers  bool
	ManagesPolicy bool
}

// Auth signs people in, for the console (kind store.SessionAdmin) and the
// portal (store.SessionUser), and keeps their sessions. Every check is
// rate-limited and counts towards lockout with the agents' own checks.
type Auth interface {
	SignIn(ctx context.Context, kind, addr, name string, password []byte) (Principal, error)
	CheckCode(ctx context.Context, kind, addr, name, code string) error
	// BeginEnrol makes a new TOTP secret; OpenEnrol shows one again from
	// the session; FinishEnrol stores it once code matches it.
	BeginEnrol(ctx context.Context, kind, name string) (Enrolment, error)
	OpenEnrol(ctx context.Context, kind, name string, sealed []byte) (Enrolment, error)
	FinishEnrol(ctx context.Context, kind string, a Actor, name string, sealed []byte, code string) error
	// Principal reads who a session belongs to now (its role may have
	// changed, the account may be gone).
	Principal(ctx context.Context, kind, name string) (Principal, error)

	Session(ctx context.Context, id []byte) (store.Session, error)
	PutSession(ctx context.Context, s store.Session) error
	DeleteSession(ctx context.Context, id []byte) error
	// Refused records a request the pages refused (a forged form, a role
	// that may not act, a dead session), rate-limited like every noise.
	Refused(a Actor, event, reason string, detail map[string]string)
	// Audit records what happened in a session (signed in, signed out).
	Audit(ctx context.Context, a Actor, event, user string, detail map[string]string)
}

// Console is the administrators' view of the directory.
type Console interface {
	Source() Source
	Users(ctx context.Context) ([]admin.User, error)
	User(ctx context.Context, name string) (admin.User, error)
	ResetPassword(ctx context.Context, a Actor, name string, req admin.ResetRequest) (admin.UserResponse, error)
	Unlock(ctx context.Context, a Actor, name string) (admin.User, error)
	SetMFA(ctx context.Context, a Actor, name string, req admin.MFARequest) (admin.UserResponse, error)
	DeleteUser(ctx context.Context, a Actor, name string) error
	Devices(ctx context.Context) ([]admin.Device, error)
	RevokeDevice(ctx context.Context, a Actor, id string) (admin.Device, error)
	EnrollTokens(ctx context.Context) ([]admin.EnrollTokenInfo, error)
	CreateEnrollToken(ctx context.Context, a Actor, req admin.EnrollTokenRequest) (admin.EnrollToken, error)
	RevokeEnrollToken(ctx context.Context, a Actor, id string) error
	Policy(ctx context.Context) (protocol.Policy, error)
	SetPolicy(ctx context.Context, a Actor, p protocol.Policy) (protocol.Policy, error)
	Audit(ctx context.Context, q admin.AuditQuery) ([]admin.AuditEvent, error)

	Admins(ctx context.Context) ([]admin.Admin, error)
	// ResetAdmin gives another administrator a one-time password (shown
	// once) and clears their TOTP, so they enrol again.
	ResetAdmin(ctx context.Context, a Actor, name string) (protocol.Secret, error)
	DeleteAdmin(ctx context.Context, a Actor, name string) error
	// SignInAdmins counts the administrators with the admin role who can
	// sign in: the console warns below two.
	SignInAdmins(ctx context.Context) (int, error)
	// SetAdminPassword replaces a signed-in administrator's one-time
	// password with their own.
	SetAdminPassword(ctx context.Context, a Actor, password []byte) error
}

// Portal is a user's view of their own account.
type Portal interface {
	// Account is the user with their Macs.
	Account(ctx context.Context, name string) (admin.User, error)
	// Policy is the policy a new password of the user must meet.
	Policy(ctx context.Context, name string) (protocol.Policy, error)
	// ChangePassword changes the password as the user, through the source
	// (its policy and history apply); the user's Macs are told at once.
	ChangePassword(ctx context.Context, a Actor, current, next []byte, code string) error

	// SendResetLink mails a single-use reset link to the address of the
	// user who names (a user name or an e-mail address); link makes the
	// URL from the token. Whatever it answers, the page says the same.
	SendResetLink(ctx context.Context, a Actor, who string, link func(token string) string) error
	// CheckResetLink says whom a token resets, without spending it.
	CheckResetLink(ctx context.Context, a Actor, token []byte) (ResetInfo, error)
	// RedeemResetLink sets a new password with a token (and the TOTP code
	// for a user with MFA), once.
	RedeemResetLink(ctx context.Context, a Actor, token, next []byte, code string) error
	// BaseURL is the portal's public address, for the links in mail: never
	// taken from a request's Host header, which anyone can set.
	BaseURL() string
}

// ResetInfo is what a reset link resets.
type ResetInfo struct {
	User      string
	ExpiresAt time.Time
	NeedsCode bool
}
