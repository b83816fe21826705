package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
	"github.com/lockstep-dev/lockstep/ui/text"
)

const (
	oldPW  = "Old-Passw0rd!"
	newPW  = "New-Passw0rd-2026"
	tempPW = "Temp-Passw0rd-99"
)

// run runs one lockstep command against w, in-process, with stdin, and
// returns its output and exit code.
func run(t *testing.T, w *agenttest.World, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	c := &CLI{In: strings.NewReader(stdin), Out: &out, Err: &errb, IsTerminal: func() bool { return false }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = c.Run(ctx, append(args, "--socket", w.Socket))
	return out.String(), errb.String(), code
}

func lines(s ...string) string { return strings.Join(s, "\n") + "\n" }

// pseudo makes the CLI speak the pseudo-locale, where every catalogue
// string is marked ⟦…⟧.
func pseudo(t *testing.T) {
	t.Setenv("HOME", t.TempDir()) // no AppleLanguages
	t.Setenv("LC_ALL", text.Pseudo)
	t.Setenv("LANG", "")
	t.Cleanup(func() { text.Use(text.Settings{}) })
}

// marked strips the catalogue's ⟦…⟧ from s and what is left must be data
// (the names in data, numbers, times, marks such as ✓ and •, a Go error's
// words after "Err:"), never words.
var (
	innermost = regexp.MustCompile(`⟦[^⟦⟧]*⟧`)
	letters   = regexp.MustCompile(`\pL{2,}`)
)

func unmarked(out string, data ...string) []string {
	var bad []string
	rest := out
	for innermost.MatchString(rest) {
		rest = innermost.ReplaceAllString(rest, "")
	}
	for _, rest := range strings.Split(rest, "\n") {
		l := rest
		for _, d := range data {
			rest = strings.ReplaceAll(rest, d, "")
		}
		if letters.MatchString(rest) {
			bad = append(bad, l)
		}
	}
	return bad
}

// Every line the CLI prints, in every command and outcome, comes from the
// catalogue: in the pseudo-locale nothing is left unmarked but data.
func TestCLIOutputIsAllCatalogue(t *testing.T) {
	pseudo(t)
	rule := "Contain at least 10 characters."
	w := agenttest.Start(t, agenttest.Options{MFA: true, Codes: []string{"123456", "654321"}, FileVault: true,
		MacRules: []protocol.LocalRule{{ID: "X:minLength", Pattern: ".{10,}", Descriptions: map[string]string{"en": rule}}}})
	data := []string{"alice@example.com", "Alice Example", "alice", w.Socket, "wss://directory.example.com", rule, "x-pseudo"}
	check := func(what, out string) {
		t.Helper()
		if bad := unmarked(out, data...); len(bad) > 0 {
			t.Errorf("%s: lines not from the catalogue:\n%s\nwhole output:\n%s", what, strings.Join(bad, "\n"), out)
		}
	}
	type step struct {
		name   string
		before func()
		stdin  string
		args   []string
		code   int
	}
	steps := []step{
		{name: "help", args: []string{"help"}},
		{name: "unknown command", args: []string{"bogus"}, code: exitUsage},
		{name: "unexpected argument", args: []string{"status", "extra"}, code: exitUsage},
		{name: "status in sync", args: []string{"status"}},
		{name: "policy", args: []string{"policy", "--user", "alice"}},
		{name: "change wrong current", stdin: lines("Wrong-Passw0rd-1", newPW, "123456"), args: []string{"change", "--stdin", "--user", "alice"}, code: exitFailed},
		{name: "change too short", stdin: lines(oldPW, "short"), args: []string{"change", "--stdin", "--user", "alice"}, code: exitFailed},
		{name: "change wrong code", stdin: lines(oldPW, newPW, "000000"), args: []string{"change", "--stdin", "--user", "alice"}, code: exitFailed},
		{name: "change stdin ends", stdin: lines(oldPW), args: []string{"change", "--stdin", "--user", "alice"}, code: exitFailed},
		{name: "change", stdin: lines(oldPW, newPW, "123456"), args: []string{"change", "--stdin", "--user", "alice"}},
		{name: "status after change", args: []string{"status"}},
		{name: "doctor", args: []string{"doctor", "--user", "alice"}},
		{name: "doctor wrong password", stdin: lines("Not-The-Passw0rd"), args: []string{"doctor", "--user", "alice", "--password", "--stdin"}, code: exitFailed},
		{name: "service account", args: []string{"service-account", "status"}},
		{name: "service account unknown action", args: []string{"service-account", "bogus"}, code: exitUsage},
		{name: "setup without admin", args: []string{"service-account", "setup"}, code: exitUsage},
		{name: "diagnose without out", args: []string{"diagnose"}, code: exitUsage},
		{name: "reset", before: func() { w.Reset(tempPW, true) }, args: []string{"status"}},
		{name: "forgot without service account", stdin: lines(tempPW), args: []string{"sync", "--forgot-previous", "--stdin", "--user", "alice"}, code: exitFailed},
		{name: "sync wrong previous", stdin: lines("Wrong-Passw0rd-1", tempPW), args: []string{"sync", "--stdin", "--user", "alice"}, code: exitFailed},
		{name: "sync temporary", stdin: lines(newPW, tempPW), args: []string{"sync", "--stdin", "--user", "alice"}},
		{name: "status temporary", args: []string{"status"}},
		{name: "offline", before: func() {
			w.Disconnect(time.Now().Add(-time.Minute), localapi.ProblemUnreachable, "dial tcp 10.0.0.1:443: connection refused")
		}, args: []string{"status"}},
		{name: "change offline", stdin: lines(tempPW, newPW+"x", "654321"), args: []string{"change", "--stdin", "--user", "alice"}, code: exitUnavail},
		{name: "locked", before: func() { w.Lock(time.Now().Add(30 * time.Minute)) }, args: []string{"status"}},
		{name: "locked in two days", before: func() { w.Lock(time.Now().Add(50 * time.Hour)) }, args: []string{"status"}},
		{name: "not running", before: w.Stop, args: []string{"status"}, code: exitUnavail},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		out, errOut, code := run(t, w, s.stdin, s.args...)
		if code != s.code {
			t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", s.name, code, s.code, out, errOut)
		}
		if out+errOut == "" && s.name != "service account" {
			t.Errorf("%s: printed nothing", s.name)
		}
		check(s.name, out+errOut)
	}
	// The refused change left the directory at the synced password.
	if w.DirectoryPassword() != tempPW {
		t.Errorf("directory holds %q after the flow", w.DirectoryPassword())
	}
}

// JSON output is for scripts: codes, and English messages rendered by the
// same catalogue, whatever the user's language.
func TestStatusJSONIsEnglishAndStable(t *testing.T) {
	pseudo(t)
	w := agenttest.Start(t, agenttest.Options{})
	w.Reset(tempPW, false)
	out, _, code := run(t, w, "", "status", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	if strings.Contains(out, "⟦") {
		t.Errorf("JSON output is not in English:\n%s", out)
	}
	var st struct {
		Version   string `json:"version"`
		Directory struct {
			State string `json:"state"`
			URL   string `json:"url"`
		} `json:"directory"`
		Accounts []struct {
			LocalUser string `json:"local_user"`
			State     string `json:"state"`
			Reason    struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"reason"`
			Places []struct {
				Name  string `json:"name"`
				State string `json:"state"`
			} `json:"places"`
		} `json:"accounts"`
		ServiceAccount struct {
			Usable bool `json:"usable"`
		} `json:"service_account"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.Accounts) != 1 {
		t.Fatalf("accounts %+v", st.Accounts)
	}
	a := st.Accounts[0]
	text.Use(text.Settings{Languages: []string{"en"}})
	if a.State != localapi.StateSyncNeeded || a.Reason.Code != codes.ReasonReset || a.Reason.Message != text.ReasonReset.S() {
		t.Errorf("account %+v", a)
	}
	if st.Directory.State != localapi.ConnConnected || st.Directory.URL == "" || len(a.Places) != 4 {
		t.Errorf("status %+v", st)
	}
	// Errors on stderr too.
	_, errOut, code := run(t, w, lines("x", "y"), "sync", "--stdin", "--user", "alice", "--json")
	if code == 0 || !strings.Contains(errOut, `"code": "`+protocol.CodeWrongPassword+`"`) || strings.Contains(errOut, "⟦") || !strings.Contains(errOut, `"message": "`) {
		t.Errorf("sync error JSON (exit %d):\n%s", code, errOut)
	}
}

// diagnose --out names the file it refuses and why, in the catalogue's words.
func TestDiagnoseRefusesALink(t *testing.T) {
	pseudo(t)
	w := agenttest.Start(t, agenttest.Options{})
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "bundle.json")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, w, "", "diagnose", "--out", link)
	text.Use(text.Settings{Languages: []string{text.Pseudo}})
	want := text.CLIUnsafeFile(link, "not_regular", os.ModeSymlink.String())
	if code != exitFailed || !strings.Contains(errOut, want) {
		t.Errorf("exit %d, stderr %q, want %q", code, errOut, want)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Error("wrote through the link")
	}
}
