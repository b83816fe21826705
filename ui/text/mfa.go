package text

import (
	"strings"
	"time"
)

// Setting up an authenticator during an enrolment period (an
// administrator reset the user's MFA): the tray, the window, the CLI and
// the notification.
var (
	TrayEnroll        = M("tray.mfa_enroll", "Set up your authenticator…")
	LineEnroll        = M("line.mfa_enroll", "Set up your authenticator by {{.Until}}")
	StateEnroll       = M("state.mfa_enroll", "Set up your authenticator")
	ReasonEnroll      = M("reason.mfa_enroll", "Your administrator reset your two-step verification. Set up your authenticator app by {{.until}}; until then your password alone is enough.")
	EnrollTitle       = M("enroll.title", "Set Up Authenticator")
	EnrollHeading     = M("enroll.heading", "Set up your authenticator app")
	EnrollIntro       = M("enroll.intro", "Scan this code with your authenticator app, or type the key below into it. Then enter the code the app shows.")
	EnrollQRLabel     = M("enroll.qr_label", "QR code of your new key")
	EnrollKeyLabel    = M("enroll.key", "Key")
	EnrollBy          = M("enroll.by", "Set it up by {{.Until}}. Until then, your password alone is enough.")
	LabelEnrollCode   = M("enroll.code", "Code from the app")
	EnrollStarting    = M("enroll.starting", "Getting a new key from the directory…")
	EnrollRunning     = M("enroll.running", "Checking the code with the directory…")
	EnrollDone        = M("enroll.done", "Your authenticator is set up")
	EnrollDoneIntro   = M("enroll.done_intro", "From now on, changing your password asks for the code from your authenticator app.")
	EnrollAfterChange = M("enroll.after_change", "Your password was changed. Now set up your authenticator app, as your administrator asked.")
	BtnConfirm        = M("button.confirm", "Confirm")
	BtnRetry          = M("button.retry", "Try Again")

	NoteEnrollTitle     = M("notify.mfa_enroll_title", "Set up your authenticator")
	NoteEnrollBody      = M("notify.mfa_enroll_body", "Your administrator reset your two-step verification. Choose Set up your authenticator… in the Lockstep menu before {{.Until}}.")
	NoteEnrollBodyPlain = M("notify.mfa_enroll_body_plain", "Your administrator reset your two-step verification. Choose Set up your authenticator… in the Lockstep menu.")

	ErrEnrollExpired = M("error.mfa_enrollment_expired", "The time to set up your authenticator has ended, so a change of password cannot be confirmed. Contact your IT department to reset your two-step verification.")
	ErrNotEnrolling  = M("error.mfa_not_enrolling", "No authenticator set-up is waiting for your account. If you began one more than 30 minutes ago, start again.")

	CLIEnrollScan   = M("cli.enroll_scan", "Scan this QR code with your authenticator app:")
	CLIEnrollKey    = M("cli.enroll_key", "Or type this key into the app: {{.Key}}")
	CLIEnrolled     = M("cli.enrolled", "Your authenticator is set up: changes of password now ask for its code.")
	CLIEnrollLater  = M("cli.enroll_later", "Your administrator asked you to set up an authenticator app: run `lockstep mfa enroll` now.")
	CLIEnrollAction = M("cli.unknown_mfa_action", "lockstep mfa: unknown action “{{.Action}}” (enroll)")
)

// KeyGroups writes a base32 key in groups of four, as authenticator apps
// show keys, so it can be typed without losing one's place.
func KeyGroups(key string) string {
	var b strings.Builder
	for i, r := range key {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// EnrollByLine says when the enrolment period ends.
func EnrollByLine(until time.Time) string { return EnrollBy.S(map[string]any{"Until": Clock(until)}) }
