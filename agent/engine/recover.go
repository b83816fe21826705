package engine

import (
	"fmt"

	"github.com/lockstep-dev/lockstep/localapi"
)

// recover closes every operation a crash left running. Without the
// passwords (which are never stored) it cannot finish them; it decides, from
// the journal, whether anything may have changed:
//   - no place was touched: the operation failed and the account is as it was;
//   - a place may have changed: the account needs a sync, which the normal
//     sync flow resolves, observing first what is already done.
//
// When only the directory step of a change was under way, the engine cannot
// know whether the directory applied it; the record's CheckVersion lets the
// next directory state settle it.
func (e *Engine) recover() error {
	entries, err := e.opt.Journal.List()
	if err != nil {
		e.log.Error("journal partly unreadable", "err", err)
	}
	now := e.opt.Now().UTC()
	for _, ent := range entries {
		if ent.Done() {
			continue
		}
		mutating := false
		for _, st := range ent.Steps {
			if st.State == localapi.StepPending || st.State == localapi.StepSkipped {
				continue
			}
			switch st.Name {
			case localapi.StepDirectory:
				mutating = mutating || ent.Kind == localapi.OpChange
			case localapi.StepLocal, localapi.StepKeychain:
				mutating = true
			}
		}
		for i := range ent.Steps {
			if ent.Steps[i].State == localapi.StepRunning {
				ent.Steps[i].State = localapi.StepFailed
				ent.Steps[i].Detail = "Interrupted: lockstepd stopped during this step."
			}
		}
		ent.FinishedAt = &now
		r := e.recordLocked(ent.LocalUser)
		if mutating {
			ent.State = localapi.OpSyncNeeded
			ent.Error = &localapi.Error{Code: localapi.CodeInterrupted,
				Message: "lockstepd stopped in the middle of this operation.",
				Hint:    "Nothing is lost: run Sync Password (`lockstep sync`) with your previous and new password to finish."}
			r.SyncNeeded = true
			r.Reason = "A password operation was interrupted. Sync your Mac to finish it."
			e.markBehind(r, now)
		} else {
			ent.State = localapi.OpFailed
			ent.Error = &localapi.Error{Code: localapi.CodeInterrupted,
				Message: "lockstepd stopped before anything was changed.", Hint: "Try again."}
		}
		if err := e.opt.Journal.Write(ent); err != nil {
			return fmt.Errorf("recovering operation %s: %w", ent.ID, err)
		}
		e.log.Warn("operation recovered after a stop", "op_id", ent.ID, "state", ent.State, "local_user", ent.LocalUser)
	}
	return e.saveLocked()
}
