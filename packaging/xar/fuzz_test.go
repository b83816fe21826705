package xar

import (
	"bytes"
	"testing"
)

// FuzzOpen feeds Open and ReadFile arbitrary bytes.
func FuzzOpen(f *testing.F) {
	var b bytes.Buffer
	if err := Write(&b, files); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		_ = a.Verify()
	})
}
