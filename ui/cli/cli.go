// Package cli is the lockstep command: the local API from a terminal, for
// SSH users, scripts and IT. It talks only to lockstepd's socket.
package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/version"
)

// Exit codes.
const (
	exitOK         = 0
	exitFailed     = 1 // the operation failed; nothing changed
	exitUsage      = 2
	exitSyncNeeded = 3 // the operation stopped part-way; sync to finish
	exitUnavail    = 4 // lockstepd or the directory is not reachable
)

const usage = `lockstep: keep your Mac password in step with your organisation's directory.

Usage:
  lockstep status [--json]                  where every place stands
  lockstep change [--stdin] [--user NAME]   change your password everywhere
  lockstep sync [--forgot-previous] [--stdin] [--user NAME]
                                            sync the Mac after a reset in the directory
  lockstep link [--stdin] [--user NAME]     link this Mac to your directory account (asks your directory password)
  lockstep policy [--json]                  the password rules
  lockstep watch [--json]                   follow state changes
  lockstep doctor [--password] [--json] [--user NAME]
                                            check each place and say how to fix it
  lockstep diagnose --out FILE              write a redacted support bundle
  lockstep service-account setup|status|rotate|remove [--admin NAME] [--stdin]
                                            (root) the account that resets forgotten passwords
  lockstep version

Every command takes --socket PATH (default $LOCKSTEP_SOCKET or ` + localapi.DefaultSocket + `).
With --stdin, secrets are read one per line instead of prompted for:
  change: current, new, then the MFA code if the account has MFA
  sync:   previous, new (only new with --forgot-previous)
  link:   the directory password
`

// CLI runs one command.
type CLI struct {
	In       io.Reader
	Out, Err io.Writer
	// IsTerminal reports whether In is a terminal that can prompt without
	// echo; ReadSecret reads one secret from it.
	IsTerminal func() bool
	ReadSecret func(prompt string) ([]byte, error)

	client *localapi.Client
	lines  *bufio.Reader
	json   bool
}

// Main is the lockstep command's entry point.
func Main(args []string) int {
	c := &CLI{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}
	fd := int(os.Stdin.Fd())
	c.IsTerminal = func() bool { return term.IsTerminal(fd) }
	c.ReadSecret = func(prompt string) ([]byte, error) {
		fmt.Fprint(os.Stderr, prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		return b, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return c.Run(ctx, args)
}

// Run runs the command in args (without the program name).
func (c *CLI) Run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(c.Out, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("lockstep "+cmd, flag.ContinueOnError)
	fs.SetOutput(c.Err)
	socket := fs.String("socket", envOr("LOCKSTEP_SOCKET", localapi.DefaultSocket), "lockstepd's socket")
	fs.BoolVar(&c.json, "json", false, "print JSON")
	user := fs.String("user", "", "act on this local account (root only)")
	stdin := fs.Bool("stdin", false, "read secrets from standard input, one per line")
	forgot := fs.Bool("forgot-previous", false, "sync without the previous password (needs the service account)")
	out := fs.String("out", "", "output file")
	admin := fs.String("admin", "", "a SecureToken admin's short name")
	withPassword := fs.Bool("password", false, "also check that your password opens each place")
	sub := ""
	if cmd == "service-account" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		sub, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.Err, "lockstep %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return exitUsage
	}
	c.client = localapi.NewClient(*socket)
	if *stdin {
		c.lines = bufio.NewReader(c.In)
	}
	switch cmd {
	case "status":
		return c.status(ctx)
	case "change":
		return c.change(ctx, *user)
	case "sync":
		return c.sync(ctx, *user, *forgot)
	case "link":
		return c.link(ctx, *user)
	case "policy":
		return c.policy(ctx, *user)
	case "watch":
		return c.watch(ctx)
	case "doctor":
		return c.doctor(ctx, *user, *withPassword)
	case "diagnose":
		return c.diagnose(ctx, *out)
	case "service-account":
		return c.serviceAccount(ctx, sub, *admin)
	case "version":
		fmt.Fprintln(c.Out, "lockstep", version.Version)
		return exitOK
	}
	fmt.Fprintf(c.Err, "lockstep: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// secret reads one secret: the next stdin line with --stdin, else a prompt
// without echo on the terminal.
func (c *CLI) secret(prompt string) (protocol.Secret, error) {
	if c.lines != nil {
		line, err := c.lines.ReadBytes('\n')
		if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
			clear(line)
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("standard input ended before %q", strings.TrimSuffix(strings.TrimSpace(prompt), ":"))
			}
			return nil, err
		}
		n := len(line)
		for n > 0 && (line[n-1] == '\n' || line[n-1] == '\r') {
			n--
		}
		s := protocol.Secret(append([]byte(nil), line[:n]...))
		clear(line)
		return s, nil
	}
	if c.IsTerminal == nil || !c.IsTerminal() {
		return nil, errors.New("no terminal to prompt on: pass --stdin and give the secrets one per line")
	}
	b, err := c.ReadSecret(prompt)
	return protocol.Secret(b), err
}

// moreInput reports whether --stdin has another line.
func (c *CLI) moreInput() bool {
	if c.lines == nil {
		return false
	}
	_, err := c.lines.Peek(1)
	return err == nil
}

func (c *CLI) printJSON(v any) {
	enc := json.NewEncoder(c.Out)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// fail prints an error the way a user can act on and returns its exit code.
func (c *CLI) fail(err error) int {
	var e *localapi.Error
	if !errors.As(err, &e) {
		fmt.Fprintln(c.Err, "✗", err)
		if errors.Is(err, localapi.ErrUnavailable) {
			return exitUnavail
		}
		return exitFailed
	}
	if c.json {
		enc := json.NewEncoder(c.Err)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"error": e})
	} else {
		fmt.Fprintln(c.Err, "✗", e.Message)
		for _, v := range e.Violations {
			fmt.Fprintln(c.Err, "    •", v.Message)
		}
		if e.Hint != "" {
			fmt.Fprintln(c.Err, "  →", e.Hint)
		}
	}
	switch e.Code {
	case localapi.CodeOffline:
		return exitUnavail
	case localapi.CodeBadRequest:
		return exitUsage
	}
	return exitFailed
}
