// Package codes is the vocabulary of what lockstepd tells a person, defined
// once for both ends of the local API: the codes of the texts it sends (why
// an account is in its state, what a step did, the doctor's findings) and
// of the errors it answers, each with the parameters it carries. lockstepd
// sends only these codes and parameters, never sentences; the app and the
// CLI say them in the user's language (ui/text, whose tests render every
// code in Texts and Errors with each of its parameter sets).
package codes

import "github.com/lockstep-dev/lockstep/protocol"

// Text codes.
const (
	// Why an account is in its state (Account.Reason).
	ReasonBusy             = "reason.busy"
	ReasonNotLinked        = "reason.not_linked"
	ReasonWaiting          = "reason.waiting"
	ReasonUnknownUser      = "reason.unknown_user" // user
	ReasonLocked           = "reason.locked"       // until (absent: until an admin unlocks it)
	ReasonResetTemporary   = "reason.reset_temporary"
	ReasonReset            = "reason.reset"
	ReasonChangedElsewhere = "reason.changed_elsewhere"
	ReasonInterrupted      = "reason.interrupted"
	ReasonStopped          = "reason.stopped" // error: the code that stopped it
	ReasonTemporary        = "reason.temporary"
	ReasonExpires          = "reason.expires" // days (0 today, negative expired)
	ReasonInSync           = "reason.in_sync"
	// ReasonMFAEnroll: an administrator reset the account's MFA with an
	// enrolment period; the user must set up an authenticator by until.
	ReasonMFAEnroll = "reason.mfa_enroll" // until

	// A place's state (Place.Text); a place an operation verified carries
	// that step's text.
	PlaceNotVerified = "place.not_verified"
	PlaceStillOld    = "place.still_old"
	PlaceDirVersion  = "place.directory_version" // version, set_at
	PlaceNoFileVault = "place.no_filevault"

	// What a step did (Step.Text). A failed step carries its error's code.
	StepValidated        = "step.validated"
	StepCurrentOK        = "step.current_ok"
	StepPreviousOK       = "step.previous_ok"
	StepLocalHoldsNew    = "step.local_holds_new"
	StepForgotten        = "step.forgotten"
	StepDirChanged       = "step.directory_changed" // version
	StepDirVerified      = "step.directory_verified"
	StepLocalChanged     = "step.local_changed"
	StepLocalReset       = "step.local_reset"
	StepLocalDone        = "step.local_done"
	StepKeychainRekeyed  = "step.keychain_rekeyed"
	StepKeychainCreated  = "step.keychain_created"
	StepKeychainMoved    = "step.keychain_moved" // path, local_items (comma-separated paths, may be absent)
	StepKeychainNone     = "step.keychain_none"
	StepKeychainDone     = "step.keychain_done"
	StepFileVaultKept    = "step.filevault_kept"
	StepFileVaultOff     = "step.filevault_off"
	StepFileVaultNotUser = "step.filevault_not_user"
	StepPrebootDone      = "step.preboot_done"
	StepPrebootNotNeeded = "step.preboot_not_needed"
	StepAckDone          = "step.ack_done"
	StepAckDeferred      = "step.ack_deferred"
	StepInterrupted      = "step.interrupted"

	// Operation notes.
	NoteKeychainKept = "note.keychain_kept" // path, local_items
	NoteTemporary    = "note.temporary"
	// TextLegacy is a sentence an older lockstepd journalled (text).
	TextLegacy = "legacy"

	// Doctor findings (Check.Text) and what to do (Check.Fix).
	DoctorOffline        = "doctor.offline"
	DoctorNotLinked      = "doctor.not_linked"
	DoctorSyncNeeded     = "doctor.sync_needed"  // reason (a reason code)
	DoctorDirectoryOK    = "doctor.directory_ok" // user, version, synced
	DoctorBusy           = "doctor.busy"
	DoctorNoLocalUser    = "doctor.no_local_account" // user
	DoctorLocalUnread    = "doctor.local_unread"     // detail
	DoctorLocalDisabled  = "doctor.local_disabled"
	DoctorLocalUnmanaged = "doctor.local_unmanaged" // kind, node
	DoctorLocalOK        = "doctor.local_ok"        // uid, home
	DoctorLocalOpens     = "doctor.local_opens"     // uid, home
	DoctorLocalWrong     = "doctor.local_wrong"
	DoctorFVUnread       = "doctor.filevault_unread" // detail
	DoctorFVOff          = "doctor.filevault_off"
	DoctorFVNotUser      = "doctor.filevault_not_user"
	DoctorFVNoToken      = "doctor.filevault_no_token"
	DoctorFVOK           = "doctor.filevault_ok"
	DoctorKCUnread       = "doctor.keychain_unread" // detail
	DoctorKCNone         = "doctor.keychain_none"
	DoctorKCWrong        = "doctor.keychain_wrong"
	DoctorKCOpens        = "doctor.keychain_opens"
	DoctorKCExists       = "doctor.keychain_exists"
	DoctorServiceReady   = "doctor.service_ready"
	DoctorServiceNone    = "doctor.service_none"
	DoctorServiceBroken  = "doctor.service_broken" // problem (a service.* code)

	FixCheckNetwork   = "fix.check_network"
	FixLink           = "fix.link"
	FixSync           = "fix.sync"
	FixWait           = "fix.wait"
	FixCheckName      = "fix.check_name"
	FixDiagnose       = "fix.diagnose"
	FixAskEnable      = "fix.ask_enable"
	FixAskIT          = "fix.ask_it" // kind
	FixGrantToken     = "fix.grant_token"
	FixSyncKeychain   = "fix.sync_keychain"
	FixServiceAccount = "fix.service_account"

	// Why the service account cannot reset a password (ServiceStatus.Problem).
	ServiceNotSetUp        = "service.not_set_up"
	ServiceNoToken         = "service.no_token"
	ServiceNotStored       = "service.not_stored"
	ServiceWrongPassword   = "service.wrong_password"
	ServiceRotationPending = "service.rotation_pending"
	ServiceUncheckable     = "service.uncheckable"
	ServiceNotUsable       = "service.not_usable"
)

// Why an operation failed or did not start (the local API's Error.Code).
// The directory's codes (protocol.Code*) pass through unchanged; Errors lists
// every code lockstepd sends with the parameters it carries.
const (
	Forbidden        = "forbidden"          // params: why (web_page, host, no_peer, no_account, other_account, root_only)
	BadRequest       = "bad_request"        // the request could not be read; Detail says how
	Missing          = "missing"            // Field is empty
	NameAccount      = "name_account"       // root must name the account to act on
	NoLocalUser      = "no_local_account"   // params: user
	NotBound         = "not_bound"          // the directory does not link this Mac to the user yet
	Busy             = "busy"               // another operation runs for the account
	SyncFirst        = "sync_first"         // the Mac must be synced before a change
	Keychain         = "keychain"           // the keychain does not open with the password given; params: which
	Interrupted      = "interrupted"        // lockstepd stopped during the operation
	Offline          = "offline"            // the directory is unreachable; params: when
	WrongLocal       = "wrong_local"        // the password does not open the Mac account; params: which
	MFAFormat        = "mfa_format"         // not a valid code (protocol.ValidTOTPCode)
	NotNeeded        = "not_needed"         // nothing to sync
	NoServiceAccount = "no_service_account" // the forgotten-password path needs the service account
	Throttled        = "throttled"          // lockstepd is protecting the account from lockout; RetryAfter
	TooMany          = "too_many"           // the caller holds too many connections or watch streams
	Platform         = "platform"           // a macOS tool failed; Detail is its own text
	Unmanaged        = "unmanaged_account"  // params: user, kind (disabled, mobile, network_home), node
	MacPolicy        = "mac_policy"         // this Mac's policy refuses the password; params: source (new, directory, refused)
	ServiceSetup     = "service_setup"      // params: step (setup, rotate, remove), why (admin_password, admin_token, failed)
	Unavailable      = "unavailable"        // lockstepd is not running (the client says so; never on the wire)
)

// Texts maps every text code lockstepd sends to the parameters it
// carries (some optional).
var Texts = map[string][]string{
	ReasonBusy: nil, ReasonNotLinked: nil, ReasonWaiting: nil, ReasonUnknownUser: {"user"},
	ReasonLocked: {"until"}, ReasonResetTemporary: nil, ReasonReset: nil, ReasonChangedElsewhere: nil,
	ReasonInterrupted: nil, ReasonStopped: {"error"}, ReasonTemporary: nil, ReasonExpires: {"days"}, ReasonInSync: nil,
	ReasonMFAEnroll: {"until"},

	PlaceNotVerified: nil, PlaceStillOld: nil, PlaceDirVersion: {"version", "set_at"}, PlaceNoFileVault: nil,

	StepValidated: nil, StepCurrentOK: nil, StepPreviousOK: nil, StepLocalHoldsNew: nil, StepForgotten: nil,
	StepDirChanged: {"version"}, StepDirVerified: nil, StepLocalChanged: nil, StepLocalReset: nil, StepLocalDone: nil,
	StepKeychainRekeyed: nil, StepKeychainCreated: nil, StepKeychainMoved: {"path", "local_items"}, StepKeychainNone: nil,
	StepKeychainDone: nil, StepFileVaultKept: nil, StepFileVaultOff: nil, StepFileVaultNotUser: nil,
	StepPrebootDone: nil, StepPrebootNotNeeded: nil, StepAckDone: nil, StepAckDeferred: nil, StepInterrupted: nil,

	NoteKeychainKept: {"path", "local_items"}, NoteTemporary: nil, TextLegacy: {"text"},

	DoctorOffline: nil, DoctorNotLinked: nil, DoctorSyncNeeded: {"reason"}, DoctorDirectoryOK: {"user", "version", "synced"},
	DoctorBusy: nil, DoctorNoLocalUser: {"user"}, DoctorLocalUnread: {"detail"}, DoctorLocalDisabled: nil,
	DoctorLocalUnmanaged: {"kind", "node"}, DoctorLocalOK: {"uid", "home"}, DoctorLocalOpens: {"uid", "home"},
	DoctorLocalWrong: nil, DoctorFVUnread: {"detail"}, DoctorFVOff: nil, DoctorFVNotUser: nil, DoctorFVNoToken: nil,
	DoctorFVOK: nil, DoctorKCUnread: {"detail"}, DoctorKCNone: nil, DoctorKCWrong: nil, DoctorKCOpens: nil,
	DoctorKCExists: nil, DoctorServiceReady: nil, DoctorServiceNone: nil, DoctorServiceBroken: {"problem"},

	FixCheckNetwork: nil, FixLink: nil, FixSync: nil, FixWait: nil, FixCheckName: nil, FixDiagnose: nil,
	FixAskEnable: nil, FixAskIT: {"kind"}, FixGrantToken: nil, FixSyncKeychain: nil, FixServiceAccount: nil,

	ServiceNotSetUp: nil, ServiceNoToken: nil, ServiceNotStored: nil, ServiceWrongPassword: nil,
	ServiceRotationPending: nil, ServiceUncheckable: nil, ServiceNotUsable: nil,
}

// Errors maps every error code lockstepd sends (its own and the
// directory's it passes on) to the parameters it carries.
var Errors = map[string][]string{
	Forbidden: {"why", "uid", "user"}, BadRequest: nil, Missing: nil, NameAccount: nil,
	NoLocalUser: {"user"}, NotBound: nil, Busy: nil, SyncFirst: nil, Keychain: {"which"},
	Interrupted: nil, Offline: {"when"}, WrongLocal: {"which"}, MFAFormat: nil, NotNeeded: nil,
	NoServiceAccount: nil, Throttled: nil, TooMany: nil, Platform: nil,
	Unmanaged: {"user", "kind", "node"}, MacPolicy: {"source"}, ServiceSetup: {"step", "why"},
	protocol.CodeWrongPassword: nil, protocol.CodeMFARequired: nil, protocol.CodeMFAInvalid: nil,
	protocol.CodeMFAReplayed: nil, protocol.CodePolicyViolation: nil, protocol.CodeLocked: nil,
	protocol.CodeRateLimited: nil, protocol.CodeUnknownUser: nil, protocol.CodeInternal: nil,
	protocol.CodeUnsupported: nil, protocol.CodeUnauthorized: nil, protocol.CodeIdempotencyReuse: nil,
	protocol.CodeDisabled: nil, protocol.CodeMFAEnrollmentExpired: nil, protocol.CodeMFANotEnrolling: nil,
}
