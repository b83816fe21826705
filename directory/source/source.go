// Package source is the contract between lockstep-directory's hub and the
// directory that holds the passwords: its own store, Active Directory
// (package ad) or OpenLDAP (package ldap).
//
// The hub (the agent websocket, the admin API, the CLI and the web console
// through them) knows only this interface. It keeps what is Lockstep's own
// whatever the source: devices and their bindings, pushes, TOTP, the
// password version Macs sync to, the audit log. A source keeps what is the
// directory's: the password, its policy and history, lockout, expiry and
// must-change state, and it reports changes made anywhere (Watch), so that
// the hub can push them to the Macs at once.
//
// A source never decides what a Mac is told: it reports facts (an Account,
// a typed error), and the hub turns them into answers and pushes. It
// imports nothing of the project but protocol.
package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lockstep-dev/lockstep/protocol"
)

// Source is one directory of users and passwords.
type Source interface {
	// Info describes the source; it does not change while it runs.
	Info() Info

	// Verify checks a user's password. A right password that must be
	// changed (temporary, or expired) is not an error: Account.MustChange
	// says so. An unknown user costs the same work as a wrong password
	// and returns ErrUnknownUser. Failures count towards the source's
	// lockout unless a.Stranger and the source can tell them apart.
	Verify(ctx context.Context, user string, password []byte, a Attempt) (Account, error)

	// Change sets a new password with the current one, as the user, so
	// that the source's own policy and history apply. h.Verified runs
	// once the current password is proved and before anything changes
	// (an error from it stops the change); h.Commit runs once the source
	// holds the new password, before Change returns (see Hooks).
	Change(ctx context.Context, user string, current, next []byte, a Attempt, h Hooks) (Account, error)

	// Reset sets a password as an administrator; temporary makes the
	// user change it at the next use. h.Commit runs as for Change.
	Reset(ctx context.Context, user string, password []byte, temporary bool, h Hooks) (Account, error)

	// Unlock ends a lockout. h.Commit runs as for Change.
	Unlock(ctx context.Context, user string, h Hooks) (Account, error)

	// Account reads one user's state; ErrUnknownUser when the user is not
	// in scope.
	Account(ctx context.Context, user string) (Account, error)

	// Accounts lists every user in scope, by name.
	Accounts(ctx context.Context) ([]Account, error)

	// Policy is the default password policy (a user's own, when the
	// source has per-user policies, is Account.Policy).
	Policy(ctx context.Context) (Policy, error)

	// Watch calls fn with every change the source learns of that was not
	// made through this Source value's own calls (an administrator's reset
	// in another tool, a change elsewhere, a lockout), until ctx ends. It
	// may report a change twice or one of its own: the hub compares with
	// what it recorded. It returns ctx's error; a source with no other
	// writer (the built-in store) just waits.
	//
	// from is the last Event.Checkpoint the hub stored (nil at first): a
	// source that can resume (OpenLDAP's sync cookie) reports only what
	// changed since; one that cannot reports every user at start.
	Watch(ctx context.Context, from []byte, fn func(Event)) error
}

// Info describes a source.
type Info struct {
	// Kind names it in logs and answers: "builtin", "ad", "ldap".
	Kind string
	// Name names it for people: "Lockstep's own store", "Active
	// Directory", "OpenLDAP".
	Name string
	// UserAttr is the attribute users are found by (AD: sAMAccountName;
	// OpenLDAP: uid by default), for messages to administrators.
	UserAttr string
	// ManagesUsers is false when users are created and deleted in the
	// source's own tools (Active Directory), not through Lockstep.
	ManagesUsers bool
	// External is true when the source's writes are not part of the hub's
	// transactions (a remote directory): the hub then records an intent
	// before a change, so that it can recognise its own change however the
	// source's report and its own commit interleave.
	External bool
	// ManagesPolicy is false when the policy is the source's own (AD's
	// domain and fine-grained policies) and cannot be set in Lockstep.
	ManagesPolicy bool
	// ExtraRules is true when the policy is the source's but Lockstep's
	// own rules may be added on top (ppolicy has no character classes):
	// the hub keeps them, enforces them before a password is sent, and
	// marks them as Lockstep's.
	ExtraRules bool
}

// Attempt says who is trying a password.
type Attempt struct {
	// Stranger is a device not bound to the user: the built-in store
	// counts its failures apart, so that it cannot lock the user's own
	// Macs. A directory that counts every failed bind itself cannot.
	Stranger bool
}

// Hooks are the hub's steps inside a source's change.
type Hooks struct {
	// Verified runs after the current password is proved (Change only).
	Verified func(ctx context.Context, a Account) error
	// Commit records the new state in the hub. A source that writes in
	// the hub's transactions (the built-in store) runs it in the same
	// transaction, so both commit or neither; a remote one runs it after
	// its own write succeeded, and an error from it leaves the password
	// set in the source (the hub then sees it as a change it must report).
	Commit func(ctx context.Context, a Account) error
}

// Committed runs Commit, if any, for a change a remote source holds, and
// returns a with Commit's error.
func (h Hooks) Committed(ctx context.Context, a Account) (Account, error) {
	if h.Commit != nil {
		if err := h.Commit(ctx, a); err != nil {
			return a, err
		}
	}
	return a, nil
}

// Account is what a source knows of one user.
type Account struct {
	// User is the name Macs map to (AD: sAMAccountName).
	User        string
	DisplayName string
	// Stamp changes whenever the password is set, by anyone (AD: the
	// version of unicodePwd's replication metadata with pwdLastSet); the
	// hub compares it with the one it recorded to tell a change made
	// elsewhere from one it knows.
	Stamp string
	// ChangedAt is when the password was set; zero when the source does
	// not say (AD while a change is required).
	ChangedAt time.Time
	// ExpiresAt is when the password expires; nil for never.
	ExpiresAt *time.Time
	// MustChange marks a password the user must change: temporary (an
	// administrator's reset) or expired.
	MustChange bool
	// Expired tells an expired password from a temporary one.
	Expired bool
	// GraceLogins is how many more logins an expired password allows
	// (ppolicy's graceAuthNsRemaining); 0 when none.
	GraceLogins int
	// Locked is a lockout in force; LockedUntil its end, nil until an
	// administrator unlocks it.
	Locked      bool
	LockedUntil *time.Time
	// Disabled is an account that cannot sign in (disabled or past its
	// account expiry).
	Disabled bool
	// Policy is the user's own policy when it differs from the default
	// (AD: a fine-grained password policy); nil otherwise.
	Policy *Policy
	// Where says where the account lives, for administrators (AD: its
	// distinguished name).
	Where string
	// Email is where the user's password reset links go ("" for none;
	// AD: mail).
	Email string
}

// EmailFinder is a source that finds users by e-mail address itself (a
// directory with its own index of addresses); the hub looks addresses up
// in its own records for the rest.
type EmailFinder interface {
	// AccountsByEmail lists the users in scope with that address (case
	// insensitive), by name.
	AccountsByEmail(ctx context.Context, email string) ([]Account, error)
}

// Policy is a source's password policy.
type Policy struct {
	// Rules are the rules a new password must meet, in the form Macs
	// check them live.
	Rules protocol.Policy
	// LockoutThreshold is how many failures lock an account (0: never);
	// agents keep their own failures well below it.
	LockoutThreshold int
	// LockoutDuration is how long a lockout lasts; 0 means until an
	// administrator unlocks it.
	LockoutDuration time.Duration
	// Name names a fine-grained policy ("" for the default).
	Name string
}

// Event is a change the source learned of.
type Event struct {
	// User's account may have changed (password, lock, must-change):
	// Account is its state now. Empty for a policy event.
	User    string
	Account Account
	// Policy means the default or a fine-grained policy changed.
	Policy bool
	// Checkpoint, when set, is where the source can resume watching: the
	// hub stores it once it has handled every event before it, and gives
	// it back to the next Watch (after a restart).
	Checkpoint []byte
}

// Errors a source returns; callers test them with errors.Is or errors.As.
var (
	// ErrUnknownUser: no such user in the source's scope.
	ErrUnknownUser = errors.New("no such user")
	// ErrWrongPassword: the password (for Change, the current one) is not
	// the user's.
	ErrWrongPassword = errors.New("wrong password")
	// ErrDisabled: the account is disabled or expired in the source.
	ErrDisabled = errors.New("account disabled")
	// ErrUnsupported: the source does not do this through Lockstep (for
	// example creating users in Active Directory).
	ErrUnsupported = errors.New("not supported by this source")
	// ErrUnavailable: the source could not be reached or failed; the
	// wrapping error says how.
	ErrUnavailable = errors.New("directory unavailable")
)

// LockedError is a refusal because the account is locked; Account is its
// state (Locked, LockedUntil).
type LockedError struct{ Account Account }

func (e *LockedError) Error() string {
	if e.Account.LockedUntil != nil {
		return "account locked until " + e.Account.LockedUntil.UTC().Format(time.RFC3339)
	}
	return "account locked"
}

// PolicyError is a new password the source refused; Violations say which
// rules it failed (codes from protocol, with their sentences).
type PolicyError struct {
	Violations []protocol.Violation
	// Detail is the source's own words, for the log.
	Detail string
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("password refused by the directory's policy (%d rules unmet)", len(e.Violations))
}

// NotPermittedError is an action the source's credentials may not take
// (AD: the bind account lacks the right); Need names the right.
type NotPermittedError struct {
	Action string // "reset", "unlock"
	Need   string // what to grant, in the source's terms
}

func (e *NotPermittedError) Error() string {
	return fmt.Sprintf("the directory's account may not %s: %s", e.Action, e.Need)
}
