//go:build unix

package instance

import (
	"errors"
	"testing"
)

func TestSingleInstance(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	release, err := Lock("dev.lockstep.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock("dev.lockstep.test"); !errors.Is(err, ErrRunning) {
		t.Fatalf("second instance got %v, want ErrRunning", err)
	}
	release()
	again, err := Lock("dev.lockstep.test")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again()
}
