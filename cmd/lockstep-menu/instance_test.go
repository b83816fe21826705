//go:build (cgo || !darwin) && unix

package main

import (
	"errors"
	"testing"
)

func TestSingleInstance(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	release, err := lockInstance()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockInstance(); !errors.Is(err, errRunning) {
		t.Fatalf("second instance got %v, want errRunning", err)
	}
	release()
	again, err := lockInstance()
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again()
}
