package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/ui/text"
)

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

// row prints a label and its value, the values lined up.
func row(w io.Writer, l, value string) {
	pad := 17 - utf8.RuneCountInString(l)
	if pad < 1 {
		pad = 1
	}
	fmt.Fprintf(w, "%s%s%s\n", l, strings.Repeat(" ", pad), value)
}

// render says a Text, or nothing for none.
func render(t localapi.Text) string {
	if t.Code == "" {
		return ""
	}
	return text.Render(t)
}

func (c *CLI) status(ctx context.Context) int {
	st, err := c.client.Status(ctx)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		englishStatus(st)
		c.printJSON(st)
		return exitOK
	}
	row(c.Out, text.CLIRowDirectory.S(), st.Directory.URL)
	row(c.Out, "", text.Connection(st.Directory))
	for _, a := range st.Accounts {
		fmt.Fprintln(c.Out)
		acct := map[string]any{"Local": a.LocalUser, "Directory": a.DirectoryUser, "Name": a.DisplayName}
		if a.DisplayName != "" {
			row(c.Out, text.CLIRowAccount.S(), text.CLIAccountNamed.S(acct))
		} else {
			row(c.Out, text.CLIRowAccount.S(), text.CLIAccountLine.S(acct))
		}
		row(c.Out, text.CLIRowState.S(), text.CLIStateLine.S(map[string]any{"State": text.AccountState(a.State), "Reason": render(a.Reason)}))
		mfa := text.CLIOff.S()
		if a.MFA {
			mfa = text.CLIOn.S()
		}
		row(c.Out, text.CLIRowMFA.S(), mfa)
		if a.ExpiresAt != nil && a.DaysLeft != nil {
			day := map[string]any{"Date": text.Date(*a.ExpiresAt)}
			if *a.DaysLeft < 0 {
				row(c.Out, text.CLIRowExpires.S(), text.StatusExpiredOn.S(day))
			} else {
				row(c.Out, text.CLIRowExpires.S(), text.StatusExpiresIn.N(*a.DaysLeft, day))
			}
		}
		if a.LockedUntil != nil {
			row(c.Out, text.CLIRowLocked.S(), text.Clock(*a.LockedUntil))
		}
		for _, p := range a.Places {
			state := text.PlaceState(p.State)
			if d := render(p.Text); d != "" {
				state = text.StatusPlaceNote.S(map[string]any{"Line": state, "Note": d})
			}
			fmt.Fprintf(c.Out, "  %-16s %s\n", text.PlaceName(p.Name), state)
		}
		if op := a.LastOperation; op != nil {
			row(c.Out, text.CLIRowLastOp.S(), text.CLIOpLine.S(map[string]any{
				"Kind": text.OpKind(op.Kind), "At": text.Clock(op.StartedAt), "State": text.OpState(op.State)}))
			for _, s := range op.Steps {
				c.printStep(s, op.Kind)
			}
			if op.Error != nil {
				fmt.Fprintln(c.Out, "  ✗", text.Problem(op.Error, inOf(op.Kind)).Text)
			}
			for _, n := range op.Notes {
				fmt.Fprintln(c.Out, "  !", render(n))
			}
		}
	}
	if len(st.Accounts) == 0 {
		fmt.Fprintln(c.Out)
		fmt.Fprintln(c.Out, text.CLINoAccount.S())
	}
	fmt.Fprintln(c.Out)
	row(c.Out, text.CLIRowService.S(), text.ServiceAccount(st.ServiceAccount))
	return exitOK
}

// inOf is the window whose boxes an operation of kind has.
func inOf(kind string) string {
	switch kind {
	case localapi.OpChange:
		return text.InChange
	case localapi.OpKeychainRecover:
		return text.InRecover
	}
	return text.InSync
}

// printStep prints a step: its mark, name and what it did.
func (c *CLI) printStep(s localapi.Step, kind string) {
	line := fmt.Sprintf("  %s %-34s", stepMark(s.State), text.StepName(s.Name, kind))
	if d := render(s.Text); d != "" {
		line += " " + d
	}
	fmt.Fprintln(c.Out, strings.TrimRight(line, " "))
}

// progress prints each step as it ends.
func (c *CLI) progress(kind string) func(localapi.Step) {
	return func(s localapi.Step) {
		if c.json || s.State == localapi.StepPending || s.State == localapi.StepRunning {
			return
		}
		c.printStep(s, kind)
	}
}

// finish reports an operation's outcome.
func (c *CLI) finish(op *localapi.Operation, err error, in string, pol *localapi.PolicyResponse) int {
	if op == nil {
		return c.failIn(err, in, pol)
	}
	if c.json {
		englishOp(op)
		c.printJSON(op)
	} else {
		for _, n := range op.Notes {
			fmt.Fprintln(c.Out, "!", render(n))
		}
	}
	switch op.State {
	case localapi.OpDone:
		switch {
		case c.json:
		case op.Kind == localapi.OpKeychainRecover:
			fmt.Fprintln(c.Out, "✓", text.CLIRecovered.S())
		default:
			fmt.Fprintln(c.Out, "✓", text.CLIDone.S())
		}
		return exitOK
	case localapi.OpSyncNeeded, localapi.OpIncomplete:
		c.report(op, err, in, pol)
		return exitSyncNeeded
	}
	return c.report(op, err, in, pol)
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
	return nil, &localapi.Error{Code: localapi.CodeNotBound}
}

func (c *CLI) change(ctx context.Context, user string) int {
	pol, err := c.client.Policy(ctx, user)
	if err != nil {
		return c.fail(err)
	}
	current, err := c.secret(text.LabelCurrent.S())
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
		fmt.Fprintln(c.Err, text.RulesHeading.S())
		printRules(c.Err, pol)
	}
	newPW, err := c.secret(text.LabelNew.S())
	if err != nil {
		return c.fail(err)
	}
	defer newPW.Wipe()
	if c.lines == nil {
		confirm, err := c.secret(text.LabelConfirm.S())
		if err != nil {
			return c.fail(err)
		}
		same := confirm.Equal(newPW)
		confirm.Wipe()
		if !same {
			return c.fail(said(text.CLIMismatch.S()))
		}
	}
	if v := pol.Policy.Check(pol.DirectoryUser, newPW); len(v) > 0 {
		fmt.Fprintln(c.Err, "✗", text.CLIPolicyUnmet.S())
		for _, x := range v {
			fmt.Fprintln(c.Err, "    •", text.ViolationText(x, pol.Policy))
		}
		return exitFailed
	}
	var totp string
	if pol.MFA {
		code, err := c.secret(text.LabelCode.S())
		if err != nil {
			return c.fail(err)
		}
		totp = strings.TrimSpace(string(code))
		code.Wipe()
	}
	if !c.json {
		fmt.Fprintln(c.Out, text.ChangeRunning.S())
	}
	op, err := c.client.Change(ctx, localapi.ChangeRequest{User: user, Current: current, New: newPW, TOTP: totp}, c.progress(localapi.OpChange))
	code := c.finish(op, err, text.InChange, pol)
	if code != exitOK || c.json {
		return code
	}
	// A change during an enrolment period needed no code; the enrolment
	// follows at once.
	if acct, err := c.accountFor(ctx, user); err != nil || !acct.MustEnrol() {
		return code
	}
	if c.lines != nil && !c.moreInput() {
		fmt.Fprintln(c.Err, "→", text.CLIEnrollLater.S())
		return exitOK
	}
	fmt.Fprintln(c.Err, text.EnrollAfterChange.S())
	return c.enroll(ctx, user)
}

func (c *CLI) sync(ctx context.Context, user string, forgot bool) int {
	acct, err := c.accountFor(ctx, user)
	if err != nil {
		return c.fail(err)
	}
	if !c.json && acct.Reason.Code != "" {
		fmt.Fprintln(c.Err, render(acct.Reason))
	}
	var previous protocol.Secret
	if forgot {
		if !c.json {
			fmt.Fprintln(c.Err, text.ForgotWarning.S())
		}
	} else {
		previous, err = c.secret(text.LabelPrevious.S())
		if err != nil {
			return c.fail(err)
		}
		defer previous.Wipe()
	}
	newPW, err := c.secret(text.LabelDirNew.S())
	if err != nil {
		return c.fail(err)
	}
	defer newPW.Wipe()
	if !c.json {
		fmt.Fprintln(c.Out, text.SyncRunning.S())
	}
	op, err := c.client.Sync(ctx, localapi.SyncRequest{User: user, Previous: previous, New: newPW, ForgotPrevious: forgot}, c.progress(localapi.OpSync))
	code := c.finish(op, err, text.InSync, nil)
	if code != exitOK || op.NextAction != localapi.OpChange {
		return code
	}
	// A temporary password: the user must choose a permanent one now (the
	// operation's note said so).
	if c.lines != nil && !c.moreInput() {
		fmt.Fprintln(c.Err, "→", text.CLITemporaryLater.S())
		return exitOK
	}
	pol, err := c.client.Policy(ctx, user)
	if err != nil {
		return c.fail(err)
	}
	return c.changeWith(ctx, user, pol, newPW)
}

// link links this Mac to the directory account with its password: the
// directory sends a Mac nothing about a user until the user's password was
// given from it, or an administrator assigned the Mac.
func (c *CLI) link(ctx context.Context, user string) int {
	pw, err := c.secret(text.LabelLinkPw.S())
	if err != nil {
		return c.fail(err)
	}
	a, err := c.client.Link(ctx, localapi.LinkRequest{User: user, Password: pw})
	pw.Wipe()
	if err != nil {
		return c.failIn(err, text.InLink, nil)
	}
	if c.json {
		englishAccount(a)
		c.printJSON(a)
		return exitOK
	}
	fmt.Fprintln(c.Out, "✓", text.CLILinked.S(map[string]any{"Local": a.LocalUser, "Directory": a.DirectoryUser}))
	row(c.Out, text.CLIRowState.S(), text.CLIStateLine.S(map[string]any{"State": text.AccountState(a.State), "Reason": render(a.Reason)}))
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
	fmt.Fprintln(c.Out, text.CLIRulesFor.S(map[string]any{"User": p.DirectoryUser}))
	printRules(c.Out, p)
	if p.Policy.MaxAgeDays > 0 {
		fmt.Fprintln(c.Out, text.CLIExpireAfter.N(p.Policy.MaxAgeDays))
	}
	if p.MFA {
		fmt.Fprintln(c.Out, text.CLIMFANeeded.S())
	}
	return exitOK
}

func (c *CLI) watch(ctx context.Context) int {
	err := c.client.Watch(ctx, func(ev localapi.Event) error {
		if c.json {
			englishEvent(&ev)
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
				fmt.Fprintln(c.Out, now, text.CLIWatchStatus.S(map[string]any{
					"User": a.LocalUser, "State": text.AccountState(a.State), "Connection": text.Connection(ev.Status.Directory)}))
			}
		case localapi.EventNotice:
			title, body := text.Notice(*ev.Notice)
			fmt.Fprintln(c.Out, now, text.CLIWatchNotice.S(map[string]any{"Title": title, "Body": body}))
		case localapi.EventStep:
			fmt.Fprintln(c.Out, now, " ", stepMark(ev.Step.State), text.StepName(ev.Step.Name, ""))
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
		if pw, err = c.secret(text.CLICheckLabel.S()); err != nil {
			return c.fail(err)
		}
		defer pw.Wipe()
	}
	rep, err := c.client.Doctor(ctx, localapi.DoctorRequest{User: user, Password: pw})
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		englishReport(rep)
		c.printJSON(rep)
	} else {
		for _, ch := range rep.Checks {
			mark := "✓"
			if !ch.OK {
				mark = "✗"
			}
			fmt.Fprintf(c.Out, "%s %-16s %s\n", mark, text.CheckName(ch.Place), render(ch.Text))
			if ch.Fix != nil {
				fmt.Fprintln(c.Out, "  →", render(*ch.Fix))
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
		fmt.Fprintln(c.Err, text.CLIOutRequired.S())
		return exitUsage
	}
	raw, err := c.client.Diagnostics(ctx)
	if err != nil {
		return c.fail(err)
	}
	if err := writePrivate(out, append(raw, '\n')); err != nil {
		var u *unsafeFile
		if errors.As(err, &u) {
			return c.fail(said(text.CLIUnsafeFile(out, u.why, u.value)))
		}
		return c.fail(said(text.CLIWriteFailed.S(map[string]any{"Path": out, "Err": err})))
	}
	fmt.Fprintln(c.Out, text.CLIWrote.S(map[string]any{"Path": out, "Bytes": len(raw) + 1}))
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
			fmt.Fprintln(c.Err, text.CLIAdminRequired.S())
			return exitUsage
		}
		pw, perr := c.secret(text.CLIAdminLabel.S(map[string]any{"Admin": admin}))
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
		fmt.Fprintln(c.Err, text.CLIUnknownAction.S(map[string]any{"Action": sub}))
		return exitUsage
	}
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(st)
		return exitOK
	}
	mark := "✓"
	if !st.Usable {
		mark = "✗"
	}
	fmt.Fprintln(c.Out, mark, text.CLIRowService.S()+":", text.ServiceAccount(*st))
	if st.Present && !st.Usable {
		return exitFailed
	}
	return exitOK
}

// printRules lists the directory's rules and this Mac's own (in the Mac's
// words).
func printRules(w io.Writer, pol *localapi.PolicyResponse) {
	for _, r := range pol.Rules {
		fmt.Fprintln(w, "  •", text.RuleText(r.Code, pol.Policy))
	}
	if len(pol.MacRules) == 0 {
		return
	}
	fmt.Fprintln(w, text.MacRulesHeading.S())
	for _, r := range pol.MacRules {
		d := r.Description(text.InUse()...)
		if !r.Checkable() {
			d = text.RuleOnSave.S(map[string]any{"Rule": d})
		}
		fmt.Fprintln(w, "  •", d)
	}
}
