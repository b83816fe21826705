package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/agent/enginetest"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui/text"
)

const (
	keptPW   = "Kept-Passw0rd-2025"
	keptPath = "/Users/alice/Library/Keychains/login_renamed_20260301T090000Z.keychain-db"
	olderKC  = "/Users/alice/Library/Keychains/login_renamed_1.keychain-db"
)

func keptWorld(t *testing.T) *agenttest.World {
	return agenttest.Start(t, agenttest.Options{Kept: []enginetest.Aside{
		{Path: olderKC, Password: "Older-Passw0rd-1", At: time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)},
		{Path: keptPath, Password: keptPW, At: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)},
	}})
}

// The command lists the kept keychains with their dates, asks which, and
// puts the chosen one back with its old password; a wrong one changes
// nothing. Everything it prints is the catalogue's.
func TestKeychainRecover(t *testing.T) {
	pseudo(t)
	w := keptWorld(t)
	data := []string{keptPath, olderKC, "login_renamed_20260301T090000Z.keychain-db", "login_renamed_1.keychain-db", "x-pseudo", "alice@example.com", "Alice Example", "alice", "wss://directory.example.com"}
	check := func(what, out string) {
		t.Helper()
		if bad := unmarked(out, data...); len(bad) > 0 {
			t.Errorf("%s: lines not from the catalogue:\n%s\nwhole output:\n%s", what, strings.Join(bad, "\n"), out)
		}
	}
	out, errOut, code := run(t, w, "", "keychain", "list", "--user", "alice")
	if code != 0 || !strings.Contains(out, "login_renamed_20260301T090000Z.keychain-db") || strings.Index(out, "20260301") > strings.Index(out, "login_renamed_1.") {
		t.Fatalf("list (exit %d):\n%s%s", code, out, errOut)
	}
	check("list", out+errOut)

	out, errOut, code = run(t, w, lines("1", "Not-the-old-1", oldPW), "keychain", "recover", "--stdin", "--user", "alice")
	if code != exitFailed {
		t.Errorf("wrong old password: exit %d\n%s%s", code, out, errOut)
	}
	text.Use(text.Settings{Languages: []string{text.Pseudo}})
	if !strings.Contains(errOut, text.ErrKeychainOld.S()) {
		t.Errorf("wrong old password said:\n%s", errOut)
	}
	check("wrong old", out+errOut)
	if opens, list := w.Kept(); opens[keptPath] != keptPW || len(list) != 0 {
		t.Fatalf("a wrong old password changed %v %q", opens, list)
	}

	out, errOut, code = run(t, w, lines("3", keptPW, oldPW), "keychain", "recover", "--stdin", "--user", "alice")
	if code != exitFailed || !strings.Contains(errOut, "3") {
		t.Errorf("a choice out of range: exit %d\n%s", code, errOut)
	}
	check("bad choice", out+errOut)

	out, errOut, code = run(t, w, lines("1", keptPW, oldPW), "keychain", "recover", "--stdin", "--user", "alice")
	if code != 0 {
		t.Fatalf("recover: exit %d\n%s%s", code, out, errOut)
	}
	check("recover", out+errOut)
	opens, list := w.Kept()
	if opens[keptPath] != oldPW || opens[olderKC] != "Older-Passw0rd-1" || !slices.Equal(list, []string{keptPath}) {
		t.Errorf("after recovery: %v %q", opens, list)
	}
	out, _, _ = run(t, w, "", "keychain", "list", "--user", "alice")
	text.Use(text.Settings{Languages: []string{text.Pseudo}})
	if !strings.Contains(out, text.CLIRecoverLineDone.S(map[string]any{"N": 1, "Name": "login_renamed_20260301T090000Z.keychain-db",
		"At": text.Clock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))})) {
		t.Errorf("list after recovery:\n%s", out)
	}
	out, errOut, _ = run(t, w, "", "status")
	check("status after recovery", out+errOut)
}

// Without --stdin the passwords are asked for without echo, and the choice
// is read from the terminal.
func TestKeychainRecoverPrompts(t *testing.T) {
	w := keptWorld(t)
	var out, errb bytes.Buffer
	var prompts []string
	answers := map[string]string{text.CLIPrompt.S(map[string]any{"Label": text.LabelOld.S()}): keptPW,
		text.CLIPrompt.S(map[string]any{"Label": text.LabelCurrentMac.S()}): oldPW}
	c := &CLI{In: strings.NewReader("1\n"), Out: &out, Err: &errb, IsTerminal: func() bool { return true },
		ReadSecret: func(p string) ([]byte, error) { prompts = append(prompts, p); return []byte(answers[p]), nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code := c.Run(ctx, []string{"keychain", "recover", "--user", "alice", "--socket", w.Socket}); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if len(prompts) != 2 || !strings.Contains(errb.String(), text.CLIRecoverWhich.S(map[string]any{"N": 2})) {
		t.Errorf("prompts %q, stderr:\n%s", prompts, errb.String())
	}
	for _, pw := range []string{keptPW, oldPW} {
		if strings.Contains(out.String()+errb.String(), pw) {
			t.Error("a password was echoed")
		}
	}
	if opens, _ := w.Kept(); opens[keptPath] != oldPW {
		t.Errorf("not recovered: %v", opens)
	}
}

func TestKeychainListJSON(t *testing.T) {
	w := keptWorld(t)
	out, _, code := run(t, w, "", "keychain", "list", "--json", "--user", "alice")
	var got localapi.KeptKeychains
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 || len(got.Keychains) != 2 || got.Keychains[0].Path != keptPath {
		t.Fatalf("exit %d %v:\n%s", code, err, out)
	}
}
