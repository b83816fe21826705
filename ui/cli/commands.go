package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
)

// stepLabels name each step for people.
var stepLabels = map[string]string{
	localapi.StepValidate:  "Check the new password",
	localapi.StepVerify:    "Check your Mac password",
	localapi.StepDirectory: "Directory",
	localapi.StepLocal:     "Mac account",
	localapi.StepKeychain:  "Login keychain",
	localapi.StepFileVault: "FileVault",
	localapi.StepPreboot:   "Preboot volume",
	localapi.StepAck:       "Tell the directory",
}

var placeLabels = map[string]string{
	localapi.PlaceDirectory: "directory",
	localapi.PlaceLocal:     "Mac account",
	localapi.PlaceFileVault: "FileVault",
	localapi.PlaceKeychain:  "keychain",
}

var stateLabels = map[string]string{
	localapi.StateBusy:       "Busy",
	localapi.StateNotLinked:  "Not linked",
	localapi.StateLocked:     "Locked",
	localapi.StateSyncNeeded: "Sync needed",
	localapi.StateTemporary:  "Temporary password",
	localapi.StateExpiring:   "Expiring",
	localapi.StateInSync:     "In sync",
	localapi.StateUnknown:    "Unknown",
}

func stepMark(state string) string {
	switch state {
	case localapi.StepDone:
		return "✓"
	case localapi.StepSkipped:
		return "–"
	case localapi.StepFailed:
		return "✗"
	case localapi.StepRunning:
		return "…"
	}
	return " "
}

func (c *CLI) status(ctx context.Context) int {
	st, err := c.client.Status(ctx)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(st)
		return exitOK
	}
	d := st.Directory
	line := fmt.Sprintf("%s since %s", d.State, d.Since.Local().Format("2006-01-02 15:04"))
	if d.LastError != "" && d.State != localapi.ConnConnected {
		line += " (" + d.LastError + ")"
	}
	fmt.Fprintf(c.Out, "Directory        %s\n                 %s\n", d.URL, line)
	for _, a := range st.Accounts {
		name := a.DirectoryUser
		if a.DisplayName != "" {
			name += " (" + a.DisplayName + ")"
		}
		fmt.Fprintf(c.Out, "\nAccount          %s → %s\n", a.LocalUser, name)
		fmt.Fprintf(c.Out, "State            %s: %s\n", stateLabels[a.State], a.Reason)
		mfa := "off"
		if a.MFA {
			mfa = "on"
		}
		fmt.Fprintf(c.Out, "MFA              %s\n", mfa)
		if a.ExpiresAt != nil && a.DaysLeft != nil {
			fmt.Fprintf(c.Out, "Expires          %s (in %d days)\n", a.ExpiresAt.Local().Format("2006-01-02"), *a.DaysLeft)
		}
		if a.LockedUntil != nil {
			fmt.Fprintf(c.Out, "Locked until     %s\n", a.LockedUntil.Local().Format("2006-01-02 15:04"))
		}
		for _, p := range a.Places {
			fmt.Fprintf(c.Out, "  %-14s %-15s %s\n", placeLabels[p.Name], p.State, p.Detail)
		}
		if op := a.LastOperation; op != nil {
			fmt.Fprintf(c.Out, "Last operation   %s %s, %s\n", op.Kind, op.StartedAt.Local().Format("2006-01-02 15:04"), op.State)
			for _, s := range op.Steps {
				fmt.Fprintf(c.Out, "  %s %-24s %s\n", stepMark(s.State), stepLabels[s.Name], s.Detail)
			}
			if op.Error != nil {
				fmt.Fprintf(c.Out, "  ✗ %s\n", op.Error.Message)
			}
			for _, n := range op.Notes {
				fmt.Fprintf(c.Out, "  ! %s\n", n)
			}
		}
	}
	if len(st.Accounts) == 0 {
		fmt.Fprintln(c.Out, "\nNo account is bound to the directory yet.")
	}
	sa := "not set up: a forgotten previous password cannot be recovered"
	if st.ServiceAccount.Usable {
		sa = "ready: a forgotten previous password can be reset"
	} else if st.ServiceAccount.Present {
		sa = "present but not usable: " + st.ServiceAccount.Detail
	}
	fmt.Fprintf(c.Out, "\nService account  %s\n", sa)
	return exitOK
}

// progress prints each step as it changes.
func (c *CLI) progress() func(localapi.Step) {
	return func(s localapi.Step) {
		if c.json || s.State == localapi.StepPending || s.State == localapi.StepRunning {
			return
		}
		fmt.Fprintf(c.Out, "  %s %-24s %s\n", stepMark(s.State), stepLabels[s.Name], s.Detail)
	}
}

// finish reports an operation's outcome.
func (c *CLI) finish(op *localapi.Operation, err error) int {
	if op == nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(op)
	}
	for _, n := range op.Notes {
		fmt.Fprintln(c.Out, "!", n)
	}
	switch op.State {
	case localapi.OpDone:
		if !c.json {
			fmt.Fprintln(c.Out, "✓ Done: every place uses your new password.")
		}
		return exitOK
	case localapi.OpSyncNeeded:
		c.fail(err)
		return exitSyncNeeded
	}
	return c.fail(err)
}

func (c *CLI) accountFor(ctx context.Context, user string) (*localapi.Account, error) {
	st, err := c.client.Status(ctx)
	if err != nil {
		return nil, err
	}
	for i := range st.Accounts {
		a := &st.Accounts[i]
		if user == "" || a.LocalUser == user {
			return a, nil
		}
	}
	if user == "" {
		return nil, &localapi.Error{Code: localapi.CodeNotBound, Message: "Your account is not bound to the directory yet.", Hint: "Check `lockstep status`."}
	}
	return nil, &localapi.Error{Code: localapi.CodeNotBound, Message: fmt.Sprintf("%s is not bound to the directory.", user)}
}

func (c *CLI) change(ctx context.Context, user string) int {
	pol, err := c.client.Policy(ctx, user)
	if err != nil {
		return c.fail(err)
	}
	current, err := c.secret("Current password: ")
	if err != nil {
		return c.fail(err)
	}
	defer current.Wipe()
	return c.changeWith(ctx, user, pol, current)
}

// changeWith runs a change once the current password is known (it is the
// temporary one right after a temporary-password sync).
func (c *CLI) changeWith(ctx context.Context, user string, pol *localapi.PolicyResponse, current protocol.Secret) int {
	if !c.json {
		fmt.Fprintln(c.Err, "The new password needs:")
		for _, r := range pol.Rules {
			fmt.Fprintln(c.Err, "  •", r.Message)
		}
		printMacRules(c.Err, pol.MacRules)
	}
	newPW, err := c.secret("New password: ")
	if err != nil {
		return c.fail(err)
	}
	defer newPW.Wipe()
	if c.lines == nil {
		confirm, err := c.secret("Confirm new password: ")
		if err != nil {
			return c.fail(err)
		}
		same := confirm.Equal(newPW)
		confirm.Wipe()
		if !same {
			return c.fail(&localapi.Error{Code: localapi.CodeBadRequest, Field: localapi.FieldNew, Message: "The two new passwords do not match; nothing was changed."})
		}
	}
	if v := pol.Policy.Check(pol.DirectoryUser, newPW); len(v) > 0 {
		return c.fail(&localapi.Error{Code: protocol.CodePolicyViolation, Message: "The new password does not meet the password policy; nothing was changed.", Violations: v})
	}
	var totp string
	if pol.MFA {
		code, err := c.secret("Authenticator code: ")
		if err != nil {
			return c.fail(err)
		}
		totp = strings.TrimSpace(string(code))
		code.Wipe()
	}
	if !c.json {
		fmt.Fprintln(c.Out, "Changing your password:")
	}
	op, err := c.client.Change(ctx, localapi.ChangeRequest{User: user, Current: current, New: newPW, TOTP: totp}, c.progress())
	return c.finish(op, err)
}

func (c *CLI) sync(ctx context.Context, user string, forgot bool) int {
	acct, err := c.accountFor(ctx, user)
	if err != nil {
		return c.fail(err)
	}
	if !c.json && acct.Reason != "" {
		fmt.Fprintln(c.Err, acct.Reason)
	}
	var previous protocol.Secret
	if forgot {
		if !c.json {
			fmt.Fprintln(c.Err, "Without your previous password, your Mac account and FileVault are reset to the new password, and your")
			fmt.Fprintln(c.Err, "login keychain is moved aside (never deleted) and a new, empty one is made. Saved passwords stay in the old one.")
		}
	} else {
		previous, err = c.secret("Previous Mac password: ")
		if err != nil {
			return c.fail(err)
		}
		defer previous.Wipe()
	}
	newPW, err := c.secret("New directory password: ")
	if err != nil {
		return c.fail(err)
	}
	defer newPW.Wipe()
	if !c.json {
		fmt.Fprintln(c.Out, "Syncing your Mac:")
	}
	op, err := c.client.Sync(ctx, localapi.SyncRequest{User: user, Previous: previous, New: newPW, ForgotPrevious: forgot}, c.progress())
	code := c.finish(op, err)
	if code != exitOK || op.NextAction != localapi.OpChange {
		return code
	}
	// A temporary password: the user must choose a permanent one now.
	if c.lines != nil && !c.moreInput() {
		fmt.Fprintln(c.Err, "→ Your password is temporary: run `lockstep change` now to choose a permanent one.")
		return exitOK
	}
	pol, err := c.client.Policy(ctx, user)
	if err != nil {
		return c.fail(err)
	}
	if !c.json {
		fmt.Fprintln(c.Err, "\nYour password is temporary. Choose a permanent one now.")
	}
	return c.changeWith(ctx, user, pol, newPW)
}

// link links this Mac to the directory account with its password: the
// directory sends a Mac nothing about a user until the user's password was
// given from it, or an administrator assigned the Mac.
func (c *CLI) link(ctx context.Context, user string) int {
	pw, err := c.secret("Directory password: ")
	if err != nil {
		return c.fail(err)
	}
	a, err := c.client.Link(ctx, localapi.LinkRequest{User: user, Password: pw})
	pw.Wipe()
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(a)
		return exitOK
	}
	fmt.Fprintf(c.Out, "✓ Linked: this Mac's account %s now follows the directory account %s.\n", a.LocalUser, a.DirectoryUser)
	fmt.Fprintf(c.Out, "State            %s: %s\n", stateLabels[a.State], a.Reason)
	return exitOK
}

func (c *CLI) policy(ctx context.Context, user string) int {
	p, err := c.client.Policy(ctx, user)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(p)
		return exitOK
	}
	fmt.Fprintf(c.Out, "Password rules for %s:\n", p.DirectoryUser)
	for _, r := range p.Rules {
		fmt.Fprintln(c.Out, "  •", r.Message)
	}
	printMacRules(c.Out, p.MacRules)
	if p.Policy.MaxAgeDays > 0 {
		fmt.Fprintf(c.Out, "Passwords expire after %d days.\n", p.Policy.MaxAgeDays)
	}
	if p.MFA {
		fmt.Fprintln(c.Out, "Changes need a code from your authenticator app.")
	}
	return exitOK
}

func (c *CLI) watch(ctx context.Context) int {
	err := c.client.Watch(ctx, func(ev localapi.Event) error {
		if c.json {
			c.printJSON(ev)
			return nil
		}
		now := time.Now().Format("15:04:05")
		switch ev.Type {
		case localapi.EventStatus:
			if ev.Status == nil {
				return nil
			}
			for _, a := range ev.Status.Accounts {
				fmt.Fprintf(c.Out, "%s %s: %s (%s)\n", now, a.LocalUser, stateLabels[a.State], ev.Status.Directory.State)
			}
		case localapi.EventNotice:
			fmt.Fprintf(c.Out, "%s %s: %s\n", now, ev.Notice.Title, ev.Notice.Body)
		case localapi.EventStep:
			fmt.Fprintf(c.Out, "%s   %s %s\n", now, stepMark(ev.Step.State), stepLabels[ev.Step.Name])
		}
		return nil
	})
	if ctx.Err() != nil {
		return exitOK
	}
	return c.fail(err)
}

func (c *CLI) doctor(ctx context.Context, user string, withPassword bool) int {
	var pw protocol.Secret
	if withPassword {
		var err error
		if pw, err = c.secret("Password to check: "); err != nil {
			return c.fail(err)
		}
		defer pw.Wipe()
	}
	rep, err := c.client.Doctor(ctx, localapi.DoctorRequest{User: user, Password: pw})
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(rep)
	} else {
		for _, ch := range rep.Checks {
			mark := "✓"
			if !ch.OK {
				mark = "✗"
			}
			fmt.Fprintf(c.Out, "%s %-16s %s\n", mark, ch.Place, ch.Detail)
			if ch.Fix != "" {
				fmt.Fprintf(c.Out, "  → %s\n", ch.Fix)
			}
		}
	}
	if !rep.OK() {
		return exitFailed
	}
	return exitOK
}

func (c *CLI) diagnose(ctx context.Context, out string) int {
	if out == "" {
		fmt.Fprintln(c.Err, "lockstep diagnose: --out FILE is required")
		return exitUsage
	}
	raw, err := c.client.Diagnostics(ctx)
	if err != nil {
		return c.fail(err)
	}
	if err := writePrivate(out, append(raw, '\n')); err != nil {
		return c.fail(fmt.Errorf("writing %s: %w", out, err))
	}
	fmt.Fprintf(c.Out, "Wrote %s (%d bytes). It holds no password; send it to IT.\n", out, len(raw)+1)
	return exitOK
}

func (c *CLI) serviceAccount(ctx context.Context, sub, admin string) int {
	var (
		st  *localapi.ServiceAccountStatus
		err error
	)
	switch sub {
	case "status", "":
		st, err = c.client.ServiceAccount(ctx)
	case "setup":
		if admin == "" {
			fmt.Fprintln(c.Err, "lockstep service-account setup: --admin NAME (an admin with a SecureToken) is required")
			return exitUsage
		}
		pw, perr := c.secret(fmt.Sprintf("Password of %s: ", admin))
		if perr != nil {
			return c.fail(perr)
		}
		st, err = c.client.SetupServiceAccount(ctx, localapi.ServiceAccountRequest{AdminUser: admin, AdminPassword: pw})
		pw.Wipe()
	case "rotate":
		st, err = c.client.RotateServiceAccount(ctx)
	case "remove":
		st, err = c.client.RemoveServiceAccount(ctx)
	default:
		fmt.Fprintf(c.Err, "lockstep service-account: unknown action %q (setup, status, rotate, remove)\n", sub)
		return exitUsage
	}
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(st)
		return exitOK
	}
	switch {
	case st.Usable:
		fmt.Fprintln(c.Out, "✓ Service account ready: a forgotten previous password can be reset on this Mac.")
	case st.Present:
		fmt.Fprintln(c.Out, "✗ Service account present but not usable:", st.Detail)
		return exitFailed
	default:
		fmt.Fprintln(c.Out, "Service account not set up: the forgotten-password path is not available.")
	}
	return exitOK
}

// printMacRules lists this Mac's own password rules, in the Mac's words.
func printMacRules(w io.Writer, rules []protocol.LocalRule) {
	if len(rules) == 0 {
		return
	}
	fmt.Fprintln(w, "This Mac also requires:")
	for _, r := range rules {
		if r.Checkable() {
			fmt.Fprintln(w, "  •", r.Description(os.Getenv("LANG")))
		} else {
			fmt.Fprintln(w, "  •", r.Description(os.Getenv("LANG")), "(checked when you save)")
		}
	}
}
