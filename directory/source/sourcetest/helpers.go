package sourcetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory/source"
)

// Events runs src.Watch from the checkpoint from until the test ends and
// returns the events about user (all events when user is "", checkpoints
// included). The test fails if Watch ends other than by its context.
func Events(t testing.TB, src source.Source, from []byte, user string) <-chan source.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan source.Event, 256)
	done := make(chan error, 1)
	go func() {
		done <- src.Watch(ctx, from, func(e source.Event) {
			if user == "" || e.User == user {
				select {
				case ch <- e:
				case <-ctx.Done():
				}
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch ended with %v", err)
		}
	})
	return ch
}

// WaitFor waits up to 30 s for cond.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// LogBuffer collects a source's log for a test to read.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *LogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
