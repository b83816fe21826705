package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// otherUID is the uid tests act as when they play a local user who is not
// alice: bob with root (the real peer credentials of another account), the
// test's own uid without (lockstepd then sees its own, admin, uid).
func otherUID() int {
	if os.Getuid() == 0 {
		return 503
	}
	return 0
}

// 15. Any local user may read the service account's state; doing so must
// run no tool as root, and above all must not sign in as the hidden admin
// (a failed login each time its stored password is stale).
func TestServiceAccountReadRunsNoTool(t *testing.T) {
	t.Parallel()
	u := newUser(t, shared, false)
	m := newMac(t, shared, u)
	r := m.cli(lines(adminPW), "service-account", "setup", "--admin", "admin", "--stdin")
	if r.code != 0 {
		t.Fatalf("service-account setup: %s", r)
	}
	before, err := m.sim.Invocations()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		r := m.cliAs(otherUID(), "", "service-account", "status")
		if r.code != 0 || !strings.Contains(r.stdout, "Service account ready") {
			t.Fatalf("service-account status: %s", r)
		}
	}
	after, err := m.sim.Invocations()
	if err != nil {
		t.Fatal(err)
	}
	var ran []string
	for _, inv := range after[len(before):] {
		ran = append(ran, strings.Join(inv.Argv, " "))
		if inv.Tool == "dscl" && slices.Contains(inv.Argv, "-authonly") {
			t.Errorf("a read signed in as a local account: %s", strings.Join(inv.Argv, " "))
		}
	}
	if len(ran) > 0 {
		t.Errorf("5 reads of the service account ran %d tools as root:\n%s", len(ran), strings.Join(ran, "\n"))
	}
}
