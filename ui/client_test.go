//go:build cgo || !darwin

package ui

import (
	"path/filepath"
	"slices"
	"testing"

	"fyne.io/fyne/v2"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui/fakeapi"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// TestThroughRealClient runs the app on the real localapi.Client against
// the fake served on a unix socket: the watch stream, an operation's step
// stream, an error reply at its field, and a lockstepd restart.
func TestThroughRealClient(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "lockstepd.sock")
	var srv *fakeapi.Server
	h := newHarness(t, setup{
		fake: fakeapi.Options{MFA: true, ValidCodes: []string{"246810"}, FileVault: true},
		svc: func(f *fakeapi.Fake) Service {
			var err error
			if srv, err = fakeapi.Serve(f, sock); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			return localapi.NewClient(sock)
		},
	})
	if got := h.tray.labels()[0]; got != "Password in sync (disabled)" {
		t.Fatalf("first line %q", got)
	}

	// An admin reset reaches the tray through the watch stream.
	h.fake.AdminReset(resetPassword, true)
	h.waitFor("Sync Password…", func() bool { return h.tray.item(text.TraySync.S()) != nil })
	s := openSync(h)
	typeIn(s.w, s.previous.entry, "wrong-old-password")
	typeIn(s.w, s.newPw.entry, resetPassword)
	press(s.w, fyne.KeyReturn)
	h.waitFor("the error", func() bool { return !s.running && s.form.Visible() })
	if got := visibleMsg(s.previous.msg); got != text.ErrWrongPrevious.S() {
		t.Errorf("error over HTTP shown as %q at the previous box", got)
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
	h.waitFor("the change", func() bool { return c.done })
	want := []string{
		"Check the new password: done", "Check your current password: done", "Directory: done",
		"Mac account: done", "Login keychain: done", "FileVault: done", "FileVault start-up screen: done",
		"Confirm with the directory: done",
	}
	if got := stepTexts(c.steps); !slices.Equal(got, want) {
		t.Errorf("steps over the socket\n%q\nwant\n%q", got, want)
	}
	if h.fake.DirectoryPassword() != newPassword || h.fake.MacPassword() != newPassword {
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
	h.waitFor("the error", func() bool { return !c.running && c.form.Visible() })
	if got := visibleMsg(c.code.msg); got != text.ErrMFAReplayed.S() {
		t.Errorf("replayed code shown as %q", got)
	}
	c.close()

	// lockstepd restarts: the tray says it is not running, then reconnects.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the tray to notice", func() bool { return !h.app.connected })
	if got := h.tray.labels()[0]; got != text.LineNotRunning.S()+" (disabled)" {
		t.Errorf("first line %q with lockstepd stopped", got)
	}
	var err error
	if srv, err = fakeapi.Serve(h.fake, sock); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the reconnect", func() bool { return h.app.connected })
	if got := h.tray.labels()[0]; got != "Password in sync (disabled)" {
		t.Errorf("first line %q after the restart", got)
	}
}
