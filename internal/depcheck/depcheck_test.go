package depcheck

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = Module

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// list returns the module's packages with their non-test imports, as go
// list sees them with env and the given extra flags.
func list(t *testing.T, env []string, flags ...string) map[string]pkg {
	t.Helper()
	args := append([]string{"list", "-json"}, flags...)
	cmd := exec.Command("go", append(args, module+"/...")...)
	cmd.Env = append(cmd.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(out)
	pkgs := map[string]pkg{}
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = p
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	return pkgs
}

func packages(m map[string]pkg) []Package {
	var out []Package
	for _, p := range m {
		out = append(out, Package{ImportPath: p.ImportPath, Imports: p.Imports, Deps: p.Deps})
	}
	return out
}

// TestImportRules checks who may import whom inside the module.
func TestImportRules(t *testing.T) {
	pkgs := list(t, nil)
	for _, v := range Check(packages(pkgs)) {
		t.Error(v)
	}
	governed := 0
	for p := range pkgs {
		if _, ok := ruleFor(p); ok {
			governed++
		}
	}
	if governed < 18 {
		t.Fatalf("only %d packages governed: is the module laid out as expected?", governed)
	}
}

// A deliberate violation, put in the tree through go list's -overlay (a
// file the build sees that is not on disk), is caught: ui importing the
// daemon, agent/engine importing the local API, a directory source
// importing the directory, and ui reaching platform through a package it
// may import.
func TestDeliberateViolationsFail(t *testing.T) {
	dir := t.TempDir()
	root := moduleRoot(t)
	files := map[string]string{
		"ui/zz_violation.go":                  "package ui\nimport _ \"" + module + "/agent/engine\"\n",
		"agent/engine/zz_violation.go":        "package engine\nimport _ \"" + module + "/localapi\"\n",
		"directory/source/zz/zz_violation.go": "package zz\nimport _ \"" + module + "/directory\"\n",
		"localapi/zz_violation.go":            "package localapi\nimport _ \"" + module + "/platform\"\n",
	}
	overlay := map[string]map[string]string{"Replace": {}}
	for name, src := range files {
		p := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		overlay["Replace"][filepath.Join(root, name)] = p
	}
	b, _ := json.Marshal(overlay)
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, v := range Check(packages(list(t, nil, "-overlay", ov))) {
		got[rel(v.Package)+" -> "+rel(v.Imports)] = true
	}
	for _, want := range []string{
		"ui -> agent/engine",
		"agent/engine -> localapi",
		"directory/source/zz -> directory",
		"ui -> platform", // through localapi, which ui may import
	} {
		if !got[want] {
			t.Errorf("the violation %s was not caught (caught: %v)", want, got)
		}
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// Every command is flags and wiring only: its non-test files are a main
// that calls a package.
func TestMainsAreThin(t *testing.T) {
	root := moduleRoot(t)
	dirs, err := filepath.Glob(filepath.Join(root, "cmd", "*"))
	if err != nil || len(dirs) < 5 {
		t.Fatalf("commands: %v %v", dirs, err)
	}
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(d, "*.go"))
		code := 0
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(string(b), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "//") {
					code++
				}
			}
		}
		if code > 12 {
			t.Errorf("%s has %d lines of code: a command's logic belongs in a package", rel(d), code)
		}
	}
}

// TestDaemonHasNoGUI keeps the menu-bar toolkit out of the daemon and the
// CLI, which must stay small and cgo-free on macOS.
func TestDaemonHasNoGUI(t *testing.T) {
	pkgs := list(t, []string{"GOOS=darwin", "GOARCH=arm64", "CGO_ENABLED=0"})
	for _, cmd := range []string{"cmd/lockstepd", "cmd/lockstep", "cmd/lockstep-directory"} {
		p, ok := pkgs[module+"/"+cmd]
		if !ok {
			t.Errorf("%s not found", cmd)
			continue
		}
		for _, d := range p.Deps {
			if strings.HasPrefix(d, "fyne.io/") || strings.HasPrefix(d, "github.com/go-gl/") || strings.HasPrefix(d, "github.com/godbus/") {
				t.Errorf("%s depends on %s", cmd, d)
			}
		}
	}
}
