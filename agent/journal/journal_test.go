package journal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/localapi"
)

func entry(id, user string, started time.Time, state string) *Entry {
	e := &Entry{Operation: localapi.Operation{ID: id, Kind: localapi.OpChange, LocalUser: user, State: state, StartedAt: started}}
	if state != localapi.OpRunning {
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
	b := entry("b", "alice", t0.Add(time.Hour), localapi.OpRunning)
	a := entry("a", "alice", t0, localapi.OpDone)
	for _, e := range []*Entry{b, a} {
		if err := j.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	b.Steps = append(b.Steps, localapi.Step{Name: localapi.StepDirectory, State: localapi.StepDone})
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
	if s := all[1].Step(localapi.StepDirectory); s == nil || s.State != localapi.StepDone {
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
		if err := j.Write(&Entry{Operation: localapi.Operation{ID: id}}); err == nil {
			t.Errorf("Write(%q) = nil", id)
		}
	}
}

func TestListSurvivesCorruptFile(t *testing.T) {
	j, _ := Open(t.TempDir())
	if err := j.Write(entry("good", "alice", time.Now(), localapi.OpDone)); err != nil {
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
		if err := j.Write(entry(id, "alice", old.Add(time.Duration(i)*time.Hour), localapi.OpDone)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Write(entry("run", "alice", old, localapi.OpRunning)); err != nil {
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
