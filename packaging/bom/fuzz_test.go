package bom

import (
	"bytes"
	"testing"
)

// FuzzRead feeds Read arbitrary bytes: it must return paths or an error,
// never panic or loop.
func FuzzRead(f *testing.F) {
	var b bytes.Buffer
	if err := Write(&b, small()); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add([]byte("BOMStore"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := Read(data)
		if err == nil && (len(es) == 0 || es[0].Path != ".") {
			t.Fatalf("accepted a Bom without a root: %v", es)
		}
	})
}
