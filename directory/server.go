// Package directory is lockstep-directory: the source of truth for users'
// passwords, MFA and policy, and the party that pushes resets to enrolled
// Macs over the agent websocket.
//
// A Server serves, on one TLS listener, the agent websocket
// (protocol.AgentPath), device enrollment (protocol.EnrollPath) and the
// admin API (package admin). It can be embedded in tests:
//
//	srv, err := directory.New(directory.Config{DataDir: dir})
//	ln, _ := net.Listen("tcp", "127.0.0.1:0")
//	err = srv.Start(ln)                 // writes admin.json, serves in the background
//	client, _ := admin.FromDataDir(dir)
//	...
//	srv.Shutdown(ctx)
//
// Storage is SQLite in DataDir, or PostgreSQL when Config.DatabaseURL is
// set; then several Servers (replicas, each with its own DataDir but one
// master key) can share the database, and a push one of them stores
// reaches devices connected to any of them through LISTEN/NOTIFY (see
// changeFeed).
package directory

import (
	"context"
	"crypto/hmac"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/directory/web"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Server is a running directory.
type Server struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	st   store.Store
	hash *hasher
	keys *secrets
	// src holds the passwords: the built-in store or a directory behind
	// it (Config.Source).
	src  source.Source
	upol userPolicies
	// lockoutThreshold is a remote source's (0: the configured one).
	lockoutThreshold atomic.Int64
	// sourceEvents counts the source's reports handled, for tests.
	sourceEvents atomic.Int64

	policy atomic.Pointer[protocol.Policy]
	// srcRules is a remote source's own default rules; extraRules are
	// Lockstep's own on top of them (source.Info's ExtraRules).
	srcRules, extraRules atomic.Pointer[protocol.Policy]
	// policyMu orders the publications of the policy: a set through the
	// admin API and a reload on another replica's word, so that a reload
	// that read an older snapshot cannot overwrite a newer set.
	policyMu sync.Mutex

	adminToken []byte
	tlsConfig  *tls.Config
	caFile     string // "" with a configured certificate

	hub       *hub
	limits    *limiter
	noiseGate *noiseGate
	rateLog   *rateLog
	disk      diskWatch
	bg        *batcher
	upgrader  websocket.Upgrader
	http      *http.Server

	// ctx lives until the hard end of Shutdown; handlers use it.
	ctx    context.Context
	cancel context.CancelFunc
	// feedCtx bounds the change feed from other replicas.
	feedCtx  context.Context
	stopFeed context.CancelFunc

	active   sync.WaitGroup // agent handshakes in progress
	handlers sync.WaitGroup // in-flight websocket requests
	loops    sync.WaitGroup // readers, scanner
	closing  atomic.Bool
	pending  atomic.Int64
	stopScan chan struct{}
	keyLocks keyedMutex // serialise requests per (device, idempotency key)

	serveErr chan error
	mu       sync.Mutex
	started  bool
	// url is the listener's https URL, once started.
	url string
}

// listenURL is the URL the server listens at ("" before Start).
func (s *Server) listenURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// New opens the data directory (creating the database, keys and
// certificates on first use) and returns a Server ready to Start.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	if err := checkPermissions(cfg); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Log, now: cfg.Now, stopScan: make(chan struct{}), serveErr: make(chan error, 1)}
	s.src = cfg.Source
	if s.src == nil {
		s.src = builtin{s}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.feedCtx, s.stopFeed = context.WithCancel(s.ctx)

	st, err := openStore(s.ctx, cfg)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.st = st
	if err := s.prepare(); err != nil {
		st.Close()
		s.cancel()
		return nil, err
	}
	if s.hash, err = newHasher(cfg.Argon2, cfg.HashMemoryKiB, s.ctx.Done()); err != nil {
		st.Close()
		s.cancel()
		return nil, err
	}
	s.limits = newLimiter(cfg.AccountRate, cfg.DeviceRate, cfg.AddressRate)
	s.noiseGate = newNoiseGate()
	s.rateLog = newRateLog(s.log)
	s.hub = newHub(s)
	s.bg = newBatcher(s.st, s.log)
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   512,
		WriteBufferSize:  4096,
		WriteBufferPool:  &sync.Pool{},
		// Agents are not browsers; an Origin header means one is trying.
		CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "" },
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+protocol.AgentPath, s.handleAgent)
	mux.HandleFunc("POST "+protocol.EnrollPath, s.withDeadlines(s.handleEnroll))
	s.adminRoutes(mux)
	s.consoleAdminRoutes(mux)
	pages, err := web.New(web.Config{Auth: webAuth{s}, Console: webConsole{s}, Portal: webPortal{s}, Key: s.keys.webKey, Now: s.now,
		IdleTimeout: cfg.WebIdleTimeout, MaxAge: cfg.WebMaxAge, Log: s.log, Title: cfg.Issuer})
	if err != nil {
		st.Close()
		s.cancel()
		return nil, err
	}
	mux.Handle("/", s.withDeadlines(pages.ServeHTTP))
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	return s, nil
}

// prepare loads the keys, the admin token, the TLS certificate and the
// policy.
func (s *Server) prepare() error {
	var err error
	if s.keys, err = s.masterKey(s.ctx); err != nil {
		return err
	}
	if s.adminToken, err = loadOrCreateSecret(filepath.Join(s.cfg.DataDir, AdminTokenFile), 32); err != nil {
		return err
	}
	var cert tls.Certificate
	if s.cfg.CertFile != "" {
		if cert, err = tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile); err != nil {
			return fmt.Errorf("loading certificate: %w", err)
		}
	} else {
		if cert, err = ensureTLS(s.cfg.DataDir, certHosts(s.cfg.Hosts), s.now()); err != nil {
			return fmt.Errorf("preparing TLS: %w", err)
		}
		s.caFile, _ = filepath.Abs(filepath.Join(s.cfg.DataDir, CAFile))
	}
	if !s.src.Info().ManagesPolicy {
		// The policy is the source's own (AD's domain policy), with
		// Lockstep's own rules on top where the source takes them.
		s.tlsConfig = tlsConfigFor(cert)
		if s.src.Info().ExtraRules {
			if err := s.st.View(s.ctx, func(tx store.Tx) error { return s.loadExtraRules(s.ctx, tx) }); err != nil {
				return fmt.Errorf("reading Lockstep's own password rules: %w", err)
			}
		}
		if err := s.loadSourcePolicy(s.ctx); err != nil {
			return fmt.Errorf("reading the directory's password policy: %w", err)
		}
		return nil
	}
	s.tlsConfig = tlsConfigFor(cert)
	return s.loadPolicy(s.ctx)
}

func tlsConfigFor(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: protocol.TLS12CipherSuites,
		// HTTP/1.1 only: websockets upgrade from it.
		NextProtos: []string{"http/1.1"},
	}
}

// openStore opens PostgreSQL when a URL is configured, otherwise the
// SQLite file in the data directory.
func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	if cfg.DatabaseURL != "" {
		st, err := store.OpenPostgres(ctx, cfg.DatabaseURL, store.PostgresOptions{Password: cfg.DatabasePassword, Log: cfg.Log})
		if err != nil {
			return nil, fmt.Errorf("opening PostgreSQL: %w", err)
		}
		return st, nil
	}
	// A missing or empty database beside a master key is a directory that
	// lost its data (a restore gone wrong, a truncated file): starting
	// afresh would reuse the keys for a new, empty directory.
	dbPath := filepath.Join(cfg.DataDir, DBFile)
	if st, err := os.Stat(dbPath); err != nil || st.Size() == 0 {
		if _, kerr := os.Stat(cfg.MasterKeyFile); kerr == nil {
			return nil, fmt.Errorf("%s is missing or empty, but the master key %s exists: the directory's data is lost or was "+
				"replaced. Restore %s from a backup; to start a new, empty directory instead, move the data directory away", dbPath,
				cfg.MasterKeyFile, DBFile)
		}
	}
	// The database holds password hashes: owner only (SQLite gives its WAL
	// and shared-memory files the same mode).
	if f, err := os.OpenFile(dbPath, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}
	st, err := store.OpenSQLite(ctx, dbPath)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", dbPath, err)
	}
	return st, nil
}

// keyCheckSetting names the stored check value of the master key.
const keyCheckSetting = "master_key_check"

// masterKey loads the master key, creating it on the first start of a
// database, and checks it against the value the database recorded then:
// replicas with different keys would each fail to open the others' TOTP
// secrets and to recognise the others' idempotent requests.
func (s *Server) masterKey(ctx context.Context) (*secrets, error) {
	path := s.cfg.MasterKeyFile
	var recorded []byte
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		recorded, err = tx.Setting(ctx, keyCheckSetting)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("reading the master key check: %w", err)
	}
	if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) && recorded != nil {
		return nil, fmt.Errorf("master key %s is missing, but the database was set up with one: copy it from another replica "+
			"(or restore it from backup) with mode 0600", path)
	}
	enc, err := loadOrCreateSecret(path, 32)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 32)
	defer clear(raw)
	if n, err := b64url.Decode(raw, enc); err != nil || n != 32 {
		return nil, fmt.Errorf("%s is corrupt", path)
	}
	clear(enc)
	keys, err := newSecrets(raw)
	if err != nil {
		return nil, err
	}
	check := keyCheck(raw)
	if recorded == nil {
		err := s.st.Update(ctx, func(tx store.Tx) error {
			err := tx.CreateSetting(ctx, keyCheckSetting, check)
			if errors.Is(err, store.ErrExists) {
				// Another replica started at the same moment: compare.
				recorded, err = tx.Setting(ctx, keyCheckSetting)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("recording the master key check: %w", err)
		}
	}
	if recorded != nil && !hmac.Equal(recorded, check) {
		return nil, fmt.Errorf("master key %s is not the key this database was set up with: every replica sharing a "+
			"database needs the same key (copy it from another replica with mode 0600)", path)
	}
	return keys, nil
}

func (s *Server) loadPolicy(ctx context.Context) error {
	var p protocol.Policy
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		p, err = tx.Policy(ctx)
		if errors.Is(err, store.ErrNotFound) {
			p = protocol.DefaultPolicy()
			return tx.SetPolicy(ctx, p)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("loading policy: %w", err)
	}
	s.policy.Store(&p)
	return nil
}

// CAFile is the absolute path of the generated CA certificate that agents
// and admin clients must trust, or "" when a certificate was configured.
func (s *Server) CAFile() string { return s.caFile }

// AdminToken returns a copy of the admin token.
func (s *Server) AdminToken() []byte { return append([]byte(nil), s.adminToken...) }

// Start writes admin.json for ln and serves on it (TLS on top) in the
// background. It returns once the server accepts connections.
func (s *Server) Start(ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("directory: already started")
	}
	s.started = true
	s.url = URL(ln.Addr())
	if err := s.writeAdminInfo(ln.Addr()); err != nil {
		return err
	}
	s.loops.Add(2)
	go func() { defer s.loops.Done(); s.scanLoop() }()
	go func() { defer s.loops.Done(); s.hub.pingLoop() }()
	if f, ok := s.st.(changeFeed); ok {
		s.loops.Add(1)
		go func() { defer s.loops.Done(); f.Listen(s.feedCtx, s.applyChange) }()
	}
	s.loops.Add(1)
	go func() { defer s.loops.Done(); s.watchSource(s.feedCtx) }()
	go func() {
		err := s.http.Serve(tls.NewListener(s.limitConns(ln), s.tlsConfig))
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	s.log.Info("directory listening", "addr", ln.Addr().String(), "ca_file", s.caFile, "source", s.src.Info().Kind,
		"max_conns_per_address", s.cfg.MaxConnsPerAddress, "max_conns", s.cfg.MaxConns)
	return nil
}

// Serve is Start followed by waiting until Shutdown (nil) or a listener
// failure.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.Start(ln); err != nil {
		return err
	}
	return s.Wait()
}

// Wait blocks until the server stops serving.
func (s *Server) Wait() error {
	err := <-s.serveErr
	s.serveErr <- err
	return err
}

// URL is the https URL for a listener address, with a wildcard address
// replaced by loopback.
func URL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "https://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	return "https://" + net.JoinHostPort(host, port)
}

func (s *Server) writeAdminInfo(addr net.Addr) error {
	tok, err := filepath.Abs(filepath.Join(s.cfg.DataDir, AdminTokenFile))
	if err != nil {
		return fmt.Errorf("writing admin info: %w", err)
	}
	b, err := json.MarshalIndent(admin.Info{URL: URL(addr), CAFile: s.caFile, TokenFile: tok}, "", "  ")
	if err != nil {
		return fmt.Errorf("writing admin info: %w", err)
	}
	return writeFileAtomic(filepath.Join(s.cfg.DataDir, AdminInfoFile), append(b, '\n'), 0o644)
}

// Shutdown stops the server without losing a write: it stops accepting,
// waits for admin and enrollment requests, closes every agent connection
// after its in-flight requests finish, flushes queued writes and closes
// the database. When ctx ends first, remaining work is cancelled.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return errors.New("directory: already shut down")
	}
	s.closing.Store(true)
	s.mu.Unlock()
	s.log.Info("shutdown started")
	var errs []error
	if err := s.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stopping HTTP: %w", err))
	}
	// Hijacked websockets are not HTTP's to wait for: wait for handshakes
	// in progress (each registers its connection or gives up).
	if err := waitCtx(ctx, &s.active, s.cancel); err != nil {
		errs = append(errs, fmt.Errorf("waiting for handshakes: %w", err))
	}
	close(s.stopScan)
	s.stopFeed()
	// Readers now drop new requests; let the running ones finish and queue
	// their results, then say goodbye to every agent.
	if err := waitCtx(ctx, &s.handlers, s.cancel); err != nil {
		errs = append(errs, fmt.Errorf("waiting for requests: %w", err))
	}
	s.hub.closeAll()
	if err := waitCtx(ctx, &s.loops, s.cancel); err != nil {
		errs = append(errs, fmt.Errorf("waiting for connections: %w", err))
	}
	s.flushNoise()
	s.bg.close()
	// Admin commands now fail with "is the directory running?".
	_ = os.Remove(filepath.Join(s.cfg.DataDir, AdminInfoFile))
	if err := s.st.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing database: %w", err))
	}
	s.cancel()
	s.mu.Lock()
	if !s.started {
		s.serveErr <- nil
	}
	s.mu.Unlock()
	s.log.Info("shutdown complete")
	return errors.Join(errs...)
}

// Stats is a snapshot of the server's load.
func (s *Server) Stats() admin.Stats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return admin.Stats{
		Connections: s.hub.count(),
		Pending:     int(s.pending.Load()),
		Goroutines:  runtime.NumGoroutine(),
		HeapBytes:   ms.HeapAlloc,
		StackBytes:  ms.StackInuse,
		SysBytes:    ms.Sys,
	}
}

// Policy returns the current password policy.
func (s *Server) Policy() protocol.Policy { return *s.policy.Load() }

// track adds one to wg unless the server is shutting down, so that no
// work starts after Shutdown began waiting.
func (s *Server) track(wg *sync.WaitGroup) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	wg.Add(1)
	return true
}

// waitCtx waits for wg; when ctx ends first it calls cancel and waits on.
func waitCtx(ctx context.Context, wg *sync.WaitGroup, cancel context.CancelFunc) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		cancel()
		<-done
		return ctx.Err()
	}
}
