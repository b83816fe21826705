//go:build cgo || !darwin

package ui

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui/text"
)

const resetPassword = "Reset-by-IT-2026"

// afterReset returns a harness whose account an administrator just reset,
// with the tray showing it.
func afterReset(t *testing.T, o agenttest.Options, temporary bool) *harness {
	h := newHarness(t, setup{world: o})
	h.world.Reset(resetPassword, temporary)
	h.waitFor("the reset to reach the tray", func() bool { return h.tray.item(text.TraySync.S()) != nil })
	return h
}

// openSync opens the Sync window from the tray menu, as a user does.
func openSync(h *harness) *syncWindow {
	h.t.Helper()
	h.tray.item(text.TraySync.S()).Action()
	if h.app.syncW == nil || h.app.syncW.w == nil {
		h.t.Fatal("Sync Password… did not open the window")
	}
	return h.app.syncW
}

func TestSyncAfterAdminReset(t *testing.T) {
	h := afterReset(t, agenttest.Options{FileVault: true}, false)
	s := openSync(h)
	if got, want := visibleMsg(s.why), text.ReasonReset.S(); got != want {
		t.Errorf("window says why %q, want %q", got, want)
	}
	if s.w.Canvas().Focused() != s.previous.entry {
		t.Errorf("focus starts on %T, want the previous password", s.w.Canvas().Focused())
	}
	if !s.save.Disabled() {
		t.Error("Sync enabled with empty boxes")
	}
	h.shot("sync-reset", s.w)

	// A wrong previous password is shown at its box; the Mac is untouched.
	typeIn(s.w, s.previous.entry, "not-the-old-one")
	typeIn(s.w, s.newPw.entry, resetPassword)
	press(s.w, fyne.KeyReturn)
	if s.previous.entry.Text != "" || s.newPw.entry.Text != "" {
		t.Error("boxes not emptied on submit")
	}
	h.waitFor("the error", func() bool { return !s.running && s.form.Visible() && h.settled() })
	if got := visibleMsg(s.previous.msg); got != text.ErrWrongPrevious.S() {
		t.Errorf("previous-password error %q", got)
	}
	if h.world.MacPassword() != password {
		t.Error("the Mac changed after a failed sync")
	}
	h.shot("sync-error-previous", s.w)

	// A wrong directory password is shown at the other box.
	typeIn(s.w, s.previous.entry, password)
	typeIn(s.w, s.newPw.entry, "Typo-by-IT-2026")
	test.Tap(s.save)
	h.waitFor("the error", func() bool { return !s.running && s.form.Visible() && h.settled() })
	if got := visibleMsg(s.newPw.msg); got != text.ErrWrongDirNew.S() {
		t.Errorf("new-password error %q", got)
	}
	if visibleMsg(s.previous.msg) != "" {
		t.Errorf("previous box still shows %q", visibleMsg(s.previous.msg))
	}

	typeIn(s.w, s.previous.entry, password)
	typeIn(s.w, s.newPw.entry, resetPassword)
	press(s.w, fyne.KeyReturn)
	h.waitFor("the result", func() bool { return s.done && h.settled() })
	if got := h.world.MacPassword(); got != resetPassword {
		t.Errorf("Mac password %q after sync, want the directory's", got)
	}
	for _, place := range []string{text.StepDirectory.S(), text.StepLocal.S(), text.StepKeychain.S(), text.StepFileVault.S()} {
		if !slices.Contains(texts(s.result), place) {
			t.Errorf("success screen does not list %q: %q", place, texts(s.result))
		}
	}
	h.shot("sync-done", s.w)
	h.waitFor("the tray to go back to in sync", func() bool { return h.tray.item(text.TraySync.S()) == nil })
	press(s.w, fyne.KeyEscape)
	if h.app.syncW.w != nil {
		t.Error("Escape did not close the finished window")
	}
}

func TestSyncTemporaryPasswordGoesOnToChange(t *testing.T) {
	h := afterReset(t, agenttest.Options{}, true)
	s := openSync(h)
	typeIn(s.w, s.previous.entry, password)
	typeIn(s.w, s.newPw.entry, resetPassword)
	press(s.w, fyne.KeyReturn)
	h.waitFor("the Change window", func() bool { return h.app.change != nil && h.app.change.w != nil })
	if h.app.syncW.w != nil {
		t.Error("the Sync window stayed open")
	}
	c := h.app.change
	if c.current.entry.Text != resetPassword {
		t.Errorf("current password box holds %d characters, want the temporary password", len(c.current.entry.Text))
	}
	if got := visibleMsg(c.banner.message); got != text.ChangeTempNote.S() {
		t.Errorf("banner %q", got)
	}
	h.waitFor("the policy", func() bool { return c.policy != nil })
	if c.w.Canvas().Focused() != c.newPw.entry {
		t.Errorf("focus on %T, want the new password", c.w.Canvas().Focused())
	}
	if got := h.account().State; got != localapi.StateTemporary {
		t.Errorf("account state %q after syncing a temporary password", got)
	}
	if h.world.MacPassword() != resetPassword {
		t.Error("the temporary password was not synced first")
	}
	h.shot("change-temporary", c.w)

	typeIn(c.w, c.newPw.entry, newPassword)
	typeIn(c.w, c.confirm.entry, newPassword)
	press(c.w, fyne.KeyReturn)
	h.waitFor("the result", func() bool { return c.done && h.settled() })
	if h.world.DirectoryPassword() != newPassword || h.world.MacPassword() != newPassword {
		t.Error("the permanent password is not everywhere")
	}
	// The test's record of results is a subscriber of its own: it may
	// hear of the last one a moment after the app does.
	if !h.tryWait(func() bool { return slices.Equal(h.world.Operations(), []string{localapi.OpSync, localapi.OpChange}) }) {
		got := h.world.Operations()
		t.Errorf("operations %q, want sync then change", got)
	}
	h.waitFor("in sync", func() bool { return h.app.account().State == localapi.StateInSync })
}

func TestSyncForgotPrevious(t *testing.T) {
	h := afterReset(t, agenttest.Options{ServiceAccount: true, FileVault: true}, false)
	s := openSync(h)
	if visibleMsg(s.warning) != "" {
		t.Errorf("warning shown before the box is ticked: %q", visibleMsg(s.warning))
	}
	typeIn(s.w, s.previous.entry, "something")
	test.Tap(s.forgot)
	if got := visibleMsg(s.warning); got != text.ForgotWarning.S() {
		t.Errorf("warning %q", got)
	}
	for _, must := range []string{"aside", "never deleted", "new, empty one", "stay in it"} {
		if !pseudoRun && !strings.Contains(text.ForgotWarning.S(), must) {
			t.Errorf("warning does not say %q", must)
		}
	}
	if !s.previous.entry.Disabled() || s.previous.entry.Text != "" {
		t.Error("previous-password box still usable with the box ticked")
	}
	typeIn(s.w, s.newPw.entry, resetPassword)
	h.shot("sync-forgot", s.w)
	test.Tap(s.save)
	h.waitFor("the result", func() bool { return s.done && h.settled() })
	// The test's record of results is a subscriber of its own: it may
	// hear of the last one a moment after the app does.
	if !h.tryWait(func() bool { return slices.Equal(h.world.Operations(), []string{localapi.OpSyncForgot}) }) {
		got := h.world.Operations()
		t.Errorf("operations %q", got)
	}
	// The Mac moved the keychain aside, and the success screen says where.
	h.world.Mac.Lock()
	moved := slices.Clone(h.world.Mac.Moved)
	h.world.Mac.Unlock()
	if len(moved) != 1 {
		t.Fatalf("keychains moved aside: %q", moved)
	}
	path, old, _ := strings.Cut(moved[0], "=")
	if old != password {
		t.Errorf("the keychain moved aside opens with %q, want the previous password", old)
	}
	shown := strings.Join(texts(s.result), "\n")
	if !strings.Contains(shown, text.NoteKeychainKept.S(map[string]any{"path": path})) {
		t.Errorf("success screen does not say where the old keychain went (%s):\n%s", path, shown)
	}
	if got := h.world.MacPassword(); got != resetPassword {
		t.Errorf("Mac password %q after a forgotten sync, want the directory's", got)
	}
	h.shot("sync-forgot-done", s.w)
}

func TestSyncForgotUnavailableWithoutServiceAccount(t *testing.T) {
	h := afterReset(t, agenttest.Options{ServiceAccount: false}, false)
	s := openSync(h)
	if !s.forgot.Disabled() {
		t.Error("forgot box enabled without a usable service account")
	}
	if got := visibleMsg(s.warning); got != text.ForgotUnavailable.S() {
		t.Errorf("message %q, want %q", got, text.ForgotUnavailable.S())
	}
	test.Tap(s.forgot)
	if s.forgot.Checked {
		t.Error("a disabled box could be ticked")
	}
	h.shot("sync-forgot-unavailable", s.w)
}

// TestNoSecretInLogs runs a failed and a successful sync and change and
// checks no password reached the app's log.
func TestNoSecretInLogs(t *testing.T) {
	var log syncBuf
	h := newHarness(t, setup{log: &log})
	h.world.Reset(resetPassword, true)
	h.waitFor("the reset", func() bool { return h.tray.item(text.TraySync.S()) != nil })
	s := openSync(h)
	typeIn(s.w, s.previous.entry, "Wrong-previous-1")
	typeIn(s.w, s.newPw.entry, resetPassword)
	press(s.w, fyne.KeyReturn)
	h.waitFor("the error", func() bool { return !s.running && s.form.Visible() && h.settled() })
	typeIn(s.w, s.previous.entry, password)
	typeIn(s.w, s.newPw.entry, resetPassword)
	press(s.w, fyne.KeyReturn)
	h.waitFor("the change window", func() bool { return h.app.change != nil && h.app.change.w != nil })
	c := h.app.change
	h.waitFor("the policy", func() bool { return c.policy != nil })
	typeIn(c.w, c.newPw.entry, newPassword)
	typeIn(c.w, c.confirm.entry, newPassword)
	press(c.w, fyne.KeyReturn)
	h.waitFor("the change", func() bool { return c.done && h.settled() })
	out := log.String()
	if !strings.Contains(out, "operation finished") || !strings.Contains(out, "kind=change") {
		t.Fatalf("log does not show the flow:\n%s", out)
	}
	for _, secret := range []string{password, resetPassword, newPassword, "Wrong-previous-1"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds a password:\n%s", out)
		}
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
