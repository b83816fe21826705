//go:build cgo || !darwin

package ui

import (
	"errors"
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
		return stepValidate.S()
	case localapi.StepVerify:
		if kind != localapi.OpChange {
			return stepVerifyOld.S()
		}
		return stepVerify.S()
	case localapi.StepDirectory:
		return stepDirectory.S()
	case localapi.StepLocal:
		return stepLocal.S()
	case localapi.StepKeychain:
		return stepKeychain.S()
	case localapi.StepFileVault:
		return stepFileVault.S()
	case localapi.StepPreboot:
		return stepPreboot.S()
	case localapi.StepAck:
		return stepAck.S()
	}
	return name
}

func stepState(st localapi.Step) (fyne.Resource, string) {
	switch st.State {
	case localapi.StepRunning:
		return resRunning(), stepRunning.S()
	case localapi.StepDone:
		return resMet(), stepDoneS.S()
	case localapi.StepSkipped:
		return resSkipped(), stepSkipped.S()
	case localapi.StepFailed:
		return resFailed(), stepFailed.S()
	}
	return resUnmet(), stepPending.S()
}

func stepText(st localapi.Step, kind string) (fyne.Resource, string) {
	res, state := stepState(st)
	data := map[string]any{"Step": stepName(st.Name, kind), "State": state, "Detail": st.Detail}
	if st.Detail != "" && st.State != localapi.StepRunning {
		return res, stepLineNote.S(data)
	}
	return res, stepLine.S(data)
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
		return problem{text: errNotRunning.S()}
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
			p.text = errWrongLink.S()
		case localapi.FieldPrevious:
			p.text = errWrongPrevious.S()
		case localapi.FieldNew:
			p.text = errWrongDirNew.S()
		default:
			p.text = errWrongCurrent.S()
		}
	case protocol.CodeMFARequired:
		p.text = errMFAMissing.S()
	case protocol.CodeMFAInvalid:
		p.text = errMFAInvalid.S()
	case protocol.CodeMFAReplayed:
		p.text = errMFAReplayed.S()
	case protocol.CodePolicyViolation:
		lines := []string{errPolicy.S()}
		for _, v := range e.Violations {
			lines = append(lines, "• "+v.Message)
		}
		p.text = strings.Join(lines, "\n")
		p.violations = e.Violations
	case protocol.CodeLocked:
		if e.Until != nil {
			p.text = errLocked.S(map[string]any{"Until": a.clock(*e.Until)})
		} else {
			p.text = errLockedPlain.S()
		}
	case localapi.CodeOffline:
		p.text = errOffline.S()
	case localapi.CodeBusy:
		p.text = errBusy.S()
	case localapi.CodeThrottled, protocol.CodeRateLimited:
		if e.RetryAfter > 0 {
			p.text = errThrottled.S(map[string]any{"Seconds": e.RetryAfter})
		} else {
			p.text = errThrottledNoT.S()
		}
	case localapi.CodeNoServiceAcct:
		p.text = errNoServiceAcct.S()
	case localapi.CodeNotNeeded:
		p.text = syncNotNeeded.S()
	default:
		p.text = e.Error()
	}
	if op != nil && op.State == localapi.OpSyncNeeded {
		p.field = ""
		p.text = errPartWay.S() + "\n" + p.text
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
	return forAccount.S(map[string]any{"Name": name, "User": acct.DirectoryUser})
}

// newWindowContent lays out a window: everything stacked, buttons last.
func newWindowContent(parts ...fyne.CanvasObject) *fyne.Container {
	return container.NewPadded(container.NewVBox(parts...))
}
