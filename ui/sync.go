//go:build cgo || !darwin

package ui

import (
	"context"
	"github.com/lockstep-dev/lockstep/ui/text"
	"slices"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
)

// syncWindow is the Sync Password window, for after the password changed
// in the directory (an admin reset, a change on the web): why, the previous
// Mac password and the new directory password, or "I don't remember" with
// what that does to the keychain. A temporary password goes straight on to
// the Change window.
type syncWindow struct {
	a *App
	w fyne.Window
	k keys

	running bool
	done    bool

	heading  *widget.Label
	account  *widget.Label
	why      *message
	intro    *widget.Label
	banner   *banner
	previous *field
	newPw    *field
	forgot   *check
	warning  *message
	form     *fyne.Container
	steps    *stepList
	stepsBox *fyne.Container
	result   *fyne.Container
	cancel   *button
	save     *button
	closeB   *button
}

func newSyncWindow(a *App) *syncWindow { return &syncWindow{a: a} }

func (s *syncWindow) open() {
	if s.w == nil {
		s.build()
	}
	fit(s.w)
	s.w.Show()
	s.w.RequestFocus()
	s.a.log.Info("window opened", "window", "sync")
}

func (s *syncWindow) build() {
	a := s.a
	s.w = a.fa.NewWindow(text.SyncTitle.S())
	s.w.SetFixedSize(true)
	s.k = keys{submit: s.submit, cancel: s.close}
	s.running, s.done = false, false

	s.heading = heading(text.SyncHeading.S())
	s.account = widget.NewLabel("")
	s.why = newMessage()
	s.intro = wrapLabel(text.SyncIntro.S())
	s.banner = newBanner()
	s.previous = newField(&s.k, text.LabelPrevious.S())
	s.newPw = newField(&s.k, text.LabelDirNew.S())
	for _, f := range []*field{s.previous, s.newPw} {
		f.entry.OnChanged = func(string) {
			if f.failed {
				f.setError("")
			}
			s.validate()
		}
	}
	s.forgot = newCheck(&s.k, text.CheckForgot.S(), func(bool) { s.forgotChanged() })
	s.warning = newMessage()
	grid := container.New(layout.NewFormLayout(),
		s.previous.label, s.previous.cell,
		s.newPw.label, s.newPw.cell,
	)
	s.form = container.NewVBox(grid, s.forgot, s.warning.box)
	s.steps = newStepList(localapi.OpSync)
	s.stepsBox = container.NewVBox(heading(text.SyncRunning.S()), s.steps.box)
	s.stepsBox.Hide()
	s.result = container.NewVBox()
	s.result.Hide()
	s.cancel = newButton(&s.k, text.BtnCancel.S(), s.close)
	s.save = newButton(&s.k, text.BtnSync.S(), s.submit)
	s.save.Importance = widget.HighImportance
	s.closeB = newButton(&s.k, text.BtnDone.S(), s.close)
	s.closeB.Importance = widget.HighImportance
	s.closeB.Hide()
	s.w.SetContent(newWindowContent(
		s.heading, s.account, s.why.box, s.intro, s.banner.card,
		s.form, s.stepsBox, s.result,
		widget.NewSeparator(),
		buttonBar(s.cancel, s.save, s.closeB),
	))
	s.w.SetCloseIntercept(func() {
		s.running = false
		s.close()
	})
	s.w.Canvas().SetOnTypedKey(func(ev *fyne.KeyEvent) { s.k.handle(ev) })
	s.statusChanged()
	s.forgotChanged()
	s.w.Canvas().Focus(s.previous.entry)
}

// usable reports whether the forgotten-password path is available.
func (s *syncWindow) usable() bool {
	return s.a.status != nil && s.a.status.ServiceAccount.Usable
}

// statusChanged follows the account: why a sync is needed, and whether the
// service account can reset it without the previous password.
func (s *syncWindow) statusChanged() {
	if s.w == nil {
		return
	}
	acct := s.a.account()
	s.account.SetText(accountLine(acct))
	why := text.SyncWhyDefault.S()
	if acct != nil && acct.Reason != "" {
		why = acct.Reason
	}
	if !s.done {
		s.why.set(kindWarning, why)
	}
	s.forgotChanged()
}

func (s *syncWindow) forgotChanged() {
	if s.w == nil {
		return
	}
	if !s.usable() {
		s.forgot.SetChecked(false)
		s.forgot.Disable()
		s.warning.set(kindInfo, text.ForgotUnavailable.S())
	} else {
		s.forgot.Enable()
		if s.forgot.Checked {
			s.warning.set(kindWarning, text.ForgotWarning.S())
		} else {
			s.warning.set(kindWarning, "")
		}
	}
	if s.forgot.Checked {
		s.previous.entry.wipe()
		s.previous.setError("")
		s.previous.entry.Disable()
	} else {
		s.previous.entry.Enable()
	}
	s.validate()
}

func (s *syncWindow) valid() bool {
	if s.running || s.done || s.newPw.entry.Text == "" {
		return false
	}
	return s.forgot.Checked || s.previous.entry.Text != ""
}

func (s *syncWindow) validate() {
	if s.w == nil {
		return
	}
	if s.valid() {
		s.save.Enable()
	} else {
		s.save.Disable()
	}
	if !s.running && !s.done {
		fit(s.w)
	}
}

func (s *syncWindow) submit() {
	if s.done {
		s.close()
		return
	}
	if !s.valid() {
		return
	}
	req := localapi.SyncRequest{
		User:           s.a.localUser(),
		New:            protocol.Secret(s.newPw.entry.Text),
		ForgotPrevious: s.forgot.Checked,
	}
	if !req.ForgotPrevious {
		req.Previous = protocol.Secret(s.previous.entry.Text)
	}
	s.wipe()
	s.running = true
	s.previous.setError("")
	s.newPw.setError("")
	s.banner.set(kindInfo, "")
	s.form.Hide()
	s.intro.Hide()
	s.steps.reset()
	s.stepsBox.Show()
	s.cancel.Hide()
	s.save.Hide()
	fit(s.w)
	acct := s.a.account()
	temporaryAcct := acct != nil && acct.Temporary
	s.a.log.Info("sync submitted", "forgot_previous", req.ForgotPrevious)
	go func() {
		defer req.Previous.Wipe()
		defer req.New.Wipe()
		op, err := s.a.svc.Sync(context.Background(), req, func(st localapi.Step) {
			s.a.do(func() { s.step(st) })
		})
		// A temporary password is needed once more, as the current password
		// of the change that must follow; it goes to the UI goroutine, which
		// wipes it once the Change window has it.
		var temporary []byte
		if err == nil && op != nil && op.State == localapi.OpDone && (op.NextAction == localapi.OpChange || temporaryAcct) {
			temporary = slices.Clone([]byte(req.New))
		}
		s.a.do(func() { s.finish(op, err, temporary) })
	}()
}

func (s *syncWindow) step(st localapi.Step) {
	if s.w == nil || !s.running {
		return
	}
	s.steps.update(st)
	fit(s.w)
}

func (s *syncWindow) finish(op *localapi.Operation, err error, temporary []byte) {
	defer clear(temporary)
	if s.w == nil {
		if temporary != nil {
			// The window was closed while syncing; the change still has to
			// be made, so open it anyway.
			s.a.showChange(temporary)
		}
		return
	}
	s.running = false
	if err == nil && op != nil && op.State == localapi.OpDone {
		if temporary != nil {
			s.a.log.Info("sync finished, temporary password: opening change", "op", op.ID)
			s.close()
			s.a.showChange(temporary)
			return
		}
		s.done = true
		s.heading.SetText(text.SyncDone.S())
		s.why.set(kindWarning, "")
		s.stepsBox.Hide()
		s.result.RemoveAll()
		s.result.Add(wrapLabel(text.SyncDoneIntro.S()))
		s.result.Add(updatedPlaces(op))
		s.result.Show()
		s.closeB.Show()
		s.w.Canvas().Focus(s.closeB)
		fit(s.w)
		s.a.log.Info("sync finished", "op", op.ID)
		return
	}
	p := s.a.explain(op, err, true)
	s.a.log.Info("sync failed", "field", p.field, "err", err)
	s.stepsBox.Hide()
	s.form.Show()
	s.intro.Show()
	s.cancel.Show()
	s.save.Show()
	focus := s.previous.entry
	switch p.field {
	case localapi.FieldPrevious, localapi.FieldCurrent:
		s.previous.setError(p.text)
	case localapi.FieldNew:
		s.newPw.setError(p.text)
		focus = s.newPw.entry
	default:
		s.banner.set(kindError, p.text)
	}
	if s.forgot.Checked {
		focus = s.newPw.entry
	}
	s.validate()
	s.w.Canvas().Focus(focus)
	fit(s.w)
}

func (s *syncWindow) wipe() {
	s.previous.entry.wipe()
	s.newPw.entry.wipe()
}

func (s *syncWindow) close() {
	if s.w == nil || s.running {
		return
	}
	s.wipe()
	w := s.w
	s.w = nil
	w.Close()
	s.a.log.Info("window closed", "window", "sync")
}
