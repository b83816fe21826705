// Package cpio reads and writes the portable ASCII ("odc", magic 070707)
// cpio format that macOS installer packages use for their Payload and
// Scripts archives.
//
// An odc header is 76 bytes of fixed-width octal ASCII followed by the
// NUL-terminated name and the data, with no padding:
//
//	magic 6 "070707", dev 6, ino 6, mode 6, uid 6, gid 6, nlink 6, rdev 6,
//	mtime 11, namesize 6 (NUL included), filesize 11
//
// The archive ends with an entry named "TRAILER!!!".
package cpio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mode type bits as they appear in an odc header (st_mode).
const (
	TypeMask    = 0o170000
	TypeDir     = 0o040000
	TypeRegular = 0o100000
	TypeSymlink = 0o120000
)

const (
	magic      = "070707"
	headerSize = 76
	trailer    = "TRAILER!!!"
	// maxName bounds the name a reader accepts (PATH_MAX on macOS is 1024;
	// leave room, but never allocate what a corrupt header claims).
	maxName = 4096
)

// Header describes one archive member.
type Header struct {
	// Name is the member's path: "." for the root, "./a/b" below it.
	Name string
	// Mode is the full st_mode: type bits (TypeDir, TypeRegular,
	// TypeSymlink) and permission bits, setuid/setgid/sticky included.
	Mode  uint32
	UID   uint32
	GID   uint32
	NLink uint32
	// MTime is seconds since 1970.
	MTime int64
	// Size is the data length: file content, or a symlink's target.
	Size int64
	// Dev and Ino identify the file; a writer that gets Ino 0 numbers the
	// members itself, 1, 2, 3... in write order.
	Dev uint32
	Ino uint32
}

// IsDir reports whether the member is a directory.
func (h *Header) IsDir() bool { return h.Mode&TypeMask == TypeDir }

// IsRegular reports whether the member is a regular file.
func (h *Header) IsRegular() bool { return h.Mode&TypeMask == TypeRegular }

// field widths in header order after the magic.
var widths = [...]int{6, 6, 6, 6, 6, 6, 6, 11, 6, 11}

// Writer writes an odc archive. Call WriteHeader, then Write exactly
// Header.Size bytes, for each member, and Close to write the trailer.
type Writer struct {
	w         io.Writer
	remaining int64
	nextIno   uint32
	closed    bool
	err       error
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w, nextIno: 1} }

// WriteHeader starts a new member.
func (w *Writer) WriteHeader(h *Header) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("cpio: write after close")
	}
	if w.remaining != 0 {
		return fmt.Errorf("cpio: %d bytes of the previous member missing", w.remaining)
	}
	if h.Name == "" || h.Name == trailer || strings.IndexByte(h.Name, 0) >= 0 {
		return fmt.Errorf("cpio: invalid name %q", h.Name)
	}
	switch h.Mode & TypeMask {
	case TypeDir:
		if h.Size != 0 {
			return fmt.Errorf("cpio: directory %s with size %d", h.Name, h.Size)
		}
	case TypeRegular, TypeSymlink:
	default:
		return fmt.Errorf("cpio: %s: unsupported file type %#o", h.Name, h.Mode&TypeMask)
	}
	hh := *h
	if hh.Ino == 0 {
		hh.Ino = w.nextIno
		w.nextIno++
	}
	if hh.NLink == 0 {
		hh.NLink = 1
		if hh.IsDir() {
			hh.NLink = 2
		}
	}
	if err := w.writeHeader(&hh); err != nil {
		w.err = err
		return err
	}
	w.remaining = hh.Size
	return nil
}

func (w *Writer) writeHeader(h *Header) error {
	if h.MTime < 0 {
		return fmt.Errorf("cpio: %s: negative mtime", h.Name)
	}
	vals := [...]uint64{
		uint64(h.Dev), uint64(h.Ino), uint64(h.Mode), uint64(h.UID), uint64(h.GID),
		uint64(h.NLink), 0, uint64(h.MTime), uint64(len(h.Name) + 1), uint64(h.Size),
	}
	var b strings.Builder
	b.Grow(headerSize + len(h.Name) + 1)
	b.WriteString(magic)
	for i, v := range vals {
		s := strconv.FormatUint(v, 8)
		if len(s) > widths[i] {
			return fmt.Errorf("cpio: %s: value %d does not fit the odc header", h.Name, v)
		}
		b.WriteString(strings.Repeat("0", widths[i]-len(s)))
		b.WriteString(s)
	}
	b.WriteString(h.Name)
	b.WriteByte(0)
	_, err := io.WriteString(w.w, b.String())
	return err
}

// Write writes member data.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if int64(len(p)) > w.remaining {
		return 0, fmt.Errorf("cpio: write of %d bytes exceeds the member size", len(p))
	}
	n, err := w.w.Write(p)
	w.remaining -= int64(n)
	if err != nil {
		w.err = err
	}
	return n, err
}

// Close writes the trailer. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return nil
	}
	if w.remaining != 0 {
		return fmt.Errorf("cpio: %d bytes of the last member missing", w.remaining)
	}
	w.closed = true
	return w.writeHeader(&Header{Name: trailer, NLink: 1})
}

// Reader reads an odc archive.
type Reader struct {
	r         *bufio.Reader
	remaining int64
	done      bool
}

// NewReader returns a Reader reading from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReader(r)} }

// ErrFormat reports a malformed archive.
var ErrFormat = errors.New("cpio: malformed odc archive")

// Next advances to the next member and returns its header; it returns
// io.EOF after the trailer. An archive that ends without a trailer is an
// error (io.ErrUnexpectedEOF).
func (r *Reader) Next() (*Header, error) {
	if r.done {
		return nil, io.EOF
	}
	if r.remaining > 0 {
		if _, err := io.CopyN(io.Discard, r.r, r.remaining); err != nil {
			return nil, unexpected(err)
		}
		r.remaining = 0
	}
	var raw [headerSize]byte
	if _, err := io.ReadFull(r.r, raw[:]); err != nil {
		return nil, unexpected(err)
	}
	if string(raw[:6]) != magic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrFormat, raw[:6])
	}
	var vals [len(widths)]uint64
	off := 6
	for i, wd := range widths {
		v, err := strconv.ParseUint(string(raw[off:off+wd]), 8, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: header field %d: %q", ErrFormat, i, raw[off:off+wd])
		}
		vals[i] = v
		off += wd
	}
	nameSize := vals[8]
	if nameSize < 2 || nameSize > maxName {
		return nil, fmt.Errorf("%w: name size %d", ErrFormat, nameSize)
	}
	name := make([]byte, nameSize)
	if _, err := io.ReadFull(r.r, name); err != nil {
		return nil, unexpected(err)
	}
	if name[nameSize-1] != 0 {
		return nil, fmt.Errorf("%w: name not NUL-terminated", ErrFormat)
	}
	h := &Header{
		Name:  string(name[:nameSize-1]),
		Dev:   uint32(vals[0]),
		Ino:   uint32(vals[1]),
		Mode:  uint32(vals[2]),
		UID:   uint32(vals[3]),
		GID:   uint32(vals[4]),
		NLink: uint32(vals[5]),
		MTime: int64(vals[7]),
		Size:  int64(vals[9]),
	}
	if h.Name == trailer {
		r.done = true
		return nil, io.EOF
	}
	r.remaining = h.Size
	return h, nil
}

// Read reads the current member's data.
func (r *Reader) Read(p []byte) (int, error) {
	if r.remaining <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := r.r.Read(p)
	r.remaining -= int64(n)
	if err == io.EOF {
		if r.remaining > 0 {
			err = io.ErrUnexpectedEOF
		} else {
			err = nil
		}
	}
	return n, err
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
