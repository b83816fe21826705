package platform

import (
	"errors"
	"os"
	"testing"

	"github.com/lockstep-dev/lockstep/macsim"
)

func TestConsoleUser(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	c := NewConsole(m.r)
	ctx := t.Context()
	u, ok, err := c.User(ctx)
	if err != nil || !ok || u != (ConsoleUser{Name: "alice", UID: 502}) {
		t.Errorf("User = %+v %t %v", u, ok, err)
	}
	for _, who := range []string{"loginwindow", ""} {
		if err := m.sim.SetConsoleUser(who); err != nil {
			t.Fatal(err)
		}
		if u, ok, err := c.User(ctx); err != nil || ok {
			t.Errorf("console %q: User = %+v %t %v, want nobody", who, u, ok, err)
		}
	}
	if err := m.sim.SetConsoleUser("admin"); err != nil {
		t.Fatal(err)
	}
	if u, ok, err := c.User(ctx); err != nil || !ok || u.Name != "admin" || u.UID != 501 {
		t.Errorf("User = %+v %t %v", u, ok, err)
	}
	invs, _ := m.sim.Invocations()
	if s := invocationsOf(invs, "scutil", ""); len(s) != 4 || s[0].StdinBytes != len("show State:/Users/ConsoleUser\n") || len(s[0].Argv) != 1 {
		t.Errorf("scutil runs = %+v", s)
	}
	if err := m.sim.AddFault(macsim.Fault{Tool: "scutil", Fail: "scutil: no store", Exit: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.User(ctx); !errors.Is(err, ErrToolFailed) {
		t.Errorf("failing scutil: %v", err)
	}
}

// New wires every part to one runner (here: the simulator's tools).
func TestNewWiresTheSimulator(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	mac := New(Config{ToolsDir: m.sim.ToolsDir(), RunUserStepsAsSelf: os.Geteuid() != 0})
	ctx := t.Context()
	if u, ok, err := mac.Console.User(ctx); err != nil || !ok || u.Name != "alice" {
		t.Errorf("Console.User = %+v %t %v", u, ok, err)
	}
	if on, err := mac.FileVault.IsActive(ctx); err != nil || !on {
		t.Errorf("FileVault.IsActive = %t %v", on, err)
	}
	if ok, err := mac.Keychains.Opens(ctx, m.account(t, "alice"), []byte(alicePW)); err != nil || !ok {
		t.Errorf("Keychains.Opens = %t %v", ok, err)
	}
	if err := mac.Accounts.VerifyPassword(ctx, "alice", []byte(alicePW)); err != nil {
		t.Errorf("Accounts.VerifyPassword = %v", err)
	}
}
