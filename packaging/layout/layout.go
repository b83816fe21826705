// Package layout names every place Lockstep occupies on a Mac. The launchd
// plists, the installer scripts, the package payload, the managed-preference
// documents and the daemon's defaults all read these constants, so a path is
// changed in one place only.
package layout

import (
	"regexp"
	"strings"
)

// Identifiers.
const (
	// DaemonLabel is the LaunchDaemon label of lockstepd and also the
	// preference domain MDM writes to.
	DaemonLabel = "dev.lockstep.agent"
	// MenuLabel is the LaunchAgent label of the menu-bar app.
	MenuLabel = "dev.lockstep.menu"
	// BundleID is the CFBundleIdentifier of Lockstep.app.
	BundleID = "dev.lockstep.menu"
	// PreferenceDomain is the managed-preference domain (MDM profiles).
	PreferenceDomain = DaemonLabel
	// PackageID is the component package identifier; the Installer's
	// receipt (pkgutil --pkgs) carries it.
	PackageID = "dev.lockstep.agent.pkg"
	// UninstallPackageID identifies the payload-free uninstall package.
	UninstallPackageID = "dev.lockstep.uninstall.pkg"
	// ProductName is the title shown by the Installer and the app name.
	ProductName = "Lockstep"
	// MinMacOS is the oldest macOS the package and the app accept.
	MinMacOS = "12.0"
	// ServiceAccount is the hidden SecureToken admin the daemon creates.
	ServiceAccount = "_lockstep"
)

// Places.
const (
	// SupportDir holds the binaries, the local config and the state.
	SupportDir = "/Library/Application Support/Lockstep"
	// DaemonPath is lockstepd. It must stay in a root-owned directory:
	// launchd runs it as root.
	DaemonPath = SupportDir + "/lockstepd"
	// CLIPath is the lockstep CLI binary; CLILink points at it.
	CLIPath = SupportDir + "/lockstep"
	// UninstallScriptPath is the uninstaller shipped in the payload.
	UninstallScriptPath = SupportDir + "/uninstall.sh"
	// LocalConfigPath is the local config file; managed preferences win.
	LocalConfigPath = SupportDir + "/config.plist"
	// StateDir is the daemon's default state directory.
	StateDir = SupportDir
	// StatusPlist is the daemon's default status file: the non-secret sync
	// state of every account, world-readable, for MDM inventory (Jamf Pro
	// extension attributes, osquery's plist table). SupportDir is 0755, so
	// every local user and tool can read it.
	StatusPlist = SupportDir + "/status.plist"
	// CLILink is the symlink the postinstall makes to CLIPath.
	CLILink = "/usr/local/bin/lockstep"
	// DaemonPlistPath is the LaunchDaemon property list.
	DaemonPlistPath = "/Library/LaunchDaemons/" + DaemonLabel + ".plist"
	// AgentPlistPath is the LaunchAgent property list of the menu-bar app.
	AgentPlistPath = "/Library/LaunchAgents/" + MenuLabel + ".plist"
	// AppPath is the menu-bar app bundle.
	AppPath = "/Applications/Lockstep.app"
	// AppExecutableName is CFBundleExecutable.
	AppExecutableName = "Lockstep"
	// AppExecutable is the program the LaunchAgent runs.
	AppExecutable = AppPath + "/Contents/MacOS/" + AppExecutableName
	// LogDir holds the daemon's and the installer scripts' logs.
	LogDir = "/Library/Logs/Lockstep"
	// DaemonLog receives lockstepd's stdout and stderr.
	DaemonLog = LogDir + "/lockstepd.log"
	// InstallLog receives the installer scripts' log lines.
	InstallLog = LogDir + "/install.log"
	// Socket is the local API's unix socket.
	Socket = "/var/run/lockstepd.sock"
	// ManagedPrefsPath is where macOS materialises the MDM profile's keys.
	ManagedPrefsPath = "/Library/Managed Preferences/" + PreferenceDomain + ".plist"
)

// Owners used in the payload.
const (
	RootUID  = 0
	WheelGID = 0
	AdminGID = 80
)

// SystemDir describes a directory that exists on every Mac. The payload
// must record it with the owner and mode macOS gives it, or the Installer
// would change a system directory's permissions.
type SystemDir struct {
	Path string
	Mode uint32
	UID  uint32
	GID  uint32
}

// SystemDirs lists the stock directories the payload passes through.
func SystemDirs() []SystemDir {
	return []SystemDir{
		{"/", 0o755, RootUID, WheelGID},
		{"/Applications", 0o775, RootUID, AdminGID},
		{"/Library", 0o755, RootUID, WheelGID},
		{"/Library/Application Support", 0o755, RootUID, AdminGID},
		{"/Library/LaunchAgents", 0o755, RootUID, WheelGID},
		{"/Library/LaunchDaemons", 0o755, RootUID, WheelGID},
	}
}

var numericVersion = regexp.MustCompile(`^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?`)

// BundleVersion turns a build version ("v1.4.2", "1.4.2-3-gabc",
// "7092413-dirty", "dev") into the dotted numeric form that
// CFBundleShortVersionString requires; anything without a leading number
// becomes "0.0.0".
func BundleVersion(v string) string {
	m := numericVersion.FindStringSubmatch(strings.TrimSpace(v))
	// A bare short commit hash such as "7092413" also starts with digits;
	// only accept a number when it is followed by a dot, the end, or a
	// pre-release/build separator, and is short enough to be a version.
	if m == nil || len(m[1]) > 6 {
		return "0.0.0"
	}
	rest := strings.TrimPrefix(strings.TrimSpace(v), "v")[len(strings.TrimPrefix(m[0], "v")):]
	if rest != "" && !strings.ContainsAny(rest[:1], "-+") {
		return "0.0.0"
	}
	parts := []string{m[1], "0", "0"}
	if m[2] != "" {
		parts[1] = m[2]
	}
	if m[3] != "" {
		parts[2] = m[3]
	}
	return strings.Join(parts, ".")
}
