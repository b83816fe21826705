package cli

import (
	"bytes"
	"debug/macho"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/packaging/profile"
)

func darwinHello(t *testing.T, arch string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hello-"+arch)
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "../../packaging/testdata/hello")
	cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH="+arch, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func TestBuildInspectLipo(t *testing.T) {
	arm, amd := darwinHello(t, "arm64"), darwinHello(t, "amd64")
	dir := t.TempDir()
	out := filepath.Join(dir, "Lockstep-1.0.0.pkg")
	un := filepath.Join(dir, "Lockstep-Uninstall-1.0.0.pkg")
	var stdout bytes.Buffer
	if err := run([]string{"build", "--version", "1.0.0", "--daemon", arm, "--cli", amd, "--out", out, "--uninstall-out", un, "--mtime", "1700000000"}, nil, &stdout); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{out, un} {
		stdout.Reset()
		if err := run([]string{"inspect", p}, nil, &stdout); err != nil {
			t.Fatalf("inspect %s: %v\n%s", p, err, stdout.String())
		}
		if !strings.Contains(stdout.String(), "OK: every checksum verified") {
			t.Errorf("inspect output:\n%s", stdout.String())
		}
	}
	if !strings.Contains(stdout.String(), "dev.lockstep.uninstall.pkg") {
		t.Errorf("uninstall package report:\n%s", stdout.String())
	}
	b, _ := os.ReadFile(out)
	b[len(b)-100] ^= 1
	bad := filepath.Join(dir, "bad.pkg")
	os.WriteFile(bad, b, 0o644)
	if err := run([]string{"inspect", "-q", bad}, nil, &stdout); err == nil {
		t.Error("inspect accepted a corrupt package")
	}

	fat := filepath.Join(dir, "fat")
	if err := run([]string{"lipo", "-o", fat, arm, amd}, nil, &stdout); err != nil {
		t.Fatal(err)
	}
	ff, err := macho.OpenFat(fat)
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	if len(ff.Arches) != 2 {
		t.Errorf("%d slices", len(ff.Arches))
	}
	if st, _ := os.Stat(fat); st.Mode().Perm() != 0o755 {
		t.Errorf("universal binary mode %v", st.Mode())
	}
}

func TestProfileTokenFromStdin(t *testing.T) {
	out := filepath.Join(t.TempDir(), "p.mobileconfig")
	err := run([]string{"profile", "--directory-url", "wss://dir.example.com/agent", "--token-stdin", "-o", out},
		strings.NewReader("s3cret-token\n"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	s, err := profile.Settings(b)
	if err != nil {
		t.Fatal(err)
	}
	if s["EnrollmentToken"] != "s3cret-token" || s["DirectoryURL"] != "wss://dir.example.com/agent" {
		t.Errorf("settings %v", s)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Errorf("a profile holding a token is %v, want 0600", st.Mode())
	}
	if err := run([]string{"profile", "--directory-url", "ws://dir.example.com"}, nil, &bytes.Buffer{}); err == nil {
		t.Error("plain ws:// to a remote host accepted")
	}
	var tmpl bytes.Buffer
	if err := run([]string{"profile"}, nil, &tmpl); err != nil || !bytes.Equal(tmpl.Bytes(), profile.Template()) {
		t.Errorf("template: %v", err)
	}
}

func TestPlistAndScripts(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"plist", "info", "--version", "v2.3.4", "--icon"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<string>2.3.4</string>", "<key>LSUIElement</key>", "Lockstep.icns"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Info.plist lacks %s", want)
		}
	}
	dir := t.TempDir()
	if err := run([]string{"scripts", "--version", "1", "--out", dir}, nil, &out); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"preinstall", "postinstall", "uninstall"} {
		if st, err := os.Stat(filepath.Join(dir, n)); err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v", n, err)
		}
	}
	for _, bad := range [][]string{{}, {"nope"}, {"build"}, {"plist", "x"}, {"inspect"}} {
		if err := run(bad, nil, &out); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
