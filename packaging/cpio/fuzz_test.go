package cpio

import (
	"bytes"
	"io"
	"testing"
)

// FuzzReader reads arbitrary bytes as an odc archive.
func FuzzReader(f *testing.F) {
	f.Add(writeSample(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		for range 10000 {
			h, err := r.Next()
			if err != nil {
				return
			}
			if h.Size < 0 {
				t.Fatalf("negative size %d", h.Size)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
		}
	})
}
