package platform

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every failure of a tool is a *ToolError whose Unwrap
// returns one of these, so callers branch with errors.Is and read the tool's
// own text with errors.As.
var (
	// ErrWrongPassword: the password (or, for resets, the administrator's
	// password) was not accepted.
	ErrWrongPassword = errors.New("wrong password")
	// ErrPolicy: the new password was refused by the local password policy.
	ErrPolicy = errors.New("password refused by policy")
	// ErrPasswordExpired: the account must change its password first.
	ErrPasswordExpired = errors.New("password expired")
	// ErrAccountDisabled: the account is disabled, expired or inactive.
	ErrAccountDisabled = errors.New("account disabled")
	// ErrNoSuchUser: no local account of that name.
	ErrNoSuchUser = errors.New("no such user")
	// ErrNoSecureToken: the operation needs a SecureToken holder
	// ("Operation is not permitted without secure token unlock").
	ErrNoSecureToken = errors.New("not permitted without secure token unlock")
	// ErrNotAdmin: the credentials given are not an administrator's.
	ErrNotAdmin = errors.New("not an administrator")
	// ErrPermission: the tool refused for lack of privilege (not root).
	ErrPermission = errors.New("permission denied")
	// ErrKeychainMissing: the keychain file does not exist.
	ErrKeychainMissing = errors.New("keychain missing")
	// ErrKeychainWrongPassword: the password does not open the keychain.
	ErrKeychainWrongPassword = errors.New("keychain password wrong")
	// ErrCannotVerify: a check of the keychain cannot be trusted: a password
	// that is certainly wrong opened it (an unlocked keychain, or a macOS
	// that accepts any password), or the tool's output made no sense.
	ErrCannotVerify = errors.New("keychain check cannot be trusted")
	// ErrKeychainExists: a keychain file is already at that path.
	ErrKeychainExists = errors.New("keychain already exists")
	// ErrTimeout: the tool did not finish in time; its process group was killed.
	ErrTimeout = errors.New("tool timed out")
	// ErrNotApplied: the tool reported success but observation shows the
	// change did not happen (sysadminctl exits 0 on failure).
	ErrNotApplied = errors.New("change not observed after the tool ran")
	// ErrUnknownPrompt: a tool asked for a password with a prompt that
	// cannot be told apart for certain; it was killed unanswered.
	ErrUnknownPrompt = errors.New("prompt not recognised")
	// ErrToolFailed: any other failure of a tool.
	ErrToolFailed = errors.New("tool failed")
	// ErrUnusableSecret: the secret cannot be fed to a tool prompt (empty,
	// longer than getpass's 128 bytes, or holding a newline, CR or NUL).
	ErrUnusableSecret = errors.New("secret cannot be passed to the tool")
	// ErrInvalidName: not a valid local account short name.
	ErrInvalidName = errors.New("invalid account name")
	// ErrSecretNotFound: the secret store has no such secret.
	ErrSecretNotFound = errors.New("secret not found")
	// ErrServiceAccount: the service account is missing or unusable.
	ErrServiceAccount = errors.New("service account unusable")
)

// ToolError is a failed tool run: which tool, its exit status, the status it
// reported (a DS status such as -14090 eDSAuthFailed, an OSStatus such as
// -25293, or sysadminctl's "### Error:" code) and its own text. It never holds
// a secret: secrets only ever reach tools on stdin or the terminal, which are
// not captured.
type ToolError struct {
	Tool       Tool
	Verb       string
	Exit       int
	Status     int    // 0 when the tool printed none
	StatusName string // e.g. "eDSAuthFailed"
	Message    string // the tool's own failure line
	Stdout     string
	Stderr     string
	Err        error // the sentinel this failure maps to
}

func (e *ToolError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %v (exit %d", e.Tool, e.Verb, e.Err, e.Exit)
	if e.StatusName != "" {
		fmt.Fprintf(&b, ", %s %d", e.StatusName, e.Status)
	} else if e.Status != 0 {
		fmt.Fprintf(&b, ", status %d", e.Status)
	}
	b.WriteString(")")
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

func (e *ToolError) Unwrap() error { return e.Err }

// dsStatuses maps Open Directory status names (DirServicesTypes.h) to their
// value; dscl exits with -status & 0xff.
var dsStatuses = map[string]int{
	"eDSAuthFailed":                     -14090,
	"eDSAuthMethodNotSupported":         -14091,
	"eDSAuthBadPassword":                -14096,
	"eDSAuthUnknownUser":                -14098,
	"eDSPermissionError":                -14120,
	"eDSRecordAlreadyExists":            -14135,
	"eDSRecordNotFound":                 -14136,
	"eDSAuthNewPasswordRequired":        -14161,
	"eDSAuthPasswordExpired":            -14162,
	"eDSAuthPasswordQualityCheckFailed": -14165,
	"eDSAuthAccountDisabled":            -14167,
	"eDSAuthAccountExpired":             -14168,
	"eDSAuthAccountInactive":            -14169,
	"eDSAuthPasswordTooShort":           -14170,
	"eDSAuthPasswordTooLong":            -14171,
	"eDSAuthPasswordNeedsLetter":        -14172,
	"eDSAuthPasswordNeedsDigit":         -14173,
	"eDSAuthPasswordChangeTooSoon":      -14174,
	"eDSAuthInvalidLogonHours":          -14175,
}

// dsByExit recovers the status from dscl's 8-bit exit code when the tool
// printed no status line.
var dsByExit = func() map[int]string {
	m := map[int]string{}
	for name, code := range dsStatuses {
		m[int(uint8(-code))] = name
	}
	return m
}()

// dsSentinel maps a DS status to the error callers branch on.
func dsSentinel(code int) error {
	switch code {
	case -14090, -14096:
		return ErrWrongPassword
	case -14098, -14136:
		return ErrNoSuchUser
	case -14167, -14168, -14169, -14175:
		return ErrAccountDisabled
	case -14165, -14170, -14171, -14172, -14173, -14174:
		return ErrPolicy
	case -14161, -14162:
		return ErrPasswordExpired
	case -14120:
		return ErrPermission
	}
	return ErrToolFailed
}

// Security framework statuses security(1) reports; it exits with the
// OSStatus & 0xff.
const (
	errSecAuthFailed        = -25293
	errSecNoSuchKeychain    = -25294
	errSecDuplicateKeychain = -25296
)

func osStatusExit(status int) int { return int(uint8(int32(status))) }

// securitySentinel maps security(1)'s exit code to a sentinel.
func securitySentinel(exit int) (int, error) {
	switch exit {
	case osStatusExit(errSecAuthFailed):
		return errSecAuthFailed, ErrKeychainWrongPassword
	case osStatusExit(errSecNoSuchKeychain):
		return errSecNoSuchKeychain, ErrKeychainMissing
	case osStatusExit(errSecDuplicateKeychain):
		return errSecDuplicateKeychain, ErrKeychainExists
	}
	return 0, ErrToolFailed
}
