package text

// The lockstep command's own words; what it shares with the app (step,
// place and state names, errors, rules) comes from the same messages the
// windows use.
var (
	CLIUsage = M("cli.usage", `lockstep: keep your Mac password in step with your organisation's directory.

Usage:
  lockstep status [--json]                  where every place stands
  lockstep change [--stdin] [--user NAME]   change your password everywhere
  lockstep sync [--forgot-previous] [--stdin] [--user NAME]
                                            sync the Mac after a reset in the directory
  lockstep link [--stdin] [--user NAME]     link this Mac to your directory account (asks your directory password)
  lockstep mfa enroll [--stdin] [--user NAME]
                                            set up your authenticator app when your administrator asked you to
  lockstep policy [--json]                  the password rules
  lockstep watch [--json]                   follow state changes
  lockstep doctor [--password] [--json] [--user NAME]
                                            check each place and say how to fix it
  lockstep diagnose --out FILE              write a redacted support bundle
  lockstep service-account setup|status|rotate|remove [--admin NAME] [--stdin]
                                            (root) the account that resets forgotten passwords
  lockstep keychain list [--json] [--user NAME]
                                            the old keychains kept aside by a forgotten-password sync
  lockstep keychain recover [--keychain NAME] [--stdin] [--user NAME]
                                            get one back with its old password (asks which)
  lockstep version

Every command takes --socket PATH (default $LOCKSTEP_SOCKET or {{.Socket}}).
With --stdin, secrets are read one per line instead of prompted for:
  change: current, new, then the MFA code if the account has MFA
  sync:   previous, new (only new with --forgot-previous)
  link:   the directory password
  mfa enroll: the code from the authenticator app
  keychain recover: the keychain's number (unless --keychain names it), its old password, the current Mac password
`)
	CLIUnexpectedArg  = M("cli.unexpected_argument", "lockstep {{.Cmd}}: unexpected argument “{{.Arg}}”")
	CLIUnknownCommand = M("cli.unknown_command", "lockstep: unknown command “{{.Cmd}}”")
	CLIUnknownAction  = M("cli.unknown_action", "lockstep service-account: unknown action “{{.Action}}” (setup, status, rotate, remove)")
	CLIOutRequired    = M("cli.out_required", "lockstep diagnose: --out FILE is required")
	CLIAdminRequired  = M("cli.admin_required", "lockstep service-account setup: --admin NAME (an admin with a SecureToken) is required")
	FlagSocket        = M("cli.flag_socket", "lockstepd's socket")
	FlagJSON          = M("cli.flag_json", "print JSON (its messages in English)")
	FlagUser          = M("cli.flag_user", "act on this local account (root only)")
	FlagStdin         = M("cli.flag_stdin", "read secrets from standard input, one per line")
	FlagForgot        = M("cli.flag_forgot", "sync without the previous password (needs the service account)")
	FlagOut           = M("cli.flag_out", "output file")
	FlagAdmin         = M("cli.flag_admin", "a SecureToken admin's short name")
	FlagPassword      = M("cli.flag_password", "also check that your password opens each place")
	FlagKeychain      = M("cli.flag_keychain", "the kept keychain to recover, by its file name (lockstep keychain list)")
	FlagTheme         = M("menu.flag_theme", "appearance: system, light or dark")
	FlagVersion       = M("menu.flag_version", "print the version and exit")

	CLIStdinEnded  = M("cli.stdin_ended", "Standard input ended before the {{.What}}.")
	CLINoTerminal  = M("cli.no_terminal", "There is no terminal to ask for the password on: pass --stdin and give the secrets one per line.")
	CLIPrompt      = M("cli.prompt", "{{.Label}}: ")
	CLICheckLabel  = M("cli.check_password", "Password to check")
	CLIAdminLabel  = M("cli.admin_password", "Password of {{.Admin}}")
	CLIMismatch    = M("cli.mismatch", "The two new passwords do not match; nothing was changed.")
	CLIPolicyUnmet = M("cli.policy_unmet", "The new password does not meet the password policy; nothing was changed.")
	CLIWriteFailed = M("cli.write_failed", "Could not write {{.Path}}: {{.Err}}")
	CLIWrote       = M("cli.wrote", "Wrote {{.Path}} ({{.Bytes}} bytes). It holds no password; send it to IT.")

	CLIRowDirectory = M("cli.row_directory", "Directory")
	CLIRowAccount   = M("cli.row_account", "Account")
	CLIRowState     = M("cli.row_state", "State")
	CLIRowMFA       = M("cli.row_mfa", "MFA")
	CLIRowExpires   = M("cli.row_expires", "Expires")
	CLIRowLocked    = M("cli.row_locked", "Locked until")
	CLIRowLastOp    = M("cli.row_last_op", "Last operation")
	CLIRowService   = M("cli.row_service", "Service account")
	CLIOn           = M("cli.on", "on")
	CLIOff          = M("cli.off", "off")
	CLIAccountLine  = M("cli.account_line", "{{.Local}} → {{.Directory}}")
	CLIAccountNamed = M("cli.account_named", "{{.Local}} → {{.Directory}} ({{.Name}})")
	CLIStateLine    = M("cli.state_line", "{{.State}}: {{.Reason}}")
	CLIOpLine       = M("cli.op_line", "{{.Kind}}, started {{.At}}: {{.State}}")
	CLINoAccount    = M("cli.no_account", "No account is linked to the directory yet.")

	CLIDone           = M("cli.done", "Done: every place uses your new password.")
	CLITemporaryLater = M("cli.temporary_later", "Your password is temporary: run `lockstep change` now to choose a permanent one.")
	CLILinked         = M("cli.linked", "Linked: this Mac's account {{.Local}} now follows the directory account {{.Directory}}.")
	CLIRulesFor       = M("cli.rules_for", "Password rules for {{.User}}:")
	CLIExpireAfter    = PM("cli.expire_after", "Passwords expire after {{.N}} day.", "Passwords expire after {{.N}} days.")
	CLIMFANeeded      = M("cli.mfa_needed", "Changes need a code from your authenticator app.")
	CLIWatchStatus    = M("cli.watch_status", "{{.User}}: {{.State}} ({{.Connection}})")
	CLIWatchNotice    = M("cli.watch_notice", "{{.Title}}: {{.Body}}")
)

// Why `lockstep diagnose --out` will not replace a file that is there.
var (
	CLIUnsafeNotRegular   = M("cli.unsafe_not_regular", "{{.Path}} exists and is not a regular file ({{.Value}}); choose a new file name.")
	CLIUnsafeOwnerUnknown = M("cli.unsafe_owner_unknown", "{{.Path}} exists and its owner cannot be read; choose a new file name.")
	CLIUnsafeHardLinks    = M("cli.unsafe_hard_links", "{{.Path}} exists and has {{.Value}} hard links; choose a new file name.")
	CLIUnsafeNotYours     = M("cli.unsafe_not_yours", "{{.Path}} exists and belongs to uid {{.Value}}, not to you; choose a new file name.")
)

// CLIUnsafeFile says why path was not replaced (why: not_regular,
// owner_unknown, hard_links, not_yours; value: the type, link count or
// owner).
func CLIUnsafeFile(path, why, value string) string {
	d := map[string]any{"Path": path, "Value": value}
	switch why {
	case "not_regular":
		return CLIUnsafeNotRegular.S(d)
	case "hard_links":
		return CLIUnsafeHardLinks.S(d)
	case "not_yours":
		return CLIUnsafeNotYours.S(d)
	}
	return CLIUnsafeOwnerUnknown.S(d)
}
