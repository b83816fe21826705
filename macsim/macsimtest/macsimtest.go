// Package macsimtest builds the macOS simulator and simulated Macs for
// tests: build the binary once (in TestMain), then New per test.
package macsimtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/macsim"
)

// Build compiles cmd/macsim into a new directory under dir ("" for the
// system temp dir) that simulated users can read, and returns the binary and
// a cleanup that removes it. Call it once per test binary (TestMain). When
// MACSIM_BIN names an existing binary, that one is used (for test binaries
// run where no Go toolchain is usable, e.g. as an unprivileged user).
func Build(dir string) (bin string, cleanup func(), err error) {
	if p := os.Getenv("MACSIM_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", nil, fmt.Errorf("MACSIM_BIN: %w", err)
		}
		return p, func() {}, nil
	}
	out, err := os.MkdirTemp(dir, "macsim-bin-*")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(out) }
	if err := os.Chmod(out, 0o755); err != nil {
		cleanup()
		return "", nil, err
	}
	bin = filepath.Join(out, "macsim")
	goTool := "go"
	if _, err := exec.LookPath(goTool); err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goTool, "build", "-o", bin, "github.com/lockstep-dev/lockstep/cmd/macsim")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("build macsim: %v: %s", err, b)
	}
	return bin, cleanup, nil
}

// New builds a simulated Mac from spec with its tools, in a fresh directory
// every simulated uid can traverse (t.TempDir is 0700 and would lock them
// out), removed when the test ends.
func New(t testing.TB, bin string, spec macsim.Spec) *macsim.Sim {
	t.Helper()
	dir, err := os.MkdirTemp("", "macsim-mac-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := macsim.Init(dir, spec); err != nil {
		t.Fatalf("macsim init: %v", err)
	}
	if err := macsim.InstallTools(dir, bin); err != nil {
		t.Fatalf("macsim tools: %v", err)
	}
	sim, err := macsim.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return sim
}

// AssertNoSecrets fails the test if any secret appears in the argv or the
// environment of any recorded tool invocation, or in plain text in the
// simulator's state or record files. It returns the invocations checked.
func AssertNoSecrets(t testing.TB, sim *macsim.Sim, secrets ...[]byte) []macsim.Invocation {
	t.Helper()
	invs, err := sim.Invocations()
	if err != nil {
		t.Fatalf("read invocation record: %v", err)
	}
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		for _, inv := range invs {
			for _, a := range inv.Argv {
				if strings.Contains(a, string(s)) {
					t.Errorf("secret in argv of %s %s: %q", inv.Tool, inv.Verb, inv.Argv)
				}
			}
			for k, v := range inv.Env {
				if strings.Contains(k, string(s)) || strings.Contains(v, string(s)) {
					t.Errorf("secret in environment of %s %s (%s)", inv.Tool, inv.Verb, k)
				}
			}
		}
		for _, f := range []string{sim.RecordPath(), filepath.Join(sim.Dir, "state", "state.json")} {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, s) {
				t.Errorf("secret in plain text in %s", f)
			}
		}
	}
	return invs
}
