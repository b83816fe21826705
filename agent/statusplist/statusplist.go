// Package statusplist keeps lockstepd's status file: a property list, owned
// by root and readable by everyone, that says for each account whether its
// password is in step everywhere, with the state the engine derives, each
// place's state and the last sync, plus lockstepd's version and its link to
// the directory. MDM inventory reads it without asking lockstepd anything:
// a Jamf Pro extension attribute (PlistBuddy or `defaults read`) and
// osquery's plist table (packaging/mdm/ ships both).
//
// The file is a projection, never a source: the engine owns the state and
// the daemon rewrites the whole file from it every time it publishes a
// change. It holds no secret and no sentence: states and reasons are the
// engine's codes, which are also the local API's.
package statusplist

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"howett.net/plist"

	"github.com/lockstep-dev/lockstep/agent/atomicfile"
	"github.com/lockstep-dev/lockstep/agent/engine"
)

// FormatVersion is the version of the file's layout. It grows only when a
// key changes meaning or goes away; new keys do not change it.
const FormatVersion = 1

// Mode is the file's permission: world-readable, so that any inventory
// tool reads it whatever user it runs as; written only by root.
const Mode = 0o644

// Key names, for the readers that look keys up by name (the extension
// attribute, the osquery query and their tests).
const (
	KeyFormatVersion    = "formatVersion"
	KeyLockstepdVersion = "lockstepdVersion"
	KeyPasswordInSync   = "passwordInSync"
	KeyDirectory        = "directory"
	KeyAccounts         = "accounts"
)

// Document is the status file. Keys are camelCase, as macOS preference
// keys are; times are plist dates to the second (osquery shows a date as
// seconds since 1970); a value lockstepd does not know is left out rather
// than written empty, so "absent" always means "not known".
type Document struct {
	FormatVersion    int    `plist:"formatVersion"`
	LockstepdVersion string `plist:"lockstepdVersion"`
	// PasswordInSync sums the accounts up for a smart group: false when
	// any account is out of step, true when every account whose state is
	// known is in step, absent when none is known.
	PasswordInSync *bool              `plist:"passwordInSync,omitempty"`
	Directory      Directory          `plist:"directory"`
	Accounts       map[string]Account `plist:"accounts"`
}

// Directory is lockstepd's link to the directory.
type Directory struct {
	// State is connected, connecting, offline or not_enrolled.
	State string     `plist:"state"`
	URL   string     `plist:"url,omitempty"`
	Since *time.Time `plist:"since,omitempty"`
	// Problem says why it is not connected (unreachable, not_enrolled,
	// refused, revoked).
	Problem  string `plist:"problem,omitempty"`
	DeviceID string `plist:"deviceID,omitempty"`
}

// Account is one local account, keyed by its short name in Document.
type Account struct {
	DirectoryUser string `plist:"directoryUser"`
	// PasswordInSync is the engine's verdict (engine.Account.InSync).
	PasswordInSync *bool `plist:"passwordInSync,omitempty"`
	// State is the engine's account state (in_sync, sync_needed, busy,
	// locked, temporary, mfa_enroll, expiring, not_linked, unknown) and Reason the
	// code that says why.
	State  string `plist:"state"`
	Reason string `plist:"reason,omitempty"`
	// Places maps directory, local, keychain and filevault to ok, behind,
	// unknown or not_applicable.
	Places            map[string]string `plist:"places"`
	Temporary         bool              `plist:"temporary"`
	PasswordChangedAt *time.Time        `plist:"passwordChangedAt,omitempty"`
	PasswordExpiresAt *time.Time        `plist:"passwordExpiresAt,omitempty"`
	LockedUntil       *time.Time        `plist:"lockedUntil,omitempty"`
	LastSync          *LastSync         `plist:"lastSync,omitempty"`
}

// LastSync is the account's last operation: a change, a sync or a
// recovery of a kept keychain.
type LastSync struct {
	// Kind is change, sync, sync_forgot_previous or keychain_recover.
	Kind string `plist:"kind"`
	// Result is running, done, failed (nothing changed), sync_needed
	// (stopped part-way) or, for a keychain recovery, incomplete (run it
	// again).
	Result     string     `plist:"result"`
	StartedAt  time.Time  `plist:"startedAt"`
	FinishedAt *time.Time `plist:"finishedAt,omitempty"`
	// Error is the failure's code, without the tool's words.
	Error string `plist:"error,omitempty"`
}

// Connection is what Build needs of the directory link.
type Connection struct {
	State, URL, Problem, DeviceID string
	Since                         time.Time
}

// Build projects the engine's accounts and the link onto the file.
func Build(version string, conn Connection, accounts []engine.Account) Document {
	doc := Document{
		FormatVersion: FormatVersion, LockstepdVersion: version,
		Directory: Directory{State: conn.State, URL: conn.URL, Since: second(&conn.Since), Problem: conn.Problem, DeviceID: conn.DeviceID},
		Accounts:  map[string]Account{},
	}
	for _, a := range accounts {
		acct := Account{
			DirectoryUser: a.DirectoryUser, PasswordInSync: cloneBool(a.InSync), State: a.State, Reason: a.Reason.Code,
			Places: map[string]string{}, Temporary: a.Temporary,
			PasswordChangedAt: second(a.PasswordChangedAt), PasswordExpiresAt: second(a.ExpiresAt), LockedUntil: second(a.LockedUntil),
		}
		for _, p := range a.Places {
			acct.Places[p.Name] = p.State
		}
		if op := a.LastOperation; op != nil {
			ls := &LastSync{Kind: op.Kind, Result: op.State, StartedAt: *second(&op.StartedAt), FinishedAt: second(op.FinishedAt)}
			if op.Error != nil {
				ls.Error = op.Error.Code
			}
			acct.LastSync = ls
		}
		doc.Accounts[a.LocalUser] = acct
		if a.InSync != nil {
			all := *a.InSync && (doc.PasswordInSync == nil || *doc.PasswordInSync)
			doc.PasswordInSync = &all
		}
	}
	return doc
}

// second returns t in UTC to the second, or nil for nil or the zero time.
func second(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	u := t.UTC().Truncate(time.Second)
	return &u
}

func cloneBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}

// Encode renders the document as an XML property list, which PlistBuddy,
// `defaults read`, plutil, osquery and Python's plistlib all read.
func Encode(doc Document) ([]byte, error) {
	b, err := plist.MarshalIndent(doc, plist.XMLFormat, "\t")
	if err != nil {
		return nil, fmt.Errorf("encoding the status plist: %w", err)
	}
	return append(b, '\n'), nil
}

// Decode reads a status file's content.
func Decode(b []byte) (Document, error) {
	var doc Document
	if _, err := plist.Unmarshal(b, &doc); err != nil {
		return Document{}, fmt.Errorf("decoding the status plist: %w", err)
	}
	return doc, nil
}

// Read reads the status file at path.
func Read(path string) (Document, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Document{}, err
	}
	return Decode(b)
}

// AccountNames lists the document's accounts, sorted.
func (d Document) AccountNames() []string { return slices.Sorted(maps.Keys(d.Accounts)) }

// Writer rewrites the status file from the state it reads.
type Writer struct {
	path string
	read func() Document

	// asked counts the calls to Update; written, under mu, the calls the
	// file answers for: a write answers for every call made before it read
	// the state.
	asked   atomic.Uint64
	mu      sync.Mutex
	written uint64
	last    []byte
}

// NewWriter returns a writer of path whose content read returns.
func NewWriter(path string, read func() Document) *Writer {
	return &Writer{path: path, read: read}
}

// Path is the file the writer keeps.
func (w *Writer) Path() string { return w.path }

// Update writes the current state and returns once the file holds a state
// read after the call began, so a caller that publishes a change after
// Update returns knows that the file already shows it. Concurrent callers
// share one write: whoever waited while another wrote is answered by that
// write when it read the state after they asked.
func (w *Writer) Update() error {
	n := w.asked.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.written >= n {
		return nil
	}
	upTo := w.asked.Load()
	b, err := Encode(w.read())
	if err != nil {
		return err
	}
	if !bytes.Equal(b, w.last) || !w.present() {
		if err := os.MkdirAll(filepath.Dir(w.path), 0o755); err != nil {
			return fmt.Errorf("writing the status plist: %w", err)
		}
		if err := atomicfile.Write(w.path, b, Mode); err != nil {
			return err
		}
		w.last = b
	}
	w.written = upTo
	return nil
}

// present reports whether the file is still there (an administrator may
// have removed it).
func (w *Writer) present() bool {
	_, err := os.Lstat(w.path)
	return err == nil
}

// Readable reports whether every local user can reach the file: each
// directory above it must be searchable by others. An administrator who
// points StatusPlist into a root-only directory is told so at start.
func Readable(path string) (bool, string) {
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return false, dir
		}
		if dir == filepath.Dir(dir) {
			return true, ""
		}
	}
}
