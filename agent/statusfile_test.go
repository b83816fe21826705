package agent_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/agent/session"
	"github.com/lockstep-dev/lockstep/agent/statusplist"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/packaging/mdm/mdmtest"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// statusFile checks, after a change of state has been made (each step
// below returns once lockstepd has applied it), that the status file shows
// what the local API says, and returns the file.
func statusFile(t *testing.T, w *agenttest.World, c *localapi.Client, when string) statusplist.Document {
	t.Helper()
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatalf("%s: status: %v", when, err)
	}
	if err := mdmtest.Matches(w.StatusPlist, st); err != nil {
		t.Fatalf("%s: the status file does not show lockstepd's state:\n%v", when, err)
	}
	if err := mdmtest.CheckFile(w.StatusPlist, os.Getuid()); err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	doc, err := statusplist.Read(w.StatusPlist)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// settledFile is statusFile after a start: lockstepd reads the account
// from the directory in the background, and the file follows once it has.
func settledFile(t *testing.T, w *agenttest.World, c *localapi.Client, when string) statusplist.Document {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.Status(context.Background())
		if err == nil {
			err = mdmtest.Matches(w.StatusPlist, st)
		}
		if err == nil || time.Now().After(deadline) {
			return statusFile(t, w, c, when)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func inSync(doc statusplist.Document) string {
	a, ok := doc.Accounts["alice"]
	if !ok || a.PasswordInSync == nil {
		return "absent"
	}
	if *a.PasswordInSync {
		return "true"
	}
	return "false"
}

// The status file follows every kind of change lockstepd publishes: a
// push, an operation's start and end, a failure part-way, the directory
// going and coming back, a restart. Every step of this test but a start is
// synchronous (a push is applied, an operation answered, before the call
// returns), so the file must show the new state at once; after a start
// lockstepd reads the account from the directory in the background.
func TestStatusFileFollowsEveryChange(t *testing.T) {
	w := agenttest.Start(t, agenttest.Options{StatusPlist: true, Version: "1.4.2"})
	c := localapi.NewClient(w.Socket)
	ctx := context.Background()

	doc := settledFile(t, w, c, "at start")
	if doc.Accounts["alice"].State != localapi.StateInSync || inSync(doc) != "true" || doc.LockstepdVersion != "1.4.2" || doc.Directory.State != session.Connected {
		t.Fatalf("at start: %+v", doc)
	}
	if got := mdmtest.RunEA(t, w.StatusPlist); got != "true" {
		t.Fatalf("extension attribute at start: %s", got)
	}

	const reset = "Reset-Passw0rd-77"
	w.Reset(reset, false)
	if doc = statusFile(t, w, c, "after a reset"); inSync(doc) != "false" || doc.Accounts["alice"].State != localapi.StateSyncNeeded {
		t.Fatalf("after a reset: %+v", doc.Accounts["alice"])
	}
	if got := mdmtest.RunEA(t, w.StatusPlist); got != "false" {
		t.Fatalf("extension attribute after a reset: %s", got)
	}

	// Half-way through a sync: busy, and no verdict until it ends.
	held := make(chan struct{})
	release := make(chan struct{})
	w.Mac.Lock()
	w.Mac.Before = func(op string) {
		if op == "rekey" {
			close(held)
			<-release
		}
	}
	w.Mac.Unlock()
	done := make(chan error, 1)
	go func() {
		op, err := c.Sync(ctx, localapi.SyncRequest{User: "alice", Previous: protocol.Secret(w.MacPassword()), New: protocol.Secret(reset)}, nil)
		if err == nil && op.State != localapi.OpDone {
			err = errors.New("sync ended " + op.State)
		}
		done <- err
	}()
	<-held
	doc = statusFile(t, w, c, "half-way through a sync")
	if a := doc.Accounts["alice"]; a.State != localapi.StateBusy || a.PasswordInSync != nil || a.LastSync == nil || a.LastSync.Result != localapi.OpRunning || a.LastSync.Kind != localapi.OpSync {
		t.Fatalf("half-way: %+v %+v", a, a.LastSync)
	}
	if got := mdmtest.RunEA(t, w.StatusPlist); got != "unknown" {
		t.Fatalf("extension attribute half-way: %s", got)
	}
	w.Mac.Lock()
	w.Mac.Before = nil
	w.Mac.Unlock()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	doc = statusFile(t, w, c, "after the sync")
	if a := doc.Accounts["alice"]; inSync(doc) != "true" || a.LastSync.Result != localapi.OpDone || a.LastSync.FinishedAt == nil {
		t.Fatalf("after the sync: %+v %+v", a, a.LastSync)
	}

	// A change that stops part-way needs a sync, and says why.
	w.Mac.Lock()
	w.Mac.Fail["rekey"] = errors.New("injected rekey failure")
	w.Mac.Unlock()
	op, _ := c.Change(ctx, localapi.ChangeRequest{User: "alice", Current: protocol.Secret(reset), New: protocol.Secret("Next-Passw0rd-2026"), TOTP: "123456"}, nil)
	if op == nil || op.State != localapi.OpSyncNeeded {
		t.Fatalf("change = %+v", op)
	}
	if doc = statusFile(t, w, c, "after a change stopped part-way"); inSync(doc) != "false" || doc.Accounts["alice"].LastSync.Error != codes.Platform {
		t.Fatalf("after the stopped change: %+v", doc.Accounts["alice"].LastSync)
	}

	w.Disconnect(time.Now().Add(-time.Minute), session.ProblemUnreachable, "dial tcp: connection refused")
	if doc = statusFile(t, w, c, "offline"); doc.Directory.State != session.Offline || doc.Directory.Problem != session.ProblemUnreachable {
		t.Fatalf("offline: %+v", doc.Directory)
	}
	if bytes.Contains(mustRead(t, w.StatusPlist), []byte("connection refused")) {
		t.Fatal("the file holds the Go error's words")
	}
	w.Reconnect(time.Now())
	settledFile(t, w, c, "back online")

	w.Restart()
	if doc = settledFile(t, w, c, "after a restart"); inSync(doc) != "false" {
		t.Fatalf("after a restart: %+v", doc.Accounts["alice"])
	}
	w.ExpireIn(5)
	statusFile(t, w, c, "expiry announced")

	// Started with the directory away, lockstepd writes the file before
	// anything else changes: what it left (here a stale file) must not
	// stand.
	w.Disconnect(time.Now(), session.ProblemUnreachable, "")
	w.Stop()
	stale := statusplist.Build("0.9", statusplist.Connection{State: session.Connected}, nil)
	b, _ := statusplist.Encode(stale)
	if err := os.WriteFile(w.StatusPlist, b, 0o644); err != nil {
		t.Fatal(err)
	}
	w.Restart()
	if doc = statusFile(t, w, c, "restarted offline"); doc.Directory.State != session.Offline || doc.LockstepdVersion != "1.4.2" {
		t.Fatalf("restarted offline: %+v", doc)
	}
}

// A lock ends by the clock, with no push: the file (and every watcher)
// hears of it when it ends.
func TestStatusFileFollowsTheClock(t *testing.T) {
	w := agenttest.Start(t, agenttest.Options{StatusPlist: true})
	c := localapi.NewClient(w.Socket)
	until := time.Now().Add(time.Second)
	w.Lock(until)
	if doc := statusFile(t, w, c, "locked"); doc.Accounts["alice"].State != localapi.StateLocked {
		t.Fatalf("locked: %+v", doc.Accounts["alice"])
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		doc, err := statusplist.Read(w.StatusPlist)
		if err == nil && doc.Accounts["alice"].State == localapi.StateInSync {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lock ended at %v and the file still says %+v (%v)", until, doc.Accounts["alice"], err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	statusFile(t, w, c, "after the lock ended")
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
