// Package xar writes and reads xar archives, the container of a macOS flat
// installer package.
//
// Layout: a 28-byte big-endian header (magic "xar!", header size 28,
// version 1, compressed and uncompressed TOC lengths, checksum algorithm),
// then the zlib-compressed XML table of contents, then the heap. Every
// offset in the TOC is relative to the heap. The heap starts with the
// digest of the compressed TOC (its place given by the TOC's <checksum>
// element); each file's data follows with an archived checksum (of the
// bytes in the heap) and an extracted checksum (of the decoded bytes).
// "application/x-gzip" encoded data is zlib-framed, as Apple's xar writes
// it; "application/octet-stream" is stored.
//
// The writer is deterministic: no timestamps, entries in the order given,
// fixed owners (root:wheel).
package xar

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1" //nolint:gosec // xar's TOC and entry checksums are SHA-1 by convention; readers expect it
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

// Header constants.
const (
	Magic      = 0x78617221 // "xar!"
	HeaderSize = 28
	Version    = 1
	// CksumSHA1 is the checksum algorithm this writer uses for the TOC.
	CksumSHA1 = 1
)

// Encoding styles.
const (
	EncodingStored = "application/octet-stream"
	EncodingZlib   = "application/x-gzip"
)

// Header is the fixed part at the start of an archive.
type Header struct {
	Magic           uint32
	Size            uint16
	Version         uint16
	TOCCompressed   uint64
	TOCUncompressed uint64
	CksumAlg        uint32
}

// File is one regular file to archive. Directories are implied by the
// slash-separated Name ("Lockstep.pkg/Payload" creates "Lockstep.pkg").
type File struct {
	Name string
	Data []byte
	// Mode holds the permission bits (0644 when zero).
	Mode fs.FileMode
	// Compress stores the data zlib-compressed ("application/x-gzip").
	Compress bool
}

type tocDoc struct {
	XMLName xml.Name `xml:"xar"`
	TOC     tocXML   `xml:"toc"`
}

type tocXML struct {
	Checksum *checksumXML `xml:"checksum"`
	Files    []*fileXML   `xml:"file"`
}

type checksumXML struct {
	Style  string `xml:"style,attr"`
	Offset int64  `xml:"offset"`
	Size   int64  `xml:"size"`
}

type fileXML struct {
	ID    string     `xml:"id,attr"`
	Data  *dataXML   `xml:"data,omitempty"`
	Name  string     `xml:"name"`
	Type  string     `xml:"type"`
	Mode  string     `xml:"mode"`
	UID   int        `xml:"uid"`
	User  string     `xml:"user"`
	GID   int        `xml:"gid"`
	Group string     `xml:"group"`
	Files []*fileXML `xml:"file"`
}

type dataXML struct {
	Length    int64       `xml:"length"`
	Offset    int64       `xml:"offset"`
	Size      int64       `xml:"size"`
	Encoding  encodingXML `xml:"encoding"`
	Archived  hashXML     `xml:"archived-checksum"`
	Extracted hashXML     `xml:"extracted-checksum"`
}

type encodingXML struct {
	Style string `xml:"style,attr"`
}

type hashXML struct {
	Style string `xml:"style,attr"`
	Value string `xml:",chardata"`
}

func sha1hex(b []byte) string {
	s := sha1.Sum(b) //nolint:gosec // see import
	return hex.EncodeToString(s[:])
}

func validName(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.IndexByte(name, 0) >= 0 {
		return false
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" || c == "." || c == ".." {
			return false
		}
	}
	return true
}

// Write writes an archive holding files, in the order given (a directory
// appears where its first file does), to w.
func Write(w io.Writer, files []File) error {
	var root fileXML
	dirs := map[string]*fileXML{"": &root}
	seen := map[string]bool{}
	nextID := 1
	heap := bytes.NewBuffer(make([]byte, sha1.Size))
	for _, f := range files {
		if !validName(f.Name) {
			return fmt.Errorf("xar: invalid name %q", f.Name)
		}
		if seen[f.Name] || dirs[f.Name] != nil {
			return fmt.Errorf("xar: duplicate name %q", f.Name)
		}
		seen[f.Name] = true
		parts := strings.Split(f.Name, "/")
		parent := &root
		for i := range parts[:len(parts)-1] {
			p := strings.Join(parts[:i+1], "/")
			if seen[p] {
				return fmt.Errorf("xar: %q is both a file and a directory", p)
			}
			d := dirs[p]
			if d == nil {
				d = &fileXML{ID: strconv.Itoa(nextID), Name: parts[i], Type: "directory", Mode: "0755", User: "root", Group: "wheel"}
				nextID++
				dirs[p] = d
				parent.Files = append(parent.Files, d)
			}
			parent = d
		}
		stored := f.Data
		enc := EncodingStored
		if f.Compress {
			var z bytes.Buffer
			zw, err := zlib.NewWriterLevel(&z, zlib.BestCompression)
			if err != nil {
				return fmt.Errorf("xar: %w", err)
			}
			if _, err := zw.Write(f.Data); err != nil {
				return fmt.Errorf("xar: compress %s: %w", f.Name, err)
			}
			if err := zw.Close(); err != nil {
				return fmt.Errorf("xar: compress %s: %w", f.Name, err)
			}
			stored, enc = z.Bytes(), EncodingZlib
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		parent.Files = append(parent.Files, &fileXML{
			ID: strconv.Itoa(nextID),
			Data: &dataXML{
				Length:    int64(len(stored)),
				Offset:    int64(heap.Len()),
				Size:      int64(len(f.Data)),
				Encoding:  encodingXML{enc},
				Archived:  hashXML{"sha1", sha1hex(stored)},
				Extracted: hashXML{"sha1", sha1hex(f.Data)},
			},
			Name: parts[len(parts)-1], Type: "file", Mode: fmt.Sprintf("0%o", mode), User: "root", Group: "wheel",
		})
		nextID++
		heap.Write(stored)
	}
	doc := tocDoc{TOC: tocXML{Checksum: &checksumXML{Style: "sha1", Offset: 0, Size: sha1.Size}, Files: root.Files}}
	var toc bytes.Buffer
	toc.WriteString(xml.Header)
	enc := xml.NewEncoder(&toc)
	enc.Indent("", " ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("xar: encode toc: %w", err)
	}
	toc.WriteByte('\n')
	var ztoc bytes.Buffer
	zw, err := zlib.NewWriterLevel(&ztoc, zlib.BestCompression)
	if err != nil {
		return fmt.Errorf("xar: %w", err)
	}
	if _, err := zw.Write(toc.Bytes()); err != nil {
		return fmt.Errorf("xar: compress toc: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("xar: compress toc: %w", err)
	}
	sum := sha1.Sum(ztoc.Bytes()) //nolint:gosec // see import
	h := heap.Bytes()
	copy(h, sum[:])
	hdr := Header{Magic, HeaderSize, Version, uint64(ztoc.Len()), uint64(toc.Len()), CksumSHA1}
	if err := binary.Write(w, binary.BigEndian, hdr); err != nil {
		return fmt.Errorf("xar: write header: %w", err)
	}
	if _, err := w.Write(ztoc.Bytes()); err != nil {
		return fmt.Errorf("xar: write toc: %w", err)
	}
	if _, err := w.Write(h); err != nil {
		return fmt.Errorf("xar: write heap: %w", err)
	}
	return nil
}

// ErrFormat reports a malformed archive; ErrChecksum a checksum mismatch.
var (
	ErrFormat   = errors.New("xar: malformed archive")
	ErrChecksum = errors.New("xar: checksum mismatch")
)
