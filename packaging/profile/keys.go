// Package profile is the single source of truth for lockstepd's
// configuration keys: the managed preferences an MDM profile sets in the
// dev.lockstep.agent domain (/Library/Managed Preferences/
// dev.lockstep.agent.plist) and the same keys in the local config file
// (/Library/Application Support/Lockstep/config.plist); managed values win.
//
// The daemon's config loader imports the key list (or tests against it);
// the markdown reference, the JSON schema for MDM consoles and the
// .mobileconfig template are generated from it, and a test keeps the
// checked-in copies equal to what it generates.
package profile

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/lockstep-dev/lockstep/packaging/layout"
)

// MaxSocketPath is the longest unix socket path macOS accepts (sun_path
// is 104 bytes with the terminating NUL).
const MaxSocketPath = 103

// Domain is the preference domain of the managed preferences.
const Domain = layout.PreferenceDomain

// Type is a property-list value type.
type Type string

// The types the keys use, named as in a property list.
const (
	String     Type = "string"
	Integer    Type = "integer"
	Dictionary Type = "dictionary"
)

// Key names.
const (
	KeyDirectoryURL      = "DirectoryURL"
	KeyEnrollmentToken   = "EnrollmentToken"
	KeyDirectoryCA       = "DirectoryCA"
	KeyStateDir          = "StateDir"
	KeySocket            = "Socket"
	KeyStatusPlist       = "StatusPlist"
	KeyToolsDir          = "ToolsDir"
	KeyExpiryWarningDays = "ExpiryWarningDays"
	KeyUserMap           = "UserMap"
	KeyLogLevel          = "LogLevel"
)

// Key describes one configuration key.
type Key struct {
	Name string
	Type Type
	// Default is the value the daemon uses when the key is absent: a
	// string, an int64 or a map[string]string; nil for none.
	Default any
	// Required keys must be set in the managed preferences or the local
	// config file.
	Required bool
	// Sensitive values are secrets: redact them in logs and diagnostics.
	Sensitive bool
	// Internal keys are for the simulator and tests; they are left out of
	// the MDM schema and the profile template.
	Internal bool
	// Deprecated keys are accepted whatever their value, so that an old
	// profile does not stop lockstepd, and ignored (lockstepd names them
	// in its log at start); they are left out of the MDM schema and the
	// profile template.
	Deprecated bool
	// Enum lists the accepted values of a string key (nil: any).
	Enum []string
	// Min and Max bound an integer key.
	Min, Max int64
	// AbsolutePath marks a string key that must hold an absolute path.
	AbsolutePath bool
	// MaxLen bounds a string key's length in bytes (0: no bound).
	MaxLen      int
	Title       string
	Description string
}

var keys = []Key{
	{
		Name: KeyDirectoryURL, Type: String, Required: true,
		Title:       "Directory URL",
		Description: "WebSocket URL of the Lockstep directory service. Must be wss:// (plain ws:// is accepted only for a loopback host).",
	},
	{
		Name: KeyEnrollmentToken, Type: String, Sensitive: true,
		Title:       "Enrollment token",
		Description: "One-time token the device uses to enroll with the directory. Consumed at the first successful enrollment; after that the device authenticates with its own key and the token is no longer used.",
	},
	{
		Name: KeyDirectoryCA, Type: String, AbsolutePath: true,
		Title:       "Directory CA file",
		Description: "Absolute path of a PEM file with the CA certificate(s) that sign the directory's TLS certificate. When absent, the system roots are used.",
	},
	{
		Name: KeyStateDir, Type: String, Default: layout.StateDir, AbsolutePath: true,
		Title:       "State directory",
		Description: "Where lockstepd keeps its journal and device identity (root only).",
	},
	{
		Name: KeySocket, Type: String, Default: layout.Socket, AbsolutePath: true, MaxLen: MaxSocketPath,
		Title:       "Local API socket",
		Description: "Unix socket of the local API used by the menu-bar app and the lockstep CLI.",
	},
	{
		Name: KeyStatusPlist, Type: String, Default: layout.StatusPlist, AbsolutePath: true,
		Title:       "Status file for MDM",
		Description: "Absolute path of the property list where lockstepd keeps each account's sync state (passwordInSync, state, places, last sync) for MDM inventory: root-owned, readable by everyone, no secret. Read by the Jamf Pro extension attribute and the osquery query in packaging/mdm/. An empty string writes none.",
	},
	{
		Name: KeyToolsDir, Type: String, Default: "", Internal: true, AbsolutePath: true,
		Title:       "Tools directory (simulator only)",
		Description: "Directory holding stand-ins for dscl, sysadminctl, fdesetup, security and diskutil. Empty means the real macOS tools. For the simulator and tests only; never set it on a real Mac.",
	},
	{
		Name: KeyExpiryWarningDays, Type: Integer, Deprecated: true,
		Title:       "Expiry warning (days)",
		Description: "Ignored since version 2: the directory's password policy says when expiry warnings start, so the Mac and the directory never disagree.",
	},
	{
		Name: KeyUserMap, Type: Dictionary, Default: map[string]string{},
		Title:       "User map",
		Description: "Maps a local account short name to its directory user name, for accounts whose names differ. Accounts not listed use their short name.",
	},
	{
		Name: KeyLogLevel, Type: String, Default: "info", Enum: []string{"debug", "info", "warn", "error"},
		Title:       "Log level",
		Description: "Verbosity of /Library/Logs/Lockstep/lockstepd.log.",
	},
}

// Keys returns every configuration key, in documentation order.
func Keys() []Key {
	out := make([]Key, len(keys))
	for i, k := range keys {
		out[i] = k
		out[i].Enum = slices.Clone(k.Enum)
		if m, ok := k.Default.(map[string]string); ok {
			out[i].Default = maps.Clone(m)
		}
	}
	return out
}

// Lookup returns the key with the given name.
func Lookup(name string) (Key, bool) {
	for _, k := range Keys() {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// Defaults returns the default of every key that has one.
func Defaults() map[string]any {
	out := map[string]any{}
	for _, k := range Keys() {
		if k.Default != nil {
			out[k.Name] = k.Default
		}
	}
	return out
}

// ErrUnknownKey marks a key that is not part of the configuration; a
// loader may log it and go on, since newer profiles can hold newer keys.
var ErrUnknownKey = errors.New("unknown configuration key")

// ErrInvalid marks a value of the wrong type or out of range.
var ErrInvalid = errors.New("invalid configuration value")

// ErrMissing marks a required key that is absent.
var ErrMissing = errors.New("required configuration key missing")

// Validate checks preference values as howett.net/plist decodes them into
// a map[string]any (strings, signed or unsigned integers, dictionaries).
// With complete set, required keys must be present (use it on the merged
// managed + local configuration). The error joins one error per problem;
// each wraps ErrUnknownKey, ErrInvalid or ErrMissing.
func Validate(prefs map[string]any, complete bool) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(prefs)) {
		k, ok := Lookup(name)
		if !ok {
			errs = append(errs, fmt.Errorf("%w: %s", ErrUnknownKey, name))
			continue
		}
		if k.Deprecated {
			continue
		}
		if err := k.check(prefs[name]); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %v", ErrInvalid, name, err))
		}
	}
	if complete {
		for _, k := range keys {
			if _, ok := prefs[k.Name]; k.Required && !ok {
				errs = append(errs, fmt.Errorf("%w: %s", ErrMissing, k.Name))
			}
		}
	}
	return errors.Join(errs...)
}

// Int converts an integer as a plist decoder returns it to int64.
func Int(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case uint:
		return int64(n), n <= 1<<63-1
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		return int64(n), n <= 1<<63-1
	}
	return 0, false
}

func (k Key) check(v any) error {
	switch k.Type {
	case String:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a string, got %T", v)
		}
		if k.Enum != nil && !slices.Contains(k.Enum, s) {
			return fmt.Errorf("%q is not one of %s", s, strings.Join(k.Enum, ", "))
		}
		if k.MaxLen > 0 && len(s) > k.MaxLen {
			return fmt.Errorf("%d bytes, at most %d", len(s), k.MaxLen)
		}
		if k.AbsolutePath && s != "" && !path.IsAbs(s) {
			return fmt.Errorf("%q is not an absolute path", s)
		}
		if k.Name == KeyDirectoryURL {
			return CheckDirectoryURL(s)
		}
	case Integer:
		n, ok := Int(v)
		if !ok {
			return fmt.Errorf("want an integer, got %T", v)
		}
		if n < k.Min || n > k.Max {
			return fmt.Errorf("%d is outside %d..%d", n, k.Min, k.Max)
		}
	case Dictionary:
		var m map[string]string
		switch d := v.(type) {
		case map[string]string:
			m = d
		case map[string]any:
			m = map[string]string{}
			for name, x := range d {
				s, ok := x.(string)
				if !ok {
					return fmt.Errorf("entry %q: want a string, got %T", name, x)
				}
				m[name] = s
			}
		default:
			return fmt.Errorf("want a dictionary, got %T", v)
		}
		for local, dir := range m {
			if local == "" || dir == "" {
				return fmt.Errorf("entry %q → %q: names must not be empty", local, dir)
			}
		}
	default:
		return fmt.Errorf("key of unknown type %q", k.Type)
	}
	return nil
}

// CheckDirectoryURL enforces DESIGN.md's rule for the directory link:
// wss:// only, plain ws:// only to a loopback host.
func CheckDirectoryURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%q has no host", s)
	}
	switch u.Scheme {
	case "wss":
		return nil
	case "ws":
		h := u.Hostname()
		if h == "localhost" {
			return nil
		}
		if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("plain ws:// is allowed only to a loopback host, not %q", h)
	}
	return fmt.Errorf("scheme %q: want wss://", u.Scheme)
}
