package config

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"howett.net/plist"
)

// nestedBinary builds a binary plist of depth arrays, each holding the
// next, with 4-byte offsets and references.
func nestedBinary(depth int) []byte {
	var b bytes.Buffer
	b.WriteString("bplist00")
	offsets := make([]uint32, depth)
	for i := 0; i < depth; i++ {
		offsets[i] = uint32(b.Len())
		if i == depth-1 {
			b.WriteByte(0xA0) // empty array
			continue
		}
		b.WriteByte(0xA1)
		binary.Write(&b, binary.BigEndian, uint32(i+1))
	}
	table := b.Len()
	for _, o := range offsets {
		binary.Write(&b, binary.BigEndian, o)
	}
	trailer := make([]byte, 32)
	trailer[6], trailer[7] = 4, 4
	binary.BigEndian.PutUint64(trailer[8:], uint64(depth))
	binary.BigEndian.PutUint64(trailer[16:], 0)
	binary.BigEndian.PutUint64(trailer[24:], uint64(table))
	b.Write(trailer)
	return b.Bytes()
}

// A document nested deeper than Lockstep's keys ever need is refused before
// the decoder, which recurses per level, sees it; in every format.
func TestDeepDocumentsAreRefused(t *testing.T) {
	const deep = 50_000
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"xml", []byte(plistHead + "<key>UserMap</key>" + strings.Repeat("<array>", deep) + strings.Repeat("</array>", deep) + "</dict></plist>")},
		{"openstep", []byte("{ UserMap = " + strings.Repeat("(", deep) + strings.Repeat(")", deep) + "; }")},
		{"openstep dictionaries", []byte(strings.Repeat("{a=", deep) + "b;" + strings.Repeat("};", deep))},
		{"binary", nestedBinary(deep)},
		{"xml just too deep", []byte(plistHead + "<key>UserMap</key>" + strings.Repeat("<array>", maxDepth) + "<string>x</string>" + strings.Repeat("</array>", maxDepth) + "</dict></plist>")},
		{"binary just too deep", nestedBinary(maxDepth + 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "dev.lockstep.agent.plist")
			if err := os.WriteFile(p, tc.raw, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load("", p)
			if !errors.Is(err, errTooDeep) || !strings.Contains(err.Error(), p) {
				t.Fatalf("Load = %v, want the nesting refused naming the file", err)
			}
		})
	}
}

// Documents as deep as the limit, and the real configuration in every
// format the decoder reads, still load.
func TestDocumentsWithinTheLimitLoad(t *testing.T) {
	cfg := map[string]any{"DirectoryURL": "wss://dir.example", "UserMap": map[string]any{"alice": "alice.smith"}}
	var docs []struct {
		name string
		raw  []byte
	}
	for _, f := range []struct {
		name   string
		format int
	}{{"xml", plist.XMLFormat}, {"binary", plist.BinaryFormat}, {"openstep", plist.OpenStepFormat}, {"gnustep", plist.GNUStepFormat}} {
		raw, err := plist.Marshal(cfg, f.format)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, struct {
			name string
			raw  []byte
		}{f.name, raw})
	}
	for _, d := range docs {
		t.Run(d.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "config.plist")
			if err := os.WriteFile(p, d.raw, 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p, "")
			if err != nil {
				t.Fatalf("Load: %v\n%s", err, d.raw)
			}
			if c.DirectoryUser("alice") != "alice.smith" {
				t.Fatalf("UserMap = %v", c.UserMap)
			}
		})
	}
	for _, raw := range [][]byte{
		nestedBinary(maxDepth),
		[]byte(plistHead + "<key>x</key>" + strings.Repeat("<array>", maxDepth-1) + "<string>x</string>" + strings.Repeat("</array>", maxDepth-1) + "</dict></plist>"),
		[]byte(`{ a = "((((((((((((((((((((" ; /* (((((((((((((((((((( */ b = <0fbd77> ; // ((((((((((((((((((((` + "\n}"),
	} {
		if err := checkDepth(raw); err != nil {
			t.Errorf("checkDepth(%.60q) = %v", raw, err)
		}
	}
}

// A binary plist whose objects share children is walked once per object,
// and one that contains itself is refused, not walked forever.
func TestBinaryGraphs(t *testing.T) {
	// 40 arrays, each referencing the next one twice: 2^40 paths, depth 40.
	var b bytes.Buffer
	b.WriteString("bplist00")
	const n = 40
	var offsets []byte
	for i := 0; i < n; i++ {
		offsets = append(offsets, byte(b.Len()))
		if i == n-1 {
			b.WriteByte(0xA0)
			continue
		}
		b.Write([]byte{0xA2, byte(i + 1), byte(i + 1)})
	}
	table := b.Len()
	b.Write(offsets)
	tr := make([]byte, 32)
	tr[6], tr[7] = 1, 1
	binary.BigEndian.PutUint64(tr[8:], n)
	binary.BigEndian.PutUint64(tr[24:], uint64(table))
	b.Write(tr)
	if err := checkDepth(b.Bytes()); !errors.Is(err, errTooDeep) {
		t.Fatalf("shared chain: %v", err)
	}

	// One array that holds itself.
	self := []byte("bplist00")
	self = append(self, 0xA1, 0)
	self = append(self, 8)
	tr = make([]byte, 32)
	tr[6], tr[7] = 1, 1
	binary.BigEndian.PutUint64(tr[8:], 1)
	binary.BigEndian.PutUint64(tr[24:], 10)
	self = append(self, tr...)
	if err := checkDepth(self); err == nil || !strings.Contains(err.Error(), "contains itself") {
		t.Fatalf("self-reference: %v", err)
	}
}

func TestLargeFilesAreRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, bytes.Repeat([]byte(" "), maxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p, ""); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Load = %v", err)
	}
}

// The hand-built binary plists are ones the decoder reads.
func TestNestedBinaryIsAPlist(t *testing.T) {
	var v any
	if _, err := plist.Unmarshal(nestedBinary(maxDepth), &v); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < maxDepth-1; i++ {
		a, ok := v.([]any)
		if !ok || len(a) != 1 {
			t.Fatalf("level %d: %#v", i, v)
		}
		v = a[0]
	}
}
