package protocol

import (
	"fmt"
	"time"
)

// Error codes. They are stable: agents and scripts branch on them, and the
// menu bar maps each to the field it concerns.
const (
	CodeBadRequest       = "bad_request"        // malformed or invalid frame
	CodeUnsupported      = "unsupported"        // unknown type or version
	CodeUnauthorized     = "unauthorized"       // handshake failed
	CodeUnknownUser      = "unknown_user"       // no such directory user
	CodeWrongPassword    = "wrong_password"     // password does not match
	CodeMFARequired      = "mfa_required"       // account has MFA and no code was sent
	CodeMFAInvalid       = "mfa_invalid"        // code does not match
	CodeMFAReplayed      = "mfa_replayed"       // code was already used
	CodePolicyViolation  = "policy_violation"   // see Violations
	CodeLocked           = "locked"             // account locked; see LockedUntil
	CodeRateLimited      = "rate_limited"       // too many attempts; see RetryAfter
	CodeIdempotencyReuse = "idempotency_reused" // key reused for a different request
	CodeInternal         = "internal"           // the directory failed; retry later

	// CodeNotBound answers get_account and ack_sync for a user this device
	// is not bound to, whether or not the user exists: a device learns
	// about a user only once an administrator assigned the user to it (at
	// enrollment or later) or it proved the user's password with
	// verify_password or change_password, which binds it. (CodeUnknownUser
	// is then the admin API's alone.)
	CodeNotBound = "not_bound"

	// CodeDisabled: the directory account cannot sign in (disabled, or
	// past its account expiry); only IT can change that.
	CodeDisabled = "disabled"

	// CodeMFAEnrollmentExpired: the account's enrolment period ended with
	// no authenticator enrolled, so no code can be given; an administrator
	// must reset MFA again.
	CodeMFAEnrollmentExpired = "mfa_enrollment_expired"
	// CodeMFANotEnrolling: an enrolment step for an account that is not
	// in an enrolment period, or a confirmation with no enrolment begun
	// (or one begun too long ago): begin again.
	CodeMFANotEnrolling = "mfa_not_enrolling"
)

// Error is a failed request's outcome. Message is a human sentence; Code is
// what programs branch on.
type Error struct {
	Code        string      `json:"code"`
	Message     string      `json:"message"`
	Violations  []Violation `json:"violations,omitempty"`
	RetryAfter  int         `json:"retry_after,omitempty"` // seconds
	LockedUntil *time.Time  `json:"locked_until,omitempty"`
}

// Error implements error.
func (e *Error) Error() string {
	if e == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Is reports whether target is an *Error with the same code, so callers can
// write errors.Is(err, &protocol.Error{Code: protocol.CodeLocked}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errorf builds an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
