package text

import (
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// The names of lockstepd's vocabulary (steps, places, states, operation
// kinds), as the app's windows and the CLI's lines both show them.

// StepName says a step. kind is the operation's: in a sync, the password
// checked first is the previous one.
func StepName(name, kind string) string {
	switch name {
	case localapi.StepValidate:
		return StepValidate.S()
	case localapi.StepVerify:
		if kind != localapi.OpChange && kind != localapi.OpKeychainRecover {
			return StepVerifyOld.S()
		}
		return StepVerify.S()
	case localapi.StepKeptRekey:
		return StepKeptRekey.S()
	case localapi.StepSearchList:
		return StepSearchList.S()
	case localapi.StepDirectory:
		return StepDirectory.S()
	case localapi.StepLocal:
		return StepLocal.S()
	case localapi.StepKeychain:
		return StepKeychain.S()
	case localapi.StepFileVault:
		return StepFileVault.S()
	case localapi.StepPreboot:
		return StepPreboot.S()
	case localapi.StepAck:
		return StepAck.S()
	}
	return Unknown.S(map[string]any{"code": name})
}

// StepState says how far a step is.
func StepState(state string) string {
	switch state {
	case localapi.StepRunning:
		return StepRunning.S()
	case localapi.StepDone:
		return StepDoneS.S()
	case localapi.StepSkipped:
		return StepSkipped.S()
	case localapi.StepFailed:
		return StepFailed.S()
	}
	return StepPending.S()
}

// PlaceName says a place a password lives.
func PlaceName(name string) string {
	switch name {
	case localapi.PlaceDirectory:
		return PlaceDirectory.S()
	case localapi.PlaceLocal:
		return PlaceLocal.S()
	case localapi.PlaceFileVault:
		return PlaceFileVault.S()
	case localapi.PlaceKeychain:
		return PlaceKeychain.S()
	}
	return Unknown.S(map[string]any{"code": name})
}

// CheckName says what a doctor's check looked at: a place, the running
// operation, or the service account.
func CheckName(name string) string {
	switch name {
	case localapi.CheckOperation:
		return CheckOperation.S()
	case localapi.CheckServiceAccount:
		return CheckService.S()
	}
	return PlaceName(name)
}

// PlaceState says where a place stands.
func PlaceState(state string) string {
	switch state {
	case localapi.PlaceOK:
		return PlaceOK.S()
	case localapi.PlaceBehind:
		return PlaceBehind.S()
	case localapi.PlaceNotApplicable:
		return PlaceNA.S()
	}
	return PlaceUnknown.S()
}

// AccountState says an account's state in a few words.
func AccountState(state string) string {
	switch state {
	case localapi.StateBusy:
		return StateBusy.S()
	case localapi.StateNotLinked:
		return StateNotLinked.S()
	case localapi.StateLocked:
		return StateLocked.S()
	case localapi.StateSyncNeeded:
		return StateSyncNeeded.S()
	case localapi.StateTemporary:
		return StateTemporary.S()
	case localapi.StateMFAEnroll:
		return StateEnroll.S()
	case localapi.StateExpiring:
		return StateExpiring.S()
	case localapi.StateInSync:
		return StateInSync.S()
	}
	return StateUnknown.S()
}

// OpKind says what kind of operation it was.
func OpKind(kind string) string {
	switch kind {
	case localapi.OpChange:
		return OpChange.S()
	case localapi.OpSync:
		return OpSync.S()
	case localapi.OpSyncForgot:
		return OpSyncForgot.S()
	case localapi.OpKeychainRecover:
		return OpKeychainRecover.S()
	}
	return Unknown.S(map[string]any{"code": kind})
}

// OpState says how an operation ended (or that it runs).
func OpState(state string) string {
	switch state {
	case localapi.OpRunning:
		return OpRunning.S()
	case localapi.OpDone:
		return OpDone.S()
	case localapi.OpFailed:
		return OpFailed.S()
	case localapi.OpSyncNeeded:
		return OpSyncNeeded.S()
	case localapi.OpIncomplete:
		return OpIncomplete.S()
	}
	return Unknown.S(map[string]any{"code": state})
}

// Connection says where lockstepd's session with the directory stands:
// why it is down when the session says (a revoked or unknown Mac), else its
// state.
func Connection(c localapi.Connection) string {
	since := map[string]any{"Since": Clock(c.Since), "Err": c.LastError}
	if c.State != localapi.ConnConnected {
		switch c.Problem {
		case localapi.ProblemRevoked:
			return StatusRevoked.S(since)
		case localapi.ProblemRefused:
			return StatusRefused.S(since)
		}
	}
	switch c.State {
	case localapi.ConnConnected:
		return StatusConnected.S(since)
	case localapi.ConnConnecting:
		return StatusConnecting.S()
	case localapi.ConnNotEnrolled:
		return StatusNotEnrolled.S()
	}
	if c.LastError != "" {
		return StatusOfflineErr.S(since)
	}
	return StatusOffline.S(since)
}

// ServiceAccount says whether the forgotten-password path is available.
func ServiceAccount(st localapi.ServiceAccountStatus) string {
	switch {
	case st.Usable:
		return ServiceReady.S()
	case st.Present && st.Problem != "":
		return Render(localapi.Text{Code: st.Problem})
	case st.Present:
		return ServiceNotUsable.S()
	}
	return ServiceNotSetUp.S()
}

// ShortReason says why a sync is needed in a few words, for the tray's
// "Sync needed: …" line ("" when there are none for the reason); the
// windows say the whole reason (Render).
func ShortReason(t localapi.Text) string {
	switch t.Code {
	case codes.ReasonReset:
		return ShortReset.S()
	case codes.ReasonResetTemporary:
		return ShortResetTemporary.S()
	case codes.ReasonChangedElsewhere:
		return ShortElsewhere.S()
	case codes.ReasonInterrupted:
		return ShortInterrupted.S()
	case codes.ReasonStopped:
		return ShortStopped.S()
	}
	return ""
}
