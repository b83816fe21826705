package journal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func entry(id, user string, started time.Time, state string) *Entry {
	e := &Entry{ID: id, Kind: "change", LocalUser: user, State: state, StartedAt: started}
	if state != "running" {
		f := started.Add(time.Minute)
		e.FinishedAt = &f
	}
	return e
}

func TestWriteReadList(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "ops"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	b := entry("b", "alice", t0.Add(time.Hour), "running")
	a := entry("a", "alice", t0, "done")
	for _, e := range []*Entry{b, a} {
		if err := j.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	b.Steps = append(b.Steps, Step{Name: "directory", State: "done"})
	if err := j.Write(b); err != nil {
		t.Fatal(err)
	}
	all, err := j.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != "a" || all[1].ID != "b" {
		t.Fatalf("List order = %v", all)
	}
	if s := all[1].Step("directory"); s == nil || s.State != "done" {
		t.Fatalf("rewritten step lost: %+v", all[1].Steps)
	}
	fi, err := os.Stat(j.path("a"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal file mode = %v, %v", fi.Mode(), err)
	}
	// No temp files left behind.
	names, _ := os.ReadDir(j.Dir())
	for _, n := range names {
		if strings.Contains(n.Name(), ".tmp-") {
			t.Fatalf("temp file left: %s", n.Name())
		}
	}
}

func TestInvalidIDRefused(t *testing.T) {
	j, _ := Open(t.TempDir())
	for _, id := range []string{"", "../x", "a/b", "a.b"} {
		if err := j.Write(&Entry{ID: id}); err == nil {
			t.Errorf("Write(%q) = nil", id)
		}
	}
}

func TestListSurvivesCorruptFile(t *testing.T) {
	j, _ := Open(t.TempDir())
	if err := j.Write(entry("good", "alice", time.Now(), "done")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(j.Dir(), "bad.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	all, err := j.List()
	if err == nil || len(all) != 1 || all[0].ID != "good" {
		t.Fatalf("List = %v, %v", all, err)
	}
}

func TestPrune(t *testing.T) {
	j, _ := Open(t.TempDir())
	now := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	old := now.Add(-60 * 24 * time.Hour)
	for i, id := range []string{"o1", "o2", "o3"} {
		if err := j.Write(entry(id, "alice", old.Add(time.Duration(i)*time.Hour), "done")); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Write(entry("run", "alice", old, "running")); err != nil {
		t.Fatal(err)
	}
	if err := j.Prune(30*24*time.Hour, 1, now); err != nil {
		t.Fatal(err)
	}
	all, _ := j.List()
	var ids []string
	for _, e := range all {
		ids = append(ids, e.ID)
	}
	if strings.Join(ids, ",") != "run,o3" {
		t.Fatalf("after prune: %v (want the running op and the newest finished one)", ids)
	}
}

// A version 1 file (the local API's Operation, sentences included) is still
// read: its codes and states as they were, its notes kept as data.
func TestReadsFormat1(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "ops"))
	if err != nil {
		t.Fatal(err)
	}
	v1 := `{"id":"old","kind":"sync","local_user":"alice","state":"sync_needed","started_at":"2026-11-30T10:00:00Z",
"steps":[{"name":"directory","state":"done","detail":"The directory accepted the new password.","at":"2026-11-30T10:00:01Z"},
{"name":"local_account","state":"failed","detail":"Interrupted: lockstepd stopped during this step."}],
"error":{"code":"interrupted","message":"lockstepd stopped in the middle of this operation.","hint":"Nothing is lost."},
"notes":["Your old login keychain was kept at /Users/alice/Library/Keychains/login_renamed_1.keychain-db."],
"directory_user":"alice","target_version":7}`
	if err := os.WriteFile(j.path("old"), []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := j.Read("old")
	if err != nil {
		t.Fatal(err)
	}
	if e.State != "sync_needed" || e.Error.Code != "interrupted" || e.TargetVersion != 7 || len(e.Steps) != 2 ||
		e.Step("local_account").State != "failed" || len(e.Notes) != 1 || e.Notes[0].Code != "legacy" ||
		!strings.Contains(e.Notes[0].Params["text"], "login_renamed_1") {
		t.Fatalf("format 1 entry read as %+v", e)
	}
	if err := j.Write(e); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(j.path("old"))
	if !strings.Contains(string(b), `"format": 2`) || strings.Contains(string(b), "message") {
		t.Fatalf("rewritten as:\n%s", b)
	}
}
