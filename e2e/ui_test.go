package e2e

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

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/ui"
)

type nopTray struct{}

func (nopTray) SetSystemTrayMenu(*fyne.Menu)    {}
func (nopTray) SetSystemTrayIcon(fyne.Resource) {}

// TestMenuBarAppAgainstRealDaemon drives the menu-bar app's windows, as a
// user would, against the real lockstepd on a simulated Mac: a change with
// MFA, then an administrator's temporary reset, its sync and the change it
// leads to, checking every place afterwards.
func TestMenuBarAppAgainstRealDaemon(t *testing.T) {
	u := newUser(t, shared, true)
	m := newMac(t, shared, u)
	old, nw, temp, perm := u.password, newPassword(), newPassword(), newPassword()

	q := ui.NewQueue()
	app := ui.New(test.NewTempApp(t), m.client, ui.Options{Tray: nopTray{}, Do: q.Do, Quit: func() {},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	app.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); app.Run(ctx) }()
	defer func() { cancel(); <-done }()
	d := app.Driver()
	wait := func(what string, cond func() bool) {
		t.Helper()
		if err := q.RunUntil(cond, 30*time.Second); err != nil {
			t.Fatalf("%s: %v (menu %q)", what, err, d.Menu())
		}
	}
	typeAll := func(window string, boxes [][2]string) {
		t.Helper()
		for _, b := range boxes {
			if err := d.Type(window, b[0], b[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	wait("connect", func() bool { return d.Connected() && d.Status() != nil && len(d.Status().Accounts) == 1 })

	// A change with the MFA code.
	if err := d.Click("Change Password…"); err != nil {
		t.Fatal(err)
	}
	wait("the policy checklist", func() bool {
		cl := d.View(ui.WindowChange).Checklist
		return len(cl) > 0 && !strings.HasPrefix(cl[0], "later")
	})
	typeAll(ui.WindowChange, [][2]string{{ui.BoxCurrent, old}, {ui.BoxNew, nw}, {ui.BoxConfirm, nw}, {ui.BoxCode, u.code(t)}})
	if v := d.View(ui.WindowChange); !v.CanSubmit {
		t.Fatalf("cannot save: %+v", v)
	}
	if err := d.Press(ui.WindowChange, fyne.KeyReturn); err != nil {
		t.Fatal(err)
	}
	wait("the change", func() bool { v := d.View(ui.WindowChange); return v.Done || len(v.Errors) > 0 || v.Banner != "" })
	if v := d.View(ui.WindowChange); !v.Done {
		t.Fatalf("change failed in the app: %+v", v)
	}
	m.places(nw, old)
	if err := d.Press(ui.WindowChange, fyne.KeyEscape); err != nil {
		t.Fatal(err)
	}

	// The administrator gives a temporary password: the menu offers a
	// sync, which leads straight to choosing a permanent password.
	if _, err := shared.admin.ResetPassword(t.Context(), u.name, admin.ResetRequest{Password: protocol.Secret(temp), Temporary: true}); err != nil {
		t.Fatal(err)
	}
	wait("the reset in the menu", func() bool { return slices.Contains(d.Menu(), "Sync Password…") })
	if err := d.Click("Sync Password…"); err != nil {
		t.Fatal(err)
	}
	typeAll(ui.WindowSync, [][2]string{{ui.BoxPrevious, nw}, {ui.BoxNew, temp}})
	if err := d.Press(ui.WindowSync, fyne.KeyReturn); err != nil {
		t.Fatal(err)
	}
	wait("the change window after the temporary sync", func() bool {
		v := d.View(ui.WindowChange)
		return v.Open && !v.Done && !v.Running
	})
	m.places(temp, nw)
	wait("the policy checklist", func() bool {
		cl := d.View(ui.WindowChange).Checklist
		return len(cl) > 0 && !strings.HasPrefix(cl[0], "later")
	})
	// The temporary password is already filled in as the current one.
	typeAll(ui.WindowChange, [][2]string{{ui.BoxNew, perm}, {ui.BoxConfirm, perm}, {ui.BoxCode, u.code(t)}})
	if v := d.View(ui.WindowChange); !v.CanSubmit {
		t.Fatalf("cannot save the permanent password: %+v", v)
	}
	if err := d.Press(ui.WindowChange, fyne.KeyReturn); err != nil {
		t.Fatal(err)
	}
	wait("the permanent change", func() bool { v := d.View(ui.WindowChange); return v.Done || len(v.Errors) > 0 || v.Banner != "" })
	if v := d.View(ui.WindowChange); !v.Done {
		t.Fatalf("permanent change failed in the app: %+v", v)
	}
	m.places(perm, nw, temp)
	wait("the tray in sync", func() bool { return len(d.Menu()) > 0 && strings.HasPrefix(d.Menu()[0], "Password in sync") })
}

// The menu-bar app on a Mac enrolled without its user: the menu offers
// Link to Directory…, a wrong password is shown at its box, the right one
// links the Mac and the menu shows the account in sync.
func TestMenuBarAppLinksTheMac(t *testing.T) {
	u := newUser(t, shared, false)
	m := newMacAssigned(t, shared, u, nil)
	q := ui.NewQueue()
	app := ui.New(test.NewTempApp(t), m.client, ui.Options{Tray: nopTray{}, Do: q.Do, Quit: func() {},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	app.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); app.Run(ctx) }()
	defer func() { cancel(); <-done }()
	d := app.Driver()
	wait := func(what string, cond func() bool) {
		t.Helper()
		if err := q.RunUntil(cond, 30*time.Second); err != nil {
			t.Fatalf("%s: %v (menu %q)", what, err, d.Menu())
		}
	}
	wait("the link item", func() bool { return slices.Contains(d.Menu(), "Link to Directory…") })
	if err := d.Click("Link to Directory…"); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"Not-Her-Passw0rd-1", u.password} {
		if err := d.Type(ui.WindowLink, ui.BoxPassword, pw); err != nil {
			t.Fatal(err)
		}
		if err := d.Press(ui.WindowLink, fyne.KeyReturn); err != nil {
			t.Fatal(err)
		}
		wait("the link's answer", func() bool {
			v := d.View(ui.WindowLink)
			return !v.Running && (v.Done || len(v.Errors) > 0 || v.Banner != "")
		})
		v := d.View(ui.WindowLink)
		if pw != u.password {
			if !strings.Contains(v.Errors[ui.BoxPassword], "not your directory password") {
				t.Fatalf("wrong password: %+v", v)
			}
			continue
		}
		if !v.Done {
			t.Fatalf("link failed in the app: %+v", v)
		}
	}
	wait("the tray in sync", func() bool { return len(d.Menu()) > 0 && strings.HasPrefix(d.Menu()[0], "Password in sync") })
}
