package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/internal/tools/pgtest"
	"github.com/lockstep-dev/lockstep/protocol"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lockstep-directory-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "lockstep-directory")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	pgtest.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running lockstep-directory process.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	dir    string
	stdout bytes.Buffer
	stderr syncBuf
	done   chan error
}

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

// startB starts a server for a benchmark on addr, with cheap argon2id
// parameters so that resets measure the push path rather than the hash.
func startB(b *testing.B, dir, addr string, extra ...string) *exec.Cmd {
	_ = os.Remove(filepath.Join(dir, "admin.json"))
	cmd := exec.Command(binary, append([]string{"serve", "--data", dir, "--listen", addr, "--log-level", "warn",
		"--address-rate-burst", "1000000", "--address-rate-every", "1ns", "--device-rate-burst", "1000000", "--device-rate-every", "1ns",
		"--account-rate-burst", "1000000", "--account-rate-every", "1ns", "--max-conns-per-address", "1000000",
		"--argon2-time", "1", "--argon2-memory-kib", "64", "--argon2-threads", "1"}, extra...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	for range 1000 {
		if _, err := os.Stat(filepath.Join(dir, "admin.json")); err == nil {
			return cmd
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatal("server did not start")
	return nil
}

// start runs `serve` on a free loopback port with cheap argon2id
// parameters and waits until admin.json appears.
func start(t *testing.T, dir string) *server {
	t.Helper()
	return startWith(t, dir, "")
}

// startWith is start with more serve flags and stdin.
func startWith(t *testing.T, dir, stdin string, extra ...string) *server {
	t.Helper()
	s := &server{t: t, dir: dir, done: make(chan error, 1)}
	s.cmd = exec.Command(binary, append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0",
		"--argon2-time", "1", "--argon2-memory-kib", "64", "--argon2-threads", "1", "--log-json", "--log-level", "debug"}, extra...)...)
	s.cmd.Stdin = strings.NewReader(stdin)
	s.cmd.Stdout = &s.stdout
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "admin.json")); err == nil {
			return s
		}
		select {
		case err := <-s.done:
			t.Fatalf("server exited: %v\n%s", err, s.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", s.stderr.String())
		}
	}
}

// stop sends SIGTERM and checks a clean exit.
func (s *server) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Fatalf("exit after SIGTERM: %v\n%s", err, s.stderr.String())
		}
	case <-time.After(30 * time.Second):
		s.t.Fatal("no exit after SIGTERM")
	}
	if !strings.Contains(s.stderr.String(), `"msg":"shutdown complete"`) {
		s.t.Fatalf("no \"shutdown complete\" in the log:\n%s", s.stderr.String())
	}
}

// command runs the binary with args and stdin and returns stdout, stderr
// and the exit code.
func command(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// jsonCLI runs a command that must succeed and decodes its JSON output.
func jsonCLI(t *testing.T, stdin string, out any, args ...string) {
	t.Helper()
	so, se, code := command(t, stdin, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, se)
	}
	if err := json.Unmarshal([]byte(so), out); err != nil {
		t.Fatalf("%v: output is not JSON: %v\n%s", args, err, so)
	}
}

func TestSIGTERMLosesNoWrite(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	cl, err := admin.FromDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		ok   []string
		wg   sync.WaitGroup
		sent = make(chan struct{})
		once sync.Once
	)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				name := fmt.Sprintf("user-%d-%d", g, i)
				_, err := cl.AddUser(t.Context(), admin.AddUserRequest{Name: name, Password: protocol.Secret("Stress-Test-Pass-1")})
				if err != nil {
					return // the server is going away
				}
				mu.Lock()
				ok = append(ok, name)
				n := len(ok)
				mu.Unlock()
				if n == 60 {
					once.Do(func() {
						_ = s.cmd.Process.Signal(syscall.SIGTERM)
						close(sent)
					})
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-sent:
	default:
		t.Fatalf("writers stopped early after %d users:\n%s", len(ok), s.stderr.String())
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, s.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(dir, "admin.json")); err == nil {
		t.Fatal("admin.json left behind after shutdown")
	}
	if !strings.Contains(s.stdout.String(), "CA certificate for agents to trust: "+filepath.Join(dir, "ca.pem")) {
		t.Fatalf("CA path not printed:\n%s", s.stdout.String())
	}

	// Every acknowledged write is there after a restart.
	s2 := start(t, dir)
	cl2, err := admin.FromDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	users, err := cl2.Users(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, u := range users {
		have[u.Name] = true
	}
	for _, n := range ok {
		if !have[n] {
			t.Errorf("acknowledged user %s lost", n)
		}
	}
	t.Logf("%d acknowledged writes before SIGTERM, %d users after restart", len(ok), len(users))
	s2.stop()
	if strings.Contains(s.stderr.String()+s2.stderr.String(), "Stress-Test-Pass-1") {
		t.Fatal("password in the server log")
	}
}
