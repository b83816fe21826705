package store

import (
	"context"
	"time"
)

// ConsoleTx is what the web console and the user portal keep: the
// administrators who sign in to the console, the browser sessions of both,
// and the enrollment tokens an administrator lists and revokes.
type ConsoleTx interface {
	// Admin returns a console administrator, or ErrNotFound.
	Admin(ctx context.Context, name string) (Admin, error)
	// Admins lists every administrator, by name.
	Admins(ctx context.Context) ([]Admin, error)
	// CreateAdmin stores a new administrator; ErrExists when the name is
	// taken.
	CreateAdmin(ctx context.Context, a Admin) error
	// UpdateAdmin replaces an administrator's record; ErrNotFound when
	// there is none.
	UpdateAdmin(ctx context.Context, a Admin) error
	// DeleteAdmin removes an administrator and their sessions.
	DeleteAdmin(ctx context.Context, name string) error

	// Session returns a browser session by the hash of its cookie, or
	// ErrNotFound.
	Session(ctx context.Context, id []byte) (Session, error)
	// PutSession stores a session, replacing the one with its id.
	PutSession(ctx context.Context, s Session) error
	// DeleteSession removes one session (sign out); no error when it is
	// already gone.
	DeleteSession(ctx context.Context, id []byte) error
	// DeleteSessions removes every session of one subject (a password
	// reset, a deleted administrator), and says how many.
	DeleteSessions(ctx context.Context, kind, subject string) (int, error)
	// PruneSessions deletes the sessions last used before idle or created
	// before absolute, and says how many.
	PruneSessions(ctx context.Context, idle, absolute time.Time) (int, error)

	// EnrollTokens lists the enrollment tokens, newest first.
	EnrollTokens(ctx context.Context) ([]EnrollToken, error)
	// RevokeEnrollToken ends an unused token at once (it expires at at);
	// ErrNotFound when no token has that hash.
	RevokeEnrollToken(ctx context.Context, hash []byte, at time.Time) error
}

// Roles of console administrators.
const (
	RoleAdmin    = "admin"    // everything
	RoleHelpdesk = "helpdesk" // users: reset, unlock, MFA reset
	RoleAuditor  = "auditor"  // reads everything, changes nothing
)

// Admin is a named console administrator.
type Admin struct {
	Name string
	Role string
	// PasswordHash is an encoded argon2id hash, as for users.
	PasswordHash string
	// MustChange marks a one-time password (break-glass recovery, another
	// administrator's reset): the administrator sets their own at the next
	// sign-in.
	MustChange bool
	// TOTPSecret is sealed; nil means the administrator enrols at the next
	// sign-in (TOTP is mandatory).
	TOTPSecret   []byte
	TOTPLastStep int64
	// FailedCount counts wrong passwords and codes since
	// FailedWindowStart; LockedUntil is the lockout they caused.
	FailedCount       int
	FailedWindowStart time.Time
	LockedUntil       time.Time
	CreatedAt         time.Time
	PasswordChangedAt time.Time
	LastSignInAt      time.Time
}

// Session kinds.
const (
	SessionAdmin = "admin" // the console
	SessionUser  = "user"  // the portal
)

// Session is a signed-in browser. Only the hash of its cookie is stored.
type Session struct {
	ID      []byte
	Kind    string
	Subject string
	// Stage is what the browser must still do before the session is
	// complete ("" when it is): a second factor, an enrolment, a new
	// password (the Stage constants).
	Stage string
	// Pending is sealed state of the stage in progress (a TOTP secret
	// being enrolled); never in the clear.
	Pending    []byte
	Addr       string
	CreatedAt  time.Time
	LastSeenAt time.Time
}

// Session stages.
const (
	StageDone     = ""
	StageTOTP     = "totp"     // the password was right; a code is due
	StageEnrol    = "enrol"    // TOTP must be set up before anything else
	StagePassword = "password" // a one-time or temporary password must be replaced
)
