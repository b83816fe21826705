package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	neturl "net/url"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/lockstep-dev/lockstep/directory"
	"github.com/lockstep-dev/lockstep/version"
)

func printVersion(w io.Writer) error {
	_, err := fmt.Fprintln(w, "lockstep-directory", version.Version)
	return err
}

// configFlags names, for each Config field a serve flag sets, the flag:
// a configuration error about the field is reported with the flag's name.
var configFlags = map[string]string{
	"Argon2.Time":          "argon2-time",
	"Argon2.MemoryKiB":     "argon2-memory-kib",
	"Argon2.Threads":       "argon2-threads",
	"HashMemoryKiB":        "hash-memory-kib",
	"Lockout.Threshold":    "lockout-threshold",
	"Lockout.Window":       "lockout-window",
	"Lockout.Duration":     "lockout-duration",
	"AccountRate.Every":    "account-rate-every",
	"AccountRate.Burst":    "account-rate-burst",
	"DeviceRate.Every":     "device-rate-every",
	"DeviceRate.Burst":     "device-rate-burst",
	"AddressRate.Every":    "address-rate-every",
	"AddressRate.Burst":    "address-rate-burst",
	"PingInterval":         "ping-interval",
	"ScanInterval":         "scan-interval",
	"RequestTimeout":       "request-timeout",
	"AuditRetention":       "audit-retention",
	"IdempotencyRetention": "idempotency-retention",
	"MaxConnsPerAddress":   "max-conns-per-address",
	"MaxConns":             "max-conns",
	"DiskReserveMiB":       "disk-reserve-mib",
	"DataDir":              "data",
	"ResetLinkTTL":         "reset-link-ttl",
	"WebIdleTimeout":       "web-idle-timeout",
}

// positiveFlags must be above zero: the directory takes a zero setting as
// "the default", which on a command line would silently turn
// `--account-rate-every 0` into something else than asked.
var positiveFlags = []string{"argon2-time", "argon2-memory-kib", "argon2-threads", "lockout-threshold", "lockout-window",
	"lockout-duration", "account-rate-every", "account-rate-burst", "device-rate-every", "device-rate-burst",
	"address-rate-every", "address-rate-burst", "ping-interval", "scan-interval", "shutdown-timeout", "request-timeout",
	"audit-retention", "idempotency-retention", "max-conns-per-address", "reset-link-ttl", "web-idle-timeout"}

func serve(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data directory (database, keys, certificates, admin token)")
	listen := fs.String("listen", ":8443", "address to listen on")
	cert := fs.String("cert", "", "server certificate (PEM); default: a local CA in --data issues one")
	key := fs.String("key", "", "server key (PEM), with --cert")
	hosts := fs.String("hosts", "", "extra comma-separated names for the generated certificate")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logJSON := fs.Bool("log-json", false, "log JSON lines instead of text")
	a2time := fs.Uint64("argon2-time", uint64(directory.DefaultArgon2.Time), "argon2id passes for new hashes")
	a2mem := fs.Uint64("argon2-memory-kib", uint64(directory.DefaultArgon2.MemoryKiB), "argon2id memory in KiB for new hashes")
	a2threads := fs.Uint64("argon2-threads", uint64(directory.DefaultArgon2.Threads), "argon2id lanes for new hashes")
	hashMem := fs.Uint64("hash-memory-kib", 0, "memory budget for concurrent password checks (default 4 checks' worth)")
	lockN := fs.Int("lockout-threshold", 5, "failures that lock an account")
	lockWin := fs.Duration("lockout-window", 15*time.Minute, "window in which failures count")
	lockDur := fs.Duration("lockout-duration", 15*time.Minute, "how long a lockout lasts")
	accEvery := fs.Duration("account-rate-every", 6*time.Second, "password checks per target user: one token per this")
	accBurst := fs.Int("account-rate-burst", 10, "password checks per target user: bucket size")
	devEvery := fs.Duration("device-rate-every", 2*time.Second, "password checks and writes per device: one token per this")
	devBurst := fs.Int("device-rate-burst", 30, "password checks and writes per device: bucket size")
	addrEvery := fs.Duration("address-rate-every", 500*time.Millisecond, "failed handshakes, enrollments and failed admin calls per source address: one token per this")
	addrBurst := fs.Int("address-rate-burst", 60, "per source address: bucket size")
	perAddr := fs.Int("max-conns-per-address", 1000, "open connections from one address (raise it behind a TLS-terminating proxy)")
	maxConns := fs.Int("max-conns", 0, "open connections in all (default: the open-file limit less 256)")
	reqTimeout := fs.Duration("request-timeout", 10*time.Second, "time to read an enrollment or admin request")
	auditKeep := fs.Duration("audit-retention", 365*24*time.Hour, "how long audit events are kept")
	idemKeep := fs.Duration("idempotency-retention", 7*24*time.Hour, "how long a request's first outcome is remembered for retries")
	reserve := fs.Int64("disk-reserve-mib", 64, "free MiB below which noise (failed handshakes' audit events, enrollments) is refused; 0: off (SQLite only)")
	ping := fs.Duration("ping-interval", 30*time.Second, "agent keepalive interval")
	scan := fs.Duration("scan-interval", time.Hour, "expiry scanner and retention interval")
	grace := fs.Duration("shutdown-timeout", 30*time.Second, "how long shutdown waits for requests in progress")
	dbURL := fs.String("database", "", "PostgreSQL connection string `URL` without a password (default: SQLite in --data)")
	dbURLFile := fs.String("database-url-file", "", "read the PostgreSQL connection string, which may hold a password, from `FILE` (mode 0600; - for the first line of stdin)")
	dbPassFile := fs.String("database-password-file", "", "read the PostgreSQL password from `FILE` (mode 0600; - for the first line of stdin)")
	publicURL := fs.String("public-url", "", "the `URL` people reach the portal at, for the links in reset mail (default: the listener's address)")
	webIdle := fs.Duration("web-idle-timeout", 15*time.Minute, "web console and portal sessions end after this long without a request")
	masterKey := fs.String("master-key-file", "", "the master key `FILE` every replica of one database shares (default: DIR/server.key, made on first start)")
	srcFlags := registerSourceFlags(fs)
	mailFl := registerMailFlags(fs)
	if err := fs.Parse(args); err != nil {
		return usageError("%v", err)
	}
	if *data == "" {
		return usageError("serve needs --data DIR")
	}
	if *publicURL != "" && (!strings.HasPrefix(*publicURL, "https://") || len(*publicURL) <= len("https://")) {
		return usageError("--public-url must be an https:// URL, not %q", *publicURL)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	for _, name := range positiveFlags {
		if isZeroOrLess(fs.Lookup(name)) {
			return usageError("--%s must be positive, not %s", name, fs.Lookup(name).Value)
		}
	}
	for _, f := range []struct {
		name string
		v    uint64
		max  uint64
	}{{"argon2-time", *a2time, directory.MaxArgon2Time}, {"argon2-memory-kib", *a2mem, directory.MaxArgon2MemoryKiB},
		{"argon2-threads", *a2threads, directory.MaxArgon2Threads}} {
		if f.v > f.max {
			return usageError("--%s must be at most %d, not %d", f.name, f.max, f.v)
		}
	}
	if *maxConns < 0 {
		return usageError("--max-conns must be positive, not %d", *maxConns)
	}
	if *reserve < 0 {
		return usageError("--disk-reserve-mib must not be negative (0 turns the reserve off), not %d", *reserve)
	}
	diskReserve := *reserve
	if diskReserve == 0 {
		diskReserve = -1 // off
	}
	db, err := databaseConfig(*dbURL, *dbURLFile, *dbPassFile, stdin)
	if err != nil {
		return err
	}
	defer clear(db.password)
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError("bad --log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(stderr, opts)
	if *logJSON {
		h = slog.NewJSONHandler(stderr, opts)
	}
	log := slog.New(h)
	src, closeSource, err := srcFlags.open(ctx, fs, stdin, *dbURLFile == "-" || *dbPassFile == "-", log)
	if err != nil {
		return err
	}
	defer closeSource()
	mailer, err := mailFl.open(ctx, fs, stdin, *dbURLFile == "-" || *dbPassFile == "-" || *srcFlags.passFile == "-", log)
	if err != nil {
		return err
	}
	var mailerCfg directory.Mailer
	if mailer != nil {
		mailerCfg = mailer
	}
	var extra []string
	for _, s := range strings.Split(*hosts, ",") {
		if s = strings.TrimSpace(s); s != "" {
			extra = append(extra, s)
		}
	}
	srv, err := directory.New(directory.Config{
		DataDir: *data, CertFile: *cert, KeyFile: *key, Hosts: extra, Log: log,
		DatabaseURL: db.url, DatabasePassword: db.password, MasterKeyFile: *masterKey,
		Argon2:               directory.Argon2Params{Time: uint32(*a2time), MemoryKiB: uint32(*a2mem), Threads: uint8(*a2threads)},
		HashMemoryKiB:        *hashMem,
		Lockout:              directory.Lockout{Threshold: *lockN, Window: *lockWin, Duration: *lockDur},
		AccountRate:          directory.Rate{Every: *accEvery, Burst: *accBurst},
		DeviceRate:           directory.Rate{Every: *devEvery, Burst: *devBurst},
		AddressRate:          directory.Rate{Every: *addrEvery, Burst: *addrBurst},
		MaxConnsPerAddress:   *perAddr,
		MaxConns:             *maxConns,
		RequestTimeout:       *reqTimeout,
		AuditRetention:       *auditKeep,
		IdempotencyRetention: *idemKeep,
		DiskReserveMiB:       diskReserve,
		PingInterval:         *ping,
		ScanInterval:         *scan,
		WebIdleTimeout:       *webIdle,
		PublicURL:            *publicURL,
		Source:               src,
		Mailer:               mailerCfg,
		ResetLinkTTL:         *mailFl.linkTTL,
	})
	var ce *directory.ConfigError
	if errors.As(err, &ce) && configFlags[ce.Field] != "" {
		return usageError("--%s %s", configFlags[ce.Field], ce.Problem)
	}
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		_ = srv.Shutdown(ctx)
		return fmt.Errorf("listening: %w", err)
	}
	if err := srv.Start(ln); err != nil {
		_ = srv.Shutdown(ctx)
		return err
	}
	fmt.Fprintf(stdout, "lockstep-directory %s listening on %s\n", version.Version, directory.URL(ln.Addr()))
	if db.url != "" {
		fmt.Fprintln(stdout, "storage: PostgreSQL (replicas of this database share its data)")
	} else {
		fmt.Fprintf(stdout, "storage: SQLite in %s\n", *data)
	}
	if src != nil {
		fmt.Fprintf(stdout, "passwords: %s at %s, users under %s\n", src.Info().Name, *srcFlags.url, *srcFlags.baseDN)
	}
	if ca := srv.CAFile(); ca != "" {
		fmt.Fprintf(stdout, "CA certificate for agents to trust: %s\n", ca)
	}
	fmt.Fprintf(stdout, "admin commands: lockstep-directory user list --data %s\n", *data)
	fmt.Fprintf(stdout, "web console: %s/admin/ (first administrator: lockstep-directory admin add NAME --data %s); user portal: %s/\n",
		directory.URL(ln.Addr()), *data, directory.URL(ln.Addr()))

	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	waitErr := make(chan error, 1)
	go func() { waitErr <- srv.Wait() }()
	select {
	case <-sigCtx.Done():
		log.Info("signal received, shutting down")
	case err := <-waitErr:
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return fmt.Errorf("serving: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	return srv.Shutdown(sctx)
}

// isZeroOrLess reports a numeric or duration flag at or below zero.
func isZeroOrLess(f *flag.Flag) bool {
	switch v := f.Value.(flag.Getter).Get().(type) {
	case int:
		return v <= 0
	case int64:
		return v <= 0
	case uint64:
		return v == 0
	case time.Duration:
		return v <= 0
	}
	return false
}

// database is where serve keeps its data: a PostgreSQL connection string
// and password, or neither for SQLite.
type database struct {
	url      string
	password []byte
}

// databaseConfig gathers the PostgreSQL settings. A password never comes
// from the command line, which every local user can read (ps,
// /proc/PID/cmdline), nor from the environment, which children inherit and
// /proc/PID/environ, crash reports and service managers show: it comes
// from a file only its owner can read, or from stdin (so a service manager
// or a secret store can pipe it in).
func databaseConfig(url, urlFile, passFile string, stdin io.Reader) (database, error) {
	var db database
	if url != "" && urlFile != "" {
		return db, usageError("--database and --database-url-file exclude each other")
	}
	if urlFile == "-" && passFile == "-" {
		return db, usageError("only one of --database-url-file and --database-password-file can read stdin")
	}
	switch {
	case url != "":
		has, err := hasPassword(url)
		if err != nil {
			return db, usageError("--database: %v", err)
		}
		if has {
			return db, usageError("--database must not hold a password: command lines are visible to every local user; " +
				"use --database-password-file, or put the whole string in --database-url-file")
		}
		db.url = url
	case urlFile != "":
		b, err := readSecret(urlFile, stdin)
		if err != nil {
			return db, fmt.Errorf("reading the database connection string: %w", err)
		}
		db.url = string(b)
		clear(b)
		if db.url == "" {
			return db, fmt.Errorf("%s holds no connection string", urlFile)
		}
	}
	if passFile != "" {
		if db.url == "" {
			return db, usageError("--database-password-file needs --database or --database-url-file")
		}
		b, err := readSecret(passFile, stdin)
		if err != nil {
			return db, fmt.Errorf("reading the database password: %w", err)
		}
		db.password = b
	}
	return db, nil
}

// kvPassword finds a password in key=value connection strings.
var kvPassword = regexp.MustCompile(`(?i)(^|\s)(ssl)?password\s*=`)

// hasPassword reports whether a connection string carries a password.
func hasPassword(conn string) (bool, error) {
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := neturl.Parse(conn)
		if err != nil {
			// url.Parse quotes its input, so its message is not repeated.
			return false, errors.New("not a valid postgres:// URL")
		}
		if _, ok := u.User.Password(); ok {
			return true, nil
		}
		for k := range u.Query() {
			if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
				return true, nil
			}
		}
		return false, nil
	}
	return kvPassword.MatchString(conn), nil
}

// readSecret reads the first line of a file only its owner may read, or of
// stdin for "-", without its line ending.
func readSecret(path string, stdin io.Reader) ([]byte, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%s is readable by others (mode %o); chmod 600 it", path, st.Mode().Perm())
		}
		r = f
	}
	line, err := bufio.NewReaderSize(r, 4096).ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	out := bytes.TrimRight(line, "\r\n")
	cp := append([]byte(nil), out...)
	clear(line)
	return cp, nil
}
