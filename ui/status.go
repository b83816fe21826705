//go:build cgo || !darwin

package ui

import (
	"context"
	"github.com/lockstep-dev/lockstep/ui/text"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"github.com/lockstep-dev/lockstep/localapi"
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
	label := func(m msg) *widget.Label {
		l := widget.NewLabel(m.S())
		l.TextStyle = fyne.TextStyle{Bold: true}
		return l
	}
	grid := container.New(layout.NewFormLayout(),
		label(statusService), s.service,
		label(statusDirectory), s.dir,
		label(statusAccount), s.account,
		label(statusPassword), s.state,
		label(statusExpires), s.expires,
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
		label(statusPlaces), s.places,
		widget.NewSeparator(),
		label(statusLastOp), s.lastOp, s.steps,
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

func placeName(name string) string {
	switch name {
	case localapi.PlaceDirectory:
		return text.PlaceDirectory.S()
	case localapi.PlaceLocal:
		return text.PlaceLocal.S()
	case localapi.PlaceFileVault:
		return text.PlaceFileVault.S()
	case localapi.PlaceKeychain:
		return text.PlaceKeychain.S()
	}
	return name
}

func placeState(state string) (fyne.Resource, string) {
	switch state {
	case localapi.PlaceOK:
		return resMet(), text.PlaceOK.S()
	case localapi.PlaceBehind:
		return resWarning(), text.PlaceBehind.S()
	case localapi.PlaceNotApplicable:
		return resSkipped(), text.PlaceNA.S()
	}
	return resUnmet(), text.PlaceUnknown.S()
}

func accountState(acct *localapi.Account) string {
	var s string
	switch acct.State {
	case localapi.StateBusy:
		s = text.StateBusy.S()
	case localapi.StateNotLinked:
		s = text.StateNotLinked.S()
	case localapi.StateLocked:
		s = text.StateLocked.S()
	case localapi.StateSyncNeeded:
		s = text.StateSyncNeeded.S()
	case localapi.StateTemporary:
		s = text.StateTemporary.S()
	case localapi.StateExpiring:
		s = text.StateExpiring.S()
	case localapi.StateInSync:
		s = text.StateInSync.S()
	default:
		s = text.StateUnknown.S()
	}
	if acct.Reason != "" {
		s += ". " + acct.Reason
	}
	return s
}

func opKind(kind string) string {
	switch kind {
	case localapi.OpChange:
		return text.OpChange.S()
	case localapi.OpSync:
		return text.OpSync.S()
	case localapi.OpSyncForgot:
		return text.OpSyncForgot.S()
	}
	return kind
}

func opState(state string) string {
	switch state {
	case localapi.OpRunning:
		return text.OpRunning.S()
	case localapi.OpDone:
		return text.OpDone.S()
	case localapi.OpFailed:
		return text.OpFailed.S()
	case localapi.OpSyncNeeded:
		return text.OpSyncNeeded.S()
	}
	return state
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
	since := map[string]any{"Since": a.clock(st.Directory.Since), "Err": st.Directory.LastError}
	switch st.Directory.State {
	case localapi.ConnConnected:
		s.dir.SetText(text.StatusConnected.S(since))
	case localapi.ConnConnecting:
		s.dir.SetText(text.StatusConnecting.S())
	case localapi.ConnNotEnrolled:
		s.dir.SetText(text.StatusNotEnrolled.S())
	default:
		if st.Directory.LastError != "" {
			s.dir.SetText(text.StatusOfflineErr.S(since))
		} else {
			s.dir.SetText(text.StatusOffline.S(since))
		}
	}
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
		s.expires.SetText(text.StatusExpiredOn.S(map[string]any{"Date": a.day(*acct.ExpiresAt)}))
	case acct.DaysLeft != nil:
		s.expires.SetText(text.StatusExpiresIn.N(*acct.DaysLeft, map[string]any{"Date": a.day(*acct.ExpiresAt)}))
	default:
		s.expires.SetText(a.day(*acct.ExpiresAt))
	}
	for _, p := range acct.Places {
		res, state := placeState(p.State)
		text := placeName(p.Name) + ": " + state
		if p.ChangedAt != nil && p.State != localapi.PlaceNotApplicable {
			text += ". " + text.StatusLastChange.S(map[string]any{"At": a.clock(*p.ChangedAt)})
		}
		if p.Detail != "" {
			text += " (" + p.Detail + ")"
		}
		s.places.Add(lineRow(res, text))
	}
	if op := acct.LastOperation; op != nil {
		s.lastOp.SetText(text.StatusOpLine.S(map[string]any{
			"Kind": opKind(op.Kind), "At": a.clock(op.StartedAt), "State": opState(op.State),
		}))
		for _, st := range op.Steps {
			s.steps.Add(lineRow(stepText(st, op.Kind)))
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
