package api

import (
	"testing"

	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// The engine's vocabulary is the local API's: the server passes states,
// steps, places and kinds through unchanged (convert.go), so each engine
// constant must equal its localapi twin. (Text and error codes are defined
// once, in protocol/codes, for both.)
func TestEngineSpeaksTheContract(t *testing.T) {
	pairs := [][2]string{
		{engine.OpChange, localapi.OpChange},
		{engine.OpSync, localapi.OpSync},
		{engine.OpSyncForgot, localapi.OpSyncForgot},
		{engine.OpRunning, localapi.OpRunning},
		{engine.OpDone, localapi.OpDone},
		{engine.OpFailed, localapi.OpFailed},
		{engine.OpSyncNeeded, localapi.OpSyncNeeded},
		{engine.StepValidate, localapi.StepValidate},
		{engine.StepVerify, localapi.StepVerify},
		{engine.StepDirectory, localapi.StepDirectory},
		{engine.StepLocal, localapi.StepLocal},
		{engine.StepKeychain, localapi.StepKeychain},
		{engine.StepFileVault, localapi.StepFileVault},
		{engine.StepPreboot, localapi.StepPreboot},
		{engine.StepAck, localapi.StepAck},
		{engine.StepPending, localapi.StepPending},
		{engine.StepRunning, localapi.StepRunning},
		{engine.StepDone, localapi.StepDone},
		{engine.StepSkipped, localapi.StepSkipped},
		{engine.StepFailed, localapi.StepFailed},
		{engine.StateBusy, localapi.StateBusy},
		{engine.StateNotLinked, localapi.StateNotLinked},
		{engine.StateLocked, localapi.StateLocked},
		{engine.StateSyncNeeded, localapi.StateSyncNeeded},
		{engine.StateTemporary, localapi.StateTemporary},
		{engine.StateExpiring, localapi.StateExpiring},
		{engine.StateInSync, localapi.StateInSync},
		{engine.StateUnknown, localapi.StateUnknown},
		{engine.PlaceDirectory, localapi.PlaceDirectory},
		{engine.PlaceLocal, localapi.PlaceLocal},
		{engine.PlaceFileVault, localapi.PlaceFileVault},
		{engine.PlaceKeychain, localapi.PlaceKeychain},
		{engine.CheckOperation, localapi.CheckOperation},
		{engine.CheckServiceAccount, localapi.CheckServiceAccount},
		{engine.PlaceOK, localapi.PlaceOK},
		{engine.PlaceBehind, localapi.PlaceBehind},
		{engine.PlaceUnknown, localapi.PlaceUnknown},
		{engine.PlaceNotApplicable, localapi.PlaceNotApplicable},
		{engine.NoticeReset, localapi.NoticeReset},
		{engine.NoticeSynced, localapi.NoticeSynced},
		{engine.NoticeExpiry, localapi.NoticeExpiry},
		{engine.NoticeLocked, localapi.NoticeLocked},
		{engine.NoticeUnlocked, localapi.NoticeUnlocked},
		{engine.FieldCurrent, localapi.FieldCurrent},
		{engine.FieldNew, localapi.FieldNew},
		{engine.FieldTOTP, localapi.FieldTOTP},
		{engine.FieldPrevious, localapi.FieldPrevious},
		{engine.FieldPassword, localapi.FieldPassword},
		{engine.EventStatus, localapi.EventStatus},
		{engine.EventStep, localapi.EventStep},
		{engine.EventResult, localapi.EventResult},
		{engine.EventNotice, localapi.EventNotice},
		{engine.OpKeychainRecover, localapi.OpKeychainRecover},
		{engine.OpIncomplete, localapi.OpIncomplete},
		{engine.StepKeptRekey, localapi.StepKeptRekey},
		{engine.StepSearchList, localapi.StepSearchList},
		{engine.FieldOld, localapi.FieldOld},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("engine says %q where the local API says %q", p[0], p[1])
		}
	}
	// The server's own codes are the contract's too.
	for _, code := range []string{localapi.CodeForbidden, localapi.CodeBadRequest, localapi.CodeNameAccount, localapi.CodeTooMany, localapi.CodeNotNeeded} {
		if _, ok := codes.Errors[code]; !ok {
			t.Errorf("the server sends %q, which codes.Errors does not list", code)
		}
	}
}
