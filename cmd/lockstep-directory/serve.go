package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
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

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data directory (database, keys, certificates, admin token)")
	listen := fs.String("listen", ":8443", "address to listen on")
	cert := fs.String("cert", "", "server certificate (PEM); default: a local CA in --data issues one")
	key := fs.String("key", "", "server key (PEM), with --cert")
	hosts := fs.String("hosts", "", "extra comma-separated names for the generated certificate")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logJSON := fs.Bool("log-json", false, "log JSON lines instead of text")
	a2time := fs.Uint("argon2-time", uint(directory.DefaultArgon2.Time), "argon2id passes for new hashes")
	a2mem := fs.Uint("argon2-memory-kib", uint(directory.DefaultArgon2.MemoryKiB), "argon2id memory in KiB for new hashes")
	a2threads := fs.Uint("argon2-threads", uint(directory.DefaultArgon2.Threads), "argon2id lanes for new hashes")
	hashMem := fs.Uint64("hash-memory-kib", 0, "memory budget for concurrent password checks (default 4 × argon2 memory)")
	lockN := fs.Int("lockout-threshold", 5, "failures that lock an account")
	lockWin := fs.Duration("lockout-window", 15*time.Minute, "window in which failures count")
	lockDur := fs.Duration("lockout-duration", 15*time.Minute, "how long a lockout lasts")
	accEvery := fs.Duration("account-rate-every", 6*time.Second, "password checks per account: one token per this")
	accBurst := fs.Int("account-rate-burst", 10, "password checks per account: bucket size")
	addrEvery := fs.Duration("address-rate-every", 500*time.Millisecond, "password checks and enrollments per source address: one token per this")
	addrBurst := fs.Int("address-rate-burst", 60, "per source address: bucket size")
	ping := fs.Duration("ping-interval", 30*time.Second, "agent keepalive interval")
	scan := fs.Duration("scan-interval", time.Hour, "expiry scanner interval")
	grace := fs.Duration("shutdown-timeout", 30*time.Second, "how long shutdown waits for requests in progress")
	if err := fs.Parse(args); err != nil {
		return usageError("%v", err)
	}
	if *data == "" {
		return usageError("serve needs --data DIR")
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
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
	var extra []string
	for _, s := range strings.Split(*hosts, ",") {
		if s = strings.TrimSpace(s); s != "" {
			extra = append(extra, s)
		}
	}
	srv, err := directory.New(directory.Config{
		DataDir: *data, CertFile: *cert, KeyFile: *key, Hosts: extra, Logger: log,
		Argon2:        directory.Argon2Params{Time: uint32(*a2time), MemoryKiB: uint32(*a2mem), Threads: uint8(*a2threads)},
		HashMemoryKiB: *hashMem,
		Lockout:       directory.Lockout{Threshold: *lockN, Window: *lockWin, Duration: *lockDur},
		AccountRate:   directory.Rate{Every: *accEvery, Burst: *accBurst},
		AddressRate:   directory.Rate{Every: *addrEvery, Burst: *addrBurst},
		PingInterval:  *ping,
		ScanInterval:  *scan,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		_ = srv.Shutdown(ctx)
		return fmt.Errorf("listening: %w", err)
	}
	if err := srv.Start(ln); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "lockstep-directory %s listening on %s\n", version.Version, directory.URL(ln.Addr()))
	if ca := srv.CAFile(); ca != "" {
		fmt.Fprintf(stdout, "CA certificate for agents to trust: %s\n", ca)
	}
	fmt.Fprintf(stdout, "admin commands: lockstep-directory user list --data %s\n", *data)

	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	waitErr := make(chan error, 1)
	go func() { waitErr <- srv.Wait() }()
	select {
	case <-sigCtx.Done():
		log.Info("signal_received")
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
