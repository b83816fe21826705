package cli

import (
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// What `--json` prints is lockstepd's own document, codes and all, with
// each text's and error's English sentence filled in as "message", rendered
// by the same catalogue as the words on screen (Run selects English when
// --json is given). Scripts match on codes; the messages are for people
// reading the output.

func english(e *localapi.Error, in string) {
	if e != nil {
		e.Message = text.Problem(e, in).String()
	}
}

func englishText(t *localapi.Text) {
	if t != nil && t.Code != "" {
		t.Message = text.Render(*t)
	}
}

func englishStatus(st *localapi.Status) {
	for i := range st.Accounts {
		englishAccount(&st.Accounts[i])
	}
}

func englishAccount(a *localapi.Account) {
	englishText(&a.Reason)
	for i := range a.Places {
		englishText(&a.Places[i].Text)
	}
	if a.LastOperation != nil {
		englishOp(a.LastOperation)
	}
}

func englishOp(op *localapi.Operation) {
	for i := range op.Steps {
		englishText(&op.Steps[i].Text)
	}
	for i := range op.Notes {
		englishText(&op.Notes[i])
	}
	english(op.Error, inOf(op.Kind))
}

func englishEvent(ev *localapi.Event) {
	switch {
	case ev.Status != nil:
		englishStatus(ev.Status)
	case ev.Step != nil:
		englishText(&ev.Step.Text)
	case ev.Operation != nil:
		englishOp(ev.Operation)
	}
	english(ev.Error, "")
}

func englishReport(rep *localapi.DoctorReport) {
	for i := range rep.Checks {
		englishText(&rep.Checks[i].Text)
		englishText(rep.Checks[i].Fix)
	}
}
