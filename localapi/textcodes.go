package localapi

// Text codes lockstepd sends (see Texts for their parameters).
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

	// A place's state (Place.Text); a place an operation verified carries
	// that step's text.
	PlaceNotVerified = "place.not_verified"
	PlaceStillOld    = "place.still_old"
	PlaceDirVersion  = "place.directory_version" // version, set_at
	PlaceNoFileVault = "place.no_filevault"

	// What a step did (Step.Text). A failed step carries none: the
	// operation's Error says why.
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
