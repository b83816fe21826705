package bom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func file(p string, mode uint32, data string) Entry {
	return Entry{Path: p, Mode: modeRegular | mode, MTime: 1700000000, Size: uint64(len(data)), Checksum: Checksum([]byte(data))}
}

func dir(p string, mode uint32, gid uint32) Entry {
	return Entry{Path: p, Mode: modeDir | mode, GID: gid, MTime: 1700000000}
}

func small() []Entry {
	return []Entry{
		dir(".", 0o755, 0),
		dir("./Applications", 0o775, 80),
		dir("./Library", 0o755, 0),
		dir("./Library/Application Support", 0o755, 80),
		dir("./Library/Application Support/Lockstep", 0o755, 0),
		file("./Library/Application Support/Lockstep/lockstepd", 0o755, "daemon"),
		file("./Library/Application Support/Lockstep/uninstall.sh", 0o755, "#!/bin/sh\n"),
		dir("./Library/LaunchDaemons", 0o755, 0),
		file("./Library/LaunchDaemons/dev.lockstep.agent.plist", 0o644, "<plist/>\n"),
	}
}

func TestListing(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, small()); err != nil {
		t.Fatal(err)
	}
	got, err := Read(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	// What lsbom prints for this tree (sizes of directories are not
	// printed; files show size and cksum).
	want := fmt.Sprintf(`.	40755	0/0
./Applications	40775	0/80
./Library	40755	0/0
./Library/Application Support	40755	0/80
./Library/Application Support/Lockstep	40755	0/0
./Library/Application Support/Lockstep/lockstepd	100755	0/0	6	%d
./Library/Application Support/Lockstep/uninstall.sh	100755	0/0	10	%d
./Library/LaunchDaemons	40755	0/0
./Library/LaunchDaemons/dev.lockstep.agent.plist	100644	0/0	9	%d
`, Checksum([]byte("daemon")), Checksum([]byte("#!/bin/sh\n")), Checksum([]byte("<plist/>\n")))
	if l := Listing(got); l != want {
		t.Fatalf("listing\n%s\nwant\n%s", l, want)
	}
	for _, e := range got {
		if e.MTime != 1700000000 {
			t.Errorf("%s: mtime %d", e.Path, e.MTime)
		}
		if e.Path == "./Library" && e.Size != 32*(2+2) {
			t.Errorf("./Library size %d, want the APFS-style 32*(children+2)", e.Size)
		}
	}
}

// TestLargeTree makes the Paths tree span several leaves under a branch
// node, then reads every path back in order.
func TestLargeTree(t *testing.T) {
	es := []Entry{dir(".", 0o755, 0)}
	for d := range 30 {
		dp := fmt.Sprintf("./d%02d", d)
		es = append(es, dir(dp, 0o755, 0))
		for f := range 60 {
			es = append(es, file(fmt.Sprintf("%s/f%03d", dp, f), 0o644, strconv.Itoa(d*f)))
		}
	}
	var buf bytes.Buffer
	if err := Write(&buf, es); err != nil {
		t.Fatal(err)
	}
	got, err := Read(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(es) {
		t.Fatalf("read %d paths, wrote %d", len(got), len(es))
	}
	for i := range es {
		if got[i].Path != es[i].Path || got[i].Checksum != es[i].Checksum || got[i].Mode != es[i].Mode {
			t.Fatalf("entry %d: got %v, want %v", i, got[i], es[i])
		}
	}
	// The Paths tree's root must be a branch node for this many entries.
	r := mustReader(t, buf.Bytes())
	ti, err := r.treeInfo(varIndex(t, buf.Bytes(), VarPaths))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := r.block(ti.root)
	if binary.BigEndian.Uint16(root) != 0 {
		t.Fatalf("root of a %d-path tree is a leaf", len(es))
	}
}

func mustReader(t *testing.T, data []byte) *reader {
	t.Helper()
	be := binary.BigEndian
	off := be.Uint32(data[16:])
	n := be.Uint32(data[off:])
	r := &reader{data: data, blocks: make([][2]uint32, n)}
	for i := range r.blocks {
		r.blocks[i] = [2]uint32{be.Uint32(data[off+4+8*uint32(i):]), be.Uint32(data[off+8+8*uint32(i):])}
	}
	return r
}

func varIndex(t *testing.T, data []byte, name string) uint32 {
	t.Helper()
	be := binary.BigEndian
	vb := data[be.Uint32(data[24:]):]
	p := 4
	for range be.Uint32(vb) {
		l := int(vb[p+4])
		if string(vb[p+5:p+5+l]) == name {
			return be.Uint32(vb[p:])
		}
		p += 5 + l
	}
	t.Fatalf("no variable %s", name)
	return 0
}

// TestChecksumMatchesCksum compares with coreutils' cksum, an independent
// implementation of the same POSIX algorithm.
func TestChecksumMatchesCksum(t *testing.T) {
	cksum, err := exec.LookPath("cksum")
	if err != nil {
		t.Skip("no cksum")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := [][]byte{nil, []byte("a"), []byte("hello\n"), make([]byte, 255), make([]byte, 256), make([]byte, 65536+3)}
	big := make([]byte, 1<<20+17)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	inputs = append(inputs, big)
	dir := t.TempDir()
	for i, in := range inputs {
		p := filepath.Join(dir, strconv.Itoa(i))
		os.WriteFile(p, in, 0o644)
		out, err := exec.CommandContext(t.Context(), cksum, p).Output()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := strconv.ParseUint(strings.Fields(string(out))[0], 10, 32)
		if got := Checksum(in); uint64(got) != want {
			t.Errorf("input %d (%d bytes): Checksum %d, cksum %d", i, len(in), got, want)
		}
		var c Cksum
		for chunk := range slices(in, 1000) {
			c.Write(chunk)
		}
		if uint64(c.Sum32()) != want {
			t.Errorf("input %d: streamed checksum %d, cksum %d", i, c.Sum32(), want)
		}
	}
	if Checksum(nil) != 0xFFFFFFFF {
		t.Errorf("empty input: %#x, want 0xffffffff", Checksum(nil))
	}
}

func slices(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

func TestWriteRejects(t *testing.T) {
	tests := []struct {
		name string
		es   []Entry
	}{
		{"no root", []Entry{dir("./a", 0o755, 0)}},
		{"child before parent", []Entry{dir(".", 0o755, 0), file("./a/b", 0o644, "")}},
		{"symlink", []Entry{dir(".", 0o755, 0), {Path: "./l", Mode: 0o120755}}},
		{"duplicate", []Entry{dir(".", 0o755, 0), file("./a", 0o644, ""), file("./a", 0o644, "")}},
		{"file as parent", []Entry{dir(".", 0o755, 0), file("./a", 0o644, ""), file("./a/b", 0o644, "")}},
		{"unclean path", []Entry{dir(".", 0o755, 0), file("./a/../b", 0o644, "")}},
		{"no ./ prefix", []Entry{dir(".", 0o755, 0), file("a", 0o644, "")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, tt.es); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestReadRejectsCorruption(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, small()); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	r := mustReader(t, good)
	ti, _ := r.treeInfo(varIndex(t, good, VarPaths))
	leafAddr := r.blocks[ti.root][0]
	be := binary.BigEndian

	tests := []struct {
		name   string
		mutate func(b []byte)
	}{
		{"magic", func(b []byte) { b[0] = 'X' }},
		{"truncated", nil},
		{"leaf order", func(b []byte) {
			// swap the first two leaf entries
			e := b[leafAddr+12 : leafAddr+28]
			x := bytes.Clone(e[:8])
			copy(e[:8], e[8:16])
			copy(e[8:16], x)
		}},
		{"block index out of range", func(b []byte) { be.PutUint32(b[leafAddr+12:], 0xFFFF) }},
		{"tree count", func(b []byte) { be.PutUint32(b[r.blocks[varIndex(t, good, VarPaths)][0]+16:], 99) }},
		{"unknown parent", func(b []byte) {
			// point the last leaf entry's File block at a parent id that does not exist
			n := be.Uint16(b[leafAddr+2:])
			fileIdx := be.Uint32(b[leafAddr+16+8*uint32(n-1):])
			be.PutUint32(b[r.blocks[fileIdx][0]:], 999)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(good)
			if tt.mutate == nil {
				b = b[:len(b)/2]
			} else {
				tt.mutate(b)
			}
			if _, err := Read(b); err == nil {
				t.Fatal("corrupt Bom accepted")
			} else if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is not ErrFormat", err)
			}
		})
	}
}
