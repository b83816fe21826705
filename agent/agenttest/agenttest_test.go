package agenttest_test

import (
	"context"
	"testing"

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// A world is a lockstepd a client reaches on its socket: it reports the
// account in sync, changes every place, and takes an administrator's reset.
func TestWorldRunsARealDaemon(t *testing.T) {
	w := agenttest.Start(t, agenttest.Options{MFA: true})
	c := localapi.NewClient(w.Socket)
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil || len(st.Accounts) != 1 || st.Accounts[0].State != localapi.StateInSync || st.Accounts[0].DirectoryUser != "alice@example.com" {
		t.Fatalf("status = %+v, %v", st, err)
	}
	const next = "Next-Passw0rd-2026"
	op, err := c.Change(ctx, localapi.ChangeRequest{User: "alice", Current: protocol.Secret("Old-Passw0rd!"), New: protocol.Secret(next), TOTP: "123456"}, nil)
	if err != nil || op.State != localapi.OpDone {
		t.Fatalf("change = %+v, %v", op, err)
	}
	if w.MacPassword() != next || w.DirectoryPassword() != next {
		t.Fatalf("mac %q directory %q", w.MacPassword(), w.DirectoryPassword())
	}
	w.Reset("Reset-Passw0rd-77", true)
	st, err = c.Status(ctx)
	if err != nil || st.Accounts[0].State != localapi.StateSyncNeeded || st.Accounts[0].Reason.Code != codes.ReasonResetTemporary {
		t.Fatalf("after the reset: %+v, %v", st.Accounts[0], err)
	}
	w.Restart()
	if st, err = c.Status(ctx); err != nil || st.Accounts[0].State != localapi.StateSyncNeeded {
		t.Fatalf("after a restart: %+v, %v", st, err)
	}
	if got := w.Operations(); len(got) != 1 || got[0] != localapi.OpChange {
		t.Fatalf("operations %v", got)
	}
}
