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
	"slices"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/ui/text"
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
	text.Use(text.Settings{Languages: text.Preferred()})
	if slices.Contains(args, "--json") || slices.Contains(args, "-json") {
		// What scripts read is in English, whatever the user's language.
		text.Use(text.Settings{Languages: []string{"en"}})
	}
	usage := text.CLIUsage.S(map[string]any{"Socket": localapi.DefaultSocket})
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
	fs.Usage = func() { fmt.Fprint(c.Err, usage) }
	socket := fs.String("socket", envOr("LOCKSTEP_SOCKET", localapi.DefaultSocket), text.FlagSocket.S())
	fs.BoolVar(&c.json, "json", false, text.FlagJSON.S())
	user := fs.String("user", "", text.FlagUser.S())
	stdin := fs.Bool("stdin", false, text.FlagStdin.S())
	forgot := fs.Bool("forgot-previous", false, text.FlagForgot.S())
	out := fs.String("out", "", text.FlagOut.S())
	admin := fs.String("admin", "", text.FlagAdmin.S())
	withPassword := fs.Bool("password", false, text.FlagPassword.S())
	keychain := fs.String("keychain", "", text.FlagKeychain.S())
	sub := ""
	if (cmd == "service-account" || cmd == "keychain" || cmd == "mfa") && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		sub, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(c.Err, text.CLIUnexpectedArg.S(map[string]any{"Cmd": cmd, "Arg": fs.Arg(0)}))
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
	case "mfa":
		if sub != "enroll" {
			fmt.Fprintln(c.Err, text.CLIEnrollAction.S(map[string]any{"Action": sub}))
			return exitUsage
		}
		return c.enroll(ctx, *user)
	case "keychain":
		return c.keychain(ctx, sub, *user, *keychain)
	case "version":
		fmt.Fprintln(c.Out, "lockstep", version.Version)
		return exitOK
	}
	fmt.Fprintf(c.Err, "%s\n\n%s", text.CLIUnknownCommand.S(map[string]any{"Cmd": cmd}), usage)
	return exitUsage
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// said is a failure of the command itself, already in words.
type said string

func (s said) Error() string { return string(s) }

// secret reads one secret, named by label: the next stdin line with
// --stdin, else a prompt without echo on the terminal.
func (c *CLI) secret(label string) (protocol.Secret, error) {
	if c.lines != nil {
		line, err := c.lines.ReadBytes('\n')
		if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
			clear(line)
			if errors.Is(err, io.EOF) {
				return nil, said(text.CLIStdinEnded.S(map[string]any{"What": label}))
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
		return nil, said(text.CLINoTerminal.S())
	}
	b, err := c.ReadSecret(text.CLIPrompt.S(map[string]any{"Label": label}))
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

// fail prints an error the way a user can act on and returns its exit
// code: the catalogue's sentence, the unmet rules, and what to do next.
func (c *CLI) fail(err error) int { return c.failIn(err, "", nil) }

// failIn is fail for a command whose boxes are in's (text.InChange, ...),
// with the policy whose numbers its rules need.
func (c *CLI) failIn(err error, in string, pol *localapi.PolicyResponse) int {
	return c.report(nil, err, in, pol)
}

// report prints how an operation (or a request without one) failed.
func (c *CLI) report(op *localapi.Operation, err error, in string, pol *localapi.PolicyResponse) int {
	var s said
	var e *localapi.Error
	switch {
	case errors.As(err, &s):
		fmt.Fprintln(c.Err, "✗", string(s))
	case c.json && errors.As(err, &e):
		english(e, in)
		enc := json.NewEncoder(c.Err)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"error": e})
	default:
		var p protocol.Policy
		if pol != nil {
			p = pol.Policy
		}
		t := text.Failed(op, err, in)
		fmt.Fprintln(c.Err, "✗", t.Text)
		for _, v := range t.Violations {
			fmt.Fprintln(c.Err, "    •", text.ViolationText(v, p))
		}
		if t.Hint != "" {
			fmt.Fprintln(c.Err, "  →", t.Hint)
		}
	}
	if errors.Is(err, localapi.ErrUnavailable) {
		return exitUnavail
	}
	if errors.As(err, &e) {
		switch e.Code {
		case localapi.CodeOffline:
			return exitUnavail
		case localapi.CodeBadRequest:
			return exitUsage
		}
	}
	return exitFailed
}
