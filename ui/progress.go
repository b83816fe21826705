//go:build cgo || !darwin

package ui

import (
	"errors"
	"github.com/lockstep-dev/lockstep/ui/text"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
)

// stepName is a step in plain words. kind is the operation's: in a sync,
// the password checked first is the previous one.
func stepName(name, kind string) string {
	switch name {
	case localapi.StepValidate:
		return text.StepValidate.S()
	case localapi.StepVerify:
		if kind != localapi.OpChange {
			return text.StepVerifyOld.S()
		}
		return text.StepVerify.S()
	case localapi.StepDirectory:
		return text.StepDirectory.S()
	case localapi.StepLocal:
		return text.StepLocal.S()
	case localapi.StepKeychain:
		return text.StepKeychain.S()
	case localapi.StepFileVault:
		return text.StepFileVault.S()
	case localapi.StepPreboot:
		return text.StepPreboot.S()
	case localapi.StepAck:
		return text.StepAck.S()
	}
	return name
}

func stepState(st localapi.Step) (fyne.Resource, string) {
	switch st.State {
	case localapi.StepRunning:
		return resRunning(), text.StepRunning.S()
	case localapi.StepDone:
		return resMet(), text.StepDoneS.S()
	case localapi.StepSkipped:
		return resSkipped(), text.StepSkipped.S()
	case localapi.StepFailed:
		return resFailed(), text.StepFailed.S()
	}
	return resUnmet(), text.StepPending.S()
}

func stepText(st localapi.Step, kind string) (fyne.Resource, string) {
	res, state := stepState(st)
	data := map[string]any{"Step": stepName(st.Name, kind), "State": state, "Detail": st.Detail}
	if st.Detail != "" && st.State != localapi.StepRunning {
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
		case localapi.StepDirectory, localapi.StepLocal, localapi.StepKeychain, localapi.StepFileVault:
		default:
			continue
		}
		switch st.State {
		case localapi.StepDone:
			box.Add(newRow(resMet(), stepName(st.Name, op.Kind)).box)
		case localapi.StepSkipped:
			_, text := stepText(st, op.Kind)
			box.Add(newRow(resSkipped(), text).box)
		}
	}
	for _, n := range op.Notes {
		m := newMessage()
		m.set(kindInfo, n)
		box.Add(m.box)
	}
	return box
}

// problem is an error in plain words and the field it concerns ("" for
// the whole window).
type problem struct {
	field      string
	text       string
	violations []protocol.Violation
}

// explain turns what Change or Sync returned into words for the user.
// inSync says which window asks: a wrong password means a different box
// there.
func (a *App) explain(op *localapi.Operation, err error, inSync bool) problem {
	if errors.Is(err, localapi.ErrUnavailable) {
		return problem{text: text.ErrNotRunning.S()}
	}
	var e *localapi.Error
	if !errors.As(err, &e) {
		return problem{text: err.Error()}
	}
	p := problem{field: e.Field}
	if p.field == "" {
		switch e.Code {
		case protocol.CodeWrongPassword, localapi.CodeWrongLocal:
			p.field = localapi.FieldCurrent
			if inSync {
				p.field = localapi.FieldPrevious
				if e.Code == protocol.CodeWrongPassword {
					p.field = localapi.FieldNew
				}
			}
		case protocol.CodeMFARequired, protocol.CodeMFAInvalid, protocol.CodeMFAReplayed:
			p.field = localapi.FieldTOTP
		case protocol.CodePolicyViolation:
			p.field = localapi.FieldNew
		}
	}
	switch e.Code {
	case protocol.CodeWrongPassword, localapi.CodeWrongLocal:
		switch p.field {
		case localapi.FieldPassword:
			p.text = text.ErrWrongLink.S()
		case localapi.FieldPrevious:
			p.text = text.ErrWrongPrevious.S()
		case localapi.FieldNew:
			p.text = text.ErrWrongDirNew.S()
		default:
			p.text = text.ErrWrongCurrent.S()
		}
	case protocol.CodeMFARequired:
		p.text = text.ErrMFAMissing.S()
	case protocol.CodeMFAInvalid:
		p.text = text.ErrMFAInvalid.S()
	case protocol.CodeMFAReplayed:
		p.text = text.ErrMFAReplayed.S()
	case protocol.CodePolicyViolation:
		lines := []string{text.ErrPolicy.S()}
		for _, v := range e.Violations {
			lines = append(lines, "• "+v.Message)
		}
		p.text = strings.Join(lines, "\n")
		p.violations = e.Violations
	case protocol.CodeLocked:
		if e.Until != nil {
			p.text = text.ErrLocked.S(map[string]any{"Until": a.clock(*e.Until)})
		} else {
			p.text = text.ErrLockedPlain.S()
		}
	case localapi.CodeOffline:
		p.text = text.ErrOffline.S()
	case localapi.CodeBusy:
		p.text = text.ErrBusy.S()
	case localapi.CodeThrottled, protocol.CodeRateLimited:
		if e.RetryAfter > 0 {
			p.text = text.ErrThrottled.S(map[string]any{"Seconds": e.RetryAfter})
		} else {
			p.text = text.ErrThrottledNoT.S()
		}
	case localapi.CodeNoServiceAcct:
		p.text = text.ErrNoServiceAcct.S()
	case localapi.CodeNotNeeded:
		p.text = text.SyncNotNeeded.S()
	default:
		p.text = e.Error()
	}
	if op != nil && op.State == localapi.OpSyncNeeded {
		p.field = ""
		p.text = text.ErrPartWay.S() + "\n" + p.text
	}
	return p
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
