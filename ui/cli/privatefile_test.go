package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWritePrivate(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, tc := range []struct {
		name    string
		setup   func(path string) error
		refused string // "" when the write must succeed
		root    bool   // needs root (chown)
	}{
		{name: "new", setup: func(string) error { return nil }},
		{name: "own file", setup: func(path string) error {
			return os.WriteFile(path, []byte("old bundle, longer than the new one"), 0o644)
		}},
		{name: "symlink", setup: func(path string) error { return os.Symlink(victim, path) }, refused: "not_regular"},
		{name: "dangling symlink", setup: func(path string) error { return os.Symlink(p("nowhere"), path) }, refused: "not_regular"},
		{name: "hard link", setup: func(path string) error { return os.Link(victim, path) }, refused: "hard_links"},
		{name: "directory", setup: func(path string) error { return os.Mkdir(path, 0o755) }, refused: "not_regular"},
		{name: "another user's", root: true, refused: "not_yours 503", setup: func(path string) error {
			if err := os.WriteFile(path, []byte("theirs"), 0o666); err != nil {
				return err
			}
			return os.Chown(path, 503, 20)
		}},
		{name: "the sudo user's", root: true, setup: func(path string) error {
			if err := os.WriteFile(path, []byte("mine before sudo"), 0o644); err != nil {
				return err
			}
			return os.Chown(path, 502, 20)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root to give a file to another uid")
			}
			t.Setenv("SUDO_UID", "502")
			path := p(strings.ReplaceAll(tc.name, " ", "-") + ".json")
			if err := tc.setup(path); err != nil {
				t.Fatal(err)
			}
			err := writePrivate(path, []byte("bundle\n"))
			if b, _ := os.ReadFile(victim); string(b) != "precious" {
				t.Fatalf("the file behind the link was written: %q", b)
			}
			if _, err := os.Stat(p("nowhere")); err == nil {
				t.Fatal("a dangling link's target was created")
			}
			if tc.refused != "" {
				var u *unsafeFile
				if !errors.As(err, &u) || !strings.HasPrefix(u.why+" "+u.value, tc.refused) {
					t.Fatalf("writePrivate = %v, want refused: %s", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 || string(b) != "bundle\n" {
				t.Fatalf("%s: mode %v, content %q", path, fi.Mode(), b)
			}
		})
	}
	// Nothing but the files the cases made is left behind.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}
