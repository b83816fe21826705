// Package testtool finds the outside programs that tests check Lockstep
// against (bsdtar, 7zz, shellcheck, oathtool, Xvfb, dbus-daemon): a missing
// one skips the test on a developer's machine and fails it in CI (CI=true),
// where .ci/run installs it.
package testtool

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// Need returns the path of program name; pkg names the Debian package that
// provides it, for the failure message.
func Need(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI but not installed (Debian package %s; see .ci/run)", name, pkg)
		}
		t.Skipf("%s not installed (Debian package %s)", name, pkg)
	}
	return p
}

// Run runs a program in the C locale and UTC and returns its combined
// output.
func Run(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	err := cmd.Run()
	return out.String(), err
}
