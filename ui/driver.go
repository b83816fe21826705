//go:build cgo || !darwin

package ui

import (
	"errors"
	"fmt"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/widget"

	"github.com/lockstep-dev/lockstep/localapi"
)

// Queue runs the app's UI work on the goroutine of whoever calls RunUntil.
// Headless end-to-end tests pass Queue.Do as Options.Do, so that the app
// and the test never touch widgets at the same time.
type Queue struct{ ch chan func() }

// NewQueue returns an empty queue.
func NewQueue() *Queue { return &Queue{ch: make(chan func(), 4096)} }

// Do queues fn; it is Options.Do.
func (q *Queue) Do(fn func()) { q.ch <- fn }

// RunUntil runs queued work until cond holds, or fails after timeout (a
// guard against a hung test, not a measurement).
func (q *Queue) RunUntil(cond func() bool, timeout time.Duration) error {
	deadline := time.After(timeout)
	for !cond() {
		select {
		case fn := <-q.ch:
			fn()
		case <-deadline:
			return errors.New("timed out")
		}
	}
	return nil
}

// Window names for Driver.
const (
	WindowChange = "change"
	WindowSync   = "sync"
	WindowStatus = "status"
	WindowAbout  = "about"
	WindowLink   = "link"
	WindowEnroll = "enroll"
)

// Driver works the app the way a user does: it clicks tray items, types
// into boxes, presses keys and reads what the windows show. It is for
// end-to-end tests against a real lockstepd, on the UI goroutine (with
// fyne.io/fyne/v2/test and a Queue).
type Driver struct{ a *App }

// Driver returns a driver for a.
func (a *App) Driver() *Driver { return &Driver{a: a} }

// Connected reports whether the app follows lockstepd's watch stream.
func (d *Driver) Connected() bool { return d.a.connected }

// Status is the last status the app received.
func (d *Driver) Status() *localapi.Status { return d.a.status }

// Menu lists the tray menu's labels, "-" for separators, disabled items
// with " (disabled)" after them.
func (d *Driver) Menu() []string {
	var out []string
	if d.a.trayMenu == nil {
		return nil
	}
	for _, it := range d.a.trayMenu.Items {
		switch {
		case it.IsSeparator:
			out = append(out, "-")
		case it.Disabled:
			out = append(out, it.Label+" (disabled)")
		default:
			out = append(out, it.Label)
		}
	}
	return out
}

// Click chooses the enabled tray item labelled label.
func (d *Driver) Click(label string) error {
	if d.a.trayMenu != nil {
		for _, it := range d.a.trayMenu.Items {
			if it.Label == label && !it.Disabled && it.Action != nil {
				it.Action()
				return nil
			}
		}
	}
	return fmt.Errorf("no enabled menu item %q in %q", label, d.Menu())
}

// Box names for Type and WindowView.Errors: the local API's field names.
const (
	BoxCurrent  = localapi.FieldCurrent
	BoxNew      = localapi.FieldNew
	BoxConfirm  = "confirm"
	BoxCode     = localapi.FieldTOTP
	BoxPrevious = localapi.FieldPrevious
	BoxPassword = localapi.FieldPassword
)

func (d *Driver) field(window, box string) (*field, fyne.Window, error) {
	switch window {
	case WindowChange:
		if c := d.a.change; c != nil && c.w != nil {
			switch box {
			case BoxCurrent:
				return c.current, c.w, nil
			case BoxNew:
				return c.newPw, c.w, nil
			case BoxConfirm:
				return c.confirm, c.w, nil
			case BoxCode:
				return c.code, c.w, nil
			}
		}
	case WindowSync:
		if s := d.a.syncW; s != nil && s.w != nil {
			switch box {
			case BoxPrevious:
				return s.previous, s.w, nil
			case BoxNew:
				return s.newPw, s.w, nil
			}
		}
	case WindowLink:
		if l := d.a.linkW; l != nil && l.w != nil && box == BoxPassword {
			return l.password, l.w, nil
		}
	case WindowEnroll:
		if e := d.a.enrollW; e != nil && e.w != nil && box == BoxCode {
			return e.code, e.w, nil
		}
	}
	return nil, nil, fmt.Errorf("no box %q in an open %s window", box, window)
}

// Type focuses a box and types text into it, a key at a time.
func (d *Driver) Type(window, box, text string) error {
	f, w, err := d.field(window, box)
	if err != nil {
		return err
	}
	if f.entry.Disabled() {
		return fmt.Errorf("box %q is disabled", box)
	}
	w.Canvas().Focus(f.entry)
	for _, r := range text {
		f.entry.TypedRune(r)
	}
	return nil
}

func (d *Driver) window(name string) fyne.Window {
	switch name {
	case WindowChange:
		if d.a.change != nil {
			return d.a.change.w
		}
	case WindowSync:
		if d.a.syncW != nil {
			return d.a.syncW.w
		}
	case WindowStatus:
		if d.a.statusW != nil {
			return d.a.statusW.w
		}
	case WindowAbout:
		if d.a.about != nil {
			return d.a.about.w
		}
	case WindowLink:
		if d.a.linkW != nil {
			return d.a.linkW.w
		}
	case WindowEnroll:
		if d.a.enrollW != nil {
			return d.a.enrollW.w
		}
	}
	return nil
}

// Window returns the named window while it is open (for screenshots).
func (d *Driver) Window(name string) (fyne.Window, bool) {
	w := d.window(name)
	return w, w != nil
}

// Press sends a key to the window: to its focused widget, as the driver
// does, or to the window itself.
func (d *Driver) Press(window string, key fyne.KeyName) error {
	w := d.window(window)
	if w == nil {
		return fmt.Errorf("%s window not open", window)
	}
	ev := &fyne.KeyEvent{Name: key}
	if f := w.Canvas().Focused(); f != nil {
		f.TypedKey(ev)
	} else if fn := w.Canvas().OnTypedKey(); fn != nil {
		fn(ev)
	}
	return nil
}

// SetForgot ticks or clears "I don't remember my previous password".
func (d *Driver) SetForgot(on bool) error {
	s := d.a.syncW
	if s == nil || s.w == nil {
		return errors.New("sync window not open")
	}
	if s.forgot.Disabled() {
		return errors.New("the box is disabled: no usable service account")
	}
	s.forgot.SetChecked(on)
	return nil
}

// WindowView is what a Change, Sync or Link window shows.
type WindowView struct {
	Open    bool
	Running bool // lockstepd is working; the steps are shown
	Done    bool // the success screen is shown
	// CanSubmit is whether the default button is enabled.
	CanSubmit bool
	// Errors maps a box to the error shown under it.
	Errors map[string]string
	// Banner is the message about the whole window, if any.
	Banner string
	// Checklist is the Change window's rules, "state: rule" (met, unmet,
	// later, refused).
	Checklist []string
	// Steps are the progress lines; Result the success screen's lines.
	Steps  []string
	Result []string
	// Key is the key the Set Up Authenticator window shows as text (what a
	// person types into an authenticator app); QR its QR code (PNG); Until
	// the line that says when the period ends.
	Key   string
	QR    []byte
	Until string
}

// View reads the Change, Sync or Link window.
func (d *Driver) View(window string) WindowView {
	v := WindowView{Errors: map[string]string{}}
	shown := func(m *message) string {
		if m.box.Visible() {
			return m.text.Text
		}
		return ""
	}
	boxes := func(fs map[string]*field) {
		for name, f := range fs {
			if f.failed {
				v.Errors[name] = shown(f.msg)
			}
		}
	}
	switch window {
	case WindowChange:
		c := d.a.change
		if c == nil || c.w == nil {
			return v
		}
		v.Open, v.Running, v.Done, v.CanSubmit = true, c.running, c.done, !c.save.Disabled()
		boxes(map[string]*field{BoxCurrent: c.current, BoxNew: c.newPw, BoxCode: c.code})
		v.Banner = shown(c.banner.message)
		v.Checklist = append([]string(nil), c.checklist...)
		v.Steps = lines(c.steps)
		v.Result = labelsOf(c.result)
	case WindowSync:
		s := d.a.syncW
		if s == nil || s.w == nil {
			return v
		}
		v.Open, v.Running, v.Done, v.CanSubmit = true, s.running, s.done, !s.save.Disabled()
		boxes(map[string]*field{BoxPrevious: s.previous, BoxNew: s.newPw})
		v.Banner = shown(s.banner.message)
		v.Steps = lines(s.steps)
		v.Result = labelsOf(s.result)
	case WindowLink:
		l := d.a.linkW
		if l == nil || l.w == nil {
			return v
		}
		v.Open, v.Running, v.Done, v.CanSubmit = true, l.running, l.done, !l.save.Disabled()
		boxes(map[string]*field{BoxPassword: l.password})
		v.Banner = shown(l.banner.message)
		v.Result = labelsOf(l.result)
	case WindowEnroll:
		e := d.a.enrollW
		if e == nil || e.w == nil {
			return v
		}
		v.Open, v.Running, v.Done, v.CanSubmit = true, e.starting || e.running, e.done, !e.save.Disabled()
		boxes(map[string]*field{BoxCode: e.code})
		v.Banner = shown(e.banner.message)
		v.Result = labelsOf(e.result)
		if e.key.Visible() {
			v.Key, v.Until = e.keyText.Text, e.by.Text
			if e.qr.Resource != nil {
				v.QR = e.qr.Resource.Content()
			}
		}
	}
	return v
}

func lines(l *stepList) []string {
	var out []string
	for _, o := range l.box.Objects {
		for _, r := range l.rows {
			if r.box == o {
				out = append(out, r.text.Text)
			}
		}
	}
	return out
}

// labelsOf lists the words shown in o: every visible label and text in it,
// in order.
func labelsOf(o fyne.CanvasObject) []string {
	var out []string
	switch v := o.(type) {
	case *fyne.Container:
		if !v.Visible() {
			return nil
		}
		for _, c := range v.Objects {
			out = append(out, labelsOf(c)...)
		}
	case *widget.Label:
		if v.Visible() {
			out = append(out, v.Text)
		}
	case *canvas.Text:
		if v.Visible() {
			out = append(out, v.Text)
		}
	}
	return out
}
