//go:build cgo || !darwin

package ui

import (
	"context"
	"slices"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// changeWindow is the Change Password window: current, new, confirm and
// (with MFA) a code; a checklist of the directory's rules that ticks as the
// user types; then the steps as lockstepd runs them; then what was updated.
type changeWindow struct {
	opPane

	policy    *localapi.PolicyResponse
	policyErr error
	// refused are the directory-only rules (history) the directory said
	// the last attempt broke.
	refused map[string]bool

	current  *field
	newPw    *field
	confirm  *field
	code     *field
	codeHelp *widget.Label
	rulesHdr *widget.Label
	rules    *fyne.Container
	// checklist is what the rules list shows, one "state: rule" a line
	// (met, unmet, later, refused), for tests and logs.
	checklist []string
}

func newChangeWindow(a *App) *changeWindow {
	return &changeWindow{opPane: opPane{a: a, kind: localapi.OpChange}}
}

// open shows the window, building it when it is not open. temporary, when
// not nil, is filled in as the current password.
func (c *changeWindow) open(temporary []byte) {
	if c.w == nil {
		c.build()
	}
	if temporary != nil && !c.running {
		c.reset()
		c.current.entry.SetText(string(temporary))
		c.banner.set(kindInfo, text.ChangeTempNote.S())
		c.w.Canvas().Focus(c.newPw.entry)
	}
	fit(c.w)
	c.w.Show()
	c.w.RequestFocus()
	c.a.log.Info("window opened", "window", "change")
}

func (c *changeWindow) build() {
	c.buildPane(paneWords{
		title: text.ChangeTitle.S(), heading: text.ChangeHeading.S(), intro: text.ChangeIntro.S(),
		running: text.ChangeRunning.S(), save: text.BtnSave.S(),
	}, c.submit, c.close)
	c.refused = map[string]bool{}
	c.current = newField(&c.k, text.LabelCurrent.S())
	c.newPw = newField(&c.k, text.LabelNew.S())
	c.confirm = newField(&c.k, text.LabelConfirm.S())
	c.code = newField(&c.k, text.LabelCode.S())
	c.code.entry.Password = false
	c.codeHelp = wrapLabel(text.CodeHelp.S(map[string]any{"N": protocol.TOTPDigits}))
	c.codeHelp.SizeName = theme.SizeNameCaptionText
	c.code.cell.Add(c.codeHelp)
	for _, f := range []*field{c.current, c.newPw, c.confirm, c.code} {
		f.entry.OnChanged = func(string) {
			if f.failed {
				f.setError("") // the user is fixing it
			}
			c.validate()
		}
	}
	c.rulesHdr = widget.NewLabel(text.RulesHeading.S())
	c.rulesHdr.TextStyle = fyne.TextStyle{Bold: true}
	c.rules = container.NewVBox()
	grid := container.New(layout.NewFormLayout(),
		c.current.label, c.current.cell,
		c.newPw.label, c.newPw.cell,
		c.confirm.label, c.confirm.cell,
		c.code.label, c.code.cell,
	)
	c.form = container.NewVBox(grid, c.rulesHdr, c.rules)
	c.layout()
	c.statusChanged()
	c.loadPolicy()
	c.validate()
	c.w.Canvas().Focus(c.current.entry)
}

// reset puts the window back to an empty form.
func (c *changeWindow) reset() {
	c.running, c.done = false, false
	c.refused = map[string]bool{}
	c.wipe()
	for _, f := range []*field{c.current, c.newPw, c.confirm, c.code} {
		f.setError("")
	}
	c.showForm()
	c.validate()
}

func (c *changeWindow) loadPolicy() {
	c.policy, c.policyErr = nil, nil
	c.showRules()
	user := c.a.localUser()
	go func() {
		p, err := c.a.svc.Policy(context.Background(), user)
		c.a.do(func() {
			c.policy, c.policyErr = p, err
			c.statusChanged()
			c.validate()
		})
	}()
}

// mfa reports whether the account needs a code.
func (c *changeWindow) mfa() bool {
	if c.policy != nil && c.policy.MFA {
		return true
	}
	acct := c.a.account()
	// During an enrolment period the password alone is enough.
	return acct != nil && acct.MFA && !acct.MustEnrol()
}

// statusChanged follows the account: its name and whether it has MFA.
func (c *changeWindow) statusChanged() {
	if c.w == nil {
		return
	}
	c.account.SetText(accountLine(c.a.account()))
	c.code.show(c.mfa())
	if !c.running && !c.done {
		fit(c.w)
	}
}

// user is the name the policy's "not your user name" rule checks.
func (c *changeWindow) user() string {
	if c.policy != nil {
		return c.policy.DirectoryUser
	}
	if acct := c.a.account(); acct != nil {
		return acct.DirectoryUser
	}
	return ""
}

func (c *changeWindow) violations() []protocol.Violation {
	if c.policy == nil {
		return nil
	}
	pw := []byte(c.newPw.entry.Text)
	defer clear(pw)
	v := c.policy.Policy.Check(c.user(), pw)
	for _, r := range protocol.UnmetLocal(c.policy.MacRules, pw) {
		v = append(v, protocol.Violation{Code: protocol.RuleMacPolicy, Message: r.ID})
	}
	return v
}

// showRules redraws the checklist for what is typed now.
func (c *changeWindow) showRules() {
	c.rules.RemoveAll()
	c.checklist = c.checklist[:0]
	switch {
	case c.policyErr != nil:
		m := newMessage()
		m.set(kindWarning, text.RulesUnavailable.S(map[string]any{"Err": explain(nil, c.policyErr, text.InChange, nil).text}))
		c.rules.Add(m.box)
		return
	case c.policy == nil:
		c.rules.Add(lineRow(resLater(), text.RulesLoading.S()))
		return
	}
	typed := c.newPw.entry.Text != ""
	unmet := map[string]bool{}
	for _, v := range c.violations() {
		unmet[v.Code] = true
	}
	for _, r := range c.policy.Rules {
		said := text.RuleText(r.Code, c.policy.Policy)
		res, line, state := resMet(), said, "met"
		switch {
		case !r.Local && c.refused[r.Code]:
			res, state = resFailed(), "refused"
		case !r.Local:
			res, line, state = resLater(), text.RuleOnSave.S(map[string]any{"Rule": said}), "later"
		case !typed || unmet[r.Code]:
			res, state = resUnmet(), "unmet"
		}
		c.checklist = append(c.checklist, state+": "+said)
		c.rules.Add(lineRow(res, line))
	}
	if len(c.policy.MacRules) == 0 {
		return
	}
	// The Mac's own rules, in its own words, beside the directory's.
	hdr := widget.NewLabel(text.MacRulesHeading.S())
	hdr.TextStyle = fyne.TextStyle{Bold: true}
	c.rules.Add(hdr)
	pw := []byte(c.newPw.entry.Text)
	defer clear(pw)
	for _, r := range c.policy.MacRules {
		said := r.Description(text.InUse()...)
		res, line, state := resMet(), said, "met"
		switch {
		case !r.Checkable():
			res, line, state = resLater(), text.RuleOnSave.S(map[string]any{"Rule": said}), "later"
		case !typed || !r.Met(pw):
			res, state = resUnmet(), "unmet"
		}
		c.checklist = append(c.checklist, state+": "+said)
		c.rules.Add(lineRow(res, line))
	}
}

// valid reports whether Save may be pressed.
func (c *changeWindow) valid() bool {
	if c.running || c.done || c.policy == nil && c.policyErr == nil {
		return false
	}
	cur, nw, cf := c.current.entry.Text, c.newPw.entry.Text, c.confirm.entry.Text
	if cur == "" || nw == "" || nw != cf || len(c.violations()) > 0 {
		return false
	}
	return !c.mfa() || protocol.ValidTOTPCode(c.code.entry.Text)
}

// validate updates the checklist, the confirm feedback and Save.
func (c *changeWindow) validate() {
	if c.w == nil {
		return
	}
	c.showRules()
	switch cf := c.confirm.entry.Text; {
	case cf == "":
		c.confirm.msg.set(kindOK, "")
	case cf == c.newPw.entry.Text:
		c.confirm.msg.set(kindOK, text.ConfirmMatch.S())
	default:
		c.confirm.msg.set(kindError, text.ConfirmMismatch.S())
	}
	if code := c.code.entry.Text; code != "" && !protocol.ValidTOTPCode(code) {
		c.code.msg.set(kindWarning, text.CodeInvalidFormat.S(map[string]any{"N": protocol.TOTPDigits}))
	} else if !c.code.failed {
		c.code.msg.set(kindWarning, "")
	}
	if c.valid() {
		c.save.Enable()
	} else {
		c.save.Disable()
	}
	if !c.running && !c.done {
		fit(c.w)
	}
}

// submit sends the change to lockstepd when the form is valid. The boxes
// are emptied at once; the passwords live on only as the request's bytes,
// wiped when it is sent.
func (c *changeWindow) submit() {
	if c.done {
		c.close()
		return
	}
	if !c.valid() {
		return
	}
	req := localapi.ChangeRequest{
		User:    c.a.localUser(),
		Current: protocol.Secret(c.current.entry.Text),
		New:     protocol.Secret(c.newPw.entry.Text),
		TOTP:    c.code.entry.Text,
	}
	if !c.mfa() {
		req.TOTP = ""
	}
	c.wipe()
	c.refused = map[string]bool{}
	for _, f := range []*field{c.current, c.newPw, c.confirm, c.code} {
		f.setError("")
	}
	c.run(func(progress func(localapi.Step)) (*localapi.Operation, error) {
		defer req.Current.Wipe()
		defer req.New.Wipe()
		return c.a.svc.Change(context.Background(), req, progress)
	}, c.finish)
}

func (c *changeWindow) finish(op *localapi.Operation, err error) {
	if c.w == nil {
		return
	}
	c.running = false
	if err == nil && op != nil && op.State == localapi.OpDone {
		c.succeeded(op, text.ChangeDone.S(), text.ChangeDoneIntro.S())
		if acct := c.a.account(); acct != nil && acct.MustEnrol() {
			// A change during an enrolment period needed no code; the
			// enrolment follows at once.
			c.a.log.Info("changed during the enrolment period, opening enrolment", "op_id", op.ID)
			c.a.showEnroll(true)
		}
		return
	}
	p := explain(op, err, text.InChange, c.policy)
	c.failed(err)
	for _, v := range p.violations {
		if i := slices.IndexFunc(c.policyRules(), func(r protocol.Rule) bool { return r.Code == v.Code && !r.Local }); i >= 0 {
			c.refused[v.Code] = true
		}
	}
	focus := c.current.entry
	switch p.field {
	case localapi.FieldCurrent:
		c.current.setError(p.text)
	case localapi.FieldNew:
		c.newPw.setError(p.text)
		focus = c.newPw.entry
	case localapi.FieldTOTP:
		c.code.setError(p.text)
		focus = c.code.entry
	default:
		c.banner.set(kindError, p.text)
	}
	c.validate()
	c.w.Canvas().Focus(focus)
	fit(c.w)
}

func (c *changeWindow) policyRules() []protocol.Rule {
	if c.policy == nil {
		return nil
	}
	return c.policy.Rules
}

func (c *changeWindow) wipe() {
	for _, f := range []*field{c.current, c.newPw, c.confirm, c.code} {
		f.entry.wipe()
	}
}

// close empties the boxes and closes the window. While lockstepd is
// working, Escape does nothing: the operation goes on either way, and the
// steps are what the user is waiting for.
func (c *changeWindow) close() {
	if c.w == nil {
		return
	}
	if c.running {
		return
	}
	c.wipe()
	w := c.w
	c.w = nil
	w.Close()
	c.a.log.Info("window closed", "window", "change")
}
