package packaging

import (
	"bytes"
	"crypto/sha256"
	"debug/macho"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/internal/tools/testtool"

	"howett.net/plist"

	"github.com/lockstep-dev/lockstep/packaging/launchd"
	"github.com/lockstep-dev/lockstep/packaging/pkg"
	"github.com/lockstep-dev/lockstep/packaging/scripts"
	"github.com/lockstep-dev/lockstep/packaging/xar"
)

var (
	buildMu sync.Mutex
	builds  = map[string][]byte{}
)

// darwin cross-compiles packaging/testdata/hello for darwin/arch with
// CGO_ENABLED=0, as the release binaries are built: a real thin Mach-O.
func darwin(t *testing.T, arch string) []byte {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := builds[arch]; ok {
		return b
	}
	_, file, _, _ := runtime.Caller(0)
	out := filepath.Join(t.TempDir(), "hello-"+arch)
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./packaging/testdata/hello")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..")
	cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH="+arch, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build darwin/%s: %v\n%s", arch, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	builds[arch] = b
	return b
}

// fakeApp lays out a Lockstep.app as `make app` does on a Mac: Info.plist
// from launchd.Info, a universal executable, an icon.
func fakeApp(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "Lockstep.app")
	os.MkdirAll(filepath.Join(dir, "Contents", "MacOS"), 0o755)
	os.MkdirAll(filepath.Join(dir, "Contents", "Resources"), 0o755)
	info, err := launchd.Marshal(launchd.Info("1.2.3", true))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "Contents", "Info.plist"), info, 0o644)
	exe, err := Universal([][]byte{darwin(t, "arm64"), darwin(t, "amd64")})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "Contents", "MacOS", "Lockstep"), exe, 0o755)
	os.WriteFile(filepath.Join(dir, "Contents", "Resources", launchd.IconFile), []byte("icns"), 0o644)
	return dir
}

func inputs(t *testing.T, app string) Inputs {
	return Inputs{
		Version: "1.2.3",
		MTime:   time.Unix(1700000000, 0),
		Daemon:  [][]byte{darwin(t, "arm64"), darwin(t, "amd64")},
		CLI:     [][]byte{darwin(t, "amd64"), darwin(t, "arm64")},
		AppDir:  app,
	}
}

var (
	mainOnce sync.Once
	mainPkg  []byte
)

// mainPackage builds the package with the app once for the tests that
// only read it (the race detector makes deflate slow).
func mainPackage(t *testing.T) []byte {
	t.Helper()
	mainOnce.Do(func() { mainPkg = buildMain(t, inputs(t, fakeApp(t))) })
	if mainPkg == nil {
		t.Fatal("building the main package failed")
	}
	return mainPkg
}

func buildMain(t *testing.T, in Inputs) []byte {
	t.Helper()
	p, err := MainProduct(in)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := pkg.Build(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type entry struct {
	mode  string
	owner string
}

// wantPayload is what the main package installs, with the app.
var wantPayload = map[string]entry{
	".":                                    {"drwxr-xr-x", "0/0"},
	"./Applications":                       {"drwxrwxr-x", "0/80"},
	"./Applications/Lockstep.app":          {"drwxr-xr-x", "0/0"},
	"./Applications/Lockstep.app/Contents": {"drwxr-xr-x", "0/0"},
	"./Applications/Lockstep.app/Contents/Info.plist":              {"-rw-r--r--", "0/0"},
	"./Applications/Lockstep.app/Contents/MacOS":                   {"drwxr-xr-x", "0/0"},
	"./Applications/Lockstep.app/Contents/MacOS/Lockstep":          {"-rwxr-xr-x", "0/0"},
	"./Applications/Lockstep.app/Contents/Resources":               {"drwxr-xr-x", "0/0"},
	"./Applications/Lockstep.app/Contents/Resources/Lockstep.icns": {"-rw-r--r--", "0/0"},
	"./Library":                                           {"drwxr-xr-x", "0/0"},
	"./Library/Application Support":                       {"drwxr-xr-x", "0/80"},
	"./Library/Application Support/Lockstep":              {"drwxr-xr-x", "0/0"},
	"./Library/Application Support/Lockstep/lockstep":     {"-rwxr-xr-x", "0/0"},
	"./Library/Application Support/Lockstep/lockstepd":    {"-rwxr-xr-x", "0/0"},
	"./Library/Application Support/Lockstep/uninstall.sh": {"-rwxr-xr-x", "0/0"},
	"./Library/LaunchAgents":                              {"drwxr-xr-x", "0/0"},
	"./Library/LaunchAgents/dev.lockstep.menu.plist":      {"-rw-r--r--", "0/0"},
	"./Library/LaunchDaemons":                             {"drwxr-xr-x", "0/0"},
	"./Library/LaunchDaemons/dev.lockstep.agent.plist":    {"-rw-r--r--", "0/0"},
}

func modeOf(m uint32) string {
	s := []byte("?---------")
	if m&0o040000 != 0 {
		s[0] = 'd'
	} else if m&0o100000 != 0 {
		s[0] = '-'
	}
	for i := range 9 {
		if m&(1<<(8-i)) != 0 {
			s[i+1] = "rwxrwxrwx"[i]
		}
	}
	return string(s)
}

// TestMainPackage builds the package from real darwin executables and a
// Mac-built app bundle, reads it back with the project's reader and
// compares every part with what was packed.
func TestMainPackage(t *testing.T) {
	b := mainPackage(t)
	rep, err := pkg.Inspect(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Components) != 1 || rep.Components[0].Name != MainComponent {
		t.Fatalf("components %+v", rep.Components)
	}
	c := rep.Components[0]
	got := map[string]entry{}
	data := map[string][]byte{}
	for _, m := range c.Payload {
		got[m.Path] = entry{modeOf(m.Mode), itoa(m.UID) + "/" + itoa(m.GID)}
		data[m.Path] = m.Data
		if m.MTime != 1700000000 {
			t.Errorf("%s mtime %d", m.Path, m.MTime)
		}
	}
	if !reflect.DeepEqual(got, wantPayload) {
		t.Errorf("payload\n got %v\nwant %v", got, wantPayload)
	}
	if len(c.Bom) != len(wantPayload) {
		t.Errorf("Bom lists %d paths", len(c.Bom))
	}

	// The daemon and the CLI are universal binaries whose slices are the
	// thin executables, byte for byte.
	for _, p := range []string{"./Library/Application Support/Lockstep/lockstepd", "./Library/Application Support/Lockstep/lockstep"} {
		ff, err := macho.NewFatFile(bytes.NewReader(data[p]))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		cpus := map[macho.Cpu][]byte{macho.CpuArm64: darwin(t, "arm64"), macho.CpuAmd64: darwin(t, "amd64")}
		for _, a := range ff.Arches {
			if !bytes.Equal(data[p][a.Offset:a.Offset+a.Size], cpus[a.Cpu]) {
				t.Errorf("%s: %v slice differs from the thin binary", p, a.Cpu)
			}
			delete(cpus, a.Cpu)
		}
		if len(cpus) != 0 {
			t.Errorf("%s lacks %v", p, cpus)
		}
		ff.Close()
	}

	// The plists are the launchd package's, and parse back.
	for p, want := range map[string]launchd.Job{
		"./Library/LaunchDaemons/dev.lockstep.agent.plist": launchd.Daemon(),
		"./Library/LaunchAgents/dev.lockstep.menu.plist":   launchd.MenuAgent(),
	} {
		var j launchd.Job
		if _, err := plist.Unmarshal(data[p], &j); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !reflect.DeepEqual(j, want) {
			t.Errorf("%s: %+v", p, j)
		}
	}
	un, _ := scripts.Render(scripts.Uninstall, scripts.Production("1.2.3"))
	if !bytes.Equal(data["./Library/Application Support/Lockstep/uninstall.sh"], un) {
		t.Error("uninstall.sh is not the rendered uninstaller")
	}
	sc := map[string][]byte{}
	for _, m := range c.Scripts {
		sc[m.Path] = m.Data
	}
	for _, name := range []string{scripts.Preinstall, scripts.Postinstall} {
		want, _ := scripts.Render(name, scripts.Production("1.2.3"))
		if !bytes.Equal(sc["./"+name], want) {
			t.Errorf("Scripts/%s is not the rendered script", name)
		}
	}
	if c.Info.Identifier != "dev.lockstep.agent.pkg" || c.Info.Version != "1.2.3" || c.Info.Payload.NumberOfFiles != len(wantPayload) {
		t.Errorf("PackageInfo:\n%s", c.RawInfo)
	}
	if kb := c.Info.Payload.InstallKBytes; kb*1024 < len(data["./Library/Application Support/Lockstep/lockstepd"])*3 {
		t.Errorf("installKBytes %d too small for three universal binaries", kb)
	}
	d := rep.Distribution
	if d.Options.HostArchitectures != "arm64,x86_64" || d.Options.Customize != "never" || d.Title != "Lockstep" {
		t.Errorf("Distribution:\n%s", rep.RawDistribution)
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func TestMainPackageWithoutApp(t *testing.T) {
	b := buildMain(t, inputs(t, ""))
	rep, err := pkg.Inspect(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rep.Components[0].Payload {
		if strings.HasPrefix(m.Path, "./Applications") || strings.HasPrefix(m.Path, "./Library/LaunchAgents") {
			t.Errorf("a package without the app holds %s", m.Path)
		}
	}
}

func TestMainPackageRejects(t *testing.T) {
	script := []byte("#!/bin/sh\necho not mach-o\n")
	for name, in := range map[string]Inputs{
		"script as daemon":   {Version: "1", Daemon: [][]byte{script}, CLI: [][]byte{darwin(t, "arm64")}},
		"no CLI":             {Version: "1", Daemon: [][]byte{darwin(t, "arm64")}},
		"two arm64 slices":   {Version: "1", Daemon: [][]byte{darwin(t, "arm64"), darwin(t, "arm64")}, CLI: [][]byte{darwin(t, "arm64")}},
		"app without bundle": {Version: "1", Daemon: [][]byte{darwin(t, "arm64")}, CLI: [][]byte{darwin(t, "arm64")}, AppDir: t.TempDir()},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := MainProduct(in); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	t.Run("app with a symlink", func(t *testing.T) {
		app := fakeApp(t)
		os.Symlink("Lockstep", filepath.Join(app, "Contents", "MacOS", "alias"))
		if _, err := MainProduct(inputs(t, app)); err == nil || !strings.Contains(err.Error(), "symlink") && !strings.Contains(err.Error(), "regular files only") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("app with a wrong identifier", func(t *testing.T) {
		app := fakeApp(t)
		info := launchd.Info("1", false)
		info.CFBundleIdentifier = "com.example.other"
		b, _ := launchd.Marshal(info)
		os.WriteFile(filepath.Join(app, "Contents", "Info.plist"), b, 0o644)
		if _, err := MainProduct(inputs(t, app)); err == nil {
			t.Fatal("accepted")
		}
	})
}

// TestDeterministic builds the package again, from a fresh copy of the app
// bundle in another directory, and expects the same bytes.
func TestDeterministic(t *testing.T) {
	a := sha256.Sum256(mainPackage(t))
	b := sha256.Sum256(buildMain(t, inputs(t, fakeApp(t))))
	if a != b {
		t.Fatal("two builds from the same inputs differ")
	}
}

func TestUninstallPackage(t *testing.T) {
	p, err := UninstallProduct("1.2.3", time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := pkg.Build(&b, p); err != nil {
		t.Fatal(err)
	}
	rep, err := pkg.Inspect(bytes.NewReader(b.Bytes()), int64(b.Len()))
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Components[0]
	if c.Info.Identifier != "dev.lockstep.uninstall.pkg" || c.Payload != nil || c.Bom != nil || c.Info.Scripts.Postinstall == nil || c.Info.Scripts.Preinstall != nil {
		t.Fatalf("uninstall component:\n%s", c.RawInfo)
	}
	want, _ := scripts.Render(scripts.Uninstall, scripts.Production("1.2.3"))
	for _, m := range c.Scripts {
		if m.Path == "./postinstall" && !bytes.Equal(m.Data, want) {
			t.Error("postinstall is not the uninstaller")
		}
	}
	checkWithIndependentReaders(t, b.Bytes(), []string{"Distribution", "LockstepUninstall.pkg/Scripts", "LockstepUninstall.pkg/PackageInfo"})
}

// checkWithIndependentReaders has bsdtar and 7-Zip list and test the
// package and returns bsdtar's listing.
func checkWithIndependentReaders(t *testing.T, pkgBytes []byte, members []string) string {
	t.Helper()
	bsdtar, sz := testtool.Need(t, "bsdtar", "libarchive-tools"), testtool.Need(t, "7zz", "7zip")
	p := filepath.Join(t.TempDir(), "Lockstep.pkg")
	if err := os.WriteFile(p, pkgBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := testtool.Run(t, bsdtar, "-tvf", p)
	if err != nil {
		t.Fatalf("bsdtar -tvf: %v\n%s", err, out)
	}
	for _, m := range members {
		if !strings.Contains(out, m) {
			t.Errorf("bsdtar does not list %s:\n%s", m, out)
		}
	}
	x := t.TempDir()
	if out, err := testtool.Run(t, bsdtar, "-xf", p, "-C", x); err != nil {
		t.Fatalf("bsdtar -x: %v\n%s", err, out)
	}
	if out, err := testtool.Run(t, sz, "t", p); err != nil || !strings.Contains(out, "Everything is Ok") || strings.Contains(out, "WARNING") {
		t.Fatalf("7zz t: %v\n%s", err, out)
	}
	return out
}

// TestIndependentReaders has libarchive and 7-Zip accept the package,
// libarchive read the Payload cpio (modes, owners, sizes) as packed, and
// both, and the project's reader, refuse it with a byte flipped.
func TestIndependentReaders(t *testing.T) {
	b := mainPackage(t)
	checkWithIndependentReaders(t, b, []string{"Distribution", "Lockstep.pkg/Bom", "Lockstep.pkg/Payload", "Lockstep.pkg/Scripts", "Lockstep.pkg/PackageInfo"})
	bsdtar, sz := testtool.Need(t, "bsdtar", "libarchive-tools"), testtool.Need(t, "7zz", "7zip")

	// libarchive reads the gzip'd cpio Payload on its own.
	dir := t.TempDir()
	pkgPath := filepath.Join(dir, "Lockstep.pkg")
	os.WriteFile(pkgPath, b, 0o644)
	payload := filepath.Join(dir, "Payload")
	cmd := exec.CommandContext(t.Context(), bsdtar, "-xOf", pkgPath, "Lockstep.pkg/Payload")
	pb, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(payload, pb, 0o644)
	out, err := testtool.Run(t, bsdtar, "-tvf", payload, "--numeric-owner")
	if err != nil {
		t.Fatalf("bsdtar reading the Payload: %v\n%s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		// mode links uid gid size month day year name...
		name := strings.Join(f[8:], " ")
		lines = append(lines, name+" "+f[0]+" "+f[2]+"/"+f[3])
	}
	var want []string
	for p, e := range wantPayload {
		want = append(want, p+" "+e.mode+" "+e.owner)
	}
	sort.Strings(lines)
	sort.Strings(want)
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("bsdtar's view of the Payload\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	// A flipped byte in any member is caught by all three readers.
	a, err := xar.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	heap := 28 + int(a.Header.TOCCompressed)
	for _, e := range a.Entries {
		if e.Type != "file" {
			continue
		}
		t.Run("corrupt "+e.Path, func(t *testing.T) {
			bad := bytes.Clone(b)
			bad[heap+int(e.Offset+e.Length/2)] ^= 0x01
			if _, err := pkg.Inspect(bytes.NewReader(bad), int64(len(bad))); err == nil {
				t.Error("the project's reader accepted it")
			}
			p := filepath.Join(t.TempDir(), "bad.pkg")
			os.WriteFile(p, bad, 0o644)
			if out, err := testtool.Run(t, bsdtar, "-xf", p, "-C", t.TempDir()); err == nil {
				t.Errorf("bsdtar accepted it:\n%s", out)
			}
			if out, err := testtool.Run(t, sz, "t", p); err == nil && !strings.Contains(out, "ERROR") {
				t.Errorf("7zz accepted it:\n%s", out)
			}
		})
	}
}
