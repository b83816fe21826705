//go:build cgo || !darwin

package ui

import (
	"context"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// recoverWindow is the Recover Old Keychain window: the old login keychains
// a forgotten-password sync kept aside, with when each was kept; the chosen
// one's old password and the current Mac password; then the recovery's
// steps and where the keychain is. It asks lockstepd for the list when it
// opens.
type recoverWindow struct {
	opPane

	listing *message // while the list loads, or why it cannot
	choices *fyne.Container
	picks   []*check
	kept    []localapi.KeptKeychain
	chosen  string
	old     *field
	current *field
}

func newRecoverWindow(a *App) *recoverWindow {
	return &recoverWindow{opPane: opPane{a: a, kind: localapi.OpKeychainRecover}}
}

func (r *recoverWindow) open() {
	if r.w == nil {
		r.build()
	}
	fit(r.w)
	r.w.Show()
	r.w.RequestFocus()
	r.a.log.Info("window opened", "window", "recover")
}

func (r *recoverWindow) build() {
	r.buildPane(paneWords{
		title: text.RecoverTitle.S(), heading: text.RecoverHeading.S(), intro: text.RecoverIntro.S(),
		running: text.RecoverRunning.S(), save: text.BtnRecover.S(),
	}, r.submit, r.close)
	r.listing = newMessage()
	r.choices = container.NewVBox()
	r.old = newField(&r.k, text.LabelOld.S())
	r.current = newField(&r.k, text.LabelCurrentMac.S())
	for _, f := range []*field{r.old, r.current} {
		f.entry.OnChanged = func(string) {
			if f.failed {
				f.setError("")
			}
			r.validate()
		}
	}
	grid := container.New(layout.NewFormLayout(), r.old.label, r.old.cell, r.current.label, r.current.cell)
	r.form = container.NewVBox(heading(text.RecoverChoose.S()), r.listing.box, r.choices, grid)
	r.layout()
	r.statusChanged()
	r.listing.set(kindInfo, text.RecoverLoading.S())
	r.validate()
	r.load()
}

// load asks lockstepd for the kept keychains, off the UI goroutine.
func (r *recoverWindow) load() {
	user := r.a.localUser()
	go func() {
		kept, err := r.a.svc.KeptKeychains(context.Background(), user)
		r.a.do(func() { r.loaded(kept, err) })
	}()
}

func (r *recoverWindow) loaded(kept *localapi.KeptKeychains, err error) {
	if r.w == nil {
		return
	}
	r.choices.RemoveAll()
	r.picks, r.kept, r.chosen = nil, nil, ""
	switch {
	case err != nil:
		r.listing.set(kindError, text.RecoverUnavailable.S(map[string]any{"Err": text.Problem(err, text.InRecover).Text}))
	case len(kept.Keychains) == 0:
		r.listing.set(kindInfo, text.RecoverNone.S())
	default:
		r.listing.set(kindInfo, "")
		r.kept = kept.Keychains
		for i, k := range r.kept {
			c := newCheck(&r.k, text.KeptLine(k), func(on bool) { r.picked(i, on) })
			r.picks = append(r.picks, c)
			r.choices.Add(container.NewVBox(c, wrapLabel(k.Name)))
		}
		// The newest not yet recovered is the likely one.
		for i, k := range r.kept {
			if !k.Recovered {
				r.picks[i].SetChecked(true)
				break
			}
		}
		if r.chosen == "" {
			r.picks[0].SetChecked(true)
		}
	}
	r.validate()
	r.w.Canvas().Focus(r.old.entry)
	fit(r.w)
}

// picked keeps one keychain chosen: the boxes work as one choice.
func (r *recoverWindow) picked(i int, on bool) {
	if !on {
		if r.chosen == r.kept[i].Name {
			r.chosen = ""
		}
		r.validate()
		return
	}
	r.chosen = r.kept[i].Name
	for j, c := range r.picks {
		if j != i && c.Checked {
			c.SetChecked(false)
		}
	}
	r.validate()
}

func (r *recoverWindow) statusChanged() {
	if r.w == nil {
		return
	}
	r.account.SetText(accountLine(r.a.account()))
}

func (r *recoverWindow) valid() bool {
	return !r.running && !r.done && r.chosen != "" && r.old.entry.Text != "" && r.current.entry.Text != ""
}

func (r *recoverWindow) validate() {
	if r.w == nil {
		return
	}
	if r.valid() {
		r.save.Enable()
	} else {
		r.save.Disable()
	}
	if !r.running && !r.done {
		fit(r.w)
	}
}

func (r *recoverWindow) submit() {
	if r.done {
		r.close()
		return
	}
	if !r.valid() {
		return
	}
	req := localapi.RecoverRequest{User: r.a.localUser(), Name: r.chosen,
		Old: protocol.Secret(r.old.entry.Text), Current: protocol.Secret(r.current.entry.Text)}
	r.wipe()
	r.old.setError("")
	r.current.setError("")
	r.run(func(progress func(localapi.Step)) (*localapi.Operation, error) {
		defer req.Old.Wipe()
		defer req.Current.Wipe()
		return r.a.svc.RecoverKeychain(context.Background(), req, progress)
	}, r.finish)
}

func (r *recoverWindow) finish(op *localapi.Operation, err error) {
	if r.w == nil {
		return
	}
	r.running = false
	if err == nil && op != nil && op.State == localapi.OpDone {
		r.succeeded(op, text.RecoverDone.S(), text.RecoverDoneIntro.S())
		return
	}
	p := explain(op, err, text.InRecover, nil)
	r.failed(err)
	focus := r.old.entry
	switch p.field {
	case localapi.FieldOld:
		r.old.setError(p.text)
	case localapi.FieldCurrent:
		r.current.setError(p.text)
		focus = r.current.entry
	default:
		r.banner.set(kindError, p.text)
	}
	r.validate()
	r.w.Canvas().Focus(focus)
	fit(r.w)
}

func (r *recoverWindow) wipe() {
	r.old.entry.wipe()
	r.current.entry.wipe()
}

func (r *recoverWindow) close() {
	if r.w == nil || r.running {
		return
	}
	r.wipe()
	w := r.w
	r.w = nil
	w.Close()
	r.a.log.Info("window closed", "window", "recover")
}
