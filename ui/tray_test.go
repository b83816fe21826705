//go:build cgo || !darwin

package ui

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui/fakeapi"
	"github.com/lockstep-dev/lockstep/ui/text"
)

func TestTrayMenuForEachState(t *testing.T) {
	tail := []string{"Status…", "-", "About Lockstep", "-", "Quit Lockstep"}
	menu := func(lines []string, items ...string) []string {
		var out []string
		for _, l := range lines {
			out = append(out, l+" (disabled)")
		}
		out = append(out, "-")
		out = append(out, items...)
		return append(out, tail...)
	}
	tests := []struct {
		name  string
		opts  fakeapi.Options
		do    func(*fakeapi.Fake)
		down  bool
		icon  iconKind
		items []string
	}{
		{name: "in sync", do: func(*fakeapi.Fake) {}, icon: iconInSync,
			items: menu([]string{"Password in sync"}, "Change Password…")},
		{name: "expiring", do: func(f *fakeapi.Fake) { f.ExpireIn(12) }, icon: iconAttention,
			items: menu([]string{"Password expires in 12 days"}, "Change Password…")},
		{name: "expiring tomorrow", do: func(f *fakeapi.Fake) { f.ExpireIn(1) }, icon: iconAttention,
			items: menu([]string{"Password expires in 1 day"}, "Change Password…")},
		{name: "sync needed", do: func(f *fakeapi.Fake) { f.AdminReset(resetPassword, false) }, icon: iconAttention,
			items: menu([]string{"Sync needed: your password was reset by an administrator"}, "Sync Password…", "Change Password… (disabled)")},
		{name: "locked", do: func(f *fakeapi.Fake) { f.Lock(t0.Add(48 * time.Minute)) }, icon: iconAttention,
			items: menu([]string{"Account locked until 11:30"}, "Change Password… (disabled)")},
		{name: "offline", do: func(f *fakeapi.Fake) {
			f.SetConnection(localapi.ConnOffline, time.Date(2026, 3, 10, 10, 12, 0, 0, time.UTC), "no route to host")
		}, icon: iconOffline,
			items: menu([]string{"Password in sync", "Directory offline since 10:12"}, "Change Password… (disabled)")},
		{name: "offline since yesterday", do: func(f *fakeapi.Fake) {
			f.SetConnection(localapi.ConnOffline, time.Date(2026, 3, 9, 17, 5, 0, 0, time.UTC), "")
		}, icon: iconOffline,
			items: menu([]string{"Password in sync", "Directory offline since 9 Mar 17:05"}, "Change Password… (disabled)")},
		{name: "busy", do: func(f *fakeapi.Fake) {
			f.Update(func(s *localapi.Status) { s.Accounts[0].State = localapi.StateBusy })
		}, icon: iconBusy, items: menu([]string{"Updating your password…"}, "Change Password… (disabled)")},
		{name: "not enrolled", do: func(f *fakeapi.Fake) {
			f.SetConnection(localapi.ConnNotEnrolled, t0, "")
		}, icon: iconError,
			items: menu([]string{"Password in sync", "This Mac is not enrolled with the directory"}, "Change Password… (disabled)")},
		{name: "not linked", opts: fakeapi.Options{NotLinked: true}, do: func(f *fakeapi.Fake) { f.Update(func(*localapi.Status) {}) },
			icon: iconAttention, items: menu([]string{"This account is not linked to the directory"}, "Link to Directory…", "Change Password… (disabled)")},
		{name: "service not running", down: true, icon: iconError,
			items: menu([]string{"Lockstep service not running"}, "Change Password… (disabled)")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, setup{fake: tt.opts, noStart: tt.down})
			if tt.down {
				h.fake.SetDown(true)
				ctx := t.Context()
				go h.app.Run(ctx)
				h.waitFor("the failed watch", func() bool { return h.app.watchErr != nil })
			} else {
				n := h.tray.sets
				tt.do(h.fake)
				h.waitFor("the tray to change", func() bool {
					return h.tray.sets > n || tt.icon == iconInSync
				})
			}
			if got := h.tray.labels(); !slices.Equal(got, tt.items) {
				t.Errorf("menu\n%q\nwant\n%q", got, tt.items)
			}
			if h.tray.icon != trayIcon(tt.icon, false) {
				t.Errorf("icon %s, want %s", h.tray.icon.Name(), trayIcon(tt.icon, false).Name())
			}
		})
	}
}

func TestTrayReconnectsAndDoesNotRepeatNotifications(t *testing.T) {
	h := newHarness(t, setup{})
	first := h.tray.menu
	h.fake.AdminReset(resetPassword, false)
	h.waitFor("the reset", func() bool { return h.tray.item(text.TraySync.S()) != nil })
	want := []string{text.NoteResetTitle.S() + " | " + text.NoteResetBody.S()}
	h.waitFor("the notice", func() bool { return len(h.notifications()) >= 1 })
	h.drain()
	if got := h.notifications(); !slices.Equal(got, want) {
		t.Fatalf("notifications %q, want one reset notification", got)
	}

	// lockstepd stops: the tray says so and keeps trying.
	h.fake.SetDown(true)
	h.waitFor("the tray to show the service down", func() bool { return !h.app.connected })
	if got := h.tray.labels()[0]; got != text.LineNotRunning.S()+" (disabled)" {
		t.Errorf("first line %q while lockstepd is down", got)
	}
	if h.tray.icon != trayIcon(iconError, false) {
		t.Errorf("icon %s while lockstepd is down", h.tray.icon.Name())
	}
	// It comes back: the watch reconnects and the first status repeats the
	// reset, which must not be notified again.
	h.fake.SetDown(false)
	h.waitFor("the reconnect", func() bool { return h.app.connected })
	if h.tray.item(text.TraySync.S()) == nil {
		t.Error("Sync Password… missing after the reconnect")
	}
	// A restart that drops the stream (rather than refusing connections).
	h.fake.DropWatchers()
	h.waitFor("the drop", func() bool { return !h.app.connected })
	h.waitFor("the reconnect", func() bool { return h.app.connected })
	if got := h.notifications(); !slices.Equal(got, want) {
		t.Errorf("notifications after reconnects %q, want only the first", got)
	}
	// Fyne shows the first menu it was given once the tray is ready, so
	// every update must be to that same menu.
	if h.tray.menu != first {
		t.Error("the tray menu was replaced instead of updated")
	}
}

func TestNotifications(t *testing.T) {
	h := newHarness(t, setup{fake: fakeapi.Options{}})
	count := func() int { return len(h.notifications()) }

	h.fake.ExpireIn(3)
	h.waitFor("expiry", func() bool { return count() == 1 })
	h.fake.AdminReset(resetPassword, false)
	h.waitFor("reset", func() bool { return count() == 2 })
	// Sync it, through the fake directly (another client, say the CLI).
	if _, err := h.fake.Sync(t.Context(), localapi.SyncRequest{Previous: []byte(password), New: []byte(resetPassword)}, nil); err != nil {
		t.Fatal(err)
	}
	h.waitFor("sync finished", func() bool { return count() == 3 })
	h.fake.Lock(t0.Add(48 * time.Minute))
	h.waitFor("lock", func() bool { return count() == 4 })
	// Let any duplicate arrive: wait for a later status to be handled.
	h.fake.Update(func(s *localapi.Status) { s.Version = "1.0.1" })
	h.waitFor("a later status", func() bool { return h.app.status.Version == "1.0.1" })
	want := []string{
		"Your password expires in 3 days | " + text.NoteExpiryBody.S(),
		text.NoteResetTitle.S() + " | " + text.NoteResetBody.S(),
		text.NoteSyncedTitle.S() + " | " + text.NoteSyncedBody.S(),
		text.NoteLockedTitle.S() + " | Too many wrong passwords were tried. It unlocks at 11:30, or contact your IT department.",
	}
	if got := h.notifications(); !slices.Equal(got, want) {
		t.Errorf("notifications\n%q\nwant\n%q", got, want)
	}
}

func TestTrayItemsOpenWindowsAndQuit(t *testing.T) {
	h := newHarness(t, setup{})
	quit := 0
	h.app.o.Quit = func() { quit++ }
	h.drain()
	h.tray.item(text.TrayStatus.S()).Action()
	if h.app.statusW == nil || h.app.statusW.w == nil {
		t.Error("Status… opened nothing")
	}
	h.tray.item(text.TrayAbout.S()).Action()
	if h.app.about == nil || h.app.about.w == nil {
		t.Error("About Lockstep opened nothing")
	}
	h.tray.item(text.TrayChange.S()).Action()
	if h.app.change == nil || h.app.change.w == nil {
		t.Error("Change Password… opened nothing")
	}
	q := h.tray.item(text.TrayQuit.S())
	if !q.IsQuit {
		t.Error("Quit item not marked as the quit item (Fyne would add a second one)")
	}
	q.Action()
	if quit != 1 {
		t.Errorf("Quit called %d times", quit)
	}
}

// TestTrayIcons checks the icons tell the states apart by shape alone:
// every pair of template icons differs in many pixels, and each is
// single-colour (black with alpha), as macOS wants.
func TestTrayIcons(t *testing.T) {
	kinds := []iconKind{iconInSync, iconAttention, iconBusy, iconOffline, iconError}
	alpha := map[iconKind]*image.RGBA{}
	for _, k := range kinds {
		img, err := png.Decode(bytes.NewReader(trayIcon(k, true).Content()))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		rgba := image.NewRGBA(img.Bounds())
		draw.Draw(rgba, rgba.Bounds(), img, image.Point{}, draw.Src)
		for i := 0; i < len(rgba.Pix); i += 4 {
			if rgba.Pix[i] != 0 || rgba.Pix[i+1] != 0 || rgba.Pix[i+2] != 0 {
				t.Fatalf("template icon %s has colour", k)
			}
		}
		alpha[k] = rgba
	}
	for i, a := range kinds {
		for _, b := range kinds[i+1:] {
			diff := 0
			for p := 3; p < len(alpha[a].Pix); p += 4 {
				if d := int(alpha[a].Pix[p]) - int(alpha[b].Pix[p]); d > 128 || d < -128 {
					diff++
				}
			}
			if diff < 100 {
				t.Errorf("icons %s and %s differ in only %d of 4096 pixels", a, b, diff)
			}
		}
	}
	// A sheet of every icon on light and dark panels, for review.
	sheet := image.NewRGBA(image.Rect(0, 0, len(kinds)*72, 4*72))
	panels := []color.Color{color.White, color.RGBA{0x2b, 0x2b, 0x2b, 0xff}}
	for row := range 4 {
		draw.Draw(sheet, image.Rect(0, row*72, sheet.Bounds().Dx(), row*72+72), image.NewUniform(panels[row%2]), image.Point{}, draw.Src)
		for col, k := range kinds {
			img, _ := png.Decode(bytes.NewReader(trayIcon(k, row >= 2).Content()))
			draw.Draw(sheet, image.Rect(col*72+4, row*72+4, col*72+68, row*72+68), img, image.Point{}, draw.Over)
		}
	}
	assertGolden(t, "tray-icons.png", sheet)
}

func TestStatusWindow(t *testing.T) {
	h := newHarness(t, setup{fake: fakeapi.Options{FileVault: true}})
	h.app.ShowStatus()
	s := h.app.statusW
	shown := strings.Join(texts(s.w.Content()), "\n")
	for _, want := range []string{
		"Running (version 1.0.0)",
		"Connected since 09:42",
		"Alice Example (alice@example.com)",
		"In sync everywhere",
		"Directory: Up to date. Last changed 28 Feb 10:42",
		"Mac account: Up to date. Last changed 28 Feb 10:42",
		"Login keychain: Up to date. Last changed 28 Feb 10:42",
		"FileVault: Up to date. Last changed 28 Feb 10:42",
		"None yet",
	} {
		if !strings.Contains(shown, want) {
			t.Errorf("status window does not show %q:\n%s", want, shown)
		}
	}
	h.shot("status-in-sync", s.w)

	h.fake.AdminReset(resetPassword, false)
	h.waitFor("the reset", func() bool { return h.app.account().State == localapi.StateSyncNeeded })
	shown = strings.Join(texts(s.w.Content()), "\n")
	for _, want := range []string{
		"This Mac needs a sync. Your password was reset by an administrator.",
		"Directory: Up to date. Last changed 10:42",
		"Mac account: Behind: needs a sync. Last changed 28 Feb 10:42",
	} {
		if !strings.Contains(shown, want) {
			t.Errorf("status window does not show %q:\n%s", want, shown)
		}
	}
	if _, err := h.fake.Sync(t.Context(), localapi.SyncRequest{Previous: []byte(password), New: []byte(resetPassword)}, nil); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the sync", func() bool { return h.app.account().State == localapi.StateInSync })
	shown = strings.Join(texts(s.w.Content()), "\n")
	for _, want := range []string{"Sync, started 10:42: finished", "Directory: done", "Mac account: done", "FileVault start-up screen: done"} {
		if !strings.Contains(shown, want) {
			t.Errorf("status window does not show %q:\n%s", want, shown)
		}
	}
	h.shot("status-after-sync", s.w)

	// Refresh with lockstepd gone says so.
	h.fake.SetDown(true)
	h.waitFor("the drop", func() bool { return !h.app.connected })
	s.refreshB.OnTapped()
	h.waitFor("the refresh", func() bool { return !s.refreshB.Disabled() })
	if got := visibleMsg(s.banner.message); got != text.StatusStale.S() {
		t.Errorf("banner %q after a refresh with lockstepd down", got)
	}
	if s.service.Text != text.StatusNotRunning.S() {
		t.Errorf("service shown as %q", s.service.Text)
	}
	h.shot("status-not-running", s.w)
	press(s.w, fyne.KeyEscape)
	if h.app.statusW.w != nil {
		t.Error("Escape did not close the Status window")
	}
}

func TestAboutWindow(t *testing.T) {
	h := newHarness(t, setup{})
	h.app.ShowAbout()
	b := h.app.about
	shown := texts(b.w.Content())
	for _, want := range []string{"Lockstep", "Version dev", text.AboutBlurb.S(), "Lockstep service: version 1.0.0"} {
		if !slices.Contains(shown, want) {
			t.Errorf("About does not show %q: %q", want, shown)
		}
	}
	h.shot("about", b.w)
	press(b.w, fyne.KeyReturn)
	if h.app.about.w != nil {
		t.Error("Return did not close About")
	}
}
