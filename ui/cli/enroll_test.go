package cli

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/agent/enginetest"
	"github.com/lockstep-dev/lockstep/internal/tools/testtool"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// lockstep mfa enroll: the key as a QR code in text blocks and as text on
// the terminal (stderr, never stdout), then the code; afterwards changes
// need codes. A wrong code says so and changes nothing.
func TestMFAEnrollCLI(t *testing.T) {
	w := agenttest.Start(t, agenttest.Options{MFA: true, Password: oldPW})
	_, se, code := run(t, w, "", "mfa", "enroll", "--stdin", "--user", "alice")
	if code != exitFailed || !strings.Contains(se, text.ErrNotEnrolling.S()) {
		t.Fatalf("before any reset: exit %d, %q", code, se)
	}
	if _, se, code := run(t, w, "", "mfa", "frobnicate"); code != exitUsage || !strings.Contains(se, "frobnicate") {
		t.Fatalf("unknown action: exit %d, %q", code, se)
	}
	until := w.ResetMFA(14)
	out, se, code := run(t, w, "000000\n", "mfa", "enroll", "--stdin", "--user", "alice")
	if code != exitFailed || !strings.Contains(se, text.ErrMFAInvalid.S()) {
		t.Fatalf("wrong code: exit %d\n%s%s", code, out, se)
	}
	out, se, code = run(t, w, w.EnrollCode()+"\n", "mfa", "enroll", "--stdin", "--user", "alice")
	if code != exitOK || !strings.Contains(out, text.CLIEnrolled.S()) {
		t.Fatalf("enroll: exit %d\n%s%s", code, out, se)
	}
	key := text.KeyGroups(enginetest.EnrollSecret)
	if !strings.Contains(se, key) || !strings.Contains(se, text.EnrollByLine(until)) || !strings.ContainsAny(se, "█▀▄") {
		t.Errorf("the terminal did not show the QR code, the key and the period:\n%s", se)
	}
	if strings.Contains(out, enginetest.EnrollSecret) || strings.Contains(out, key) {
		t.Error("the key reached stdout")
	}
	// The QR code is square: as many text rows as two-module columns.
	var rows []string
	for _, l := range strings.Split(se, "\n") {
		if strings.ContainsAny(l, "█▀▄") {
			rows = append(rows, l)
		}
	}
	if len(rows) < 10 || len([]rune(rows[0])) < 2*len(rows)-4 || len([]rune(rows[0])) > 2*len(rows)+4 {
		t.Errorf("QR code of %d rows, %d columns", len(rows), len([]rune(rows[0])))
	}
	out, _, _ = run(t, w, "", "policy", "--user", "alice")
	if !strings.Contains(out, text.CLIMFANeeded.S()) {
		t.Errorf("after enrolling, policy does not say codes are needed:\n%s", out)
	}
}

// A change during the period asks no code and goes on to the enrolment.
func TestChangeThenEnrollCLI(t *testing.T) {
	w := agenttest.Start(t, agenttest.Options{MFA: true, Password: oldPW})
	w.ResetMFA(3)
	out, se, code := run(t, w, lines(oldPW, newPW), "change", "--stdin", "--user", "alice")
	if code != exitOK || !strings.Contains(se, text.CLIEnrollLater.S()) {
		t.Fatalf("change without more input: exit %d\n%s%s", code, out, se)
	}
	if w.MacPassword() != newPW {
		t.Fatal("the change did not reach the Mac")
	}
	w.ResetMFA(3)
	const next = "Next-Passw0rd-2026"
	out, se, code = run(t, w, lines(newPW, next, w.EnrollCode()), "change", "--stdin", "--user", "alice")
	if code != exitOK || !strings.Contains(se, text.EnrollAfterChange.S()) || !strings.Contains(out, text.CLIEnrolled.S()) {
		t.Fatalf("change then enrol: exit %d\n%s%s", code, out, se)
	}
}

// Every word mfa enroll prints comes from the catalogue.
func TestMFAEnrollCLIIsAllCatalogue(t *testing.T) {
	pseudo(t)
	w := agenttest.Start(t, agenttest.Options{MFA: true, Password: oldPW})
	until := w.ResetMFA(14)
	out, se, code := run(t, w, w.EnrollCode()+"\n", "mfa", "enroll", "--stdin", "--user", "alice")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, se)
	}
	if bad := unmarked(out+se, text.KeyGroups(enginetest.EnrollSecret), text.Clock(until)); len(bad) > 0 {
		t.Errorf("lines not from the catalogue: %q", bad)
	}
}

// The text QR code is a real one: drawn back as pixels, zbar reads the
// otpauth URI of the key from it.
func TestMFAEnrollCLIQRReads(t *testing.T) {
	zb := testtool.Need(t, "zbarimg", "zbar-tools")
	w := agenttest.Start(t, agenttest.Options{MFA: true, Password: oldPW})
	w.ResetMFA(14)
	_, se, code := run(t, w, w.EnrollCode()+"\n", "mfa", "enroll", "--stdin", "--user", "alice")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, se)
	}
	var rows [][]rune
	for _, l := range strings.Split(se, "\n") {
		if strings.ContainsAny(l, "█▀▄") {
			rows = append(rows, []rune(l))
		}
	}
	// Each character is two modules, one above the other; the block
	// characters draw what the terminal shows as ink.
	const scale, quiet = 6, 8
	width := 0
	for _, r := range rows {
		width = max(width, len(r))
	}
	for _, inkIsDark := range []bool{true, false} {
		img := image.NewGray(image.Rect(0, 0, (width+2*quiet)*scale, (2*len(rows)+2*quiet)*scale))
		for i := range img.Pix {
			img.Pix[i] = 0xff
		}
		set := func(x, y int, ink bool) {
			if ink != inkIsDark {
				return // light
			}
			for dy := range scale {
				for dx := range scale {
					img.SetGray((x+quiet)*scale+dx, (y+quiet)*scale+dy, color.Gray{})
				}
			}
		}
		for y, r := range rows {
			for x := range width {
				c := ' '
				if x < len(r) {
					c = r[x]
				}
				set(x, 2*y, c == '█' || c == '▀')
				set(x, 2*y+1, c == '█' || c == '▄')
			}
		}
		f := filepath.Join(t.TempDir(), "qr.png")
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(zb, "--raw", "-q", f).Output()
		if err == nil {
			if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, "otpauth://totp/") || !strings.Contains(got, "secret="+enginetest.EnrollSecret) {
				t.Fatalf("the text QR code reads %q", got)
			}
			return
		}
	}
	t.Fatalf("zbar reads no QR code in the terminal's blocks:\n%s", se)
}
