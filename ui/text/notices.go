package text

import (
	"strconv"
	"time"

	"github.com/lockstep-dev/lockstep/localapi"
)

// Notifications.
var (
	NoteResetTitle    = M("notify.reset_title", "Your password was reset")
	NoteResetBody     = M("notify.reset_body", "An administrator changed your password. Choose Sync Password… in the Lockstep menu to update this Mac.")
	NoteTempBody      = M("notify.reset_temporary_body", "An administrator gave you a temporary password. Choose Sync Password… in the Lockstep menu, then pick a new password.")
	NoteSyncedTitle   = M("notify.synced_title", "Password updated")
	NoteSyncedBody    = M("notify.synced_body", "Your Mac account, login keychain and FileVault now use your directory password.")
	NoteExpiryTitle   = PM("notify.expiry_title", "Your password expires in {{.N}} day", "Your password expires in {{.N}} days")
	NoteExpiryToday   = M("notify.expiry_today", "Your password expires today")
	NoteExpiryBody    = M("notify.expiry_body", "Choose Change Password… in the Lockstep menu to pick a new one.")
	NoteLockedTitle   = M("notify.locked_title", "Your account is locked")
	NoteLockedBody    = M("notify.locked_body", "Too many wrong passwords were tried. It unlocks at {{.Until}}, or contact your IT department.")
	NoteLockedBodyNo  = M("notify.locked_body_plain", "Too many wrong passwords were tried. Contact your IT department.")
	NoteUnlockedTitle = M("notify.unlocked_title", "Your account is unlocked")
	NoteUnlockedBody  = M("notify.unlocked_body", "You can sign in and change your password again.")
)

// Notice says a notification: its title and body.
func Notice(n localapi.Notice) (title, body string) {
	switch n.Kind {
	case localapi.NoticeReset:
		if n.Params["temporary"] == "true" {
			return NoteResetTitle.S(), NoteTempBody.S()
		}
		return NoteResetTitle.S(), NoteResetBody.S()
	case localapi.NoticeSynced:
		return NoteSyncedTitle.S(), NoteSyncedBody.S()
	case localapi.NoticeExpiry:
		days, _ := strconv.Atoi(n.Params["days"])
		if days <= 0 {
			return NoteExpiryToday.S(), NoteExpiryBody.S()
		}
		return NoteExpiryTitle.N(days), NoteExpiryBody.S()
	case localapi.NoticeLocked:
		if at, err := time.Parse(time.RFC3339, n.Params["until"]); err == nil {
			return NoteLockedTitle.S(), NoteLockedBody.S(map[string]any{"Until": Clock(at)})
		}
		return NoteLockedTitle.S(), NoteLockedBodyNo.S()
	case localapi.NoticeUnlocked:
		return NoteUnlockedTitle.S(), NoteUnlockedBody.S()
	case localapi.NoticeMFAEnroll:
		if at, err := time.Parse(time.RFC3339, n.Params["until"]); err == nil {
			return NoteEnrollTitle.S(), NoteEnrollBody.S(map[string]any{"Until": Clock(at)})
		}
		return NoteEnrollTitle.S(), NoteEnrollBodyPlain.S()
	}
	return TrayTitle.S(), Unknown.S(map[string]any{"code": n.Kind})
}
