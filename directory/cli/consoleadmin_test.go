package cli

import (
	"strings"
	"testing"
)

// The console's administrators from the command line: add (password on
// stdin, the TOTP URI printed once), list, recover (a one-time password,
// TOTP cleared), delete; each is in the audit log and no secret is in the
// server's log.
func TestConsoleAdminCommands(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	d := []string{"--data", dir}
	const pw = "Console-Pass-77!"
	out, se, code := run(t, pw+"\n", append([]string{"admin", "add", "root"}, d...)...)
	if code != 0 || !strings.Contains(out, "created administrator root (admin)") || !strings.Contains(out, "otpauth://totp/") {
		t.Fatalf("admin add: %d %s %s", code, out, se)
	}
	uri := out[strings.Index(out, "otpauth://"):]
	uri = uri[:strings.Index(uri, "\n")]
	if _, se, code := run(t, pw+"\n", append([]string{"admin", "add", "eve", "--role", "root"}, d...)...); code != 1 || !strings.Contains(se, "role must be") {
		t.Fatalf("a bad role: %d %s", code, se)
	}
	if _, se, code := run(t, "short\n", append([]string{"admin", "add", "eve"}, d...)...); code != 1 || !strings.Contains(se, "(min_length)") {
		t.Fatalf("a weak password: %d %s", code, se)
	}
	if _, _, code := run(t, pw+"\n", append([]string{"admin", "add", "helen", "--role", "helpdesk"}, d...)...); code != 0 {
		t.Fatal("admin add helen")
	}
	out, _, _ = run(t, "", append([]string{"admin", "list"}, d...)...)
	if !strings.Contains(out, "helen") || !strings.Contains(out, "helpdesk") || strings.Contains(out, uri) {
		t.Fatalf("admin list: %s", out)
	}
	out, se, code = run(t, "", append([]string{"admin", "recover", "root"}, d...)...)
	if code != 0 || !strings.Contains(out, "one-time password (shown once): ") || !strings.Contains(out, "TOTP is cleared") {
		t.Fatalf("admin recover: %d %s %s", code, out, se)
	}
	once := strings.TrimSpace(strings.SplitN(out[strings.Index(out, "(shown once): ")+len("(shown once): "):], "\n", 2)[0])
	out, _, _ = run(t, "", append([]string{"admin", "list"}, d...)...)
	if !strings.Contains(out, "enrols at next sign-in") {
		t.Errorf("after recover the list reads %s", out)
	}
	if _, se, code := run(t, "", append([]string{"admin", "recover", "nobody"}, d...)...); code != 1 || !strings.Contains(se, "no administrator") {
		t.Fatalf("recover of an unknown administrator: %d %s", code, se)
	}
	if _, _, code := run(t, "", append([]string{"admin", "delete", "helen"}, d...)...); code != 0 {
		t.Fatal("admin delete")
	}
	out, _, _ = run(t, "", append([]string{"audit", "--limit", "50"}, d...)...)
	for _, ev := range []string{"console_admin_created", "console_admin_recovered", "console_admin_deleted"} {
		if !strings.Contains(out, ev) {
			t.Errorf("the audit log lacks %s:\n%s", ev, out)
		}
	}
	s.stop()
	logs := s.stderr.String()
	secret := uri[strings.Index(uri, "secret=")+7:]
	if i := strings.IndexByte(secret, '&'); i >= 0 {
		secret = secret[:i]
	}
	for _, sec := range []string{pw, once, secret} {
		if strings.Contains(logs+out, sec) {
			t.Errorf("a secret is in the log or the audit log")
		}
	}
}
