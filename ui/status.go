//go:build cgo || !darwin

package ui

import (
	"context"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// statusWindow shows where the password stands: the service, the
// directory connection, the account, each place with its state and last
// change, and the last operation with its steps.
type statusWindow struct {
	a *App
	w fyne.Window
	k keys

	banner   *banner
	service  *widget.Label
	dir      *widget.Label
	account  *widget.Label
	state    *widget.Label
	expires  *widget.Label
	places   *fyne.Container
	lastOp   *widget.Label
	steps    *fyne.Container
	refreshB *button
	closeB   *button
}

func newStatusWindow(a *App) *statusWindow { return &statusWindow{a: a} }

func (s *statusWindow) open() {
	if s.w == nil {
		s.build()
	}
	s.refresh()
	s.w.Show()
	s.w.RequestFocus()
	s.a.log.Info("window opened", "window", "status")
}

func (s *statusWindow) build() {
	s.w = s.a.fa.NewWindow(text.StatusTitle.S())
	s.w.SetFixedSize(true)
	s.k = keys{submit: s.close, cancel: s.close}
	s.banner = newBanner()
	s.service = wrapLabel("")
	s.dir = wrapLabel("")
	s.account = wrapLabel("")
	s.state = wrapLabel("")
	s.expires = wrapLabel("")
	label := func(m text.Message) *widget.Label {
		l := widget.NewLabel(m.S())
		l.TextStyle = fyne.TextStyle{Bold: true}
		return l
	}
	grid := container.New(layout.NewFormLayout(),
		label(text.StatusService), s.service,
		label(text.StatusDirectory), s.dir,
		label(text.StatusAccount), s.account,
		label(text.StatusPassword), s.state,
		label(text.StatusExpires), s.expires,
	)
	s.places = container.NewVBox()
	s.lastOp = wrapLabel("")
	s.steps = container.NewVBox()
	s.refreshB = newButton(&s.k, text.BtnRefresh.S(), s.fetch)
	s.closeB = newButton(&s.k, text.BtnClose.S(), s.close)
	s.closeB.Importance = widget.HighImportance
	s.w.SetContent(newWindowContent(
		heading(text.StatusHeading.S()),
		s.banner.card,
		grid,
		widget.NewSeparator(),
		label(text.StatusPlaces), s.places,
		widget.NewSeparator(),
		label(text.StatusLastOp), s.lastOp, s.steps,
		widget.NewSeparator(),
		buttonBar(s.refreshB, s.closeB),
	))
	s.w.SetCloseIntercept(s.close)
	s.w.Canvas().SetOnTypedKey(func(ev *fyne.KeyEvent) { s.k.handle(ev) })
	s.w.Canvas().Focus(s.closeB)
}

// fetch asks lockstepd for the status now (the Refresh button).
func (s *statusWindow) fetch() {
	s.refreshB.Disable()
	go func() {
		st, err := s.a.svc.Status(context.Background())
		s.a.do(func() {
			if s.w == nil {
				return
			}
			s.refreshB.Enable()
			if err != nil {
				s.a.disconnected(err) // refreshes this window too
				return
			}
			s.a.setStatus(st)
		})
	}()
}

func placeState(state string) (fyne.Resource, string) {
	res := resUnmet()
	switch state {
	case localapi.PlaceOK:
		res = resMet()
	case localapi.PlaceBehind:
		res = resWarning()
	case localapi.PlaceNotApplicable:
		res = resSkipped()
	}
	return res, text.PlaceState(state)
}

func accountState(acct *localapi.Account) string {
	if acct.Reason.Code == "" {
		return text.AccountState(acct.State)
	}
	return text.StatusStateReason.S(map[string]any{"State": text.AccountState(acct.State), "Reason": text.Render(acct.Reason)})
}

// refresh shows the app's last status.
func (s *statusWindow) refresh() {
	if s.w == nil {
		return
	}
	a := s.a
	st := a.status
	if !a.connected {
		s.service.SetText(text.StatusNotRunning.S())
		if a.watchErr != nil {
			s.banner.set(kindWarning, text.StatusStale.S())
		}
	} else {
		s.service.SetText(text.StatusRunning.S(map[string]any{"Version": st.Version}))
		s.banner.set(kindWarning, "")
	}
	if st == nil {
		for _, l := range []*widget.Label{s.dir, s.account, s.state, s.expires} {
			l.SetText(text.StatusNoData.S())
		}
		s.places.RemoveAll()
		s.lastOp.SetText(text.StatusNoOp.S())
		s.steps.RemoveAll()
		fit(s.w)
		return
	}
	s.dir.SetText(text.Connection(st.Directory))
	acct := firstAccount(st)
	s.places.RemoveAll()
	s.steps.RemoveAll()
	if acct == nil {
		s.account.SetText("—")
		s.state.SetText(text.StatusNoAccount.S())
		s.expires.SetText("—")
		s.lastOp.SetText(text.StatusNoOp.S())
		fit(s.w)
		return
	}
	name := acct.DisplayName
	if name == "" {
		name = acct.LocalUser
	}
	s.account.SetText(text.StatusWho.S(map[string]any{"Name": name, "User": acct.DirectoryUser}))
	s.state.SetText(accountState(acct))
	switch {
	case acct.ExpiresAt == nil:
		s.expires.SetText(text.StatusNever.S())
	case acct.DaysLeft != nil && *acct.DaysLeft < 0:
		s.expires.SetText(text.StatusExpiredOn.S(map[string]any{"Date": text.Date(*acct.ExpiresAt)}))
	case acct.DaysLeft != nil:
		s.expires.SetText(text.StatusExpiresIn.N(*acct.DaysLeft, map[string]any{"Date": text.Date(*acct.ExpiresAt)}))
	default:
		s.expires.SetText(text.Date(*acct.ExpiresAt))
	}
	for _, p := range acct.Places {
		res, state := placeState(p.State)
		d := map[string]any{"Place": text.PlaceName(p.Name), "State": state}
		line := text.StatusPlace.S(d)
		if p.ChangedAt != nil && p.State != localapi.PlaceNotApplicable {
			d["At"] = text.Clock(*p.ChangedAt)
			line = text.StatusPlaceChanged.S(d)
		}
		if p.Text.Code != "" {
			line = text.StatusPlaceNote.S(map[string]any{"Line": line, "Note": text.Render(p.Text)})
		}
		s.places.Add(newRow(res, line).box) // wraps: a place's note can be long
	}
	if op := acct.LastOperation; op != nil {
		s.lastOp.SetText(text.StatusOpLine.S(map[string]any{
			"Kind": text.OpKind(op.Kind), "At": text.Clock(op.StartedAt), "State": text.OpState(op.State),
		}))
		// A finished operation's steps are the places above; one that
		// stopped lists how far each step got (the place notes say what
		// each did), so the window stays short.
		for _, st := range op.Steps {
			if op.State == localapi.OpDone {
				break
			}
			res, state := stepState(st)
			s.steps.Add(newRow(res, text.StepLine.S(map[string]any{"Step": text.StepName(st.Name, op.Kind), "State": state})).box)
		}
	} else {
		s.lastOp.SetText(text.StatusNoOp.S())
	}
	fit(s.w)
}

func (s *statusWindow) close() {
	if s.w == nil {
		return
	}
	w := s.w
	s.w = nil
	w.Close()
	s.a.log.Info("window closed", "window", "status")
}
