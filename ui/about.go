//go:build cgo || !darwin

package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// aboutWindow names the app and both versions, the app's and lockstepd's.
type aboutWindow struct {
	a       *App
	w       fyne.Window
	k       keys
	service *widget.Label
}

func newAboutWindow(a *App) *aboutWindow { return &aboutWindow{a: a} }

func (b *aboutWindow) open() {
	if b.w == nil {
		b.build()
	}
	b.refresh()
	b.w.Show()
	b.w.RequestFocus()
	b.a.log.Info("window opened", "window", "about")
}

func (b *aboutWindow) build() {
	b.w = b.a.fa.NewWindow(text.AboutTitle.S())
	b.w.SetFixedSize(true)
	b.k = keys{submit: b.close, cancel: b.close}
	img := canvas.NewImageFromResource(appIcon())
	img.FillMode = canvas.ImageFillContain
	img.SetMinSize(fyne.NewSize(96, 96))
	name := heading(text.AboutName.S())
	name.Alignment = fyne.TextAlignCenter
	ver := widget.NewLabel(text.AboutVersion.S(map[string]any{"Version": appVersion()}))
	ver.Alignment = fyne.TextAlignCenter
	blurb := wrapLabel(text.AboutBlurb.S())
	blurb.Alignment = fyne.TextAlignCenter
	b.service = widget.NewLabel("")
	b.service.Alignment = fyne.TextAlignCenter
	closeB := newButton(&b.k, text.BtnClose.S(), b.close)
	closeB.Importance = widget.HighImportance
	b.w.SetContent(newWindowContent(
		container.NewCenter(img), name, ver, blurb, b.service,
		container.NewCenter(closeB),
	))
	b.w.SetCloseIntercept(b.close)
	b.w.Canvas().SetOnTypedKey(func(ev *fyne.KeyEvent) { b.k.handle(ev) })
	b.w.Canvas().Focus(closeB)
}

func (b *aboutWindow) refresh() {
	if b.w == nil {
		return
	}
	if b.a.connected && b.a.status != nil {
		b.service.SetText(text.AboutService.S(map[string]any{"Version": b.a.status.Version}))
	} else {
		b.service.SetText(text.AboutNoSvc.S())
	}
	fit(b.w)
}

func (b *aboutWindow) close() {
	if b.w == nil {
		return
	}
	w := b.w
	b.w = nil
	w.Close()
	b.a.log.Info("window closed", "window", "about")
}
