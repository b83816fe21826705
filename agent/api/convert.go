package api

import (
	"maps"

	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/localapi"
)

// The engine's words become the contract's here, and only here: the codes
// and states are the same strings (the tests check every one), the shapes
// are the local API's.

func text(t engine.Text) localapi.Text {
	return localapi.Text{Code: t.Code, Params: maps.Clone(t.Params)}
}

func apiError(e *engine.Error) *localapi.Error {
	if e == nil {
		return nil
	}
	return &localapi.Error{Code: e.Code, Field: e.Field, Params: maps.Clone(e.Params), Violations: e.Violations,
		RetryAfter: e.RetryAfter, Until: e.Until, Detail: e.Detail}
}

func step(s engine.Step) localapi.Step {
	return localapi.Step{Name: s.Name, State: s.State, Text: text(s.Text), At: s.At}
}

func operation(op *engine.Operation) *localapi.Operation {
	if op == nil {
		return nil
	}
	out := &localapi.Operation{ID: op.ID, Kind: op.Kind, LocalUser: op.LocalUser, State: op.State, StartedAt: op.StartedAt,
		FinishedAt: op.FinishedAt, Error: apiError(op.Error), NextAction: op.NextAction}
	for _, s := range op.Steps {
		out.Steps = append(out.Steps, step(s))
	}
	for _, n := range op.Notes {
		out.Notes = append(out.Notes, text(n))
	}
	return out
}

func account(a engine.Account) localapi.Account {
	out := localapi.Account{LocalUser: a.LocalUser, DirectoryUser: a.DirectoryUser, DisplayName: a.DisplayName, State: a.State,
		Reason: text(a.Reason), PasswordInSync: a.InSync, MFA: a.MFA, Temporary: a.Temporary, PasswordChangedAt: a.PasswordChangedAt, ExpiresAt: a.ExpiresAt,
		DaysLeft: a.DaysLeft, LockedUntil: a.LockedUntil, FileVault: a.FileVault, LastOperation: operation(a.LastOperation),
		MFAEnrollBy: a.MFAEnrollBy, KeptKeychains: a.KeptKeychains}
	for _, p := range a.Places {
		out.Places = append(out.Places, localapi.Place{Name: p.Name, State: p.State, Text: text(p.Text), ChangedAt: p.ChangedAt})
	}
	return out
}

func serviceStatus(s engine.ServiceStatus) localapi.ServiceAccountStatus {
	return localapi.ServiceAccountStatus{Present: s.Present, SecureToken: s.SecureToken, Usable: s.Usable, Problem: s.Problem}
}

func doctorReport(r engine.DoctorReport) localapi.DoctorReport {
	out := localapi.DoctorReport{LocalUser: r.LocalUser}
	for _, c := range r.Checks {
		lc := localapi.Check{Place: c.Place, OK: c.OK, Text: text(c.Text)}
		if c.Fix != nil {
			f := text(*c.Fix)
			lc.Fix = &f
		}
		out.Checks = append(out.Checks, lc)
	}
	return out
}

func notice(n engine.Notice) *localapi.Notice {
	return &localapi.Notice{ID: n.ID, Kind: n.Kind, LocalUser: n.LocalUser, Params: maps.Clone(n.Params), At: n.At}
}
