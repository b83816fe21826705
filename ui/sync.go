//go:build cgo || !darwin

package ui

import (
	"context"
	"slices"

	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// syncWindow is the Sync Password window, for after the password changed
// in the directory (an admin reset, a change on the web): why, the previous
// Mac password and the new directory password, or "I don't remember" with
// what that does to the keychain. A temporary password goes straight on to
// the Change window.
type syncWindow struct {
	opPane

	why      *message
	previous *field
	newPw    *field
	forgot   *check
	warning  *message
}

func newSyncWindow(a *App) *syncWindow {
	return &syncWindow{opPane: opPane{a: a, kind: localapi.OpSync}}
}

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
	s.buildPane(paneWords{
		title: text.SyncTitle.S(), heading: text.SyncHeading.S(), intro: text.SyncIntro.S(),
		running: text.SyncRunning.S(), save: text.BtnSync.S(),
	}, s.submit, s.close)
	s.why = newMessage()
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
	s.layout(s.why.box)
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
	if acct != nil && acct.Reason.Code != "" {
		why = text.Render(acct.Reason)
	}
	// While this window's own sync runs the account is busy; the reason
	// it was opened for still stands until the sync ends.
	if !s.done && !s.running {
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
	s.previous.setError("")
	s.newPw.setError("")
	// A temporary password is needed once more, as the current password of
	// the change that must follow; finish hands it to the Change window
	// and wipes it.
	var temporary []byte
	s.run(func(progress func(localapi.Step)) (*localapi.Operation, error) {
		defer req.Previous.Wipe()
		defer req.New.Wipe()
		op, err := s.a.svc.Sync(context.Background(), req, progress)
		if err == nil && op != nil && op.State == localapi.OpDone && op.NextAction == localapi.OpChange {
			temporary = slices.Clone([]byte(req.New))
		}
		return op, err
	}, func(op *localapi.Operation, err error) { s.finish(op, err, temporary) })
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
			s.a.log.Info("temporary password synced, opening change", "op_id", op.ID)
			s.close()
			s.a.showChange(temporary)
			return
		}
		s.why.set(kindWarning, "")
		s.succeeded(op, text.SyncDone.S(), text.SyncDoneIntro.S())
		return
	}
	p := explain(op, err, text.InSync, nil)
	s.failed(err)
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
