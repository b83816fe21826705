package launchd

import (
	"reflect"
	"strings"
	"testing"

	"howett.net/plist"
)

func decode(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `<?xml version="1.0" encoding="UTF-8"?>`) || !strings.Contains(string(b), "<!DOCTYPE plist") {
		t.Fatalf("not an XML plist:\n%s", b)
	}
	var m map[string]any
	format, err := plist.Unmarshal(b, &m)
	if err != nil || format != plist.XMLFormat {
		t.Fatalf("round trip: %v (format %d)\n%s", err, format, b)
	}
	return m
}

func TestDaemonPlist(t *testing.T) {
	m := decode(t, Daemon())
	want := map[string]any{
		"Label":             "dev.lockstep.agent",
		"ProgramArguments":  []any{"/Library/Application Support/Lockstep/lockstepd", "run"},
		"UserName":          "root",
		"RunAtLoad":         true,
		"KeepAlive":         true,
		"ProcessType":       "Standard",
		"StandardOutPath":   "/Library/Logs/Lockstep/lockstepd.log",
		"StandardErrorPath": "/Library/Logs/Lockstep/lockstepd.log",
	}
	for k, v := range want {
		if !reflect.DeepEqual(m[k], v) {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	if n, ok := m["ThrottleInterval"].(uint64); !ok || n < 1 {
		t.Errorf("ThrottleInterval %#v", m["ThrottleInterval"])
	}
	if _, ok := m["LimitLoadToSessionType"]; ok {
		t.Error("a LaunchDaemon must not limit itself to a session type")
	}
}

func TestMenuAgentPlist(t *testing.T) {
	m := decode(t, MenuAgent())
	want := map[string]any{
		"Label":                  "dev.lockstep.menu",
		"ProgramArguments":       []any{"/Applications/Lockstep.app/Contents/MacOS/Lockstep"},
		"LimitLoadToSessionType": "Aqua",
		"RunAtLoad":              true,
		"KeepAlive":              map[string]any{"SuccessfulExit": false},
		"ProcessType":            "Interactive",
	}
	for k, v := range want {
		if !reflect.DeepEqual(m[k], v) {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	for _, k := range []string{"UserName", "StandardOutPath"} {
		if _, ok := m[k]; ok {
			t.Errorf("the agent sets %s; it runs as the logged-in user", k)
		}
	}
}

func TestJobRoundTrip(t *testing.T) {
	for _, j := range []Job{Daemon(), MenuAgent()} {
		b, err := Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		var back Job
		if _, err := plist.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, j) {
			t.Errorf("round trip changed the job:\n got %+v\nwant %+v", back, j)
		}
	}
}

func TestInfoPlist(t *testing.T) {
	m := decode(t, Info("v1.4.2-3-gabcdef", true))
	want := map[string]any{
		"CFBundleIdentifier":         "dev.lockstep.menu",
		"CFBundleExecutable":         "Lockstep",
		"CFBundlePackageType":        "APPL",
		"CFBundleShortVersionString": "1.4.2",
		"CFBundleVersion":            "1.4.2",
		"LSUIElement":                true,
		"LSMinimumSystemVersion":     "12.0",
		"CFBundleIconFile":           IconFile,
	}
	for k, v := range want {
		if !reflect.DeepEqual(m[k], v) {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	for _, k := range []string{"NSHumanReadableCopyright", "CFBundleName", "CFBundleInfoDictionaryVersion"} {
		if s, _ := m[k].(string); s == "" {
			t.Errorf("%s missing", k)
		}
	}
	if _, ok := decode(t, Info("dev", false))["CFBundleIconFile"]; ok {
		t.Error("icon named without an icon")
	}
}
