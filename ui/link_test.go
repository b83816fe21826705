//go:build cgo || !darwin

package ui

import (
	"slices"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui/fakeapi"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// The directory has not linked this Mac to the user: the tray says so and
// offers Link to Directory…; the window takes the directory password, shows
// a wrong one at its box, and once linked the tray shows the account's
// normal state.
func TestLinkFromTheTray(t *testing.T) {
	h := newHarness(t, setup{fake: fakeapi.Options{NotLinked: true}})
	if got := h.tray.labels()[0]; got != text.LineNotBound.S()+" (disabled)" {
		t.Errorf("first line %q", got)
	}
	if h.tray.icon != trayIcon(iconAttention, false) {
		t.Errorf("icon %s, want attention", h.tray.icon.Name())
	}
	item := h.tray.item(text.TrayLink.S())
	if item == nil {
		t.Fatalf("no Link to Directory… in %q", h.tray.labels())
	}
	item.Action()
	l := h.app.linkW
	if l == nil || l.w == nil {
		t.Fatal("Link to Directory… did not open the window")
	}
	if l.w.Canvas().Focused() != l.password.entry {
		t.Errorf("focus starts on %T, want the password", l.w.Canvas().Focused())
	}
	if !l.save.Disabled() {
		t.Error("Link enabled with an empty box")
	}
	h.shot("link", l.w)

	typeIn(l.w, l.password.entry, "Not-my-password-1")
	press(l.w, fyne.KeyReturn)
	if l.password.entry.Text != "" {
		t.Error("box not emptied on submit")
	}
	h.waitFor("the error", func() bool { return !l.running && l.form.Visible() })
	if got := visibleMsg(l.password.msg); got != text.ErrWrongLink.S() {
		t.Errorf("password error %q", got)
	}
	if got := h.account().State; got != localapi.StateNotLinked {
		t.Errorf("linked with a wrong password: %s", got)
	}
	h.shot("link-error-wrong-password", l.w)

	typeIn(l.w, l.password.entry, password)
	test.Tap(l.save)
	h.waitFor("the result", func() bool { return l.done })
	h.shot("link-done", l.w)
	h.waitFor("the tray to show the linked account", func() bool {
		it := h.tray.item(text.TrayChange.S())
		return it != nil && !it.Disabled && h.tray.item(text.TrayLink.S()) == nil
	})
	if got := h.fake.Calls(); !slices.Equal(got, []string{"link", "link"}) {
		t.Errorf("calls %q", got)
	}
	press(l.w, fyne.KeyEscape)
	if h.app.linkW.w != nil {
		t.Error("Escape did not close the finished window")
	}
}

// Offline, the tray offers no link (it needs the directory); an error that
// is not the password's shows in the window's banner.
func TestLinkOffline(t *testing.T) {
	h := newHarness(t, setup{fake: fakeapi.Options{NotLinked: true}})
	h.app.ShowLink()
	l := h.app.linkW
	h.fake.SetConnection(localapi.ConnOffline, t0, "no route to host")
	h.waitFor("the tray to drop Link to Directory…", func() bool { return h.tray.item(text.TrayLink.S()) == nil })
	typeIn(l.w, l.password.entry, password)
	press(l.w, fyne.KeyReturn)
	h.waitFor("the error", func() bool { return !l.running && l.form.Visible() })
	if got := visibleMsg(l.banner.message); got != text.ErrOffline.S() {
		t.Errorf("banner %q", got)
	}
}
