package scripts

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/internal/tools/testtool"
)

func TestRenderProduction(t *testing.T) {
	for _, name := range []string{Preinstall, Postinstall, Uninstall} {
		b, err := Render(name, Production("1.2.3"))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if !strings.HasPrefix(s, "#!/bin/sh\n") || !strings.Contains(s, "\nset -u\n") {
			t.Errorf("%s: no /bin/sh shebang or set -u", name)
		}
		if strings.Contains(s, "{{") || strings.Contains(s, "<no value>") {
			t.Errorf("%s: template not fully rendered", name)
		}
		for _, want := range []string{"PATH='/usr/bin:/bin:/usr/sbin:/sbin'", "DAEMON_LABEL='dev.lockstep.agent'",
			"INSTALL_LOG='/Library/Logs/Lockstep/install.log'", "DAEMON_PATH='/Library/Application Support/Lockstep/lockstepd'"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s lacks %s", name, want)
			}
		}
	}
	if _, err := Render("nope", Production("1")); err == nil {
		t.Error("unknown script rendered")
	}
}

// TestSyntax checks every script with sh -n (dash on Debian, the strictest
// POSIX sh at hand), bash --posix -n, and shellcheck -s sh. CI needs the
// Debian package shellcheck.
func TestSyntax(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{Preinstall, Postinstall, Uninstall} {
		b, err := Render(name, Production("1.2.3"))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o755)
		for _, argv := range [][]string{{"/bin/sh", "-n", p}, {"bash", "--posix", "-n", p}} {
			if out, err := exec.CommandContext(t.Context(), argv[0], argv[1:]...).CombinedOutput(); err != nil {
				t.Errorf("%v: %v\n%s", argv, err, out)
			}
		}
	}
	sc := testtool.Need(t, "shellcheck", "shellcheck")
	out, err := exec.CommandContext(t.Context(), sc, "-s", "sh", "-S", "info",
		filepath.Join(dir, Preinstall), filepath.Join(dir, Postinstall), filepath.Join(dir, Uninstall)).CombinedOutput()
	if err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}

func TestFreshInstallWithConsoleUser(t *testing.T) {
	m := newFakeMac(t)
	m.consoleUser("501", "jdoe")
	m.state("ps", "    0 /System/Library/CoreServices/loginwindow.app/Contents/MacOS/loginwindow\n  501 /System/Library/CoreServices/loginwindow.app/Contents/MacOS/loginwindow\n  501 /usr/sbin/cfprefsd")
	out, err := m.install()
	if err != nil {
		t.Fatalf("install failed: %v\n%s", err, out)
	}
	c := m.calls()
	if index(c, "launchctl bootout") >= 0 {
		t.Errorf("bootout on a fresh install:\n%s", strings.Join(c, "\n"))
	}
	ordered(t, c, "COPY",
		"launchctl enable system/dev.lockstep.agent",
		"launchctl bootstrap system "+m.vars.DaemonPlist,
		"launchctl kickstart system/dev.lockstep.agent",
		"launchctl bootstrap gui/501 "+m.vars.AgentPlist,
		"launchctl kickstart gui/501/dev.lockstep.menu")
	if n := count(c, "launchctl bootstrap gui/"); n != 1 {
		t.Errorf("%d GUI bootstraps, want 1 (uid 501 is both console and loginwindow user)", n)
	}
	if got := m.loaded(); got != "system/dev.lockstep.agent\ngui/501/dev.lockstep.menu" {
		t.Errorf("loaded services:\n%s", got)
	}
	if target, err := os.Readlink(m.vars.CLILink); err != nil || target != m.vars.CLIPath {
		t.Errorf("CLI link -> %q (%v), want %s", target, err, m.vars.CLIPath)
	}
	log, err := os.ReadFile(m.vars.InstallLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"preinstall", "postinstall", "loaded dev.lockstep.agent (attempt 1)", "starting the menu-bar app in gui/501"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("install.log lacks %q:\n%s", want, log)
		}
	}
}

func TestUpgradeStopsTheOldVersionFirst(t *testing.T) {
	m := newFakeMac(t)
	m.consoleUser("501", "jdoe")
	m.state("ps", "  501 /System/Library/CoreServices/loginwindow.app/Contents/MacOS/loginwindow\n  502 /System/Library/CoreServices/loginwindow.app/Contents/MacOS/loginwindow")
	m.state("loaded", "system/dev.lockstep.agent\ngui/501/dev.lockstep.menu\ngui/502/dev.lockstep.menu")
	out, err := m.install()
	if err != nil {
		t.Fatalf("install failed: %v\n%s", err, out)
	}
	c := m.calls()
	ordered(t, c, "launchctl bootout gui/501/dev.lockstep.menu", "launchctl bootout system/dev.lockstep.agent", "COPY",
		"launchctl bootstrap system", "launchctl kickstart system/dev.lockstep.agent")
	ordered(t, c, "launchctl bootout gui/502/dev.lockstep.menu", "COPY", "launchctl bootstrap gui/502 ")
	ordered(t, c, "COPY", "launchctl bootstrap gui/501 ")
	if got := m.loaded(); !strings.Contains(got, "gui/502/dev.lockstep.menu") || !strings.Contains(got, "system/dev.lockstep.agent") {
		t.Errorf("after the upgrade loaded:\n%s", got)
	}
}

func TestBootstrapRetries(t *testing.T) {
	m := newFakeMac(t)
	m.consoleUser("501", "jdoe")
	m.state("bootstrap_fails", "3")
	out, err := m.install()
	if err != nil {
		t.Fatalf("install failed: %v\n%s", err, out)
	}
	c := m.calls()
	if n := count(c, "launchctl bootstrap system"); n != 4 {
		t.Errorf("%d bootstrap attempts, want 4", n)
	}
	if n := count(c, "sleep 1"); n != 3 {
		t.Errorf("%d sleeps, want 3", n)
	}
	ordered(t, c, "launchctl bootstrap system", "sleep 1", "launchctl bootstrap system", "sleep 1",
		"launchctl bootstrap system", "sleep 1", "launchctl bootstrap system", "launchctl kickstart system/")
	if !strings.Contains(out, "loaded dev.lockstep.agent (attempt 4)") {
		t.Errorf("output:\n%s", out)
	}
}

func TestBootstrapGivesUp(t *testing.T) {
	m := newFakeMac(t)
	m.consoleUser("501", "jdoe")
	m.state("bootstrap_fails", "1000")
	out, err := m.install()
	if err == nil {
		t.Fatalf("install succeeded although lockstepd never loaded:\n%s", out)
	}
	c := m.calls()
	if n := count(c, "launchctl bootstrap system"); n != 30 {
		t.Errorf("%d bootstrap attempts, want 30", n)
	}
	if n := count(c, "sleep 1"); n != 29 {
		t.Errorf("%d sleeps, want 29", n)
	}
	if index(c, "launchctl bootstrap gui/") >= 0 || index(c, "launchctl kickstart") >= 0 {
		t.Error("went on after the daemon failed to load")
	}
	log, _ := os.ReadFile(m.vars.InstallLog)
	if !strings.Contains(string(log), "error: launchctl bootstrap system") || !strings.Contains(string(log), "failed 30 times") {
		t.Errorf("install.log does not say why:\n%s", log)
	}
}

// TestNoConsoleUserNeverFails covers the states where nobody can get the
// app: the install must succeed and load the daemon anyway.
func TestNoConsoleUserNeverFails(t *testing.T) {
	tests := []struct {
		name  string
		setup func(m *fakeMac)
		why   string
	}{
		{"login window", func(m *fakeMac) { m.consoleUser("0", "loginwindow") }, "nobody is logged in"},
		{"root at the console", func(m *fakeMac) { m.consoleUser("0", "root") }, "nobody is logged in"},
		{"no console information at all", func(m *fakeMac) {}, "nobody is logged in"},
		{"loginwindow name with a user uid", func(m *fakeMac) { m.consoleUser("501", "loginwindow") }, "nobody is logged in"},
		{"setup assistant user", func(m *fakeMac) { m.consoleUser("248", "_mbsetupuser") }, "nobody is logged in"},
		{"setup assistant running", func(m *fakeMac) {
			m.consoleUser("501", "jdoe")
			m.state("setup_assistant", "")
		}, "Setup Assistant is running"},
		{"setup not done", func(m *fakeMac) {
			m.consoleUser("501", "jdoe")
			os.Remove(m.vars.SetupDone)
		}, "Setup Assistant is running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newFakeMac(t)
			tt.setup(m)
			out, err := m.install()
			if err != nil {
				t.Fatalf("install failed: %v\n%s", err, out)
			}
			c := m.calls()
			if index(c, "launchctl bootstrap gui/") >= 0 {
				t.Errorf("started the app without a console user:\n%s", strings.Join(c, "\n"))
			}
			if index(c, "launchctl kickstart system/dev.lockstep.agent") < 0 {
				t.Error("daemon not started")
			}
			if !strings.Contains(out, tt.why) {
				t.Errorf("output does not say %q:\n%s", tt.why, out)
			}
		})
	}
}

func TestOtherVolumeTouchesNoLaunchd(t *testing.T) {
	m := newFakeMac(t)
	m.consoleUser("501", "jdoe")
	out, err := m.install("/tmp/Lockstep.pkg", "/", "/Volumes/Other", "/")
	if err != nil {
		t.Fatalf("install failed: %v\n%s", err, out)
	}
	if i := index(m.calls(), "launchctl"); i >= 0 {
		t.Errorf("launchctl called for a non-boot volume: %s", m.calls()[i])
	}
}

func TestPackageWithoutApp(t *testing.T) {
	m := newFakeMac(t)
	m.consoleUser("501", "jdoe")
	if out, err := m.run(Preinstall, "/p", "/", "/", "/"); err != nil {
		t.Fatal(err, out)
	}
	m.copyPayload(false)
	out, err := m.run(Postinstall, "/p", "/", "/", "/")
	if err != nil {
		t.Fatalf("postinstall failed: %v\n%s", err, out)
	}
	if index(m.calls(), "launchctl bootstrap gui/") >= 0 || !strings.Contains(out, "no menu-bar app") {
		t.Errorf("tried to start a missing app:\n%s", out)
	}
}

func installed(t *testing.T) *fakeMac {
	t.Helper()
	m := newFakeMac(t)
	m.consoleUser("501", "jdoe")
	m.state("ps", "  501 /System/Library/CoreServices/loginwindow.app/Contents/MacOS/loginwindow")
	if out, err := m.install(); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	m.write("/var/run/lockstepd.sock", "", 0o666)
	m.write("/Library/Application Support/Lockstep/status.plist", "<plist/>", 0o644)
	m.write("/Library/Application Support/Lockstep/journal/op-1.json", "{}", 0o600)
	m.write("/Library/Application Support/Lockstep/config.plist", "<plist/>", 0o600)
	m.write("/Library/Logs/Lockstep/lockstepd.log", "log", 0o644)
	os.Remove(filepath.Join(m.stateDir(), "calls"))
	return m
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func TestUninstallRemovesEverything(t *testing.T) {
	m := installed(t)
	out, err := m.run(Uninstall)
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	c := m.calls()
	ordered(t, c, "launchctl bootout gui/501/dev.lockstep.menu", "launchctl bootout system/dev.lockstep.agent",
		"pkgutil --forget dev.lockstep.agent.pkg")
	if m.loaded() != "" {
		t.Errorf("still loaded: %s", m.loaded())
	}
	for _, p := range []string{m.vars.DaemonPlist, m.vars.AgentPlist, m.vars.AppPath, m.vars.CLILink, m.vars.Socket,
		m.vars.SupportDir, m.vars.LogDir} {
		if exists(p) {
			t.Errorf("%s left behind", p)
		}
	}
	if exists(filepath.Join(m.stateDir(), "receipt")) {
		t.Error("receipt not forgotten")
	}
}

func TestUninstallKeepState(t *testing.T) {
	m := installed(t)
	out, err := m.run(Uninstall, "--keep-state")
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	for _, p := range []string{m.vars.DaemonPlist, m.vars.AgentPlist, m.vars.AppPath, m.vars.CLILink, m.vars.Socket,
		m.vars.DaemonPath, m.vars.CLIPath, m.vars.UninstallScript, m.vars.StatusPlist} {
		if exists(p) {
			t.Errorf("%s left behind", p)
		}
	}
	for _, p := range []string{"/Library/Application Support/Lockstep/journal/op-1.json",
		"/Library/Application Support/Lockstep/config.plist", "/Library/Logs/Lockstep/lockstepd.log", "/Library/Logs/Lockstep/install.log"} {
		if !exists(m.root + p) {
			t.Errorf("--keep-state removed %s", p)
		}
	}
}

func TestUninstallArguments(t *testing.T) {
	m := installed(t)
	// As the uninstall package's postinstall it gets the Installer's
	// arguments, which are not options.
	if out, err := m.run(Uninstall, "/tmp/Lockstep-Uninstall.pkg", "/", "/", "/"); err != nil {
		t.Fatalf("as a postinstall: %v\n%s", err, out)
	}
	m = installed(t)
	if out, err := m.run(Uninstall, "--bogus"); err == nil || !strings.Contains(out, "unknown option") {
		t.Errorf("unknown option accepted: %v\n%s", err, out)
	}
	if !exists(m.vars.DaemonPath) {
		t.Error("an invalid invocation removed files")
	}
	m.state("uid", "501")
	if out, err := m.run(Uninstall); err == nil || !strings.Contains(out, "must run as root") {
		t.Errorf("ran as a user: %v\n%s", err, out)
	}
}

func TestUninstallLeavesForeignCLILink(t *testing.T) {
	m := installed(t)
	os.Remove(m.vars.CLILink)
	os.Symlink("/opt/other/lockstep", m.vars.CLILink)
	if out, err := m.run(Uninstall); err != nil {
		t.Fatal(err, out)
	}
	if !exists(m.vars.CLILink) {
		t.Error("removed a link that is not Lockstep's")
	}
}

// TestUninstallRemovesServiceAccountWhileDaemonRuns checks that the
// uninstaller asks the still-running daemon to remove the _lockstep service
// account before it stops the daemon.
func TestUninstallRemovesServiceAccountWhileDaemonRuns(t *testing.T) {
	m := installed(t)
	os.Remove(m.vars.Socket)
	ln, err := net.Listen("unix", m.vars.Socket)
	if err != nil {
		t.Skipf("cannot make a unix socket at %s: %v", m.vars.Socket, err)
	}
	defer ln.Close()
	cli := "#!/bin/sh\nprintf '%s\\n' \"lockstep $*\" >>\"$STUB_DIR/calls\"\n"
	if err := os.WriteFile(m.vars.CLIPath, []byte(cli), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := m.run(Uninstall)
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	ordered(t, m.calls(), "lockstep service-account remove --socket "+m.vars.Socket, "launchctl bootout system/dev.lockstep.agent")
}
