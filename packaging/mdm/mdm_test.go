package mdm_test

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/agent/statusplist"
	"github.com/lockstep-dev/lockstep/internal/tools/testtool"
	"github.com/lockstep-dev/lockstep/packaging/layout"
	"github.com/lockstep-dev/lockstep/packaging/mdm"
	"github.com/lockstep-dev/lockstep/packaging/mdm/mdmtest"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

var update = flag.Bool("update", false, "rewrite "+mdm.FleetQueriesFile+" from "+mdm.OsqueryFile)

func ptr[T any](v T) *T { return &v }

var t0 = time.Date(2026, 3, 10, 8, 41, 7, 0, time.UTC)

func places(local, keychain, fv string) []engine.Place {
	return []engine.Place{{Name: engine.PlaceDirectory, State: engine.PlaceOK}, {Name: engine.PlaceLocal, State: local},
		{Name: engine.PlaceFileVault, State: fv}, {Name: engine.PlaceKeychain, State: keychain}}
}

var (
	conn    = statusplist.Connection{State: "connected", URL: "wss://directory.example.com", Since: t0, DeviceID: "dev-7f3a"}
	inStep  = engine.Account{LocalUser: "alice", DirectoryUser: "alice.smith", State: engine.StateExpiring, InSync: ptr(true), Reason: engine.T(codes.ReasonExpires, "days", "5"), PasswordChangedAt: &t0, ExpiresAt: ptr(t0.Add(5 * 24 * time.Hour)), Places: places(engine.PlaceOK, engine.PlaceOK, engine.PlaceOK), LastOperation: &engine.Operation{Kind: engine.OpChange, State: engine.OpDone, StartedAt: t0, FinishedAt: ptr(t0.Add(4 * time.Second))}}
	behind  = engine.Account{LocalUser: "bob", DirectoryUser: "bob", State: engine.StateSyncNeeded, InSync: ptr(false), Reason: engine.T(codes.ReasonStopped, "error", codes.Platform), Places: places(engine.PlaceBehind, engine.PlaceBehind, engine.PlaceNotApplicable), LastOperation: &engine.Operation{Kind: engine.OpSync, State: engine.OpSyncNeeded, StartedAt: t0, FinishedAt: ptr(t0.Add(time.Minute)), Error: &engine.Error{Code: codes.Platform}}}
	working = engine.Account{LocalUser: "carol", DirectoryUser: "carol", State: engine.StateBusy, Reason: engine.T(codes.ReasonBusy), Places: places(engine.PlaceUnknown, engine.PlaceUnknown, engine.PlaceUnknown), LastOperation: &engine.Operation{Kind: engine.OpSyncForgot, State: engine.OpRunning, StartedAt: t0}}
	locked  = engine.Account{LocalUser: "dave", DirectoryUser: "dave", State: engine.StateLocked, InSync: ptr(true), Reason: engine.T(codes.ReasonLocked), LockedUntil: ptr(t0.Add(15 * time.Minute)), Temporary: true, Places: places(engine.PlaceOK, engine.PlaceOK, engine.PlaceOK)}
)

// write puts a status file built by lockstepd's own code in a temp dir.
func write(t *testing.T, accounts ...engine.Account) string {
	t.Helper()
	b, err := statusplist.Encode(statusplist.Build("1.4.2", conn, accounts))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "status.plist")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestJamfEALint checks the script with dash and bash in POSIX mode and
// shellcheck (Debian package shellcheck, which CI installs).
func TestJamfEALint(t *testing.T) {
	p := filepath.Join(t.TempDir(), mdm.JamfEAFile)
	if err := os.WriteFile(p, mdm.JamfEA, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{{"/bin/sh", "-n", p}, {"bash", "--posix", "-n", p}} {
		if out, err := exec.CommandContext(t.Context(), argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Errorf("%v: %v\n%s", argv, err, out)
		}
	}
	sc := testtool.Need(t, "shellcheck", "shellcheck")
	if out, err := exec.CommandContext(t.Context(), sc, "-s", "sh", "-S", "info", p).CombinedOutput(); err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
	if fi, err := os.Stat(mdm.JamfEAFile); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("%s is not executable in the tree: %v", mdm.JamfEAFile, fi.Mode())
	}
	// Where it looks, unless a test says otherwise: the daemon's default.
	if !strings.Contains(string(mdm.JamfEA), `STATUS_PLIST="`+layout.StatusPlist+`"`) {
		t.Errorf("the script does not read %s", layout.StatusPlist)
	}
}

func TestJamfEAReports(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "status.plist")
	os.WriteFile(garbage, []byte("<?xml version=\"1.0\"?><plist><dict><key>pass"), 0o644)
	unreadable := write(t, inStep)
	os.Chmod(unreadable, 0)
	tests := []struct {
		name, path, want string
		root             bool // root reads any file
	}{
		{"every account in step", write(t, inStep, locked), "true", false},
		{"one account needs a sync", write(t, inStep, behind), "false", false},
		{"only an account whose state is not known", write(t, working), "unknown", false},
		{"one known in step, one running", write(t, working, inStep), "true", false},
		{"no account", write(t), "unknown", false},
		{"no status file", filepath.Join(t.TempDir(), "none.plist"), "unknown", false},
		{"a damaged file", garbage, "unknown", false},
		{"a file it may not read", unreadable, "unknown", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() == 0 {
				t.Skip("root reads a mode 000 file")
			}
			if got := mdmtest.RunEA(t, tt.path); got != tt.want {
				t.Fatalf("the extension attribute says %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOsqueryStatusQuery(t *testing.T) {
	rows := mdmtest.Query(t, mdm.StatusQuery, write(t, inStep, behind, working, locked))
	want := []map[string]string{
		{"local_user": "alice", "directory_user": "alice.smith", "password_in_sync": "true", "state": "expiring", "reason": codes.ReasonExpires,
			"directory_place": "ok", "local_place": "ok", "keychain_place": "ok", "filevault_place": "ok",
			"last_sync_kind": "change", "last_sync_result": "done", "last_sync_at": "1773132071", "password_expires_at": "1773564067"},
		{"local_user": "bob", "directory_user": "bob", "password_in_sync": "false", "state": "sync_needed", "reason": codes.ReasonStopped,
			"directory_place": "ok", "local_place": "behind", "keychain_place": "behind", "filevault_place": "not_applicable",
			"last_sync_kind": "sync", "last_sync_result": "sync_needed", "last_sync_at": "1773132127", "last_sync_error": codes.Platform},
		{"local_user": "carol", "directory_user": "carol", "password_in_sync": "unknown", "state": "busy", "reason": codes.ReasonBusy,
			"directory_place": "ok", "local_place": "unknown", "keychain_place": "unknown", "filevault_place": "unknown",
			"last_sync_kind": "sync_forgot_previous", "last_sync_result": "running"},
		{"local_user": "dave", "directory_user": "dave", "password_in_sync": "true", "state": "locked", "reason": codes.ReasonLocked,
			"directory_place": "ok", "local_place": "ok", "keychain_place": "ok", "filevault_place": "ok"},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %v", rows)
	}
	for i, w := range want {
		w["lockstepd_version"], w["directory_state"], w["directory_since"] = "1.4.2", "connected", "1773132067"
		if got := rows[i]; !equal(got, w) {
			t.Errorf("row %d:\n got %v\nwant %v", i, got, w)
		}
	}
	if rows := mdmtest.Query(t, mdm.StatusQuery, write(t)); len(rows) != 0 {
		t.Errorf("no account, yet rows: %v", rows)
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestOsqueryPolicyQuery(t *testing.T) {
	for _, tt := range []struct {
		name string
		path string
		rows int
	}{
		{"in step", write(t, inStep, locked), 1},
		{"a sync needed", write(t, inStep, behind), 0},
		{"not known", write(t, working), 0},
	} {
		if rows := mdmtest.Query(t, mdm.InSyncPolicy, tt.path); len(rows) != tt.rows {
			t.Errorf("%s: %d rows, want %d: %v", tt.name, len(rows), tt.rows, rows)
		}
	}
}

// Every key path the queries name exists in the status file: in a file
// that has every key, each is a row of osquery's plist table.
func TestQueriesNameOnlyKeysTheFileHas(t *testing.T) {
	full := behind
	full.ExpiresAt, full.LockedUntil, full.PasswordChangedAt = &t0, &t0, &t0
	rows, err := mdmtest.PlistRows(write(t, full))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, r := range rows {
		have[r.Key+"|"+r.Subkey] = true
		if k, field, ok := strings.Cut(r.Subkey, "/"); ok && r.Key == statusplist.KeyAccounts && k == "bob" {
			have["accounts field|"+field] = true
		}
	}
	lit := regexp.MustCompile(`\b(key|subkey|field)\s*=\s*'([^']*)'`)
	for name, q := range map[string]string{mdm.OsqueryFile: mdm.StatusQuery, mdm.OsqueryPolicy: mdm.InSyncPolicy} {
		var key string
		n := 0
		for _, line := range strings.Split(q, "\n") {
			for _, m := range lit.FindAllStringSubmatch(line, -1) {
				n++
				switch m[1] {
				case "key":
					key = m[2]
					if !slices.ContainsFunc(rows, func(r mdmtest.Row) bool { return r.Key == key }) {
						t.Errorf("%s names key %q, which the file does not have", name, key)
					}
				case "subkey":
					if m[2] != "" && !have[key+"|"+m[2]] {
						t.Errorf("%s names %s/%s, which the file does not have", name, key, m[2])
					}
				case "field":
					if !have["accounts field|"+m[2]] {
						t.Errorf("%s names the account field %q, which the file does not have", name, m[2])
					}
				}
			}
		}
		if n < 2 {
			t.Errorf("%s: only %d key names found; is the pattern still right?", name, n)
		}
		if !strings.Contains(q, "path = '"+layout.StatusPlist+"'") {
			t.Errorf("%s does not read %s", name, layout.StatusPlist)
		}
	}
}

// fleetDoc is what fleetctl apply takes for a query (fleetdm/fleet docs,
// "fleetctl apply": apiVersion v1, kind query, spec name, description,
// query, interval, platform).
type fleetDoc struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Spec       struct {
		Name        string `yaml:"name"`
		Description string `yaml:"description"`
		Query       string `yaml:"query"`
		Interval    int    `yaml:"interval"`
		Platform    string `yaml:"platform"`
	} `yaml:"spec"`
}

// fleetYAML renders the osquery query as a fleetctl apply document: the
// query without its header comment, every line indented under query.
func fleetYAML() []byte {
	lines := strings.Split(strings.TrimSpace(mdm.StatusQuery), "\n")
	for len(lines) > 0 && strings.HasPrefix(lines[0], "--") {
		lines = lines[1:]
	}
	var b strings.Builder
	b.WriteString("# Generated from " + mdm.OsqueryFile + " by `go test ./packaging/mdm -update`; apply with\n")
	b.WriteString("# fleetctl apply -f " + mdm.FleetQueriesFile + "\n")
	b.WriteString("---\napiVersion: v1\nkind: query\nspec:\n")
	b.WriteString("  name: Lockstep sync state\n")
	b.WriteString("  description: Each account's Lockstep sync state on a Mac (password_in_sync true, false or unknown; state; each place; last sync), from lockstepd's status file.\n")
	b.WriteString("  platform: darwin\n  interval: 3600\n  query: |\n")
	for _, l := range lines {
		if l == "" {
			b.WriteString("\n")
			continue
		}
		b.WriteString("    " + l + "\n")
	}
	return []byte(b.String())
}

func TestFleetQueriesFile(t *testing.T) {
	want := fleetYAML()
	if *update {
		if err := os.WriteFile(mdm.FleetQueriesFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(mdm.FleetQueries) != string(want) {
		t.Fatalf("%s is stale: go test ./packaging/mdm -update", mdm.FleetQueriesFile)
	}
	var doc fleetDoc
	if err := yaml.Unmarshal(mdm.FleetQueries, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.APIVersion != "v1" || doc.Kind != "query" || doc.Spec.Name == "" || doc.Spec.Platform != "darwin" || doc.Spec.Interval <= 0 {
		t.Fatalf("document = %+v", doc)
	}
	// The query Fleet gets is the one tested here.
	rows := mdmtest.Query(t, doc.Spec.Query, write(t, inStep, behind))
	if len(rows) != 2 || rows[0]["password_in_sync"] != "true" || rows[1]["password_in_sync"] != "false" {
		t.Fatalf("Fleet's copy of the query gives %v", rows)
	}
}
