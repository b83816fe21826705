package text

import (
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// Getting an old keychain back: the Recover Old Keychain… window, the
// `lockstep keychain` command, and what lockstepd's recovery says.

// InRecover is the recovery window's (and command's) boxes: the old
// keychain password and the current Mac password.
const InRecover = "recover"

// The window and the menu.
var (
	TrayRecover        = M("tray.recover", "Recover Old Keychain…")
	RecoverTitle       = M("recover.title", "Recover Old Keychain")
	RecoverHeading     = M("recover.heading", "Get your old keychain back")
	RecoverIntro       = M("recover.intro", "When your password was reset without your previous password, your old login keychain was kept aside with the passwords saved in it. Choose it, enter the password it had (your Mac password before the reset) and your current Mac password. Lockstep makes it open with your current password and puts it back in your keychain list. Nothing is deleted.")
	RecoverChoose      = M("recover.choose", "Kept keychain")
	RecoverItem        = M("recover.item", "Kept since {{.At}}")
	RecoverItemDone    = M("recover.item_done", "Kept since {{.At}}, already back")
	RecoverNone        = M("recover.none", "No old keychain is kept on this Mac, so there is nothing to recover.")
	RecoverLoading     = M("recover.loading", "Looking for kept keychains…")
	RecoverUnavailable = M("recover.unavailable", "The kept keychains could not be listed: {{.Err}}")
	LabelOld           = M("recover.old", "Old keychain password")
	LabelCurrentMac    = M("recover.current", "Current Mac password")
	BtnRecover         = M("button.recover", "Recover Keychain")
	RecoverRunning     = M("recover.running", "Recovering your keychain…")
	RecoverDone        = M("recover.done", "Your old keychain is back")
	RecoverDoneIntro   = M("recover.done_intro", "It opens with your current password, and apps find the passwords saved in it again.")
)

// What the recovery's steps did, and its notes.
var (
	StepKeptRekey         = M("step.kept_keychain", "Old keychain")
	StepSearchList        = M("step.search_list", "Keychain list")
	StepRecoverCurrentOK  = M("step.recover_current_ok", "Your current password is this Mac's.")
	StepKeptRekeyed       = M("step.kept_rekeyed", "{{.path}} opens with your current password; its items are kept.")
	StepKeptDone          = M("step.kept_done", "{{.path}} already opens with your current password.")
	StepSearchListAdded   = M("step.search_list_added", "{{.path}} is in your keychain list again, unlocked.")
	StepSearchListDone    = M("step.search_list_done", "{{.path}} was in your keychain list already; it is unlocked.")
	NoteKeychainRecovered = M("note.keychain_recovered", "Your old keychain {{.path}} is back in your keychain list. If macOS asks for its password after you next log in, it is your current password.")
	NoteRecoveredLI       = M("note.keychain_recovered_local_items", "Your old keychain {{.path}} is back in your keychain list. If macOS asks for its password after you next log in, it is your current password. Its Local Items stay kept at {{.local_items}}.")
	OpKeychainRecover     = M("op.keychain_recover", "Keychain recovery")
	OpIncomplete          = M("op.incomplete", "stopped part-way, run it again to finish")
)

// Why a recovery failed.
var (
	ErrKeychainOld      = M("error.keychain_old", "That is not the old keychain's password. Nothing was changed.")
	HintKeychainOld     = M("hint.keychain_old", "It is the password you used on this Mac before your password was reset.")
	ErrRecoverBehind    = M("error.recover_login_behind", "Your login keychain does not open with your current Mac password, so the old one would not match it.")
	HintRecoverBehind   = M("hint.recover_login_behind", "Sync your password first (Sync Password…, or `lockstep sync`), then recover the old keychain.")
	ErrNoKeptKeychain   = M("error.no_kept_keychain", "There is no kept keychain named {{.name}}.")
	HintKeptList        = M("hint.kept_list", "Run `lockstep keychain list` to see the kept keychains.")
	ErrMissingOld       = M("error.missing_old", "Enter the old keychain's password.")
	ErrRecoverPartWay   = M("error.recover_part_way", "The recovery stopped part-way. Nothing is lost: recover the same keychain again to finish.")
	HintRecoverAgain    = M("hint.recover_again", "Choose Recover Old Keychain… again (or run `lockstep keychain recover`) with the same keychain.")
	CLIRecoverNone      = M("cli.recover_none", "No old keychain is kept on this Mac.")
	CLIRecoverHeading   = M("cli.recover_heading", "Kept keychains:")
	CLIRecoverLine      = M("cli.recover_line", "{{.N}}. {{.Name}}, kept since {{.At}}")
	CLIRecoverLineDone  = M("cli.recover_line_done", "{{.N}}. {{.Name}}, kept since {{.At}} (already back)")
	CLIRecoverLocal     = M("cli.recover_local_items", "   its Local Items: {{.Paths}}")
	CLIRecoverWhich     = M("cli.recover_which", "Which keychain (1-{{.N}})? ")
	CLIRecoverBadChoice = M("cli.recover_bad_choice", "“{{.Choice}}” is not one of the kept keychains (1-{{.N}}); nothing was changed.")
	CLIRecoverChoice    = M("cli.recover_choice", "the keychain's number")
	CLIRecovered        = M("cli.recovered", "Done: your old keychain is back and opens with your current password.")
	CLIKeychainAction   = M("cli.keychain_action", "lockstep keychain: unknown action “{{.Action}}” (list, recover)")
)

func init() {
	for code, m := range map[string]Message{
		codes.StepRecoverCurrentOK: StepRecoverCurrentOK, codes.StepKeptRekeyed: StepKeptRekeyed,
		codes.StepKeptDone: StepKeptDone, codes.StepSearchListAdded: StepSearchListAdded,
		codes.StepSearchListDone: StepSearchListDone, codes.NoteKeychainRecovered: NoteKeychainRecovered,
	} {
		byCode[code] = m
	}
}

// KeptLine says when one kept keychain was kept, as the window lists it
// (its file name is shown under it).
func KeptLine(k localapi.KeptKeychain) string {
	d := map[string]any{"Name": k.Name, "At": Clock(k.KeptAt)}
	if k.Recovered {
		return RecoverItemDone.S(d)
	}
	return RecoverItem.S(d)
}

// CLIKeptLine says the n-th kept keychain as the command lists it.
func CLIKeptLine(n int, k localapi.KeptKeychain) string {
	d := map[string]any{"N": n, "Name": k.Name, "At": Clock(k.KeptAt)}
	if k.Recovered {
		return CLIRecoverLineDone.S(d)
	}
	return CLIRecoverLine.S(d)
}

// recoverProblem says the failures only a recovery has, and false for
// every other code.
func recoverProblem(e *localapi.Error, in string, t *Trouble) bool {
	p := e.Params
	switch {
	case e.Code == localapi.CodeKeychain && p["which"] == "old":
		t.Field = localapi.FieldOld
		t.Text, t.Hint = ErrKeychainOld.S(), HintKeychainOld.S()
	case e.Code == localapi.CodeKeychain && in == InRecover:
		t.Text, t.Hint = ErrRecoverBehind.S(), HintRecoverBehind.S()
	case e.Code == localapi.CodeNoKeptKeychain:
		t.Text, t.Hint = ErrNoKeptKeychain.S(map[string]any{"name": p["name"]}), HintKeptList.S()
	case e.Code == localapi.CodeInterrupted && in == InRecover:
		t.Text, t.Hint = ErrInterrupted.S(), HintRecoverAgain.S()
	default:
		return false
	}
	return true
}
