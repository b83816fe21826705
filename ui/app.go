//go:build cgo || !darwin

package ui

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"fyne.io/fyne/v2"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui/text"
	"github.com/lockstep-dev/lockstep/version"
)

// Options configure an App. The zero value is usable.
type Options struct {
	// Tray shows the icon and menu; nil runs without a tray (window tests).
	Tray Tray
	// TemplateIcon makes tray icons single-colour template images, as the
	// macOS menu bar wants.
	TemplateIcon bool
	// Do runs fn on Fyne's UI goroutine; default fyne.Do. Tests queue.
	Do func(fn func())
	// Now and Location are the clock and time zone for what is shown.
	Now      func() time.Time
	Location *time.Location
	// RetryMin and RetryMax bound the wait before reconnecting the watch
	// stream (defaults 500ms and 30s; jittered).
	RetryMin, RetryMax time.Duration
	// Quit is called by the menu's Quit item; default fyne.App.Quit.
	Quit func()
	Log  *slog.Logger
	// Languages are the user's, best first (default text.Preferred()).
	Languages []string
}

// App is the menu-bar app: the tray, the windows and the notifications,
// all fed by lockstepd's watch stream.
type App struct {
	fa  fyne.App
	svc Service
	o   Options
	do  func(func())
	now func() time.Time
	loc *time.Location
	log *slog.Logger

	// Touched only on the UI goroutine.
	status    *localapi.Status
	connected bool
	watchErr  error
	view      trayView
	trayMenu  *fyne.Menu
	notes     notifier
	change    *changeWindow
	syncW     *syncWindow
	linkW     *linkWindow
	enrollW   *enrollWindow
	recoverW  *recoverWindow
	statusW   *statusWindow
	about     *aboutWindow
}

// New returns the app for fa, talking to svc. Call Run to start following
// lockstepd, and fa.Run to show it.
func New(fa fyne.App, svc Service, o Options) *App {
	a := &App{fa: fa, svc: svc, o: o, do: o.Do, now: o.Now, loc: o.Location, log: o.Log}
	if a.do == nil {
		a.do = fyne.Do
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.loc == nil {
		a.loc = time.Local
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.o.RetryMin <= 0 {
		a.o.RetryMin = 500 * time.Millisecond
	}
	if a.o.Languages == nil {
		a.o.Languages = text.Preferred()
	}
	o.Languages = a.o.Languages
	if a.o.RetryMax <= 0 {
		a.o.RetryMax = 30 * time.Second
	}
	text.Use(text.Settings{Languages: o.Languages, Zone: a.loc, Now: a.now})
	fa.Settings().AddListener(func(fyne.Settings) { a.do(a.themeChanged) })
	a.notes = notifier{send: fa.SendNotification, seen: map[string]bool{}}
	return a
}

// Start shows the tray in its "connecting" state. Call it on the UI
// goroutine before fyne.App.Run (Fyne needs the tray menu set first).
func (a *App) Start() {
	a.refreshTray()
}

// Run follows lockstepd's watch stream until ctx ends, reconnecting with
// backoff when lockstepd restarts or is not running yet. Call it on its own
// goroutine.
func (a *App) Run(ctx context.Context) {
	wait := a.o.RetryMin
	for ctx.Err() == nil {
		got := false
		err := a.svc.Watch(ctx, func(ev localapi.Event) error {
			got = true
			a.do(func() { a.handle(ev) })
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		if got {
			wait = a.o.RetryMin
		}
		a.log.Info("watch stream ended", "err", err, "retry_in", wait)
		a.do(func() { a.disconnected(err) })
		t := time.NewTimer(wait/2 + rand.N(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(wait*2, a.o.RetryMax)
	}
}

func (a *App) disconnected(err error) {
	if err == nil {
		err = errors.New("watch stream ended")
	}
	a.connected = false
	a.watchErr = err
	a.refreshTray()
	a.refreshWindows()
}

// handle applies one event from the watch stream.
func (a *App) handle(ev localapi.Event) {
	switch ev.Type {
	case localapi.EventStatus:
		if ev.Status == nil {
			return
		}
		a.status = ev.Status
		if !a.connected {
			a.log.Info("following lockstepd", "version", ev.Status.Version)
		}
		a.connected = true
		a.watchErr = nil
		a.refreshTray()
		a.refreshWindows()
	case localapi.EventNotice:
		if ev.Notice != nil {
			a.notes.show(*ev.Notice)
		}
	}
}

// setStatus applies a status fetched with Status (the Refresh button).
func (a *App) setStatus(st *localapi.Status) {
	a.handle(localapi.Event{Type: localapi.EventStatus, Status: st})
}

func (a *App) refreshWindows() {
	if a.statusW != nil {
		a.statusW.refresh()
	}
	if a.change != nil {
		a.change.statusChanged()
	}
	if a.syncW != nil {
		a.syncW.statusChanged()
	}
	if a.linkW != nil {
		a.linkW.statusChanged()
	}
	if a.enrollW != nil {
		a.enrollW.statusChanged()
	}
	if a.recoverW != nil {
		a.recoverW.statusChanged()
	}
	if a.about != nil {
		a.about.refresh()
	}
}

// themeChanged redraws what does not follow the theme by itself (the
// system switched between light and dark).
func (a *App) themeChanged() {
	if c := a.change; c != nil && c.w != nil {
		c.banner.recolor()
		c.validate()
	}
	if s := a.syncW; s != nil && s.w != nil {
		s.banner.recolor()
	}
	if l := a.linkW; l != nil && l.w != nil {
		l.banner.recolor()
	}
	if e := a.enrollW; e != nil && e.w != nil {
		e.banner.recolor()
	}
	if r := a.recoverW; r != nil && r.w != nil {
		r.banner.recolor()
	}
	if s := a.statusW; s != nil && s.w != nil {
		s.banner.recolor()
		s.refresh()
	}
}

func (a *App) account() *localapi.Account { return firstAccount(a.status) }

// localUser names the account the app shows. Requests carry it: lockstepd
// lets a user name only their own account, and an app run as root (a demo
// on Linux) must name the account it acts on.
func (a *App) localUser() string {
	if acct := a.account(); acct != nil {
		return acct.LocalUser
	}
	return ""
}

func (a *App) quit() {
	if a.o.Quit != nil {
		a.o.Quit()
		return
	}
	a.fa.Quit()
}

// ShowChange opens the Change Password window, or brings it forward.
func (a *App) ShowChange() { a.showChange(nil) }

// showChange opens the change window; temporary, when set, is the
// temporary password just synced, filled in as the current password. It
// is wiped here once the window has it.
func (a *App) showChange(temporary []byte) {
	if a.change == nil {
		a.change = newChangeWindow(a)
	}
	a.change.open(temporary)
	clear(temporary)
}

// ShowSync opens the Sync Password window.
func (a *App) ShowSync() {
	if a.syncW == nil {
		a.syncW = newSyncWindow(a)
	}
	a.syncW.open()
}

// ShowLink opens the Link to Directory window.
func (a *App) ShowLink() {
	if a.linkW == nil {
		a.linkW = newLinkWindow(a)
	}
	a.linkW.open()
}

// ShowEnroll opens the Set Up Authenticator window.
func (a *App) ShowEnroll() { a.showEnroll(false) }

// showEnroll opens it; afterChange says it follows a change of password
// made during the enrolment period.
func (a *App) showEnroll(afterChange bool) {
	if a.enrollW == nil {
		a.enrollW = newEnrollWindow(a)
	}
	a.enrollW.open(afterChange)
}

// ShowRecover opens the Recover Old Keychain window.
func (a *App) ShowRecover() {
	if a.recoverW == nil {
		a.recoverW = newRecoverWindow(a)
	}
	a.recoverW.open()
}

// ShowStatus opens the Status window.
func (a *App) ShowStatus() {
	if a.statusW == nil {
		a.statusW = newStatusWindow(a)
	}
	a.statusW.open()
}

// ShowAbout opens the About window.
func (a *App) ShowAbout() {
	if a.about == nil {
		a.about = newAboutWindow(a)
	}
	a.about.open()
}

// appVersion is the app's own version.
func appVersion() string { return version.Version }

// notifier shows each notice once: lockstepd tells a new watcher the
// notices that still stand (a reset not synced yet, a lock), so a reconnect
// repeats them, with the same ID.
type notifier struct {
	send func(*fyne.Notification)
	seen map[string]bool
}

func (n *notifier) show(nt localapi.Notice) {
	key := nt.LocalUser + "\x00" + nt.ID
	if nt.ID == "" || n.seen[key] {
		return
	}
	n.seen[key] = true
	title, body := text.Notice(nt)
	n.send(fyne.NewNotification(title, body))
}
