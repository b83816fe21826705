// Package launchd is the one source of the property lists Lockstep
// installs: the LaunchDaemon that runs lockstepd as root, the LaunchAgent
// that starts the menu-bar app in every GUI session, and the app bundle's
// Info.plist. Each is a Go struct marshalled with howett.net/plist, so the
// package build, `make app` and the tests all use the same values.
package launchd

import (
	"fmt"

	"howett.net/plist"

	"github.com/lockstep-dev/lockstep/packaging/layout"
)

// KeepAlive is launchd's KeepAlive: either a plain boolean or a dictionary
// of conditions. Only SuccessfulExit is used here.
type KeepAlive struct {
	// Always keeps the job running whatever happens (KeepAlive true).
	Always bool
	// SuccessfulExit, when set, restarts the job only if its exit status
	// was (true) or was not (false) zero; false means "restart after a
	// crash, not after a clean quit".
	SuccessfulExit *bool
}

// MarshalPlist encodes the boolean or the dictionary form.
func (k KeepAlive) MarshalPlist() (any, error) {
	if k.SuccessfulExit == nil {
		return k.Always, nil
	}
	return map[string]bool{"SuccessfulExit": *k.SuccessfulExit}, nil
}

// UnmarshalPlist decodes either form.
func (k *KeepAlive) UnmarshalPlist(unmarshal func(any) error) error {
	var b bool
	if err := unmarshal(&b); err == nil {
		*k = KeepAlive{Always: b}
		return nil
	}
	var m map[string]bool
	if err := unmarshal(&m); err != nil {
		return fmt.Errorf("launchd: KeepAlive is neither a boolean nor a dictionary: %w", err)
	}
	*k = KeepAlive{}
	if v, ok := m["SuccessfulExit"]; ok {
		k.SuccessfulExit = &v
	}
	return nil
}

// Job is a launchd job definition (launchd.plist(5)), limited to the keys
// Lockstep uses.
type Job struct {
	Label                       string    `plist:"Label"`
	ProgramArguments            []string  `plist:"ProgramArguments"`
	UserName                    string    `plist:"UserName,omitempty"`
	GroupName                   string    `plist:"GroupName,omitempty"`
	RunAtLoad                   bool      `plist:"RunAtLoad"`
	KeepAlive                   KeepAlive `plist:"KeepAlive"`
	ProcessType                 string    `plist:"ProcessType,omitempty"`
	ThrottleInterval            int       `plist:"ThrottleInterval,omitempty"`
	ExitTimeOut                 int       `plist:"ExitTimeOut,omitempty"`
	LimitLoadToSessionType      string    `plist:"LimitLoadToSessionType,omitempty"`
	StandardOutPath             string    `plist:"StandardOutPath,omitempty"`
	StandardErrorPath           string    `plist:"StandardErrorPath,omitempty"`
	AssociatedBundleIdentifiers []string  `plist:"AssociatedBundleIdentifiers,omitempty"`
}

// Daemon returns the LaunchDaemon of lockstepd: root, started at boot and
// kept alive, output in /Library/Logs/Lockstep. ExitTimeOut gives the
// daemon time to finish a journal write when launchd stops it.
func Daemon() Job {
	return Job{
		Label:                       layout.DaemonLabel,
		ProgramArguments:            []string{layout.DaemonPath, "run"},
		UserName:                    "root",
		GroupName:                   "wheel",
		RunAtLoad:                   true,
		KeepAlive:                   KeepAlive{Always: true},
		ProcessType:                 "Standard",
		ThrottleInterval:            10,
		ExitTimeOut:                 30,
		StandardOutPath:             layout.DaemonLog,
		StandardErrorPath:           layout.DaemonLog,
		AssociatedBundleIdentifiers: []string{layout.BundleID},
	}
}

// MenuAgent returns the LaunchAgent of the menu-bar app: GUI (Aqua)
// sessions only, started at login, restarted after a crash but not after
// the user quits it.
func MenuAgent() Job {
	no := false
	return Job{
		Label:                       layout.MenuLabel,
		ProgramArguments:            []string{layout.AppExecutable},
		RunAtLoad:                   true,
		KeepAlive:                   KeepAlive{SuccessfulExit: &no},
		ProcessType:                 "Interactive",
		ThrottleInterval:            10,
		LimitLoadToSessionType:      "Aqua",
		AssociatedBundleIdentifiers: []string{layout.BundleID},
	}
}

// AppInfo is the Info.plist of Lockstep.app.
type AppInfo struct {
	CFBundleDevelopmentRegion            string   `plist:"CFBundleDevelopmentRegion"`
	CFBundleDisplayName                  string   `plist:"CFBundleDisplayName"`
	CFBundleExecutable                   string   `plist:"CFBundleExecutable"`
	CFBundleIconFile                     string   `plist:"CFBundleIconFile,omitempty"`
	CFBundleIdentifier                   string   `plist:"CFBundleIdentifier"`
	CFBundleInfoDictionaryVersion        string   `plist:"CFBundleInfoDictionaryVersion"`
	CFBundleName                         string   `plist:"CFBundleName"`
	CFBundlePackageType                  string   `plist:"CFBundlePackageType"`
	CFBundleShortVersionString           string   `plist:"CFBundleShortVersionString"`
	CFBundleVersion                      string   `plist:"CFBundleVersion"`
	CFBundleSupportedPlatforms           []string `plist:"CFBundleSupportedPlatforms"`
	LSApplicationCategoryType            string   `plist:"LSApplicationCategoryType"`
	LSMinimumSystemVersion               string   `plist:"LSMinimumSystemVersion"`
	LSUIElement                          bool     `plist:"LSUIElement"`
	NSHighResolutionCapable              bool     `plist:"NSHighResolutionCapable"`
	NSHumanReadableCopyright             string   `plist:"NSHumanReadableCopyright"`
	NSSupportsAutomaticGraphicsSwitching bool     `plist:"NSSupportsAutomaticGraphicsSwitching"`
}

// Copyright is the app's NSHumanReadableCopyright.
const Copyright = "Copyright © The Lockstep authors. All rights reserved."

// IconFile is the icon's name in Contents/Resources when there is one.
const IconFile = "Lockstep.icns"

// Info returns the app's Info.plist for a build version (any string; the
// numeric bundle versions are derived with layout.BundleVersion). withIcon
// names IconFile as the bundle icon.
func Info(version string, withIcon bool) AppInfo {
	v := layout.BundleVersion(version)
	a := AppInfo{
		CFBundleDevelopmentRegion:            "en",
		CFBundleDisplayName:                  layout.ProductName,
		CFBundleExecutable:                   layout.AppExecutableName,
		CFBundleIdentifier:                   layout.BundleID,
		CFBundleInfoDictionaryVersion:        "6.0",
		CFBundleName:                         layout.ProductName,
		CFBundlePackageType:                  "APPL",
		CFBundleShortVersionString:           v,
		CFBundleVersion:                      v,
		CFBundleSupportedPlatforms:           []string{"MacOSX"},
		LSApplicationCategoryType:            "public.app-category.utilities",
		LSMinimumSystemVersion:               layout.MinMacOS,
		LSUIElement:                          true,
		NSHighResolutionCapable:              true,
		NSHumanReadableCopyright:             Copyright,
		NSSupportsAutomaticGraphicsSwitching: true,
	}
	if withIcon {
		a.CFBundleIconFile = IconFile
	}
	return a
}

// Marshal encodes v as an XML property list, the form launchd, the
// Installer and plutil all accept and a human can review.
func Marshal(v any) ([]byte, error) {
	b, err := plist.MarshalIndent(v, plist.XMLFormat, "\t")
	if err != nil {
		return nil, fmt.Errorf("launchd: marshal: %w", err)
	}
	return append(b, '\n'), nil
}
