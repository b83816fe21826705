package cpio

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/internal/tools/testtool"
)

type member struct {
	h    Header
	data string
}

var sample = []member{
	{Header{Name: ".", Mode: TypeDir | 0o755}, ""},
	{Header{Name: "./Library", Mode: TypeDir | 0o755, GID: 0}, ""},
	{Header{Name: "./Library/tool", Mode: TypeRegular | 0o755, MTime: 1700000000}, "#!/bin/sh\necho hi\n"},
	{Header{Name: "./Library/empty", Mode: TypeRegular | 0o644, MTime: 1700000000}, ""},
	{Header{Name: "./Library/secret", Mode: TypeRegular | 0o600, UID: 0, GID: 80, MTime: 1700000000}, strings.Repeat("x", 70000)},
	{Header{Name: "./suid", Mode: TypeRegular | 0o4755, MTime: 1}, "s"},
}

func writeSample(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, m := range sample {
		h := m.h
		h.Size = int64(len(m.data))
		if err := w.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	b := writeSample(t)
	if !bytes.HasSuffix(b, []byte("TRAILER!!!\x00")) {
		t.Fatalf("archive does not end with the trailer: %q", b[len(b)-20:])
	}
	r := NewReader(bytes.NewReader(b))
	for i, m := range sample {
		h, err := r.Next()
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != m.h.Name || h.Mode != m.h.Mode || h.UID != m.h.UID || h.GID != m.h.GID || h.MTime != m.h.MTime {
			t.Errorf("member %d: got %+v, want %+v", i, *h, m.h)
		}
		if h.Ino != uint32(i+1) {
			t.Errorf("%s: inode %d, want %d", h.Name, h.Ino, i+1)
		}
		if string(data) != m.data {
			t.Errorf("%s: data differs (%d bytes, want %d)", h.Name, len(data), len(m.data))
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last member: %v, want io.EOF", err)
	}
}

// TestHeaderBytes pins the odc header layout byte for byte.
func TestHeaderBytes(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.WriteHeader(&Header{Name: "./a", Mode: TypeRegular | 0o644, UID: 0, GID: 80, MTime: 8, Size: 2}); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hi"))
	want := "070707" + "000000" + "000001" + "100644" + "000000" + "000120" + "000001" + "000000" +
		"00000000010" + "000004" + "00000000002" + "./a\x00" + "hi"
	if got := buf.String(); got != want {
		t.Fatalf("header\n got %q\nwant %q", got, want)
	}
}

func TestWriterRejects(t *testing.T) {
	tests := []struct {
		name string
		do   func(w *Writer) error
	}{
		{"symlink-free types only", func(w *Writer) error { return w.WriteHeader(&Header{Name: "./fifo", Mode: 0o010644}) }},
		{"trailer name", func(w *Writer) error { return w.WriteHeader(&Header{Name: "TRAILER!!!", Mode: TypeRegular}) }},
		{"directory with data", func(w *Writer) error { return w.WriteHeader(&Header{Name: "./d", Mode: TypeDir | 0o755, Size: 1}) }},
		{"too much data", func(w *Writer) error {
			if err := w.WriteHeader(&Header{Name: "./f", Mode: TypeRegular, Size: 1}); err != nil {
				return err
			}
			_, err := w.Write([]byte("ab"))
			return err
		}},
		{"short data", func(w *Writer) error {
			if err := w.WriteHeader(&Header{Name: "./f", Mode: TypeRegular, Size: 3}); err != nil {
				return err
			}
			w.Write([]byte("a"))
			return w.Close()
		}},
		{"uid too large for odc", func(w *Writer) error {
			return w.WriteHeader(&Header{Name: "./f", Mode: TypeRegular, UID: 1 << 20})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(NewWriter(io.Discard)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestReaderRejects(t *testing.T) {
	good := writeSample(t)
	tests := []struct {
		name string
		data []byte
	}{
		{"truncated before the trailer", good[:len(good)-30]},
		{"bad magic", append([]byte("070701"), good[6:]...)},
		{"non-octal field", func() []byte { b := bytes.Clone(good); b[20] = '9'; return b }()},
		{"empty", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.data))
			var err error
			for err == nil {
				_, err = r.Next()
				if err == nil {
					_, err = io.Copy(io.Discard, r)
				}
			}
			if err == io.EOF {
				t.Fatal("read to the end without an error")
			}
			if tt.name != "truncated before the trailer" && tt.name != "empty" && !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is not ErrFormat", err)
			}
		})
	}
}

// TestBsdtarReadsArchive has libarchive, an independent implementation,
// list and extract the archive with owners, modes and contents intact.
func TestBsdtarReadsArchive(t *testing.T) {
	bsdtar := testtool.Need(t, "bsdtar", "libarchive-tools")
	dir := t.TempDir()
	arc := filepath.Join(dir, "a.cpio")
	if err := os.WriteFile(arc, writeSample(t), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := testtool.Run(t, bsdtar, "-tvf", arc, "--numeric-owner")
	if err != nil {
		t.Fatalf("bsdtar -tvf: %v\n%s", err, out)
	}
	for _, want := range []string{"-rwxr-xr-x  1 0      0", "./Library/tool", "-rw-------  1 0      80", "70000", "-rwsr-xr-x", "./suid"} {
		if !strings.Contains(out, want) {
			t.Errorf("bsdtar listing lacks %q:\n%s", want, out)
		}
	}
	x := filepath.Join(dir, "x")
	os.Mkdir(x, 0o755)
	if out, err := testtool.Run(t, bsdtar, "-xpf", arc, "-C", x); err != nil {
		t.Fatalf("bsdtar -x: %v\n%s", err, out)
	}
	for _, m := range sample[1:] {
		p := filepath.Join(x, m.h.Name)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if uint32(fi.Mode().Perm()) != m.h.Mode&0o777 {
			t.Errorf("%s extracted with mode %v", m.h.Name, fi.Mode())
		}
		if m.h.Mode&TypeMask == TypeRegular {
			b, _ := os.ReadFile(p)
			if string(b) != m.data {
				t.Errorf("%s extracted with different content", m.h.Name)
			}
		}
	}
}
