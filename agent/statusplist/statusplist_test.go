package statusplist_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/agent/statusplist"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

func ptr[T any](v T) *T { return &v }

var (
	t0   = time.Date(2026, 3, 10, 9, 41, 7, 600_000_000, time.FixedZone("CET", 3600))
	conn = statusplist.Connection{State: "connected", URL: "wss://directory.example.com", Since: t0, DeviceID: "dev-7f3a"}
)

func places(local, keychain, fv string) []engine.Place {
	return []engine.Place{{Name: engine.PlaceDirectory, State: engine.PlaceOK}, {Name: engine.PlaceLocal, State: local},
		{Name: engine.PlaceFileVault, State: fv}, {Name: engine.PlaceKeychain, State: keychain}}
}

// Build carries the engine's words through unchanged, drops what is not
// known, and sums the accounts up for a smart group.
func TestBuild(t *testing.T) {
	finished := t0.Add(time.Minute)
	alice := engine.Account{LocalUser: "alice", DirectoryUser: "alice.smith", DisplayName: "Alice Smith", State: engine.StateInSync,
		Reason: engine.T(codes.ReasonInSync), InSync: ptr(true), PasswordChangedAt: &t0, ExpiresAt: ptr(t0.Add(90 * 24 * time.Hour)),
		Places:        places(engine.PlaceOK, engine.PlaceOK, engine.PlaceOK),
		LastOperation: &engine.Operation{ID: "op1", Kind: engine.OpChange, State: engine.OpDone, StartedAt: t0, FinishedAt: &finished}}
	bob := engine.Account{LocalUser: "bob", DirectoryUser: "bob", State: engine.StateSyncNeeded, InSync: ptr(false),
		Reason: engine.T(codes.ReasonStopped, "error", codes.Platform), Places: places(engine.PlaceBehind, engine.PlaceBehind, engine.PlaceNotApplicable),
		LastOperation: &engine.Operation{ID: "op2", Kind: engine.OpSync, State: engine.OpSyncNeeded, StartedAt: t0, FinishedAt: &finished,
			Error: &engine.Error{Code: codes.Platform, Detail: "security: SecKeychainChange: The user name or passphrase you entered is not correct."}}}
	carol := engine.Account{LocalUser: "carol", DirectoryUser: "carol", State: engine.StateBusy, Reason: engine.T(codes.ReasonBusy),
		Places:        places(engine.PlaceUnknown, engine.PlaceUnknown, engine.PlaceUnknown),
		LastOperation: &engine.Operation{ID: "op3", Kind: engine.OpSyncForgot, State: engine.OpRunning, StartedAt: t0}}
	locked := engine.Account{LocalUser: "dave", DirectoryUser: "dave", State: engine.StateLocked, InSync: ptr(true), LockedUntil: ptr(t0.Add(15 * time.Minute)),
		Places: places(engine.PlaceOK, engine.PlaceOK, engine.PlaceOK)}

	tests := []struct {
		name     string
		accounts []engine.Account
		want     *bool
	}{
		{"no account", nil, nil},
		{"all in step", []engine.Account{alice, locked}, ptr(true)},
		{"one out of step", []engine.Account{alice, bob, locked}, ptr(false)},
		{"out of step first", []engine.Account{bob, alice}, ptr(false)},
		{"only one not known", []engine.Account{carol}, nil},
		{"one known, one not", []engine.Account{carol, alice}, ptr(true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := statusplist.Build("1.4.2", conn, tt.accounts)
			if (doc.PasswordInSync == nil) != (tt.want == nil) || (tt.want != nil && *doc.PasswordInSync != *tt.want) {
				t.Fatalf("passwordInSync = %v, want %v", fmtBool(doc.PasswordInSync), fmtBool(tt.want))
			}
			if len(doc.Accounts) != len(tt.accounts) {
				t.Fatalf("accounts = %v", doc.AccountNames())
			}
		})
	}

	doc := statusplist.Build("1.4.2", conn, []engine.Account{alice, bob, carol, locked})
	if doc.FormatVersion != statusplist.FormatVersion || doc.LockstepdVersion != "1.4.2" {
		t.Errorf("header = %d %q", doc.FormatVersion, doc.LockstepdVersion)
	}
	wantSince := time.Date(2026, 3, 10, 8, 41, 7, 0, time.UTC)
	if d := doc.Directory; d.State != "connected" || d.URL != conn.URL || d.Since == nil || !d.Since.Equal(wantSince) || d.Since.Location() != time.UTC || d.DeviceID != "dev-7f3a" || d.Problem != "" {
		t.Errorf("directory = %+v", d)
	}
	a := doc.Accounts["alice"]
	if a.DirectoryUser != "alice.smith" || *a.PasswordInSync != true || a.State != engine.StateInSync || a.Reason != codes.ReasonInSync ||
		a.Places[engine.PlaceKeychain] != engine.PlaceOK || len(a.Places) != 4 || a.LastSync == nil ||
		a.LastSync.Kind != engine.OpChange || a.LastSync.Result != engine.OpDone || !a.LastSync.FinishedAt.Equal(finished.Truncate(time.Second)) ||
		a.LastSync.Error != "" || a.PasswordExpiresAt == nil || a.LockedUntil != nil {
		t.Errorf("alice = %+v, last sync %+v", a, a.LastSync)
	}
	b := doc.Accounts["bob"]
	if *b.PasswordInSync || b.Places[engine.PlaceFileVault] != engine.PlaceNotApplicable || b.LastSync.Result != engine.OpSyncNeeded || b.LastSync.Error != codes.Platform {
		t.Errorf("bob = %+v, last sync %+v", b, b.LastSync)
	}
	c := doc.Accounts["carol"]
	if c.PasswordInSync != nil || c.State != engine.StateBusy || c.LastSync.Result != engine.OpRunning || c.LastSync.FinishedAt != nil {
		t.Errorf("carol = %+v, last sync %+v", c, c.LastSync)
	}
	if d := doc.Accounts["dave"]; d.LastSync != nil || d.LockedUntil == nil || d.State != engine.StateLocked {
		t.Errorf("dave = %+v", d)
	}

	// What it leaves out: names and words a person reads, and a tool's
	// own words (which may quote anything).
	b2, err := statusplist.Encode(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, not := range []string{"Alice Smith", "SecKeychainChange", "passphrase", "op1", "<string></string>"} {
		if bytes.Contains(b2, []byte(not)) {
			t.Errorf("the file holds %q:\n%s", not, b2)
		}
	}
}

func fmtBool(b *bool) string {
	if b == nil {
		return "absent"
	}
	if *b {
		return "true"
	}
	return "false"
}

// The file is an XML property list of plain types: booleans as <true/>
// and <false/>, times as <date>, no array (osquery numbers array items in
// a way the readers do not rely on), and it decodes back to itself.
func TestEncodeRoundTrip(t *testing.T) {
	finished := t0.Add(time.Minute)
	doc := statusplist.Build("1.4.2", conn, []engine.Account{{LocalUser: "alice", DirectoryUser: "alice", State: engine.StateInSync,
		InSync: ptr(true), Places: places(engine.PlaceOK, engine.PlaceOK, engine.PlaceOK),
		LastOperation: &engine.Operation{Kind: engine.OpSync, State: engine.OpDone, StartedAt: t0, FinishedAt: &finished}}})
	b, err := statusplist.Encode(doc)
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(b)), "")
	for _, want := range []string{`<?xmlversion="1.0"encoding="UTF-8"?>`, "<key>passwordInSync</key><true/>",
		"<key>startedAt</key><date>2026-03-10T08:41:07Z</date>", "<key>temporary</key><false/>"} {
		if !strings.Contains(flat, want) {
			t.Errorf("no %q in\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "<array>") {
		t.Errorf("an array in\n%s", b)
	}
	var generic map[string]any
	if format, err := plist.Unmarshal(b, &generic); err != nil || format != plist.XMLFormat {
		t.Fatalf("format %d, %v", format, err)
	}
	back, err := statusplist.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := statusplist.Encode(back)
	if !bytes.Equal(b, again) {
		t.Fatalf("round trip changed the file:\n%s\n---\n%s", b, again)
	}
}

// The writer leaves a world-readable file, makes its directory, and a
// reader never sees a half-written file.
func TestWriterWritesAtomically(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Library", "Application Support", "Lockstep")
	path := filepath.Join(dir, "status.plist")
	var mu sync.Mutex
	state := engine.StateInSync
	read := func() statusplist.Document {
		mu.Lock()
		defer mu.Unlock()
		return statusplist.Build("1", conn, []engine.Account{{LocalUser: "alice", State: state, InSync: ptr(state == engine.StateInSync)}})
	}
	w := statusplist.NewWriter(path, read)
	if err := w.Update(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != statusplist.Mode {
		t.Fatalf("stat = %v, %v", fi, err)
	}
	// Owned by whoever runs lockstepd: root on a Mac.
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
		t.Errorf("owner %v, want uid %d", fi.Sys(), os.Getuid())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o755 {
		t.Errorf("directory mode %v", di.Mode().Perm())
	}

	// Readers during many writes see one state or the other, whole.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	bad := make(chan string, 1)
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				doc, err := statusplist.Read(path)
				if err != nil || len(doc.Accounts) != 1 {
					select {
					case bad <- err.Error():
					default:
					}
					return
				}
			}
		}()
	}
	for i := range 60 {
		mu.Lock()
		state = []string{engine.StateSyncNeeded, engine.StateInSync}[i%2]
		mu.Unlock()
		if err := w.Update(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	readers.Wait()
	select {
	case e := <-bad:
		t.Fatalf("a reader saw a broken file: %s", e)
	default:
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}

	// Removed by someone: written again on the next change, even an
	// unchanged one.
	os.Remove(path)
	if err := w.Update(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal("not written again after removal")
	}
}

// Update returns only once the file shows a state read after it was
// called, also when other goroutines write at the same time: a change
// published after Update returns is in the file.
func TestUpdateSeesEveryChangeBeforeIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.plist")
	var mu sync.Mutex
	n := 0
	reads := 0
	w := statusplist.NewWriter(path, func() statusplist.Document {
		mu.Lock()
		defer mu.Unlock()
		reads++
		return statusplist.Build(strings.Repeat("v", n), conn, nil)
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				mu.Lock()
				n++
				mine := n
				mu.Unlock()
				if err := w.Update(); err != nil {
					t.Error(err)
					return
				}
				doc, err := statusplist.Read(path)
				if err != nil {
					t.Error(err)
					return
				}
				if len(doc.LockstepdVersion) < mine {
					t.Errorf("the file shows change %d after change %d was published", len(doc.LockstepdVersion), mine)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("400 updates, %d reads of the state", reads)
}

func TestReadable(t *testing.T) {
	base := t.TempDir()
	// t.TempDir makes a 0700 directory under another 0700 one.
	os.Chmod(filepath.Dir(base), 0o755)
	os.Chmod(base, 0o755)
	open := filepath.Join(base, "open")
	closed := filepath.Join(base, "closed")
	os.Mkdir(open, 0o755)
	os.Mkdir(closed, 0o700)
	if ok, dir := statusplist.Readable(filepath.Join(open, "status.plist")); !ok {
		t.Errorf("open directory reported closed at %s", dir)
	}
	if ok, dir := statusplist.Readable(filepath.Join(closed, "status.plist")); ok || dir != closed {
		t.Errorf("closed directory: %v %s", ok, dir)
	}
}
