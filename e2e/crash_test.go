package e2e

import (
	"reflect"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/agent/statusplist"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/macsim"
	"github.com/lockstep-dev/lockstep/packaging/mdm"
	"github.com/lockstep-dev/lockstep/packaging/mdm/mdmtest"
)

// point is a place in a flow where something goes wrong: the tool run that
// fails, crashes lockstepd right after it applied its change, or hangs
// while lockstepd is killed.
type point struct{ tool, verb string }

// toolFailure is how each tool reports a failure, as macOS would.
var toolFailure = map[string]struct {
	msg  string
	exit int
}{
	"dscl":        {"<dscl_cmd> DS Error: -14120 (eDSPermissionError)", 40},
	"security":    {"security: SecKeychainUnlock: User interaction is not allowed.", 36},
	"sysadminctl": {"### Error:-14120 File:/AppleInternal/Library/BuildRoots/DSAuthenticator.m Line:94", 0},
	"diskutil":    {"Exiting Update Preboot operation with overall error=(ZeroLengthString=-69872)", 1},
	"fdesetup":    {"Error: Unable to unlock FileVault.", 11},
	"pwpolicy":    {"Error: Operation is not supported by the directory node.", 1},
}

type flow struct {
	name   string
	points []point
	// prepare puts the account where the operation starts from; run runs
	// it; resolve is what the user does when the account needs a sync.
	prepare func(w *crashWorld)
	run     func(w *crashWorld) cliResult
	resolve func(w *crashWorld) cliResult
	// finish, when set, is what the user does next once the account is in
	// sync (a keychain recovery never leaves it needing a sync: it is run
	// again), and checks its outcome.
	finish func(w *crashWorld)
}

// crashWorld tracks what the user knows: the password in force and every
// earlier one.
type crashWorld struct {
	*mac
	cur, next string
	known     []string
	items     []string // the keychain's original items, which must never be lost
	kept      string   // the kept keychain a recovery puts back
}

var flows = []flow{
	{
		name: "change",
		points: []point{{"pwpolicy", "getaccountpolicies"}, {"dscl", "authonly"}, {"security", "lock-keychain"},
			{"security", "unlock-keychain"}, {"dscl", "passwd"}, {"security", "set-keychain-password"},
			{"sysadminctl", "secureTokenStatus"}, {"diskutil", "updatePreboot"}},
		prepare: func(w *crashWorld) { w.next = newPassword() },
		run: func(w *crashWorld) cliResult {
			return w.cli(lines(w.cur, w.next), "change", "--stdin", "--user", "alice")
		},
		resolve: func(w *crashWorld) cliResult {
			return w.cli(lines(w.cur, w.next), "sync", "--stdin", "--user", "alice")
		},
	},
	{
		name: "sync",
		points: []point{{"dscl", "authonly"}, {"security", "unlock-keychain"}, {"dscl", "passwd"},
			{"security", "set-keychain-password"}, {"sysadminctl", "secureTokenStatus"}, {"diskutil", "updatePreboot"}},
		prepare: func(w *crashWorld) { w.adminReset() },
		run: func(w *crashWorld) cliResult {
			return w.cli(lines(w.cur, w.next), "sync", "--stdin", "--user", "alice")
		},
		resolve: func(w *crashWorld) cliResult {
			return w.cli(lines(w.cur, w.next), "sync", "--stdin", "--user", "alice")
		},
	},
	{
		// Alice had taken her login keychain out of her search list: the
		// new one goes back in, in her session, also when the sync is
		// run again after an interruption.
		name: "forgot",
		points: []point{{"sysadminctl", "resetPasswordFor"}, {"security", "create-keychain"}, {"security", "list-keychains"},
			{"sysadminctl", "secureTokenStatus"}, {"diskutil", "updatePreboot"}},
		prepare: func(w *crashWorld) {
			if err := setSearchList(w.mac); err != nil {
				w.t.Fatal(err)
			}
			w.adminReset()
		},
		run: func(w *crashWorld) cliResult {
			return w.cli(lines(w.next), "sync", "--forgot-previous", "--stdin", "--user", "alice")
		},
		resolve: func(w *crashWorld) cliResult {
			return w.cli(lines(w.next), "sync", "--forgot-previous", "--stdin", "--user", "alice")
		},
		finish: func(w *crashWorld) {
			login, err := w.sim.LoginKeychainPath("alice")
			if err != nil {
				w.t.Fatal(err)
			}
			if got := searchList(w.t, w.mac); !slices.Equal(got, []string{login}) {
				w.t.Errorf("alice's search list = %q, want her new login keychain", got)
			}
		},
	},
	{
		// The old keychain back: the current password checked on the login
		// keychain, the kept keychain re-keyed, put in the search list in
		// the user's session.
		name:    "recover",
		points:  []point{{"security", "unlock-keychain"}, {"security", "set-keychain-password"}, {"security", "list-keychains"}},
		prepare: func(w *crashWorld) { w.kept = w.forgetPassword() },
		run: func(w *crashWorld) cliResult {
			return w.cli(lines("1", w.known[0], w.cur), "keychain", "recover", "--stdin", "--user", "alice")
		},
		resolve: func(w *crashWorld) cliResult {
			return w.cli(lines(w.next), "sync", "--stdin", "--user", "alice")
		},
		finish: func(w *crashWorld) {
			if a := w.account(); a.LastOperation != nil && a.LastOperation.State == localapi.OpDone && a.LastOperation.Kind == localapi.OpKeychainRecover {
				w.recovered(w.kept)
				return
			}
			if r := w.cli(lines("1", w.known[0], w.cur), "keychain", "recover", "--stdin", "--user", "alice"); r.code != 0 {
				w.t.Fatalf("the recovery run again did not finish it: %s", r)
			}
			w.recovered(w.kept)
		},
	},
}

func (w *crashWorld) adminReset() {
	w.t.Helper()
	w.next = newPassword()
	w.mac.adminReset(w.next)
}

// TestEveryStepFailureAndCrashEndsRecoverable injects, at every tool step of
// every flow, a failure, a crash of lockstepd right after the tool applied
// its change, and a kill of lockstepd while the tool runs; each must end in
// sync or in "sync needed" that the normal sync resolves, with every place
// on one password, no keychain lost, and no failed local login. The status
// file for MDM follows every change of state on the way (the reset, the
// operation under way, lockstepd dead, the recovery, the resolving sync),
// and the Jamf extension attribute and the osquery query read it. Each case
// is its own subtest (flow/tool-verb/kind) on its own Mac.
func TestEveryStepFailureAndCrashEndsRecoverable(t *testing.T) {
	t.Parallel()
	for _, f := range flows {
		for _, p := range f.points {
			for _, kind := range []string{"fail", "crash", "kill"} {
				t.Run(f.name+"/"+p.tool+"-"+p.verb+"/"+kind, func(t *testing.T) {
					t.Parallel()
					u := newUser(t, shared, false)
					m := newMac(t, shared, u)
					w := &crashWorld{mac: m, cur: u.password, known: []string{u.password}}
					w.items = m.keychainItems(w.known)["login.keychain-db"]
					if len(w.items) == 0 {
						t.Fatal("no keychain items to protect")
					}
					if f.name == "forgot" {
						if r := m.cli(lines(adminPW), "service-account", "setup", "--admin", "admin", "--stdin"); r.code != 0 {
							t.Fatalf("service account: %s", r)
						}
					}
					start := m.invocationCount()
					w.inject(t.Name(), f, p, kind)
					if fl := failedLogins(m.invocationsSince(start)); len(fl) > 0 {
						t.Errorf("failed local logins: %v", fl)
					}
					assertNoSecrets(t, m, u, w.known...)
				})
			}
		}
	}
}

func (w *crashWorld) inject(name string, f flow, p point, kind string) {
	t := w.t
	f.prepare(w)
	// The status file MDM reads follows each change of state: here the
	// reset (sync, forgot), the forgotten-password sync that kept a
	// keychain (recover), or nothing yet (change).
	w.statusFileShows(name + ": before the operation")
	wantEA := "unknown"
	if v := w.account().PasswordInSync; v != nil {
		wantEA = strconv.FormatBool(*v)
	}
	if want := map[bool]string{true: "false", false: "true"}[f.name == "sync" || f.name == "forgot"]; wantEA != want {
		t.Fatalf("%s: before the operation lockstepd says in sync %s, want %s", name, wantEA, want)
	}
	if got := mdmtest.RunEA(t, w.statusPlist); got != wantEA {
		t.Fatalf("%s: the Jamf extension attribute says %q before the operation, want %q", name, got, wantEA)
	}
	pre := w.statusFile()
	fault := macsim.Fault{Tool: p.tool, Verb: p.verb, Count: 1}
	switch kind {
	case "fail":
		fault.Fail, fault.Exit = toolFailure[p.tool].msg, toolFailure[p.tool].exit
	case "crash":
		fault.CrashCaller = true
	case "kill":
		fault.Hang = true
	}
	if err := w.sim.AddFault(fault); err != nil {
		t.Fatal(err)
	}
	before, err := w.sim.Invocations()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan cliResult, 1)
	go func() { done <- f.run(w) }()
	var first cliResult
	if kind == "kill" {
		w.killDuringHang(name, len(before), done, func() {
			// Half-way: busy, and no verdict while the operation runs
			// (a tool that hangs while the request is checked, before
			// the operation begins, leaves the state as it was).
			w.statusFileShows(name + ": while the tool hangs")
			w.statusFileAtStop(name+": while the tool hangs", f, pre, wantEA)
		})
	}
	select {
	case first = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s: the operation never ended", name)
	}
	fired := w.faultFired(p, len(before))
	if err := w.sim.ClearFaults(); err != nil {
		t.Fatal(err)
	}
	if !fired {
		t.Fatalf("%s: the fault never fired: the flow did not reach %s %s\nfirst run: %s", name, p.tool, p.verb, first)
	}
	restarted := kind != "fail"
	if restarted {
		select {
		case <-w.exited: // the CLI can notice the dead daemon before Wait does
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: lockstepd survived", name)
		}
		// Dead lockstepd: the file still says what it last knew, an
		// operation running, so MDM reads "unknown", never a verdict.
		w.statusFileAtStop(name+": lockstepd dead", f, pre, wantEA)
		w.restart()
	} else if !w.alive() {
		t.Fatalf("%s: lockstepd died on a plain failure", name)
	}
	w.waitSettled(name)
	w.statusFileShows(name + ": after the fault")

	a := w.account()
	t.Logf("%s: exit %d, restarted %v, then %s", name, first.code, restarted, a.State)
	switch a.State {
	case localapi.StateInSync, localapi.StateExpiring:
	case localapi.StateSyncNeeded:
		if r := f.resolve(w); r.code != 0 {
			t.Fatalf("%s: the sync that should resolve it failed: %s\nfirst run: %s", name, r, first)
		}
	default:
		t.Fatalf("%s: account left %s (%s)\nfirst run: %s", name, a.State, a.Reason, first)
	}
	if a := w.account(); a.State != localapi.StateInSync {
		t.Fatalf("%s: not in sync after resolving: %s (%s)", name, a.State, a.Reason)
	}
	w.statusFileShows(name + ": in sync")
	if got := mdmtest.RunEA(t, w.statusPlist); got != "true" {
		t.Fatalf("%s: the Jamf extension attribute says %q in sync", name, got)
	}
	a = w.account()
	keychain, lastKind, lastResult := "", "", ""
	if op := a.LastOperation; op != nil {
		lastKind, lastResult = op.Kind, op.State
	}
	for _, pl := range a.Places {
		if pl.Name == localapi.PlaceKeychain {
			keychain = pl.State
		}
	}
	rows := mdmtest.Query(t, mdm.StatusQuery, w.statusPlist)
	if len(rows) != 1 || rows[0]["local_user"] != "alice" || rows[0]["password_in_sync"] != "true" || rows[0]["state"] != localapi.StateInSync ||
		rows[0]["last_sync_result"] != lastResult || rows[0]["last_sync_kind"] != lastKind ||
		rows[0]["keychain_place"] != keychain || rows[0]["directory_state"] != localapi.ConnConnected {
		t.Fatalf("%s: the osquery query says %v\nlockstepd says %+v", name, rows, a)
	}
	// Every place holds one password, the one the directory has.
	final := w.cur
	if w.dirAccepts(w.next) {
		final = w.next
	}
	w.places(final)
	if final != w.cur {
		w.known = append(w.known, final)
		w.cur = final
	}
	// No keychain was lost: the original items still open with a password
	// the user knows.
	var all []string
	for _, its := range w.keychainItems(w.known) {
		all = append(all, its...)
	}
	for _, it := range w.items {
		if !slices.Contains(all, it) {
			t.Fatalf("%s: keychain item %s lost (have %v)", name, it, all)
		}
	}
	if f.finish != nil {
		f.finish(w)
		w.statusFileShows(name + ": finished")
	}
	if t.Failed() {
		t.Fatalf("%s: first run: %s\nlockstepd log:\n%s", name, first, tail(w.logText(), 3000))
	}
}

// statusFileAtStop checks the status file while lockstepd is held in a
// tool or dead: it says f's operation is running, with no verdict (what
// lockstepd writes when an operation begins), or, when the tool ran while
// the request was checked, before the operation began, it is as it was
// before (pre) and the extension attribute still says wantEA.
func (w *crashWorld) statusFileAtStop(what string, f flow, pre statusplist.Document, wantEA string) {
	w.t.Helper()
	doc := w.statusFile()
	a := doc.Accounts["alice"]
	if a.State != localapi.StateBusy {
		if !reflect.DeepEqual(doc, pre) {
			w.t.Fatalf("%s: no operation under way, yet the status file changed:\n%+v\nwas\n%+v", what, doc, pre)
		}
		if got := mdmtest.RunEA(w.t, w.statusPlist); got != wantEA {
			w.t.Fatalf("%s: the Jamf extension attribute says %q, want %q", what, got, wantEA)
		}
		return
	}
	kind := map[string]string{"change": localapi.OpChange, "sync": localapi.OpSync, "forgot": localapi.OpSyncForgot,
		"recover": localapi.OpKeychainRecover}[f.name]
	if a.PasswordInSync != nil || a.LastSync == nil || a.LastSync.Kind != kind || a.LastSync.Result != localapi.OpRunning {
		w.t.Fatalf("%s: the status file says %+v, last sync %+v; want %s running", what, a, a.LastSync, kind)
	}
	if got := mdmtest.RunEA(w.t, w.statusPlist); got != "unknown" {
		w.t.Fatalf("%s: the Jamf extension attribute says %q while an operation runs", what, got)
	}
}

// killDuringHang waits for the tool to hang, runs whileHung, then kills
// lockstepd and the hung tool, as a power cut or a crash would.
func (w *crashWorld) killDuringHang(name string, skip int, done <-chan cliResult, whileHung func()) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		invs, err := w.sim.Invocations()
		if err != nil {
			w.t.Fatal(err)
		}
		for _, inv := range invs[skip:] {
			if inv.Fault == "hang" && len(inv.HangPIDs) > 0 {
				whileHung()
				w.daemon.Process.Signal(syscall.SIGKILL)
				syscall.Kill(-inv.PGID, syscall.SIGKILL)
				return
			}
		}
		select {
		case r := <-done:
			w.t.Fatalf("%s: the flow ended without reaching the step: %s", name, r)
		default:
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.t.Fatalf("%s: the tool never hung", name)
}

// faultFired reports whether the injected fault fired, from the record of
// the runs since the first skip: a run of the tool whose verb (or, for a
// `security -i` batch, one of whose commands) is the point's, marked with a
// fault.
func (w *crashWorld) faultFired(p point, skip int) bool {
	for _, inv := range w.invocationsSince(skip) {
		if inv.Tool == p.tool && inv.Fault != "" && (inv.Verb == p.verb || slices.Contains(inv.Commands, p.verb)) {
			return true
		}
	}
	return false
}

// waitSettled waits until no operation is running and the session is up.
func (w *crashWorld) waitSettled(name string) {
	w.eventually(name+": lockstepd to settle", 30*time.Second, func() bool {
		st := w.status()
		if st.Directory.State != localapi.ConnConnected {
			return false
		}
		for _, a := range st.Accounts {
			if a.LocalUser == "alice" {
				return a.State != localapi.StateBusy && a.State != localapi.StateUnknown
			}
		}
		return false
	})
}
