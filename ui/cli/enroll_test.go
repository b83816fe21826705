package cli

import (
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/agent/enginetest"
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
