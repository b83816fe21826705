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

	"github.com/lockstep-dev/lockstep/localapi"
)

// Entry is one operation as stored. It is the local API's Operation plus what
// recovery needs.
type Entry struct {
	localapi.Operation
	// DirectoryUser is the directory account the operation acts on.
	DirectoryUser string `json:"directory_user"`
	// TargetVersion is the directory password version the operation brings
	// the Mac to, once known.
	TargetVersion int64 `json:"target_version,omitempty"`
	// LocalBefore is the account's passwordLastSetTime just before the
	// local step changed it: after a crash, a different value says the
	// change landed, without trying a password.
	LocalBefore float64 `json:"local_before,omitempty"`
}

// Done reports whether the operation has finished, one way or another.
func (e *Entry) Done() bool { return e.State != localapi.OpRunning }

// Step returns the named step, or nil.
func (e *Entry) Step(name string) *localapi.Step {
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
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("journal: encoding %s: %w", e.ID, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return WriteFileAtomic(j.path(e.ID), append(b, '\n'), 0o600)
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

// WriteFileAtomic writes data to path so that a crash leaves either the old
// or the new content: temp file in the same directory, fsync, rename, fsync
// of the directory.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %s: %w", path, err)
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory of %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory of %s: %w", path, err)
	}
	return nil
}
