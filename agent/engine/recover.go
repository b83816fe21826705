package engine

import (
	"fmt"

	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// recover closes every operation a crash left running. Without the
// passwords (which are never stored) it cannot finish them; it decides, from
// the journal, whether anything may have changed:
//   - no place was touched: the operation failed and the account is as it was;
//   - a place may have changed: the account needs a sync, which the normal
//     sync flow resolves, observing first what is already done;
//   - a keychain recovery never changes a place: it ended failed, or, once
//     it may have re-keyed the kept keychain or changed the search list,
//     incomplete, which the same recovery run again finishes.
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
			if st.State == StepPending || st.State == StepSkipped {
				continue
			}
			switch st.Name {
			case StepDirectory:
				mutating = mutating || ent.Kind == OpChange
			case StepLocal, StepKeychain, StepKeptRekey, StepSearchList:
				mutating = true
			}
		}
		for i := range ent.Steps {
			if ent.Steps[i].State == StepRunning {
				ent.Steps[i].State = StepFailed
				ent.Steps[i].Text = toJournalText(T(codes.StepInterrupted))
			}
		}
		ent.FinishedAt = &now
		r := e.recordLocked(ent.LocalUser)
		switch {
		case ent.Kind == OpKeychainRecover && mutating:
			// Only a kept keychain may have changed (re-keyed, or put in
			// the list): running the recovery again finishes it.
			ent.State = OpIncomplete
		case ent.Kind == OpKeychainRecover:
			ent.State = OpFailed
		case mutating:
			ent.State = OpSyncNeeded
			r.SyncNeeded = true
			r.Reason = T(codes.ReasonInterrupted)
			e.markBehind(r, now)
		default:
			ent.State = OpFailed
		}
		ent.Error = toJournalError(&Error{Code: codes.Interrupted})
		if err := e.opt.Journal.Write(ent); err != nil {
			return fmt.Errorf("recovering operation %s: %w", ent.ID, err)
		}
		e.log.Warn("operation recovered after a stop", "op_id", ent.ID, "state", ent.State, "local_user", ent.LocalUser)
	}
	return e.saveLocked()
}
