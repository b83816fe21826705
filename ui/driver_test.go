//go:build cgo || !darwin

package ui_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui"
	"github.com/lockstep-dev/lockstep/ui/fakeapi"
)

// TestDriver uses only the exported API, the way an end-to-end test
// against the real lockstepd does: a Queue, the real client on a socket,
// and a Driver.
func TestDriver(t *testing.T) {
	fake := fakeapi.New(fakeapi.Options{Password: "Old-password-2026", ServiceAccount: true})
	sock := filepath.Join(t.TempDir(), "lockstepd.sock")
	srv, err := fakeapi.Serve(fake, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	q := ui.NewQueue()
	app := ui.New(test.NewTempApp(t), localapi.NewClient(sock), ui.Options{
		Tray: &nopTray{}, Do: q.Do, Quit: func() {},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	app.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); app.Run(ctx) }()
	defer func() { cancel(); <-done }()
	d := app.Driver()
	wait := func(what string, cond func() bool) {
		t.Helper()
		if err := q.RunUntil(cond, 20*time.Second); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	wait("connect", d.Connected)

	// A change the directory refuses (a reused password).
	if err := d.Click("Change Password…"); err != nil {
		t.Fatal(err)
	}
	wait("the policy", func() bool {
		return len(d.View(ui.WindowChange).Checklist) > 0 && !strings.HasPrefix(d.View(ui.WindowChange).Checklist[0], "later")
	})
	for box, text := range map[string]string{ui.BoxCurrent: "Old-password-2026", ui.BoxNew: "Old-password-2026", ui.BoxConfirm: "Old-password-2026"} {
		if err := d.Type(ui.WindowChange, box, text); err != nil {
			t.Fatal(err)
		}
	}
	if v := d.View(ui.WindowChange); !v.CanSubmit {
		t.Fatalf("cannot submit: %+v", v)
	}
	if err := d.Press(ui.WindowChange, fyne.KeyReturn); err != nil {
		t.Fatal(err)
	}
	wait("the refusal", func() bool { v := d.View(ui.WindowChange); return !v.Running && v.Errors[ui.BoxNew] != "" })
	v := d.View(ui.WindowChange)
	if !strings.Contains(v.Errors[ui.BoxNew], "Not one of your last 5 passwords") || !slices.Contains(v.Checklist, "refused: Not one of your last 5 passwords") {
		t.Errorf("refusal shown as %+v", v)
	}
	if err := d.Press(ui.WindowChange, fyne.KeyEscape); err != nil {
		t.Fatal(err)
	}
	if d.View(ui.WindowChange).Open {
		t.Error("Escape left the window open")
	}

	// An admin reset, synced without the previous password.
	fake.AdminReset("Reset-by-IT-2026", false)
	wait("the reset", func() bool { return slices.Contains(d.Menu(), "Sync Password…") })
	if err := d.Click("Sync Password…"); err != nil {
		t.Fatal(err)
	}
	if err := d.SetForgot(true); err != nil {
		t.Fatal(err)
	}
	if err := d.Type(ui.WindowSync, ui.BoxPrevious, "x"); err == nil {
		t.Error("could type a previous password with the forgot box ticked")
	}
	if err := d.Type(ui.WindowSync, ui.BoxNew, "Reset-by-IT-2026"); err != nil {
		t.Fatal(err)
	}
	if err := d.Press(ui.WindowSync, fyne.KeyReturn); err != nil {
		t.Fatal(err)
	}
	wait("the sync", func() bool { return d.View(ui.WindowSync).Done })
	if r := strings.Join(d.View(ui.WindowSync).Result, "\n"); !strings.Contains(r, "old login keychain was moved to") {
		t.Errorf("result does not say where the keychain went:\n%s", r)
	}
	wait("the tray in sync", func() bool { return d.Menu()[0] == "Password in sync (disabled)" })
	if got := fake.Calls(); !slices.Equal(got, []string{localapi.OpChange, localapi.OpSyncForgot}) {
		t.Errorf("operations %q", got)
	}
}

type nopTray struct{}

func (nopTray) SetSystemTrayMenu(*fyne.Menu)    {}
func (nopTray) SetSystemTrayIcon(fyne.Resource) {}
