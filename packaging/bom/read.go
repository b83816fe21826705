package bom

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// ErrFormat reports a malformed bill of materials.
var ErrFormat = errors.New("bom: malformed")

type reader struct {
	data   []byte
	blocks [][2]uint32
}

func (r *reader) block(i uint32) ([]byte, error) {
	if i == 0 || int(i) >= len(r.blocks) {
		return nil, fmt.Errorf("%w: block index %d out of range", ErrFormat, i)
	}
	a := r.blocks[i]
	end := uint64(a[0]) + uint64(a[1])
	if end > uint64(len(r.data)) {
		return nil, fmt.Errorf("%w: block %d beyond the end of the file", ErrFormat, i)
	}
	return r.data[a[0]:end], nil
}

func (r *reader) blockAtLeast(i uint32, n int) ([]byte, error) {
	b, err := r.block(i)
	if err != nil {
		return nil, err
	}
	if len(b) < n {
		return nil, fmt.Errorf("%w: block %d has %d bytes, want %d", ErrFormat, i, len(b), n)
	}
	return b, nil
}

type treeInfo struct {
	root, blockSize, count uint32
}

func (r *reader) treeInfo(i uint32) (treeInfo, error) {
	b, err := r.blockAtLeast(i, 21)
	if err != nil {
		return treeInfo{}, err
	}
	if string(b[:4]) != "tree" || binary.BigEndian.Uint32(b[4:]) != 1 {
		return treeInfo{}, fmt.Errorf("%w: block %d is not a tree", ErrFormat, i)
	}
	be := binary.BigEndian
	return treeInfo{be.Uint32(b[8:]), be.Uint32(b[12:]), be.Uint32(b[16:])}, nil
}

// walk returns the leaf entries of a tree in order: it descends through
// the first entry of each branch node, then follows the leaves' forward
// links, checking the backward links on the way.
func (r *reader) walk(t treeInfo) ([]pair, error) {
	idx := t.root
	for depth := 0; ; depth++ {
		if depth > 32 {
			return nil, fmt.Errorf("%w: tree too deep", ErrFormat)
		}
		b, err := r.blockAtLeast(idx, 12)
		if err != nil {
			return nil, err
		}
		if binary.BigEndian.Uint16(b) == 1 {
			break
		}
		if binary.BigEndian.Uint16(b[2:]) == 0 || len(b) < 20 {
			return nil, fmt.Errorf("%w: empty branch node %d", ErrFormat, idx)
		}
		idx = binary.BigEndian.Uint32(b[12:])
	}
	var out []pair
	var prev uint32
	seen := map[uint32]bool{}
	for idx != 0 {
		if seen[idx] {
			return nil, fmt.Errorf("%w: leaf chain loops at block %d", ErrFormat, idx)
		}
		seen[idx] = true
		b, err := r.blockAtLeast(idx, 12)
		if err != nil {
			return nil, err
		}
		be := binary.BigEndian
		if be.Uint16(b) != 1 {
			return nil, fmt.Errorf("%w: block %d in the leaf chain is not a leaf", ErrFormat, idx)
		}
		n := int(be.Uint16(b[2:]))
		if len(b) < 12+8*n {
			return nil, fmt.Errorf("%w: leaf %d truncated", ErrFormat, idx)
		}
		if back := be.Uint32(b[8:]); back != prev {
			return nil, fmt.Errorf("%w: leaf %d links back to %d, want %d", ErrFormat, idx, back, prev)
		}
		for k := range n {
			out = append(out, pair{be.Uint32(b[12+8*k:]), be.Uint32(b[16+8*k:])})
		}
		prev = idx
		idx = be.Uint32(b[4:])
	}
	if uint32(len(out)) != t.count {
		return nil, fmt.Errorf("%w: tree holds %d entries, its header says %d", ErrFormat, len(out), t.count)
	}
	return out, nil
}

// Read parses a bill of materials and returns its paths in the order a
// depth-first walk with sorted names visits them (the payload's order).
// It checks the structure as strictly as lsbom and the Installer need it:
// block bounds, the (parent id, name) order of the Paths leaves, parent
// ids that exist and are directories, and the counts in BomInfo.
func Read(data []byte) ([]Entry, error) {
	if len(data) < headerSize || string(data[:8]) != magic {
		return nil, fmt.Errorf("%w: no BOMStore header", ErrFormat)
	}
	be := binary.BigEndian
	if v := be.Uint32(data[8:]); v != 1 {
		return nil, fmt.Errorf("%w: version %d", ErrFormat, v)
	}
	indexOff, indexLen := be.Uint32(data[16:]), be.Uint32(data[20:])
	varsOff, varsLen := be.Uint32(data[24:]), be.Uint32(data[28:])
	if uint64(indexOff)+uint64(indexLen) > uint64(len(data)) || uint64(varsOff)+uint64(varsLen) > uint64(len(data)) || indexLen < 4 || varsLen < 4 {
		return nil, fmt.Errorf("%w: index or vars beyond the end of the file", ErrFormat)
	}
	index := data[indexOff : indexOff+indexLen]
	n := be.Uint32(index)
	if uint64(n)*8+4 > uint64(len(index)) {
		return nil, fmt.Errorf("%w: block table truncated", ErrFormat)
	}
	r := &reader{data: data, blocks: make([][2]uint32, n)}
	for i := range r.blocks {
		r.blocks[i] = [2]uint32{be.Uint32(index[4+8*i:]), be.Uint32(index[8+8*i:])}
	}
	if be.Uint32(data[12:]) != n-1 {
		return nil, fmt.Errorf("%w: header counts %d blocks, table has %d", ErrFormat, be.Uint32(data[12:]), n-1)
	}

	vars := map[string]uint32{}
	vb := data[varsOff : varsOff+varsLen]
	count := be.Uint32(vb)
	p := 4
	for range count {
		if p+5 > len(vb) || p+5+int(vb[p+4]) > len(vb) {
			return nil, fmt.Errorf("%w: vars truncated", ErrFormat)
		}
		l := int(vb[p+4])
		vars[string(vb[p+5:p+5+l])] = be.Uint32(vb[p:])
		p += 5 + l
	}
	for _, name := range []string{VarBomInfo, VarPaths, VarHLIndex, VarVIndex, VarSize64} {
		if _, ok := vars[name]; !ok {
			return nil, fmt.Errorf("%w: variable %s missing", ErrFormat, name)
		}
	}

	pt, err := r.treeInfo(vars[VarPaths])
	if err != nil {
		return nil, fmt.Errorf("paths: %w", err)
	}
	leaves, err := r.walk(pt)
	if err != nil {
		return nil, fmt.Errorf("paths: %w", err)
	}
	type item struct {
		id, parent uint32
		name       string
		e          Entry
	}
	byID := map[uint32]*item{}
	var items []*item
	var lastParent uint32
	var lastName string
	for k, lf := range leaves {
		pi, err := r.blockAtLeast(lf.i0, 8)
		if err != nil {
			return nil, err
		}
		fb, err := r.blockAtLeast(lf.i1, 5)
		if err != nil {
			return nil, err
		}
		if fb[len(fb)-1] != 0 {
			return nil, fmt.Errorf("%w: file name not NUL-terminated", ErrFormat)
		}
		it := &item{id: be.Uint32(pi), parent: be.Uint32(fb), name: string(fb[4 : len(fb)-1])}
		if k > 0 && (it.parent < lastParent || it.parent == lastParent && it.name <= lastName) {
			return nil, fmt.Errorf("%w: paths out of (parent, name) order at %q", ErrFormat, it.name)
		}
		lastParent, lastName = it.parent, it.name
		rec, err := r.blockAtLeast(be.Uint32(pi[4:]), 31)
		if err != nil {
			return nil, err
		}
		it.e = Entry{
			Mode:     uint32(be.Uint16(rec[4:])),
			UID:      be.Uint32(rec[6:]),
			GID:      be.Uint32(rec[10:]),
			MTime:    be.Uint32(rec[14:]),
			Size:     uint64(be.Uint32(rec[18:])),
			Checksum: be.Uint32(rec[23:]),
		}
		wantType := TypeFile
		if it.e.Mode&modeTypeMask == modeDir {
			wantType = TypeDirectory
		}
		if int(rec[0]) != wantType {
			return nil, fmt.Errorf("%w: %s: record type %d does not match mode %o", ErrFormat, it.name, rec[0], it.e.Mode)
		}
		if _, dup := byID[it.id]; dup || it.id == 0 {
			return nil, fmt.Errorf("%w: path id %d repeated", ErrFormat, it.id)
		}
		byID[it.id] = it
		items = append(items, it)
	}
	// Resolve full paths through the parent ids.
	var resolve func(it *item, depth int) (string, error)
	resolve = func(it *item, depth int) (string, error) {
		if it.parent == 0 {
			if it.name != "." {
				return "", fmt.Errorf("%w: root entry named %q", ErrFormat, it.name)
			}
			return ".", nil
		}
		par, ok := byID[it.parent]
		if !ok || depth > 256 {
			return "", fmt.Errorf("%w: %q has unknown parent id %d", ErrFormat, it.name, it.parent)
		}
		if par.e.Type() != TypeDirectory {
			return "", fmt.Errorf("%w: parent of %q is not a directory", ErrFormat, it.name)
		}
		pp, err := resolve(par, depth+1)
		if err != nil {
			return "", err
		}
		return pp + "/" + it.name, nil
	}
	roots := 0
	for _, it := range items {
		if it.e.Path, err = resolve(it, 0); err != nil {
			return nil, err
		}
		if it.parent == 0 {
			roots++
		}
	}
	if roots != 1 {
		return nil, fmt.Errorf("%w: %d root entries", ErrFormat, roots)
	}

	ib, err := r.blockAtLeast(vars[VarBomInfo], 12)
	if err != nil {
		return nil, fmt.Errorf("bominfo: %w", err)
	}
	if got := be.Uint32(ib[4:]); got != uint32(len(items)+1) {
		return nil, fmt.Errorf("%w: BomInfo counts %d paths, Paths holds %d", ErrFormat, got-1, len(items))
	}
	for _, name := range []string{VarHLIndex, VarSize64} {
		t, err := r.treeInfo(vars[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if _, err := r.walk(t); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}

	// Depth-first order with sorted names, which is the order the
	// payload lists them in.
	sort.Slice(items, func(a, b int) bool { return pathLess(items[a].e.Path, items[b].e.Path) })
	out := make([]Entry, len(items))
	for i, it := range items {
		out[i] = it.e
	}
	return out, nil
}

// pathLess orders paths component by component, so a directory's
// contents follow it directly (a depth-first walk with sorted names).
func pathLess(a, b string) bool {
	for a != "" && b != "" {
		ai, bi := indexSlash(a), indexSlash(b)
		ac, bc := a[:ai], b[:bi]
		if ac != bc {
			return ac < bc
		}
		a, b = trimComponent(a, ai), trimComponent(b, bi)
	}
	return a == "" && b != ""
}

func indexSlash(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return i
		}
	}
	return len(s)
}

func trimComponent(s string, i int) string {
	if i >= len(s) {
		return ""
	}
	return s[i+1:]
}
