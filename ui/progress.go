//go:build cgo || !darwin

package ui

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/ui/text"
)

func stepState(st localapi.Step) (fyne.Resource, string) {
	res := resUnmet()
	switch st.State {
	case localapi.StepRunning:
		res = resRunning()
	case localapi.StepDone:
		res = resMet()
	case localapi.StepSkipped:
		res = resSkipped()
	case localapi.StepFailed:
		res = resFailed()
	}
	return res, text.StepState(st.State)
}

func stepText(st localapi.Step, kind string) (fyne.Resource, string) {
	res, state := stepState(st)
	detail := ""
	if st.Text.Code != "" {
		detail = text.Render(st.Text)
	}
	data := map[string]any{"Step": text.StepName(st.Name, kind), "State": state, "Detail": detail}
	if detail != "" && st.State != localapi.StepRunning {
		return res, text.StepLineNote.S(data)
	}
	return res, text.StepLine.S(data)
}

// stepList shows an operation's steps as they progress, in the order they
// first appear.
type stepList struct {
	kind string
	box  *fyne.Container
	rows map[string]*row
}

func newStepList(kind string) *stepList {
	return &stepList{kind: kind, box: container.NewVBox(), rows: map[string]*row{}}
}

func (l *stepList) reset() {
	l.box.RemoveAll()
	l.rows = map[string]*row{}
}

func (l *stepList) update(st localapi.Step) {
	res, text := stepText(st, l.kind)
	if r, ok := l.rows[st.Name]; ok {
		r.set(res, text)
		return
	}
	r := newRow(res, text)
	l.rows[st.Name] = r
	l.box.Add(r.box)
}

// updatedPlaces lists what an operation changed, for the success screen:
// the places, with skipped ones and why.
func updatedPlaces(op *localapi.Operation) *fyne.Container {
	box := container.NewVBox()
	for _, st := range op.Steps {
		switch st.Name {
		case localapi.StepDirectory, localapi.StepLocal, localapi.StepKeychain, localapi.StepFileVault,
			localapi.StepKeptRekey, localapi.StepSearchList:
		default:
			continue
		}
		switch st.State {
		case localapi.StepDone:
			box.Add(newRow(resMet(), text.StepName(st.Name, op.Kind)).box)
		case localapi.StepSkipped:
			_, text := stepText(st, op.Kind)
			box.Add(newRow(resSkipped(), text).box)
		}
	}
	for _, n := range op.Notes {
		m := newMessage()
		m.set(kindInfo, text.Render(n))
		box.Add(m.box)
	}
	return box
}

// explain says what went wrong in the words the catalogue gives it, with
// the unmet rules (said with the policy's numbers, when the window has
// it) and what to do next under the sentence.
func explain(op *localapi.Operation, err error, in string, pol *localapi.PolicyResponse) problem {
	t := text.Failed(op, err, in)
	var p protocol.Policy
	if pol != nil {
		p = pol.Policy
	}
	return problem{field: t.Field, text: strings.Join(t.Lines(p), "\n"), violations: t.Violations}
}

// problem is a failure as a window shows it: the box it belongs to ("" for
// the whole window), its lines, and the rules the directory refused.
type problem struct {
	field      string
	text       string
	violations []protocol.Violation
}

// accountLine names the account a window acts on.
func accountLine(acct *localapi.Account) string {
	if acct == nil {
		return ""
	}
	name := acct.DisplayName
	if name == "" {
		name = acct.LocalUser
	}
	return text.ForAccount.S(map[string]any{"Name": name, "User": acct.DirectoryUser})
}

// newWindowContent lays out a window: everything stacked, buttons last.
func newWindowContent(parts ...fyne.CanvasObject) *fyne.Container {
	return container.NewPadded(container.NewVBox(parts...))
}

// opPane is what the Change and Sync windows share: a form that, once
// submitted, gives way to the steps as lockstepd runs them, and then to
// what was updated, or comes back with the failure in its boxes.
type opPane struct {
	a    *App
	w    fyne.Window
	k    keys
	kind string // localapi.OpChange or OpSync

	running bool
	done    bool

	heading  *widget.Label
	account  *widget.Label
	intro    *widget.Label
	banner   *banner
	form     *fyne.Container
	steps    *stepList
	stepsBox *fyne.Container
	result   *fyne.Container
	cancel   *button
	save     *button
	closeB   *button
}

// paneWords are the words a pane's parts carry.
type paneWords struct {
	title, heading, intro, running, save string
}

// buildPane makes the window and the parts both windows share; submit and
// close are the window's own.
func (p *opPane) buildPane(words paneWords, submit, close func()) {
	p.w = p.a.fa.NewWindow(words.title)
	p.w.SetFixedSize(true)
	p.k = keys{submit: submit, cancel: close}
	p.running, p.done = false, false
	p.heading = heading(words.heading)
	p.account = widget.NewLabel("")
	p.intro = wrapLabel(words.intro)
	p.banner = newBanner()
	p.steps = newStepList(p.kind)
	p.stepsBox = container.NewVBox(heading(words.running), p.steps.box)
	p.stepsBox.Hide()
	p.result = container.NewVBox()
	p.result.Hide()
	p.cancel = newButton(&p.k, text.BtnCancel.S(), close)
	p.save = newButton(&p.k, words.save, submit)
	p.save.Importance = widget.HighImportance
	p.closeB = newButton(&p.k, text.BtnDone.S(), close)
	p.closeB.Importance = widget.HighImportance
	p.closeB.Hide()
	p.w.SetCloseIntercept(func() {
		p.running = false // the operation goes on; its outcome is notified
		close()
	})
	p.w.Canvas().SetOnTypedKey(func(ev *fyne.KeyEvent) { p.k.handle(ev) })
}

// layout sets the window's content: heading and account, then above (the
// window's own notices), intro, banner, the form, steps and result, and
// the buttons.
func (p *opPane) layout(above ...fyne.CanvasObject) {
	parts := append([]fyne.CanvasObject{p.heading, p.account}, above...)
	parts = append(parts, p.intro, p.banner.card, p.form, p.stepsBox, p.result,
		widget.NewSeparator(), buttonBar(p.cancel, p.save, p.closeB))
	p.w.SetContent(newWindowContent(parts...))
}

// showForm puts the pane back to its form.
func (p *opPane) showForm() {
	p.banner.set(kindInfo, "")
	p.form.Show()
	p.intro.Show()
	p.stepsBox.Hide()
	p.result.Hide()
	p.cancel.Show()
	p.save.Show()
	p.closeB.Hide()
}

// run swaps the form for the steps and runs op off the UI goroutine;
// progress and the outcome come back on it, to step and then.
func (p *opPane) run(op func(progress func(localapi.Step)) (*localapi.Operation, error), then func(*localapi.Operation, error)) {
	p.running = true
	p.banner.set(kindInfo, "")
	p.form.Hide()
	p.intro.Hide()
	p.steps.reset()
	p.stepsBox.Show()
	p.cancel.Hide()
	p.save.Hide()
	fit(p.w)
	p.a.log.Info("operation submitted", "kind", p.kind)
	go func() {
		res, err := op(func(st localapi.Step) { p.a.do(func() { p.step(st) }) })
		p.a.do(func() { then(res, err) })
	}()
}

func (p *opPane) step(st localapi.Step) {
	if p.w == nil || !p.running {
		return
	}
	p.steps.update(st)
	fit(p.w)
}

// succeeded shows what op updated, under heading and intro.
func (p *opPane) succeeded(op *localapi.Operation, heading, intro string) {
	p.done = true
	p.heading.SetText(heading)
	p.banner.set(kindInfo, "")
	p.stepsBox.Hide()
	p.result.RemoveAll()
	p.result.Add(wrapLabel(intro))
	p.result.Add(updatedPlaces(op))
	p.result.Show()
	p.closeB.Show()
	p.w.Canvas().Focus(p.closeB)
	fit(p.w)
	p.a.log.Info("operation finished", "kind", p.kind, "op_id", op.ID)
}

// failed brings the form back; the window then puts the failure in its box.
func (p *opPane) failed(err error) {
	p.a.log.Info("operation failed", "kind", p.kind, "err", err)
	p.stepsBox.Hide()
	p.form.Show()
	p.intro.Show()
	p.cancel.Show()
	p.save.Show()
}
