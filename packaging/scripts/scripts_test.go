package scripts

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/packaging/launchd"
)

// stubs stand in for the macOS tools the scripts call. Each records its
// argv in $STUB_DIR/calls. launchctl keeps the loaded services in
// $STUB_DIR/loaded with launchctl's semantics: bootstrap fails for a
// service already loaded, bootout and kickstart fail for one that is not,
// and $STUB_DIR/bootstrap_fails makes that many bootstraps fail first (as
// when a bootout is still finishing).
var stubs = map[string]string{
	"launchctl": `
case "$1" in
print) grep -qxF "$2" "$STUB_DIR/loaded" 2>/dev/null; exit $? ;;
bootout)
	if grep -qxF "$2" "$STUB_DIR/loaded" 2>/dev/null; then
		grep -vxF "$2" "$STUB_DIR/loaded" >"$STUB_DIR/loaded.new"; mv "$STUB_DIR/loaded.new" "$STUB_DIR/loaded"; exit 0
	fi
	echo "Boot-out failed: 3: No such process" >&2; exit 3 ;;
bootstrap)
	n=$(cat "$STUB_DIR/bootstrap_fails" 2>/dev/null || echo 0)
	if [ "$n" -gt 0 ]; then echo $((n - 1)) >"$STUB_DIR/bootstrap_fails"; echo "Bootstrap failed: 5: Input/output error" >&2; exit 5; fi
	[ -f "$3" ] || { echo "Bootstrap failed: 2: No such file or directory" >&2; exit 2; }
	t="$2/$(basename "$3" .plist)"
	if grep -qxF "$t" "$STUB_DIR/loaded" 2>/dev/null; then echo "Bootstrap failed: 37: Operation already in progress" >&2; exit 37; fi
	echo "$t" >>"$STUB_DIR/loaded"; exit 0 ;;
kickstart) grep -qxF "$2" "$STUB_DIR/loaded" 2>/dev/null || { echo "Could not find service" >&2; exit 113; } ;;
enable | disable) exit 0 ;;
*) echo "stub launchctl: unexpected $*" >&2; exit 64 ;;
esac`,
	"stat": `
[ "$1" = -f ] || { echo "stub stat: unexpected $*" >&2; exit 64; }
case "$2" in
%u) cat "$STUB_DIR/console_uid" 2>/dev/null || exit 1 ;;
%Su) cat "$STUB_DIR/console_name" 2>/dev/null || exit 1 ;;
*) exit 64 ;;
esac`,
	"scutil": `
cat >/dev/null
if [ -f "$STUB_DIR/console_name" ]; then
	printf '<dictionary> {\n  GID : 20\n  Name : %s\n  SessionInfo : <array> {\n    0 : <dictionary> {\n      kCGSSessionUserNameKey : %s\n    }\n  }\n  UID : %s\n}\n' \
		"$(cat "$STUB_DIR/console_name")" "$(cat "$STUB_DIR/console_name")" "$(cat "$STUB_DIR/console_uid")"
else
	echo "  No such key"
fi`,
	"ps":      `cat "$STUB_DIR/ps" 2>/dev/null; exit 0`,
	"pgrep":   `[ "$1 $2" = "-x Setup Assistant" ] && [ -f "$STUB_DIR/setup_assistant" ]`,
	"pkgutil": `[ "$1" = --forget ] && [ -f "$STUB_DIR/receipt" ] && rm "$STUB_DIR/receipt"`,
	"sleep":   `exit 0`,
	"chown":   `exit 0`,
	"id":      `[ "$1" = -u ] && cat "$STUB_DIR/uid"`,
}

type fakeMac struct {
	t     *testing.T
	root  string
	stubs string
	vars  Vars
}

func newFakeMac(t *testing.T) *fakeMac {
	t.Helper()
	dir := t.TempDir()
	m := &fakeMac{t: t, root: filepath.Join(dir, "root"), stubs: filepath.Join(dir, "stubs")}
	os.MkdirAll(m.stubs, 0o755)
	for name, body := range stubs {
		script := "#!/bin/sh\nprintf '%s\\n' \"" + name + " $*\" >>\"$STUB_DIR/calls\"\n" + body + "\n"
		if err := os.WriteFile(filepath.Join(m.stubs, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m.vars = Production("1.2.3").Rooted(m.root)
	m.vars.Path = m.stubs + ":/usr/bin:/bin"
	for _, d := range []string{"/dev", "/var/db", "/var/run", "/usr/local"} {
		os.MkdirAll(m.root+d, 0o755)
	}
	m.write("/dev/console", "", 0o600)
	m.write("/var/db/.AppleSetupDone", "", 0o644)
	m.state("uid", "0")
	return m
}

func (m *fakeMac) write(p, content string, mode os.FileMode) {
	m.t.Helper()
	full := m.root + p
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		m.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		m.t.Fatal(err)
	}
}

// state writes a stub state file.
func (m *fakeMac) state(name, content string) {
	m.t.Helper()
	if err := os.WriteFile(filepath.Join(m.stubs, "..", name), []byte(content+"\n"), 0o644); err != nil {
		m.t.Fatal(err)
	}
}

func (m *fakeMac) stateDir() string { return filepath.Dir(m.stubs) }

func (m *fakeMac) consoleUser(uid, name string) {
	m.state("console_uid", uid)
	m.state("console_name", name)
}

// copyPayload does what the Installer does between the scripts: put the
// files in place. It marks the moment in the call log.
func (m *fakeMac) copyPayload(withApp bool) {
	m.t.Helper()
	f, _ := os.OpenFile(filepath.Join(m.stateDir(), "calls"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	fmt.Fprintln(f, "COPY")
	f.Close()
	daemon, _ := launchd.Marshal(launchd.Daemon())
	m.write(strings.TrimPrefix(m.vars.DaemonPlist, m.root), string(daemon), 0o644)
	m.write(strings.TrimPrefix(m.vars.DaemonPath, m.root), "#!/bin/sh\n", 0o755)
	m.write(strings.TrimPrefix(m.vars.CLIPath, m.root), "#!/bin/sh\n", 0o755)
	un, err := Render(Uninstall, m.vars)
	if err != nil {
		m.t.Fatal(err)
	}
	m.write(strings.TrimPrefix(m.vars.UninstallScript, m.root), string(un), 0o755)
	if withApp {
		agent, _ := launchd.Marshal(launchd.MenuAgent())
		m.write(strings.TrimPrefix(m.vars.AgentPlist, m.root), string(agent), 0o644)
		m.write(strings.TrimPrefix(m.vars.AppExecutable, m.root), "#!/bin/sh\n", 0o755)
	}
	m.state("receipt", "")
}

// run renders and runs a script with the Installer's arguments.
func (m *fakeMac) run(name string, args ...string) (string, error) {
	m.t.Helper()
	body, err := Render(name, m.vars)
	if err != nil {
		m.t.Fatal(err)
	}
	p := filepath.Join(m.stateDir(), name)
	if err := os.WriteFile(p, body, 0o755); err != nil {
		m.t.Fatal(err)
	}
	cmd := exec.CommandContext(m.t.Context(), "/bin/sh", append([]string{p}, args...)...)
	cmd.Env = append(os.Environ(), "STUB_DIR="+m.stateDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

func (m *fakeMac) install(args ...string) (string, error) {
	m.t.Helper()
	if len(args) == 0 {
		args = []string{"/tmp/Lockstep.pkg", "/", "/", "/"}
	}
	out, err := m.run(Preinstall, args...)
	if err != nil {
		m.t.Fatalf("preinstall failed: %v\n%s", err, out)
	}
	m.copyPayload(true)
	out2, err := m.run(Postinstall, args...)
	return out + out2, err
}

func (m *fakeMac) calls() []string {
	b, _ := os.ReadFile(filepath.Join(m.stateDir(), "calls"))
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func (m *fakeMac) loaded() string {
	b, _ := os.ReadFile(filepath.Join(m.stateDir(), "loaded"))
	return strings.TrimSpace(string(b))
}

// index returns the position of the first call starting with prefix, -1
// when there is none.
func index(calls []string, prefix string) int {
	for i, c := range calls {
		if strings.HasPrefix(c, prefix) {
			return i
		}
	}
	return -1
}

func count(calls []string, prefix string) int {
	n := 0
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// ordered fails unless every prefix occurs, in this order.
func ordered(t *testing.T, calls []string, prefixes ...string) {
	t.Helper()
	last := -1
	for _, p := range prefixes {
		i := index(calls[last+1:], p)
		if i < 0 {
			t.Fatalf("no %q after position %d in:\n%s", p, last, strings.Join(calls, "\n"))
		}
		last += 1 + i
	}
}
