package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"howett.net/plist"

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// macLanguages gives the test's user a Mac whose preferred languages are
// langs (AppleLanguages in ~/Library/Preferences/.GlobalPreferences.plist,
// binary, as macOS writes it), and no POSIX locale.
func macLanguages(t *testing.T, langs ...string) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("LC_ALL", "")
	t.Setenv("LC_MESSAGES", "")
	t.Setenv("LANG", "")
	b, err := plist.Marshal(map[string]any{"AppleLanguages": langs}, plist.BinaryFormat)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(home, "Library", "Preferences")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".GlobalPreferences.plist"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { text.Use(text.Settings{}) })
}

// translated reads one message of a shipped translation.
func translated(t *testing.T, lang, id string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "text", "translations", lang+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m[id].(string)
}

// The CLI speaks the Mac's first preferred language it has (a regional
// variant in its language), and --json stays English for scripts.
func TestCLISpeaksTheMacsLanguage(t *testing.T) {
	w := agenttest.Start(t, agenttest.Options{})
	for _, tt := range []struct {
		mac  []string
		lang string
	}{
		{[]string{"it-IT", "de-CH"}, "de"},
		{[]string{"fr-CA"}, "fr"},
		{[]string{"es-419"}, "es"},
		{[]string{"ja-JP"}, "ja"},
	} {
		macLanguages(t, tt.mac...)
		out, errOut, code := run(t, w, "", "status")
		if code != exitOK {
			t.Fatalf("%v: status exited %d: %s", tt.mac, code, errOut)
		}
		for _, id := range []string{"reason.in_sync", "state.in_sync", "cli.row_account"} {
			if want := translated(t, tt.lang, id); !strings.Contains(out, want) {
				t.Errorf("%v: status does not say %q:\n%s", tt.mac, want, out)
			}
		}
		if strings.Contains(out, "Every place uses your directory password.") {
			t.Errorf("%v: status speaks English:\n%s", tt.mac, out)
		}
		js, _, code := run(t, w, "", "status", "--json")
		if code != exitOK || !strings.Contains(js, "Every place uses your directory password.") {
			t.Errorf("%v: status --json (exit %d) is not in English:\n%s", tt.mac, code, js)
		}
	}
}
