package text

import (
	"strconv"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// What lockstepd's codes say (codes.Texts and codes.Errors list them
// with their parameters; the tests render every one).

// Why an account is in its state.
var (
	ReasonBusy             = M("reason.busy", "A password operation is running.")
	ReasonNotLinked        = M("reason.not_linked", "This Mac is not linked to your directory account yet. Link it with your directory password.")
	ReasonWaiting          = M("reason.waiting", "Waiting for the directory.")
	ReasonUnknownUser      = M("reason.unknown_user", "The directory has no user {{.user}}. Ask IT to add you, or to map this account to your directory user.")
	ReasonLocked           = M("reason.locked", "Your directory account is locked.")
	ReasonLockedUntil      = M("reason.locked_until", "Your directory account is locked until {{.until}}.")
	ReasonResetTemporary   = M("reason.reset_temporary", "An administrator gave you a temporary password. Sync your Mac with it, then choose a new password.")
	ReasonReset            = M("reason.reset", "Your password was reset in the directory. Sync your Mac with the new password.")
	ReasonChangedElsewhere = M("reason.changed_elsewhere", "Your directory password was changed elsewhere. Sync your Mac with it.")
	ReasonInterrupted      = M("reason.interrupted", "A password operation was interrupted. Sync your Mac to finish it.")
	ReasonStopped          = M("reason.stopped", "The last password operation stopped part-way: {{.why}}")
	ReasonTemporary        = M("reason.temporary", "You are using a temporary password. Choose a new one.")
	ReasonExpires          = PM("reason.expires", "Your password expires tomorrow.", "Your password expires in {{.N}} days.")
	ReasonExpiresToday     = M("reason.expires_today", "Your password expires today.")
	ReasonExpired          = M("reason.expired", "Your password has expired. Change it now.")
	ReasonInSync           = M("reason.in_sync", "Every place uses your directory password.")
)

// Places.
var (
	PlaceNotVerified = M("place.not_verified", "It is checked at the next change or sync.")
	PlaceStillOld    = M("place.still_old", "Still uses your previous password.")
	PlaceDirVersion  = M("place.directory_version", "Password version {{.version}}, set {{.set_at}}.")
	PlaceNoFileVault = M("place.no_filevault", "This account does not unlock FileVault.")
)

// What each step did.
var (
	StepValidated        = M("step.validated", "The new password meets the policy.")
	StepCurrentOK        = M("step.current_ok", "Your current password opens the Mac account and the keychain.")
	StepPreviousOK       = M("step.previous_ok", "Your previous password opens the Mac account and the keychain.")
	StepLocalHoldsNew    = M("step.local_holds_new", "The Mac account already takes the new password.")
	StepForgotten        = M("step.forgotten", "Previous password forgotten: the service account resets the Mac account.")
	StepDirChanged       = M("step.directory_changed", "The directory holds the new password (version {{.version}}).")
	StepDirVerified      = M("step.directory_verified", "The directory accepted the new password.")
	StepLocalChanged     = M("step.local_changed", "The Mac account opens with the new password (changed with the previous password, which keeps the SecureToken).")
	StepLocalReset       = M("step.local_reset", "The Mac account opens with the new password (reset by the Lockstep service account, which keeps the SecureToken).")
	StepLocalDone        = M("step.local_done", "The Mac account already uses the new password.")
	StepKeychainRekeyed  = M("step.keychain_rekeyed", "The login keychain opens with the new password; its items are kept.")
	StepKeychainCreated  = M("step.keychain_created", "A new login keychain opens with the new password.")
	StepKeychainMoved    = M("step.keychain_moved", "A new login keychain opens with the new password; the old one was moved to {{.path}}.")
	StepKeychainMovedLI  = M("step.keychain_moved_local_items", "A new login keychain opens with the new password; the old one was moved to {{.path}}, and its Local Items to {{.local_items}}.")
	StepKeychainNone     = M("step.keychain_none", "No login keychain yet: macOS makes one at the next login with the new password.")
	StepKeychainDone     = M("step.keychain_done", "The login keychain already opens with the new password.")
	StepFileVaultKept    = M("step.filevault_kept", "SecureToken kept: FileVault unlocks with the new password.")
	StepFileVaultOff     = M("step.filevault_off", "FileVault is off.")
	StepFileVaultNotUser = M("step.filevault_not_user", "Not a FileVault user: this account does not unlock the disk.")
	StepPrebootDone      = M("step.preboot_done", "The Preboot volume was refreshed.")
	StepPrebootNotNeeded = M("step.preboot_not_needed", "Not needed without FileVault.")
	StepAckDone          = M("step.ack_done", "The directory knows this Mac is in sync.")
	StepAckDeferred      = M("step.ack_deferred", "The Mac is in sync; the directory is told when it is reachable.")
	StepInterrupted      = M("step.interrupted", "Interrupted: lockstepd stopped during this step.")
)

// Notes after an operation.
var (
	NoteKeychainKept   = M("note.keychain_kept", "Your old login keychain was kept at {{.path}}. It still opens with your previous password: if you remember it later, choose Recover Old Keychain… in the Lockstep menu.")
	NoteKeychainKeptLI = M("note.keychain_kept_local_items", "Your old login keychain was kept at {{.path}}, and its Local Items at {{.local_items}}. They still open with your previous password: if you remember it later, choose Recover Old Keychain… in the Lockstep menu.")
	NoteTemporary      = M("note.temporary", "Your new password is temporary: choose a permanent one now.")
)

// The doctor's findings and what to do.
var (
	DoctorOffline        = M("doctor.offline", "The directory is not reachable.")
	DoctorNotLinked      = M("doctor.not_linked", "This Mac is not linked to your directory account yet.")
	DoctorSyncNeeded     = M("doctor.sync_needed", "A sync is needed: {{.reason}}")
	DoctorDirectoryOK    = M("doctor.directory_ok", "Directory user {{.user}}, password version {{.version}}; this Mac holds version {{.synced}}.")
	DoctorBusy           = M("doctor.busy", "An operation is running right now.")
	DoctorNoLocalUser    = M("doctor.no_local_account", "There is no local account named {{.user}}.")
	DoctorLocalUnread    = M("doctor.local_unread", "Could not read the account: {{.detail}}")
	DoctorLocalDisabled  = M("doctor.local_disabled", "The account is disabled.")
	DoctorLocalMobile    = M("doctor.local_mobile", "This is a mobile account from {{.node}}, which owns its password; Lockstep leaves it alone.")
	DoctorLocalNetwork   = M("doctor.local_network_home", "Its home folder is on a network server; Lockstep leaves it alone.")
	DoctorLocalOK        = M("doctor.local_ok", "uid {{.uid}}, home {{.home}}.")
	DoctorLocalOpens     = M("doctor.local_opens", "The password opens the Mac account; uid {{.uid}}, home {{.home}}.")
	DoctorLocalWrong     = M("doctor.local_wrong", "The password does not open the Mac account.")
	DoctorFVUnread       = M("doctor.filevault_unread", "Could not read FileVault's state: {{.detail}}")
	DoctorFVOff          = M("doctor.filevault_off", "FileVault is off.")
	DoctorFVNotUser      = M("doctor.filevault_not_user", "FileVault is on; this account does not unlock it.")
	DoctorFVNoToken      = M("doctor.filevault_no_token", "This FileVault user has no working SecureToken, so FileVault may ask for an old password.")
	DoctorFVOK           = M("doctor.filevault_ok", "FileVault is on and this account holds a SecureToken.")
	DoctorKCUnread       = M("doctor.keychain_unread", "Could not check the login keychain: {{.detail}}")
	DoctorKCNone         = M("doctor.keychain_none", "No login keychain yet; macOS creates one at the next login.")
	DoctorKCWrong        = M("doctor.keychain_wrong", "The login keychain does not open with this password.")
	DoctorKCOpens        = M("doctor.keychain_opens", "The login keychain opens with this password.")
	DoctorKCExists       = M("doctor.keychain_exists", "The login keychain exists (give --password to check that it opens).")
	DoctorServiceReady   = M("doctor.service_ready", "Service account: ready; a forgotten previous password can be reset.")
	DoctorServiceNone    = M("doctor.service_none", "Service account: not set up, so a forgotten previous password cannot be recovered on this Mac (IT: `sudo lockstep service-account setup`).")
	DoctorServiceBroken  = M("doctor.service_broken", "Service account: {{.problem}}")
	FixCheckNetwork      = M("fix.check_network", "Check the network; `lockstep status` shows the last connection error.")
	FixLink              = M("fix.link", "Link it with `lockstep link` (or Link to Directory… in the menu), with your directory password.")
	FixSync              = M("fix.sync", "Run `lockstep sync` with your previous Mac password and your directory password.")
	FixWait              = M("fix.wait", "Wait for it to finish, then run the doctor again.")
	FixCheckName         = M("fix.check_name", "Check the name.")
	FixDiagnose          = M("fix.diagnose", "Run `lockstep diagnose` and send the bundle to IT.")
	FixAskEnable         = M("fix.ask_enable", "Ask IT to enable it.")
	FixAskITMobile       = M("fix.ask_it_mobile", "IT: change this password in its directory, or convert the account to a local one.")
	FixAskITNetwork      = M("fix.ask_it_network_home", "IT: give the account a local home folder.")
	FixGrantToken        = M("fix.grant_token", "Ask IT to grant a SecureToken (sysadminctl -secureTokenOn) and then run `lockstep sync`.")
	FixSyncKeychain      = M("fix.sync_keychain", "Run `lockstep sync` and give the keychain's older password as the previous one, or `lockstep sync --forgot-previous` to move it aside.")
	FixServiceAccount    = M("fix.service_account", "IT can repair it with `sudo lockstep service-account setup` (or `rotate` when only its password is wrong).")
	ServiceNotSetUp      = M("service.not_set_up", "not set up.")
	ServiceNoToken       = M("service.no_token", "present but without a SecureToken.")
	ServiceNotStored     = M("service.not_stored", "its password is not in the secret store.")
	ServiceWrongPassword = M("service.wrong_password", "its stored password does not work.")
	ServiceRotation      = M("service.rotation_pending", "a password rotation awaits confirmation.")
	ServiceUncheckable   = M("service.uncheckable", "it could not be checked.")
	ServiceNotUsable     = M("service.not_usable", "present but not usable.")
	ServiceReady         = M("service.ready", "ready; a forgotten previous password can be reset.")
	LegacyText           = M("legacy", "{{.text}}")
)

// Render says a Text.
func Render(t localapi.Text) string {
	p := t.Params
	d := map[string]any{}
	for k, v := range p {
		d[k] = v
	}
	// Times are shown where the user is.
	for _, k := range []string{"until", "set_at"} {
		if v, ok := p[k]; ok {
			if at, err := time.Parse(time.RFC3339, v); err == nil {
				d[k] = Clock(at)
			}
		}
	}
	switch t.Code {
	case codes.ReasonLocked:
		if p["until"] != "" {
			return ReasonLockedUntil.S(d)
		}
		return ReasonLocked.S()
	case codes.ReasonStopped:
		return ReasonStopped.S(map[string]any{"why": Problem(&localapi.Error{Code: p["error"]}, "").Text})
	case codes.ReasonExpires:
		n, _ := strconv.Atoi(p["days"])
		switch {
		case n < 0:
			return ReasonExpired.S()
		case n == 0:
			return ReasonExpiresToday.S()
		}
		return ReasonExpires.N(n)
	case codes.StepKeychainMoved:
		if p["local_items"] != "" {
			d["local_items"] = strings.ReplaceAll(p["local_items"], ",", ", ")
			return StepKeychainMovedLI.S(d)
		}
	case codes.NoteKeychainKept:
		if p["local_items"] != "" {
			d["local_items"] = strings.ReplaceAll(p["local_items"], ",", ", ")
			return NoteKeychainKeptLI.S(d)
		}
	case codes.NoteKeychainRecovered:
		if p["local_items"] != "" {
			d["local_items"] = strings.ReplaceAll(p["local_items"], ",", ", ")
			return NoteRecoveredLI.S(d)
		}
	case codes.DoctorSyncNeeded:
		d["reason"] = Render(localapi.Text{Code: p["reason"]})
	case codes.DoctorServiceBroken:
		d["problem"] = Render(localapi.Text{Code: p["problem"]})
	case codes.DoctorLocalUnmanaged:
		switch p["kind"] {
		case "mobile":
			if p["node"] == "" {
				d["node"] = NetworkDirectory.S()
			}
			return DoctorLocalMobile.S(d)
		case "network_home":
			return DoctorLocalNetwork.S(d)
		}
		return DoctorLocalDisabled.S()
	case codes.FixAskIT:
		if p["kind"] == "network_home" {
			return FixAskITNetwork.S()
		}
		if p["kind"] == "disabled" {
			return FixAskEnable.S()
		}
		return FixAskITMobile.S()
	}
	if m, ok := byCode[t.Code]; ok {
		return m.S(d)
	}
	return Unknown.S(map[string]any{"code": t.Code})
}

// NetworkDirectory names a directory a mobile account came from when the
// Mac does not say which.
var NetworkDirectory = M("unmanaged.network_directory", "a network directory")

// Unknown is what a code this app does not know says (a newer lockstepd).
var Unknown = M("unknown_code", "Lockstep reports “{{.code}}”.")

// byCode maps the codes whose words need no choosing to their message.
var byCode = map[string]Message{
	codes.ReasonBusy: ReasonBusy, codes.ReasonNotLinked: ReasonNotLinked, codes.ReasonWaiting: ReasonWaiting,
	codes.ReasonUnknownUser: ReasonUnknownUser, codes.ReasonResetTemporary: ReasonResetTemporary,
	codes.ReasonReset: ReasonReset, codes.ReasonChangedElsewhere: ReasonChangedElsewhere,
	codes.ReasonInterrupted: ReasonInterrupted, codes.ReasonTemporary: ReasonTemporary, codes.ReasonInSync: ReasonInSync,
	codes.ReasonMFAEnroll:  ReasonEnroll,
	codes.PlaceNotVerified: PlaceNotVerified, codes.PlaceStillOld: PlaceStillOld, codes.PlaceDirVersion: PlaceDirVersion,
	codes.PlaceNoFileVault: PlaceNoFileVault,
	codes.StepValidated:    StepValidated, codes.StepCurrentOK: StepCurrentOK, codes.StepPreviousOK: StepPreviousOK,
	codes.StepLocalHoldsNew: StepLocalHoldsNew, codes.StepForgotten: StepForgotten, codes.StepDirChanged: StepDirChanged,
	codes.StepDirVerified: StepDirVerified, codes.StepLocalChanged: StepLocalChanged, codes.StepLocalReset: StepLocalReset,
	codes.StepLocalDone: StepLocalDone, codes.StepKeychainRekeyed: StepKeychainRekeyed, codes.StepKeychainCreated: StepKeychainCreated,
	codes.StepKeychainMoved: StepKeychainMoved, codes.StepKeychainNone: StepKeychainNone, codes.StepKeychainDone: StepKeychainDone,
	codes.StepFileVaultKept: StepFileVaultKept, codes.StepFileVaultOff: StepFileVaultOff, codes.StepFileVaultNotUser: StepFileVaultNotUser,
	codes.StepPrebootDone: StepPrebootDone, codes.StepPrebootNotNeeded: StepPrebootNotNeeded, codes.StepAckDone: StepAckDone,
	codes.StepAckDeferred: StepAckDeferred, codes.StepInterrupted: StepInterrupted,
	codes.NoteKeychainKept: NoteKeychainKept, codes.NoteTemporary: NoteTemporary, codes.TextLegacy: LegacyText,
	codes.DoctorOffline: DoctorOffline, codes.DoctorNotLinked: DoctorNotLinked, codes.DoctorSyncNeeded: DoctorSyncNeeded,
	codes.DoctorDirectoryOK: DoctorDirectoryOK, codes.DoctorBusy: DoctorBusy, codes.DoctorNoLocalUser: DoctorNoLocalUser,
	codes.DoctorLocalUnread: DoctorLocalUnread, codes.DoctorLocalDisabled: DoctorLocalDisabled, codes.DoctorLocalOK: DoctorLocalOK,
	codes.DoctorLocalOpens: DoctorLocalOpens, codes.DoctorLocalWrong: DoctorLocalWrong, codes.DoctorFVUnread: DoctorFVUnread,
	codes.DoctorFVOff: DoctorFVOff, codes.DoctorFVNotUser: DoctorFVNotUser, codes.DoctorFVNoToken: DoctorFVNoToken,
	codes.DoctorFVOK: DoctorFVOK, codes.DoctorKCUnread: DoctorKCUnread, codes.DoctorKCNone: DoctorKCNone,
	codes.DoctorKCWrong: DoctorKCWrong, codes.DoctorKCOpens: DoctorKCOpens, codes.DoctorKCExists: DoctorKCExists,
	codes.DoctorServiceReady: DoctorServiceReady, codes.DoctorServiceNone: DoctorServiceNone, codes.DoctorServiceBroken: DoctorServiceBroken,
	codes.FixCheckNetwork: FixCheckNetwork, codes.FixLink: FixLink, codes.FixSync: FixSync, codes.FixWait: FixWait,
	codes.FixCheckName: FixCheckName, codes.FixDiagnose: FixDiagnose, codes.FixAskEnable: FixAskEnable,
	codes.FixGrantToken: FixGrantToken, codes.FixSyncKeychain: FixSyncKeychain, codes.FixServiceAccount: FixServiceAccount,
	codes.ServiceNotSetUp: ServiceNotSetUp, codes.ServiceNoToken: ServiceNoToken, codes.ServiceNotStored: ServiceNotStored,
	codes.ServiceWrongPassword: ServiceWrongPassword, codes.ServiceRotationPending: ServiceRotation,
	codes.ServiceUncheckable: ServiceUncheckable, codes.ServiceNotUsable: ServiceNotUsable,
}

// RuleText says a password rule of the directory's policy p, marked as
// Lockstep's when it is Lockstep's own on top of the directory's.
func RuleText(code string, p protocol.Policy) string {
	said := ruleText(code, p)
	if p.IsLockstep(code) {
		return RuleLockstep.S(map[string]any{"Rule": said})
	}
	return said
}

func ruleText(code string, p protocol.Policy) string {
	switch code {
	case protocol.RuleMinLength:
		return RuleMinLength.N(p.MinLength)
	case protocol.RuleMaxLength:
		return RuleMaxLength.S(map[string]any{"N": protocol.MaxPasswordBytes})
	case protocol.RuleUpper:
		return RuleUpper.S()
	case protocol.RuleLower:
		return RuleLower.S()
	case protocol.RuleDigit:
		return RuleDigit.S()
	case protocol.RuleSymbol:
		return RuleSymbol.S()
	case protocol.RuleNotUsername:
		return RuleNotUsername.S()
	case protocol.RulePrintable:
		return RulePrintable.S()
	case protocol.RuleHistory:
		if p.HistoryCount <= 1 {
			return RuleNotCurrent.S()
		}
		return RuleHistory.N(p.HistoryCount)
	case protocol.RuleCategories:
		return RuleCategories.N(p.MinCategories)
	case protocol.RuleNotNameParts:
		return RuleNotNameParts.S()
	case protocol.RuleMinAge:
		return RuleMinAge.N(p.MinAgeDays)
	}
	return Unknown.S(map[string]any{"code": code})
}

// ViolationText says an unmet rule: a directory rule in this catalogue's
// words, a Mac rule in the Mac's own (its message).
func ViolationText(v protocol.Violation, p protocol.Policy) string {
	if v.Code == protocol.RuleMacPolicy {
		return v.Message
	}
	return RuleText(v.Code, p)
}

// The directory's password rules.
var (
	RuleMinLength    = PM("rule.min_length", "At least {{.N}} character", "At least {{.N}} characters")
	RuleMaxLength    = M("rule.max_length", "At most {{.N}} bytes")
	RuleUpper        = M("rule.upper", "An uppercase letter")
	RuleLower        = M("rule.lower", "A lowercase letter")
	RuleDigit        = M("rule.digit", "A number")
	RuleSymbol       = M("rule.symbol", "A symbol such as ! or #")
	RuleNotUsername  = M("rule.not_username", "Does not contain your user name")
	RulePrintable    = M("rule.printable", "No line breaks or control characters")
	RuleHistory      = PM("rule.history", "Not your current password", "Not one of your last {{.N}} passwords")
	RuleNotCurrent   = M("rule.not_current", "Not your current password")
	RuleCategories   = PM("rule.categories", "Characters of {{.N}} kind: uppercase, lowercase, number, symbol, other letter", "Characters of {{.N}} kinds: uppercase, lowercase, number, symbol, other letter")
	RuleNotNameParts = M("rule.not_name_parts", "Does not contain a part of your name")
	RuleMinAge       = PM("rule.min_age", "At least {{.N}} day since the last change", "At least {{.N}} days since the last change")
	// RuleLockstep marks a rule Lockstep adds on top of the directory's
	// own policy (an OpenLDAP directory has no character classes).
	RuleLockstep = M("rule.lockstep", "{{.Rule}} — Lockstep's rule, on top of the directory's")
)
