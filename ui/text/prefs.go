package text

import (
	"os"
	"path/filepath"
	"strings"

	"howett.net/plist"
)

// Preferred returns the user's languages, best first: macOS's preferred
// languages (AppleLanguages in the user's global preferences) when there
// are any, then LC_ALL, LC_MESSAGES and LANG.
func Preferred() []string {
	var out []string
	if home, err := os.UserHomeDir(); err == nil {
		out = append(out, appleLanguages(filepath.Join(home, "Library", "Preferences", ".GlobalPreferences.plist"))...)
	}
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := os.Getenv(k); v != "" && v != "C" && v != "POSIX" && !strings.HasPrefix(v, "C.") {
			out = append(out, v)
		}
	}
	return out
}

// appleLanguages reads AppleLanguages from a preferences file (binary or
// XML property list); nothing when it is missing or unreadable.
func appleLanguages(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var prefs struct {
		AppleLanguages []string `plist:"AppleLanguages"`
	}
	if _, err := plist.Unmarshal(b, &prefs); err != nil {
		return nil
	}
	return prefs.AppleLanguages
}
