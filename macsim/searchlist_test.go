package macsim_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/macsim"
	"github.com/lockstep-dev/lockstep/macsim/macsimtest"
)

// parseList reads list-keychains output: quoted paths indented by four
// spaces (keychain_list.c display_name).
func parseList(t *testing.T, out string) []string {
	t.Helper()
	var paths []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		p, ok := strings.CutPrefix(l, "    \"")
		if !ok || !strings.HasSuffix(p, "\"") {
			t.Fatalf("list-keychains line %q", l)
		}
		paths = append(paths, strings.TrimSuffix(p, "\""))
	}
	return paths
}

// The user's keychain search list is in the user's session (facts K2): a
// daemon's child sees only the System keychain, even as the user, and what
// it sets does not reach the user; `launchctl asuser UID sudo -u USER
// security list-keychains` reads and sets it (K3, K4). -s replaces the list.
func TestSearchListLivesInTheUsersSession(t *testing.T) {
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	login, _ := sim.LoginKeychainPath("alice")
	security, sudo := filepath.Join(sim.ToolsDir(), "security"), filepath.Join(sim.ToolsDir(), "sudo")
	inSession := func(stdin string, args ...string) run {
		return tool(t, sim, nil, stdin, "launchctl", append([]string{"asuser", "502", sudo, "-u", "alice", security}, args...)...)
	}

	r := tool(t, sim, asAlice(), "", "security", "list-keychains")
	if got := parseList(t, r.stdout); r.exit != 0 || !slices.Equal(got, []string{"/Library/Keychains/System.keychain"}) {
		t.Fatalf("list-keychains outside the user's session = %q (%+v)", got, r)
	}
	if r := tool(t, sim, asAlice(), "", "security", "list-keychains", "-d", "user"); r.exit != 0 || r.stdout != "" {
		t.Fatalf("list-keychains -d user outside the user's session = %+v", r)
	}

	r = inSession("", "list-keychains", "-d", "user")
	if got := parseList(t, r.stdout); r.exit != 0 || !slices.Equal(got, []string{login}) {
		t.Fatalf("the user's list in her session = %q (%+v)", got, r)
	}
	r = inSession("", "list-keychains")
	if got := parseList(t, r.stdout); !slices.Equal(got, []string{login, "/Library/Keychains/System.keychain"}) {
		t.Fatalf("the whole list in her session = %q", got)
	}

	old := filepath.Join(filepath.Dir(login), "login_renamed_1.keychain-db")
	if err := os.WriteFile(old, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Set from outside: accepted, and lost.
	if r := tool(t, sim, asAlice(), "", "security", "list-keychains", "-d", "user", "-s", login, old); r.exit != 0 {
		t.Fatalf("set outside: %+v", r)
	}
	if got := parseList(t, inSession("", "list-keychains", "-d", "user").stdout); !slices.Equal(got, []string{login}) {
		t.Fatalf("a list set outside the session reached it: %q", got)
	}
	// -s replaces the whole list.
	if r := inSession("", "list-keychains", "-d", "user", "-s", old); r.exit != 0 {
		t.Fatal(r)
	}
	if got := parseList(t, inSession("", "list-keychains", "-d", "user").stdout); !slices.Equal(got, []string{old}) {
		t.Fatalf("-s with one keychain = %q", got)
	}
	if r := inSession("", "list-keychains", "-d", "user", "-s", login, old); r.exit != 0 {
		t.Fatal(r)
	}
	snap, err := sim.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range snap.Users {
		if u.Name == "alice" && !slices.Equal(u.SearchList, []string{login, old}) {
			t.Errorf("snapshot search list %q", u.SearchList)
		}
	}
	invs, err := sim.Invocations()
	if err != nil {
		t.Fatal(err)
	}
	last := invs[len(invs)-1]
	if last.Tool != "security" || last.Session != macsim.GUISession(502) || last.EUID != 502 {
		t.Errorf("security under launchctl asuser and sudo ran as %d in %q", last.EUID, last.Session)
	}
}

// sudo takes root to another user without a password, exits with the
// program's status, and refuses everyone else (facts K4).
func TestSudo(t *testing.T) {
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	security := filepath.Join(sim.ToolsDir(), "security")
	login, _ := sim.LoginKeychainPath("alice")
	if r := tool(t, sim, nil, "", "sudo", "-u", "alice", security, "unlock-keychain", "-p", "wrong-pw", login); r.exit != 51 {
		t.Fatalf("sudo's exit is not the program's: %+v", r)
	}
	if r := tool(t, sim, nil, "", "sudo", "-u", "nobody-here", security, "list-keychains"); r.exit != 1 || !strings.Contains(r.stderr, "unknown user") {
		t.Fatalf("unknown user: %+v", r)
	}
	if r := tool(t, sim, nil, "", "sudo", "-u", "alice", "security", "list-keychains"); r.exit != 1 {
		t.Fatalf("relative program: %+v", r)
	}
	if os.Geteuid() == 0 {
		if r := tool(t, sim, asAlice(), "", "sudo", "-u", "bob", security, "list-keychains"); r.exit != 1 || !strings.Contains(r.stderr, "password is required") {
			t.Fatalf("sudo as alice to bob: %+v", r)
		}
	}
}
