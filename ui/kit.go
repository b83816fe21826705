//go:build cgo || !darwin

package ui

import (
	"strings"

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

// fit sizes w to its content at windowWidth. Wrapped texts only know
// their height once they know their width, hence layout passes until the
// height holds (a row that wraps grows the rows around it). Each pass lays
// every container out again, even one whose size did not change, since a
// child's height may have.
func fit(w fyne.Window) {
	c := w.Content()
	inner := windowWidth - 2*theme.Padding()
	h := c.MinSize().Height
	for range 4 {
		c.Resize(fyne.NewSize(inner, h))
		relayout(c)
		next := c.MinSize().Height
		if next == h {
			break
		}
		h = next
	}
	w.Resize(fyne.NewSize(windowWidth, h+2*theme.Padding()))
	relayout(c)
}

// relayout lays out o's containers, outermost first.
func relayout(o fyne.CanvasObject) {
	if c, ok := o.(*fyne.Container); ok {
		if c.Layout != nil {
			c.Layout.Layout(c.Objects, c.Size())
		}
		for _, child := range c.Objects {
			relayout(child)
		}
	}
}

// lineRow is a checklist row: an icon and a text, tighter than a label.
// The text wraps at word boundaries when the row is too narrow for it (a
// translated rule can be longer than the English one). Its colours are read
// when it is made, so lists of them are rebuilt rather than updated.
func lineRow(res fyne.Resource, text string) fyne.CanvasObject {
	return container.NewBorder(nil, nil, widget.NewIcon(res), nil, newLineText(text))
}

// lineText is unpadded text that breaks its words into as many lines as
// its width needs, each line a canvas.Text.
type lineText struct {
	widget.BaseWidget
	Text  string
	color fyne.ThemeColorName
	size  float32
}

func newLineText(s string) *lineText {
	t := &lineText{Text: s, color: theme.ColorNameForeground, size: theme.TextSize()}
	t.ExtendBaseWidget(t)
	return t
}

// lines breaks the text into lines no wider than width (a word wider than
// that gets a line of its own).
func (t *lineText) lines(width float32) []string {
	words := strings.Fields(t.Text)
	if width <= 0 || len(words) == 0 {
		return []string{t.Text}
	}
	var out []string
	line := words[0]
	for _, w := range words[1:] {
		if next := line + " " + w; fyne.MeasureText(next, t.size, fyne.TextStyle{}).Width <= width {
			line = next
			continue
		}
		out = append(out, line)
		line = w
	}
	return append(out, line)
}

// Resize lays the text out again at a new width: its height, the number
// of lines, depends on it (Fyne caches a widget's MinSize until Refresh).
func (t *lineText) Resize(s fyne.Size) {
	old := t.Size()
	t.BaseWidget.Resize(s)
	if old.Width != s.Width {
		t.Refresh()
	}
}

// CreateRenderer implements fyne.Widget.
func (t *lineText) CreateRenderer() fyne.WidgetRenderer {
	return &lineTextRenderer{t: t}
}

type lineTextRenderer struct {
	t     *lineText
	texts []fyne.CanvasObject
	width float32
}

func (r *lineTextRenderer) build(width float32) {
	r.width = width
	r.texts = r.texts[:0]
	for _, l := range r.t.lines(width) {
		c := canvas.NewText(l, theme.Color(r.t.color))
		c.TextSize = r.t.size
		r.texts = append(r.texts, c)
	}
}

func (r *lineTextRenderer) Layout(size fyne.Size) {
	r.build(size.Width)
	y := float32(0)
	for _, o := range r.texts {
		h := o.MinSize().Height
		o.Move(fyne.NewPos(0, y))
		o.Resize(fyne.NewSize(size.Width, h))
		y += h
	}
}

// MinSize is one line when the text has not been laid out yet, else as many
// lines as its width takes; never wider than its widest word.
func (r *lineTextRenderer) MinSize() fyne.Size {
	width := r.t.Size().Width
	if width <= 0 {
		width = fyne.MeasureText(r.t.Text, r.t.size, fyne.TextStyle{}).Width
	}
	var w, h float32
	for _, l := range r.t.lines(width) {
		h += fyne.MeasureText(l, r.t.size, fyne.TextStyle{}).Height
	}
	for _, word := range strings.Fields(r.t.Text) {
		w = max(w, fyne.MeasureText(word, r.t.size, fyne.TextStyle{}).Width)
	}
	return fyne.NewSize(w, h)
}

func (r *lineTextRenderer) Refresh() {
	r.build(r.t.Size().Width)
	r.Layout(r.t.Size())
	for _, o := range r.texts {
		o.Refresh()
	}
}

func (r *lineTextRenderer) Objects() []fyne.CanvasObject {
	if r.texts == nil {
		r.build(r.t.Size().Width)
	}
	return r.texts
}

func (r *lineTextRenderer) Destroy() {}
