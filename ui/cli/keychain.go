package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// lockstep keychain list | recover: the old login keychains a
// forgotten-password sync kept aside, and getting one back.

func (c *CLI) keychain(ctx context.Context, sub, user, name string) int {
	switch sub {
	case "list", "":
		return c.keychainList(ctx, user)
	case "recover":
		return c.keychainRecover(ctx, user, name)
	}
	fmt.Fprintln(c.Err, text.CLIKeychainAction.S(map[string]any{"Action": sub}))
	return exitUsage
}

func (c *CLI) keychainList(ctx context.Context, user string) int {
	kept, err := c.client.KeptKeychains(ctx, user)
	if err != nil {
		return c.failIn(err, text.InRecover, nil)
	}
	if c.json {
		c.printJSON(kept)
		return exitOK
	}
	c.printKept(c.Out, kept.Keychains)
	return exitOK
}

// printKept lists kept keychains, numbered, with when each was kept.
func (c *CLI) printKept(w io.Writer, ks []localapi.KeptKeychain) {
	if len(ks) == 0 {
		fmt.Fprintln(w, text.CLIRecoverNone.S())
		return
	}
	fmt.Fprintln(w, text.CLIRecoverHeading.S())
	for i, k := range ks {
		fmt.Fprintln(w, text.CLIKeptLine(i+1, k))
		if len(k.LocalItems) > 0 {
			fmt.Fprintln(w, text.CLIRecoverLocal.S(map[string]any{"Paths": strings.Join(k.LocalItems, ", ")}))
		}
	}
}

// keychainRecover lists the kept keychains, asks which (unless --keychain
// names it), then the old keychain password and the current Mac password
// (without echo, or one per line with --stdin: the choice, old, current).
func (c *CLI) keychainRecover(ctx context.Context, user, name string) int {
	kept, err := c.client.KeptKeychains(ctx, user)
	if err != nil {
		return c.failIn(err, text.InRecover, nil)
	}
	ks := kept.Keychains
	if len(ks) == 0 {
		fmt.Fprintln(c.Err, "✗", text.CLIRecoverNone.S())
		return exitFailed
	}
	if name == "" {
		c.printKept(c.Err, ks)
		choice, err := c.line(text.CLIRecoverWhich.S(map[string]any{"N": len(ks)}), text.CLIRecoverChoice.S())
		if err != nil {
			return c.fail(err)
		}
		n, perr := strconv.Atoi(strings.TrimSpace(choice))
		if perr != nil || n < 1 || n > len(ks) {
			return c.fail(said(text.CLIRecoverBadChoice.S(map[string]any{"Choice": strings.TrimSpace(choice), "N": len(ks)})))
		}
		name = ks[n-1].Name
	}
	old, err := c.secret(text.LabelOld.S())
	if err != nil {
		return c.fail(err)
	}
	defer old.Wipe()
	current, err := c.secret(text.LabelCurrentMac.S())
	if err != nil {
		return c.fail(err)
	}
	defer current.Wipe()
	if !c.json {
		fmt.Fprintln(c.Out, text.RecoverRunning.S())
	}
	op, err := c.client.RecoverKeychain(ctx, localapi.RecoverRequest{User: user, Name: name, Old: old, Current: current},
		c.progress(localapi.OpKeychainRecover))
	return c.finish(op, err, text.InRecover, nil)
}

// line reads one line that is no secret: the next --stdin line, or an
// answer typed at the terminal after prompt.
func (c *CLI) line(prompt, what string) (string, error) {
	if c.lines == nil {
		if c.IsTerminal == nil || !c.IsTerminal() {
			return "", said(text.CLINoTerminal.S())
		}
		fmt.Fprint(c.Err, prompt)
		c.lines = bufio.NewReader(c.In)
		defer func() { c.lines = nil }()
	}
	s, err := c.lines.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && s != "") {
		if errors.Is(err, io.EOF) {
			return "", said(text.CLIStdinEnded.S(map[string]any{"What": what}))
		}
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}
