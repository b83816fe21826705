//go:build cgo || !darwin

package ui

import (
	"slices"
	"testing"
	"time"

	"fyne.io/fyne/v2"

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/agent/enginetest"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui/text"
)

const (
	keptPW   = "Kept-Passw0rd-2025"
	keptPath = "/Users/alice/Library/Keychains/login_renamed_20260301T090000Z.keychain-db"
)

// TestRecoverOldKeychain: with an old keychain kept aside, the menu offers
// Recover Old Keychain…; the window lists it with when it was kept, a
// wrong old password is shown at its box and changes nothing, the right
// one puts it back, and the menu item goes.
func TestRecoverOldKeychain(t *testing.T) {
	h := newHarness(t, setup{world: agenttest.Options{Kept: []enginetest.Aside{
		{Path: keptPath, Password: keptPW, At: t0.Add(-9 * 24 * time.Hour)},
	}}})
	h.waitFor("Recover Old Keychain… in the menu", func() bool { return h.tray.item(text.TrayRecover.S()) != nil })
	h.tray.item(text.TrayRecover.S()).Action()
	r := h.app.recoverW
	if r == nil || r.w == nil {
		t.Fatal("Recover Old Keychain… did not open the window")
	}
	h.waitFor("the kept keychains", func() bool { return len(r.kept) == 1 && h.settled() })
	if got, want := r.picks[0].Text, text.KeptLine(r.kept[0]); got != want || !r.picks[0].Checked || r.chosen != r.kept[0].Name {
		t.Errorf("kept keychain shown as %q (chosen %t), want %q", got, r.picks[0].Checked, want)
	}
	if r.w.Canvas().Focused() != r.old.entry {
		t.Errorf("focus on %T, want the old password", r.w.Canvas().Focused())
	}
	if !r.save.Disabled() {
		t.Error("Recover enabled with empty boxes")
	}
	h.shot("recover", r.w)

	typeIn(r.w, r.old.entry, "Not-the-old-1")
	typeIn(r.w, r.current.entry, password)
	press(r.w, fyne.KeyReturn)
	if r.old.entry.Text != "" || r.current.entry.Text != "" {
		t.Error("boxes not emptied on submit")
	}
	h.waitFor("the error", func() bool { return !r.running && r.form.Visible() && h.settled() })
	if got := visibleMsg(r.old.msg); got != text.ErrKeychainOld.S()+"\n"+text.HintKeychainOld.S() {
		t.Errorf("old-password error %q", got)
	}
	if opens, list := h.world.Kept(); opens[keptPath] != keptPW || len(list) != 0 {
		t.Errorf("a wrong old password changed %v %q", opens, list)
	}
	h.shot("recover-error-old", r.w)

	typeIn(r.w, r.old.entry, keptPW)
	typeIn(r.w, r.current.entry, password)
	press(r.w, fyne.KeyReturn)
	h.waitFor("the result", func() bool { return r.done && h.settled() })
	if opens, list := h.world.Kept(); opens[keptPath] != password || !slices.Equal(list, []string{keptPath}) {
		t.Errorf("after recovery: %v %q", opens, list)
	}
	for _, s := range []string{text.StepKeptRekey.S(), text.StepSearchList.S()} {
		if !slices.Contains(texts(r.result), s) {
			t.Errorf("success screen does not list %q: %q", s, texts(r.result))
		}
	}
	h.shot("recover-done", r.w)
	h.waitFor("the menu item to go", func() bool { return h.tray.item(text.TrayRecover.S()) == nil })
	if a := h.account(); a.LastOperation == nil || a.LastOperation.Kind != localapi.OpKeychainRecover || a.State != localapi.StateInSync {
		t.Errorf("account after recovery: %+v", a)
	}
	press(r.w, fyne.KeyEscape)
	if h.app.recoverW.w != nil {
		t.Error("Escape did not close the finished window")
	}
}
