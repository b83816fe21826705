package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// fakeBackend records what the server asked of it.
type fakeBackend struct {
	mu      sync.Mutex
	users   map[int]string
	changed []string
	events  chan engine.Event
	gate    chan struct{} // when set, Change blocks on it after its first step
	done    chan struct{}
}

func newFake() *fakeBackend {
	return &fakeBackend{
		users:  map[int]string{0: "root", os.Getuid(): "me", 1001: "alice", 1002: "bob"},
		events: make(chan engine.Event, 16),
		done:   make(chan struct{}, 1),
	}
}

func (f *fakeBackend) LocalUser(_ context.Context, uid int) (string, error) {
	if n, ok := f.users[uid]; ok {
		return n, nil
	}
	return "", errors.New("no such uid")
}

func (f *fakeBackend) Accounts(_ context.Context, c Caller) []engine.Account {
	var out []engine.Account
	for _, u := range []string{"alice", "bob"} {
		if c.Admin || c.User == u {
			out = append(out, engine.Account{LocalUser: u, State: engine.StateInSync, Reason: engine.T(codes.ReasonInSync)})
		}
	}
	return out
}

func (f *fakeBackend) Connection() Connection { return Connection{State: localapi.ConnConnected} }

func (f *fakeBackend) Policy(_ context.Context, u string) (*engine.PolicyView, error) {
	return &engine.PolicyView{DirectoryUser: u, Policy: protocol.DefaultPolicy()}, nil
}

func (f *fakeBackend) Change(ctx context.Context, u string, req engine.ChangeRequest, progress func(engine.Step)) (*engine.Operation, error) {
	if string(req.Current) == "busy" {
		return nil, &engine.Error{Code: codes.Busy}
	}
	progress(engine.Step{Name: engine.StepDirectory, State: engine.StepRunning})
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	f.changed = append(f.changed, u+":"+string(req.New))
	f.mu.Unlock()
	progress(engine.Step{Name: engine.StepDirectory, State: engine.StepDone, Text: engine.T(codes.StepDirChanged, "version", "2")})
	op := &engine.Operation{ID: "op1", LocalUser: u, State: engine.OpDone}
	if string(req.New) == "weak" {
		op.State = engine.OpFailed
		op.Error = &engine.Error{Code: protocol.CodePolicyViolation, Field: engine.FieldNew}
	}
	f.done <- struct{}{}
	return op, nil
}

func (f *fakeBackend) Sync(ctx context.Context, u string, req engine.SyncRequest, progress func(engine.Step)) (*engine.Operation, error) {
	return &engine.Operation{ID: "op2", LocalUser: u, State: engine.OpDone}, nil
}

func (f *fakeBackend) Link(_ context.Context, u string, pw protocol.Secret) (engine.Account, error) {
	if string(pw) != "right" {
		return engine.Account{}, &engine.Error{Code: protocol.CodeWrongPassword, Field: engine.FieldPassword}
	}
	return engine.Account{LocalUser: u, State: engine.StateInSync}, nil
}

func (f *fakeBackend) Subscribe() (<-chan engine.Event, func()) { return f.events, func() {} }

func (f *fakeBackend) Diagnostics(_ context.Context, c Caller) (Diagnostics, error) {
	return Diagnostics{Parts: map[string]any{"uid": c.UID}}, nil
}

func (f *fakeBackend) Doctor(_ context.Context, u string, _ protocol.Secret) engine.DoctorReport {
	return engine.DoctorReport{LocalUser: u}
}

func (f *fakeBackend) Standing(string) []engine.Notice { return nil }

func (f *fakeBackend) ServiceAccount(context.Context) engine.ServiceStatus {
	return engine.ServiceStatus{Present: true}
}

func (f *fakeBackend) SetupServiceAccount(context.Context, string, protocol.Secret) (engine.ServiceStatus, error) {
	return engine.ServiceStatus{Present: true, SecureToken: true, Usable: true}, nil
}

func (f *fakeBackend) RotateServiceAccount(context.Context) (engine.ServiceStatus, error) {
	return engine.ServiceStatus{Present: true}, nil
}

func (f *fakeBackend) BeginEnrollment(_ context.Context, u string) (engine.EnrollmentKey, error) {
	return engine.EnrollmentKey{Secret: protocol.Secret("SECRET" + u), URI: protocol.Secret("otpauth://totp/x?secret=SECRET" + u)}, nil
}

func (f *fakeBackend) ConfirmEnrollment(_ context.Context, u, _ string) (engine.Account, error) {
	return engine.Account{LocalUser: u}, nil
}

func (f *fakeBackend) RemoveServiceAccount(context.Context) (engine.ServiceStatus, error) {
	return engine.ServiceStatus{}, nil
}

func (f *fakeBackend) KeptKeychains(_ context.Context, u string) ([]engine.KeptKeychain, error) {
	return []engine.KeptKeychain{{Name: "login_renamed_20260304T093000Z.keychain-db", Path: "/Users/" + u + "/Library/Keychains/login_renamed_20260304T093000Z.keychain-db",
		KeptAt: time.Date(2026, 3, 4, 9, 30, 0, 0, time.UTC)}}, nil
}

func (f *fakeBackend) RecoverKeychain(_ context.Context, u string, req engine.RecoverRequest, progress func(engine.Step)) (*engine.Operation, error) {
	if req.Name == "" {
		return nil, &engine.Error{Code: codes.NoKeptKeychain, Params: map[string]string{"name": req.Name}}
	}
	progress(engine.Step{Name: engine.StepKeptRekey, State: engine.StepDone})
	f.mu.Lock()
	f.changed = append(f.changed, u+":recover:"+req.Name+":"+string(req.Old)+">"+string(req.Current))
	f.mu.Unlock()
	return &engine.Operation{ID: "op3", Kind: engine.OpKeychainRecover, LocalUser: u, State: engine.OpDone}, nil
}

// start serves a fake backend on a real socket in a directory every user
// can reach.
func start(t *testing.T, b Backend) string {
	t.Helper()
	return startWith(t, b, Limits{})
}

// startWith is start with limits.
func startWith(t *testing.T, b Backend, lim Limits) string {
	t.Helper()
	return startOpts(t, b, Options{Limits: lim})
}

// startOpts is start with options.
func startOpts(t *testing.T, b Backend, o Options) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lockstep-api-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "lockstepd.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	s := New(b, o)
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return sock
}

func TestSocketModeAndSecondInstance(t *testing.T) {
	sock := start(t, newFake())
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o666 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket mode = %v, %v", fi.Mode(), err)
	}
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "already listening") {
		t.Fatalf("second Listen = %v", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // leaves the file behind, like a crashed daemon
	ln2, err := Listen(sock)
	if err != nil {
		t.Fatalf("Listen over stale socket: %v", err)
	}
	ln2.Close()
}

func rawClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

func TestBrowserStyleRequestsRefused(t *testing.T) {
	sock := start(t, newFake())
	hc := rawClient(sock)
	tests := []struct {
		name   string
		host   string
		header [2]string
		want   int
	}{
		{"ok", localapi.Host, [2]string{}, 200},
		{"origin", localapi.Host, [2]string{"Origin", "http://evil.example"}, 403},
		{"referer", localapi.Host, [2]string{"Referer", "http://evil.example/x"}, 403},
		{"wrong host", "evil.example", [2]string{}, 403},
		{"localhost host", "localhost", [2]string{}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+tt.host+localapi.PathStatus, nil)
			if tt.header[0] != "" {
				req.Header.Set(tt.header[0], tt.header[1])
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestChangeStreamsStepsAndResult(t *testing.T) {
	sock := start(t, newFake())
	c := localapi.NewClient(sock)
	var steps []string
	req, want := localapi.ChangeRequest{Current: protocol.Secret("a"), New: protocol.Secret("b")}, "me"
	if os.Getuid() == 0 {
		req.User, want = "alice", "alice"
	}
	op, err := c.Change(t.Context(), req, func(s localapi.Step) {
		steps = append(steps, s.Name+"="+s.State)
	})
	if err != nil || op.State != localapi.OpDone || op.LocalUser != want {
		t.Fatalf("Change = %+v, %v", op, err)
	}
	if strings.Join(steps, ",") != "directory=running,directory=done" {
		t.Fatalf("steps = %v", steps)
	}
}

// The kept keychains of the caller's own account, and a recovery streamed
// like a change; a refused one is an error answer.
func TestKeptKeychainsAndRecover(t *testing.T) {
	f := newFake()
	sock := start(t, f)
	c := localapi.NewClient(sock)
	user, want := "", "me"
	if os.Getuid() == 0 {
		user, want = "alice", "alice"
	}
	kept, err := c.KeptKeychains(t.Context(), user)
	if err != nil || kept.LocalUser != want || len(kept.Keychains) != 1 || !kept.Keychains[0].KeptAt.Equal(time.Date(2026, 3, 4, 9, 30, 0, 0, time.UTC)) {
		t.Fatalf("KeptKeychains = %+v %v", kept, err)
	}
	var steps []string
	op, err := c.RecoverKeychain(t.Context(), localapi.RecoverRequest{User: user, Name: kept.Keychains[0].Name, Old: protocol.Secret("o"), Current: protocol.Secret("c")},
		func(s localapi.Step) { steps = append(steps, s.Name+"="+s.State) })
	if err != nil || op.State != localapi.OpDone || op.Kind != localapi.OpKeychainRecover || strings.Join(steps, ",") != "kept_keychain=done" {
		t.Fatalf("RecoverKeychain = %+v %v (%v)", op, err, steps)
	}
	if got := f.changed; len(got) != 1 || got[0] != want+":recover:"+kept.Keychains[0].Name+":o>c" {
		t.Errorf("backend got %q", got)
	}
	_, err = c.RecoverKeychain(t.Context(), localapi.RecoverRequest{User: user, Old: protocol.Secret("o"), Current: protocol.Secret("c")}, nil)
	var e *localapi.Error
	if !errors.As(err, &e) || e.Code != localapi.CodeNoKeptKeychain {
		t.Errorf("recovering nothing = %v", err)
	}
	if os.Getuid() == 0 {
		if _, err := c.KeptKeychains(t.Context(), ""); !errors.As(err, &e) || e.Code != localapi.CodeNameAccount {
			t.Errorf("root without --user = %v", err)
		}
	}
}

func TestRootNamesAccount(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	f := newFake()
	sock := start(t, f)
	c := localapi.NewClient(sock)
	// Root without a name is told to give one.
	_, err := c.Change(t.Context(), localapi.ChangeRequest{Current: protocol.Secret("a"), New: protocol.Secret("b")}, nil)
	var e *localapi.Error
	if !errors.As(err, &e) || e.Code != localapi.CodeNameAccount {
		t.Fatalf("unnamed root change = %v", err)
	}
	op, err := c.Change(t.Context(), localapi.ChangeRequest{User: "alice", Current: protocol.Secret("a"), New: protocol.Secret("weak")}, nil)
	if !errors.As(err, &e) || e.Field != localapi.FieldNew || op == nil || op.LocalUser != "alice" {
		t.Fatalf("failed op = %+v, %v", op, err)
	}
	_, err = c.Change(t.Context(), localapi.ChangeRequest{User: "alice", Current: protocol.Secret("busy"), New: protocol.Secret("x")}, nil)
	if !errors.As(err, &e) || e.Code != localapi.CodeBusy {
		t.Fatalf("busy = %v", err)
	}
	st, err := c.Status(t.Context())
	if err != nil || len(st.Accounts) != 2 {
		t.Fatalf("root status = %+v, %v", st, err)
	}
}

func TestOperationSurvivesClientDisconnect(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to name an account")
	}
	f := newFake()
	f.gate = make(chan struct{})
	sock := start(t, f)
	ctx, cancel := context.WithCancel(t.Context())
	stepSeen := make(chan struct{})
	go localapi.NewClient(sock).Change(ctx, localapi.ChangeRequest{User: "alice", Current: protocol.Secret("a"), New: protocol.Secret("new")}, func(localapi.Step) {
		select {
		case <-stepSeen:
		default:
			close(stepSeen)
		}
	})
	<-stepSeen
	cancel() // the user closed the window half-way
	close(f.gate)
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		t.Fatal("operation did not finish after the client left")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.changed) != 1 || f.changed[0] != "alice:new" {
		t.Fatalf("changed = %v", f.changed)
	}
}

// A watcher sees its own account's status and notices, never another
// user's. The server here treats only root as an admin, so the test's own
// uid is an ordinary user (alice) when it does not run as root; as root, the
// watcher runs as uid 1001 (alice) in a child process.
func TestWatchFiltersOtherUsers(t *testing.T) {
	f := newFake()
	if os.Getuid() != 0 {
		f.users[os.Getuid()] = "alice"
	}
	sock := startOpts(t, f, Options{Admin: func(uid int) bool { return uid == 0 }})
	lines := make(chan string, 16)
	if os.Getuid() == 0 {
		exe := copyTestBinary(t, filepath.Dir(sock))
		cmd := exec.Command(exe, "-test.run=^TestHelperClient$")
		cmd.Env = []string{"LOCKSTEP_HELPER=watch", "LOCKSTEP_SOCK=" + sock}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1001, Gid: 1001}}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if l, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
					lines <- l
				}
			}
		}()
	} else {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go localapi.NewClient(sock).Watch(ctx, func(ev localapi.Event) error {
			lines <- watchLine(ev)
			return nil
		})
	}
	var got []string
	for len(got) < 2 {
		select {
		case l := <-lines:
			got = append(got, l)
		case <-time.After(10 * time.Second):
			t.Fatalf("watch saw only %q", got)
		}
		if len(got) == 1 {
			f.events <- engine.Event{Type: engine.EventNotice, Notice: &engine.Notice{ID: "bob-1", Kind: engine.NoticeReset, LocalUser: "bob"}}
			f.events <- engine.Event{Type: engine.EventNotice, Notice: &engine.Notice{ID: "alice-1", Kind: engine.NoticeReset, LocalUser: "alice"}}
		}
	}
	if strings.Join(got, "|") != "status alice|notice alice-1" {
		t.Fatalf("alice's watch saw %q", got)
	}
}

// watchLine says what a watcher saw, for TestWatchFiltersOtherUsers.
func watchLine(ev localapi.Event) string {
	switch {
	case ev.Status != nil && len(ev.Status.Accounts) == 1:
		return "status " + ev.Status.Accounts[0].LocalUser
	case ev.Status != nil:
		return fmt.Sprintf("status %d accounts", len(ev.Status.Accounts))
	case ev.Notice != nil:
		return "notice " + ev.Notice.ID
	}
	return "other " + ev.Type
}

// TestOtherUserRefused runs a client as another uid (alice, 1001) against
// the real socket: the kernel's peer credentials decide what it may do.
func TestOtherUserRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another uid")
	}
	sock := start(t, newFake())
	exe := copyTestBinary(t, filepath.Dir(sock))
	run := func(uid int, what string) string {
		cmd := exec.Command(exe, "-test.run=^TestHelperClient$")
		cmd.Env = []string{"LOCKSTEP_HELPER=" + what, "LOCKSTEP_SOCK=" + sock}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper as %d: %v\n%s", uid, err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "RESULT ") {
				return strings.TrimPrefix(l, "RESULT ")
			}
		}
		t.Fatalf("no result from helper:\n%s", out)
		return ""
	}
	if got := run(1001, "status"); got != "alice" {
		t.Fatalf("alice's status shows %q", got)
	}
	if got := run(1001, "change-bob"); got != "forbidden" {
		t.Fatalf("alice changing bob = %q", got)
	}
	for _, what := range []string{"recover-bob", "kept-bob"} {
		if got := run(1001, what); got != "forbidden" {
			t.Fatalf("alice: %s = %q", what, got)
		}
	}
	if got := run(1001, "service-account-setup"); got != "forbidden" {
		t.Fatalf("alice setting up the service account = %q", got)
	}
	if got := run(4242, "status"); got != "forbidden" {
		t.Fatalf("uid without an account = %q", got)
	}
}

// TestHelperClient is the child process of TestOtherUserRefused.
func TestHelperClient(t *testing.T) {
	what := os.Getenv("LOCKSTEP_HELPER")
	if what == "" {
		t.Skip("helper process only")
	}
	c := localapi.NewClient(os.Getenv("LOCKSTEP_SOCK"))
	var err error
	switch what {
	case "status":
		var st *localapi.Status
		if st, err = c.Status(context.Background()); err == nil {
			var names []string
			for _, a := range st.Accounts {
				names = append(names, a.LocalUser)
			}
			fmt.Println("RESULT " + strings.Join(names, ","))
			return
		}
	case "watch":
		err = c.Watch(context.Background(), func(ev localapi.Event) error {
			fmt.Println("RESULT " + watchLine(ev))
			return nil
		})
	case "recover-bob":
		_, err = c.RecoverKeychain(context.Background(), localapi.RecoverRequest{User: "bob", Name: "k", Old: protocol.Secret("x"), Current: protocol.Secret("y")}, nil)
	case "kept-bob":
		_, err = c.KeptKeychains(context.Background(), "bob")
	case "change-bob":
		_, err = c.Change(context.Background(), localapi.ChangeRequest{User: "bob", Current: protocol.Secret("x"), New: protocol.Secret("y")}, nil)
	case "service-account-setup":
		_, err = c.SetupServiceAccount(context.Background(), localapi.ServiceAccountRequest{AdminUser: "admin", AdminPassword: protocol.Secret("x")})
	}
	var e *localapi.Error
	if errors.As(err, &e) {
		fmt.Println("RESULT " + e.Code)
		return
	}
	fmt.Printf("RESULT unexpected %v\n", err)
}

func copyTestBinary(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(dir, "api.test")
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return dst
}

func TestTarget(t *testing.T) {
	tests := []struct {
		name  string
		c     Caller
		named string
		want  string
		code  string
	}{
		{"user, own by default", Caller{UID: 502, User: "alice"}, "", "alice", ""},
		{"user names self", Caller{UID: 502, User: "alice"}, "alice", "alice", ""},
		{"user names another", Caller{UID: 502, User: "alice"}, "bob", "", localapi.CodeForbidden},
		{"root must name", Caller{UID: 0, User: "root", Admin: true}, "", "", localapi.CodeNameAccount},
		{"root names any", Caller{UID: 0, User: "root", Admin: true}, "bob", "bob", ""},
		{"daemon's own uid defaults to itself", Caller{UID: 1000, User: "dev", Admin: true}, "", "dev", ""},
		{"daemon's own uid names any", Caller{UID: 1000, User: "dev", Admin: true}, "bob", "bob", ""},
		{"admin without account must name", Caller{UID: 1000, Admin: true}, "", "", localapi.CodeNameAccount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, e := target(tt.c, tt.named)
			if tt.code != "" {
				if e == nil || e.Code != tt.code {
					t.Fatalf("target = %q, %v; want code %s", got, e, tt.code)
				}
				return
			}
			if e != nil || got != tt.want {
				t.Fatalf("target = %q, %v; want %q", got, e, tt.want)
			}
		})
	}
}

// Link takes the directory password over the real socket and answers the
// account, or the error at the password's field.
func TestLink(t *testing.T) {
	sock := start(t, newFake())
	c := localapi.NewClient(sock)
	user := ""
	if os.Getuid() == 0 {
		user = "alice"
	}
	_, err := c.Link(t.Context(), localapi.LinkRequest{User: user, Password: protocol.Secret("wrong")})
	var e *localapi.Error
	if !errors.As(err, &e) || e.Code != protocol.CodeWrongPassword || e.Field != localapi.FieldPassword {
		t.Fatalf("wrong password = %v", err)
	}
	a, err := c.Link(t.Context(), localapi.LinkRequest{User: user, Password: protocol.Secret("right")})
	if err != nil || a.State != localapi.StateInSync {
		t.Fatalf("Link = %+v, %v", a, err)
	}
}

// Shutdown ends open watch streams at once: a watcher sees its stream end
// and the shutdown does not wait for it to time out.
func TestShutdownEndsWatchStreams(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	s := New(newFake(), Options{})
	go s.Serve(ln)
	ended := make(chan error, 1)
	first := make(chan struct{})
	go func() {
		var once sync.Once
		ended <- localapi.NewClient(sock).Watch(context.Background(), func(localapi.Event) error {
			once.Do(func() { close(first) })
			return nil
		})
	}()
	<-first
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a watcher open: %v", err)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch stream did not end")
	}
}
