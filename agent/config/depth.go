package config

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// Bounds on a configuration document, checked before it is decoded. The
// plist decoder recurses once per level of nesting, so a document nested
// millions deep would overflow lockstepd's stack, which no recover can
// catch. Lockstep's keys nest two deep (a dictionary of UserMap entries);
// the limits leave room and refuse the rest.
const (
	maxDepth    = 16
	maxFileSize = 1 << 20
)

// errTooDeep is returned for a document nested deeper than maxDepth.
var errTooDeep = fmt.Errorf("nested more than %d levels deep", maxDepth)

// checkDepth reads a plist the way the decoder will (binary by its magic;
// else XML, and when that is not XML, OpenStep text) and refuses one nested
// deeper than maxDepth, without recursing.
func checkDepth(raw []byte) error {
	if bytes.HasPrefix(raw, []byte("bplist")) {
		return binaryDepth(raw)
	}
	if err := xmlDepth(raw); !errors.Is(err, errNotXML) {
		return err
	}
	return textDepth(raw)
}

// errNotXML is xmlDepth's answer for a document that is not XML, which the
// decoder then reads as text.
var errNotXML = errors.New("not XML")

// xmlDepth counts open elements.
func xmlDepth(raw []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(raw))
	depth, elements := 0, false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) && elements {
			return nil
		}
		if err != nil {
			return errNotXML // as for the decoder: no element, not XML
		}
		switch tok.(type) {
		case xml.StartElement:
			elements = true
			// <plist>, the containers, and a value inside the last one.
			if depth++; depth > maxDepth+2 {
				return errTooDeep
			}
		case xml.EndElement:
			depth--
		}
	}
}

// textDepth counts open dictionaries and arrays of an OpenStep or GNUstep
// plist, outside quoted strings, data and comments.
func textDepth(raw []byte) error {
	depth := 0
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"':
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
		case c == '<':
			for i < len(raw) && raw[i] != '>' {
				i++
			}
		case c == '/' && i+1 < len(raw) && raw[i+1] == '/':
			for i < len(raw) && raw[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(raw) && raw[i+1] == '*':
			end := bytes.Index(raw[i+2:], []byte("*/"))
			if end < 0 {
				return nil // unterminated: the decoder says so
			}
			i += 2 + end + 1
		case c == '{' || c == '(':
			if depth++; depth > maxDepth {
				return errTooDeep
			}
		case c == '}' || c == ')':
			depth--
		}
	}
	return nil
}

// binaryDepth walks a binary plist's object graph from its top object with
// an explicit stack, remembering each container's depth so that shared
// objects are visited once. It reports what it cannot read as an error; the
// decoder would refuse the same document.
func binaryDepth(raw []byte) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("not a valid binary plist: "+format, args...)
	}
	if len(raw) < 8+32 {
		return bad("too short")
	}
	tr := raw[len(raw)-32:]
	offSize, refSize := int(tr[6]), int(tr[7])
	n := binary.BigEndian.Uint64(tr[8:])
	top := binary.BigEndian.Uint64(tr[16:])
	table := binary.BigEndian.Uint64(tr[24:])
	end := uint64(len(raw) - 32)
	if offSize < 1 || offSize > 8 || refSize < 1 || refSize > 8 || table < 8 || table > end ||
		n == 0 || n > (end-table)/uint64(offSize) || top >= n {
		return bad("bad trailer")
	}
	be := func(b []byte) uint64 {
		var v uint64
		for _, x := range b {
			v = v<<8 | uint64(x)
		}
		return v
	}
	// children returns where object i's references start and how many
	// there are (0 for anything but an array, set or dictionary).
	children := func(i uint64) (start, count uint64, err error) {
		at := table + i*uint64(offSize)
		off := be(raw[at : at+uint64(offSize)])
		if off < 8 || off >= table {
			return 0, 0, bad("object %d out of range", i)
		}
		marker := raw[off]
		var refs uint64
		switch marker >> 4 {
		case 0xA, 0xB, 0xC: // array, ordered set, set
			refs = 1
		case 0xD: // dictionary: keys, then values
			refs = 2
		default:
			return 0, 0, nil
		}
		count, start = uint64(marker&0x0F), off+1
		if count == 0x0F { // the count follows as an integer object
			if start >= table || raw[start]>>4 != 0x1 || raw[start]&0x0F > 3 {
				return 0, 0, bad("object %d has a bad count", i)
			}
			size := uint64(1) << (raw[start] & 0x0F)
			if start+1+size > table {
				return 0, 0, bad("object %d has a bad count", i)
			}
			count, start = be(raw[start+1:start+1+size]), start+1+size
		}
		if count > (table-start)/uint64(refSize)/refs {
			return 0, 0, bad("object %d runs past the object table", i)
		}
		return start, count * refs, nil
	}
	// depthOf[i]: 0 unvisited, -1 on the current path, else the depth of
	// the deepest chain of containers below and including i.
	depthOf := make(map[uint64]int)
	type frame struct {
		obj, start, count, next uint64
		deepest                 int
	}
	var stack []frame
	push := func(i uint64) error {
		start, count, err := children(i)
		if err != nil {
			return err
		}
		if count == 0 {
			depthOf[i] = 0
			if start != 0 {
				depthOf[i] = 1 // an empty container
			}
			return nil
		}
		if len(stack) >= maxDepth {
			return errTooDeep
		}
		depthOf[i] = -1
		stack = append(stack, frame{obj: i, start: start, count: count})
		return nil
	}
	if err := push(top); err != nil {
		return err
	}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.next == f.count {
			depthOf[f.obj] = f.deepest + 1
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				p := &stack[len(stack)-1]
				p.deepest = max(p.deepest, f.deepest+1)
			}
			continue
		}
		at := f.start + f.next*uint64(refSize)
		child := be(raw[at : at+uint64(refSize)])
		f.next++
		if child >= n {
			return bad("reference to object %d of %d", child, n)
		}
		switch d, seen := depthOf[child]; {
		case seen && d < 0:
			return bad("object %d contains itself", child)
		case seen:
			f.deepest = max(f.deepest, d)
		default:
			if err := push(child); err != nil {
				return err
			}
			if d := depthOf[child]; d >= 0 { // a leaf, done at once
				f = &stack[len(stack)-1]
				f.deepest = max(f.deepest, d)
			}
		}
	}
	if depthOf[top] > maxDepth {
		return errTooDeep
	}
	return nil
}
