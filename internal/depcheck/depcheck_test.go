package depcheck

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/lockstep-dev/lockstep"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// list returns the module's packages with their non-test imports.
func list(t *testing.T, env ...string) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Env = append(cmd.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
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
		t.Fatalf("go list: %v", err)
	}
	return pkgs
}

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

func under(path, dir string) bool {
	r := rel(path)
	return r == dir || strings.HasPrefix(r, dir+"/")
}

// TestImportRules checks who may import whom inside the module.
func TestImportRules(t *testing.T) {
	rules := []struct {
		from    string
		allowed []string // module dirs it may import (besides its own subtree)
	}{
		{"protocol", nil},
		{"platform", nil},
		{"version", nil},
		{"localapi", []string{"protocol"}},
		{"directory", []string{"protocol", "version"}},
		// The directories behind the hub (directory/source/ad, ...) use
		// their contract (directory/source, within this subtree) and
		// protocol only: never the hub or its store.
		{"directory/source", []string{"protocol"}},
		{"agent", []string{"platform", "protocol", "localapi", "version"}},
		{"ui", []string{"localapi", "protocol", "version"}},
		{"macsim", nil},
		{"packaging", []string{"version"}},
	}
	pkgs := list(t)
	checked := 0
	for _, p := range pkgs {
		for _, r := range rules {
			if !under(p.ImportPath, r.from) {
				continue
			}
			checked++
			for _, imp := range p.Imports {
				if !strings.HasPrefix(imp, module) || under(imp, r.from) {
					continue
				}
				ok := false
				for _, a := range r.allowed {
					ok = ok || under(imp, a)
				}
				if !ok {
					t.Errorf("%s imports %s: %s may only use %v", rel(p.ImportPath), rel(imp), r.from, r.allowed)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d packages checked: is the module layout as expected?", checked)
	}
}

// TestDaemonHasNoGUI keeps the menu-bar toolkit out of the daemon and the
// CLI, which must stay small and cgo-free on macOS.
func TestDaemonHasNoGUI(t *testing.T) {
	pkgs := list(t, "GOOS=darwin", "GOARCH=arm64", "CGO_ENABLED=0")
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
