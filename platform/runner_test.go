package platform

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/macsim"
)

func TestRunnerPaths(t *testing.T) {
	t.Parallel()
	real := NewRunner(Config{})
	for tool, want := range map[Tool]string{
		Dscl: "/usr/bin/dscl", Sysadminctl: "/usr/sbin/sysadminctl", Fdesetup: "/usr/bin/fdesetup",
		Security: "/usr/bin/security", Diskutil: "/usr/sbin/diskutil", Scutil: "/usr/sbin/scutil",
	} {
		if got, err := real.Path(tool); err != nil || got != want {
			t.Errorf("Path(%s) = %s %v, want %s", tool, got, err, want)
		}
		sim := NewRunner(Config{ToolsDir: "/opt/sim/tools"})
		if got, _ := sim.Path(tool); got != filepath.Join("/opt/sim/tools", filepath.Base(want)) {
			t.Errorf("ToolsDir Path(%s) = %s", tool, got)
		}
	}
	if _, err := real.Path("sh"); err == nil {
		t.Error("a tool outside the allow-list has a path")
	}
	if _, err := real.Run(t.Context(), Cmd{Tool: "sh", Args: []string{"-c", "true"}}); err == nil {
		t.Error("ran a tool outside the allow-list")
	}
	if _, err := NewRunner(Config{ToolsDir: "relative/tools"}).Run(t.Context(), Cmd{Tool: Dscl}); err == nil {
		t.Error("ran a tool by a relative path")
	}
}

func TestRunnerChildEnvironment(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	ctx := t.Context()
	res, err := m.r.Run(ctx, Cmd{Tool: Dscl, Args: []string{".", "-authonly", "alice"}}) // stdin: /dev/null
	if err != nil {
		t.Fatal(err)
	}
	if res.Exit != 10 {
		t.Errorf("authonly with no stdin: exit %d, want 10 (an empty password)", res.Exit)
	}
	alice, err := NewAccounts(m.r).Lookup(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.r.Run(ctx, Cmd{Tool: Security, Args: []string{"show-keychain-info", loginKeychainPath(alice)}, As: alice.Credential()}); err != nil {
		t.Fatal(err)
	}
	invs, err := m.sim.Invocations()
	if err != nil {
		t.Fatal(err)
	}
	for _, inv := range invs {
		keys := make([]string, 0, len(inv.Env))
		for k := range inv.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := "LANG,PATH"
		if inv.Tool == "security" {
			want = "HOME,LANG,LOGNAME,PATH,USER"
			if inv.Env["HOME"] != alice.Home || inv.Env["USER"] != "alice" {
				t.Errorf("user environment = %v", inv.Env)
			}
			if os.Geteuid() == 0 && (inv.UID != 502 || inv.EUID != 502 || inv.GID != 20) {
				t.Errorf("security ran as %d/%d/%d", inv.UID, inv.EUID, inv.GID)
			}
		}
		if strings.Join(keys, ",") != want || inv.Env["PATH"] != childPATH {
			t.Errorf("%s environment = %v, want only %s", inv.Tool, inv.Env, want)
		}
		if inv.SID != inv.PID || inv.PGID != inv.PID {
			t.Errorf("%s not in its own session: pid %d sid %d pgid %d", inv.Tool, inv.PID, inv.SID, inv.PGID)
		}
		if inv.Cwd != "/" {
			t.Errorf("%s cwd = %s", inv.Tool, inv.Cwd)
		}
		if inv.TTY {
			t.Errorf("%s had a terminal", inv.Tool)
		}
	}
	if !strings.Contains(m.log.String(), `"msg":"tool run","tool":"dscl","verb":"authonly","exit":10`) {
		t.Errorf("run not logged: %s", m.log.String())
	}
}

// procAlive reports whether pid is a live (not zombie) process.
func procAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func TestRunnerTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	m := newMac(t, testSpec())
	if err := m.sim.AddFault(macsim.Fault{Tool: "dscl", Verb: "authonly", Hang: true}); err != nil {
		t.Fatal(err)
	}
	r := NewRunner(Config{ToolsDir: m.sim.ToolsDir(), Timeout: 500 * time.Millisecond, Log: m.r.log})
	err := NewAccounts(r).VerifyPassword(t.Context(), "alice", []byte(alicePW))
	var te *ToolError
	if !errors.Is(err, ErrTimeout) || !errors.As(err, &te) || te.Tool != Dscl {
		t.Fatalf("VerifyPassword on a hanging dscl: %v", err)
	}
	invs, _ := m.sim.Invocations()
	hung := invs[len(invs)-1]
	if hung.Fault != "hang" || len(hung.HangPIDs) == 0 {
		t.Fatalf("no hang recorded: %+v", hung)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range append([]int{hung.PID}, hung.HangPIDs...) {
		for procAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if procAlive(pid) {
			t.Errorf("process %d of the timed-out group still runs", pid)
		}
	}
}

func TestRunnerCancel(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	if err := m.sim.AddFault(macsim.Fault{Tool: "scutil", Hang: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	_, _, err := NewConsole(m.r).User(ctx)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Errorf("cancelled run: %v", err)
	}
}

// sysadminctl prompting for something the platform has no answer for is
// killed, not left waiting.
func TestRunnerUnexpectedPrompt(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	res, err := m.r.Run(t.Context(), Cmd{
		Tool: Sysadminctl,
		Args: []string{"-adminUser", "admin", "-adminPassword", "-", "-resetPasswordFor", "bob", "-newPassword", "-"},
		Prompter: promptFunc(func(p string) ([]byte, error) {
			if strings.Contains(p, "admin") {
				return []byte(adminPW), nil
			}
			return nil, fmt.Errorf("unexpected prompt %q", p)
		}),
	})
	if err == nil || !strings.Contains(err.Error(), "unexpected prompt") {
		t.Fatalf("unexpected prompt: %v", err)
	}
	if len(res.Prompts) != 2 {
		t.Errorf("prompts seen: %q", res.Prompts)
	}
	m.wantPassword(t, "bob", bobPW, true)
	m.noSecrets(t, adminPW)
}

// promptFunc is a Prompter made of a function.
type promptFunc func(string) ([]byte, error)

func (f promptFunc) Answer(p string) ([]byte, error) { return f(p) }
