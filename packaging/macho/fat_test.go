package macho

import (
	"bytes"
	"debug/macho"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	buildMu sync.Mutex
	builds  = map[string][]byte{}
)

// darwin cross-compiles packaging/testdata/hello for darwin/arch: a real
// thin Mach-O executable made by the Go linker, like the release binaries.
func darwin(t *testing.T, arch string) []byte {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := builds[arch]; ok {
		return b
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	out := filepath.Join(t.TempDir(), "hello-"+arch)
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./packaging/testdata/hello")
	cmd.Dir = root
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

func TestFatFromGoBinaries(t *testing.T) {
	arm, amd := darwin(t, "arm64"), darwin(t, "amd64")
	fat, err := Fat(arm, amd)
	if err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint32(fat) != FatMagic {
		t.Fatalf("magic %#x", binary.BigEndian.Uint32(fat))
	}
	ff, err := macho.NewFatFile(bytes.NewReader(fat))
	if err != nil {
		t.Fatalf("debug/macho cannot read the universal binary: %v", err)
	}
	defer ff.Close()
	if len(ff.Arches) != 2 {
		t.Fatalf("%d slices", len(ff.Arches))
	}
	want := []struct {
		cpu   macho.Cpu
		align uint32
		thin  []byte
	}{{macho.CpuAmd64, 12, amd}, {macho.CpuArm64, 14, arm}}
	for i, a := range ff.Arches {
		w := want[i]
		if a.Cpu != w.cpu || a.Align != w.align {
			t.Errorf("slice %d: cpu %v align 2^%d, want %v 2^%d", i, a.Cpu, a.Align, w.cpu, w.align)
		}
		if a.Offset%(1<<a.Align) != 0 {
			t.Errorf("slice %d offset %d not aligned to 2^%d", i, a.Offset, a.Align)
		}
		thin, err := macho.NewFile(bytes.NewReader(w.thin))
		if err != nil {
			t.Fatal(err)
		}
		if a.SubCpu != thin.SubCpu || a.Type != macho.TypeExec {
			t.Errorf("slice %d: subcpu %#x type %v, thin file has subcpu %#x", i, a.SubCpu, a.Type, thin.SubCpu)
		}
		if !bytes.Equal(fat[a.Offset:a.Offset+a.Size], w.thin) {
			t.Errorf("slice %d is not the thin file byte for byte", i)
		}
		// The slice keeps the linker's ad-hoc code signature and its load
		// commands, so it runs as the thin file would.
		if a.Symtab == nil && len(a.Loads) == 0 {
			t.Errorf("slice %d has no load commands", i)
		}
	}
	sl, err := Slices(bytes.NewReader(fat))
	if err != nil || len(sl) != 2 {
		t.Fatalf("Slices: %v %v", sl, err)
	}
	// Same inputs in either order give the same bytes.
	again, err := Fat(amd, arm)
	if err != nil || !bytes.Equal(again, fat) {
		t.Fatalf("input order changed the output (err %v)", err)
	}
}

func TestFatRejects(t *testing.T) {
	arm := darwin(t, "arm64")
	if _, err := Fat(arm, arm); err == nil {
		t.Error("two arm64 slices accepted")
	}
	if _, err := Fat([]byte("#!/bin/sh\n")); err == nil {
		t.Error("a script accepted as Mach-O")
	}
	if _, err := Fat(); err == nil {
		t.Error("no input accepted")
	}
}
