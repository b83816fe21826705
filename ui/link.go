//go:build cgo || !darwin

package ui

import (
	"context"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// linkWindow is the Link to Directory window, for an account the directory
// does not link to this Mac yet: it sends the Mac nothing about the user
// until the user's directory password was given from it. One box, the
// directory password; on success the account shows its normal state.
type linkWindow struct {
	a *App
	w fyne.Window
	k keys

	running bool
	done    bool

	heading  *widget.Label
	account  *widget.Label
	intro    *widget.Label
	banner   *banner
	password *field
	form     *fyne.Container
	progress *fyne.Container
	result   *fyne.Container
	cancel   *button
	save     *button
	closeB   *button
}

func newLinkWindow(a *App) *linkWindow { return &linkWindow{a: a} }

func (l *linkWindow) open() {
	if l.w == nil {
		l.build()
	}
	fit(l.w)
	l.w.Show()
	l.w.RequestFocus()
	l.a.log.Info("window opened", "window", "link")
}

func (l *linkWindow) build() {
	l.w = l.a.fa.NewWindow(text.LinkTitle.S())
	l.w.SetFixedSize(true)
	l.k = keys{submit: l.submit, cancel: l.close}
	l.running, l.done = false, false

	l.heading = heading(text.LinkHeading.S())
	l.account = widget.NewLabel("")
	l.intro = wrapLabel(text.LinkIntro.S())
	l.banner = newBanner()
	l.password = newField(&l.k, text.LabelLinkPw.S())
	l.password.entry.OnChanged = func(string) {
		if l.password.failed {
			l.password.setError("")
		}
		l.validate()
	}
	l.form = container.New(layout.NewFormLayout(), l.password.label, l.password.cell)
	l.progress = container.NewVBox(widget.NewLabel(text.LinkRunning.S()))
	l.progress.Hide()
	l.result = container.NewVBox(wrapLabel(text.LinkDoneIntro.S()))
	l.result.Hide()
	l.cancel = newButton(&l.k, text.BtnCancel.S(), l.close)
	l.save = newButton(&l.k, text.BtnLink.S(), l.submit)
	l.save.Importance = widget.HighImportance
	l.closeB = newButton(&l.k, text.BtnDone.S(), l.close)
	l.closeB.Importance = widget.HighImportance
	l.closeB.Hide()
	l.w.SetContent(newWindowContent(
		l.heading, l.account, l.intro, l.banner.card,
		l.form, l.progress, l.result,
		widget.NewSeparator(),
		buttonBar(l.cancel, l.save, l.closeB),
	))
	l.w.SetCloseIntercept(func() {
		l.running = false
		l.close()
	})
	l.w.Canvas().SetOnTypedKey(func(ev *fyne.KeyEvent) { l.k.handle(ev) })
	l.statusChanged()
	l.validate()
	l.w.Canvas().Focus(l.password.entry)
}

// statusChanged follows the account the window names.
func (l *linkWindow) statusChanged() {
	if l.w == nil {
		return
	}
	l.account.SetText(accountLine(l.a.account()))
}

func (l *linkWindow) valid() bool {
	return !l.running && !l.done && l.password.entry.Text != ""
}

func (l *linkWindow) validate() {
	if l.w == nil {
		return
	}
	if l.valid() {
		l.save.Enable()
	} else {
		l.save.Disable()
	}
	if !l.running && !l.done {
		fit(l.w)
	}
}

func (l *linkWindow) submit() {
	if l.done {
		l.close()
		return
	}
	if !l.valid() {
		return
	}
	req := localapi.LinkRequest{User: l.a.localUser(), Password: protocol.Secret(l.password.entry.Text)}
	l.password.entry.wipe()
	l.running = true
	l.password.setError("")
	l.banner.set(kindInfo, "")
	l.form.Hide()
	l.intro.Hide()
	l.progress.Show()
	l.cancel.Hide()
	l.save.Hide()
	fit(l.w)
	l.a.log.Info("link submitted")
	go func() {
		defer req.Password.Wipe()
		acct, err := l.a.svc.Link(context.Background(), req)
		l.a.do(func() { l.finish(acct, err) })
	}()
}

func (l *linkWindow) finish(acct *localapi.Account, err error) {
	if l.w == nil {
		return
	}
	l.running = false
	l.progress.Hide()
	if err == nil {
		l.done = true
		l.heading.SetText(text.LinkDone.S())
		l.result.Show()
		l.closeB.Show()
		l.w.Canvas().Focus(l.closeB)
		fit(l.w)
		l.a.log.Info("link finished", "state", acct.State)
		return
	}
	p := explain(nil, err, text.InLink, nil)
	l.a.log.Info("link failed", "field", p.field, "err", err)
	l.form.Show()
	l.intro.Show()
	l.cancel.Show()
	l.save.Show()
	if p.field == localapi.FieldPassword {
		l.password.setError(p.text)
	} else {
		l.banner.set(kindError, p.text)
	}
	l.validate()
	l.w.Canvas().Focus(l.password.entry)
	fit(l.w)
}

func (l *linkWindow) close() {
	if l.w == nil || l.running {
		return
	}
	l.password.entry.wipe()
	w := l.w
	l.w = nil
	w.Close()
	l.a.log.Info("window closed", "window", "link")
}
