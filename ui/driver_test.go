//go:build cgo || !darwin

package ui_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/ui"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// TestDriver uses only the exported API, the way an end-to-end test
// against the real lockstepd does: a Queue, the real client on
// lockstepd's socket, and a Driver.
func TestDriver(t *testing.T) {
	w := agenttest.Start(t, agenttest.Options{Password: "Old-password-2026", ServiceAccount: true})

	q := ui.NewQueue()
	app := ui.New(test.NewTempApp(t), localapi.NewClient(w.Socket), ui.Options{
		Tray: &nopTray{}, Do: q.Do, Quit: func() {}, Languages: []string{"en"},
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
	if err := d.Click(text.TrayChange.S()); err != nil {
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
	history := text.RuleText(protocol.RuleHistory, protocol.DefaultPolicy())
	if !strings.Contains(v.Errors[ui.BoxNew], history) || !slices.Contains(v.Checklist, "refused: "+history) {
		t.Errorf("refusal shown as %+v", v)
	}
	if err := d.Press(ui.WindowChange, fyne.KeyEscape); err != nil {
		t.Fatal(err)
	}
	if d.View(ui.WindowChange).Open {
		t.Error("Escape left the window open")
	}

	// An admin reset, synced without the previous password.
	w.Reset("Reset-by-IT-2026", false)
	wait("the reset", func() bool { return slices.Contains(d.Menu(), text.TraySync.S()) })
	if err := d.Click(text.TraySync.S()); err != nil {
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
	w.Mac.Lock()
	moved := slices.Clone(w.Mac.Moved)
	w.Mac.Unlock()
	if len(moved) != 1 {
		t.Fatalf("keychains moved aside: %q", moved)
	}
	path, _, _ := strings.Cut(moved[0], "=")
	if r := strings.Join(d.View(ui.WindowSync).Result, "\n"); !strings.Contains(r, path) {
		t.Errorf("result does not say where the keychain went (%s):\n%s", path, r)
	}
	wait("the tray in sync", func() bool { return d.Menu()[0] == text.LineInSync.S()+" (disabled)" })
	// The refused change ran as an operation that failed; the sync ran.
	if got := w.Operations(); !slices.Equal(got, []string{localapi.OpChange, localapi.OpSyncForgot}) {
		t.Errorf("operations %q", got)
	}
	if got := w.MacPassword(); got != "Reset-by-IT-2026" {
		t.Errorf("Mac password %q after the sync, want the directory's", got)
	}
}

type nopTray struct{}

func (nopTray) SetSystemTrayMenu(*fyne.Menu)    {}
func (nopTray) SetSystemTrayIcon(fyne.Resource) {}
