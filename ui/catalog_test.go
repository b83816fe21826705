//go:build cgo || !darwin

package ui

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
)

// TestCatalog keeps translations/en.json, the template translators copy,
// equal to the strings in strings.go, and checks every string is a valid
// template with a unique ID.
func TestCatalog(t *testing.T) {
	all := map[string]string{}
	add := func(id, en string) {
		if _, dup := all[id]; dup {
			t.Errorf("ID %q used twice", id)
		}
		if _, err := template.New(id).Parse(en); err != nil {
			t.Errorf("%s: %v", id, err)
		}
		if strings.TrimSpace(en) == "" {
			t.Errorf("%s is empty", id)
		}
		all[id] = en
	}
	for _, c := range catalog {
		switch v := c.(type) {
		case msg:
			add(v.id, v.en)
		case pmsg:
			add(v.id+".one", v.one)
			add(v.id+".other", v.other)
		}
	}
	if len(all) < 100 {
		t.Fatalf("only %d strings in the catalog", len(all))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(all); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("translations", "en.json")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Errorf("%s is out of date with strings.go; run go test ./ui -run TestCatalog -update", path)
	}
}
