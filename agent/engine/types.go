package engine

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/protocol"
)

// The engine's own vocabulary. The local API serves the same words (the
// agent/api package maps one to the other, and its test keeps the two in
// step); the journal stores them in its own format. None of them is a
// sentence: the app and the CLI say each in the user's language.

// Operation kinds.
const (
	OpChange     = "change"
	OpSync       = "sync"
	OpSyncForgot = "sync_forgot_previous"
	// OpKeychainRecover puts a kept keychain back (keychains.go).
	OpKeychainRecover = "keychain_recover"
)

// Operation states.
const (
	OpRunning    = "running"
	OpDone       = "done"
	OpFailed     = "failed"      // nothing changed; safe to retry
	OpSyncNeeded = "sync_needed" // stopped part-way; a sync resolves it
	// OpIncomplete: a keychain recovery stopped part-way; running it again
	// finishes it (the account's password is not involved).
	OpIncomplete = "incomplete"
)

// Step names, in the order a change runs them.
const (
	StepValidate  = "validate"
	StepVerify    = "verify_current"
	StepDirectory = "directory"
	StepLocal     = "local_account"
	StepKeychain  = "keychain"
	StepFileVault = "filevault"
	StepPreboot   = "preboot"
	StepAck       = "acknowledge"
	// A keychain recovery's steps, after StepVerify.
	StepKeptRekey  = "kept_keychain"
	StepSearchList = "search_list"
)

// Step states.
const (
	StepPending = "pending"
	StepRunning = "running"
	StepDone    = "done"
	StepSkipped = "skipped"
	StepFailed  = "failed"
)

// Account states; exactly one applies, the first in this list that does.
const (
	StateBusy       = "busy"
	StateNotLinked  = "not_linked"
	StateLocked     = "locked"
	StateSyncNeeded = "sync_needed"
	StateTemporary  = "temporary"
	StateMFAEnroll  = "mfa_enroll" // an authenticator must be set up (Account.MFAEnrollBy)
	StateExpiring   = "expiring"
	StateInSync     = "in_sync"
	StateUnknown    = "unknown"
)

// Places where the password lives, and their states.
const (
	PlaceDirectory = "directory"
	PlaceLocal     = "local"
	PlaceFileVault = "filevault"
	PlaceKeychain  = "keychain"

	// What the doctor checks besides the places.
	CheckOperation      = "operation"
	CheckServiceAccount = "service_account"

	PlaceOK            = "ok"
	PlaceBehind        = "behind"
	PlaceUnknown       = "unknown"
	PlaceNotApplicable = "not_applicable"
)

// Notice kinds: what the user is told as a notification.
const (
	NoticeReset    = "reset"    // params: temporary ("true" or absent)
	NoticeSynced   = "synced"   // a sync or change finished
	NoticeExpiry   = "expiry"   // params: days
	NoticeLocked   = "locked"   // params: until (RFC 3339)
	NoticeUnlocked = "unlocked" // the directory unlocked the account
	// NoticeMFAEnroll: set up an authenticator; params: until (RFC 3339).
	NoticeMFAEnroll = "mfa_enroll"
)

// Fields an error can point at.
const (
	FieldCurrent  = "current"
	FieldNew      = "new"
	FieldTOTP     = "totp"
	FieldPrevious = "previous"
	FieldPassword = "password" // the directory password of a link
	FieldOld      = "old"      // a kept keychain's old password
)

// Text is something the engine tells a person: a code (texts.go lists them
// with their parameters) and the values the sentence needs. Times are
// RFC 3339, numbers decimal.
type Text struct {
	Code   string
	Params map[string]string
}

// T builds a Text from a code and key, value pairs.
func T(code string, kv ...string) Text {
	t := Text{Code: code}
	if len(kv) > 0 {
		t.Params = make(map[string]string, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			t.Params[kv[i]] = kv[i+1]
		}
	}
	return t
}

// Error is an operation that failed or did not start, as a code with its
// parameters; it never holds a sentence.
type Error struct {
	Code       string
	Field      string
	Params     map[string]string
	Violations []protocol.Violation
	RetryAfter int
	Until      *time.Time
	// Detail is a macOS tool's own words for a platform failure, or the
	// directory's for one it reported.
	Detail string
}

// Error implements error for logs: the code, its parameters and detail.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code)
	for _, k := range slices.Sorted(maps.Keys(e.Params)) {
		fmt.Fprintf(&b, " %s=%s", k, e.Params[k])
	}
	if e.Field != "" {
		b.WriteString(" field=" + e.Field)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

// Is matches by code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Operation is one change or sync, with its steps.
type Operation struct {
	ID         string
	Kind       string
	LocalUser  string
	State      string
	StartedAt  time.Time
	FinishedAt *time.Time
	Steps      []Step
	Error      *Error
	// Notes are what the user must know afterwards (where an old keychain
	// went, that a password is temporary).
	Notes []Text
	// NextAction is OpChange after a temporary password was synced.
	NextAction string
}

// Step is one step of an operation.
type Step struct {
	Name  string
	State string
	Text  Text
	At    time.Time
}

// Place is the password's state in one place.
type Place struct {
	Name      string
	State     string
	Text      Text
	ChangedAt *time.Time
}

// Account is what the user sees of one account.
type Account struct {
	LocalUser     string
	DirectoryUser string
	DisplayName   string
	State         string
	Reason        Text
	// InSync says whether every place holds the directory's password, as
	// far as the engine knows: false while a sync is needed, whatever else
	// applies (a lock, an expiry); nil while an operation runs (its outcome
	// decides), and while the engine has no word from the directory or the
	// directory does not link this Mac to the user.
	InSync            *bool
	MFA               bool
	Temporary         bool
	PasswordChangedAt *time.Time
	ExpiresAt         *time.Time
	DaysLeft          *int
	LockedUntil       *time.Time
	FileVault         bool
	Places            []Place
	LastOperation     *Operation
	// MFAEnrollBy is set while the user must set up an authenticator (an
	// MFA reset with an enrolment period): the period's end. Until then a
	// change needs no code.
	MFAEnrollBy *time.Time
	// KeptKeychains counts the old keychains kept aside on this Mac that
	// were not put back yet, as last seen.
	KeptKeychains int
}

// EnrollmentKey is a begun MFA enrolment's secret, for the user who asked
// alone: never journalled, logged or sent in a notice.
type EnrollmentKey struct {
	Secret protocol.Secret // base32
	URI    protocol.Secret // otpauth://
	Until  time.Time
}

// Notice is a notification for the user.
type Notice struct {
	// ID names the event: the same for a notice sent when it happens and
	// when it is told again to a new watcher (Standing).
	ID        string
	Kind      string
	LocalUser string
	Params    map[string]string
	At        time.Time
}

// Event types the engine emits.
const (
	EventStatus = "status" // the accounts' state changed
	EventStep   = "step"   // an operation's step changed
	EventResult = "result" // an operation finished
	EventNotice = "notice" // tell the user
)

// Event is what the engine tells its watchers.
type Event struct {
	Type      string
	Step      *Step
	Operation *Operation
	Notice    *Notice
}

// Check is one finding of the doctor.
type Check struct {
	Place string
	OK    bool
	Text  Text
	Fix   *Text // what to do when not OK
}

// DoctorReport lists what the doctor found.
type DoctorReport struct {
	LocalUser string
	Checks    []Check
}

// ServiceStatus says whether the service account can reset users whose
// previous password is forgotten. Problem is a code when it cannot
// (texts.go: service.*).
type ServiceStatus struct {
	Present     bool
	SecureToken bool
	Usable      bool
	Problem     string
}

// ChangeRequest is a change of the password everywhere.
type ChangeRequest struct {
	Current, New protocol.Secret
	TOTP         string
}

// SyncRequest brings the Mac in line with a password set in the directory.
type SyncRequest struct {
	Previous, New  protocol.Secret
	ForgotPrevious bool
}

// PolicyView is the policy that applies to an account.
type PolicyView struct {
	DirectoryUser string
	Policy        protocol.Policy
	Rules         []protocol.Rule
	MFA           bool
	MacRules      []protocol.LocalRule
}

// KeptKeychain is an old login keychain kept aside (a forgotten-password
// sync, or macOS itself, moved it).
type KeptKeychain struct {
	Name       string // its file name, which a recovery names it by
	Path       string
	KeptAt     time.Time
	LocalItems []string
	// Recovered: a recovery by Lockstep put it back.
	Recovered bool
}

// RecoverRequest puts a kept keychain back: re-keyed from Old, the password
// it was kept with, to Current, the Mac password now.
type RecoverRequest struct {
	Name         string
	Old, Current protocol.Secret
}
