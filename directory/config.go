package directory

import (
	"errors"
	"log/slog"
	"path/filepath"
	"time"
)

// Config configures a Server. Zero fields take the defaults documented on
// each; DataDir is required.
type Config struct {
	// DataDir holds the database (SQLite), the TLS files, the admin
	// token, admin.json and, by default, the master key. With a PostgreSQL
	// database each replica has its own DataDir.
	DataDir string
	// DatabaseURL, when set, is a PostgreSQL connection string (a
	// postgres:// URL or key=value pairs): the data then lives in that
	// database, which several replicas share, instead of SQLite in
	// DataDir. It may hold a password; it is never logged.
	DatabaseURL string
	// DatabasePassword, when set, is the PostgreSQL password, replacing
	// any in DatabaseURL (so the URL can be kept free of it).
	DatabasePassword []byte
	// MasterKeyFile is the 0600 file holding the 32-byte master key that
	// seals TOTP secrets and keys idempotency fingerprints (default
	// DataDir/server.key, made on first start). Replicas sharing a
	// database must share this key: the database records a check value
	// on first start and a replica with another key refuses to start.
	MasterKeyFile string
	// CertFile and KeyFile name a real certificate and key. When empty the
	// server makes a local CA and a server certificate in DataDir.
	CertFile, KeyFile string
	// Hosts are extra names and addresses for the generated server
	// certificate (localhost, 127.0.0.1, ::1 and the hostname are always in).
	Hosts []string

	// Logger receives the service log; nil discards it.
	Logger *slog.Logger
	// Now is the clock for TOTP, lockout, rate limits and expiry; nil means
	// time.Now. Tests inject a fake one.
	Now func() time.Time

	// Argon2 are the parameters for new hashes; hashes made with weaker
	// parameters are upgraded on the next successful verification.
	Argon2 Argon2Params
	// HashMemoryKiB bounds the memory of concurrent argon2id computations
	// (default 4 × Argon2.MemoryKiB). Checks beyond it wait.
	HashMemoryKiB uint64

	// Lockout: Threshold failures within Window lock the account for
	// Duration (defaults 5, 15 min, 15 min).
	Lockout Lockout
	// AccountRate and AddressRate limit password checks per account and
	// per source address (defaults: burst 10, one per 6 s; burst 60, 2/s).
	AccountRate, AddressRate Rate

	// PingInterval is how often each agent connection is pinged
	// (default 30 s); an agent silent for 2.5 intervals is dropped.
	PingInterval time.Duration
	// ScanInterval is how often the expiry scanner runs (default 1 h).
	ScanInterval time.Duration
	// EnrollTokenTTL is the default lifetime of an enrollment token
	// (default 24 h).
	EnrollTokenTTL time.Duration
	// Issuer names the service in TOTP enrollment URIs (default "Lockstep").
	Issuer string
}

// Argon2Params are argon2id cost parameters.
type Argon2Params struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
}

// DefaultArgon2 is the production cost: 3 passes over 64 MiB on 2 lanes.
var DefaultArgon2 = Argon2Params{Time: 3, MemoryKiB: 64 << 10, Threads: 2}

// Lockout configures account lockout.
type Lockout struct {
	Threshold int
	Window    time.Duration
	Duration  time.Duration
}

// Rate is a token bucket: Burst tokens, refilled one per Every.
type Rate struct {
	Every time.Duration
	Burst int
}

func (c *Config) setDefaults() error {
	if c.DataDir == "" {
		return errors.New("config: DataDir is required")
	}
	if c.MasterKeyFile == "" {
		c.MasterKeyFile = filepath.Join(c.DataDir, ServerKeyFile)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("config: CertFile and KeyFile go together")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Argon2 == (Argon2Params{}) {
		c.Argon2 = DefaultArgon2
	}
	if c.Argon2.Time == 0 || c.Argon2.MemoryKiB < 8 || c.Argon2.Threads == 0 {
		return errors.New("config: Argon2 parameters must all be positive (memory at least 8 KiB)")
	}
	if c.HashMemoryKiB == 0 {
		c.HashMemoryKiB = 4 * uint64(c.Argon2.MemoryKiB)
	}
	if c.Lockout.Threshold == 0 {
		c.Lockout.Threshold = 5
	}
	if c.Lockout.Window == 0 {
		c.Lockout.Window = 15 * time.Minute
	}
	if c.Lockout.Duration == 0 {
		c.Lockout.Duration = 15 * time.Minute
	}
	if c.AccountRate == (Rate{}) {
		c.AccountRate = Rate{Every: 6 * time.Second, Burst: 10}
	}
	if c.AddressRate == (Rate{}) {
		c.AddressRate = Rate{Every: 500 * time.Millisecond, Burst: 60}
	}
	if c.PingInterval == 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.ScanInterval == 0 {
		c.ScanInterval = time.Hour
	}
	if c.EnrollTokenTTL == 0 {
		c.EnrollTokenTTL = 24 * time.Hour
	}
	if c.Issuer == "" {
		c.Issuer = "Lockstep"
	}
	return nil
}
