package pkg

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/packaging/bom"
	"github.com/lockstep-dev/lockstep/packaging/xar"
)

var epoch = time.Unix(1700000000, 0)

func sampleTree(t *testing.T) *Tree {
	t.Helper()
	tr := NewTree()
	must(t, tr.Dir("/Library", 0o755, 0, 0))
	must(t, tr.Dir("/Library/Application Support", 0o755, 0, 80))
	must(t, tr.File("/Library/Application Support/Demo/tool", []byte("\xcf\xfa\xed\xfebinary"), 0o755, 0, 0))
	must(t, tr.File("/Library/Application Support/Demo/empty", nil, 0o600, 0, 0))
	must(t, tr.File("/Library/LaunchDaemons/demo.plist", []byte("<plist/>\n"), 0o644, 0, 0))
	must(t, tr.File("/usr/local/bin/setuid-demo", []byte("x"), 0o4755, 0, 0))
	return tr
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sampleProduct(t *testing.T) Product {
	return Product{
		Title: "Demo", HostArchitectures: "arm64,x86_64", MinOS: "12.0", MTime: epoch,
		Components: []Component{{
			Name: "Demo.pkg", ID: "dev.example.demo", Version: "1.0", Payload: sampleTree(t),
			Scripts: map[string][]byte{"preinstall": []byte("#!/bin/sh\nexit 0\n"), "postinstall": []byte("#!/bin/sh\necho post\n")},
		}},
	}
}

func build(t *testing.T, p Product) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Build(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func inspect(t *testing.T, b []byte) *Report {
	t.Helper()
	r, err := Inspect(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBuildAndReadBack(t *testing.T) {
	tree := sampleTree(t)
	b := build(t, sampleProduct(t))
	r := inspect(t, b)

	var toc []string
	for _, e := range r.TOC {
		toc = append(toc, e.Path)
	}
	if got := strings.Join(toc, " "); got != "Distribution Demo.pkg Demo.pkg/Bom Demo.pkg/Payload Demo.pkg/Scripts Demo.pkg/PackageInfo" {
		t.Fatalf("xar TOC: %s", got)
	}
	if len(r.Components) != 1 {
		t.Fatalf("%d components", len(r.Components))
	}
	c := r.Components[0]
	nodes := tree.Nodes()
	if len(c.Payload) != len(nodes) {
		t.Fatalf("payload has %d entries, packed %d", len(c.Payload), len(nodes))
	}
	for i, n := range nodes {
		m := c.Payload[i]
		wantType := uint32(0o100000)
		if n.Dir {
			wantType = 0o040000
		}
		if m.Path != dotPath(n.Path) || m.Mode != wantType|n.Mode || m.UID != n.UID || m.GID != n.GID || m.MTime != epoch.Unix() || !bytes.Equal(m.Data, n.Data) {
			t.Errorf("payload entry %d: got %s %o %d/%d %d, packed %s %o %d/%d", i, m.Path, m.Mode, m.UID, m.GID, m.MTime, n.Path, n.Mode, n.UID, n.GID)
		}
	}
	wantBom := `.	40755	0/0
./Library	40755	0/0
./Library/Application Support	40755	0/80
./Library/Application Support/Demo	40755	0/0
./Library/Application Support/Demo/empty	100600	0/0	0	4294967295
./Library/Application Support/Demo/tool	100755	0/0	10	` + itoa(bom.Checksum([]byte("\xcf\xfa\xed\xfebinary"))) + `
./Library/LaunchDaemons	40755	0/0
./Library/LaunchDaemons/demo.plist	100644	0/0	9	` + itoa(bom.Checksum([]byte("<plist/>\n"))) + `
./usr	40755	0/0
./usr/local	40755	0/0
./usr/local/bin	40755	0/0
./usr/local/bin/setuid-demo	104755	0/0	1	` + itoa(bom.Checksum([]byte("x"))) + `
`
	if got := bom.Listing(c.Bom); got != wantBom {
		t.Errorf("Bom listing\n%s\nwant\n%s", got, wantBom)
	}
	if c.Info.Identifier != "dev.example.demo" || c.Info.Version != "1.0" || c.Info.InstallLocation != "/" || c.Info.Auth != "root" ||
		c.Info.Payload.NumberOfFiles != 12 || c.Info.Scripts.Preinstall.File != "./preinstall" || c.Info.Scripts.Postinstall.File != "./postinstall" {
		t.Errorf("PackageInfo %+v\n%s", c.Info, c.RawInfo)
	}
	if c.Info.Payload.InstallKBytes < 1 {
		t.Errorf("installKBytes %d", c.Info.Payload.InstallKBytes)
	}
	var scripts []string
	for _, s := range c.Scripts {
		scripts = append(scripts, s.Path+":"+modeString(s.Mode))
	}
	if got := strings.Join(scripts, " "); got != ".:drwxr-xr-x ./postinstall:-rwxr-xr-x ./preinstall:-rwxr-xr-x" {
		t.Errorf("Scripts: %s", got)
	}
	d := r.Distribution
	if d.Title != "Demo" || d.Options.HostArchitectures != "arm64,x86_64" || d.Options.Customize != "never" ||
		d.VolumeCheck.OS.Min != "12.0" || len(d.PkgRefs) != 1 || strings.TrimSpace(d.PkgRefs[0].Location) != "#Demo.pkg" {
		t.Errorf("Distribution:\n%s", r.RawDistribution)
	}
	if d.PkgRefs[0].InstallKBytes != c.Info.Payload.InstallKBytes {
		t.Errorf("Distribution installKBytes %d, PackageInfo %d", d.PkgRefs[0].InstallKBytes, c.Info.Payload.InstallKBytes)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-rwsr-xr-x 0/0", "./usr/local/bin/setuid-demo", "payload: 12 files", "hostArchitectures=arm64,x86_64"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func TestDeterministic(t *testing.T) {
	a, b := build(t, sampleProduct(t)), build(t, sampleProduct(t))
	if !bytes.Equal(a, b) {
		t.Fatal("same inputs, different bytes")
	}
	p := sampleProduct(t)
	p.MTime = epoch.Add(time.Second)
	if bytes.Equal(a, build(t, p)) {
		t.Fatal("a different mtime did not change the package")
	}
}

func TestPayloadFree(t *testing.T) {
	b := build(t, Product{Title: "Remove", Components: []Component{{
		Name: "Remove.pkg", ID: "dev.example.remove", Version: "1", Scripts: map[string][]byte{"postinstall": []byte("#!/bin/sh\n")},
	}}})
	r := inspect(t, b)
	c := r.Components[0]
	if c.Bom != nil || c.Payload != nil || c.Info.Payload != nil || len(c.Scripts) != 2 {
		t.Fatalf("payload-free component: %+v", c)
	}
	for _, e := range r.TOC {
		if strings.HasSuffix(e.Path, "/Payload") || strings.HasSuffix(e.Path, "/Bom") {
			t.Errorf("payload-free package holds %s", e.Path)
		}
	}
}

func TestBuildRejects(t *testing.T) {
	tests := map[string]func(p *Product){
		"no title":             func(p *Product) { p.Title = "" },
		"bad component name":   func(p *Product) { p.Components[0].Name = "Demo" },
		"unknown script":       func(p *Product) { p.Components[0].Scripts["postflight"] = []byte("#!/bin/sh\n") },
		"script without #!":    func(p *Product) { p.Components[0].Scripts["postinstall"] = []byte("echo\n") },
		"nothing to install":   func(p *Product) { p.Components[0].Payload, p.Components[0].Scripts = nil, nil },
		"repeated component":   func(p *Product) { p.Components = append(p.Components, p.Components[0]) },
		"component without id": func(p *Product) { p.Components[0].ID = "" },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			p := sampleProduct(t)
			mutate(&p)
			if err := Build(&bytes.Buffer{}, p); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestTreeRejects(t *testing.T) {
	tr := NewTree()
	must(t, tr.File("/a", nil, 0o644, 0, 0))
	for name, err := range map[string]error{
		"relative":        tr.File("a/b", nil, 0o644, 0, 0),
		"unclean":         tr.File("/x/../y", nil, 0o644, 0, 0),
		"twice":           tr.File("/a", nil, 0o644, 0, 0),
		"under a file":    tr.File("/a/b", nil, 0o644, 0, 0),
		"dir over a file": tr.Dir("/a", 0o755, 0, 0),
		"type bits":       tr.File("/m", nil, 0o100644, 0, 0),
		"root as a file":  tr.File("/", nil, 0o644, 0, 0),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCopyDirRefusesLinksAndSpecialFiles(t *testing.T) {
	mk := func(t *testing.T) string {
		d := t.TempDir()
		os.MkdirAll(filepath.Join(d, "Contents", "MacOS"), 0o755)
		os.WriteFile(filepath.Join(d, "Contents", "MacOS", "App"), []byte("x"), 0o755)
		return d
	}
	t.Run("plain tree", func(t *testing.T) {
		d := mk(t)
		tr := NewTree()
		must(t, tr.CopyDir("/Applications/A.app", d, 0, 0))
		n, ok := tr.Lookup("/Applications/A.app/Contents/MacOS/App")
		if !ok || n.Mode != 0o755 || string(n.Data) != "x" {
			t.Fatalf("copied %+v %v", n, ok)
		}
	})
	for name, add := range map[string]func(d string) error{
		"symlink": func(d string) error { return os.Symlink("App", filepath.Join(d, "Contents", "MacOS", "link")) },
		"hard link": func(d string) error {
			return os.Link(filepath.Join(d, "Contents", "MacOS", "App"), filepath.Join(d, "hl"))
		},
		"fifo": func(d string) error { return syscall.Mkfifo(filepath.Join(d, "fifo"), 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			d := mk(t)
			must(t, add(d))
			if err := NewTree().CopyDir("/Applications/A.app", d, 0, 0); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// rewrite rebuilds a package with one xar member replaced, keeping every
// xar checksum valid, so only the package-level checks can notice.
func rewrite(t *testing.T, b []byte, name string, data []byte) []byte {
	t.Helper()
	a, err := xar.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var files []xar.File
	for _, e := range a.Entries {
		if e.Type != "file" {
			continue
		}
		d, err := a.ReadFile(e.Path)
		if err != nil {
			t.Fatal(err)
		}
		if e.Path == name {
			d = data
		}
		files = append(files, xar.File{Name: e.Path, Data: d, Compress: e.Encoding == xar.EncodingZlib})
	}
	var out bytes.Buffer
	must(t, xar.Write(&out, files))
	return out.Bytes()
}

func TestInspectFindsInconsistencies(t *testing.T) {
	good := build(t, sampleProduct(t))
	other := sampleProduct(t)
	must(t, other.Components[0].Payload.File("/extra", []byte("more"), 0o644, 0, 0))
	otherPkg := build(t, other)
	oa, _ := xar.Open(bytes.NewReader(otherPkg), int64(len(otherPkg)))
	otherPayload, _ := oa.ReadFile("Demo.pkg/Payload")
	ga, _ := xar.Open(bytes.NewReader(good), int64(len(good)))
	info, _ := ga.ReadFile("Demo.pkg/PackageInfo")
	dist, _ := ga.ReadFile("Distribution")

	kb := regexp.MustCompile(`installKBytes="\d+"`)
	tests := []struct {
		name string
		pkg  []byte
		says string
	}{
		{"payload not matching the Bom", rewrite(t, good, "Demo.pkg/Payload", otherPayload), "Bom lists 12 paths, Payload holds 13"},
		{"numberOfFiles wrong", rewrite(t, good, "Demo.pkg/PackageInfo", bytes.Replace(info, []byte(`numberOfFiles="12"`), []byte(`numberOfFiles="13"`), 1)), "numberOfFiles 13"},
		{"installKBytes wrong", rewrite(t, good, "Demo.pkg/PackageInfo", kb.ReplaceAll(info, []byte(`installKBytes="999"`))), "installKBytes 999"},
		{"script missing", rewrite(t, good, "Demo.pkg/PackageInfo", bytes.Replace(info, []byte(`./postinstall`), []byte(`./postflight`), 1)), "Scripts lacks it"},
		{"distribution points nowhere", rewrite(t, good, "Distribution", bytes.Replace(dist, []byte("#Demo.pkg"), []byte("#Other.pkg"), 1)), "not in the package"},
		{"distribution version", rewrite(t, good, "Distribution", bytes.Replace(dist, []byte(`version="1.0" onConclusion`), []byte(`version="2.0" onConclusion`), 1)), "PackageInfo dev.example.demo 1.0"},
		{"payload not gzip", rewrite(t, good, "Demo.pkg/Payload", []byte("plain")), "Payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Inspect(bytes.NewReader(tt.pkg), int64(len(tt.pkg)))
			if !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want ErrInconsistent saying %q", err, tt.says)
			}
		})
	}
}
