package codes

// Getting a kept keychain back (lockstep keychain recover, the menu's
// Recover Old Keychain…): what its steps did and why one did not start.
const (
	StepRecoverCurrentOK  = "step.recover_current_ok"
	StepKeptRekeyed       = "step.kept_rekeyed"       // path
	StepKeptDone          = "step.kept_done"          // path: it already opened with the current password
	StepSearchListAdded   = "step.search_list_added"  // path
	StepSearchListDone    = "step.search_list_done"   // path: it was in the list already
	NoteKeychainRecovered = "note.keychain_recovered" // path, local_items (comma-separated, may be absent)

	// NoKeptKeychain: no kept keychain has that name; params: name.
	NoKeptKeychain = "no_kept_keychain"
)

func init() {
	for code, params := range map[string][]string{
		StepRecoverCurrentOK: nil, StepKeptRekeyed: {"path"}, StepKeptDone: {"path"},
		StepSearchListAdded: {"path"}, StepSearchListDone: {"path"}, NoteKeychainRecovered: {"path", "local_items"},
	} {
		Texts[code] = params
	}
	Errors[NoKeptKeychain] = []string{"name"}
}
