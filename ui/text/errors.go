package text

import (
	"errors"
	"strconv"
	"strings"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Where a failure is shown: the window (or command) whose boxes a field
// names.
const (
	InChange = "change"
	InSync   = "sync"
	InLink   = "link"
)

// Trouble is a failure in words: which box it belongs to (a localapi.Field*,
// "" for the whole window), the sentence, what to do next, and the rules
// that were not met.
type Trouble struct {
	Field      string
	Text       string
	Hint       string
	Violations []protocol.Violation
}

// Problem says what went wrong in err (a *localapi.Error or the client's
// own failure), for the window in (InChange, InSync, InLink, InRecover). This is the
// only place that decides which box a code belongs to and how it is said,
// for the app and the CLI alike.
func Problem(err error, in string) Trouble {
	if errors.Is(err, localapi.ErrUnavailable) {
		return Trouble{Text: ErrNotRunning.S()}
	}
	var e *localapi.Error
	if !errors.As(err, &e) {
		if err == nil {
			return Trouble{}
		}
		return Trouble{Text: ErrUnexpected.S(map[string]any{"detail": err.Error()})}
	}
	t := Trouble{Field: e.Field, Violations: e.Violations}
	if t.Field == "" {
		t.Field = fieldFor(e.Code, in)
	}
	if recoverProblem(e, in, &t) {
		return t
	}
	p := e.Params
	with := map[string]any{"detail": e.Detail}
	switch e.Code {
	case protocol.CodeWrongPassword, localapi.CodeWrongLocal:
		switch {
		case p["which"] == "neither":
			t.Text = ErrWrongNeither.S()
		case t.Field == localapi.FieldPassword:
			t.Text = ErrWrongLink.S()
		case t.Field == localapi.FieldPrevious:
			t.Text = ErrWrongPrevious.S()
		case t.Field == localapi.FieldNew:
			t.Text = ErrWrongDirNew.S()
		case e.Code == protocol.CodeWrongPassword:
			t.Text, t.Hint = ErrDirWrongCurrent.S(), HintSyncFirst.S()
		default:
			t.Text = ErrWrongCurrent.S()
		}
	case protocol.CodeMFARequired:
		t.Text = ErrMFAMissing.S()
	case protocol.CodeMFAInvalid:
		t.Text = ErrMFAInvalid.S()
	case localapi.CodeMFAFormat:
		t.Text = ErrMFAFormat.S(map[string]any{"N": protocol.TOTPDigits})
	case protocol.CodeMFAReplayed:
		t.Text = ErrMFAReplayed.S()
	case protocol.CodePolicyViolation:
		t.Text = ErrPolicy.S()
	case localapi.CodeMacPolicy:
		switch p["source"] {
		case "directory":
			t.Text, t.Hint = ErrMacPolicyDirectory.S(), HintBothPolicies.S()
		case "refused":
			t.Text, t.Hint = ErrMacPolicyRefused.S(with), HintSync.S()
		default:
			t.Text = ErrMacPolicy.S()
		}
	case protocol.CodeLocked:
		if e.Until != nil {
			t.Text = ErrLocked.S(map[string]any{"Until": Clock(*e.Until)})
		} else {
			t.Text = ErrLockedPlain.S()
		}
	case localapi.CodeOffline:
		if p["when"] == "unconfirmed" {
			t.Text, t.Hint = ErrUnconfirmed.S(), HintUnconfirmed.S()
		} else {
			t.Text = ErrOffline.S()
		}
	case localapi.CodeBusy:
		t.Text = ErrBusy.S()
	case localapi.CodeThrottled, protocol.CodeRateLimited:
		if e.RetryAfter > 0 {
			t.Text = ErrThrottled.S(map[string]any{"Seconds": e.RetryAfter})
		} else {
			t.Text = ErrThrottledNoT.S()
		}
	case localapi.CodeNoServiceAcct:
		t.Text, t.Hint = ErrNoServiceAcct.S(), HintServiceAccount.S()
	case localapi.CodeNotNeeded:
		t.Text = SyncNotNeeded.S()
	case localapi.CodeNotBound:
		t.Text, t.Hint = ErrNotLinked.S(), HintLink.S()
	case localapi.CodeSyncFirst:
		t.Text, t.Hint = ErrSyncFirst.S(), HintSync.S()
	case localapi.CodeKeychain:
		if p["which"] == "previous" {
			t.Text, t.Hint = ErrKeychainPrevious.S(), HintKeychainPrevious.S()
		} else {
			t.Text, t.Hint = ErrKeychainCurrent.S(), HintKeychainCurrent.S()
		}
	case localapi.CodeInterrupted:
		t.Text, t.Hint = ErrInterrupted.S(), HintSync.S()
	case localapi.CodeMissing:
		t.Text = missing(t.Field)
	case localapi.CodeNoLocalUser:
		t.Text = ErrNoLocalUser.S(map[string]any{"user": p["user"]})
	case localapi.CodeUnmanaged:
		d := map[string]any{"user": p["user"], "node": p["node"]}
		switch p["kind"] {
		case "disabled":
			t.Text, t.Hint = ErrUnmanagedDisabled.S(d), FixAskEnable.S()
		case "network_home":
			t.Text, t.Hint = ErrUnmanagedNetwork.S(d), FixAskITNetwork.S()
		default:
			if p["node"] == "" {
				d["node"] = NetworkDirectory.S()
			}
			t.Text, t.Hint = ErrUnmanagedMobile.S(d), FixAskITMobile.S()
		}
	case localapi.CodeForbidden:
		switch p["why"] {
		case "web_page":
			t.Text = ErrForbiddenWeb.S()
		case "host":
			t.Text = ErrForbiddenHost.S()
		case "no_account":
			t.Text = ErrForbiddenNoAccount.S(map[string]any{"uid": p["uid"]})
		case "other_account":
			t.Text = ErrForbiddenOther.S(map[string]any{"user": p["user"]})
		case "root_only":
			t.Text, t.Hint = ErrForbiddenRoot.S(), HintSudo.S()
		default:
			t.Text = ErrForbiddenPeer.S()
		}
	case localapi.CodeNameAccount:
		t.Text, t.Hint = ErrNameAccount.S(), HintUser.S()
	case localapi.CodeTooMany:
		t.Text, t.Hint = ErrTooMany.S(), HintTooMany.S()
	case localapi.CodeBadRequest:
		t.Text = ErrBadRequest.S(with)
	case localapi.CodeServiceSetup:
		switch p["why"] {
		case "admin_password":
			t.Text = ErrAdminPassword.S()
		case "admin_token":
			t.Text, t.Hint = ErrAdminToken.S(), HintAdminToken.S()
		default:
			t.Text = ErrServiceFailed.S(map[string]any{"step": serviceStep(p["step"]), "detail": e.Detail})
		}
	case protocol.CodeUnknownUser:
		t.Text, t.Hint = ErrUnknownDirUser.S(), HintUserMap.S()
	case protocol.CodeDisabled:
		t.Text, t.Hint = ErrDirDisabled.S(), FixAskEnable.S()
	case protocol.CodeMFAEnrollmentExpired:
		t.Text = ErrEnrollExpired.S()
	case protocol.CodeMFANotEnrolling:
		t.Text = ErrNotEnrolling.S()
	case localapi.CodePlatform:
		t.Text = ErrPlatform.S(with)
	default:
		t.Text = ErrDirectory.S(map[string]any{"code": e.Code, "detail": e.Detail})
	}
	return t
}

// Failed says how an operation ended when it did not succeed: Problem's
// words for err, and, when the operation stopped part-way (a place may
// have changed), that it did and how to finish, for the whole window.
func Failed(op *localapi.Operation, err error, in string) Trouble {
	t := Problem(err, in)
	switch {
	case op != nil && op.State == localapi.OpSyncNeeded:
		t.Field = ""
		t.Text = ErrPartWay.S() + "\n" + t.Text
	case op != nil && op.State == localapi.OpIncomplete:
		t.Field = ""
		t.Text = ErrRecoverPartWay.S() + "\n" + t.Text
	}
	return t
}

// fieldFor is the box a code belongs to when lockstepd did not say.
func fieldFor(code, in string) string {
	switch code {
	case protocol.CodeWrongPassword:
		switch in {
		case InSync:
			return localapi.FieldNew
		case InLink:
			return localapi.FieldPassword
		}
		return localapi.FieldCurrent
	case localapi.CodeWrongLocal:
		if in == InSync {
			return localapi.FieldPrevious
		}
		return localapi.FieldCurrent
	case protocol.CodeMFARequired, protocol.CodeMFAInvalid, protocol.CodeMFAReplayed, localapi.CodeMFAFormat:
		return localapi.FieldTOTP
	case protocol.CodePolicyViolation, localapi.CodeMacPolicy:
		return localapi.FieldNew
	}
	return ""
}

func missing(field string) string {
	switch field {
	case localapi.FieldCurrent:
		return ErrMissingCurrent.S()
	case localapi.FieldNew:
		return ErrMissingNew.S()
	case localapi.FieldPrevious:
		return ErrMissingPrevious.S()
	case localapi.FieldPassword:
		return ErrMissingPassword.S()
	case localapi.FieldTOTP:
		return ErrMFAMissing.S()
	case localapi.FieldOld:
		return ErrMissingOld.S()
	}
	return ErrMissingAdmin.S()
}

func serviceStep(s string) string {
	switch s {
	case "rotate":
		return StepRotate.S()
	case "remove":
		return StepRemove.S()
	}
	return StepSetUp.S()
}

// Lines is a Trouble as the lines a terminal shows: the sentence, the unmet
// rules, and the hint.
func (t Trouble) Lines(p protocol.Policy) []string {
	out := []string{t.Text}
	for _, v := range t.Violations {
		out = append(out, "• "+ViolationText(v, p))
	}
	if t.Hint != "" {
		out = append(out, t.Hint)
	}
	return out
}

// String is the Trouble on one line (for an English "message" in JSON).
func (t Trouble) String() string {
	s := t.Text
	if t.Hint != "" {
		s += " " + t.Hint
	}
	return strings.TrimSpace(s)
}

// Seconds renders a duration in seconds as a count.
func Seconds(n int) string { return strconv.Itoa(n) }

// Errors, in plain words.
var (
	ErrWrongCurrent       = M("error.wrong_current", "That is not your current password. Check it and try again.")
	ErrDirWrongCurrent    = M("error.directory_wrong_current", "The directory did not accept your current password.")
	ErrWrongPrevious      = M("error.wrong_previous", "That is not the password this Mac used until now. Check it and try again.")
	ErrWrongNeither       = M("error.wrong_neither", "Your Mac account takes neither the previous nor the new password.")
	ErrWrongDirNew        = M("error.wrong_dir_new", "That is not the password the directory now holds for you. Check it with your administrator's message.")
	ErrWrongLink          = M("error.wrong_link", "That is not your directory password. Check it and try again.")
	ErrMFAMissing         = M("error.mfa_required", "Enter the code from your authenticator app.")
	ErrMFAInvalid         = M("error.mfa_invalid", "That code is not right. Check that your phone's clock is correct and enter the current code.")
	ErrMFAFormat          = M("error.mfa_format", "The code is {{.N}} digits.")
	ErrMFAReplayed        = M("error.mfa_replayed", "That code was already used. Wait for the next code and enter it.")
	ErrPolicy             = M("error.policy", "The directory did not accept the new password:")
	ErrMacPolicy          = M("error.mac_policy", "This Mac's own password policy would refuse the new password, so nothing was changed:")
	ErrMacPolicyDirectory = M("error.mac_policy_directory", "This Mac's own password policy refuses the directory's new password, so nothing on the Mac was changed:")
	ErrMacPolicyRefused   = M("error.mac_policy_refused", "This Mac's password policy refused the new password ({{.detail}}).")
	ErrLocked             = M("error.locked", "Your account is locked in the directory until {{.Until}}. Wait until then, or contact your IT department.")
	ErrLockedPlain        = M("error.locked_plain", "Your account is locked in the directory. Contact your IT department.")
	ErrOffline            = M("error.offline", "The directory cannot be reached, so nothing was changed. Check your network connection and try again.")
	ErrUnconfirmed        = M("error.unconfirmed", "The connection to the directory was lost before it confirmed the change.")
	ErrBusy               = M("error.busy", "Another password change is already running for your account. Wait for it to finish, then try again.")
	ErrThrottled          = M("error.throttled", "Too many attempts in a short time. To keep your account from being locked, wait {{.Seconds}} seconds before trying again.")
	ErrThrottledNoT       = M("error.throttled_plain", "Too many attempts in a short time. To keep your account from being locked, wait a minute before trying again.")
	ErrNoServiceAcct      = M("error.no_service_account", "This Mac cannot be reset without your previous password.")
	ErrPartWay            = M("error.part_way", "The change stopped part-way. Your password is safe in the directory; choose Sync Password… in the Lockstep menu to finish.")
	ErrNotLinked          = M("error.not_linked", "This Mac is not linked to your directory account yet.")
	ErrSyncFirst          = M("error.sync_first", "Your Mac is not in step with the directory yet, so the password cannot be changed.")
	ErrKeychainCurrent    = M("error.keychain_current", "Your login keychain does not open with your current password, so it would be left behind.")
	ErrKeychainPrevious   = M("error.keychain_previous", "Your login keychain does not open with your previous password, so it still uses an older one. Nothing was changed.")
	ErrInterrupted        = M("error.interrupted", "lockstepd stopped in the middle of this operation.")
	ErrMissingCurrent     = M("error.missing_current", "Enter your current password.")
	ErrMissingNew         = M("error.missing_new", "Enter your new directory password.")
	ErrMissingPrevious    = M("error.missing_previous", "Enter your previous Mac password, or choose that you don't remember it.")
	ErrMissingPassword    = M("error.missing_password", "Enter your directory password.")
	ErrMissingAdmin       = M("error.missing_admin", "Give a SecureToken admin's name and password.")
	ErrNoLocalUser        = M("error.no_local_account", "There is no local account named {{.user}}.")
	ErrUnmanagedDisabled  = M("error.unmanaged_disabled", "The Mac account {{.user}} is disabled, so Lockstep does not change its password.")
	ErrUnmanagedMobile    = M("error.unmanaged_mobile", "The Mac account {{.user}} is a mobile account from {{.node}}, which owns its password, so Lockstep leaves it alone.")
	ErrUnmanagedNetwork   = M("error.unmanaged_network_home", "The home folder of {{.user}} is on a network server, so its keychain is not on this Mac and Lockstep cannot keep it in step.")
	ErrForbiddenWeb       = M("error.forbidden_web", "Requests from web pages are not accepted.")
	ErrForbiddenHost      = M("error.forbidden_host", "The request did not come from a Lockstep program.")
	ErrForbiddenPeer      = M("error.forbidden_peer", "Lockstep could not tell who is calling.")
	ErrForbiddenNoAccount = M("error.forbidden_no_account", "uid {{.uid}} has no local account.")
	ErrForbiddenOther     = M("error.forbidden_other", "You can only act on your own account ({{.user}}).")
	ErrForbiddenRoot      = M("error.forbidden_root", "Only root can manage the service account.")
	ErrNameAccount        = M("error.name_account", "Name the account to act on.")
	ErrTooMany            = M("error.too_many", "Too many Lockstep windows or watch commands are open for your account.")
	ErrBadRequest         = M("error.bad_request", "The request could not be read: {{.detail}}")
	ErrAdminPassword      = M("error.admin_password", "The admin password is not correct.")
	ErrAdminToken         = M("error.admin_token", "That admin has no SecureToken, so it cannot grant one.")
	ErrServiceFailed      = M("error.service_failed", "Could not {{.step}} the service account: {{.detail}}")
	ErrUnknownDirUser     = M("error.unknown_directory_user", "The directory does not know this account.")
	ErrDirDisabled        = M("error.directory_disabled", "Your directory account is disabled or has expired, so it cannot sign in.")
	ErrPlatform           = M("error.platform", "A macOS tool failed: {{.detail}}")
	ErrDirectory          = M("error.directory", "The directory refused the request ({{.code}}). {{.detail}}")
	ErrUnexpected         = M("error.unexpected", "Something unexpected went wrong: {{.detail}}")
	ErrNotRunning         = M("error.not_running", "The Lockstep service is not running, so nothing was changed. Try again in a moment; if this keeps happening, contact your IT department.")
	SyncNotNeeded         = M("sync.not_needed", "This Mac is already in sync with the directory. There is nothing to do.")

	HintSyncFirst        = M("hint.sync_first", "If your password was changed elsewhere, sync your Mac first.")
	HintSync             = M("hint.sync", "Nothing is lost: run Sync Password (`lockstep sync`) with your previous and new password to finish.")
	HintUnconfirmed      = M("hint.unconfirmed", "Lockstep checks with the directory when it is back; if the change went through, sync your Mac with the new password.")
	HintServiceAccount   = M("hint.service_account", "Ask IT to run `sudo lockstep service-account setup`, or enter your previous password.")
	HintLink             = M("hint.link", "Link it with your directory password: choose Link to Directory… in the Lockstep menu, or run `lockstep link`.")
	HintKeychainCurrent  = M("hint.keychain_current", "Run Sync Password (`lockstep sync`) and enter the keychain's older password as the previous one, or choose that you don't remember it.")
	HintKeychainPrevious = M("hint.keychain_previous", "Run Sync Password again and enter the keychain's password as the previous one, or choose that you don't remember it (the keychain is then moved aside, never deleted).")
	HintBothPolicies     = M("hint.both_policies", "Choose a password that meets both policies in the directory (or ask IT), then sync again.")
	HintSudo             = M("hint.sudo", "Run it with sudo.")
	HintUser             = M("hint.user", "Pass --user NAME.")
	HintTooMany          = M("hint.too_many", "Close other `lockstep watch` commands or Lockstep windows, then try again.")
	HintAdminToken       = M("hint.admin_token", "Use an admin listed by `sudo fdesetup list`.")
	HintUserMap          = M("hint.user_map", "Ask IT to check the user mapping (UserMap).")
	StepSetUp            = M("service.step_setup", "set up")
	StepRotate           = M("service.step_rotate", "rotate")
	StepRemove           = M("service.step_remove", "remove")
)
