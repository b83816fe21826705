package xar

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1" //nolint:gosec // see xar.go
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

// maxTOC bounds the table of contents a reader inflates.
const maxTOC = 64 << 20

// Entry is one file or directory of an archive's table of contents.
type Entry struct {
	// Path is the slash-joined path from the archive root.
	Path string
	// Type is "file", "directory", or another xar type.
	Type  string
	Mode  fs.FileMode
	UID   int
	GID   int
	User  string
	Group string
	// Size is the decoded length, Length the bytes in the heap, Offset
	// their heap-relative position.
	Size     int64
	Length   int64
	Offset   int64
	Encoding string
	// ArchivedSum and ExtractedSum are "style:hex".
	ArchivedSum  string
	ExtractedSum string
}

// Archive is an opened xar archive.
type Archive struct {
	Header Header
	// TOC is the inflated XML table of contents.
	TOC []byte
	// TOCChecksum is the style of the TOC digest ("sha1", ...).
	TOCChecksum string
	// Entries lists the TOC in document order.
	Entries []Entry

	r        io.ReaderAt
	size     int64
	heapBase int64
	byPath   map[string]*Entry
}

func hasher(style string) (func() hash.Hash, error) {
	switch strings.ToLower(style) {
	case "sha1":
		return sha1.New, nil
	case "sha256":
		return sha256.New, nil
	case "sha512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("%w: unsupported checksum style %q", ErrFormat, style)
}

// Open reads the header and the table of contents of the archive in r
// (size bytes) and checks the TOC digest stored at the start of the heap.
func Open(r io.ReaderAt, size int64) (*Archive, error) {
	var hb [HeaderSize]byte
	if _, err := r.ReadAt(hb[:], 0); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	var h Header
	if err := binary.Read(bytes.NewReader(hb[:]), binary.BigEndian, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if h.Magic != Magic {
		return nil, fmt.Errorf("%w: bad magic %#x", ErrFormat, h.Magic)
	}
	if h.Size < HeaderSize || h.Version != Version {
		return nil, fmt.Errorf("%w: header size %d, version %d", ErrFormat, h.Size, h.Version)
	}
	if h.TOCCompressed == 0 || h.TOCCompressed > uint64(size) || h.TOCUncompressed > maxTOC {
		return nil, fmt.Errorf("%w: TOC lengths %d/%d", ErrFormat, h.TOCCompressed, h.TOCUncompressed)
	}
	ztoc := make([]byte, h.TOCCompressed)
	if _, err := r.ReadAt(ztoc, int64(h.Size)); err != nil {
		return nil, fmt.Errorf("%w: TOC: %v", ErrFormat, err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(ztoc))
	if err != nil {
		return nil, fmt.Errorf("%w: TOC: %v", ErrFormat, err)
	}
	toc, err := io.ReadAll(io.LimitReader(zr, maxTOC+1))
	if err != nil {
		return nil, fmt.Errorf("%w: TOC: %v", ErrFormat, err)
	}
	if uint64(len(toc)) != h.TOCUncompressed {
		return nil, fmt.Errorf("%w: TOC inflates to %d bytes, header says %d", ErrFormat, len(toc), h.TOCUncompressed)
	}
	var doc tocDoc
	if err := xml.Unmarshal(toc, &doc); err != nil {
		return nil, fmt.Errorf("%w: TOC XML: %v", ErrFormat, err)
	}
	a := &Archive{Header: h, TOC: toc, r: r, size: size, heapBase: int64(h.Size) + int64(h.TOCCompressed), byPath: map[string]*Entry{}}
	cs := doc.TOC.Checksum
	if cs == nil {
		if h.CksumAlg != 0 {
			return nil, fmt.Errorf("%w: TOC has no checksum element", ErrFormat)
		}
	} else {
		want := map[uint32]string{1: "sha1", 3: "sha256", 4: "sha512"}[h.CksumAlg]
		if !strings.EqualFold(cs.Style, want) {
			return nil, fmt.Errorf("%w: TOC checksum style %q, header algorithm %d", ErrFormat, cs.Style, h.CksumAlg)
		}
		newHash, err := hasher(cs.Style)
		if err != nil {
			return nil, err
		}
		hh := newHash()
		if cs.Size != int64(hh.Size()) {
			return nil, fmt.Errorf("%w: TOC checksum size %d", ErrFormat, cs.Size)
		}
		stored, err := a.heap(cs.Offset, cs.Size)
		if err != nil {
			return nil, err
		}
		hh.Write(ztoc)
		if !bytes.Equal(hh.Sum(nil), stored) {
			return nil, fmt.Errorf("%w: table of contents", ErrChecksum)
		}
		a.TOCChecksum = strings.ToLower(cs.Style)
	}
	var walk func(prefix string, files []*fileXML, depth int) error
	walk = func(prefix string, files []*fileXML, depth int) error {
		if depth > 64 {
			return fmt.Errorf("%w: TOC nested too deep", ErrFormat)
		}
		for _, f := range files {
			if f.Name == "" || strings.ContainsAny(f.Name, "/\x00") || f.Name == "." || f.Name == ".." {
				return fmt.Errorf("%w: bad entry name %q", ErrFormat, f.Name)
			}
			mode, err := strconv.ParseUint(f.Mode, 8, 32)
			if f.Mode != "" && err != nil {
				return fmt.Errorf("%w: %s: mode %q", ErrFormat, f.Name, f.Mode)
			}
			e := Entry{Path: prefix + f.Name, Type: f.Type, Mode: fs.FileMode(mode).Perm(), UID: f.UID, GID: f.GID, User: f.User, Group: f.Group}
			if f.Type == "directory" {
				e.Mode |= fs.ModeDir
			}
			if f.Data != nil {
				d := f.Data
				e.Size, e.Length, e.Offset, e.Encoding = d.Size, d.Length, d.Offset, d.Encoding.Style
				e.ArchivedSum = strings.ToLower(d.Archived.Style) + ":" + strings.ToLower(strings.TrimSpace(d.Archived.Value))
				e.ExtractedSum = strings.ToLower(d.Extracted.Style) + ":" + strings.ToLower(strings.TrimSpace(d.Extracted.Value))
				if d.Length < 0 || d.Offset < 0 || d.Size < 0 || a.heapBase+d.Offset+d.Length > size || a.heapBase+d.Offset+d.Length < a.heapBase {
					return fmt.Errorf("%w: %s: data outside the archive", ErrFormat, e.Path)
				}
			}
			if _, dup := a.byPath[e.Path]; dup {
				return fmt.Errorf("%w: duplicate entry %s", ErrFormat, e.Path)
			}
			a.Entries = append(a.Entries, e)
			a.byPath[e.Path] = &a.Entries[len(a.Entries)-1]
			if err := walk(e.Path+"/", f.Files, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk("", doc.TOC.Files, 0); err != nil {
		return nil, err
	}
	// Entries may have been reallocated while appending: rebuild the index.
	for i := range a.Entries {
		a.byPath[a.Entries[i].Path] = &a.Entries[i]
	}
	return a, nil
}

func (a *Archive) heap(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || a.heapBase+off+n > a.size {
		return nil, fmt.Errorf("%w: heap range %d+%d outside the archive", ErrFormat, off, n)
	}
	b := make([]byte, n)
	if _, err := a.r.ReadAt(b, a.heapBase+off); err != nil {
		return nil, fmt.Errorf("%w: heap: %v", ErrFormat, err)
	}
	return b, nil
}

func verifySum(sum string, data []byte) error {
	style, want, ok := strings.Cut(sum, ":")
	if !ok || want == "" {
		return fmt.Errorf("%w: no checksum", ErrFormat)
	}
	newHash, err := hasher(style)
	if err != nil {
		return err
	}
	h := newHash()
	h.Write(data)
	if hex.EncodeToString(h.Sum(nil)) != want {
		return ErrChecksum
	}
	return nil
}

// ReadFile returns the decoded content of the file at path, after checking
// its archived checksum, its extracted checksum and its size.
func (a *Archive) ReadFile(path string) ([]byte, error) {
	e, ok := a.byPath[path]
	if !ok {
		return nil, fmt.Errorf("xar: %s: %w", path, fs.ErrNotExist)
	}
	if e.Type != "file" {
		return nil, fmt.Errorf("xar: %s is a %s", path, e.Type)
	}
	raw, err := a.heap(e.Offset, e.Length)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := verifySum(e.ArchivedSum, raw); err != nil {
		return nil, fmt.Errorf("xar: %s: archived data: %w", path, err)
	}
	var data []byte
	switch e.Encoding {
	case EncodingStored, "":
		data = raw
	case EncodingZlib, "application/zlib":
		zr, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("xar: %s: %w", path, err)
		}
		if data, err = io.ReadAll(io.LimitReader(zr, e.Size+1)); err != nil {
			return nil, fmt.Errorf("xar: %s: %w", path, err)
		}
	default:
		return nil, fmt.Errorf("xar: %s: unsupported encoding %q", path, e.Encoding)
	}
	if int64(len(data)) != e.Size {
		return nil, fmt.Errorf("%w: %s decodes to %d bytes, TOC says %d", ErrFormat, path, len(data), e.Size)
	}
	if err := verifySum(e.ExtractedSum, data); err != nil {
		return nil, fmt.Errorf("xar: %s: extracted data: %w", path, err)
	}
	return data, nil
}

// Verify reads every file and checks all its checksums.
func (a *Archive) Verify() error {
	for _, e := range a.Entries {
		if e.Type == "file" {
			if _, err := a.ReadFile(e.Path); err != nil {
				return err
			}
		}
	}
	return nil
}
