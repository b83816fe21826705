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

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol/codes"
	"github.com/lockstep-dev/lockstep/ui/text"
)

func TestTrayMenuForEachState(t *testing.T) {
	tail := []string{text.TrayStatus.S(), "-", text.TrayAbout.S(), "-", text.TrayQuit.S()}
	change, changeOff := text.TrayChange.S(), text.TrayChange.S()+" (disabled)"
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
		opts  agenttest.Options
		do    func(*testing.T, *harness)
		down  bool
		icon  iconKind
		items []string
	}{
		{name: "in sync", do: func(*testing.T, *harness) {}, icon: iconInSync,
			items: menu([]string{text.LineInSync.S()}, change)},
		{name: "expiring", do: func(_ *testing.T, h *harness) { h.world.ExpireIn(12) }, icon: iconAttention,
			items: menu([]string{text.LineExpires.N(12)}, change)},
		{name: "expiring tomorrow", do: func(_ *testing.T, h *harness) { h.world.ExpireIn(1) }, icon: iconAttention,
			items: menu([]string{text.LineExpires.N(1)}, change)},
		{name: "sync needed", do: func(_ *testing.T, h *harness) { h.world.Reset(resetPassword, false) }, icon: iconAttention,
			items: menu([]string{text.LineSyncNeeded.S(map[string]any{"Reason": text.ShortReason(localapi.Text{Code: codes.ReasonReset})})}, text.TraySync.S(), changeOff)},
		{name: "temporary", do: func(_ *testing.T, h *harness) { h.world.Reset(resetPassword, true) }, icon: iconAttention,
			items: menu([]string{text.LineSyncNeeded.S(map[string]any{"Reason": text.ShortReason(localapi.Text{Code: codes.ReasonResetTemporary})})}, text.TraySync.S(), changeOff)},
		{name: "locked", do: func(_ *testing.T, h *harness) { h.world.Lock(t0.Add(48 * time.Minute)) }, icon: iconAttention,
			items: menu([]string{text.LineLocked.S(map[string]any{"Until": "11:30"})}, changeOff)},
		{name: "offline", do: func(_ *testing.T, h *harness) {
			h.world.Disconnect(time.Date(2026, 3, 10, 10, 12, 0, 0, time.UTC), localapi.ProblemUnreachable, "no route to host")
		}, icon: iconOffline,
			items: menu([]string{text.LineInSync.S(), text.LineOffline.S(map[string]any{"Since": "10:12"})}, changeOff)},
		{name: "offline since yesterday", do: func(_ *testing.T, h *harness) {
			h.world.Disconnect(time.Date(2026, 3, 9, 17, 5, 0, 0, time.UTC), localapi.ProblemUnreachable, "")
		}, icon: iconOffline,
			items: menu([]string{text.LineInSync.S(), text.LineOffline.S(map[string]any{"Since": text.Clock(time.Date(2026, 3, 9, 17, 5, 0, 0, time.UTC))})}, changeOff)},
		{name: "busy", do: func(t *testing.T, h *harness) { busy(t, h, "rekey") },
			icon: iconBusy, items: menu([]string{text.LineBusy.S()}, changeOff)},
		{name: "not enrolled", do: func(_ *testing.T, h *harness) { h.world.Unenroll(t0) }, icon: iconError,
			items: menu([]string{text.LineInSync.S(), text.LineNotEnrolled.S()}, changeOff)},
		{name: "not linked", opts: agenttest.Options{NotLinked: true}, do: func(*testing.T, *harness) {},
			icon: iconAttention, items: menu([]string{text.LineNotBound.S()}, text.TrayLink.S(), changeOff)},
		{name: "service not running", down: true, icon: iconError,
			items: menu([]string{text.LineNotRunning.S()}, changeOff)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, setup{world: tt.opts, noStart: tt.down})
			if tt.down {
				h.world.Stop()
				go h.app.Run(t.Context())
				h.waitFor("the failed watch", func() bool { return h.app.watchErr != nil })
			} else {
				tt.do(t, h)
				h.tryWait(func() bool { return slices.Equal(h.tray.labels(), tt.items) })
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
	h.world.Reset(resetPassword, false)
	h.waitFor("the reset", func() bool { return h.tray.item(text.TraySync.S()) != nil })
	want := []string{text.NoteResetTitle.S() + " | " + text.NoteResetBody.S()}
	h.waitFor("the notice", func() bool { return len(h.notifications()) >= 1 })
	h.drain()
	if got := h.notifications(); !slices.Equal(got, want) {
		t.Fatalf("notifications %q, want one reset notification", got)
	}

	// lockstepd stops: the tray says so and keeps trying.
	h.world.Stop()
	h.waitFor("the tray to show the service down", func() bool { return !h.app.connected })
	if got := h.tray.labels()[0]; got != text.LineNotRunning.S()+" (disabled)" {
		t.Errorf("first line %q while lockstepd is down", got)
	}
	if h.tray.icon != trayIcon(iconError, false) {
		t.Errorf("icon %s while lockstepd is down", h.tray.icon.Name())
	}
	if h.tray.item(text.TraySync.S()) != nil {
		t.Error("Sync Password… offered while lockstepd is down")
	}
	// It comes back on the same state: the watch reconnects, and lockstepd
	// tells the new watcher the reset that still stands, with the ID it was
	// first sent with; it must not be notified again.
	h.world.Restart()
	h.waitFor("the reconnect", func() bool { return h.app.connected && h.tray.item(text.TraySync.S()) != nil })
	h.waitFor("the standing notice", func() bool { return h.svc.notices() > 1 })
	h.drain()
	// A restart the app does not see refused (the stream drops and the
	// socket is back at once).
	h.world.Restart()
	h.waitFor("the drop", func() bool { return !h.app.connected })
	h.waitFor("the reconnect", func() bool { return h.app.connected })
	h.waitFor("the standing notice again", func() bool { return h.svc.notices() > 2 })
	h.drain()
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
	h := newHarness(t, setup{})
	count := func() int { return len(h.notifications()) }

	h.world.ExpireIn(3)
	h.waitFor("expiry", func() bool { return count() == 1 })
	// The directory's scanner warns again the same day: lockstepd sends
	// nothing new.
	h.world.ExpireIn(3)
	h.world.Reset(resetPassword, false)
	h.waitFor("reset", func() bool { return count() == 2 })
	// Sync it from another program (the CLI).
	if _, err := h.client.Sync(t.Context(), localapi.SyncRequest{User: "alice", Previous: []byte(password), New: []byte(resetPassword)}, nil); err != nil {
		t.Fatal(err)
	}
	h.waitFor("sync finished", func() bool { return count() == 3 })
	h.world.Lock(t0.Add(48 * time.Minute))
	h.waitFor("lock", func() bool { return count() == 4 })
	// lockstepd restarts and re-sends the lock, which still stands: the
	// app has shown it already.
	seen := h.svc.notices()
	h.world.Restart()
	h.waitFor("the standing lock", func() bool { return h.app.connected && h.svc.notices() > seen })
	h.drain()
	want := []string{
		text.NoteExpiryTitle.N(3) + " | " + text.NoteExpiryBody.S(),
		text.NoteResetTitle.S() + " | " + text.NoteResetBody.S(),
		text.NoteSyncedTitle.S() + " | " + text.NoteSyncedBody.S(),
		text.NoteLockedTitle.S() + " | " + text.NoteLockedBody.S(map[string]any{"Until": "11:30"}),
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
	h := newHarness(t, setup{world: agenttest.Options{FileVault: true}})
	h.app.ShowStatus()
	s := h.app.statusW
	place := func(name, state, at string) string {
		return text.StatusPlaceChanged.S(map[string]any{"Place": text.PlaceName(name), "State": text.PlaceState(state), "At": at})
	}
	shown := strings.Join(texts(s.w.Content()), "\n")
	for _, want := range []string{
		text.StatusRunning.S(map[string]any{"Version": "1.0.0"}),
		text.StatusConnected.S(map[string]any{"Since": "09:42"}),
		text.StatusWho.S(map[string]any{"Name": "Alice Example", "User": "alice@example.com"}),
		text.StateInSync.S(),
		place(localapi.PlaceDirectory, localapi.PlaceOK, text.Clock(t0.AddDate(0, 0, -10))),
		text.StatusNoOp.S(),
	} {
		if !strings.Contains(shown, want) {
			t.Errorf("status window does not show %q:\n%s", want, shown)
		}
	}
	h.shot("status-in-sync", s.w)

	h.world.Reset(resetPassword, false)
	h.waitFor("the reset", func() bool { return h.app.account().State == localapi.StateSyncNeeded })
	shown = strings.Join(texts(s.w.Content()), "\n")
	for _, want := range []string{
		text.StatusStateReason.S(map[string]any{"State": text.StateSyncNeeded.S(), "Reason": text.ReasonReset.S()}),
		place(localapi.PlaceDirectory, localapi.PlaceOK, "10:42"),
		text.StatusPlace.S(map[string]any{"Place": text.PlaceName(localapi.PlaceLocal), "State": text.PlaceBehind.S()}),
	} {
		if !strings.Contains(shown, want) {
			t.Errorf("status window does not show %q:\n%s", want, shown)
		}
	}
	if _, err := h.client.Sync(t.Context(), localapi.SyncRequest{User: "alice", Previous: []byte(password), New: []byte(resetPassword)}, nil); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the sync", func() bool { return h.app.account().State == localapi.StateInSync })
	shown = strings.Join(texts(s.w.Content()), "\n")
	if want := text.StatusOpLine.S(map[string]any{"Kind": text.OpSync.S(), "At": "10:42", "State": text.OpDone.S()}); !strings.Contains(shown, want) {
		t.Errorf("status window does not show %q:\n%s", want, shown)
	}
	// A finished sync is told by its places, each with what the step did.
	for _, want := range []string{
		text.StatusPlaceNote.S(map[string]any{"Line": place(localapi.PlaceLocal, localapi.PlaceOK, "10:42"), "Note": text.StepLocalChanged.S()}),
		text.StatusPlaceNote.S(map[string]any{"Line": place(localapi.PlaceKeychain, localapi.PlaceOK, "10:42"), "Note": text.StepKeychainRekeyed.S()}),
	} {
		if !strings.Contains(shown, want) {
			t.Errorf("status window does not show %q:\n%s", want, shown)
		}
	}
	if slices.ContainsFunc(texts(s.w.Content()), func(l string) bool {
		return sameSteps([]string{l}, localapi.OpSync, []step{{localapi.StepPreboot, localapi.StepDone}})
	}) {
		t.Errorf("a finished sync still lists its steps:\n%s", shown)
	}
	// The reset moved the expiry: it runs from the reset.
	if want := text.StatusExpiresIn.N(90, map[string]any{"Date": text.Date(t0.Add(90 * 24 * time.Hour))}); s.expires.Text != want {
		t.Errorf("expiry after the reset shown as %q, want %q", s.expires.Text, want)
	}
	h.shot("status-after-sync", s.w)

	// Refresh with lockstepd gone says so.
	h.world.Stop()
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
	for _, want := range []string{text.AboutName.S(), text.AboutVersion.S(map[string]any{"Version": appVersion()}), text.AboutBlurb.S(),
		text.AboutService.S(map[string]any{"Version": "1.0.0"})} {
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
