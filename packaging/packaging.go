// Package packaging assembles Lockstep's macOS installer packages from
// darwin binaries: the main package (lockstepd, the lockstep CLI, the
// uninstaller, the launchd jobs, and Lockstep.app when it was built on a
// Mac) and the payload-free uninstall package. The formats live in the
// sub-packages (xar, bom, cpio, pkg, macho), the names and places in
// layout, the property lists in launchd, the scripts in scripts.
package packaging

import (
	"bytes"
	"debug/macho"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"howett.net/plist"

	"github.com/lockstep-dev/lockstep/packaging/launchd"
	"github.com/lockstep-dev/lockstep/packaging/layout"
	pmacho "github.com/lockstep-dev/lockstep/packaging/macho"
	"github.com/lockstep-dev/lockstep/packaging/pkg"
	"github.com/lockstep-dev/lockstep/packaging/scripts"
)

// HostArchitectures are the architectures the package runs natively.
const HostArchitectures = "arm64,x86_64"

// Component file names inside the product archives.
const (
	MainComponent      = "Lockstep.pkg"
	UninstallComponent = "LockstepUninstall.pkg"
)

// Inputs are what the main package is built from.
type Inputs struct {
	Version string
	// MTime stamps every payload entry (SOURCE_DATE_EPOCH).
	MTime time.Time
	// Daemon and CLI are the thin darwin executables of lockstepd and
	// lockstep, one per architecture; they are combined into universal
	// binaries. A single already-universal file is taken as it is.
	Daemon [][]byte
	CLI    [][]byte
	// AppDir is a Lockstep.app bundle built on a Mac (empty: none).
	AppDir string
}

// Universal combines thin darwin executables into one universal binary,
// checking each is a Mach-O executable. One universal input is returned
// unchanged after the same check of its slices.
func Universal(files [][]byte) ([]byte, error) {
	if len(files) == 0 {
		return nil, errors.New("packaging: no binary")
	}
	if len(files) == 1 {
		if ff, err := macho.NewFatFile(bytes.NewReader(files[0])); err == nil {
			defer ff.Close()
			for _, a := range ff.Arches {
				if a.Type != macho.TypeExec {
					return nil, fmt.Errorf("packaging: universal slice %v is not an executable", a.Cpu)
				}
			}
			return files[0], nil
		}
	}
	for i, f := range files {
		m, err := macho.NewFile(bytes.NewReader(f))
		if err != nil {
			return nil, fmt.Errorf("packaging: binary %d is not a darwin Mach-O file: %w", i, err)
		}
		if m.Type != macho.TypeExec {
			return nil, fmt.Errorf("packaging: binary %d is a Mach-O %v, not an executable", i, m.Type)
		}
	}
	return pmacho.Fat(files...)
}

func marshal(v any) []byte {
	b, err := launchd.Marshal(v)
	if err != nil {
		panic(err) // fixed struct types; a test marshals every one
	}
	return b
}

// checkApp verifies a Lockstep.app bundle built by `make app`: its
// Info.plist names the right identifier and executable, and the
// executable is a darwin Mach-O program.
func checkApp(dir string) error {
	info, err := os.ReadFile(filepath.Join(dir, "Contents", "Info.plist"))
	if err != nil {
		return fmt.Errorf("packaging: app bundle: %w", err)
	}
	var ai launchd.AppInfo
	if _, err := plist.Unmarshal(info, &ai); err != nil {
		return fmt.Errorf("packaging: app Info.plist: %w", err)
	}
	if ai.CFBundleIdentifier != layout.BundleID || ai.CFBundleExecutable != layout.AppExecutableName || !ai.LSUIElement {
		return fmt.Errorf("packaging: app Info.plist: identifier %q, executable %q, LSUIElement %v; want %s, %s, true",
			ai.CFBundleIdentifier, ai.CFBundleExecutable, ai.LSUIElement, layout.BundleID, layout.AppExecutableName)
	}
	exe, err := os.ReadFile(filepath.Join(dir, "Contents", "MacOS", layout.AppExecutableName))
	if err != nil {
		return fmt.Errorf("packaging: app executable: %w", err)
	}
	if _, err := Universal([][]byte{exe}); err != nil {
		return fmt.Errorf("packaging: app executable: %w", err)
	}
	return nil
}

// MainPayload returns the payload of the main package.
func MainPayload(in Inputs) (*pkg.Tree, error) {
	daemon, err := Universal(in.Daemon)
	if err != nil {
		return nil, fmt.Errorf("lockstepd: %w", err)
	}
	cli, err := Universal(in.CLI)
	if err != nil {
		return nil, fmt.Errorf("lockstep: %w", err)
	}
	uninstall, err := scripts.Render(scripts.Uninstall, scripts.Production(in.Version))
	if err != nil {
		return nil, err
	}
	t := pkg.NewTree()
	withApp := in.AppDir != ""
	for _, d := range layout.SystemDirs() {
		if (d.Path == "/Applications" || d.Path == "/Library/LaunchAgents") && !withApp {
			continue
		}
		if err := t.Dir(d.Path, d.Mode, d.UID, d.GID); err != nil {
			return nil, err
		}
	}
	const root, wheel = layout.RootUID, layout.WheelGID
	for _, f := range []struct {
		path string
		data []byte
		mode uint32
	}{
		{layout.DaemonPath, daemon, 0o755},
		{layout.CLIPath, cli, 0o755},
		{layout.UninstallScriptPath, uninstall, 0o755},
		{layout.DaemonPlistPath, marshal(launchd.Daemon()), 0o644},
	} {
		if err := t.File(f.path, f.data, f.mode, root, wheel); err != nil {
			return nil, err
		}
	}
	if withApp {
		if err := checkApp(in.AppDir); err != nil {
			return nil, err
		}
		if err := t.CopyDir(layout.AppPath, in.AppDir, root, wheel); err != nil {
			return nil, err
		}
		if err := t.File(layout.AgentPlistPath, marshal(launchd.MenuAgent()), 0o644, root, wheel); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// MainProduct returns the main package: Lockstep-VERSION.pkg.
func MainProduct(in Inputs) (pkg.Product, error) {
	t, err := MainPayload(in)
	if err != nil {
		return pkg.Product{}, err
	}
	v := scripts.Production(in.Version)
	pre, err := scripts.Render(scripts.Preinstall, v)
	if err != nil {
		return pkg.Product{}, err
	}
	post, err := scripts.Render(scripts.Postinstall, v)
	if err != nil {
		return pkg.Product{}, err
	}
	return pkg.Product{
		Title:             layout.ProductName,
		HostArchitectures: HostArchitectures,
		MinOS:             layout.MinMacOS,
		MTime:             in.MTime,
		Components: []pkg.Component{{
			Name: MainComponent, ID: layout.PackageID, Version: in.Version, Payload: t,
			Scripts: map[string][]byte{"preinstall": pre, "postinstall": post},
		}},
	}, nil
}

// UninstallProduct returns the payload-free uninstall package: its
// postinstall is the uninstaller (without --keep-state).
func UninstallProduct(version string, mtime time.Time) (pkg.Product, error) {
	un, err := scripts.Render(scripts.Uninstall, scripts.Production(version))
	if err != nil {
		return pkg.Product{}, err
	}
	return pkg.Product{
		Title:             layout.ProductName + " Uninstaller",
		HostArchitectures: HostArchitectures,
		MinOS:             layout.MinMacOS,
		MTime:             mtime,
		Components: []pkg.Component{{
			Name: UninstallComponent, ID: layout.UninstallPackageID, Version: version,
			Scripts: map[string][]byte{"postinstall": un},
		}},
	}, nil
}
