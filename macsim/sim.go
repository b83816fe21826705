package macsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Tools are the macOS commands the simulator answers to, by argv[0] basename.
var Tools = []string{"dscl", "sysadminctl", "fdesetup", "security", "diskutil", "scutil", "launchctl", "pwpolicy", "sudo"}

// Invocation is one line of D/state/invocations.jsonl: what a tool was asked
// to do and by whom. Secrets read from stdin or the terminal are never
// recorded, only how many bytes were read.
type Invocation struct {
	Time       time.Time         `json:"time"`
	Tool       string            `json:"tool"`
	Verb       string            `json:"verb"`
	Argv       []string          `json:"argv"`
	UID        int               `json:"uid"`
	EUID       int               `json:"euid"`
	GID        int               `json:"gid"`
	PID        int               `json:"pid"`
	PPID       int               `json:"ppid"`
	PGID       int               `json:"pgid"`
	SID        int               `json:"sid"`
	Env        map[string]string `json:"env"`
	Cwd        string            `json:"cwd"`
	StdinBytes int               `json:"stdin_bytes"`
	TTY        bool              `json:"tty"`
	Prompts    []string          `json:"prompts,omitempty"`
	// Commands are the commands a `security -i` run read from stdin, by
	// name only (their arguments may hold passwords).
	Commands []string `json:"commands,omitempty"`
	// Session is the security session the tool ran in (session.go).
	Session string `json:"session,omitempty"`
	// AuthFailures are the local accounts whose password this run failed
	// to authenticate: each is a failed login on a Mac, counted by its
	// lockout policy and logged.
	AuthFailures []string `json:"auth_failures,omitempty"`
	Exit         int      `json:"exit"`
	Fault        string   `json:"fault,omitempty"`
	HangPIDs     []int    `json:"hang_pids,omitempty"`
}

// Main is the simulator's entry point: it acts as the tool named by the
// basename of args[0], or runs the macsim command line otherwise. It returns
// the process exit code.
func Main(args []string) int {
	name := filepath.Base(args[0])
	if slices.Contains(Tools, name) {
		return runTool(name, args[1:])
	}
	return runCLI(args[1:], os.Stdin, os.Stdout, os.Stderr)
}

// locate finds the simulated Mac this binary belongs to from its own path
// (never from the caller's environment): the binary lives in D/tools, the
// state in D/state. os.Executable resolves the tool symlinks to D/tools/macsim.
func locate() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	dir := filepath.Dir(filepath.Dir(exe))
	if _, err := os.Stat(filepath.Join(stateDir(dir), stateFileName)); err != nil {
		return "", fmt.Errorf("no simulated Mac beside %s: %w", exe, err)
	}
	return dir, nil
}

// inv is one running tool invocation.
type inv struct {
	dir    string
	st     *State
	dirty  bool
	args   []string
	stdout io.Writer
	stderr io.Writer
	rec    Invocation
	tty    *os.File
	ttyErr error
	euid   int
	tool   string
	// unlockState releases the state lock early (a hanging tool).
	unlockState func()
	// crashPending: a crash-caller fault fired; deliverCrash kills the
	// caller.
	crashPending bool
	// finished: the record is written (launchctl before its exec).
	finished bool
}

func runTool(tool string, args []string) int {
	dir, err := locate()
	if err != nil {
		fmt.Fprintf(os.Stderr, "macsim(%s): %v\n", tool, err)
		return 70
	}
	unlock, err := lockState(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "macsim(%s): %v\n", tool, err)
		return 70
	}
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	st, err := loadState(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "macsim(%s): %v\n", tool, err)
		return 70
	}
	in := &inv{dir: dir, st: st, args: args, stdout: os.Stdout, stderr: os.Stderr, euid: os.Geteuid(), tool: tool}
	if uid, ok := st.actingUID(os.Getpid()); ok {
		in.euid = uid // a simulated sudo became this user without root
	}
	in.rec = Invocation{
		Time: time.Now().UTC(), Tool: tool, Verb: toolVerb(tool, args), Argv: append([]string{tool}, args...),
		UID: os.Getuid(), EUID: in.euid, GID: os.Getgid(), PID: os.Getpid(), PPID: os.Getppid(), Env: map[string]string{},
	}
	in.rec.Session = st.sessionOf(os.Getpid()).ID
	in.rec.Cwd, _ = os.Getwd()
	in.rec.PGID, _ = unix.Getpgid(0)
	in.rec.SID, _ = unix.Getsid(0)
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		in.rec.Env[k] = v
	}
	in.actAsNamedUser()
	defer func() {
		if in.tty != nil {
			in.tty.Close()
		}
	}()

	if st.DeferredCrash != nil && st.DeferredCrash.PID == in.rec.PPID {
		// The caller's previous step asked for its death but could not deliver
		// it (that step ran as another uid): the caller dies now, before this
		// step does anything, as if it had died right after the previous one.
		if err := syscall.Kill(in.rec.PPID, syscall.SIGKILL); err == nil || errors.Is(err, syscall.ESRCH) {
			st.DeferredCrash = nil
			in.dirty = true
			in.rec.Fault = "crash-caller-deferred"
			in.rec.Exit = 1
			in.finish()
			return 1
		}
	}
	in.unlockState = func() {
		if locked {
			unlock()
			locked = false
		}
	}
	f := st.matchFault(tool, in.rec.Verb, args)
	if f != nil {
		in.dirty = true
	}
	switch {
	case f != nil && f.Hang:
		in.hang()
	case f != nil && !f.CrashCaller:
		code := in.fail(f)
		in.rec.Exit = code
		in.finish()
		return code
	}

	code := in.dispatch()
	in.rec.Exit = code
	if f != nil {
		in.crashCaller()
	}
	in.finish()
	in.deliverCrash()
	return code
}

// hang records the invocation, starts a helper that keeps stdout and stderr
// open in the tool's process group, and blocks until the caller's timeout
// kills the group. Nothing changes.
func (in *inv) hang() {
	in.rec.Fault = "hang"
	in.rec.HangPIDs = in.hangHelpers()
	in.rec.Exit = -1
	in.finish()
	in.unlockState()
	for {
		time.Sleep(time.Hour)
	}
}

// fail prints a failure fault's texts (with the NSLog prefix for
// sysadminctl) and returns its exit status.
func (in *inv) fail(f *Fault) int {
	in.rec.Fault = "fail"
	if f.Stdout != "" {
		fmt.Fprintln(in.stdout, f.Stdout)
	}
	if f.Fail != "" {
		if in.tool == "sysadminctl" {
			in.nslog("%s", f.Fail)
		} else {
			fmt.Fprintln(in.stderr, f.Fail)
		}
	}
	return f.Exit
}

// crashCaller arms a crash-caller fault whose step has been applied: the
// caller dies mid-step, as a daemon killed between a tool's success and its
// own bookkeeping. A tool run as another user may not signal the caller: then
// the next tool the caller starts delivers the kill instead, before doing
// anything.
func (in *inv) crashCaller() {
	in.rec.Fault = "crash-caller"
	in.crashPending = true
	if err := syscall.Kill(in.rec.PPID, 0); errors.Is(err, syscall.EPERM) {
		in.st.DeferredCrash = &DeferredCrash{PID: in.rec.PPID}
		in.rec.Fault = "crash-caller-deferring"
		in.dirty = true
		in.crashPending = false
	}
}

// deliverCrash kills the caller when a crash-caller fault fired and may be
// delivered now.
func (in *inv) deliverCrash() {
	if in.crashPending {
		in.crashPending = false
		_ = syscall.Kill(in.rec.PPID, syscall.SIGKILL)
	}
}

// actAsNamedUser gives a step that an unprivileged test run could not
// switch to its user the identity it would have on a Mac. Root-only steps
// run as the simulated superuser (RootUID); a step meant for a user (the
// platform's keychain and "change as the user" steps) gets that user's HOME,
// USER and LOGNAME but, without root, still the same uid. On a Mac it would
// run as the user, so it is that user here: a user's dscl -passwd needs the
// old password, and a user's keychain search list is theirs, not root's.
func (in *inv) actAsNamedUser() {
	if in.st.RootUID == 0 || in.euid != in.st.RootUID {
		return
	}
	name := in.rec.Env["USER"]
	if name == "" || in.rec.Env["LOGNAME"] != name {
		return
	}
	if rec := in.st.user(name); rec != nil {
		in.euid = rec.uid()
		in.rec.EUID = in.euid
	}
}

// isRoot reports whether the caller is the simulated superuser: uid 0, or
// the unprivileged uid that built this Mac.
func (in *inv) isRoot() bool { return in.euid == 0 || in.euid == in.st.RootUID }

func (in *inv) dispatch() int {
	switch in.tool {
	case "dscl":
		return in.dscl()
	case "sysadminctl":
		return in.sysadminctl()
	case "fdesetup":
		return in.fdesetup()
	case "security":
		return in.security()
	case "diskutil":
		return in.diskutil()
	case "scutil":
		return in.scutil()
	case "launchctl":
		return in.launchctl()
	case "pwpolicy":
		return in.pwpolicy()
	case "sudo":
		return in.sudo()
	}
	return 70
}

// finish saves the state when it changed and appends the invocation record.
func (in *inv) finish() {
	if in.finished {
		return
	}
	if in.dirty {
		in.st.pruneSessions()
		in.st.pruneActing()
		if err := saveState(in.dir, in.st); err != nil {
			fmt.Fprintf(os.Stderr, "macsim: save state: %v\n", err)
		}
	}
	b, _ := json.Marshal(in.rec)
	f, err := os.OpenFile(filepath.Join(stateDir(in.dir), recordFileName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "macsim: record: %v\n", err)
		return
	}
	_, _ = f.Write(append(b, '\n'))
	f.Close()
}

// hangHelpers starts a helper in the tool's own process group that holds the
// tool's stdout and stderr open, so only a runner that kills the whole group
// (not just its child) gets its pipes back.
func (in *inv) hangHelpers() []int {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	cmd := exec.Command(exe, "__hang")
	cmd.Args[0] = "macsim"
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil
	}
	return []int{cmd.Process.Pid}
}

// toolVerb names the operation of an invocation, for faults and the record.
func toolVerb(tool string, args []string) string {
	switch tool {
	case "dscl":
		_, cmd, _, _ := splitDscl(args)
		return strings.TrimPrefix(cmd, "-")
	case "sysadminctl":
		for _, a := range args {
			switch a {
			case "-resetPasswordFor", "-secureTokenStatus", "-addUser", "-secureTokenOn", "-secureTokenOff", "-deleteUser":
				return strings.TrimPrefix(a, "-")
			}
		}
	case "security":
		if slices.Contains(args, "-i") && !slices.ContainsFunc(args, func(a string) bool { return matchSecurityCommand(a) != "" }) {
			return "interactive"
		}
		if len(args) > 0 {
			if c := matchSecurityCommand(args[0]); c != "" {
				return c
			}
			return args[0]
		}
	case "fdesetup":
		if len(args) > 0 {
			return args[0]
		}
	case "diskutil":
		if len(args) > 1 && strings.EqualFold(args[0], "apfs") {
			return canonicalAPFSVerb(args[1])
		}
		if len(args) > 0 {
			return args[0]
		}
	case "scutil":
		return "show"
	case "launchctl":
		if len(args) > 0 {
			return args[0]
		}
	case "sudo":
		// The program sudo runs, by name.
		for i := 0; i < len(args); i++ {
			switch {
			case args[i] == "-u":
				i++
			case !strings.HasPrefix(args[i], "-"):
				return filepath.Base(args[i])
			}
		}
	case "pwpolicy":
		for _, a := range args {
			if v := strings.TrimPrefix(a, "-"); v == "getaccountpolicies" {
				return v
			}
		}
	}
	return ""
}

// nslog writes one sysadminctl line to stderr with the NSLog prefix
// `YYYY-MM-DD HH:MM:SS.mmm sysadminctl[pid:tid] `.
func (in *inv) nslog(format string, a ...any) {
	prefix := fmt.Sprintf("%s sysadminctl[%d:%d] ", time.Now().Format("2006-01-02 15:04:05.000"), os.Getpid(), gettid())
	fmt.Fprintf(in.stderr, prefix+format+"\n", a...)
}

// getpass reads a secret the way BSD getpass(3)/readpassphrase(3) does: from
// /dev/tty with echo off when the process has a controlling terminal (prompt
// written to the terminal, newline echoed after), otherwise from stdin with the
// prompt on stderr. At most 128 bytes are kept; the rest of the line is read
// and dropped. A line ends at '\n', '\r' or end of input.
func (in *inv) getpass(prompt string) []byte {
	in.rec.Prompts = append(in.rec.Prompts, prompt)
	if in.tty == nil && in.ttyErr == nil {
		in.tty, in.ttyErr = os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if in.ttyErr != nil {
			in.tty = nil
		}
	}
	if in.tty != nil {
		in.rec.TTY = true
		restore := noEcho(int(in.tty.Fd()))
		_, _ = io.WriteString(in.tty, prompt)
		pw := in.readLine(in.tty)
		restore()
		_, _ = io.WriteString(in.tty, "\n")
		return pw
	}
	_, _ = io.WriteString(in.stderr, prompt)
	return in.readLine(os.Stdin)
}

func (in *inv) readLine(r io.Reader) []byte {
	var pw []byte
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n == 1 {
			in.rec.StdinBytes++
			if b[0] == '\n' || b[0] == '\r' {
				break
			}
			if len(pw) < 128 {
				pw = append(pw, b[0])
			}
			continue
		}
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			break
		}
	}
	return pw
}
