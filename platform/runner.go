package platform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// Tool is one macOS command the platform layer may run.
type Tool string

// The allow-list. No other program is ever started.
const (
	Dscl        Tool = "dscl"
	Sysadminctl Tool = "sysadminctl"
	Fdesetup    Tool = "fdesetup"
	Security    Tool = "security"
	Diskutil    Tool = "diskutil"
	Scutil      Tool = "scutil"
	Pwpolicy    Tool = "pwpolicy"
	// Launchctl and Sudo reach a user's own security session from the
	// daemon (`launchctl asuser UID sudo -u USER security ...`, facts
	// K3, K4): only for the keychain search list.
	Launchctl Tool = "launchctl"
	Sudo      Tool = "sudo"
)

// toolPaths are the absolute paths of the allow-listed tools on macOS.
var toolPaths = map[Tool]string{
	Dscl:        "/usr/bin/dscl",
	Sysadminctl: "/usr/sbin/sysadminctl",
	Fdesetup:    "/usr/bin/fdesetup",
	Security:    "/usr/bin/security",
	Diskutil:    "/usr/sbin/diskutil",
	Scutil:      "/usr/sbin/scutil",
	Pwpolicy:    "/usr/bin/pwpolicy",
	Launchctl:   "/bin/launchctl",
	Sudo:        "/usr/bin/sudo",
}

// childPATH is the only PATH a child sees.
const childPATH = "/usr/bin:/bin:/usr/sbin:/sbin"

// DefaultTimeout bounds one tool run unless Config or Cmd says otherwise.
const DefaultTimeout = 60 * time.Second

// Config configures a Runner.
type Config struct {
	// ToolsDir, when set, replaces the directory of every tool: the runner
	// executes ToolsDir/<name> (the macOS simulator's tools dir in tests and
	// demos). Empty means the real macOS paths.
	ToolsDir string
	// Timeout for one tool run (default DefaultTimeout).
	Timeout time.Duration
	// Log receives one line per run (tool, verb, exit, duration); never a
	// secret, never stdin. Default slog.Default().
	Log *slog.Logger
	// RunUserStepsAsSelf runs steps meant for a target user (keychain work)
	// as the current process's user instead of switching uid/gid, keeping
	// HOME and USER of the target. Only for tests and demos run without root;
	// never set it in the daemon.
	RunUserStepsAsSelf bool
}

// Credential is the user a step runs as (keychain steps run as the owner of
// the keychain, with HOME set).
type Credential struct {
	UID  uint32
	GID  uint32
	User string
	Home string
}

// Prompter answers a tool's prompts on a terminal. Answer is given each
// prompt's text (the unfinished last line the tool wrote, once it has gone
// quiet) and returns the answer to write, followed by a newline, or an error
// that kills the tool at once. A Prompter keeps its own state: which secrets
// are still to be asked for.
type Prompter interface {
	Answer(prompt string) ([]byte, error)
}

// Cmd is one run of an allow-listed tool.
type Cmd struct {
	Tool Tool
	Args []string
	// Verb names the operation in logs; default: derived from Args.
	Verb string
	// Stdin is fed to the child's stdin and then closed (nil: /dev/null).
	// It may hold secrets; it is never logged or kept.
	Stdin []byte
	// Prompter, when set, runs the child on a new pseudo-terminal that is
	// its controlling terminal and every one of its streams (a prompt may
	// come on any), and answers each prompt it writes there. Stdin is not
	// used then, and everything the tool wrote is in Result.Stderr.
	Prompter Prompter
	// As runs the child as this user.
	As *Credential
	// Timeout overrides the runner's timeout.
	Timeout time.Duration
}

// Result is what a finished tool run produced.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	Exit     int
	Duration time.Duration
	// Prompts are the terminal prompts seen (and answered), in order.
	Prompts []string
}

// Runner starts allow-listed tools: by absolute path, in their own session
// and process group, with a scrubbed environment, stdin fed or /dev/null, a
// timeout that kills the whole group, optionally as another user.
type Runner struct {
	cfg Config
	log *slog.Logger
}

// NewRunner returns a Runner for cfg.
func NewRunner(cfg Config) *Runner {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return &Runner{cfg: cfg, log: log}
}

// Path is the absolute path the runner executes for t.
func (r *Runner) Path(t Tool) (string, error) {
	p, ok := toolPaths[t]
	if !ok {
		return "", fmt.Errorf("tool %q is not allow-listed", string(t))
	}
	if r.cfg.ToolsDir != "" {
		return filepath.Join(r.cfg.ToolsDir, filepath.Base(p)), nil
	}
	return p, nil
}

// Run runs c and returns its output. A non-zero exit is not an error here
// (callers interpret each tool's statuses); errors are failures to start,
// timeouts (ErrTimeout, the process group killed), cancellation and prompt
// trouble.
func (r *Runner) Run(ctx context.Context, c Cmd) (*Result, error) {
	path, err := r.Path(c.Tool)
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("tool path %q is not absolute", path)
	}
	verb := c.Verb
	if verb == "" {
		verb = deriveVerb(c.Tool, c.Args)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = r.cfg.Timeout
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(runCtx, path, c.Args...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=" + childPATH, "LANG=en_US.UTF-8"}
	attr := &syscall.SysProcAttr{Setsid: true}
	uid := os.Geteuid()
	if c.As != nil {
		cmd.Env = append(cmd.Env, "HOME="+c.As.Home, "USER="+c.As.User, "LOGNAME="+c.As.User)
		if !r.cfg.RunUserStepsAsSelf {
			attr.Credential = &syscall.Credential{Uid: c.As.UID, Gid: c.As.GID, Groups: []uint32{}}
			uid = int(c.As.UID)
		}
	}
	cmd.SysProcAttr = attr
	// On timeout or cancellation kill the whole process group (the child is
	// its leader), not just the child; WaitDelay bounds the wait for pipes a
	// surviving grandchild might hold.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}

	res := &Result{}
	start := time.Now()
	var runErr error
	if c.Prompter != nil {
		runErr = r.runOnTerminal(cancel, cmd, c.Prompter, res, &stderr)
	} else {
		runErr = cmd.Run()
	}
	res.Duration = time.Since(start)
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	res.Exit = -1
	if cmd.ProcessState != nil {
		res.Exit = cmd.ProcessState.ExitCode()
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "tool run",
		slog.String("tool", string(c.Tool)), slog.String("verb", verb), slog.Int("exit", res.Exit),
		slog.Duration("duration", res.Duration), slog.Int("uid", uid))

	switch {
	case runCtx.Err() != nil && ctx.Err() == nil && errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return res, &ToolError{Tool: c.Tool, Verb: verb, Exit: res.Exit, Stdout: res.stdoutText(), Stderr: res.stderrText(),
			Message: fmt.Sprintf("no result after %s; process group killed", timeout), Err: ErrTimeout}
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s %s: %w", c.Tool, verb, ctx.Err())
	}
	var exitErr *exec.ExitError
	var promptErr *ToolError
	if errors.As(runErr, &promptErr) {
		// The Prompter refused a prompt: its error says which and why.
		promptErr.Exit, promptErr.Stderr = res.Exit, res.stderrText()
		return res, promptErr
	}
	if runErr != nil && !errors.As(runErr, &exitErr) {
		return res, &ToolError{Tool: c.Tool, Verb: verb, Exit: res.Exit, Stdout: res.stdoutText(), Stderr: res.stderrText(),
			Message: runErr.Error(), Err: ErrToolFailed}
	}
	if exitErr != nil && res.Exit < 0 {
		return res, &ToolError{Tool: c.Tool, Verb: verb, Exit: res.Exit, Stdout: res.stdoutText(), Stderr: res.stderrText(),
			Message: exitErr.Error(), Err: ErrToolFailed}
	}
	return res, nil
}

func (r *Result) stdoutText() string { return clip(string(r.Stdout)) }
func (r *Result) stderrText() string { return clip(string(r.Stderr)) }

// clip keeps error texts readable: the last 4 KiB of a tool's output.
func clip(s string) string {
	const max = 4096
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}

// runOnTerminal runs cmd with a new pseudo-terminal as its controlling
// terminal and its stdin, stdout and stderr, answering prompts; what the tool
// wrote goes to out. The terminal is put in raw mode first so nothing written
// to it is ever echoed back.
func (r *Runner) runOnTerminal(cancel context.CancelFunc, cmd *exec.Cmd, p Prompter, res *Result, out *bytes.Buffer) error {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return fmt.Errorf("open pty: %w", err)
	}
	defer ptmx.Close()
	if _, err := term.MakeRaw(int(tty.Fd())); err != nil {
		tty.Close()
		return fmt.Errorf("pty raw mode: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr.Setctty = true
	cmd.SysProcAttr.Ctty = 0 // the child's stdin
	if err := cmd.Start(); err != nil {
		tty.Close()
		return err
	}
	tty.Close()

	var promptErr error
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		promptErr = answerPrompts(ptmx, p, res, out)
		if promptErr != nil {
			cancel()
		}
	}()
	waitErr := cmd.Wait()
	// Read what the tool wrote last: the terminal reports its end once every
	// process holding it has exited. A grandchild that keeps it open gets
	// the same grace as Cmd.WaitDelay.
	select {
	case <-answered:
	case <-time.After(cmd.WaitDelay):
	}
	ptmx.Close()
	<-answered
	if promptErr != nil {
		return promptErr
	}
	return waitErr
}

// maxAnswers bounds how many prompts one run may ask (a tool that keeps
// asking is refusing the answers).
const maxAnswers = 8

// promptSettle is how long a tool must stay quiet after writing an
// unfinished line before that line is taken as a prompt: a tool waiting for
// input writes nothing more.
const promptSettle = 150 * time.Millisecond

// answerPrompts reads the terminal into out; whenever the tool has written
// an unfinished line and then gone quiet, that line is a prompt, answered by
// p. It returns when the terminal closes.
func answerPrompts(ptmx io.ReadWriter, p Prompter, res *Result, out *bytes.Buffer) error {
	chunks, done := make(chan []byte), make(chan struct{})
	defer close(done)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 512)
			n, err := ptmx.Read(buf)
			if n > 0 {
				select {
				case chunks <- buf[:n]:
				case <-done:
					return
				}
			}
			if err != nil {
				return // EIO/EOF: the tool closed the terminal
			}
		}
	}()
	var pending []byte
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	for {
		select {
		case c, ok := <-chunks:
			if !ok {
				return nil
			}
			out.Write(c)
			pending = append(pending, c...)
			settle.Stop()
			if lastLine(pending) != "" {
				settle.Reset(promptSettle)
			}
		case <-settle.C:
			line := lastLine(pending)
			res.Prompts = append(res.Prompts, line)
			if len(res.Prompts) > maxAnswers {
				return fmt.Errorf("tool asked more than %d prompts (last %q)", maxAnswers, line)
			}
			answer, err := p.Answer(line)
			if err != nil {
				return err
			}
			msg := make([]byte, 0, len(answer)+1)
			msg = append(append(msg, answer...), '\n')
			_, werr := ptmx.Write(msg)
			wipe(msg)
			if werr != nil {
				return fmt.Errorf("answer prompt: %w", werr)
			}
			out.WriteString("\n")
			pending = pending[:0]
		}
	}
}

// lastLine is the text after the last line break, without trailing blanks.
func lastLine(b []byte) string {
	s := string(b)
	if i := strings.LastIndexAny(s, "\r\n"); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimRight(s, " \t")
}

// deriveVerb names the operation of a run for logs.
func deriveVerb(t Tool, args []string) string {
	switch t {
	case Dscl:
		for _, a := range args[min(1, len(args)):] {
			if strings.HasPrefix(a, "-") {
				return strings.TrimPrefix(a, "-")
			}
		}
	case Sysadminctl:
		for _, a := range args {
			switch a {
			case "-adminUser", "-adminPassword":
				continue
			}
			if strings.HasPrefix(a, "-") && a != "-" {
				return strings.TrimPrefix(a, "-")
			}
		}
	case Diskutil:
		if len(args) > 1 {
			return args[0] + " " + args[1]
		}
	case Scutil:
		return "show"
	}
	if len(args) > 0 {
		return args[0]
	}
	return ""
}
