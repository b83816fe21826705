// Package scripts renders Lockstep's installer scripts (preinstall,
// postinstall) and its uninstaller from the POSIX sh templates in this
// directory. Every path and label comes from packaging/layout through
// Vars, so tests render the very same scripts against a fake root.
package scripts

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"

	"github.com/lockstep-dev/lockstep/packaging/layout"
)

//go:embed *.sh.tmpl
var files embed.FS

// Script names.
const (
	Preinstall  = "preinstall"
	Postinstall = "postinstall"
	Uninstall   = "uninstall"
)

// Vars are the values substituted into the scripts.
type Vars struct {
	// Path is the PATH the scripts set for themselves.
	Path            string
	Version         string
	DaemonLabel     string
	MenuLabel       string
	PackageID       string
	SupportDir      string
	DaemonPath      string
	CLIPath         string
	CLILink         string
	UninstallScript string
	DaemonPlist     string
	AgentPlist      string
	AppPath         string
	AppExecutable   string
	LogDir          string
	InstallLog      string
	Socket          string
	// StatusPlist is lockstepd's status file for MDM, removed with the
	// daemon so that inventory stops reporting a Mac as in sync.
	StatusPlist string
	// Console is the console device whose owner is the GUI user.
	Console string
	// SetupDone exists once Setup Assistant has finished.
	SetupDone string
	// BootstrapTries bounds the launchctl bootstrap retries (1 s apart).
	BootstrapTries int
}

// Production returns the values for a real Mac.
func Production(version string) Vars {
	return Vars{
		Path:            "/usr/bin:/bin:/usr/sbin:/sbin",
		Version:         version,
		DaemonLabel:     layout.DaemonLabel,
		MenuLabel:       layout.MenuLabel,
		PackageID:       layout.PackageID,
		SupportDir:      layout.SupportDir,
		DaemonPath:      layout.DaemonPath,
		CLIPath:         layout.CLIPath,
		CLILink:         layout.CLILink,
		UninstallScript: layout.UninstallScriptPath,
		DaemonPlist:     layout.DaemonPlistPath,
		AgentPlist:      layout.AgentPlistPath,
		AppPath:         layout.AppPath,
		AppExecutable:   layout.AppExecutable,
		LogDir:          layout.LogDir,
		InstallLog:      layout.InstallLog,
		Socket:          layout.Socket,
		StatusPlist:     layout.StatusPlist,
		Console:         "/dev/console",
		SetupDone:       "/var/db/.AppleSetupDone",
		BootstrapTries:  30,
	}
}

// Rooted returns v with every file-system path moved under root, for
// running the scripts against a fake root in tests.
func (v Vars) Rooted(root string) Vars {
	r := v
	for _, p := range []*string{&r.SupportDir, &r.DaemonPath, &r.CLIPath, &r.CLILink, &r.UninstallScript,
		&r.DaemonPlist, &r.AgentPlist, &r.AppPath, &r.AppExecutable, &r.LogDir, &r.InstallLog, &r.Socket,
		&r.StatusPlist, &r.Console, &r.SetupDone} {
		*p = root + *p
	}
	return r
}

// shq quotes s for POSIX sh.
func shq(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var tmpl = template.Must(template.New("").Funcs(template.FuncMap{"shq": shq}).ParseFS(files, "*.sh.tmpl"))

// Render returns the script name (Preinstall, Postinstall or Uninstall)
// rendered with v.
func Render(name string, v Vars) ([]byte, error) {
	if v.BootstrapTries < 1 {
		return nil, fmt.Errorf("scripts: BootstrapTries %d", v.BootstrapTries)
	}
	var b bytes.Buffer
	if err := tmpl.ExecuteTemplate(&b, name+".sh.tmpl", v); err != nil {
		return nil, fmt.Errorf("scripts: render %s: %w", name, err)
	}
	return b.Bytes(), nil
}
