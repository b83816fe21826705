// Package macho combines thin Mach-O executables into a universal ("fat")
// binary, as `lipo -create` does, so a universal build can be made on Linux.
//
// A fat file starts with a big-endian header, FAT_MAGIC (0xcafebabe) and the
// number of architectures, followed by one fat_arch per slice (cputype,
// cpusubtype, offset, size, align as a power of two), each slice starting at
// an offset aligned to its page size: 2^14 for arm64, 2^12 for x86_64.
package macho

import (
	"bytes"
	"debug/macho"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// FatMagic is the big-endian magic of a 32-bit fat header.
const FatMagic = 0xcafebabe

// Slice describes one architecture of a universal binary.
type Slice struct {
	CPU    macho.Cpu
	SubCPU uint32
	Offset uint32
	Size   uint32
	// Align is the log2 of the slice's alignment.
	Align uint32
}

// alignFor returns log2 of the slice alignment lipo uses for cpu.
func alignFor(cpu macho.Cpu) uint32 {
	switch cpu {
	case macho.CpuArm64, macho.CpuArm, macho.CpuPpc64, macho.CpuPpc:
		return 14
	default:
		return 12
	}
}

// Fat returns the universal binary holding the thin Mach-O files in thins.
// Slices are ordered by CPU type (x86_64 before arm64, as lipo writes
// them); two slices of the same CPU type are refused.
func Fat(thins ...[]byte) ([]byte, error) {
	if len(thins) == 0 {
		return nil, errors.New("macho: no input")
	}
	type in struct {
		data []byte
		s    Slice
	}
	ins := make([]in, 0, len(thins))
	for i, t := range thins {
		f, err := macho.NewFile(bytes.NewReader(t))
		if err != nil {
			return nil, fmt.Errorf("macho: input %d is not a thin Mach-O file: %w", i, err)
		}
		if len(t) > 1<<32-1 {
			return nil, fmt.Errorf("macho: input %d too large", i)
		}
		ins = append(ins, in{t, Slice{CPU: f.Cpu, SubCPU: f.SubCpu, Size: uint32(len(t)), Align: alignFor(f.Cpu)}})
	}
	sort.SliceStable(ins, func(a, b int) bool { return ins[a].s.CPU < ins[b].s.CPU })
	for i := 1; i < len(ins); i++ {
		if ins[i].s.CPU == ins[i-1].s.CPU {
			return nil, fmt.Errorf("macho: two slices for %v", ins[i].s.CPU)
		}
	}
	off := uint64(8 + 20*len(ins))
	for i := range ins {
		a := uint64(1) << ins[i].s.Align
		off = (off + a - 1) / a * a
		if off+uint64(ins[i].s.Size) > 1<<32-1 {
			return nil, errors.New("macho: universal binary over 4 GiB")
		}
		ins[i].s.Offset = uint32(off)
		off += uint64(ins[i].s.Size)
	}
	out := make([]byte, off)
	be := binary.BigEndian
	be.PutUint32(out, FatMagic)
	be.PutUint32(out[4:], uint32(len(ins)))
	for i, x := range ins {
		p := out[8+20*i:]
		be.PutUint32(p, uint32(x.s.CPU))
		be.PutUint32(p[4:], x.s.SubCPU)
		be.PutUint32(p[8:], x.s.Offset)
		be.PutUint32(p[12:], x.s.Size)
		be.PutUint32(p[16:], x.s.Align)
		copy(out[x.s.Offset:], x.data)
	}
	return out, nil
}

// Slices lists the architectures of the universal binary in r.
func Slices(r io.ReaderAt) ([]Slice, error) {
	ff, err := macho.NewFatFile(r)
	if err != nil {
		return nil, fmt.Errorf("macho: %w", err)
	}
	defer ff.Close()
	out := make([]Slice, len(ff.Arches))
	for i, a := range ff.Arches {
		out[i] = Slice{CPU: a.Cpu, SubCPU: a.SubCpu, Offset: a.Offset, Size: a.Size, Align: a.Align}
	}
	return out, nil
}
