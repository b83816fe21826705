//go:build cgo || !darwin

package ui

import (
	"github.com/lockstep-dev/lockstep/ui/text"

	"fyne.io/fyne/v2"

	"github.com/lockstep-dev/lockstep/localapi"
)

// trayView is what the tray shows for one state of the world.
type trayView struct {
	icon  iconKind
	lines []string // status lines at the top of the menu
	// canChange enables Change Password…; canSync adds Sync Password…;
	// canLink adds Link to Directory…; canEnroll adds Set up your
	// authenticator…; canRecover adds Recover Old Keychain… (a recovery
	// needs no directory).
	canChange, canSync, canLink, canEnroll, canRecover bool
}

// viewOf decides the tray's icon and status lines from the last status and
// whether the watch stream is up (connected is false while lockstepd does
// not answer; st is then the last status seen, or nil).
func (a *App) viewOf(st *localapi.Status, connected bool) trayView {
	if !connected {
		if st == nil && a.watchErr == nil {
			return trayView{icon: iconBusy, lines: []string{text.LineConnecting.S()}}
		}
		return trayView{icon: iconError, lines: []string{text.LineNotRunning.S()}}
	}
	var v trayView
	dirUp := st.Directory.State == localapi.ConnConnected
	var dirLine string
	switch st.Directory.State {
	case localapi.ConnConnected:
	case localapi.ConnNotEnrolled:
		dirLine = text.LineNotEnrolled.S()
	case localapi.ConnConnecting:
		dirLine = text.LineConnectingDir.S()
	default:
		dirLine = text.LineOffline.S(map[string]any{"Since": text.Clock(st.Directory.Since)})
	}
	acct := firstAccount(st)
	if acct == nil {
		v.icon = iconError
		v.lines = []string{text.LineNotBound.S()}
		if dirLine != "" {
			v.lines = append(v.lines, dirLine)
		}
		return v
	}
	v.icon = iconInSync
	v.canRecover = acct.KeptKeychains > 0 && acct.State != localapi.StateBusy
	switch acct.State {
	case localapi.StateBusy:
		v.icon = iconBusy
		v.lines = append(v.lines, text.LineBusy.S())
	case localapi.StateNotLinked:
		v.icon = iconAttention
		v.canLink = true
		v.lines = append(v.lines, text.LineNotBound.S())
	case localapi.StateLocked:
		v.icon = iconAttention
		if acct.LockedUntil != nil {
			v.lines = append(v.lines, text.LineLocked.S(map[string]any{"Until": text.Clock(*acct.LockedUntil)}))
		} else {
			v.lines = append(v.lines, text.LineLockedPlain.S())
		}
	case localapi.StateSyncNeeded:
		v.icon = iconAttention
		v.canSync = true
		if short := text.ShortReason(acct.Reason); short != "" {
			v.lines = append(v.lines, text.LineSyncNeeded.S(map[string]any{"Reason": short}))
		} else {
			v.lines = append(v.lines, text.LineSyncNeededPlain.S())
		}
	case localapi.StateTemporary:
		v.icon = iconAttention
		v.canChange = true
		v.lines = append(v.lines, text.LineTemporary.S())
	case localapi.StateMFAEnroll:
		v.icon = iconAttention
		v.canChange = true
		v.lines = append(v.lines, text.LineEnroll.S(map[string]any{"Until": text.Clock(*acct.MFAEnrollBy)}))
	case localapi.StateExpiring:
		v.icon = iconAttention
		v.canChange = true
		v.lines = append(v.lines, expiryLine(acct))
	case localapi.StateInSync:
		v.canChange = true
		if acct.DaysLeft != nil && *acct.DaysLeft <= 0 {
			v.lines = append(v.lines, expiryLine(acct))
		} else {
			v.lines = append(v.lines, text.LineInSync.S())
		}
	default:
		v.lines = append(v.lines, text.LineUnknown.S())
	}
	if dirLine != "" {
		v.lines = append(v.lines, dirLine)
		if !acct.Attention() {
			v.icon = iconOffline
		}
		if st.Directory.State == localapi.ConnNotEnrolled {
			v.icon = iconError
		}
	}
	v.canEnroll = acct.MustEnrol() && acct.State != localapi.StateBusy
	// Changing, syncing and enrolling all need the directory.
	v.canEnroll = v.canEnroll && dirUp
	v.canChange = v.canChange && dirUp
	v.canSync = v.canSync && dirUp
	v.canLink = v.canLink && dirUp
	return v
}

func expiryLine(acct *localapi.Account) string {
	if acct.DaysLeft == nil {
		return text.LineInSync.S()
	}
	switch d := *acct.DaysLeft; {
	case d < 0:
		return text.LineExpired.S()
	case d == 0:
		return text.LineExpiresToday.S()
	default:
		return text.LineExpires.N(d)
	}
}

func firstAccount(st *localapi.Status) *localapi.Account {
	if st == nil || len(st.Accounts) == 0 {
		return nil
	}
	return &st.Accounts[0]
}

// menu builds the tray menu for v.
func (a *App) menu(v trayView) *fyne.Menu {
	var items []*fyne.MenuItem
	for _, l := range v.lines {
		it := fyne.NewMenuItem(l, nil)
		it.Disabled = true
		items = append(items, it)
	}
	items = append(items, fyne.NewMenuItemSeparator())
	if v.canSync {
		items = append(items, fyne.NewMenuItem(text.TraySync.S(), a.ShowSync))
	}
	if v.canLink {
		items = append(items, fyne.NewMenuItem(text.TrayLink.S(), a.ShowLink))
	}
	if v.canEnroll {
		items = append(items, fyne.NewMenuItem(text.TrayEnroll.S(), a.ShowEnroll))
	}
	if v.canRecover {
		items = append(items, fyne.NewMenuItem(text.TrayRecover.S(), a.ShowRecover))
	}
	change := fyne.NewMenuItem(text.TrayChange.S(), func() { a.ShowChange() })
	change.Disabled = !v.canChange
	items = append(items,
		change,
		fyne.NewMenuItem(text.TrayStatus.S(), a.ShowStatus),
		fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem(text.TrayAbout.S(), a.ShowAbout),
		fyne.NewMenuItemSeparator(),
	)
	quit := fyne.NewMenuItem(text.TrayQuit.S(), a.quit)
	quit.IsQuit = true
	items = append(items, quit)
	return fyne.NewMenu(text.TrayTitle.S(), items...)
}

// refreshTray shows the current state in the tray.
func (a *App) refreshTray() {
	v := a.viewOf(a.status, a.connected)
	a.view = v
	if a.o.Tray == nil {
		return
	}
	a.o.Tray.SetSystemTrayIcon(trayIcon(v.icon, a.o.TemplateIcon))
	// Always the same *fyne.Menu, updated in place: Fyne shows the menu it
	// was first given once the tray is ready, so an update that arrives
	// before then must change that menu, not replace it.
	m := a.menu(v)
	if a.trayMenu == nil {
		a.trayMenu = m
	} else {
		a.trayMenu.Label, a.trayMenu.Items = m.Label, m.Items
	}
	a.o.Tray.SetSystemTrayMenu(a.trayMenu)
}
