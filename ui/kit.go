//go:build cgo || !darwin

package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// keys is one window's keyboard contract: Return does the default action
// (when it is allowed), Escape cancels or closes. Fyne sends keys to the
// focused widget, so every focusable widget in a window routes them here.
type keys struct {
	submit func()
	cancel func()
}

func (k *keys) handle(ev *fyne.KeyEvent) bool {
	switch ev.Name {
	case fyne.KeyEscape:
		if k.cancel != nil {
			k.cancel()
		}
		return true
	case fyne.KeyReturn, fyne.KeyEnter:
		if k.submit != nil {
			k.submit()
		}
		return true
	}
	return false
}

// secretEntry is a password box: hidden text, Return submits, Escape
// cancels.
type secretEntry struct {
	widget.Entry
	k *keys
}

func newSecretEntry(k *keys) *secretEntry {
	e := &secretEntry{k: k}
	e.Password = true
	e.Wrapping = fyne.TextWrap(fyne.TextTruncateClip)
	e.ExtendBaseWidget(e)
	return e
}

// TypedKey implements fyne.Focusable.
func (e *secretEntry) TypedKey(ev *fyne.KeyEvent) {
	if e.k.handle(ev) {
		return
	}
	e.Entry.TypedKey(ev)
}

// wipe clears the box. The text was a Go string, which cannot be
// overwritten; dropping every reference is what is possible.
func (e *secretEntry) wipe() {
	e.SetText("")
}

// button is a push button whose focus keys follow the window: Escape
// cancels; Return and Space press it.
type button struct {
	widget.Button
	k *keys
}

func newButton(k *keys, label string, tapped func()) *button {
	b := &button{k: k}
	b.Text = label
	b.OnTapped = tapped
	b.ExtendBaseWidget(b)
	return b
}

// TypedKey implements fyne.Focusable.
func (b *button) TypedKey(ev *fyne.KeyEvent) {
	switch ev.Name {
	case fyne.KeyEscape:
		b.k.handle(ev)
	case fyne.KeyReturn, fyne.KeyEnter:
		if !b.Disabled() && b.OnTapped != nil {
			b.OnTapped()
		}
	default:
		b.Button.TypedKey(ev)
	}
}

// check is a checkbox: Space toggles it, Return submits, Escape cancels.
type check struct {
	widget.Check
	k *keys
}

func newCheck(k *keys, label string, changed func(bool)) *check {
	c := &check{k: k}
	c.Text = label
	c.OnChanged = changed
	c.ExtendBaseWidget(c)
	return c
}

// TypedKey implements fyne.Focusable.
func (c *check) TypedKey(ev *fyne.KeyEvent) {
	if c.k.handle(ev) {
		return
	}
	c.Check.TypedKey(ev)
}

// wrapLabel is a label that wraps at the window's width.
func wrapLabel(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.Wrapping = fyne.TextWrapWord
	return l
}

func heading(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.TextStyle = fyne.TextStyle{Bold: true}
	l.SizeName = theme.SizeNameSubHeadingText
	return l
}

// field is a labelled password box with its error underneath. The label is
// a real text label beside the box, so a screen reader can name the box.
type field struct {
	// failed is set while msg shows lockstepd's error for this box.
	failed bool
	label  *widget.Label
	entry  *secretEntry
	msg    *message
	cell   *fyne.Container
}

func newField(k *keys, label string) *field {
	f := &field{label: widget.NewLabel(label), entry: newSecretEntry(k), msg: newMessage()}
	f.cell = container.NewVBox(f.entry, f.msg.box)
	return f
}

func (f *field) setError(text string) {
	f.failed = text != ""
	f.msg.set(kindError, text)
}

func (f *field) show(on bool) {
	if on {
		f.label.Show()
		f.cell.Show()
	} else {
		f.label.Hide()
		f.cell.Hide()
	}
}

type msgKind int

const (
	kindError msgKind = iota
	kindInfo
	kindWarning
	kindOK
)

// message is an icon and a wrapped sentence, hidden while empty. The icon
// gives its meaning a shape as well as a colour.
type message struct {
	icon *widget.Icon
	text *widget.Label
	box  *fyne.Container
}

func newMessage() *message {
	m := &message{icon: widget.NewIcon(nil), text: wrapLabel("")}
	m.box = container.NewBorder(nil, nil, m.icon, nil, m.text)
	m.box.Hide()
	return m
}

func (m *message) set(kind msgKind, text string) {
	if text == "" {
		m.text.SetText("")
		m.box.Hide()
		return
	}
	switch kind {
	case kindError:
		m.icon.SetResource(theme.NewErrorThemedResource(theme.ErrorIcon()))
		m.text.Importance = widget.DangerImportance
	case kindWarning:
		m.icon.SetResource(theme.NewWarningThemedResource(theme.WarningIcon()))
		m.text.Importance = widget.MediumImportance
	case kindOK:
		m.icon.SetResource(theme.NewSuccessThemedResource(theme.ConfirmIcon()))
		m.text.Importance = widget.MediumImportance
	default:
		m.icon.SetResource(theme.InfoIcon())
		m.text.Importance = widget.MediumImportance
	}
	m.text.SetText(text)
	m.box.Show()
}

// banner is a message on a tinted card, for what concerns the whole window.
type banner struct {
	*message
	bg   *canvas.Rectangle
	card *fyne.Container
}

func newBanner() *banner {
	m := newMessage()
	bg := canvas.NewRectangle(theme.Color(theme.ColorNameInputBackground))
	bg.CornerRadius = theme.InputRadiusSize()
	b := &banner{message: m, bg: bg}
	m.box.Show()
	b.card = container.NewStack(bg, container.NewPadded(m.box))
	b.card.Hide()
	return b
}

// recolor follows a change of theme.
func (b *banner) recolor() {
	b.bg.FillColor = theme.Color(theme.ColorNameInputBackground)
	b.bg.Refresh()
}

func (b *banner) set(kind msgKind, text string) {
	b.recolor()
	b.message.set(kind, text)
	b.message.box.Show()
	if text == "" {
		b.card.Hide()
		return
	}
	b.card.Show()
}

// row is an icon and a label, for checklists and step lists.
type row struct {
	icon *widget.Icon
	text *widget.Label
	box  *fyne.Container
}

func newRow(res fyne.Resource, text string) *row {
	r := &row{icon: widget.NewIcon(res), text: wrapLabel(text)}
	r.box = container.NewBorder(nil, nil, r.icon, nil, r.text)
	return r
}

func (r *row) set(res fyne.Resource, text string) {
	r.icon.SetResource(res)
	r.text.SetText(text)
}

// buttonBar puts buttons at the bottom right, the default one last.
func buttonBar(bs ...fyne.CanvasObject) *fyne.Container {
	return container.NewHBox(append([]fyne.CanvasObject{layout.NewSpacer()}, bs...)...)
}

// Resources for checklist and step states: each has its own shape.
func resMet() fyne.Resource     { return theme.NewSuccessThemedResource(theme.ConfirmIcon()) }
func resUnmet() fyne.Resource   { return theme.NewDisabledResource(theme.RadioButtonIcon()) }
func resFailed() fyne.Resource  { return theme.NewErrorThemedResource(theme.CancelIcon()) }
func resLater() fyne.Resource   { return theme.InfoIcon() }
func resRunning() fyne.Resource { return theme.NewPrimaryThemedResource(theme.ViewRefreshIcon()) }
func resSkipped() fyne.Resource { return theme.NewDisabledResource(theme.ContentRemoveIcon()) }
func resWarning() fyne.Resource { return theme.NewWarningThemedResource(theme.WarningIcon()) }

// windowWidth is the width every window opens at.
const windowWidth float32 = 500

// fit sizes w to its content at windowWidth. Wrapped labels only know
// their height once they know their width, hence the layout pass first.
func fit(w fyne.Window) {
	c := w.Content()
	inner := windowWidth - 2*theme.Padding()
	c.Resize(fyne.NewSize(inner, c.MinSize().Height))
	h := c.MinSize().Height
	w.Resize(fyne.NewSize(windowWidth, h+2*theme.Padding()))
}

// lineRow is a one-line row (icon and unwrapped text), tighter than a
// label, for checklists. Its colours are read when it is made, so lists of
// them are rebuilt rather than updated.
func lineRow(res fyne.Resource, text string) fyne.CanvasObject {
	t := canvas.NewText(text, theme.Color(theme.ColorNameForeground))
	t.TextSize = theme.TextSize()
	return container.NewHBox(widget.NewIcon(res), t)
}
