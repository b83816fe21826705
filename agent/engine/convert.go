package engine

import (
	"maps"

	"github.com/lockstep-dev/lockstep/agent/journal"
)

// The journal stores operations in its own format; these convert between
// it and the engine's types.

func toJournalText(t Text) journal.Text {
	return journal.Text{Code: t.Code, Params: maps.Clone(t.Params)}
}

func textFromJournal(t journal.Text) Text { return Text{Code: t.Code, Params: maps.Clone(t.Params)} }

func toJournalError(e *Error) *journal.Error {
	if e == nil {
		return nil
	}
	return &journal.Error{Code: e.Code, Field: e.Field, Params: maps.Clone(e.Params), Violations: e.Violations,
		RetryAfter: e.RetryAfter, Until: e.Until, Detail: e.Detail}
}

func errorFromJournal(e *journal.Error) *Error {
	if e == nil {
		return nil
	}
	return &Error{Code: e.Code, Field: e.Field, Params: maps.Clone(e.Params), Violations: e.Violations,
		RetryAfter: e.RetryAfter, Until: e.Until, Detail: e.Detail}
}

func stepFromJournal(s journal.Step) Step {
	return Step{Name: s.Name, State: s.State, Text: textFromJournal(s.Text), At: s.At}
}

// opFromJournal is the engine's copy of a journalled operation.
func opFromJournal(e *journal.Entry) *Operation {
	op := &Operation{ID: e.ID, Kind: e.Kind, LocalUser: e.LocalUser, State: e.State, StartedAt: e.StartedAt,
		FinishedAt: e.FinishedAt, Error: errorFromJournal(e.Error), NextAction: e.NextAction}
	for _, s := range e.Steps {
		op.Steps = append(op.Steps, stepFromJournal(s))
	}
	for _, n := range e.Notes {
		op.Notes = append(op.Notes, textFromJournal(n))
	}
	return op
}
