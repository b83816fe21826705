// Package config loads lockstepd's configuration: a local file (plist or
// JSON) overlaid by the managed preferences an MDM profile installs, which
// win. Every key is checked at start; an unknown key or a bad value stops
// lockstepd with a message naming the key and the file, because a daemon
// that silently ignores IT's setting is worse than one that refuses to start.
package config

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"howett.net/plist"

	"github.com/lockstep-dev/lockstep/protocol"
)

// Default locations on a Mac.
const (
	DefaultFile     = "/Library/Application Support/Lockstep/config.plist"
	DefaultManaged  = "/Library/Managed Preferences/dev.lockstep.agent.plist"
	DefaultStateDir = "/Library/Application Support/Lockstep"
	// DefaultStatusPlist is where lockstepd publishes its non-secret sync
	// state for MDM (packaging/layout.StatusPlist; cmd/lockstepd's test
	// keeps the two equal).
	DefaultStatusPlist = DefaultStateDir + "/status.plist"
)

// DefaultSocket is the local API's socket (localapi.DefaultSocket, which
// the clients use; cmd/lockstepd's test keeps the two equal).
const DefaultSocket = "/var/run/lockstepd.sock"

// maxSocketPath is sun_path's size on macOS minus the terminating NUL.
const maxSocketPath = 103

// Config is lockstepd's configuration after defaults and overlays.
type Config struct {
	// DirectoryURL is the directory's base URL: wss:// (ws:// only to a
	// loopback address, for tests and demos).
	DirectoryURL string
	// EnrollmentToken enrolls the device once; ignored after enrollment.
	EnrollmentToken protocol.Secret
	// DirectoryCA is a PEM file of CAs to trust for the directory instead of
	// the system roots.
	DirectoryCA string
	// StateDir holds the journal, device identity and account state.
	StateDir string
	// Socket is the local API's unix socket.
	Socket string
	// StatusPlist is the world-readable status file for MDM inventory;
	// empty writes none.
	StatusPlist string
	// ToolsDir replaces the directories of the macOS tools (simulator only).
	ToolsDir string
	// Deprecated lists the keys that were set but are no longer used, so
	// that lockstepd can say so at start.
	Deprecated []string
	// UserMap maps local short names to directory user names; unmapped
	// accounts use the same name.
	UserMap map[string]string
	// LogLevel is debug, info, warn or error.
	LogLevel string

	// Sources lists the files that were read, for diagnostics.
	Sources []string
}

// Key describes one configuration key.
type Key struct {
	Name    string
	Type    string // string, integer, dictionary
	Default any
	Doc     string
}

// Keys lists every key lockstepd accepts, in documentation order.
var Keys = []Key{
	{"DirectoryURL", "string", "", "The directory's URL, wss://host[:port]. Required."},
	{"EnrollmentToken", "string", "", "One-time token that enrolls this Mac; used once."},
	{"DirectoryCA", "string", "", "Path of a PEM file with the CA(s) that sign the directory's certificate; default: system roots."},
	{"StateDir", "string", DefaultStateDir, "Where lockstepd keeps its journal and device identity (root only)."},
	{"Socket", "string", DefaultSocket, "The local API socket the menu-bar app and CLI use."},
	{"StatusPlist", "string", DefaultStatusPlist, "World-readable plist of each account's sync state (no secret), for MDM inventory; empty: none."},
	{"ToolsDir", "string", "", "Directory that replaces the macOS tools' paths; for the simulator only."},
	{"ExpiryWarningDays", "integer", nil, "Deprecated and ignored (any value): the directory's policy says when expiry warnings start."},
	{"UserMap", "dictionary", map[string]string{}, "Local short name → directory user name, where they differ."},
	{"LogLevel", "string", "info", "debug, info, warn or error."},
}

// Defaults returns a Config with every default applied.
func Defaults() *Config {
	return &Config{
		StateDir:    DefaultStateDir,
		Socket:      DefaultSocket,
		StatusPlist: DefaultStatusPlist,
		UserMap:     map[string]string{},
		LogLevel:    "info",
	}
}

// Load applies defaults, then the local file, then the managed preferences
// (each skipped when missing or empty-named), and validates the result.
func Load(file, managed string) (*Config, error) {
	c := Defaults()
	for _, path := range []string{file, managed} {
		if path == "" {
			continue
		}
		raw, err := readFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading configuration: %w", err)
		}
		if err := c.apply(path, raw); err != nil {
			return nil, err
		}
		c.Sources = append(c.Sources, path)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// readFile reads a configuration file of at most maxFileSize bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(raw) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d KiB, which no configuration needs", path, maxFileSize>>10)
	}
	return raw, nil
}

// decode parses a plist (XML, binary or OpenStep) or JSON document into a
// generic map.
func decode(raw []byte) (map[string]any, string, error) {
	trimmed := bytes.TrimSpace(raw)
	m := map[string]any{}
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed) {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return nil, "JSON", err
		}
		return m, "JSON", nil
	}
	if err := checkDepth(raw); err != nil {
		return nil, "plist", err
	}
	if _, err := plist.Unmarshal(raw, &m); err != nil {
		return nil, "plist", err
	}
	return m, "plist", nil
}

// apply overlays the keys of one document.
func (c *Config) apply(path string, raw []byte) error {
	m, format, err := decode(raw)
	if err != nil {
		return fmt.Errorf("%s: not a valid %s dictionary: %w", path, format, err)
	}
	var errs []error
	known := map[string]bool{}
	for _, k := range Keys {
		known[k.Name] = true
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		v := m[name]
		if !known[name] {
			errs = append(errs, fmt.Errorf("%s: unknown key %q (known keys: %s)", path, name, keyNames()))
			continue
		}
		if err := c.set(name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", path, name, err))
		}
	}
	return errors.Join(errs...)
}

func keyNames() string {
	var s []string
	for _, k := range Keys {
		s = append(s, k.Name)
	}
	return strings.Join(s, ", ")
}

func (c *Config) set(name string, v any) error {
	str := func() (string, error) {
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("must be a string, got %s", typeName(v))
		}
		return s, nil
	}
	var err error
	switch name {
	case "DirectoryURL":
		c.DirectoryURL, err = str()
	case "EnrollmentToken":
		var s string
		s, err = str()
		c.EnrollmentToken = protocol.Secret(s)
	case "DirectoryCA":
		c.DirectoryCA, err = str()
	case "StateDir":
		c.StateDir, err = str()
	case "Socket":
		c.Socket, err = str()
	case "StatusPlist":
		c.StatusPlist, err = str()
	case "ToolsDir":
		c.ToolsDir, err = str()
	case "LogLevel":
		c.LogLevel, err = str()
	case "ExpiryWarningDays":
		// The directory announces the warning window (protocol.Policy),
		// so a Mac and the directory never disagree on it. The key is
		// accepted whatever its value, so that an old profile does not
		// stop lockstepd, and named at start as ignored.
		c.Deprecated = append(c.Deprecated, name)
	case "UserMap":
		d, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("must be a dictionary, got %s", typeName(v))
		}
		um := map[string]string{}
		for local, dir := range d {
			s, ok := dir.(string)
			if !ok {
				return fmt.Errorf("value for %q must be a string, got %s", local, typeName(dir))
			}
			um[local] = s
		}
		c.UserMap = um
	}
	return err
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a dictionary"
	case []any:
		return "an array"
	case json.Number, uint64, int64, float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// Validate checks every value.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.DirectoryURL == "" {
		bad("DirectoryURL", "is required (wss://directory.example.com)")
	} else if err := CheckDirectoryURL(c.DirectoryURL); err != nil {
		bad("DirectoryURL", "%v", err)
	}
	if c.DirectoryCA != "" {
		if _, err := c.RootCAs(); err != nil {
			bad("DirectoryCA", "%v", err)
		}
	}
	if !filepath.IsAbs(c.StateDir) {
		bad("StateDir", "must be an absolute path, got %q", c.StateDir)
	}
	if !filepath.IsAbs(c.Socket) {
		bad("Socket", "must be an absolute path, got %q", c.Socket)
	} else if len(c.Socket) > maxSocketPath {
		bad("Socket", "path is %d bytes; a unix socket path must be at most %d", len(c.Socket), maxSocketPath)
	}
	if c.StatusPlist != "" && (!filepath.IsAbs(c.StatusPlist) || strings.HasSuffix(c.StatusPlist, "/")) {
		bad("StatusPlist", "must be an absolute path of a file, got %q", c.StatusPlist)
	}
	if c.ToolsDir != "" && !filepath.IsAbs(c.ToolsDir) {
		bad("ToolsDir", "must be an absolute path, got %q", c.ToolsDir)
	}

	for local, dir := range c.UserMap {
		if !validName(local) || !validName(dir) {
			bad("UserMap", "entry %q → %q is not a valid pair of user names", local, dir)
		}
	}
	if _, err := c.Level(); err != nil {
		bad("LogLevel", "%v", err)
	}
	return errors.Join(errs...)
}

func validName(s string) bool {
	if s == "" || len(s) > protocol.MaxNameLen {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == '/' || r == ':' || r == 0x7f {
			return false
		}
	}
	return true
}

// CheckDirectoryURL enforces wss://, allowing ws:// only to loopback.
func CheckDirectoryURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	switch u.Scheme {
	case "wss":
		return nil
	case "ws":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("plain ws:// is allowed only to a loopback address; use wss://%s", u.Host)
	}
	return fmt.Errorf("scheme must be wss://, got %q", u.Scheme)
}

// RootCAs loads DirectoryCA, or returns nil for the system roots.
func (c *Config) RootCAs() (*x509.CertPool, error) {
	if c.DirectoryCA == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(c.DirectoryCA)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", c.DirectoryCA)
	}
	return pool, nil
}

// Level parses LogLevel.
func (c *Config) Level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("must be debug, info, warn or error, got %q", c.LogLevel)
	}
	return l, nil
}

// DirectoryUser maps a local account to its directory user.
func (c *Config) DirectoryUser(local string) string {
	if d, ok := c.UserMap[local]; ok {
		return d
	}
	return local
}

// Redacted returns the configuration as a map safe for diagnostics.
func (c *Config) Redacted() map[string]any {
	tok := ""
	if !c.EnrollmentToken.Empty() {
		tok = protocol.Redacted
	}
	return map[string]any{
		"DirectoryURL": c.DirectoryURL, "EnrollmentToken": tok, "DirectoryCA": c.DirectoryCA,
		"StateDir": c.StateDir, "Socket": c.Socket, "StatusPlist": c.StatusPlist, "ToolsDir": c.ToolsDir,
		"UserMap": c.UserMap, "LogLevel": c.LogLevel, "Sources": c.Sources, "Deprecated": c.Deprecated,
	}
}
