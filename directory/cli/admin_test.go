package cli

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/protocol"
)

func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	d := []string{"--data", dir}
	const pw = "Initial-Pass-77!"
	secrets := []string{pw}

	var add struct {
		User admin.User `json:"user"`
		MFA  *struct {
			URI    string `json:"uri"`
			Secret string `json:"secret"`
		} `json:"mfa"`
	}
	runJSON(t, pw+"\n", &add, append([]string{"user", "add", "alice", "--display-name", "Alice Liddell", "--mfa"}, d...)...)
	if add.User.Name != "alice" || add.User.DisplayName != "Alice Liddell" || !add.User.MFA || add.MFA == nil ||
		!strings.HasPrefix(add.MFA.URI, "otpauth://totp/") || len(add.MFA.Secret) != 32 {
		t.Fatalf("user add: %+v %+v", add.User, add.MFA)
	}
	secrets = append(secrets, add.MFA.Secret)
	if _, se, code := run(t, pw+"\n", append([]string{"user", "add", "alice"}, d...)...); code != 1 || !strings.Contains(se, "already exists") {
		t.Fatalf("duplicate add: %d %s", code, se)
	}
	if _, se, code := run(t, "weak\n", append([]string{"user", "add", "bob"}, d...)...); code != 1 || !strings.Contains(se, "(min_length)") {
		t.Fatalf("weak add: %d %s", code, se)
	}

	var u admin.User
	runJSON(t, "", &u, append([]string{"user", "show", "alice"}, d...)...)
	if u.PasswordVersion != 1 || !u.MFA || u.Locked || u.MustChange || u.ExpiresAt == nil || u.Devices == nil {
		t.Fatalf("user show: %+v", u)
	}
	var list []admin.User
	runJSON(t, "", &list, append([]string{"user", "list"}, d...)...)
	if len(list) != 1 || list[0].Name != "alice" {
		t.Fatalf("user list: %+v", list)
	}

	var reset struct {
		User     admin.User `json:"user"`
		Password string     `json:"password"`
	}
	runJSON(t, "", &reset, append([]string{"user", "reset", "alice", "--temporary"}, d...)...)
	if reset.Password == "" || !reset.User.MustChange || reset.User.PasswordVersion != 2 {
		t.Fatalf("temporary reset: %+v", reset)
	}
	secrets = append(secrets, reset.Password)
	reset.Password = ""
	runJSON(t, "Chosen-By-Admin-5\n", &reset, append([]string{"user", "reset", "alice", "--stdin"}, d...)...)
	if reset.Password != "" || reset.User.MustChange || reset.User.PasswordVersion != 3 {
		t.Fatalf("stdin reset: %+v", reset)
	}
	secrets = append(secrets, "Chosen-By-Admin-5")
	if _, se, code := run(t, "Chosen-By-Admin-5\n", append([]string{"user", "reset", "alice", "--stdin"}, d...)...); code != 1 || !strings.Contains(se, "(history)") {
		t.Fatalf("reused password: %d %s", code, se)
	}

	var mfa struct {
		User admin.User `json:"user"`
		MFA  *struct {
			Secret string `json:"secret"`
		} `json:"mfa"`
	}
	runJSON(t, "", &mfa, append([]string{"user", "mfa", "alice", "--disable"}, d...)...)
	if mfa.User.MFA || mfa.MFA != nil {
		t.Fatalf("mfa disable: %+v", mfa)
	}
	runJSON(t, "", &mfa, append([]string{"user", "mfa", "alice", "--enable"}, d...)...)
	if !mfa.User.MFA || mfa.MFA == nil {
		t.Fatalf("mfa enable: %+v", mfa)
	}
	secrets = append(secrets, mfa.MFA.Secret)
	old := mfa.MFA.Secret
	runJSON(t, "", &mfa, append([]string{"user", "mfa", "alice", "--reset"}, d...)...)
	if mfa.MFA == nil || mfa.MFA.Secret == old {
		t.Fatalf("mfa reset: %+v", mfa)
	}
	secrets = append(secrets, mfa.MFA.Secret)
	if _, _, code := run(t, "", append([]string{"user", "mfa", "alice", "--enable", "--disable"}, d...)...); code != 2 {
		t.Fatalf("two mfa actions: exit %d", code)
	}
	runJSON(t, "", &u, append([]string{"user", "unlock", "alice"}, d...)...)
	if u.Locked {
		t.Fatal("still locked")
	}

	var tok struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	runJSON(t, "", &tok, append([]string{"enroll-token", "create", "--ttl", "1h", "--note", "mac-17"}, d...)...)
	if !strings.HasPrefix(tok.Token, "lst_") || time.Until(tok.ExpiresAt) > time.Hour || time.Until(tok.ExpiresAt) < 59*time.Minute {
		t.Fatalf("enroll token: %+v", tok)
	}
	secrets = append(secrets, tok.Token)

	var pol protocol.Policy
	runJSON(t, "", &pol, append([]string{"policy", "show"}, d...)...)
	if pol != protocol.DefaultPolicy() {
		t.Fatalf("policy show: %+v", pol)
	}
	runJSON(t, "", &pol, append([]string{"policy", "set", "--min-length", "14", "--symbol=true", "--history", "8"}, d...)...)
	if pol.MinLength != 14 || !pol.RequireSymbol || pol.HistoryCount != 8 || !pol.RequireUpper {
		t.Fatalf("policy set: %+v", pol)
	}
	if _, se, code := run(t, "", append([]string{"policy", "set", "--min-length", "0"}, d...)...); code != 1 || !strings.Contains(se, "min_length") {
		t.Fatalf("invalid policy: %d %s", code, se)
	}

	var evs []admin.AuditEvent
	runJSON(t, "", &evs, append([]string{"audit", "--user", "alice", "--since", "1h"}, d...)...)
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Event] = true
		if e.User != "alice" {
			t.Fatalf("audit --user alice returned %+v", e)
		}
	}
	for _, want := range []string{"user_created", "password_reset", "mfa_disable", "mfa_enable", "mfa_reset", "account_unlocked"} {
		if !seen[want] {
			t.Errorf("audit lacks %s: %v", want, seen)
		}
	}
	runJSON(t, "", &evs, append([]string{"audit"}, d...)...)
	if len(evs) == 0 {
		t.Fatal("empty audit log")
	}

	// --server/--token-file/--ca instead of --data; a wrong token is refused.
	info, err := admin.ReadInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	remote := []string{"--server", info.URL, "--token-file", info.TokenFile, "--ca", info.CAFile}
	runJSON(t, "", &list, append([]string{"user", "list"}, remote...)...)
	bad := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(bad, []byte("not-the-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, se, code := run(t, "", "user", "list", "--server", info.URL, "--token-file", bad, "--ca", info.CAFile); code != 1 || !strings.Contains(se, "admin token") {
		t.Fatalf("wrong token: %d %s", code, se)
	}

	var del map[string]string
	runJSON(t, "", &del, append([]string{"user", "delete", "alice"}, d...)...)
	if _, se, code := run(t, "", append([]string{"user", "show", "alice"}, d...)...); code != 1 || !strings.Contains(se, "no directory user") {
		t.Fatalf("show deleted: %d %s", code, se)
	}
	if _, _, code := run(t, "", "serve"); code != 2 {
		t.Fatalf("serve without --data: exit %d", code)
	}
	if _, _, code := run(t, "", "user", "frobnicate", "--data", dir); code != 2 {
		t.Fatalf("unknown subcommand: exit %d", code)
	}

	s.stop()
	logs := s.stderr.String()
	tokenBytes, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	secrets = append(secrets, strings.TrimSpace(string(tokenBytes)))
	for _, sec := range secrets {
		if strings.Contains(logs, sec) {
			t.Errorf("secret %q in the server log", sec)
		}
	}
	st, err := os.Stat(filepath.Join(dir, "admin.token"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token mode: %v %v", st.Mode().Perm(), err)
	}
}

// enrollDevice enrolls a new key with token against the server in dir, as
// an agent does.
func enrollDevice(t *testing.T, dir, token string) string {
	t.Helper()
	info, err := admin.ReadInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(info.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	body, _ := json.Marshal(protocol.EnrollRequest{Token: protocol.Secret(token), PublicKey: pub, Hostname: "mac-17"})
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := hc.Post(info.URL+protocol.EnrollPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var er protocol.EnrollResponse
	if err := json.NewDecoder(resp.Body).Decode(&er); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("enroll: HTTP %d %v", resp.StatusCode, err)
	}
	return er.DeviceID
}

// TestDeviceCommands (issue 10, items 3 and 14): an enrollment token binds
// the users it names; device list, assign, unassign and revoke work and
// are audited; text an administrator or a device put in (a note with
// terminal escapes) is printed escaped, never raw.
func TestDeviceCommands(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	d := []string{"--data", dir}
	for _, u := range []string{"alice", "bob"} {
		if _, se, code := run(t, "Initial-Pass-77!\n", append([]string{"user", "add", u}, d...)...); code != 0 {
			t.Fatalf("user add %s: %s", u, se)
		}
	}
	const note = "\x1b[31mred\u009b2J\u202eevil"
	if _, se, code := run(t, "", append([]string{"enroll-token", "create", "--user", "nobody"}, d...)...); code != 1 || !strings.Contains(se, "no directory user") {
		t.Fatalf("token for an unknown user: %d %s", code, se)
	}
	var tok struct {
		Token string `json:"token"`
	}
	runJSON(t, "", &tok, append([]string{"enroll-token", "create", "--user", "alice", "--user", "bob", "--note", note}, d...)...)
	id := enrollDevice(t, dir, tok.Token)

	var ds []admin.Device
	runJSON(t, "", &ds, append([]string{"device", "list"}, d...)...)
	if len(ds) != 1 || ds[0].ID != id || ds[0].Note != note || len(ds[0].Users) != 2 || ds[0].Users[0].User != "alice" ||
		ds[0].Users[1].BoundBy != "enrollment" || ds[0].RevokedAt != nil || ds[0].EnrolledAt.IsZero() {
		t.Fatalf("device list: %+v", ds)
	}
	var dev admin.Device
	runJSON(t, "", &dev, append([]string{"device", "unassign", id, "bob"}, d...)...)
	if len(dev.Users) != 1 {
		t.Fatalf("after unassign: %+v", dev)
	}
	runJSON(t, "", &dev, append([]string{"device", "assign", id, "bob"}, d...)...)
	if len(dev.Users) != 2 || dev.Users[1].BoundBy != "admin" {
		t.Fatalf("after assign: %+v", dev)
	}
	if _, _, code := run(t, "", append([]string{"device", "assign", id}, d...)...); code != 2 {
		t.Fatalf("assign without a user: exit %d", code)
	}
	if table, _, _ := run(t, "", append([]string{"device", "list"}, d...)...); !strings.Contains(table, "alice (enrollment), bob (admin)") {
		t.Errorf("device list lacks the users:\n%s", table)
	}
	out, se, code := run(t, "", append([]string{"device", "revoke", id}, d...)...)
	if code != 0 || !strings.Contains(out, "revoked "+id) {
		t.Fatalf("device revoke: %d %s %s", code, out, se)
	}
	if _, se, code := run(t, "", append([]string{"device", "revoke", "dev_NOPE"}, d...)...); code != 1 || !strings.Contains(se, "no device") {
		t.Fatalf("revoking an unknown device: %d %s", code, se)
	}
	table, _, _ := run(t, "", append([]string{"device", "list"}, d...)...)
	audit, _, _ := run(t, "", append([]string{"audit"}, d...)...)
	for name, text := range map[string]string{"device list": table, "audit": audit} {
		if strings.ContainsAny(text, "\x1b\u009b\u202e") {
			t.Errorf("%s prints terminal escapes raw:\n%q", name, text)
		}
		if !strings.Contains(text, `\x1b[31mred\u009b2J\u202eevil`) {
			t.Errorf("%s does not show the note escaped:\n%s", name, text)
		}
	}
	var evs []admin.AuditEvent
	runJSON(t, "", &evs, append([]string{"audit"}, d...)...)
	seen := map[string]string{}
	for _, e := range evs {
		seen[e.Event] = e.Actor
	}
	for _, ev := range []string{"device_enrolled", "device_assigned", "device_unassigned", "device_revoked"} {
		if want := "admin"; ev == "device_enrolled" {
			want = "device"
			if seen[ev] != want {
				t.Errorf("%s by %q, want %q", ev, seen[ev], want)
			}
		} else if seen[ev] != want {
			t.Errorf("%s by %q, want %q", ev, seen[ev], want)
		}
	}
	s.stop()
}
