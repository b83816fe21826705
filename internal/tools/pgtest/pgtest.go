// Package pgtest runs a throwaway PostgreSQL server for tests: initdb in a
// temporary directory, the server on a unix socket there and on a free
// loopback port, fsync off, started on first use and stopped by Main. It is
// imported by test files only.
//
// PostgreSQL refuses to run as root, so when the tests do, the server runs
// as the "postgres" OS user (which Debian's postgresql package creates).
// Binaries are found on PATH, then in /usr/lib/postgresql/*/bin (Debian's
// place, not on PATH). Without them a test is skipped, or fails when the
// environment says CI=true.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Role is the login role the databases belong to; it is no superuser.
const Role = "lockstep"

type cluster struct {
	dir      string // socket directory and data directory parent
	port     int
	password string
	cmd      *exec.Cmd
	exited   chan struct{}
}

var (
	once    sync.Once
	cl      *cluster
	startEr error
	dbs     atomic.Int64
)

// Main runs the package's tests and then stops the server if one was
// started. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the server and removes its files. Main calls it.
func Stop() {
	if cl == nil {
		return
	}
	_ = cl.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	select {
	case <-cl.exited:
	case <-time.After(15 * time.Second):
		_ = cl.cmd.Process.Kill()
		<-cl.exited
	}
	_ = os.RemoveAll(cl.dir)
	cl = nil
}

// Available starts the server if needed and reports why it cannot run.
func Available() error {
	once.Do(func() { cl, startEr = start() })
	return startEr
}

func require(tb testing.TB) *cluster {
	tb.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL is required in CI: %v", err)
		}
		tb.Skipf("skipping: no PostgreSQL for tests: %v", err)
	}
	return cl
}

// Database creates a fresh, empty database owned by Role and returns a
// connection string for it over TCP with password authentication (the
// password is in the string).
func Database(tb testing.TB) string {
	tb.Helper()
	c := require(tb)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbs.Add(1))
	if err := c.super(tb.Context(), "postgres", `CREATE DATABASE `+name+` OWNER `+Role); err != nil {
		tb.Fatalf("creating database: %v", err)
	}
	return c.url(name)
}

// Exec runs sql as the superuser in the database of connString (one made
// by Database), e.g. to terminate another session.
func Exec(tb testing.TB, connString, sql string, args ...any) {
	tb.Helper()
	c := require(tb)
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.super(tb.Context(), cfg.Database, sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// WithoutPassword returns connString (one made by Database) without its
// password.
func WithoutPassword(connString string) string {
	return strings.Replace(connString, ":"+cl.password+"@", "@", 1)
}

// Password returns the role's password.
func Password(tb testing.TB) string {
	tb.Helper()
	return require(tb).password
}

func (c *cluster) url(db string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", Role, c.password, c.port, db)
}

func (c *cluster) super(ctx context.Context, db, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", c.dir, c.port, db))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// binDir finds the directory holding initdb and postgres.
func binDir() (string, error) {
	if p, err := exec.LookPath("postgres"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first.
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
				return d, nil
			}
		}
	}
	return "", errors.New("postgres and initdb are neither on PATH nor in /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)")
}

func start() (*cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	uid, gid := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("PostgreSQL will not run as root and there is no postgres user to run it as: %w", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// The postgres user must reach the directory: under /tmp when the
	// tests run as root, whose TMPDIR may be private.
	parent := ""
	if cred != nil {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "lockstep-pgtest-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	c := &cluster{dir: dir, password: hex.EncodeToString(pw), exited: make(chan struct{})}

	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setsid: true}
	initdb.Dir = dir
	initdb.Env = []string{"PATH=/usr/bin:/bin", "LANG=C"}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(c.port),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=64MB", "-c", "log_min_messages=warning")
	c.cmd.SysProcAttr = serverProcAttr(cred)
	c.cmd.Dir = dir
	c.cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C"}
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		err = c.super(ctx, "postgres", `CREATE ROLE `+Role+` LOGIN PASSWORD '`+c.password+`'`)
		if err == nil {
			break
		}
		select {
		case <-c.exited:
			b, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			return nil, fmt.Errorf("postgres exited: %s", b)
		case <-ctx.Done():
			_ = c.cmd.Process.Kill()
			<-c.exited
			return nil, fmt.Errorf("postgres did not start: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	ok = true
	return c, nil
}
