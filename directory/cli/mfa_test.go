package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
)

// TestMFAEnrolAndEmailCommands: user mfa --enroll-days checks its range and
// prints no secret; user add/edit --email store the address.
func TestMFAEnrolAndEmailCommands(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	d := []string{"--data", dir}
	const pw = "Initial-Pass-77!"
	var add struct {
		User admin.User `json:"user"`
	}
	runJSON(t, pw+"\n", &add, append([]string{"user", "add", "alice", "--mfa", "--email", "Alice@Example.com"}, d...)...)
	if add.User.Email != "alice@example.com" {
		t.Fatalf("user add --email: %+v", add.User)
	}
	for _, bad := range [][]string{
		{"--reset", "--enroll-days", "0"},
		{"--reset", "--enroll-days", "366"},
		{"--reset", "--enroll-days", "-4"},
		{"--disable", "--enroll-days", "3"},
	} {
		_, se, code := run(t, "", append(append([]string{"user", "mfa", "alice"}, bad...), d...)...)
		if code != 2 || !strings.Contains(se, "--enroll-days") {
			t.Errorf("user mfa %v: exit %d, %q", bad, code, se)
		}
	}
	out, se, code := run(t, "", append([]string{"user", "mfa", "alice", "--reset", "--enroll-days", "14"}, d...)...)
	if code != 0 || !strings.Contains(out, "must enrol an authenticator by") || strings.Contains(out, "otpauth") || strings.Contains(out, "secret") {
		t.Fatalf("user mfa --reset --enroll-days 14: exit %d\n%s%s", code, out, se)
	}
	var u admin.User
	runJSON(t, "", &u, append([]string{"user", "show", "alice"}, d...)...)
	if !u.MFA || u.MFAEnrollBy == nil || time.Until(*u.MFAEnrollBy) < 13*24*time.Hour || time.Until(*u.MFAEnrollBy) > 14*24*time.Hour {
		t.Fatalf("after the reset: %+v", u)
	}
	out, _, _ = run(t, "", append([]string{"user", "show", "alice"}, d...)...)
	if !strings.Contains(out, "not enrolled yet") || !strings.Contains(out, "alice@example.com") {
		t.Fatalf("user show:\n%s", out)
	}
	runJSON(t, "", &u, append([]string{"user", "edit", "alice", "--email", "a.liddell@example.org", "--display-name", "Alice L"}, d...)...)
	if u.Email != "a.liddell@example.org" || u.DisplayName != "Alice L" {
		t.Fatalf("user edit: %+v", u)
	}
	if _, se, code := run(t, "", append([]string{"user", "edit", "alice", "--email", "nope"}, d...)...); code != 1 || !strings.Contains(se, "not valid") {
		t.Fatalf("bad address: %d %s", code, se)
	}
	if _, _, code := run(t, "", append([]string{"user", "edit", "alice"}, d...)...); code != 2 {
		t.Fatalf("user edit without a change: exit %d", code)
	}
	var evs []admin.AuditEvent
	runJSON(t, "", &evs, append([]string{"audit", "--user", "alice"}, d...)...)
	found := false
	for _, e := range evs {
		found = found || (e.Event == "mfa_reset" && e.Detail["enroll_days"] == "14")
	}
	if !found {
		t.Fatalf("no mfa_reset with enroll_days 14 in %+v", evs)
	}
	s.stop()
}
