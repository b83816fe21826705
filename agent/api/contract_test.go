package api

import (
	"slices"
	"testing"

	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/localapi"
)

// The engine's vocabulary and codes are the local API's: the server passes
// them through unchanged (convert.go), so each engine constant must equal
// its localapi twin, and every code the engine can send must be in the
// contract's registries with the same parameters (ui/text renders exactly
// those).
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
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("engine says %q where the local API says %q", p[0], p[1])
		}
	}
	same := func(kind string, eng, api map[string][]string) {
		for code, params := range eng {
			want, ok := api[code]
			if !ok {
				t.Errorf("%s code %q is not in localapi's registry", kind, code)
				continue
			}
			a, b := slices.Sorted(slices.Values(params)), slices.Sorted(slices.Values(want))
			if !slices.Equal(a, b) {
				t.Errorf("%s %q carries %v; localapi lists %v", kind, code, a, b)
			}
		}
	}
	same("text", engine.Texts, localapi.Texts)
	same("error", engine.Errors, localapi.Errors)
	// The server's own codes are the contract's too.
	for _, code := range []string{localapi.CodeForbidden, localapi.CodeBadRequest, localapi.CodeNameAccount, localapi.CodeTooMany, localapi.CodeNotNeeded} {
		if _, ok := localapi.Errors[code]; !ok {
			t.Errorf("the server sends %q, which localapi.Errors does not list", code)
		}
	}
}
