//go:build cgo || !darwin

package ui

import (
	"context"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// enrollWindow is the Set Up Authenticator window, for an account whose
// MFA an administrator reset with an enrolment period. It asks lockstepd
// (and so the directory) for a new key as it opens, shows it as a QR code
// made here (never by a web service) and as text, says when the period
// ends, and confirms the key with a code from the app. The key lives in
// this window only: closing it drops it, and a new one is asked for the
// next time.
type enrollWindow struct {
	a *App
	w fyne.Window
	k keys

	starting, running, done bool
	afterChange             bool

	heading *widget.Label
	account *widget.Label
	intro   *widget.Label
	banner  *banner
	qr      *canvas.Image
	qrLabel *widget.Label
	keyText *widget.Label
	by      *widget.Label
	code    *field
	form    *fyne.Container
	key     *fyne.Container
	wait    *widget.Label
	result  *fyne.Container
	cancel  *button
	retry   *button
	save    *button
	closeB  *button
}

// qrSize is the QR code's side in the window, in Fyne units: big enough for
// a phone camera at arm's length.
const qrSize float32 = 200

func newEnrollWindow(a *App) *enrollWindow { return &enrollWindow{a: a} }

func (e *enrollWindow) open(afterChange bool) {
	if e.w == nil {
		e.afterChange = afterChange
		e.build()
		e.begin()
	}
	fit(e.w)
	e.w.Show()
	e.w.RequestFocus()
	e.a.log.Info("window opened", "window", "enroll")
}

func (e *enrollWindow) build() {
	e.w = e.a.fa.NewWindow(text.EnrollTitle.S())
	e.w.SetFixedSize(true)
	e.k = keys{submit: e.submit, cancel: e.close}
	e.starting, e.running, e.done = false, false, false

	e.heading = heading(text.EnrollHeading.S())
	e.account = widget.NewLabel("")
	intro := text.EnrollIntro.S()
	if e.afterChange {
		intro = text.EnrollAfterChange.S() + "\n" + intro
	}
	e.intro = wrapLabel(intro)
	e.banner = newBanner()
	e.qr = canvas.NewImageFromResource(nil)
	e.qr.FillMode = canvas.ImageFillContain
	e.qr.ScaleMode = canvas.ImageScalePixels
	e.qr.SetMinSize(fyne.NewSize(qrSize, qrSize))
	e.qrLabel = widget.NewLabel(text.EnrollQRLabel.S())
	e.qrLabel.Alignment = fyne.TextAlignCenter
	e.keyText = widget.NewLabel("")
	e.keyText.TextStyle = fyne.TextStyle{Monospace: true}
	e.keyText.Selectable = true
	e.by = wrapLabel("")
	e.key = container.NewVBox(
		container.NewCenter(e.qr),
		e.qrLabel,
		container.New(layout.NewFormLayout(), widget.NewLabel(text.EnrollKeyLabel.S()), e.keyText),
		e.by,
	)
	e.key.Hide()
	e.code = newField(&e.k, text.LabelEnrollCode.S())
	e.code.entry.Password = false
	e.code.entry.OnChanged = func(string) {
		if e.code.failed {
			e.code.setError("")
		}
		e.validate()
	}
	e.form = container.New(layout.NewFormLayout(), e.code.label, e.code.cell)
	e.form.Hide()
	e.wait = widget.NewLabel(text.EnrollStarting.S())
	e.wait.Hide()
	e.result = container.NewVBox(wrapLabel(text.EnrollDoneIntro.S()))
	e.result.Hide()
	e.cancel = newButton(&e.k, text.BtnCancel.S(), e.close)
	e.retry = newButton(&e.k, text.BtnRetry.S(), e.begin)
	e.retry.Hide()
	e.save = newButton(&e.k, text.BtnConfirm.S(), e.submit)
	e.save.Importance = widget.HighImportance
	e.closeB = newButton(&e.k, text.BtnDone.S(), e.close)
	e.closeB.Importance = widget.HighImportance
	e.closeB.Hide()
	e.w.SetContent(newWindowContent(
		e.heading, e.account, e.intro, e.banner.card,
		e.key, e.form, e.wait, e.result,
		widget.NewSeparator(),
		buttonBar(e.cancel, e.retry, e.save, e.closeB),
	))
	e.w.SetCloseIntercept(func() {
		e.running = false
		e.close()
	})
	e.w.Canvas().SetOnTypedKey(func(ev *fyne.KeyEvent) { e.k.handle(ev) })
	e.statusChanged()
	e.validate()
}

// begin asks for a new key.
func (e *enrollWindow) begin() {
	if e.w == nil || e.starting || e.running || e.done {
		return
	}
	e.starting = true
	e.banner.set(kindInfo, "")
	e.retry.Hide()
	e.key.Hide()
	e.form.Hide()
	e.wait.SetText(text.EnrollStarting.S())
	e.wait.Show()
	e.validate()
	req := localapi.MFAEnrollRequest{User: e.a.localUser()}
	e.a.log.Info("enrolment begun")
	go func() {
		k, err := e.a.svc.BeginMFAEnrollment(context.Background(), req)
		e.a.do(func() { e.started(k, err) })
	}()
}

// started shows the key, or why there is none.
func (e *enrollWindow) started(k *localapi.MFAEnrollment, err error) {
	if k != nil {
		defer k.Secret.Wipe()
		defer k.URI.Wipe()
	}
	if e.w == nil {
		return
	}
	e.starting = false
	e.wait.Hide()
	if err == nil {
		var png []byte
		png, err = qrcode.Encode(string(k.URI), qrcode.Medium, 512)
		if err == nil {
			e.qr.Resource = fyne.NewStaticResource("authenticator-key.png", png)
			e.qr.Refresh()
			e.keyText.SetText(text.KeyGroups(string(k.Secret)))
			e.by.SetText(text.EnrollByLine(k.Until))
			e.key.Show()
			e.form.Show()
			e.validate()
			e.w.Canvas().Focus(e.code.entry)
			fit(e.w)
			return
		}
	}
	p := explain(nil, err, text.InChange, nil)
	e.a.log.Info("enrolment not begun", "err", err)
	e.banner.set(kindError, p.text)
	e.retry.Show()
	e.validate()
	fit(e.w)
}

// statusChanged follows the account the window names.
func (e *enrollWindow) statusChanged() {
	if e.w == nil {
		return
	}
	e.account.SetText(accountLine(e.a.account()))
}

func (e *enrollWindow) valid() bool {
	return !e.starting && !e.running && !e.done && e.form.Visible() && strings.TrimSpace(e.code.entry.Text) != ""
}

func (e *enrollWindow) validate() {
	if e.w == nil {
		return
	}
	if e.valid() {
		e.save.Enable()
	} else {
		e.save.Disable()
	}
}

func (e *enrollWindow) submit() {
	if e.done {
		e.close()
		return
	}
	if !e.valid() {
		return
	}
	req := localapi.MFAConfirmRequest{User: e.a.localUser(), Code: strings.TrimSpace(e.code.entry.Text)}
	e.code.entry.SetText("")
	e.running = true
	e.code.setError("")
	e.banner.set(kindInfo, "")
	e.form.Hide()
	e.wait.SetText(text.EnrollRunning.S())
	e.wait.Show()
	e.cancel.Hide()
	e.save.Hide()
	fit(e.w)
	e.a.log.Info("enrolment code submitted")
	go func() {
		acct, err := e.a.svc.ConfirmMFAEnrollment(context.Background(), req)
		e.a.do(func() { e.finish(acct, err) })
	}()
}

func (e *enrollWindow) finish(acct *localapi.Account, err error) {
	if e.w == nil {
		return
	}
	e.running = false
	e.wait.Hide()
	if err == nil {
		e.done = true
		e.forgetKey()
		e.key.Hide()
		e.intro.Hide()
		e.heading.SetText(text.EnrollDone.S())
		e.result.Show()
		e.closeB.Show()
		e.w.Canvas().Focus(e.closeB)
		fit(e.w)
		e.a.log.Info("enrolment finished", "state", acct.State)
		return
	}
	p := explain(nil, err, text.InChange, nil)
	e.a.log.Info("enrolment code refused", "field", p.field, "err", err)
	e.form.Show()
	e.cancel.Show()
	e.save.Show()
	if p.field == localapi.FieldTOTP {
		e.code.setError(p.text)
	} else {
		e.banner.set(kindError, p.text)
	}
	e.validate()
	e.w.Canvas().Focus(e.code.entry)
	fit(e.w)
}

// forgetKey drops the key from the window.
func (e *enrollWindow) forgetKey() {
	e.keyText.SetText("")
	e.qr.Resource = nil
	e.qr.Refresh()
}

func (e *enrollWindow) close() {
	if e.w == nil || e.running {
		return
	}
	e.forgetKey()
	e.code.entry.SetText("")
	w := e.w
	e.w = nil
	w.Close()
	e.a.log.Info("window closed", "window", "enroll")
}
