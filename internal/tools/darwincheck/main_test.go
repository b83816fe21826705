package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestCatchesErrorsInDarwinCgoFiles(t *testing.T) {
	var out bytes.Buffer
	n, err := check("testdata/cgomod", []string{"./..."}, &out)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if n != 2 {
		t.Errorf("%d errors, want 2:\n%s", n, got)
	}
	for _, want := range []string{
		`bad/bad_darwin.go:11:.*too many arguments in call to helper`,
		`bad/bad_darwin.go:11:.*undefined: missing`,
	} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("no error matching %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "good") || strings.Contains(got, "linuxonly") || strings.Contains(got, "C.value") {
		t.Errorf("errors outside the broken file:\n%s", got)
	}
}

// A darwin&&cgo file calling a cgo-only API of a dependency (go-keychain,
// as platform does) is checked against that API.
func TestChecksDependencyCgoAPI(t *testing.T) {
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	dir := t.TempDir()
	root := filepath.Join("..", "..", "..")
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	mod = regexp.MustCompile(`(?m)^module .*$`).ReplaceAll(mod, []byte("module example.com/kc"))
	src := "//go:build darwin && cgo\n\npackage kc\n\nimport \"github.com/keybase/go-keychain\"\n\n" +
		"func Get() ([]byte, error) { return keychain.GetGenericPassword(\"svc\", \"acct\", \"\") }\n"
	for name, data := range map[string][]byte{"go.mod": mod, "go.sum": sum, "kc_darwin.go": []byte(src)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	n, err := check(dir, []string{"./..."}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || !strings.Contains(out.String(), "not enough arguments in call to keychain.GetGenericPassword") {
		t.Errorf("%d errors:\n%s", n, out.String())
	}
}

// The module's own darwin cgo code (platform's System keychain store) is clean.
func TestPlatformIsClean(t *testing.T) {
	var out bytes.Buffer
	n, err := check(filepath.Join("..", "..", ".."), []string{"./platform/..."}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d errors in platform for darwin/cgo:\n%s", n, out.String())
	}
}
