// Command demo runs the whole of Lockstep on one Linux machine for `make
// demo`: the directory with a demo user (MFA on), a simulated Mac with that
// user, lockstepd against both, and the menu-bar app when a display is
// present; otherwise it follows the daemon's state in the terminal. It
// prints what to try and stops everything cleanly on Ctrl-C.
//
// With -script it instead walks through a change, an administrator's
// temporary reset and the sync that follows, and exits: a quick check that
// the demo works end to end.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
)

const (
	demoUser     = "alice"
	demoPassword = "Demo-Sunrise-2026"
	adminName    = "admin"
	adminPass    = "Local-Admin-2026"
)

type demo struct {
	root, bin, dir string
	port           int
	procs          []*proc
	socket         string
	totpSecret     string
	aliceUID       int
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func main() {
	dir := flag.String("dir", ".demo", "where the demo keeps its state (wiped at start)")
	port := flag.Int("port", 8443, "directory port on 127.0.0.1")
	script := flag.Bool("script", false, "run the scripted walk-through and exit")
	noUI := flag.Bool("no-ui", false, "do not start the menu-bar app even with a display")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{port: *port}
	err := d.run(ctx, *dir, *script, *noUI)
	d.stopAll()
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func (d *demo) run(ctx context.Context, dir string, script, noUI bool) error {
	var err error
	if d.root, err = os.Getwd(); err != nil {
		return err
	}
	if d.dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(d.dir); err != nil {
		return err
	}
	d.bin = filepath.Join(d.dir, "bin")
	if err := os.MkdirAll(d.bin, 0o755); err != nil {
		return err
	}
	// Simulated users must reach the simulated Mac and the socket.
	if err := os.Chmod(d.dir, 0o755); err != nil {
		return err
	}
	step("Building the binaries")
	if err := d.build(); err != nil {
		return err
	}
	withUI := !script && !noUI && os.Getenv("DISPLAY") != "" && d.buildMenu()

	step("Starting the directory")
	dirData := filepath.Join(d.dir, "directory")
	if err := d.start("directory", filepath.Join(d.dir, "directory.log"), filepath.Join(d.bin, "lockstep-directory"),
		"serve", "--data", dirData, "--listen", fmt.Sprintf("127.0.0.1:%d", d.port),
		"--argon2-time", "1", "--argon2-memory-kib", "19456", "--argon2-threads", "1"); err != nil {
		return err
	}
	ac, err := waitDirectory(ctx, dirData)
	if err != nil {
		return err
	}
	resp, err := ac.AddUser(ctx, admin.AddUserRequest{Name: demoUser, DisplayName: "Alice Example", Password: protocol.Secret(demoPassword), MFA: true})
	if err != nil {
		return fmt.Errorf("creating the demo user: %w", err)
	}
	d.totpSecret = string(resp.MFA.Secret)
	// The token binds alice to the Mac that enrolls with it.
	tok, err := ac.CreateEnrollToken(ctx, admin.EnrollTokenRequest{Note: "demo Mac", Users: []string{demoUser}})
	if err != nil {
		return err
	}

	step("Building the simulated Mac")
	macDir := filepath.Join(d.dir, "mac")
	// Run as a normal user, alice is that user, so the app and CLI act on
	// her account; as root, she is uid 502 like a first Mac user.
	d.aliceUID = 502
	if os.Getuid() != 0 {
		d.aliceUID = os.Getuid()
	}
	spec := map[string]any{
		"filevault": true, "recovery_key": true, "console_user": demoUser,
		"users": []map[string]any{
			{"name": adminName, "real_name": "Local Admin", "uid": 501, "password": adminPass, "secure_token": true, "admin": true},
			{"name": demoUser, "real_name": "Alice Example", "uid": d.aliceUID, "password": demoPassword, "secure_token": true},
		},
	}
	specFile := filepath.Join(d.dir, "mac-spec.json")
	if err := writeJSON(specFile, spec, 0o600); err != nil {
		return err
	}
	if out, err := exec.Command(filepath.Join(d.bin, "macsim"), "init", "--dir", macDir, "--spec", specFile).CombinedOutput(); err != nil {
		return fmt.Errorf("macsim init: %v: %s", err, out)
	}

	step("Starting lockstepd")
	d.socket = filepath.Join(d.dir, "lockstepd.sock")
	cfgFile := filepath.Join(d.dir, "lockstepd.json")
	if err := writeJSON(cfgFile, map[string]any{
		"DirectoryURL": fmt.Sprintf("wss://127.0.0.1:%d", d.port), "DirectoryCA": filepath.Join(dirData, "ca.pem"),
		"EnrollmentToken": string(tok.Token), "StateDir": filepath.Join(d.dir, "state"), "Socket": d.socket,
		"ToolsDir": filepath.Join(macDir, "tools"), "StatusPlist": filepath.Join(d.dir, "status.plist"),
	}, 0o600); err != nil {
		return err
	}
	if err := d.start("lockstepd", filepath.Join(d.dir, "lockstepd.log"), filepath.Join(d.bin, "lockstepd"),
		"run", "--config", cfgFile, "--managed", ""); err != nil {
		return err
	}
	client := localapi.NewClient(d.socket)
	if err := waitConnected(ctx, client); err != nil {
		return err
	}
	if out, err := d.cli(adminPass+"\n", "service-account", "setup", "--admin", adminName, "--stdin"); err != nil {
		return fmt.Errorf("service account: %v\n%s", err, out)
	}

	if script {
		return d.walkThrough(ctx, ac)
	}
	if withUI {
		step("Starting the menu-bar app")
		appLog := filepath.Join(d.dir, "lockstep-menu.log")
		if err := d.start("lockstep-menu", appLog, filepath.Join(d.bin, "lockstep-menu"), "--socket", d.socket); err != nil {
			return err
		}
		// Without a tray host (a panel that shows StatusNotifierItems) the
		// app stops at once; fall back to the terminal then.
		select {
		case <-d.procs[len(d.procs)-1].done:
			b, _ := os.ReadFile(appLog)
			fmt.Printf("    (the menu-bar app stopped: %s; following lockstepd in the terminal instead)\n", lastLine(b))
			d.procs = d.procs[:len(d.procs)-1]
			withUI = false
		case <-time.After(3 * time.Second):
		}
	}
	d.instructions(withUI)
	if withUI {
		<-ctx.Done()
		return ctx.Err()
	}
	// No display: follow the daemon from the terminal.
	watch := exec.CommandContext(ctx, filepath.Join(d.bin, "lockstep"), "watch", "--socket", d.socket)
	watch.Stdout, watch.Stderr = os.Stdout, os.Stderr
	_ = watch.Run()
	<-ctx.Done()
	return ctx.Err()
}

func step(s string) { fmt.Printf("==> %s\n", s) }

func (d *demo) build() error {
	cmd := exec.Command("go", "build", "-o", d.bin+"/", "./cmd/lockstep-directory", "./cmd/lockstepd", "./cmd/lockstep", "./cmd/macsim")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Dir = d.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// buildMenu builds the menu-bar app; it needs cgo and the X11/GL headers.
func (d *demo) buildMenu() bool {
	cmd := exec.Command("go", "build", "-o", d.bin+"/", "./cmd/lockstep-menu")
	cmd.Dir = d.root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Printf("    (the menu-bar app did not build, so the demo runs with the CLI: %s)\n", firstLine(out))
		return false
	}
	return true
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

func (d *demo) start(name, logFile, exe string, args ...string) error {
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if lang := os.Getenv("LANG"); lang == "" || strings.HasPrefix(lang, "C") {
		// Fyne wants a real locale; C.UTF-8 makes it log an error.
		cmd.Env = append(os.Environ(), "LANG=en_US.UTF-8")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C is ours to pass on
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); log.Close(); close(p.done) }()
	d.procs = append(d.procs, p)
	return nil
}

// stopAll stops the processes newest first, each with SIGTERM and a grace
// period.
func (d *demo) stopAll() {
	for i := len(d.procs) - 1; i >= 0; i-- {
		p := d.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		fmt.Printf("==> stopped %s\n", p.name)
	}
	d.procs = nil
}

func (d *demo) cli(stdin string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(d.bin, "lockstep"), append(args, "--socket", d.socket)...)
	if os.Getuid() == 0 && !contains(args, "service-account") && !contains(args, "status") {
		cmd.Args = append(cmd.Args, "--user", demoUser)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func waitDirectory(ctx context.Context, data string) (*admin.Client, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := admin.FromDataDir(data); err == nil {
			if _, err := c.Policy(ctx); err == nil {
				return c, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, errors.New("the directory did not start; see .demo/directory.log (is the port free? use make demo DEMO_PORT=...)")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func waitConnected(ctx context.Context, c *localapi.Client) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, err := c.Status(ctx); err == nil && st.Directory.State == localapi.ConnConnected {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("lockstepd did not connect to the directory; see .demo/lockstepd.log")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func writeJSON(path string, v any, mode os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, mode)
}

func (d *demo) instructions(withUI bool) {
	rel := func(p string) string {
		if r, err := filepath.Rel(d.root, p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
		return p
	}
	user := ""
	if os.Getuid() == 0 {
		user = " --user " + demoUser
	}
	b := rel(d.bin)
	fmt.Printf(`
Lockstep is running.
  directory      https://127.0.0.1:%d   (data: %s, log: %s)
  simulated Mac  %s   (alice's Mac password: %s; admin "%s" / %s holds a SecureToken)
  lockstepd      socket %s   (log: %s)
  demo user      %s, password %s, MFA secret %s
                 a code: oathtool --totp -b %s

Try, in another terminal (from %s):
  export LOCKSTEP_SOCKET=%s
  %s/lockstep status
  %s/lockstep change%s                     # current password, a new one, then the MFA code
  %s/lockstep-directory user reset %s --temporary --data %s   # what an administrator does
  %s/lockstep sync%s                       # previous Mac password, then the temporary one; a change follows
  %s/lockstep-directory user reset %s --data %s
  %s/lockstep sync --forgot-previous%s     # the service account resets the Mac; the old keychain is kept aside
  %s/lockstep doctor%s --password
  %s/macsim state --dir %s                 # what the simulated Mac holds now (no secrets)
`, d.port, rel(filepath.Join(d.dir, "directory")), rel(filepath.Join(d.dir, "directory.log")),
		rel(filepath.Join(d.dir, "mac")), demoPassword, adminName, adminPass,
		rel(d.socket), rel(filepath.Join(d.dir, "lockstepd.log")),
		demoUser, demoPassword, d.totpSecret, d.totpSecret, d.root, d.socket,
		b, b, user, b, demoUser, rel(filepath.Join(d.dir, "directory")), b, user,
		b, demoUser, rel(filepath.Join(d.dir, "directory")), b, user, b, user, b, rel(filepath.Join(d.dir, "mac")))
	if withUI {
		fmt.Println("\nThe menu-bar app is in your tray. Ctrl-C stops everything.")
	} else {
		fmt.Println("\nNo display, so here is lockstepd's event stream (`lockstep watch`). Ctrl-C stops everything.")
	}
}

// walkThrough runs the demo's story without a person: a change with MFA,
// a temporary reset by the administrator, the sync and the change it needs.
func (d *demo) walkThrough(ctx context.Context, ac *admin.Client) error {
	code := func() string {
		c, _ := totp.GenerateCode(d.totpSecret, time.Now())
		return c
	}
	show := func(title, out string, err error) error {
		fmt.Printf("\n$ %s\n%s", title, out)
		if err != nil {
			return fmt.Errorf("%s: %w", title, err)
		}
		return nil
	}
	p1, temp, p2 := "Demo-Meadow-2027", "Demo-Temp-Pass-99", "Demo-Harbour-2028"
	out, err := d.cli(demoPassword+"\n"+p1+"\n"+code()+"\n", "change", "--stdin")
	if err := show("lockstep change", out, err); err != nil {
		return err
	}
	if _, err := ac.ResetPassword(ctx, demoUser, admin.ResetRequest{Password: protocol.Secret(temp), Temporary: true}); err != nil {
		return err
	}
	fmt.Printf("\n$ lockstep-directory user reset %s --temporary\n", demoUser)
	time.Sleep(500 * time.Millisecond)
	out, err = d.cli("", "status")
	if err := show("lockstep status", out, err); err != nil {
		return err
	}
	// The code used for the first change cannot be used again: wait for
	// the next one.
	time.Sleep(time.Until(time.Unix((time.Now().Unix()/30+1)*30, 0)) + time.Second)
	out, err = d.cli(p1+"\n"+temp+"\n"+p2+"\n"+code()+"\n", "sync", "--stdin")
	if err := show("lockstep sync", out, err); err != nil {
		return err
	}
	for _, what := range []string{"account", "filevault", "keychain"} {
		cmd := exec.Command(filepath.Join(d.bin, "macsim"), "check", "--dir", filepath.Join(d.dir, "mac"), "--user", demoUser, "--what", what)
		cmd.Stdin = strings.NewReader(p2 + "\n")
		res, err := cmd.CombinedOutput()
		if err := show("macsim check --what "+what+" (with the final password)", string(res), err); err != nil {
			return err
		}
	}
	fmt.Println("\nThe walk-through finished: every place uses the final password.")
	return nil
}
