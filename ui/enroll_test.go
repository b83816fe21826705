//go:build cgo || !darwin

package ui

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/lockstep-dev/lockstep/internal/tools/testtool"

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/agent/enginetest"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// An administrator resets the user's MFA with a 14-day enrolment period:
// the tray says so and offers Set up your authenticator…; the window shows
// the new key as a QR code made here (a real QR code of the otpauth URI)
// and as text, says when the period ends, refuses a wrong code at its box,
// and a code from the key sets it up: the tray drops the item and changes
// need codes.
func TestEnrollFromTheTray(t *testing.T) {
	h := newHarness(t, setup{world: agenttest.Options{MFA: true}})
	until := h.world.ResetMFA(14)
	h.waitFor("Set up your authenticator…", func() bool { return h.tray.item(text.TrayEnroll.S()) != nil })
	wantLine := text.LineEnroll.S(map[string]any{"Until": text.Clock(until)}) + " (disabled)"
	if got := h.tray.labels()[0]; got != wantLine {
		t.Errorf("first line %q, want %q", got, wantLine)
	}
	if h.tray.icon != trayIcon(iconAttention, false) {
		t.Errorf("icon %s, want attention", h.tray.icon.Name())
	}
	h.waitFor("the notification", func() bool {
		for _, n := range h.notifications() {
			if strings.HasPrefix(n, text.NoteEnrollTitle.S()+" | ") {
				return strings.Contains(n, text.Clock(until))
			}
		}
		return false
	})
	h.tray.item(text.TrayEnroll.S()).Action()
	e := h.app.enrollW
	if e == nil || e.w == nil {
		t.Fatal("the tray item did not open the window")
	}
	h.waitFor("the key", func() bool { return e.key.Visible() && h.settled() })
	if got, want := e.keyText.Text, text.KeyGroups(enginetest.EnrollSecret); got != want {
		t.Errorf("key shown as %q, want %q", got, want)
	}
	if got := e.by.Text; got != text.EnrollByLine(until) {
		t.Errorf("period line %q", got)
	}
	if e.w.Canvas().Focused() != e.code.entry {
		t.Errorf("focus on %T, want the code box", e.w.Canvas().Focused())
	}
	if !e.save.Disabled() {
		t.Error("Confirm enabled with an empty box")
	}
	checkQR(t, e)
	// A QR reader (zbar) finds the otpauth URI of the key in the window as
	// it is drawn, as a phone's camera would.
	var shot bytes.Buffer
	if err := png.Encode(&shot, e.w.Canvas().Capture()); err != nil {
		t.Fatal(err)
	}
	if got := zbar(t, shot.Bytes()); !strings.HasPrefix(got, "otpauth://totp/") || !strings.Contains(got, "secret="+enginetest.EnrollSecret) {
		t.Errorf("the QR code in the window reads %q", got)
	}
	h.shot("enroll", e.w)

	wrong := "000000"
	if wrong == h.world.EnrollCode() {
		wrong = "111111"
	}
	typeIn(e.w, e.code.entry, wrong)
	press(e.w, fyne.KeyReturn)
	h.waitFor("the error", func() bool { return !e.running && e.form.Visible() && h.settled() })
	if got := visibleMsg(e.code.msg); got != text.ErrMFAInvalid.S() {
		t.Errorf("code error %q", got)
	}
	h.shot("enroll-error-code", e.w)

	typeIn(e.w, e.code.entry, h.world.EnrollCode())
	test.Tap(e.save)
	h.waitFor("the result", func() bool { return e.done && h.settled() })
	if e.keyText.Text != "" || e.qr.Resource != nil {
		t.Error("the key stays in the window after the set-up")
	}
	h.shot("enroll-done", e.w)
	h.waitFor("the tray to drop the item", func() bool { return h.tray.item(text.TrayEnroll.S()) == nil })
	if got := h.account(); got.MustEnrol() || !got.MFA || got.State != localapi.StateInSync {
		t.Errorf("after the set-up lockstepd reports %s, enrol by %v, MFA %v", got.State, got.MFAEnrollBy, got.MFA)
	}
	pol, err := h.client.Policy(t.Context(), "alice")
	if err != nil || !pol.MFA {
		t.Fatalf("changes do not need codes after the set-up: %+v %v", pol, err)
	}
	press(e.w, fyne.KeyEscape)
	if h.app.enrollW.w != nil {
		t.Error("Escape did not close the finished window")
	}
}

// During the period a change needs no code; once it is done, the set-up
// window opens by itself.
func TestChangeDuringEnrolmentThenEnroll(t *testing.T) {
	h := newHarness(t, setup{world: agenttest.Options{MFA: true}})
	h.world.ResetMFA(3)
	h.waitFor("Set up your authenticator…", func() bool { return h.tray.item(text.TrayEnroll.S()) != nil })
	h.app.ShowChange()
	c := h.app.change
	h.waitFor("the policy", func() bool { return c.policy != nil && h.settled() })
	if c.code.cell.Visible() {
		t.Fatal("the change window asks for a code during the enrolment period")
	}
	typeIn(c.w, c.current.entry, password)
	typeIn(c.w, c.newPw.entry, "Brand-New-Passw0rd!")
	typeIn(c.w, c.confirm.entry, "Brand-New-Passw0rd!")
	press(c.w, fyne.KeyReturn)
	h.waitFor("the set-up window", func() bool { return h.app.enrollW != nil && h.app.enrollW.w != nil })
	e := h.app.enrollW
	if !strings.Contains(e.intro.Text, text.EnrollAfterChange.S()) {
		t.Errorf("the window does not say it follows the change: %q", e.intro.Text)
	}
	if got := h.world.MacPassword(); got != "Brand-New-Passw0rd!" {
		t.Error("the change did not reach the Mac")
	}
	h.waitFor("the key", func() bool { return e.key.Visible() && h.settled() })
	typeIn(e.w, e.code.entry, h.world.EnrollCode())
	press(e.w, fyne.KeyReturn)
	h.waitFor("the result", func() bool { return e.done && h.settled() })
}

// A period that has ended: the window says so and asks IT.
func TestEnrollAfterThePeriod(t *testing.T) {
	h := newHarness(t, setup{world: agenttest.Options{MFA: true}})
	h.world.ResetMFA(2)
	h.waitFor("Set up your authenticator…", func() bool { return h.tray.item(text.TrayEnroll.S()) != nil })
	h.world.Dir.Lock()
	st := h.world.Dir.States["alice@example.com"]
	past := t0.Add(-time.Hour)
	st.MFAEnrollBy = &past
	h.world.Dir.States["alice@example.com"] = st
	h.world.Dir.Unlock()
	h.app.ShowEnroll()
	e := h.app.enrollW
	h.waitFor("the error", func() bool { return e.retry.Visible() && h.settled() })
	if got := visibleMsg(e.banner.message); got != text.ErrEnrollExpired.S() {
		t.Errorf("banner %q", got)
	}
}

// checkQR decodes the window's QR image enough to know it is one: a square
// PNG of dark and light modules with the three finder patterns' corners
// dark, made from the URI (go-qrcode's own encoding of it, byte for byte).
func checkQR(t *testing.T, e *enrollWindow) {
	t.Helper()
	if e.qr.Resource == nil {
		t.Fatal("no QR image")
	}
	img, err := png.Decode(bytes.NewReader(e.qr.Resource.Content()))
	if err != nil {
		t.Fatalf("QR image: %v", err)
	}
	b := img.Bounds()
	if b.Dx() != b.Dy() || b.Dx() < 256 {
		t.Fatalf("QR image %v", b)
	}
	dark := func(p image.Point) bool {
		r, g, bl, _ := img.At(p.X, p.Y).RGBA()
		return r+g+bl < 3*0x4000
	}
	// go-qrcode leaves a quiet zone of 4 modules; the finder patterns'
	// outer corners sit just inside it.
	var first image.Point
	found := false
	for y := b.Min.Y; y < b.Max.Y && !found; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if dark(image.Pt(x, y)) {
				first, found = image.Pt(x, y), true
				break
			}
		}
	}
	if !found {
		t.Fatal("the QR image is blank")
	}
	if !dark(image.Pt(b.Max.X-1-(first.X-b.Min.X), first.Y)) || !dark(image.Pt(first.X, b.Max.Y-1-(first.Y-b.Min.Y))) {
		t.Error("the QR image lacks its finder patterns")
	}
	if dark(image.Pt(b.Max.X-1-(first.X-b.Min.X), b.Max.Y-1-(first.Y-b.Min.Y))) && dark(image.Pt(b.Min.X, b.Min.Y)) {
		t.Error("the QR image has no quiet zone")
	}
}

// zbar decodes the QR code in a PNG with zbarimg (Debian's zbar-tools), an
// independent reader.
func zbar(t *testing.T, pngData []byte) string {
	t.Helper()
	path := testtool.Need(t, "zbarimg", "zbar-tools")
	f := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(f, pngData, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "--raw", "-q", f).Output()
	if err != nil {
		t.Fatalf("zbarimg found no QR code: %v", err)
	}
	return strings.TrimSpace(string(out))
}
