package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf collects output from the serving goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is `serve` running in this process, on a free loopback port,
// with cheap argon2id parameters.
type server struct {
	t      *testing.T
	dir    string
	cancel context.CancelFunc
	done   chan int
	stdout syncBuf
	stderr syncBuf
}

// start runs serve and waits until admin.json appears.
func start(t *testing.T, dir string, extra ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{t: t, dir: dir, cancel: cancel, done: make(chan int, 1)}
	args := append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0",
		"--argon2-time", "1", "--argon2-memory-kib", "64", "--argon2-threads", "1", "--log-json", "--log-level", "debug"}, extra...)
	go func() { s.done <- Run(ctx, args, strings.NewReader(""), &s.stdout, &s.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "admin.json")); err == nil {
			return s
		}
		select {
		case code := <-s.done:
			t.Fatalf("serve exited with %d:\n%s", code, s.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", s.stderr.String())
		}
	}
}

// stop ends serve as SIGTERM would and checks a clean exit.
func (s *server) stop() {
	s.t.Helper()
	s.cancel()
	select {
	case code := <-s.done:
		if code != 0 {
			s.t.Fatalf("serve exited with %d:\n%s", code, s.stderr.String())
		}
		s.done <- code
	case <-time.After(30 * time.Second):
		s.t.Fatal("serve did not stop")
	}
	if !strings.Contains(s.stderr.String(), `"msg":"shutdown complete"`) {
		s.t.Fatalf("no \"shutdown complete\" in the log:\n%s", s.stderr.String())
	}
}

// run runs a command in this process with stdin and returns stdout,
// stderr and the exit code.
func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(t.Context(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// runJSON runs a command that must succeed and decodes its JSON output.
func runJSON(t *testing.T, stdin string, out any, args ...string) {
	t.Helper()
	so, se, code := run(t, stdin, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, se)
	}
	if err := json.Unmarshal([]byte(so), out); err != nil {
		t.Fatalf("%v: output is not JSON: %v\n%s", args, err, so)
	}
}
