package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// otherUID is the uid tests act as when they play a local user who is not
// alice: bob with root (the real peer credentials of another account), the
// test's own uid without (lockstepd then sees its own, admin, uid).
func otherUID() int {
	if os.Getuid() == 0 {
		return 503
	}
	return 0
}

// 15. Any local user may read the service account's state; doing so must
// run no tool as root, and above all must not sign in as the hidden admin
// (a failed login each time its stored password is stale).
func TestServiceAccountReadRunsNoTool(t *testing.T) {
	t.Parallel()
	u := newUser(t, shared, false)
	m := newMac(t, shared, u)
	r := m.cli(lines(adminPW), "service-account", "setup", "--admin", "admin", "--stdin")
	if r.code != 0 {
		t.Fatalf("service-account setup: %s", r)
	}
	before, err := m.sim.Invocations()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		r := m.cliAs(otherUID(), "", "service-account", "status")
		if r.code != 0 || !strings.Contains(r.stdout, text.ServiceReady.S()) {
			t.Fatalf("service-account status: %s", r)
		}
	}
	after, err := m.sim.Invocations()
	if err != nil {
		t.Fatal(err)
	}
	var ran []string
	for _, inv := range after[len(before):] {
		ran = append(ran, strings.Join(inv.Argv, " "))
		if inv.Tool == "dscl" && slices.Contains(inv.Argv, "-authonly") {
			t.Errorf("a read signed in as a local account: %s", strings.Join(inv.Argv, " "))
		}
	}
	if len(ran) > 0 {
		t.Errorf("5 reads of the service account ran %d tools as root:\n%s", len(ran), strings.Join(ran, "\n"))
	}
}

// 15. A managed-preferences plist nested 3 million deep: lockstepd refuses
// it with a message naming the file, instead of dying of a stack overflow
// (which launchd would restart into the same crash, forever).
func TestDeepManagedPreferencesAreRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	b, _ := json.Marshal(map[string]any{"DirectoryURL": "wss://127.0.0.1:1", "StateDir": filepath.Join(dir, "state"), "Socket": filepath.Join(dir, "d.sock"),
		"StatusPlist": filepath.Join(dir, "status.plist")})
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	const deep = 3_000_000
	var xml bytes.Buffer
	xml.WriteString(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>UserMap</key>`)
	xml.WriteString(strings.Repeat("<array>", deep))
	xml.WriteString(strings.Repeat("</array>", deep))
	xml.WriteString("</dict></plist>")
	// Within the size bound, half a million deep.
	text := "{ UserMap = " + strings.Repeat("(", 500_000) + strings.Repeat(")", 500_000) + "; }"
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"xml 3 million deep", xml.String(), "larger than"},
		{"openstep half a million deep", text, "nested more than"},
	} {
		managed := filepath.Join(dir, "dev.lockstep.agent.plist")
		if err := os.WriteFile(managed, []byte(tc.doc), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, bin.lockstepd, "run", "--config", cfg, "--managed", managed).CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s: lockstepd: %v\n%s", tc.name, err, tail(string(out), 2000))
		}
		if strings.Contains(string(out), "goroutine ") || !strings.Contains(string(out), managed) || !strings.Contains(string(out), tc.want) {
			t.Fatalf("%s: lockstepd exit %d:\n%s", tc.name, ee.ExitCode(), tail(string(out), 2000))
		}
		t.Logf("%s: lockstepd exit %d: %s", tc.name, ee.ExitCode(), strings.TrimSpace(tail(string(out), 300)))
	}
}

// 10. `sudo lockstep diagnose --out FILE` where another user planted FILE
// in a shared directory: a symbolic link to a file of root's, a hard link
// to one, or a file of their own they could read the bundle from. Each is
// refused and the file behind it keeps its content; a fresh name gets a
// 0600 file.
func TestDiagnoseDoesNotFollowPlantedLinks(t *testing.T) {
	t.Parallel()
	u := newUser(t, shared, false)
	m := newMac(t, shared, u)
	shared := filepath.Join(m.base, "tmp")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o1777); err != nil { // like /tmp
		t.Fatal(err)
	}
	victim := filepath.Join(m.base, "sudoers")
	if err := os.WriteFile(victim, []byte("root ALL=(ALL) ALL\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	plant := func(name string, fn func(path string) error) string {
		path := filepath.Join(shared, name)
		if err := fn(path); err != nil {
			t.Fatal(err)
		}
		if os.Getuid() == 0 {
			if err := os.Lchown(path, 503, 20); err != nil && !os.IsPermission(err) {
				t.Fatal(err)
			}
		}
		return path
	}
	// Each refusal names the file and why (the CLI runs as root, so the
	// planted links are not its own).
	cases := map[string]string{}
	out := plant("symlink.json", func(p string) error { return os.Symlink(victim, p) })
	cases[out] = text.CLIUnsafeFile(out, "not_regular", os.ModeSymlink.String())
	out = plant("hardlink.json", func(p string) error { return os.Link(victim, p) })
	cases[out] = text.CLIUnsafeFile(out, "hard_links", "2")
	if os.Getuid() == 0 {
		out = plant("theirs.json", func(p string) error { return os.WriteFile(p, nil, 0o666) })
		cases[out] = text.CLIUnsafeFile(out, "not_yours", "503")
	}
	for out, want := range cases {
		r := m.cli("", "diagnose", "--out", out)
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("diagnose --out %s: %s", filepath.Base(out), r)
		}
		if b, err := os.ReadFile(victim); err != nil || string(b) != "root ALL=(ALL) ALL\n" {
			t.Fatalf("diagnose --out %s wrote through the link: %q %v", filepath.Base(out), b, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(shared, "theirs.json")); len(b) != 0 {
		t.Errorf("the planted file got the bundle (%d bytes)", len(b))
	}
	out = filepath.Join(shared, "fresh.json")
	if r := m.cli("", "diagnose", "--out", out); r.code != 0 {
		t.Fatalf("diagnose to a fresh name: %s", r)
	}
	if fi, err := os.Lstat(out); err != nil || fi.Mode() != 0o600 {
		t.Fatalf("bundle: %v %v", fi.Mode(), err)
	}
}

// 3. A Mac enrolled with a token that assigns no user: alice's account is
// "not linked" and says how to link; a wrong directory password does not
// link it; the right one does, and then an administrator's reset reaches
// the Mac.
func TestLinkProvesThePassword(t *testing.T) {
	t.Parallel()
	u := newUser(t, shared, false)
	m := newMacAssigned(t, shared, u, nil)
	a := m.account()
	if a.State != localapi.StateNotLinked || a.Reason.Code != codes.ReasonNotLinked {
		t.Fatalf("before linking: %s (%+v)", a.State, a.Reason)
	}
	r := m.cli("", "status", "--user", "alice")
	if !strings.Contains(r.stdout, text.AccountState(localapi.StateNotLinked)) {
		t.Errorf("lockstep status: %s", r)
	}
	// As alice herself when the test can take her uid, else as root for her.
	link := func(pw string) cliResult {
		if os.Getuid() == 0 {
			return m.cliAs(502, lines(pw), "link", "--stdin")
		}
		return m.cli(lines(pw), "link", "--stdin", "--user", "alice")
	}
	r = link("Not-Her-Passw0rd-1")
	if r.code != 1 || !strings.Contains(r.stderr, text.ErrWrongLink.S()) {
		t.Fatalf("link with a wrong password: %s", r)
	}
	if a := m.account(); a.State != localapi.StateNotLinked {
		t.Fatalf("after a wrong password: %s", a.State)
	}
	r = link(u.password)
	if r.code != 0 || !strings.Contains(r.stdout, text.CLILinked.S(map[string]any{"Local": "alice", "Directory": u.name})) {
		t.Fatalf("link: %s", r)
	}
	if a := m.account(); a.State != localapi.StateInSync {
		t.Fatalf("after linking: %s (%+v)", a.State, a.Reason)
	}
	if _, err := shared.admin.ResetPassword(t.Context(), u.name, admin.ResetRequest{Password: protocol.Secret(newPassword())}); err != nil {
		t.Fatal(err)
	}
	m.waitState(localapi.StateSyncNeeded)
	assertNoSecrets(t, m, u, u.password, "Not-Her-Passw0rd-1")
}

// 3. A Mac that is not linked hears nothing of its user: an administrator's
// reset does not reach it.
func TestUnlinkedMacGetsNoPush(t *testing.T) {
	t.Parallel()
	u := newUser(t, shared, false)
	m := newMacAssigned(t, shared, u, nil)
	if _, err := shared.admin.ResetPassword(t.Context(), u.name, admin.ResetRequest{Password: protocol.Secret(newPassword())}); err != nil {
		t.Fatal(err)
	}
	// Another session's status and the reset's push would both have
	// arrived well within this.
	time.Sleep(2 * time.Second)
	if a := m.account(); a.State != localapi.StateNotLinked {
		t.Fatalf("after a reset the Mac should not hear of: %s (%+v)", a.State, a.Reason)
	}
}

// 3/15. An administrator revokes the Mac: lockstepd hears it at once (close
// code 4403) and says so, instead of retrying as if offline.
func TestRevokedMacSaysSo(t *testing.T) {
	t.Parallel()
	u := newUser(t, shared, false)
	m := newMac(t, shared, u)
	id := m.status().Directory.DeviceID
	if _, err := shared.admin.RevokeDevice(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	var d localapi.Connection
	m.eventually("lockstepd to say it was revoked", 10*time.Second, func() bool {
		d = m.status().Directory
		return d.State == localapi.ConnNotEnrolled && d.Problem == localapi.ProblemRevoked
	})
	r := m.cli("", "status")
	if !strings.Contains(r.stdout, text.StatusRevoked.S(map[string]any{"Since": text.Clock(d.Since)})) {
		t.Errorf("lockstep status does not say the Mac was revoked: %s", r)
	}
}
