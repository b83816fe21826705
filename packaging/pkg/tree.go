// Package pkg builds and inspects macOS flat installer packages in pure
// Go: a product archive (Distribution + component packages) in a xar
// container, each component holding a Bom, a gzip'd odc cpio Payload and
// Scripts archive, and a PackageInfo.
package pkg

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Node is one path of a payload.
type Node struct {
	// Path is absolute within the install location: "/" or "/a/b".
	Path string
	Dir  bool
	// Mode holds the permission bits, setuid/setgid/sticky included.
	Mode uint32
	UID  uint32
	GID  uint32
	Data []byte
}

// Tree is an in-memory payload: directories and regular files only.
// Symlinks, hard links and special files are refused; nothing Lockstep
// ships needs them, and a payload without them cannot surprise the
// Installer.
type Tree struct {
	nodes map[string]*Node
}

// NewTree returns a tree holding the root directory (0755, root:wheel).
func NewTree() *Tree {
	return &Tree{nodes: map[string]*Node{"/": {Path: "/", Dir: true, Mode: 0o755}}}
}

func cleanAbs(p string) (string, error) {
	if !strings.HasPrefix(p, "/") || strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("pkg: path %q is not absolute", p)
	}
	c := path.Clean(p)
	if c != p && c+"/" != p {
		return "", fmt.Errorf("pkg: path %q is not clean", p)
	}
	return c, nil
}

func (t *Tree) parent(p string) (*Node, error) {
	par := t.nodes[path.Dir(p)]
	if par == nil {
		if err := t.Dir(path.Dir(p), 0o755, 0, 0); err != nil {
			return nil, err
		}
		par = t.nodes[path.Dir(p)]
	}
	if !par.Dir {
		return nil, fmt.Errorf("pkg: parent of %s is a file", p)
	}
	return par, nil
}

// Dir adds the directory p, or sets its mode and owner if it exists.
// Missing parents are added as 0755 root:wheel.
func (t *Tree) Dir(p string, mode, uid, gid uint32) error {
	p, err := cleanAbs(p)
	if err != nil {
		return err
	}
	if mode&^0o7777 != 0 {
		return fmt.Errorf("pkg: %s: mode %#o has more than permission bits", p, mode)
	}
	if n := t.nodes[p]; n != nil {
		if !n.Dir {
			return fmt.Errorf("pkg: %s is a file", p)
		}
		n.Mode, n.UID, n.GID = mode, uid, gid
		return nil
	}
	if _, err := t.parent(p); err != nil {
		return err
	}
	t.nodes[p] = &Node{Path: p, Dir: true, Mode: mode, UID: uid, GID: gid}
	return nil
}

// File adds the regular file p. Missing parents are added as 0755
// root:wheel.
func (t *Tree) File(p string, data []byte, mode, uid, gid uint32) error {
	p, err := cleanAbs(p)
	if err != nil {
		return err
	}
	if p == "/" {
		return fmt.Errorf("pkg: the root cannot be a file")
	}
	if mode&^0o7777 != 0 {
		return fmt.Errorf("pkg: %s: mode %#o has more than permission bits", p, mode)
	}
	if t.nodes[p] != nil {
		return fmt.Errorf("pkg: %s added twice", p)
	}
	if _, err := t.parent(p); err != nil {
		return err
	}
	t.nodes[p] = &Node{Path: p, Mode: mode, UID: uid, GID: gid, Data: data}
	return nil
}

// CopyDir adds the directory tree at src (on disk) as dst, owned by
// uid:gid, with the permission bits it has on disk. It refuses symlinks,
// hard links (a file with more than one link) and special files.
func (t *Tree) CopyDir(dst, src string, uid, gid uint32) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := path.Join(dst, filepath.ToSlash(rel))
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		mode := uint32(info.Mode().Perm())
		if info.Mode()&fs.ModeSetuid != 0 {
			mode |= 0o4000
		}
		if info.Mode()&fs.ModeSetgid != 0 {
			mode |= 0o2000
		}
		if info.Mode()&fs.ModeSticky != 0 {
			mode |= 0o1000
		}
		switch {
		case info.IsDir():
			return t.Dir(target, mode, uid, gid)
		case info.Mode().IsRegular():
			if links(info) > 1 {
				return fmt.Errorf("pkg: %s is a hard link; the payload takes regular files only", p)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return t.File(target, data, mode, uid, gid)
		default:
			return fmt.Errorf("pkg: %s is a %v; the payload takes directories and regular files only", p, info.Mode().Type())
		}
	})
}

// Lookup returns the node at p.
func (t *Tree) Lookup(p string) (Node, bool) {
	n, ok := t.nodes[p]
	if !ok {
		return Node{}, false
	}
	return *n, true
}

// Nodes returns the tree depth-first with names sorted bytewise: the order
// of the Payload archive and of lsbom's listing.
func (t *Tree) Nodes() []Node {
	out := make([]Node, 0, len(t.nodes))
	for _, n := range t.nodes {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return pathLess(out[i].Path, out[j].Path) })
	return out
}

// pathLess orders "/" first, then component by component.
func pathLess(a, b string) bool {
	if a == "/" || b == "/" {
		return a == "/" && b != "/"
	}
	as, bs := strings.Split(a[1:], "/"), strings.Split(b[1:], "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] != bs[i] {
			return as[i] < bs[i]
		}
	}
	return len(as) < len(bs)
}

// children counts each directory's direct entries.
func (t *Tree) children() map[string]int {
	c := map[string]int{}
	for p := range t.nodes {
		if p != "/" {
			c[path.Dir(p)]++
		}
	}
	return c
}

// dotPath turns "/" into "." and "/a/b" into "./a/b", the names cpio and
// the Bom use.
func dotPath(p string) string {
	if p == "/" {
		return "."
	}
	return "." + p
}
