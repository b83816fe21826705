package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/internal/tools/pgtest"
)

// TestServePostgresReplicas runs two serve processes on one PostgreSQL
// database, one given the connection string in a file and one given the
// URL on the command line and the password on stdin: what one writes the
// other serves, and the password is in no command line, environment or
// log.
func TestServePostgresReplicas(t *testing.T) {
	url := pgtest.Database(t)
	pw := pgtest.Password(t)
	bare := pgtest.WithoutPassword(url)

	// Refusals: a password on the command line, a readable file.
	_, se, code := command(t, "", "serve", "--data", t.TempDir(), "--database", url)
	if code != 2 || !strings.Contains(se, "must not hold a password") || strings.Contains(se, pw) {
		t.Fatalf("--database with a password: exit %d: %s", code, se)
	}
	_, se, code = command(t, "", "serve", "--data", t.TempDir(), "--database", "host=127.0.0.1 password="+pw)
	if code != 2 || strings.Contains(se, pw) {
		t.Fatalf("--database key=value with a password: exit %d: %s", code, se)
	}
	open := filepath.Join(t.TempDir(), "db.url")
	if err := os.WriteFile(open, []byte(url+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, se, code = command(t, "", "serve", "--data", t.TempDir(), "--database-url-file", open)
	if code != 1 || !strings.Contains(se, "chmod 600") {
		t.Fatalf("readable URL file: exit %d: %s", code, se)
	}

	urlFile := filepath.Join(t.TempDir(), "db.url")
	if err := os.WriteFile(urlFile, []byte(url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startWith(t, dirA, "", "--database-url-file", urlFile)
	// B shares A's master key (copied, as an operator would).
	key, err := os.ReadFile(filepath.Join(dirA, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, "server.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	b := startWith(t, dirB, pw+"\n", "--database", bare, "--database-password-file", "-")

	const userPW = "Replica-Pass-1234"
	if _, se, code := command(t, userPW+"\n", "user", "add", "alice", "--data", dirA); code != 0 {
		t.Fatalf("user add through A: %s", se)
	}
	var u admin.User
	jsonCLI(t, "", &u, "user", "show", "alice", "--data", dirB)
	if u.Name != "alice" || u.PasswordVersion != 1 {
		t.Fatalf("alice through B: %+v", u)
	}
	if _, se, code := command(t, "", "user", "reset", "alice", "--temporary", "--data", dirB); code != 0 {
		t.Fatalf("reset through B: %s", se)
	}
	jsonCLI(t, "", &u, "user", "show", "alice", "--data", dirA)
	if !u.MustChange || u.PasswordVersion != 2 {
		t.Fatalf("alice through A after B's reset: %+v", u)
	}

	for _, s := range []*server{a, b} {
		pid := s.cmd.Process.Pid
		for _, f := range []string{"cmdline", "environ"} {
			bs, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(bs), pw) {
				t.Fatalf("the database password is in /proc/%d/%s", pid, f)
			}
		}
	}
	a.stop()
	b.stop()
	for _, s := range []*server{a, b} {
		if strings.Contains(s.stderr.String(), pw) || strings.Contains(s.stdout.String(), pw) {
			t.Fatal("the database password is in the output")
		}
		if strings.Contains(s.stderr.String(), userPW) {
			t.Fatal("a user password is in the log")
		}
		if !strings.Contains(s.stdout.String(), "storage: PostgreSQL") {
			t.Fatalf("no storage line: %s", s.stdout.String())
		}
	}
	if !strings.Contains(b.stderr.String(), `"msg":"postgres change feed listening"`) {
		t.Fatalf("B never listened:\n%s", b.stderr.String())
	}
}
