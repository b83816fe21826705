package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const plistHead = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>`

func TestManagedPreferencesWin(t *testing.T) {
	local := write(t, "config.json", `{"DirectoryURL":"wss://dir.local.example","ExpiryWarningDays":7,"UserMap":{"alice":"alice.smith"}}`)
	managed := write(t, "dev.lockstep.agent.plist", plistHead+`
<key>DirectoryURL</key><string>wss://dir.corp.example:8443</string>
<key>ExpiryWarningDays</key><integer>21</integer>
<key>EnrollmentToken</key><string>tok-123</string>
</dict></plist>`)
	c, err := Load(local, managed)
	if err != nil {
		t.Fatal(err)
	}
	if c.DirectoryURL != "wss://dir.corp.example:8443" {
		t.Fatalf("managed preferences did not win: %+v", c)
	}
	if !slices.Equal(c.Deprecated, []string{"ExpiryWarningDays", "ExpiryWarningDays"}) {
		t.Fatalf("deprecated keys = %v, want ExpiryWarningDays from both sources", c.Deprecated)
	}
	if c.DirectoryUser("alice") != "alice.smith" || c.DirectoryUser("bob") != "bob" {
		t.Fatalf("UserMap not applied: %v", c.UserMap)
	}
	if c.Socket == "" || c.StateDir == "" || c.LogLevel != "info" || c.StatusPlist != DefaultStatusPlist {
		t.Fatalf("defaults missing: %+v", c)
	}
	if string(c.EnrollmentToken) != "tok-123" {
		t.Fatal("token not read")
	}
	if s := fmt.Sprintf("%v", c.Redacted()); strings.Contains(s, "tok-123") || strings.Contains(fmt.Sprintf("%+v", c), "tok-123") {
		t.Fatalf("token printed: %s", s)
	}
	if len(c.Sources) != 2 {
		t.Fatalf("Sources = %v", c.Sources)
	}
}

func TestMissingFilesUseDefaultsButNeedURL(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.plist"), "")
	if err == nil || !strings.Contains(err.Error(), "DirectoryURL: is required") {
		t.Fatalf("err = %v", err)
	}
}

func TestInvalid(t *testing.T) {
	ca := write(t, "notpem.pem", "hello")
	tests := []struct {
		name, doc, want string
	}{
		{"unknown key", `{"DirectoryURL":"wss://d","DirectoryUrl":"x"}`, `unknown key "DirectoryUrl"`},
		{"plain ws remote", `{"DirectoryURL":"ws://dir.example.com"}`, "plain ws:// is allowed only to a loopback"},
		{"http scheme", `{"DirectoryURL":"https://dir.example.com"}`, "scheme must be wss://"},
		{"relative socket", `{"DirectoryURL":"wss://d","Socket":"lockstepd.sock"}`, "Socket: must be an absolute path"},
		{"long socket", `{"DirectoryURL":"wss://d","Socket":"/` + strings.Repeat("s", 120) + `"}`, "at most 103"},
		{"relative status plist", `{"DirectoryURL":"wss://d","StatusPlist":"status.plist"}`, "StatusPlist: must be an absolute path of a file"},
		{"status plist a directory", `{"DirectoryURL":"wss://d","StatusPlist":"/var/db/"}`, "StatusPlist: must be an absolute path of a file"},
		{"bad level", `{"DirectoryURL":"wss://d","LogLevel":"chatty"}`, "LogLevel: must be debug"},
		{"bad map", `{"DirectoryURL":"wss://d","UserMap":{"alice":7}}`, `value for "alice" must be a string`},
		{"bad ca", `{"DirectoryURL":"wss://d","DirectoryCA":"` + ca + `"}`, "holds no PEM certificate"},
		{"not a dict", `[1]`, "not a valid plist dictionary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(write(t, "c.json", tt.doc), "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// ExpiryWarningDays is ignored whatever it holds: the directory's policy
// owns the warning window, and an old profile must not stop lockstepd.
func TestDeprecatedKeyNeverStopsLockstepd(t *testing.T) {
	for _, v := range []string{`7`, `"ten"`, `1.5`, `400`} {
		c, err := Load(write(t, "c.json", `{"DirectoryURL":"wss://d","ExpiryWarningDays":`+v+`}`), "")
		if err != nil || !slices.Equal(c.Deprecated, []string{"ExpiryWarningDays"}) {
			t.Errorf("ExpiryWarningDays %s: %v, deprecated %v", v, err, c.Deprecated)
		}
	}
}

// IT may turn the status file off with an empty path, or move it.
func TestStatusPlistOffOrMoved(t *testing.T) {
	for doc, want := range map[string]string{
		`{"DirectoryURL":"wss://d","StatusPlist":""}`:                       "",
		`{"DirectoryURL":"wss://d","StatusPlist":"/var/db/lockstep.plist"}`: "/var/db/lockstep.plist",
	} {
		c, err := Load(write(t, "c.json", doc), "")
		if err != nil || c.StatusPlist != want {
			t.Errorf("%s: StatusPlist %q, err %v; want %q", doc, c.StatusPlist, err, want)
		}
	}
}

func TestLoopbackWSAllowed(t *testing.T) {
	for _, u := range []string{"ws://127.0.0.1:8443", "ws://localhost:1", "ws://[::1]:9", "wss://dir.example.com"} {
		if err := CheckDirectoryURL(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestManagedUnknownKeyNamesFile(t *testing.T) {
	managed := write(t, "m.plist", plistHead+`<key>DirectoryURL</key><string>wss://d</string><key>Bogus</key><true/></dict></plist>`)
	_, err := Load("", managed)
	if err == nil || !strings.Contains(err.Error(), managed) || !strings.Contains(err.Error(), `"Bogus"`) {
		t.Fatalf("err = %v", err)
	}
}
