// Package bom writes and reads Apple bill-of-materials ("Bom") files: the
// list of every path a component package installs, with its type, mode,
// owner, mtime, size and POSIX cksum CRC. The Installer turns it into the
// receipt that `pkgutil --files` and `lsbom` read.
//
// Apple does not document the format. This follows the structure that
// bomutils, Fleet's writer and go-macos-pkg's notes describe (all checked by
// their authors against Apple's mkbom/lsbom). All integers are big-endian.
//
//	header (32 bytes, padded to 512):
//	  "BOMStore", version u32 = 1, number of non-null blocks u32,
//	  index offset u32, index length u32, vars offset u32, vars length u32
//	block table: count u32, count × {address u32, length u32}; block 0 is null;
//	  then a free list: count u32 (0 here)
//	vars: count u32, count × {block u32, name length u8, name}
//	  BomInfo, Paths, HLIndex, VIndex, Size64
//	tree: "tree", version u32 = 1, root node u32, block size u32,
//	  entry count u32, u8 0
//	node: isLeaf u16, count u16, forward u32, backward u32,
//	  count × {index0 u32, index1 u32}, padded to the tree's block size
//
// In a Paths leaf index0 is a PathInfo block {path id u32, record block
// u32} and index1 a File block {parent id u32, NUL-terminated name}; the
// leaves are sorted by (parent id, name) and chained through forward and
// backward. In a branch node index0 is a child node and index1 the File
// block of that child's last entry.
//
// A path record is: type u8 (1 file, 2 directory, 3 symlink), u8 1,
// architecture u16 (0x000F), mode u16 (type bits included), uid u32, gid
// u32, mtime u32, size u32, u8 1, checksum u32, link name length u32, and
// four more zero bytes for a file.
package bom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// Entry types as a record stores them.
const (
	TypeFile      = 1
	TypeDirectory = 2
	TypeSymlink   = 3
)

// Mode type bits (st_mode).
const (
	modeTypeMask = 0o170000
	modeDir      = 0o040000
	modeRegular  = 0o100000
)

const (
	magic          = "BOMStore"
	headerSize     = 32
	dataStart      = 512
	pathsBlockSize = 4096
	// architecture is the record field pkgbuild writes for ordinary
	// entries (go-macos-pkg's parity notes).
	architecture = 0x000F
)

// Variable names, in the order Apple writes them.
const (
	VarBomInfo = "BomInfo"
	VarPaths   = "Paths"
	VarHLIndex = "HLIndex"
	VarVIndex  = "VIndex"
	VarSize64  = "Size64"
)

// Entry is one path of a bill of materials.
type Entry struct {
	// Path is "." for the root or "./a/b" below it.
	Path string
	// Mode is the st_mode: type bits and permissions.
	Mode uint32
	UID  uint32
	GID  uint32
	// MTime is seconds since 1970.
	MTime uint32
	// Size is a file's length. For a directory the writer records the
	// size APFS reports, 32 × (children + 2), as mkbom does.
	Size uint64
	// Checksum is the POSIX cksum CRC of a file's content (see Checksum).
	Checksum uint32
}

// Type returns the record type: TypeFile or TypeDirectory.
func (e *Entry) Type() int {
	if e.Mode&modeTypeMask == modeDir {
		return TypeDirectory
	}
	return TypeFile
}

// String formats e the way `lsbom` prints it by default: path, octal mode,
// uid/gid, and for files the size and checksum, tab-separated.
func (e Entry) String() string {
	if e.Type() == TypeDirectory {
		return fmt.Sprintf("%s\t%o\t%d/%d", e.Path, e.Mode, e.UID, e.GID)
	}
	return fmt.Sprintf("%s\t%o\t%d/%d\t%d\t%d", e.Path, e.Mode, e.UID, e.GID, e.Size, e.Checksum)
}

// Listing returns the lsbom-style listing of entries, one line each.
func Listing(entries []Entry) string {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// parentOf returns the parent of a "./a/b" path ("./a"), "." for "./a".
func parentOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 1 {
		return "."
	}
	return p[:i]
}

func baseOf(p string) string {
	if p == "." {
		return "."
	}
	return path.Base(p)
}

// validPath reports whether p is "." or a clean "./a/b" path.
func validPath(p string) bool {
	if p == "." {
		return true
	}
	if !strings.HasPrefix(p, "./") {
		return false
	}
	rest := p[2:]
	return rest != "" && path.Clean(rest) == rest && !strings.HasPrefix(rest, "../") && rest != ".." &&
		!strings.HasPrefix(rest, "/") && strings.IndexByte(rest, 0) < 0
}

type blocks struct{ b [][]byte }

func (bs *blocks) add(b []byte) uint32 {
	bs.b = append(bs.b, b)
	return uint32(len(bs.b) - 1)
}

func u32(v ...uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.BigEndian.PutUint32(b[4*i:], x)
	}
	return b
}

type pair struct{ i0, i1 uint32 }

func node(leaf bool, entries []pair, fwd, back, blockSize uint32) []byte {
	b := make([]byte, blockSize)
	if leaf {
		binary.BigEndian.PutUint16(b, 1)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(entries)))
	binary.BigEndian.PutUint32(b[4:], fwd)
	binary.BigEndian.PutUint32(b[8:], back)
	for i, e := range entries {
		binary.BigEndian.PutUint32(b[12+8*i:], e.i0)
		binary.BigEndian.PutUint32(b[16+8*i:], e.i1)
	}
	return b
}

func treeHeader(root, blockSize, count uint32) []byte {
	b := make([]byte, 21)
	copy(b, "tree")
	binary.BigEndian.PutUint32(b[4:], 1)
	binary.BigEndian.PutUint32(b[8:], root)
	binary.BigEndian.PutUint32(b[12:], blockSize)
	binary.BigEndian.PutUint32(b[16:], count)
	return b
}

// tree writes a B+tree over sorted leaf entries: leaves of at most
// (blockSize-12)/8 entries chained forward and backward, and branch levels
// keyed by each child's last entry until one node holds the root.
func (bs *blocks) tree(entries []pair, blockSize uint32) uint32 {
	per := int(blockSize-12) / 8
	if len(entries) == 0 {
		leaf := bs.add(node(true, nil, 0, 0, blockSize))
		return bs.add(treeHeader(leaf, blockSize, 0))
	}
	var leaves []uint32
	for i := 0; i < len(entries); i += per {
		leaves = append(leaves, bs.add(nil))
	}
	level := make([]pair, 0, len(leaves))
	for n, idx := range leaves {
		lo, hi := n*per, min((n+1)*per, len(entries))
		var fwd, back uint32
		if n+1 < len(leaves) {
			fwd = leaves[n+1]
		}
		if n > 0 {
			back = leaves[n-1]
		}
		bs.b[idx] = node(true, entries[lo:hi], fwd, back, blockSize)
		level = append(level, pair{idx, entries[hi-1].i1})
	}
	for len(level) > 1 {
		var next []pair
		for i := 0; i < len(level); i += per {
			chunk := level[i:min(i+per, len(level))]
			idx := bs.add(node(false, chunk, 0, 0, blockSize))
			next = append(next, pair{idx, chunk[len(chunk)-1].i1})
		}
		level = next
	}
	return bs.add(treeHeader(level[0].i0, blockSize, uint32(len(entries))))
}

func record(e *Entry) []byte {
	var b bytes.Buffer
	b.WriteByte(byte(e.Type()))
	b.WriteByte(1)
	binary.Write(&b, binary.BigEndian, uint16(architecture))
	binary.Write(&b, binary.BigEndian, uint16(e.Mode))
	b.Write(u32(e.UID, e.GID, e.MTime, uint32(min(e.Size, 0xFFFFFFFF))))
	b.WriteByte(1)
	b.Write(u32(e.Checksum, 0)) // checksum, link name length
	if e.Type() == TypeFile {
		b.Write(make([]byte, 4))
	}
	return b.Bytes()
}

// Write writes the bill of materials for entries to w. The entries must
// start with the root "." and list every directory before what it holds;
// only directories and regular files are accepted. Path ids are assigned
// in the order given.
func Write(w io.Writer, entries []Entry) error {
	if len(entries) == 0 || entries[0].Path != "." {
		return errors.New("bom: the first entry must be the root \".\"")
	}
	es := append([]Entry(nil), entries...)
	id := make(map[string]uint32, len(es))
	children := make(map[string]uint64)
	for i := range es {
		e := &es[i]
		if !validPath(e.Path) {
			return fmt.Errorf("bom: invalid path %q", e.Path)
		}
		if _, dup := id[e.Path]; dup {
			return fmt.Errorf("bom: duplicate path %s", e.Path)
		}
		switch e.Mode & modeTypeMask {
		case modeDir, modeRegular:
		default:
			return fmt.Errorf("bom: %s: unsupported file type %#o", e.Path, e.Mode&modeTypeMask)
		}
		if e.Mode > 0xFFFF {
			return fmt.Errorf("bom: %s: mode %#o", e.Path, e.Mode)
		}
		if e.Path != "." {
			p, ok := id[parentOf(e.Path)]
			if !ok {
				return fmt.Errorf("bom: %s listed before its directory", e.Path)
			}
			if es[p-1].Type() != TypeDirectory {
				return fmt.Errorf("bom: parent of %s is not a directory", e.Path)
			}
			children[parentOf(e.Path)]++
		}
		id[e.Path] = uint32(i + 1)
	}
	var total uint64
	for i := range es {
		if es[i].Type() == TypeDirectory {
			es[i].Size = 32 * (children[es[i].Path] + 2)
			es[i].Checksum = 0
		} else {
			total += es[i].Size
		}
	}

	bs := &blocks{}
	bs.add(nil) // block 0: null
	info := bs.add(append(u32(1, uint32(len(es)+1), 1), u32(0, 0, uint32(min(total, 0xFFFFFFFF)), 0)...))

	type placed struct {
		rec, file, pinfo uint32
		parent           uint32
		name             string
	}
	pl := make([]placed, len(es))
	for i := range es {
		e := &es[i]
		var parent uint32
		if e.Path != "." {
			parent = id[parentOf(e.Path)]
		}
		rec := bs.add(record(e))
		name := baseOf(e.Path)
		file := bs.add(append(u32(parent), append([]byte(name), 0)...))
		pinfo := bs.add(u32(uint32(i+1), rec))
		pl[i] = placed{rec, file, pinfo, parent, name}
	}
	order := make([]int, len(es))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		x, y := pl[order[a]], pl[order[b]]
		if x.parent != y.parent {
			return x.parent < y.parent
		}
		return x.name < y.name
	})
	leaf := make([]pair, len(order))
	for k, i := range order {
		leaf[k] = pair{pl[i].pinfo, pl[i].file}
	}
	paths := bs.tree(leaf, pathsBlockSize)

	// HLIndex: one entry per inode (every path; the payload has no hard
	// links), keyed by the record block, valued with an empty 64-byte tree.
	hl := make([]pair, len(order))
	for k, i := range order {
		sub := bs.tree(nil, 64)
		hl[k] = pair{bs.add(u32(sub)), bs.add(u32(pl[i].rec))}
	}
	hlIndex := bs.tree(hl, pathsBlockSize)

	vtree := bs.tree(nil, 128)
	vindex := bs.add(append(u32(1, vtree, 0), 0))

	var big []pair
	for _, i := range order {
		if es[i].Type() == TypeFile && es[i].Size > 0xFFFFFFFF {
			v := make([]byte, 8)
			binary.BigEndian.PutUint64(v, es[i].Size)
			big = append(big, pair{bs.add(v), bs.add(u32(pl[i].rec))})
		}
	}
	size64 := bs.tree(big, pathsBlockSize)

	var vars bytes.Buffer
	vs := []struct {
		name string
		idx  uint32
	}{{VarBomInfo, info}, {VarPaths, paths}, {VarHLIndex, hlIndex}, {VarVIndex, vindex}, {VarSize64, size64}}
	vars.Write(u32(uint32(len(vs))))
	for _, v := range vs {
		vars.Write(u32(v.idx))
		vars.WriteByte(byte(len(v.name)))
		vars.WriteString(v.name)
	}

	out := bytes.NewBuffer(make([]byte, dataStart))
	addr := make([][2]uint32, len(bs.b))
	for i, b := range bs.b {
		if i == 0 {
			continue
		}
		addr[i] = [2]uint32{uint32(out.Len()), uint32(len(b))}
		out.Write(b)
	}
	indexOff := out.Len()
	out.Write(u32(uint32(len(bs.b))))
	for _, a := range addr {
		out.Write(u32(a[0], a[1]))
	}
	out.Write(u32(0)) // free list
	indexLen := out.Len() - indexOff
	varsOff := out.Len()
	out.Write(vars.Bytes())
	if out.Len() > 0xFFFFFFFF {
		return errors.New("bom: too large")
	}

	b := out.Bytes()
	copy(b, magic)
	copy(b[8:], u32(1, uint32(len(bs.b)-1), uint32(indexOff), uint32(indexLen), uint32(varsOff), uint32(vars.Len())))
	_, err := w.Write(b)
	return err
}
