//go:build cgo || !darwin

package ui

import (
	"embed"
	"strings"

	"fyne.io/fyne/v2/lang"
)

// Every string a user can see is in this file. Each has a stable ID for
// translators and its English text, which is a text/template over the
// data given at the call. A translation is a JSON file in translations/
// named after its locale (de.json, fr.json...) that maps IDs to text, in
// go-i18n's format;
// translations/en.json is generated from this file by the tests
// (go test ./ui -run TestCatalog -update) so translators have a template.

//go:embed translations
var translations embed.FS

// msg is one user-visible string.
type msg struct{ id, en string }

// catalog lists every string, for the translation template.
var catalog []any

func m(id, en string) msg {
	v := msg{id, en}
	catalog = append(catalog, v)
	return v
}

func pm(id, one, other string) pmsg {
	v := pmsg{id, one, other}
	catalog = append(catalog, v)
	return v
}

// S renders the string in the user's language.
func (m msg) S(data ...any) string { return lang.X(m.id, m.en, data...) }

// pmsg is a string whose form depends on a count (.N in the template): its
// translations are two messages, ID.one and ID.other.
type pmsg struct{ id, one, other string }

// N renders the form for n.
func (p pmsg) N(n int, data ...map[string]any) string {
	d := map[string]any{"N": n}
	for _, m := range data {
		for k, v := range m {
			d[k] = v
		}
	}
	// go-i18n's plural rules fail (and log) when a message has no
	// translation for the count's form; two plain messages do not.
	if n == 1 {
		return lang.X(p.id+".one", p.one, d)
	}
	return lang.X(p.id+".other", p.other, d)
}

// Tray menu.
var (
	trayTitle           = m("tray.title", "Lockstep")
	trayChange          = m("tray.change", "Change Password…")
	traySync            = m("tray.sync", "Sync Password…")
	trayLink            = m("tray.link", "Link to Directory…")
	trayStatus          = m("tray.status", "Status…")
	trayAbout           = m("tray.about", "About Lockstep")
	trayQuit            = m("tray.quit", "Quit Lockstep")
	lineNotRunning      = m("line.not_running", "Lockstep service not running")
	lineConnecting      = m("line.connecting", "Connecting to the Lockstep service…")
	lineInSync          = m("line.in_sync", "Password in sync")
	lineExpires         = pm("line.expires", "Password expires in {{.N}} day", "Password expires in {{.N}} days")
	lineExpiresToday    = m("line.expires_today", "Password expires today")
	lineExpired         = m("line.expired", "Password expired")
	lineSyncNeeded      = m("line.sync_needed", "Sync needed: {{.Reason}}")
	lineSyncNeededPlain = m("line.sync_needed_plain", "Sync needed")
	lineTemporary       = m("line.temporary", "Temporary password: choose a new one")
	lineLocked          = m("line.locked", "Account locked until {{.Until}}")
	lineLockedPlain     = m("line.locked_plain", "Account locked")
	lineBusy            = m("line.busy", "Updating your password…")
	lineUnknown         = m("line.unknown", "Password state not checked yet")
	lineOffline         = m("line.offline", "Directory offline since {{.Since}}")
	lineConnectingDir   = m("line.connecting_dir", "Connecting to the directory…")
	lineNotEnrolled     = m("line.not_enrolled", "This Mac is not enrolled with the directory")
	lineNotBound        = m("line.not_bound", "This account is not linked to the directory")
)

// Shared window text.
var (
	btnCancel     = m("button.cancel", "Cancel")
	btnClose      = m("button.close", "Close")
	btnDone       = m("button.done", "Done")
	btnSave       = m("button.save", "Change Password")
	btnSync       = m("button.sync", "Sync Password")
	btnRefresh    = m("button.refresh", "Refresh")
	btnLink       = m("button.link", "Link")
	errNotRunning = m("error.not_running", "The Lockstep service is not running, so nothing was changed. Try again in a moment; if this keeps happening, contact your IT department.")
	forAccount    = m("window.for_account", "Account: {{.Name}} ({{.User}})")
)

// Change Password window.
var (
	changeTitle       = m("change.title", "Change Password")
	changeHeading     = m("change.heading", "Change your password")
	changeIntro       = m("change.intro", "Your new password is saved in the directory, then on this Mac: your account, login keychain and FileVault.")
	changeTempNote    = m("change.temporary_note", "Your administrator gave you a temporary password. It is now on this Mac and filled in below as your current password. Choose a permanent password now.")
	labelCurrent      = m("change.current", "Current password")
	labelNew          = m("change.new", "New password")
	labelConfirm      = m("change.confirm", "Confirm new password")
	labelCode         = m("change.code", "Verification code")
	codeHelp          = m("change.code_help", "The 6-digit code from your authenticator app.")
	rulesHeading      = m("change.rules", "Your new password needs:")
	rulesLoading      = m("change.rules_loading", "Getting the directory's password rules…")
	rulesUnavailable  = m("change.rules_unavailable", "The directory's password rules could not be fetched: {{.Err}}")
	ruleOnSave        = m("change.rule_on_save", "{{.Rule}} (checked when you save)")
	macRulesHeading   = m("change.mac_rules", "This Mac also requires:")
	confirmMatch      = m("change.confirm_match", "The passwords match")
	confirmMismatch   = m("change.confirm_mismatch", "The passwords do not match")
	codeInvalidFormat = m("change.code_format", "Enter the 6 digits shown in your authenticator app")
	changeRunning     = m("change.running", "Changing your password…")
	changeDone        = m("change.done", "Your password was changed")
	changeDoneIntro   = m("change.done_intro", "Use your new password from now on. It was updated in:")
)

// Sync Password window.
var (
	syncTitle         = m("sync.title", "Sync Password")
	syncHeading       = m("sync.heading", "Sync your password to this Mac")
	syncWhyDefault    = m("sync.why_default", "Your password was changed in the directory, and this Mac still uses the old one.")
	syncIntro         = m("sync.intro", "Enter the password you used on this Mac until now, and the new password from the directory. Lockstep updates your Mac account, login keychain and FileVault.")
	labelPrevious     = m("sync.previous", "Previous Mac password")
	labelDirNew       = m("sync.new", "New directory password")
	checkForgot       = m("sync.forgot", "I don't remember my previous password")
	forgotWarning     = m("sync.forgot_warning", "Without your previous password your login keychain cannot be opened. Lockstep will set your Mac account and FileVault to the new password, move your old login keychain aside (it is never deleted) and make a new, empty one. Passwords saved in the old keychain stay in it, and you can open it later if you remember the previous password.")
	forgotUnavailable = m("sync.forgot_unavailable", "This Mac cannot be reset without your previous password. Contact your IT department for help.")
	syncRunning       = m("sync.running", "Syncing your password…")
	syncDone          = m("sync.done", "Your password is in sync")
	syncDoneIntro     = m("sync.done_intro", "This Mac now uses your directory password. It was updated in:")
	syncNotNeeded     = m("sync.not_needed", "This Mac is already in sync with the directory. There is nothing to do.")
)

// Link to Directory window.
var (
	linkTitle     = m("link.title", "Link to Directory")
	linkHeading   = m("link.heading", "Link this Mac to your directory account")
	linkIntro     = m("link.intro", "The directory tells this Mac about your password only once you have shown it is yours. Enter your directory password. Nothing on this Mac is changed.")
	labelLinkPw   = m("link.password", "Directory password")
	linkRunning   = m("link.running", "Checking your password with the directory…")
	linkDone      = m("link.done", "This Mac is linked")
	linkDoneIntro = m("link.done_intro", "Lockstep now follows your directory account and tells you when your password needs something from you.")
)

// Status window.
var (
	statusTitle       = m("status.title", "Lockstep Status")
	statusHeading     = m("status.heading", "Password status")
	statusService     = m("status.service", "Lockstep service")
	statusRunning     = m("status.running", "Running (version {{.Version}})")
	statusNotRunning  = m("status.not_running", "Not running")
	statusStale       = m("status.stale", "The Lockstep service is not running, so what is shown here may be out of date. If this lasts, contact your IT department.")
	statusNoData      = m("status.no_data", "Not known while the service is not running")
	statusDirectory   = m("status.directory", "Directory")
	statusConnected   = m("status.connected", "Connected since {{.Since}}")
	statusConnecting  = m("status.connecting", "Connecting…")
	statusOffline     = m("status.offline", "Offline since {{.Since}}")
	statusOfflineErr  = m("status.offline_error", "Offline since {{.Since}}: {{.Err}}")
	statusNotEnrolled = m("status.not_enrolled", "This Mac is not enrolled")
	statusAccount     = m("status.account", "Account")
	statusPassword    = m("status.password", "Password")
	statusExpires     = m("status.expires", "Expires")
	statusNever       = m("status.never", "Never")
	statusExpiresIn   = pm("status.expires_in", "{{.Date}}, in {{.N}} day", "{{.Date}}, in {{.N}} days")
	statusExpiredOn   = m("status.expired_on", "{{.Date}}, expired")
	statusWho         = m("status.who", "{{.Name}} ({{.User}})")
	statusPlaces      = m("status.places", "Where your password lives")
	statusLastChange  = m("status.last_change", "Last changed {{.At}}")
	statusNoAccount   = m("status.no_account", "This account is not linked to a directory user.")
	statusLastOp      = m("status.last_op", "Last operation")
	statusNoOp        = m("status.no_op", "None yet")
	statusOpLine      = m("status.op_line", "{{.Kind}}, started {{.At}}: {{.State}}")
	statusUpdated     = m("status.updated", "Updated {{.At}}")
)

// Place names and states.
var (
	placeDirectory = m("place.directory", "Directory")
	placeLocal     = m("place.local", "Mac account")
	placeFileVault = m("place.filevault", "FileVault")
	placeKeychain  = m("place.keychain", "Login keychain")
	placeOK        = m("place.ok", "Up to date")
	placeBehind    = m("place.behind", "Behind: needs a sync")
	placeUnknown   = m("place.unknown", "Not checked yet")
	placeNA        = m("place.not_applicable", "Not used on this Mac")
)

// Account states, as the Status window names them.
var (
	stateBusy       = m("state.busy", "Being updated")
	stateNotLinked  = m("state.not_linked", "Not linked to the directory")
	stateLocked     = m("state.locked", "Locked in the directory")
	stateSyncNeeded = m("state.sync_needed", "This Mac needs a sync")
	stateTemporary  = m("state.temporary", "Temporary: choose a new password")
	stateExpiring   = m("state.expiring", "In sync, expires soon")
	stateInSync     = m("state.in_sync", "In sync everywhere")
	stateUnknown    = m("state.unknown", "Not checked yet")
)

// Operation kinds and states.
var (
	opChange     = m("op.change", "Password change")
	opSync       = m("op.sync", "Sync")
	opSyncForgot = m("op.sync_forgot", "Sync without the previous password")
	opRunning    = m("op.running", "running")
	opDone       = m("op.done", "finished")
	opFailed     = m("op.failed", "failed, nothing was changed")
	opSyncNeeded = m("op.sync_needed", "stopped part-way, a sync is needed")
)

// Steps of an operation.
var (
	stepValidate  = m("step.validate", "Check the new password")
	stepVerify    = m("step.verify_current", "Check your current password")
	stepVerifyOld = m("step.verify_previous", "Check your previous Mac password")
	stepDirectory = m("step.directory", "Directory")
	stepLocal     = m("step.local_account", "Mac account")
	stepKeychain  = m("step.keychain", "Login keychain")
	stepFileVault = m("step.filevault", "FileVault")
	stepPreboot   = m("step.preboot", "FileVault start-up screen")
	stepAck       = m("step.acknowledge", "Confirm with the directory")
	stepPending   = m("step.pending", "waiting")
	stepRunning   = m("step.running", "in progress")
	stepDoneS     = m("step.done", "done")
	stepSkipped   = m("step.skipped", "skipped")
	stepFailed    = m("step.failed", "failed")
	stepLine      = m("step.line", "{{.Step}}: {{.State}}")
	stepLineNote  = m("step.line_detail", "{{.Step}}: {{.State}} ({{.Detail}})")
)

// Errors, in plain words, by code.
var (
	errWrongCurrent  = m("error.wrong_current", "That is not your current password. Check it and try again.")
	errWrongPrevious = m("error.wrong_previous", "That is not the password this Mac used until now. Check it and try again.")
	errWrongDirNew   = m("error.wrong_dir_new", "That is not the password the directory now holds for you. Check it with your administrator's message.")
	errWrongLink     = m("error.wrong_link", "That is not your directory password. Check it and try again.")
	errMFAMissing    = m("error.mfa_required", "Enter the code from your authenticator app.")
	errMFAInvalid    = m("error.mfa_invalid", "That code is not right. Check that your phone's clock is correct and enter the current code.")
	errMFAReplayed   = m("error.mfa_replayed", "That code was already used. Wait for the next code and enter it.")
	errPolicy        = m("error.policy", "The directory did not accept the new password:")
	errLocked        = m("error.locked", "Your account is locked in the directory until {{.Until}}. Wait until then, or contact your IT department.")
	errLockedPlain   = m("error.locked_plain", "Your account is locked in the directory. Contact your IT department.")
	errOffline       = m("error.offline", "The directory cannot be reached, so nothing was changed. Check your network connection and try again.")
	errBusy          = m("error.busy", "Another password change is already running for your account. Wait for it to finish, then try again.")
	errThrottled     = m("error.throttled", "Too many attempts in a short time. To keep your account from being locked, wait {{.Seconds}} seconds before trying again.")
	errThrottledNoT  = m("error.throttled_plain", "Too many attempts in a short time. To keep your account from being locked, wait a minute before trying again.")
	errNoServiceAcct = m("error.no_service_account", "This Mac cannot be reset without your previous password. Contact your IT department for help.")
	errPartWay       = m("error.part_way", "The change stopped part-way. Your password is safe in the directory; choose Sync Password… in the Lockstep menu to finish.")
)

// Notifications.
var (
	noteResetTitle   = m("notify.reset_title", "Your password was reset")
	noteResetBody    = m("notify.reset_body", "An administrator changed your password. Choose Sync Password… in the Lockstep menu to update this Mac.")
	noteSyncedTitle  = m("notify.synced_title", "Password updated")
	noteSyncedBody   = m("notify.synced_body", "Your Mac account, login keychain and FileVault now use your directory password.")
	noteExpiryTitle  = pm("notify.expiry_title", "Your password expires in {{.N}} day", "Your password expires in {{.N}} days")
	noteExpiryToday  = m("notify.expiry_today", "Your password expires today")
	noteExpiryBody   = m("notify.expiry_body", "Choose Change Password… in the Lockstep menu to pick a new one.")
	noteLockedTitle  = m("notify.locked_title", "Your account is locked")
	noteLockedBody   = m("notify.locked_body", "Too many wrong passwords were tried. It unlocks at {{.Until}}, or contact your IT department.")
	noteLockedBodyNo = m("notify.locked_body_plain", "Too many wrong passwords were tried. Contact your IT department.")
)

// About window.
var (
	aboutTitle   = m("about.title", "About Lockstep")
	aboutName    = m("about.name", "Lockstep")
	aboutVersion = m("about.version", "Version {{.Version}}")
	aboutBlurb   = m("about.blurb", "Keeps your Mac account, login keychain and FileVault password in step with your organisation's directory.")
	aboutService = m("about.service", "Lockstep service: version {{.Version}}")
	aboutNoSvc   = m("about.no_service", "Lockstep service: not running")
)

// sentence turns a full sentence into a clause that can follow a colon:
// "Your password was reset." becomes "your password was reset".
func sentence(s string) string {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "."))
	r := []rune(s)
	if len(r) > 1 && r[0] >= 'A' && r[0] <= 'Z' && !(r[1] >= 'A' && r[1] <= 'Z') {
		r[0] += 'a' - 'A'
	}
	return string(r)
}

// preferredLanguages are the user's languages, best first, for texts that
// come with their own translations (the Mac's password rules).
func preferredLanguages() []string { return []string{string(lang.SystemLocale())} }
