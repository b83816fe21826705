//go:build cgo || !darwin

package ui

import (
	"slices"
	"testing"

	"fyne.io/fyne/v2"

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// TestTemporaryResetWithMFAEndToEnd follows one user through the real
// lockstepd: an administrator's temporary reset reaches the tray, a wrong
// previous password is shown at its box, the sync goes on to the change
// with its code (every step streamed over the socket), the same code again
// is a replay, and a lockstepd restart shows in the tray and heals.
func TestTemporaryResetWithMFAEndToEnd(t *testing.T) {
	h := newHarness(t, setup{world: agenttest.Options{MFA: true, Codes: []string{"246810"}, FileVault: true}})
	inSync := text.LineInSync.S() + " (disabled)"
	if got := h.tray.labels()[0]; got != inSync {
		t.Fatalf("first line %q", got)
	}

	// An admin reset reaches the tray through the watch stream.
	h.world.Reset(resetPassword, true)
	h.waitFor("Sync Password…", func() bool { return h.tray.item(text.TraySync.S()) != nil })
	s := openSync(h)
	if got := visibleMsg(s.why); got != text.ReasonResetTemporary.S() {
		t.Errorf("the window says why %q", got)
	}
	typeIn(s.w, s.previous.entry, "wrong-old-password")
	typeIn(s.w, s.newPw.entry, resetPassword)
	press(s.w, fyne.KeyReturn)
	h.waitFor("the error", func() bool { return !s.running && s.form.Visible() && h.settled() })
	if got := visibleMsg(s.previous.msg); got != text.ErrWrongPrevious.S() {
		t.Errorf("error shown as %q at the previous box", got)
	}

	// The temporary-password chain, steps streamed over the socket.
	typeIn(s.w, s.previous.entry, password)
	typeIn(s.w, s.newPw.entry, resetPassword)
	press(s.w, fyne.KeyReturn)
	h.waitFor("the Change window", func() bool { return h.app.change != nil && h.app.change.w != nil })
	c := h.app.change
	h.waitFor("the policy", func() bool { return c.policy != nil })
	if c.current.entry.Text != resetPassword || !c.code.cell.Visible() {
		t.Fatal("Change window not prefilled, or without its code box")
	}
	typeIn(c.w, c.newPw.entry, newPassword)
	typeIn(c.w, c.confirm.entry, newPassword)
	typeIn(c.w, c.code.entry, "246810")
	press(c.w, fyne.KeyReturn)
	h.waitFor("the change", func() bool { return c.done && h.settled() })
	var want []step
	for _, st := range []string{localapi.StepValidate, localapi.StepVerify, localapi.StepDirectory, localapi.StepLocal,
		localapi.StepKeychain, localapi.StepFileVault, localapi.StepPreboot, localapi.StepAck} {
		want = append(want, step{st, localapi.StepDone})
	}
	// The success screen replaced the steps; they were all shown done.
	if got := stepTexts(c.steps); !sameSteps(got, localapi.OpChange, want) {
		t.Errorf("steps over the socket\n%q\nwant\n%v", got, want)
	}
	if h.world.DirectoryPassword() != newPassword || h.world.MacPassword() != newPassword {
		t.Error("new password not everywhere")
	}
	h.waitFor("the tray back in sync", func() bool {
		return h.tray.item(text.TraySync.S()) == nil && h.app.account().State == localapi.StateInSync
	})

	// The same code again is a replay.
	c.close()
	c = openChange(h)
	typeIn(c.w, c.current.entry, newPassword)
	typeIn(c.w, c.newPw.entry, "Yet-another-Pass-9")
	typeIn(c.w, c.confirm.entry, "Yet-another-Pass-9")
	typeIn(c.w, c.code.entry, "246810")
	press(c.w, fyne.KeyReturn)
	h.waitFor("the error", func() bool { return !c.running && c.form.Visible() && h.settled() })
	if got := visibleMsg(c.code.msg); got != text.ErrMFAReplayed.S() {
		t.Errorf("replayed code shown as %q", got)
	}
	if c.w.Canvas().Focused() != c.code.entry {
		t.Errorf("focus on %T after a replayed code, want the code box", c.w.Canvas().Focused())
	}
	c.close()

	// lockstepd stops: the tray says it is not running, then reconnects.
	h.world.Stop()
	h.waitFor("the tray to notice", func() bool { return !h.app.connected })
	if got := h.tray.labels()[0]; got != text.LineNotRunning.S()+" (disabled)" {
		t.Errorf("first line %q with lockstepd stopped", got)
	}
	h.world.Restart()
	h.waitFor("the reconnect", func() bool { return h.app.connected })
	if got := h.tray.labels()[0]; got != inSync {
		t.Errorf("first line %q after the restart", got)
	}
	// The failed sync, the sync, the change and the refused change; the
	// restart ran none.
	// The test's record of results is a subscriber of its own: it may
	// hear of the last one a moment after the app does.
	if !h.tryWait(func() bool {
		return slices.Equal(h.world.Operations(), []string{localapi.OpSync, localapi.OpSync, localapi.OpChange, localapi.OpChange})
	}) {
		got := h.world.Operations()
		t.Errorf("operations %q", got)
	}
}
