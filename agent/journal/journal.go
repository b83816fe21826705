// Package journal keeps lockstepd's crash-safe record of every password
// operation: which steps ran, which finished, what the user must know. It
// never holds a secret; after a crash the engine reads it to decide whether
// the account is in sync or needs a sync.
//
// Each operation is one JSON file, rewritten whole on every step change with
// write-to-temp, fsync, rename and a directory fsync, so a reader sees either
// the previous or the next state, never a torn one.
package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/agent/atomicfile"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Format is the version of the journal's file format. Version 1 embedded
// the local API's Operation (its sentences included); version 2 is this
// package's own types, codes and parameters only. Both are read.
const Format = 2

// Entry is one operation as stored: what ran, what finished, what the user
// must know, and what recovery needs.
type Entry struct {
	Format     int        `json:"format"`
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	LocalUser  string     `json:"local_user"`
	State      string     `json:"state"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Steps      []Step     `json:"steps"`
	Error      *Error     `json:"error,omitempty"`
	Notes      []Text     `json:"notes,omitempty"`
	NextAction string     `json:"next_action,omitempty"`
	// DirectoryUser is the directory account the operation acts on.
	DirectoryUser string `json:"directory_user"`
	// TargetVersion is the directory password version the operation brings
	// the Mac to, once known.
	TargetVersion int64 `json:"target_version,omitempty"`
	// LocalBefore is the account's passwordLastSetTime just before the
	// local step changed it: after a crash, a different value says the
	// change landed, without trying a password.
	LocalBefore float64 `json:"local_before,omitempty"`
	// Keychain is the kept keychain a recovery puts back (its file name).
	Keychain string `json:"keychain,omitempty"`
}

// Step is one step of an operation.
type Step struct {
	Name  string    `json:"name"`
	State string    `json:"state"`
	Text  Text      `json:"text,omitzero"`
	At    time.Time `json:"at,omitzero"`
}

// Text is a code and its parameters (never a sentence).
type Text struct {
	Code   string            `json:"code"`
	Params map[string]string `json:"params,omitempty"`
}

// UnmarshalJSON reads a Text, or a version 1 note, which was a sentence:
// it is kept as the parameter of the code "legacy".
func (t *Text) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*t = Text{Code: "legacy", Params: map[string]string{"text": s}}
		return nil
	}
	type plain Text
	return json.Unmarshal(b, (*plain)(t))
}

// Error is why an operation failed or stopped.
type Error struct {
	Code       string               `json:"code"`
	Field      string               `json:"field,omitempty"`
	Params     map[string]string    `json:"params,omitempty"`
	Violations []protocol.Violation `json:"violations,omitempty"`
	RetryAfter int                  `json:"retry_after,omitempty"`
	Until      *time.Time           `json:"until,omitempty"`
	Detail     string               `json:"detail,omitempty"`
}

// Done reports whether the operation has finished, one way or another.
func (e *Entry) Done() bool { return e.State != "running" }

// Step returns the named step, or nil.
func (e *Entry) Step(name string) *Step {
	for i := range e.Steps {
		if e.Steps[i].Name == name {
			return &e.Steps[i]
		}
	}
	return nil
}

// Journal stores entries in a directory.
type Journal struct {
	dir string
	mu  sync.Mutex
}

// Open returns the journal in dir, creating it (mode 0700) if needed.
func Open(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating journal directory: %w", err)
	}
	return &Journal{dir: dir}, nil
}

// Dir returns the journal's directory.
func (j *Journal) Dir() string { return j.dir }

func (j *Journal) path(id string) string { return filepath.Join(j.dir, id+".json") }

// Write stores e durably, replacing any earlier state of the same operation.
func (j *Journal) Write(e *Entry) error {
	if e.ID == "" || strings.ContainsAny(e.ID, `/\.`) {
		return fmt.Errorf("journal: invalid operation id %q", e.ID)
	}
	e.Format = Format
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("journal: encoding %s: %w", e.ID, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return atomicfile.Write(j.path(e.ID), append(b, '\n'), 0o600)
}

// Read loads one operation.
func (j *Journal) Read(id string) (*Entry, error) {
	b, err := os.ReadFile(j.path(id))
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("journal: decoding %s: %w", id, err)
	}
	return &e, nil
}

// List returns every stored operation, oldest first. Unreadable files are
// reported in the error but do not hide the others.
func (j *Journal) List() ([]*Entry, error) {
	names, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var out []*Entry
	var errs []error
	for _, d := range names {
		name := d.Name()
		if d.IsDir() || !strings.HasSuffix(name, ".json") {
			continue
		}
		e, err := j.Read(strings.TrimSuffix(name, ".json"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *Entry) int { return a.StartedAt.Compare(b.StartedAt) })
	return out, errors.Join(errs...)
}

// Prune removes finished operations older than keep, always keeping the
// newest n per account so `lockstep status` can show the last one.
func (j *Journal) Prune(keep time.Duration, n int, now time.Time) error {
	all, err := j.List()
	if err != nil {
		return err
	}
	perUser := map[string]int{}
	var errs []error
	for i := len(all) - 1; i >= 0; i-- {
		e := all[i]
		perUser[e.LocalUser]++
		if !e.Done() || perUser[e.LocalUser] <= n || e.FinishedAt == nil || now.Sub(*e.FinishedAt) < keep {
			continue
		}
		if err := os.Remove(j.path(e.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
