// Package localapi is the contract between lockstepd and its local callers,
// the menu-bar app and the lockstep CLI: the JSON types of the HTTP API that
// lockstepd serves on a unix socket, and the Go client both callers share.
//
// The socket is world-connectable; lockstepd learns who is calling from the
// kernel (peer credentials), so the client sends no token. A caller acts on
// its own account; root may name another with the User field.
package localapi

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// DefaultSocket is where lockstepd listens on a Mac.
const DefaultSocket = "/var/run/lockstepd.sock"

// Host is the only Host header lockstepd accepts. A browser tricked into
// talking to the socket through some proxy would send another.
const Host = "lockstepd.sock"

// API paths.
const (
	PathStatus         = "/v0/status"
	PathPolicy         = "/v0/policy"
	PathChange         = "/v0/change"
	PathSync           = "/v0/sync"
	PathWatch          = "/v0/watch"
	PathDiagnostics    = "/v0/diagnostics"
	PathServiceAccount = "/v0/service-account"
	PathDoctor         = "/v0/doctor"
	PathLink           = "/v0/link"
	// PathMFAEnrollBegin and PathMFAEnrollConfirm set up an authenticator
	// during an enrolment period (an administrator's MFA reset).
	PathMFAEnrollBegin   = "/v0/mfa/enroll/begin"
	PathMFAEnrollConfirm = "/v0/mfa/enroll/confirm"
)

// Connection states of the directory session.
const (
	ConnConnected   = "connected"
	ConnConnecting  = "connecting"
	ConnOffline     = "offline"
	ConnNotEnrolled = "not_enrolled"
)

// Why the directory session is not connected.
const (
	ProblemUnreachable = "unreachable"
	ProblemNotEnrolled = "not_enrolled"
	ProblemRefused     = "refused"
	ProblemRevoked     = "revoked"
)

// Account states, from the user's point of view. Exactly one applies; when
// several could, the first in this list wins.
const (
	StateBusy       = "busy"        // an operation is running
	StateNotLinked  = "not_linked"  // the directory has not linked this Mac to the user: link with the password
	StateLocked     = "locked"      // the directory locked the account
	StateSyncNeeded = "sync_needed" // the Mac is behind the directory
	StateTemporary  = "temporary"   // synced, but a permanent password must be chosen
	StateMFAEnroll  = "mfa_enroll"  // an authenticator must be set up by MFAEnrollBy
	StateExpiring   = "expiring"    // in sync, expiry within the warning window
	StateInSync     = "in_sync"     // every place holds the directory password
	StateUnknown    = "unknown"     // not checked yet (for example offline since start)
)

// Place names: where one password lives.
const (
	PlaceDirectory = "directory"
	PlaceLocal     = "local"
	PlaceFileVault = "filevault"
	PlaceKeychain  = "keychain"
)

// What the doctor checks besides the places (Check.Place).
const (
	CheckOperation      = "operation"
	CheckServiceAccount = "service_account"
)

// Place states.
const (
	PlaceOK            = "ok"
	PlaceBehind        = "behind"
	PlaceUnknown       = "unknown"
	PlaceNotApplicable = "not_applicable"
)

// Status is the whole state the menu bar and `lockstep status` show.
type Status struct {
	Version   string     `json:"version"`
	Directory Connection `json:"directory"`
	// Accounts holds the caller's own account, or every bound account for
	// root.
	Accounts []Account `json:"accounts"`
	// ServiceAccount says whether the forgotten-password path is available.
	ServiceAccount ServiceAccountStatus `json:"service_account"`
}

// Connection is the state of lockstepd's session with the directory.
type Connection struct {
	State string    `json:"state"`
	URL   string    `json:"url"`
	Since time.Time `json:"since"`
	// Problem says why it is not connected (a Problem* code).
	Problem string `json:"problem,omitempty"`
	// LastError is the last failure in Go's words, for IT.
	LastError string `json:"last_error,omitempty"`
	DeviceID  string `json:"device_id,omitempty"`
}

// Text is something lockstepd tells a person: a stable code and the values
// its sentence needs (times in RFC 3339, numbers in decimal). lockstepd
// sends no sentences; the app and the CLI say each code in the user's
// language (ui/text, whose tests render every code in Texts). In JSON that
// scripts read (`lockstep status --json`), Message is the English sentence.
type Text struct {
	Code    string            `json:"code"`
	Params  map[string]string `json:"params,omitempty"`
	Message string            `json:"message,omitempty"`
}

// Account is one local account bound to a directory user.
type Account struct {
	LocalUser     string `json:"local_user"`
	DirectoryUser string `json:"directory_user"`
	DisplayName   string `json:"display_name,omitempty"`
	State         string `json:"state"`
	// Reason says why the state is what it is (a reason.* code).
	Reason Text `json:"reason"`
	// PasswordInSync says whether every place holds the directory's
	// password: false while a sync is needed (even when the state shown is
	// locked), absent while an operation runs, while lockstepd has no word
	// from the directory and while the directory does not link this Mac to
	// the user. The status file for MDM carries the same.
	PasswordInSync    *bool      `json:"password_in_sync,omitempty"`
	MFA               bool       `json:"mfa"`
	Temporary         bool       `json:"temporary"`
	PasswordChangedAt *time.Time `json:"password_changed_at,omitempty"`
	ExpiresAt         *time.Time `json:"expires_at,omitempty"`
	// DaysLeft is set when ExpiresAt is; it may be negative.
	DaysLeft    *int       `json:"days_left,omitempty"`
	LockedUntil *time.Time `json:"locked_until,omitempty"`
	// FileVault is whether this account unlocks FileVault.
	FileVault     bool       `json:"filevault"`
	Places        []Place    `json:"places"`
	LastOperation *Operation `json:"last_operation,omitempty"`
	// MFAEnrollBy is set while an authenticator must be set up (an
	// administrator reset MFA with an enrolment period): its end. Until
	// then a change needs no code.
	MFAEnrollBy *time.Time `json:"mfa_enroll_by,omitempty"`
	// KeptKeychains counts the old keychains kept aside that were not put
	// back yet (Recover Old Keychain… shows while there are any).
	KeptKeychains int `json:"kept_keychains,omitempty"`
}

// MustEnrol reports whether the user must set up an authenticator now.
func (a Account) MustEnrol() bool { return a.MFAEnrollBy != nil }

// Attention reports whether the account needs the user to act.
func (a Account) Attention() bool {
	switch a.State {
	case StateSyncNeeded, StateTemporary, StateExpiring, StateLocked, StateNotLinked, StateMFAEnroll:
		return true
	}
	return false
}

// Place is the state of the password in one place.
type Place struct {
	Name      string     `json:"name"`
	State     string     `json:"state"`
	Text      Text       `json:"text,omitzero"`
	ChangedAt *time.Time `json:"changed_at,omitempty"`
}

// Operation kinds.
const (
	OpChange     = "change"
	OpSync       = "sync"
	OpSyncForgot = "sync_forgot_previous"
)

// Operation states.
const (
	OpRunning    = "running"
	OpDone       = "done"
	OpFailed     = "failed"      // nothing changed; safe to retry
	OpSyncNeeded = "sync_needed" // stopped part-way; `lockstep sync` resolves it
)

// Operation is one change or sync, with its journal of steps.
type Operation struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	LocalUser  string     `json:"local_user"`
	State      string     `json:"state"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Steps      []Step     `json:"steps"`
	Error      *Error     `json:"error,omitempty"`
	// Notes tell the user what happened that they must know, for example
	// where an old keychain was moved.
	Notes []Text `json:"notes,omitempty"`
	// NextAction is set when the user must do something next, for example
	// "change" after syncing a temporary password.
	NextAction string `json:"next_action,omitempty"`
}

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
)

// Step states.
const (
	StepPending = "pending"
	StepRunning = "running"
	StepDone    = "done"
	StepSkipped = "skipped"
	StepFailed  = "failed"
)

// Step is one journal entry of an operation.
type Step struct {
	Name  string    `json:"name"`
	State string    `json:"state"`
	Text  Text      `json:"text,omitzero"`
	At    time.Time `json:"at,omitzero"`
}

// ChangeRequest asks lockstepd to change the password everywhere.
type ChangeRequest struct {
	// User is the local account; empty means the caller. Only root may name
	// another.
	User    string          `json:"user,omitempty"`
	Current protocol.Secret `json:"current"`
	New     protocol.Secret `json:"new"`
	TOTP    string          `json:"totp,omitempty"`
}

// SyncRequest asks lockstepd to bring the Mac in line with a password set
// in the directory (an admin reset or a change made elsewhere).
type SyncRequest struct {
	User string `json:"user,omitempty"`
	// Previous is the Mac password before the reset. Empty only with
	// ForgotPrevious.
	Previous protocol.Secret `json:"previous,omitempty"`
	// New is the password the directory now holds.
	New protocol.Secret `json:"new"`
	// ForgotPrevious resets the Mac through the service account: the old
	// keychain is moved aside and a new one made.
	ForgotPrevious bool `json:"forgot_previous,omitempty"`
}

// LinkRequest links this Mac to the caller's directory account. The
// directory links a Mac to a user when an administrator assigned it, or
// when the user's password was given from it; Password is that proof.
type LinkRequest struct {
	User     string          `json:"user,omitempty"`
	Password protocol.Secret `json:"password"`
}

// MFAEnrollRequest begins an enrolment (root may name the account).
type MFAEnrollRequest struct {
	User string `json:"user,omitempty"`
}

// MFAEnrollment is a begun enrolment: the secret (base32) and its
// otpauth:// URI, for the caller alone (lockstepd neither keeps nor logs
// them), and when the period ends.
type MFAEnrollment struct {
	Secret protocol.Secret `json:"secret"`
	URI    protocol.Secret `json:"uri"`
	Until  time.Time       `json:"until"`
}

// MFAConfirmRequest confirms the enrolment with a code from the new
// authenticator.
type MFAConfirmRequest struct {
	User string `json:"user,omitempty"`
	Code string `json:"code"`
}

// ServiceAccountRequest sets up the service account with a SecureToken
// admin's credentials.
type ServiceAccountRequest struct {
	AdminUser     string          `json:"admin_user"`
	AdminPassword protocol.Secret `json:"admin_password"`
}

// ServiceAccountStatus says whether the hidden service account exists and
// can reset users whose previous password is forgotten.
type ServiceAccountStatus struct {
	Present     bool `json:"present"`
	SecureToken bool `json:"secure_token"`
	Usable      bool `json:"usable"`
	// Problem says why it cannot reset a password (a service.* code).
	Problem string `json:"problem,omitempty"`
}

// Event types on the watch and operation streams.
const (
	EventStatus = "status" // Status changed; carries the whole new Status
	EventStep   = "step"   // an operation step changed
	EventResult = "result" // an operation finished; carries Operation
	EventNotice = "notice" // something the user should be told about
)

// Event is one line of a stream (newline-delimited JSON).
type Event struct {
	Type      string     `json:"type"`
	Status    *Status    `json:"status,omitempty"`
	Step      *Step      `json:"step,omitempty"`
	Operation *Operation `json:"operation,omitempty"`
	Notice    *Notice    `json:"notice,omitempty"`
	Error     *Error     `json:"error,omitempty"`
}

// Notice kinds, each a user notification.
const (
	NoticeReset    = "reset"    // an administrator reset the password; params: temporary
	NoticeSynced   = "synced"   // a sync or change finished
	NoticeExpiry   = "expiry"   // expiry is approaching; params: days
	NoticeLocked   = "locked"   // the account was locked; params: until
	NoticeUnlocked = "unlocked" // the account was unlocked
	// NoticeMFAEnroll: set up an authenticator; params: until.
	NoticeMFAEnroll = "mfa_enroll"
)

// Notice is a user notification: its kind and the values its words need.
// It is the one source of notifications: the app shows these, and rebuilds
// none from changes of state.
type Notice struct {
	// ID names the event the notice is about: the same event has the same
	// ID however often it is told (a watcher that reconnects is told the
	// notices that still stand), so a notification is shown once.
	ID        string            `json:"id"`
	Kind      string            `json:"kind"`
	LocalUser string            `json:"local_user"`
	Params    map[string]string `json:"params,omitempty"`
	At        time.Time         `json:"at"`
}

// Error codes of the local API (protocol/codes defines each, with the
// parameters it carries; the directory's protocol.Code* pass through).
const (
	CodeForbidden     = codes.Forbidden
	CodeBadRequest    = codes.BadRequest
	CodeMissing       = codes.Missing
	CodeNameAccount   = codes.NameAccount
	CodeNoLocalUser   = codes.NoLocalUser
	CodeNotBound      = codes.NotBound
	CodeBusy          = codes.Busy
	CodeSyncFirst     = codes.SyncFirst
	CodeKeychain      = codes.Keychain
	CodeInterrupted   = codes.Interrupted
	CodeOffline       = codes.Offline
	CodeWrongLocal    = codes.WrongLocal
	CodeMFAFormat     = codes.MFAFormat
	CodeNotNeeded     = codes.NotNeeded
	CodeNoServiceAcct = codes.NoServiceAccount
	CodeThrottled     = codes.Throttled
	CodeTooMany       = codes.TooMany
	CodePlatform      = codes.Platform
	CodeUnmanaged     = codes.Unmanaged
	CodeMacPolicy     = codes.MacPolicy
	CodeServiceSetup  = codes.ServiceSetup
	CodeUnavailable   = codes.Unavailable
)

// Fields an error can point at, so the UI shows it next to the right box.
const (
	FieldCurrent  = "current"
	FieldNew      = "new"
	FieldTOTP     = "totp"
	FieldPrevious = "previous"
	FieldPassword = "password" // the directory password of a link
)

// Error is a failed request, as a code and the values its words need; the
// app and the CLI say it in the user's language. In JSON for scripts,
// Message is the English sentence.
type Error struct {
	Code       string               `json:"code"`
	Field      string               `json:"field,omitempty"`
	Params     map[string]string    `json:"params,omitempty"`
	Violations []protocol.Violation `json:"violations,omitempty"`
	RetryAfter int                  `json:"retry_after,omitempty"`
	Until      *time.Time           `json:"until,omitempty"`
	// Detail is a macOS tool's or the directory's own words, for IT.
	Detail  string `json:"detail,omitempty"`
	Message string `json:"message,omitempty"`
}

// Error implements error, for logs: the code, its parameters and detail.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("lockstepd: " + e.Code)
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

// PolicyResponse is the policy that applies to the caller's account.
type PolicyResponse struct {
	DirectoryUser string          `json:"directory_user"`
	Policy        protocol.Policy `json:"policy"`
	Rules         []protocol.Rule `json:"rules"`
	MFA           bool            `json:"mfa"`
	// MacRules are this Mac's own password rules, which a new password must
	// meet too; lockstepd checks them before the directory is changed.
	MacRules []protocol.LocalRule `json:"mac_rules,omitempty"`
}

// DoctorRequest asks lockstepd to check every place for an account. With
// Password, it also checks that the password opens the Mac account and the
// keychain; the directory is never sent a password by the doctor, so it
// cannot add to a lockout.
type DoctorRequest struct {
	User     string          `json:"user,omitempty"`
	Password protocol.Secret `json:"password,omitempty"`
}

// Check is one finding of the doctor.
type Check struct {
	Place string `json:"place"`
	OK    bool   `json:"ok"`
	Text  Text   `json:"text"`
	// Fix says what to do when not OK.
	Fix *Text `json:"fix,omitempty"`
}

// DoctorReport lists what the doctor found.
type DoctorReport struct {
	LocalUser string  `json:"local_user"`
	Checks    []Check `json:"checks"`
}

// OK reports whether every check passed.
func (r DoctorReport) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}
