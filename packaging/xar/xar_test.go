package xar

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/internal/tools/testtool"
)

var files = []File{
	{Name: "Distribution", Data: []byte("<installer-gui-script/>\n"), Compress: true},
	{Name: "base.pkg/Bom", Data: bytes.Repeat([]byte("BOMStore"), 300), Compress: true},
	{Name: "base.pkg/Payload", Data: bytes.Repeat([]byte{0x1f, 0x8b, 8, 0, 1, 2, 3}, 1000)},
	{Name: "base.pkg/Scripts", Data: []byte("scripts"), Mode: 0o600},
	{Name: "base.pkg/PackageInfo", Data: []byte(`<pkg-info identifier="x & y"/>`), Compress: true},
}

func archive(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, files); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	b := archive(t)
	a, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if a.TOCChecksum != "sha1" || a.Header.CksumAlg != CksumSHA1 || a.Header.Size != HeaderSize {
		t.Fatalf("header %+v, toc checksum %q", a.Header, a.TOCChecksum)
	}
	var paths []string
	for _, e := range a.Entries {
		paths = append(paths, e.Path+":"+e.Type)
	}
	want := "Distribution:file base.pkg:directory base.pkg/Bom:file base.pkg/Payload:file base.pkg/Scripts:file base.pkg/PackageInfo:file"
	if got := strings.Join(paths, " "); got != want {
		t.Fatalf("entries %s\nwant %s", got, want)
	}
	for _, f := range files {
		got, err := a.ReadFile(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s: content differs", f.Name)
		}
	}
	e := a.byPath["base.pkg/Scripts"]
	if e.Mode != 0o600 || e.UID != 0 || e.GID != 0 || e.User != "root" || e.Group != "wheel" || e.Encoding != EncodingStored {
		t.Errorf("Scripts entry %+v", *e)
	}
	if e := a.byPath["base.pkg/Bom"]; e.Encoding != EncodingZlib || e.Length >= e.Size {
		t.Errorf("Bom not stored compressed: %+v", *e)
	}
	if bytes.Contains(a.TOC, []byte("time")) {
		t.Errorf("TOC holds a timestamp:\n%s", a.TOC)
	}
	if err := a.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestDeterministic(t *testing.T) {
	if !bytes.Equal(archive(t), archive(t)) {
		t.Fatal("two writes of the same files differ")
	}
}

func TestWriteRejects(t *testing.T) {
	for _, fs := range [][]File{
		{{Name: "/abs"}},
		{{Name: "a/../b"}},
		{{Name: "a"}, {Name: "a"}},
		{{Name: "a"}, {Name: "a/b"}},
		{{Name: "a/b"}, {Name: "a"}},
		{{Name: ""}},
	} {
		if err := Write(&bytes.Buffer{}, fs); err == nil {
			t.Errorf("accepted %v", fs)
		}
	}
}

// corruptions flips one byte in each part of the archive.
func corruptions(t *testing.T, b []byte) map[string]int {
	a, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	heap := int(a.heapBase)
	pay := a.byPath["base.pkg/Payload"]
	bom := a.byPath["base.pkg/Bom"]
	return map[string]int{
		"compressed TOC":      HeaderSize + int(a.Header.TOCCompressed)/2,
		"TOC checksum":        heap + 3,
		"stored Payload data": heap + int(pay.Offset+pay.Length/2),
		"zlib Bom data":       heap + int(bom.Offset+bom.Length/2),
	}
}

func TestOwnReaderDetectsCorruption(t *testing.T) {
	good := archive(t)
	for name, off := range corruptions(t, good) {
		t.Run(name, func(t *testing.T) {
			b := bytes.Clone(good)
			b[off] ^= 0x5a
			a, err := Open(bytes.NewReader(b), int64(len(b)))
			if err == nil {
				err = a.Verify()
			}
			if err == nil {
				t.Fatal("corruption not detected")
			}
			if !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrFormat) {
				t.Fatalf("unexpected error kind: %v", err)
			}
		})
	}
}

// TestIndependentReaders has libarchive (bsdtar) and 7-Zip read the archive
// and, with a byte flipped in any part, refuse it.
func TestIndependentReaders(t *testing.T) {
	bsdtar, sz := testtool.Need(t, "bsdtar", "libarchive-tools"), testtool.Need(t, "7zz", "7zip")
	dir := t.TempDir()
	good := archive(t)
	p := filepath.Join(dir, "good.xar")
	os.WriteFile(p, good, 0o644)
	out, err := testtool.Run(t, bsdtar, "-tvf", p)
	if err != nil {
		t.Fatalf("bsdtar -tvf: %v\n%s", err, out)
	}
	for _, f := range files {
		if !strings.Contains(out, f.Name) {
			t.Errorf("bsdtar does not list %s:\n%s", f.Name, out)
		}
	}
	for _, f := range files {
		got, err := testtool.Run(t, bsdtar, "-xOf", p, f.Name)
		if err != nil || got != string(f.Data) {
			t.Errorf("bsdtar -xOf %s: %v (content equal: %v)", f.Name, err, got == string(f.Data))
		}
	}
	if out, err := testtool.Run(t, sz, "t", p); err != nil || !strings.Contains(out, "Everything is Ok") {
		t.Fatalf("7zz t: %v\n%s", err, out)
	}
	for name, off := range corruptions(t, good) {
		t.Run(name, func(t *testing.T) {
			b := bytes.Clone(good)
			b[off] ^= 0x5a
			bad := filepath.Join(t.TempDir(), "bad.xar")
			os.WriteFile(bad, b, 0o644)
			x := t.TempDir()
			if out, err := testtool.Run(t, bsdtar, "-xf", bad, "-C", x); err == nil {
				t.Errorf("bsdtar -x accepted a corrupt %s:\n%s", name, out)
			}
			// 7-Zip reports a bad TOC digest as a "CRC Error" warning and
			// still exits 0; a warning is a detection, silence is not.
			if out, err := testtool.Run(t, sz, "t", bad); err == nil && !strings.Contains(out, "CRC Error") && !strings.Contains(out, "ERROR") {
				t.Errorf("7zz t accepted a corrupt %s:\n%s", name, out)
			}
		})
	}
}
