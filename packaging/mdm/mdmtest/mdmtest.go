// Package mdmtest runs the readers of lockstepd's status file that ship in
// packaging/mdm as close to how IT's tools run them as Linux allows, and
// checks a status file against what the local API says:
//
//   - the Jamf Pro extension attribute runs as it is, under sh (dash) and
//     bash in POSIX mode; PlistBuddy is macOS only, so the script's own
//     fallback reads the file with Python's plistlib;
//   - osquery is not packaged for Debian, so the osquery queries run in
//     SQLite (osquery's SQL engine) over a plist table built from the file
//     the way osquery builds it (PlistRows, after osquery's source).
package mdmtest

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"howett.net/plist"
	_ "modernc.org/sqlite" // the SQL engine osquery embeds

	"github.com/lockstep-dev/lockstep/agent/statusplist"
	"github.com/lockstep-dev/lockstep/internal/tools/testtool"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/packaging/layout"
	"github.com/lockstep-dev/lockstep/packaging/mdm"
)

// RunEA runs the extension attribute against the status file at path
// under every POSIX shell at hand and returns what it reports (the text
// between <result> and </result>). It fails the test unless every shell
// prints exactly one <result> line, the same one, and nothing on stderr.
func RunEA(t testing.TB, path string) string {
	t.Helper()
	py := testtool.Need(t, "python3", "python3")
	script := filepath.Join(t.TempDir(), mdm.JamfEAFile)
	if err := os.WriteFile(script, mdm.JamfEA, 0o755); err != nil {
		t.Fatal(err)
	}
	var got string
	for _, sh := range [][]string{{"/bin/sh"}, {"bash", "--posix"}} {
		cmd := exec.CommandContext(t.Context(), sh[0], append(sh[1:], script)...)
		// What a Jamf policy run has: a bare PATH, no HOME of the user.
		cmd.Env = []string{"PATH=" + filepath.Dir(py) + ":/usr/bin:/bin", "LC_ALL=C", "LOCKSTEP_STATUS_PLIST=" + path}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil || errb.Len() > 0 {
			t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", sh[0], mdm.JamfEAFile, err, out.String(), errb.String())
		}
		line := strings.TrimSuffix(out.String(), "\n")
		v, ok := strings.CutPrefix(line, "<result>")
		if v, ok = strings.CutSuffix(v, "</result>"); !ok || strings.Contains(line, "\n") {
			t.Fatalf("%s: output is not one <result> line: %q", sh[0], out.String())
		}
		if got != "" && v != got {
			t.Fatalf("%s says %q where /bin/sh says %q", sh[0], v, got)
		}
		got = v
	}
	return got
}

// Row is one row of osquery's plist table.
type Row struct{ Key, Subkey, Value string }

// PlistRows builds osquery's plist table for the file at path as osquery
// 5 does (osquery/osquery, osquery/tables/system/darwin/preferences.cpp,
// genOSXPlist and genOSXPlistPrefValue; osquery/filesystem/darwin/plist.mm,
// filterDictionary and getValue): a row per leaf, key the top-level key,
// subkey the keys below it joined by "/", an empty dictionary one row with
// an empty value; a value as NSNumber's stringValue, so a boolean is 1 or
// 0 (plist.mm tests for NSNumber before YES and NO, and a plist boolean is
// an NSNumber; osquery's output shows it, github.com/drata/drata-agent
// issue 27) and a date its seconds since 1970 (integral here: the file
// holds whole seconds); data as base64. Arrays, whose item numbering
// differs between osquery versions, are refused: the status file has none.
func PlistRows(path string) ([]Row, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var top map[string]any
	if _, err := plist.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("osquery would not parse %s: %w", path, err)
	}
	var rows []Row
	var walk func(key, subkey string, v any) error
	walk = func(key, subkey string, v any) error {
		switch v := v.(type) {
		case map[string]any:
			if len(v) == 0 {
				rows = append(rows, Row{key, subkey, ""})
			}
			for _, k := range slices.Sorted(maps.Keys(v)) {
				sk := k
				if subkey != "" {
					sk = subkey + "/" + k
				}
				if err := walk(key, sk, v[k]); err != nil {
					return err
				}
			}
			return nil
		case []any:
			return fmt.Errorf("%s/%s is an array, which the readers do not expect", key, subkey)
		}
		s, err := osqueryValue(v)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", key, subkey, err)
		}
		rows = append(rows, Row{key, subkey, s})
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if err := walk(k, "", top[k]); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

func osqueryValue(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		if v {
			return "1", nil
		}
		return "0", nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case time.Time:
		if v.Nanosecond() != 0 {
			return "", fmt.Errorf("date %v is not whole seconds", v)
		}
		return strconv.FormatInt(v.Unix(), 10), nil
	case []byte:
		return base64.StdEncoding.EncodeToString(v), nil
	}
	return "", fmt.Errorf("unexpected plist value %T", v)
}

// Query runs an osquery query over the plist table of the status file at
// path, as osquery would on a Mac where the file sits at its default place
// (the queries name that path). Each row maps column names to values; a
// NULL is absent.
func Query(t testing.TB, query, path string) []map[string]string {
	t.Helper()
	rows, err := PlistRows(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE plist (key TEXT, subkey TEXT, value TEXT, path TEXT)`); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if _, err := db.Exec(`INSERT INTO plist VALUES (?, ?, ?, ?)`, r.Key, r.Subkey, r.Value, layout.StatusPlist); err != nil {
			t.Fatal(err)
		}
	}
	res, err := db.Query(query)
	if err != nil {
		t.Fatalf("the query does not run: %v", err)
	}
	defer res.Close()
	cols, _ := res.Columns()
	var out []map[string]string
	for res.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := res.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		for i, c := range cols {
			if vals[i].Valid {
				row[c] = vals[i].String
			}
		}
		out = append(out, row)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// CheckFile checks what any local user's inventory tool needs of the file:
// a regular file, mode 0644, owned by lockstepd's user (uid).
func CheckFile(path string, uid int) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != statusplist.Mode {
		return fmt.Errorf("%s is %v, want a regular file with mode %v", path, fi.Mode(), os.FileMode(statusplist.Mode))
	}
	if owner, ok := fileOwner(fi); ok && owner != uid {
		return fmt.Errorf("%s is owned by uid %d, want %d", path, owner, uid)
	}
	return nil
}

// Matches checks that the status file at path shows what the local API
// says to root: every account, with its state, verdict, places and last
// sync, lockstepd's version and its link to the directory.
func Matches(path string, st *localapi.Status) error {
	doc, err := statusplist.Read(path)
	if err != nil {
		return err
	}
	var diffs []string
	diff := func(what string, got, want any) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			diffs = append(diffs, fmt.Sprintf("%s: file %v, lockstepd %v", what, got, want))
		}
	}
	diff("formatVersion", doc.FormatVersion, statusplist.FormatVersion)
	diff("lockstepdVersion", doc.LockstepdVersion, st.Version)
	diff("directory.state", doc.Directory.State, st.Directory.State)
	diff("directory.url", doc.Directory.URL, st.Directory.URL)
	diff("directory.since", when(doc.Directory.Since), when(&st.Directory.Since))
	diff("directory.problem", doc.Directory.Problem, st.Directory.Problem)
	diff("directory.deviceID", doc.Directory.DeviceID, st.Directory.DeviceID)
	var names []string
	var summary *bool
	for _, a := range st.Accounts {
		names = append(names, a.LocalUser)
		if a.PasswordInSync != nil {
			all := *a.PasswordInSync && (summary == nil || *summary)
			summary = &all
		}
		f, ok := doc.Accounts[a.LocalUser]
		if !ok {
			continue
		}
		p := "accounts." + a.LocalUser + "."
		diff(p+"directoryUser", f.DirectoryUser, a.DirectoryUser)
		diff(p+"passwordInSync", boolText(f.PasswordInSync), boolText(a.PasswordInSync))
		diff(p+"state", f.State, a.State)
		diff(p+"reason", f.Reason, a.Reason.Code)
		diff(p+"temporary", f.Temporary, a.Temporary)
		places := map[string]string{}
		for _, pl := range a.Places {
			places[pl.Name] = pl.State
		}
		diff(p+"places", f.Places, places)
		diff(p+"passwordChangedAt", when(f.PasswordChangedAt), when(a.PasswordChangedAt))
		diff(p+"passwordExpiresAt", when(f.PasswordExpiresAt), when(a.ExpiresAt))
		diff(p+"lockedUntil", when(f.LockedUntil), when(a.LockedUntil))
		var got, want string
		if f.LastSync != nil {
			got = fmt.Sprintf("%s %s %s-%s %s", f.LastSync.Kind, f.LastSync.Result, when(&f.LastSync.StartedAt), when(f.LastSync.FinishedAt), f.LastSync.Error)
		}
		if op := a.LastOperation; op != nil {
			code := ""
			if op.Error != nil {
				code = op.Error.Code
			}
			want = fmt.Sprintf("%s %s %s-%s %s", op.Kind, op.State, when(&op.StartedAt), when(op.FinishedAt), code)
		}
		diff(p+"lastSync", got, want)
	}
	slices.Sort(names)
	diff("accounts", doc.AccountNames(), names)
	diff("passwordInSync", boolText(doc.PasswordInSync), boolText(summary))
	if len(diffs) > 0 {
		return errors.New(strings.Join(diffs, "\n"))
	}
	return nil
}

// when is a time as the file holds it: UTC, whole seconds; "" for none.
func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}

func boolText(b *bool) string {
	if b == nil {
		return "absent"
	}
	return strconv.FormatBool(*b)
}
