package layout

import (
	"strings"
	"testing"
)

func TestBundleVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.4.2": "1.4.2", "1.4.2": "1.4.2", "1.4.2-3-gabc1234": "1.4.2", "v2": "2.0.0", "v2.1": "2.1.0",
		"1.0.0+build.5": "1.0.0", "dev": "0.0.0", "": "0.0.0", "7092413-dirty": "0.0.0", "abc1234": "0.0.0",
		"123abcd": "0.0.0", "1.2.3.4": "0.0.0",
	} {
		if got := BundleVersion(in); got != want {
			t.Errorf("BundleVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPlacesAreConsistent guards the relations the scripts and plists rely on.
func TestPlacesAreConsistent(t *testing.T) {
	for _, p := range []string{DaemonPath, CLIPath, UninstallScriptPath, LocalConfigPath} {
		if !strings.HasPrefix(p, SupportDir+"/") {
			t.Errorf("%s is outside %s", p, SupportDir)
		}
	}
	if !strings.HasPrefix(AppExecutable, AppPath+"/Contents/MacOS/") {
		t.Errorf("app executable %s", AppExecutable)
	}
	if !strings.HasPrefix(DaemonLog, LogDir+"/") || !strings.HasPrefix(InstallLog, LogDir+"/") {
		t.Error("logs outside the log directory")
	}
	if !strings.HasSuffix(DaemonPlistPath, "/"+DaemonLabel+".plist") || !strings.HasSuffix(AgentPlistPath, "/"+MenuLabel+".plist") {
		t.Error("plist names do not match their labels")
	}
}
