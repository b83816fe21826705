package macsim_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/lockstep-dev/lockstep/macsim"
	"github.com/lockstep-dev/lockstep/macsim/macsimtest"
)

var bin string

func TestMain(m *testing.M) {
	b, cleanup, err := macsimtest.Build("")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = b
	code := m.Run()
	cleanup()
	os.Exit(code)
}

func spec() macsim.Spec {
	return macsim.Spec{
		FileVault: true, RecoveryKey: true, ConsoleUser: "alice", Disk: "disk3s1s1",
		Users: []macsim.UserSpec{
			{Name: "admin", RealName: "Local Admin", UID: 501, Password: "admin-pw-1", SecureToken: true, Admin: true},
			{Name: "alice", RealName: "Alice Example", UID: 502, Password: "alice-pw-1", SecureToken: true,
				GeneratedUID: "2DB09770-999B-43FB-99AF-2B878E4FE971"},
			{Name: "bob", UID: 503, Password: "bob-pw-11"},
			{Name: "long", UID: 504, Password: strings.Repeat("x", 128)},
		},
	}
}

type run struct {
	stdout, stderr string
	exit           int
}

// tool runs a simulated tool with no terminal, optionally as another uid.
func tool(t *testing.T, sim *macsim.Sim, cred *syscall.Credential, stdin, name string, args ...string) run {
	t.Helper()
	cmd := exec.Command(filepath.Join(sim.ToolsDir(), name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: cred}
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Dir = "/"
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return run{o.String(), e.String(), cmd.ProcessState.ExitCode()}
}

func wantPassword(t *testing.T, sim *macsim.Sim, user, pw string, want bool) {
	t.Helper()
	if ok, err := sim.CheckPassword(user, []byte(pw)); err != nil || ok != want {
		t.Errorf("password of %s is %q: %t %v, want %t", user, pw, ok, err, want)
	}
}

// The tools find their Mac from their own path, with an empty environment
// and from any directory.
func TestLocateWithoutEnvironment(t *testing.T) {
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	cmd := exec.Command(filepath.Join(sim.ToolsDir(), "dscl"), ".", "-read", "/Users/alice", "RealName")
	cmd.Env = []string{}
	cmd.Dir = os.TempDir()
	out, err := cmd.Output()
	if err != nil || string(out) != "RealName:\n Alice Example\n" {
		t.Fatalf("dscl with no environment: %q %v", out, err)
	}
	// A binary outside a tools dir has no Mac.
	link := filepath.Join(t.TempDir(), "dscl")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(link, ".", "-read", "/Users/alice").CombinedOutput(); err == nil || !strings.Contains(string(out), "no simulated Mac") {
		t.Errorf("binary outside a tools dir: %q %v", out, err)
	}
}

func TestCryptoUsersFixture(t *testing.T) {
	t.Parallel()
	sp := spec()
	sp.Users = sp.Users[1:2] // alice only: the tree of macos-tools.md §4.4
	sp.ConsoleUser = ""
	sim := macsimtest.New(t, bin, sp)
	want := "Cryptographic users for disk3s1s1 (2 found)\n|\n+-- 2DB09770-999B-43FB-99AF-2B878E4FE971\n|   Type: Local Open Directory User\n|   Volume Owner: Yes\n|\n+-- EBC6C064-0000-11AA-AA11-00306543ECAC\n    Type: Personal Recovery User\n    Volume Owner: Yes\n"
	if r := tool(t, sim, nil, "", "diskutil", "apfs", "listCryptoUsers", "/"); r.stdout != want || r.exit != 0 {
		t.Errorf("listCryptoUsers =\n%s(exit %d), want\n%s", r.stdout, r.exit, want)
	}
	sp.Users, sp.RecoveryKey = nil, false
	empty := macsimtest.New(t, bin, sp)
	if r := tool(t, empty, nil, "", "diskutil", "apfs", "listcryptousers", "/"); r.stdout != "No cryptographic users for disk3s1s1\n" {
		t.Errorf("empty listCryptoUsers = %q", r.stdout)
	}
}

func TestDsclFormats(t *testing.T) {
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	r := tool(t, sim, nil, "", "dscl", ".", "-read", "/Groups/admin", "GroupMembership")
	if r.stdout != "GroupMembership: root admin\n" {
		t.Errorf("GroupMembership = %q", r.stdout)
	}
	r = tool(t, sim, nil, "", "dscl", ".", "-list", "/Users", "UniqueID")
	if !strings.Contains(r.stdout, "alice  502\n") || !strings.Contains(r.stdout, "root   0\n") {
		t.Errorf("-list = %q", r.stdout)
	}
	r = tool(t, sim, nil, "", "dscl", ".", "-read", "/Users/alice")
	for _, want := range []string{"RealName:\n Alice Example\n", "UniqueID: 502\n", "PrimaryGroupID: 20\n", ";SecureToken;\n", "AuthenticationAuthority: ;ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2,SRP-RFC5054-4096-SHA512-PBKDF2> ;Kerberosv5;;alice@LKDC:SHA1."} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("-read lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := tool(t, sim, nil, "", "dscl", "nonsense", "-read", "/Users/alice"); r.stderr != "Data source (nonsense) is not valid.\n" || r.exit != 69 {
		t.Errorf("bad data source: %+v", r)
	}
}

// getpass keeps 128 bytes and drops the rest of the line; prompts go to
// stderr without a newline when there is no terminal.
func TestGetpassSemantics(t *testing.T) {
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	r := tool(t, sim, nil, strings.Repeat("x", 200)+"\n", "dscl", "/Local/Default", "-authonly", "long")
	if r.exit != 0 || r.stderr != "Password:" {
		t.Errorf("authonly with a 200-byte answer for a 128-byte password: %+v", r)
	}
	r = tool(t, sim, nil, "bob-new-pw-2\nbob-pw-11\n", "dscl", ".", "-passwd", "/Users/bob")
	// Run as root on a user without a token: the first answer resets.
	if r.exit != 0 || r.stderr != "New Password: " {
		t.Errorf("passwd: %+v", r)
	}
	wantPassword(t, sim, "bob", "bob-new-pw-2", true)
	r = tool(t, sim, nil, "alice-new-2\nalice-pw-1\n", "dscl", ".", "-passwd", "/Users/alice")
	if r.exit != 0 || r.stderr != "New Password: Permission denied. Please enter user's old password:" {
		t.Errorf("passwd of a token user: %+v", r)
	}
	wantPassword(t, sim, "alice", "alice-new-2", true)
	if ok, _ := sim.CheckFileVault("alice", []byte("alice-new-2")); !ok {
		t.Error("change with the old password did not move FileVault")
	}
	invs, err := sim.Invocations()
	if err != nil {
		t.Fatal(err)
	}
	last := invs[len(invs)-1]
	if last.StdinBytes != len("alice-new-2\nalice-pw-1\n") || last.TTY || strings.Join(last.Prompts, "|") != "New Password: |Permission denied. Please enter user's old password:" {
		t.Errorf("record = %+v", last)
	}
	b, _ := os.ReadFile(sim.RecordPath())
	if bytes.Contains(b, []byte("alice-new-2")) || bytes.Contains(b, []byte("bob-pw-11")) {
		t.Error("stdin content in the record")
	}
}

func TestConcurrentInvocations(t *testing.T) {
	t.Parallel()
	sp := spec()
	sp.Users, sp.ConsoleUser = nil, ""
	for i := range 12 {
		sp.Users = append(sp.Users, macsim.UserSpec{Name: fmt.Sprintf("u%d", i), UID: 600 + i, Password: fmt.Sprintf("old-pass-%d", i)})
	}
	sim := macsimtest.New(t, bin, sp)
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			tool(t, sim, nil, "", "dscl", ".", "-passwd", fmt.Sprintf("/Users/u%d", i), fmt.Sprintf("old-pass-%d", i), fmt.Sprintf("new-pass-%d", i))
		}()
		go func() {
			defer wg.Done()
			tool(t, sim, nil, "", "dscl", ".", "-read", fmt.Sprintf("/Users/u%d", i))
		}()
	}
	wg.Wait()
	for i := range 12 {
		wantPassword(t, sim, fmt.Sprintf("u%d", i), fmt.Sprintf("new-pass-%d", i), true)
	}
	invs, err := sim.Invocations()
	if err != nil || len(invs) != 24 {
		t.Errorf("%d invocations recorded (%v), want 24", len(invs), err)
	}
}

// Run as a simulated user, the tools refuse what only root may do.
func TestNonRootUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as simulated uids")
	}
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	bob := &syscall.Credential{Uid: 503, Gid: 20}
	// A reset of another user turns into "give the old password".
	r := tool(t, sim, bob, "", "dscl", ".", "-passwd", "/Users/alice", "new-pass-9")
	if r.exit != 10 || r.stderr != "Permission denied. Please enter user's old password:<dscl_cmd> DS Error: -14090 (eDSAuthFailed)\n" {
		t.Errorf("non-root reset: %+v", r)
	}
	// Even of itself, and of a user without a token.
	r = tool(t, sim, bob, "", "dscl", ".", "-passwd", "/Users/bob", "new-pass-9")
	if r.exit != 10 {
		t.Errorf("non-root reset of itself: %+v", r)
	}
	wantPassword(t, sim, "bob", "bob-pw-11", true)
	// A change with the old password is fine.
	if r := tool(t, sim, bob, "new-pass-9\nbob-pw-11\n", "dscl", ".", "-passwd", "/Users/bob"); r.exit != 0 {
		t.Errorf("non-root change of itself: %+v", r)
	}
	wantPassword(t, sim, "bob", "new-pass-9", true)
	r = tool(t, sim, bob, "", "dscl", ".", "-create", "/Users/bob", "IsHidden", "1")
	if r.exit != 40 || r.stdout != "<main> attribute status: eDSPermissionError\n" || r.stderr != "<dscl_cmd> DS Error: -14120 (eDSPermissionError)\n" {
		t.Errorf("non-root -create: %+v", r)
	}
	r = tool(t, sim, bob, "", "sysadminctl", "-resetPasswordFor", "bob", "-newPassword", "new-pass-10")
	if r.exit != 0 || !strings.Contains(r.stderr, "### Error:-14120") {
		t.Errorf("non-root sysadminctl reset: %+v", r)
	}
	wantPassword(t, sim, "bob", "new-pass-9", true)
	if r := tool(t, sim, bob, "", "diskutil", "apfs", "updatePreboot", "/"); r.exit == 0 {
		t.Errorf("non-root updatePreboot: %+v", r)
	}
	kc := filepath.Join(sim.Dir, "root", "Users", "alice", "Library", "Keychains", "login.keychain-db")
	r = tool(t, sim, bob, "alice-pw-1\n", "security", "unlock-keychain", kc)
	if r.exit != 173 || !strings.HasSuffix(r.stderr, "security: SecKeychainUnlock "+kc+": UNIX[Permission denied]\n") {
		t.Errorf("another user's keychain: %+v", r)
	}
	alice := &syscall.Credential{Uid: 502, Gid: 20}
	if r := tool(t, sim, alice, "alice-pw-1\n", "security", "unlock-keychain", kc); r.exit != 0 {
		t.Errorf("own keychain: %+v", r)
	}
	if r := tool(t, sim, alice, "", "security", "login-keychain"); r.stdout != "    \""+kc+"\"\n" {
		t.Errorf("login-keychain = %+v", r)
	}
	invs, _ := sim.Invocations()
	if last := invs[len(invs)-1]; last.UID != 502 || last.EUID != 502 || last.GID != 20 {
		t.Errorf("record uid = %+v", last)
	}
}

func TestSecurityCommands(t *testing.T) {
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	dir := filepath.Join(sim.Dir, "root", "Users", "bob", "Library", "Keychains")
	kc := filepath.Join(dir, "extra.keychain-db")
	if r := tool(t, sim, nil, "kc-pass-1\nkc-pass-1\n", "security", "create-keychain", kc); r.exit != 0 || r.stderr != "password for new keychain: retype password for new keychain: " {
		t.Fatalf("create-keychain: %+v", r)
	}
	if items, err := sim.OpenKeychain(kc, []byte("kc-pass-1")); err != nil || len(items) != 0 {
		t.Errorf("new keychain: %v %v", items, err)
	}
	r := tool(t, sim, nil, "kc-pass-1\nkc-pass-1\n", "security", "create-keychain", kc)
	if r.exit != 48 || !strings.HasSuffix(r.stderr, "security: SecKeychainCreate "+kc+": A keychain with the same name already exists.\n") {
		t.Errorf("duplicate create-keychain: %+v", r)
	}
	r = tool(t, sim, nil, "kc-pass-1\nnew-1\nnew-2\n", "security", "set-keychain-password", kc)
	if r.exit != 1 || !strings.HasSuffix(r.stderr, "security: try again\n") {
		t.Errorf("mismatched retype: %+v", r)
	}
	missing := filepath.Join(dir, "missing.keychain-db")
	r = tool(t, sim, nil, "", "security", "unlock-keychain", "-p", "x", missing)
	if r.exit != 50 || r.stderr != "security: SecKeychainUnlock "+missing+": The specified keychain could not be found.\n" {
		t.Errorf("missing keychain: %+v", r)
	}
	r = tool(t, sim, nil, "", "security", "unlock", "-p", "kc-pass-1", kc) // commands match by prefix
	if r.exit != 0 {
		t.Errorf("abbreviated command: %+v", r)
	}
}

// login-keychain can show the login keychain but never set it: Apple's
// keychain_login compiles out -s, and -d, as "#if 0 ... #else result = 1;
// #endif" (SecurityTool/keychain_list.c): exit 1, nothing printed, nothing
// set; in -i mode security.c reports "returned 1". Other usage errors are 2.
func TestLoginKeychainCannotBeSet(t *testing.T) {
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	login, _ := sim.LoginKeychainPath("alice")
	other := filepath.Join(filepath.Dir(login), "other.keychain-db")
	before, _ := sim.Snapshot()
	for _, c := range []struct {
		args   []string
		exit   int
		stderr string // "" means nothing at all
	}{
		{[]string{"-d", "user", "-s", other}, 1, ""},
		{[]string{"-s", other}, 1, ""},
		{[]string{"-s"}, 1, ""},
		{[]string{"-d", "user"}, 1, ""},
		{[]string{"-d", "sys"}, 1, ""},
		{[]string{"-d", "nowhere", "-s", other}, 2, "security: Invalid domain: nowhere\n"},
		{[]string{"-s", other, login}, 2, "Usage: login-keychain"},
		{[]string{"-x"}, 2, "Usage: login-keychain"},
	} {
		r := tool(t, sim, asAlice(), "", "security", append([]string{"login-keychain"}, c.args...)...)
		if r.exit != c.exit || r.stdout != "" || (c.stderr == "" && r.stderr != "") || !strings.HasPrefix(r.stderr, c.stderr) {
			t.Errorf("login-keychain %q = %+v, want exit %d, stderr %q", c.args, r, c.exit, c.stderr)
		}
	}
	r := tool(t, sim, asAlice(), "login-keychain -d user -s \""+other+"\"\n", "security", "-i")
	if r.exit != 1 || r.stdout != "" || r.stderr != "login-keychain: returned 1\n" {
		t.Errorf("login-keychain -s in security -i = %+v", r)
	}
	after, _ := sim.Snapshot()
	for i := range before.Users {
		if b, a := before.Users[i], after.Users[i]; a.DefaultKeychain != b.DefaultKeychain || !slices.Equal(a.SearchList, b.SearchList) {
			t.Errorf("%s: preferences changed from %q %q to %q %q", a.Name, b.DefaultKeychain, b.SearchList, a.DefaultKeychain, a.SearchList)
		}
	}
	if os.Geteuid() == 0 {
		// Shown as the user whose login keychain it is.
		if r := tool(t, sim, asAlice(), "", "security", "login-keychain"); r.exit != 0 || r.stdout != "    \""+login+"\"\n" {
			t.Errorf("login-keychain = %+v", r)
		}
	}
}

func TestSysadminctlUsage(t *testing.T) {
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	r := tool(t, sim, nil, "", "sysadminctl", "-bogus")
	if r.exit != 0 || !strings.Contains(r.stderr, "] Usage: sysadminctl\n") || !strings.Contains(r.stderr, "Pass '-' instead of password") {
		t.Errorf("usage: %+v", r)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	if err := sim.AddFault(macsim.Fault{Tool: "dscl", Verb: "authonly", Arg: "bob", Fail: "boom", Exit: 7, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if r := tool(t, sim, nil, "", "dscl", ".", "-authonly", "alice", "alice-pw-1"); r.exit != 0 {
		t.Errorf("fault for bob fired for alice: %+v", r)
	}
	if r := tool(t, sim, nil, "", "dscl", ".", "-authonly", "bob", "bob-pw-11"); r.exit != 7 || r.stderr != "boom\n" {
		t.Errorf("fault did not fire: %+v", r)
	}
	if r := tool(t, sim, nil, "", "dscl", ".", "-authonly", "bob", "bob-pw-11"); r.exit != 0 {
		t.Errorf("count-1 fault fired twice: %+v", r)
	}
	if err := sim.AddFault(macsim.Fault{Tool: "sysadminctl", Fail: "nope"}); err != nil {
		t.Fatal(err)
	}
	if r := tool(t, sim, nil, "", "sysadminctl", "-secureTokenStatus", "alice"); !strings.HasSuffix(r.stderr, "] nope\n") || r.exit != 0 {
		t.Errorf("sysadminctl fault without the NSLog prefix: %+v", r)
	}
	for _, bad := range []macsim.Fault{{Tool: "bash", Fail: "x"}, {Tool: "dscl"}, {Tool: "dscl", Hang: true, CrashCaller: true}} {
		if err := sim.AddFault(bad); err == nil {
			t.Errorf("fault %+v accepted", bad)
		}
	}
	snap, _ := sim.Snapshot()
	if len(snap.Faults) != 1 {
		t.Errorf("faults = %+v", snap.Faults)
	}
}

// crash-caller applies the step, then kills the process that ran the tool.
func TestCrashCaller(t *testing.T) {
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	if err := sim.AddFault(macsim.Fault{Tool: "dscl", Verb: "passwd", CrashCaller: true, Count: 1}); err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(sim.ToolsDir(), "dscl")
	cmd := exec.Command("sh", "-c", `"$0" . -passwd /Users/bob bob-pw-11 bob-new-pw-1; echo survived`, d)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL || strings.Contains(string(out), "survived") {
		t.Fatalf("caller not killed: %q %v", out, err)
	}
	wantPassword(t, sim, "bob", "bob-new-pw-1", true)
}

// A step run as a user may not kill a root caller: the caller's next tool
// run does it, before doing anything.
func TestCrashCallerDeferred(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a step as another uid")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv")
	}
	t.Parallel()
	sim := macsimtest.New(t, bin, spec())
	if err := sim.AddFault(macsim.Fault{Tool: "security", Verb: "set-keychain-password", CrashCaller: true, Count: 1}); err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(sim.Dir, "root", "Users", "alice", "Library", "Keychains", "login.keychain-db")
	script := `printf 'alice-pw-1\nalice-kc-2\nalice-kc-2\n' | setpriv --reuid=502 --regid=20 --clear-groups "$0/security" set-keychain-password "$1"; "$0/dscl" . -read /Users/bob; echo survived`
	out, err := exec.Command("sh", "-c", script, sim.ToolsDir(), kc).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL || strings.Contains(string(out), "survived") {
		t.Fatalf("caller not killed: %q %v", out, err)
	}
	if _, err := sim.OpenKeychain(kc, []byte("alice-kc-2")); err != nil {
		t.Errorf("the re-key did not land: %v", err)
	}
	invs, _ := sim.Invocations()
	if len(invs) != 2 || invs[0].Fault != "crash-caller-deferring" || invs[1].Fault != "crash-caller-deferred" || invs[1].Exit != 1 {
		t.Errorf("record = %+v", invs)
	}
}

func TestCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	specFile := filepath.Join(dir, "spec.json")
	b, _ := json.Marshal(spec())
	if err := os.WriteFile(specFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	mac := filepath.Join(dir, "mac")
	macsimCLI := func(stdin string, args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := macsimCLI("", "init", "--dir", mac, "--spec", specFile); code != 0 {
		t.Fatalf("init: %s", out)
	}
	if out, code := macsimCLI("", "init", "--dir", mac); code == 0 {
		t.Errorf("init over an existing Mac: %s", out)
	}
	for _, name := range macsim.Tools {
		if target, err := os.Readlink(filepath.Join(mac, "tools", name)); err != nil || target != "macsim" {
			t.Errorf("tools/%s -> %q %v", name, target, err)
		}
	}
	out, code := macsimCLI("", "state", "--dir", mac, "--json")
	var snap macsim.Snapshot
	if code != 0 || json.Unmarshal([]byte(out), &snap) != nil || len(snap.Users) != 4 || !snap.FileVault || snap.ConsoleUser != "alice" {
		t.Fatalf("state: %s", out)
	}
	if strings.Contains(out, "alice-pw-1") {
		t.Error("password in state output")
	}
	for _, c := range []struct {
		stdin, what string
		code        int
	}{{"alice-pw-1\n", "account", 0}, {"wrong\n", "account", 1}, {"alice-pw-1\n", "filevault", 0}, {"alice-pw-1\n", "keychain", 0}, {"wrong\n", "keychain", 1}} {
		if out, code := macsimCLI(c.stdin, "check", "--dir", mac, "--user", "alice", "--what", c.what); code != c.code {
			t.Errorf("check %s with %q: %s exit %d, want %d", c.what, c.stdin, out, code, c.code)
		}
	}
	if out, code := macsimCLI("", "fault", "--dir", mac, "--tool", "dscl", "--verb", "passwd", "--fail", "nope", "--count", "1"); code != 0 {
		t.Fatalf("fault: %s", out)
	}
	out, _ = macsimCLI("", "fault", "--dir", mac, "--list")
	var faults []macsim.Fault
	if json.Unmarshal([]byte(out), &faults) != nil || len(faults) != 1 || faults[0].Exit != 1 || faults[0].Count != 1 {
		t.Errorf("fault --list = %s", out)
	}
	if out, code := macsimCLI("", "fault", "--dir", mac, "--clear"); code != 0 {
		t.Errorf("fault --clear: %s", out)
	}
	if out, code := macsimCLI("", "fault", "--dir", mac, "--tool", "dscl"); code == 0 {
		t.Errorf("fault without a kind accepted: %s", out)
	}
	cmd := exec.Command(filepath.Join(mac, "tools", "fdesetup"), "isactive")
	if o, err := cmd.Output(); err != nil || string(o) != "true\n" {
		t.Errorf("fdesetup isactive: %q %v", o, err)
	}
	if out, code := macsimCLI("", "records", "--dir", mac); code != 0 || !strings.Contains(out, `"tool":"fdesetup"`) {
		t.Errorf("records: %s", out)
	}
}
