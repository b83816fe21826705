package directory

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/lockstep-dev/lockstep/directory/source"
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

	// Log receives the service log; nil discards it.
	Log *slog.Logger
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
	// Duration (defaults 5, 15 min, 15 min). Wrong passwords and wrong
	// second factors are counted apart; wrong passwords from devices not
	// bound to the user are counted apart too and block only binding.
	Lockout Lockout
	// AccountRate limits password checks per target user (default burst
	// 10, one per 6 s), with separate buckets for the user's own devices
	// and for the rest, so that a stranger cannot starve the user's Macs.
	AccountRate Rate
	// DeviceRate limits, per device, password checks and requests that
	// write (default burst 30, one per 2 s), so that one device cannot
	// block the others behind its address.
	DeviceRate Rate
	// AddressRate limits, per source address, what unauthenticated
	// parties can make the directory do: failed agent handshakes,
	// enrollments and failed admin calls (default burst 60, 2/s).
	AddressRate Rate

	// MaxConnsPerAddress caps the open connections from one address
	// (default 1000; an office behind one NAT address needs one per Mac,
	// so does a TLS-terminating proxy); MaxConns caps them all (default:
	// the process's open-file limit less 256, so that accepting never runs
	// out of file descriptors).
	MaxConnsPerAddress, MaxConns int
	// RequestTimeout bounds reading an enrollment or admin request,
	// headers and body (default 10 s); writing its answer may take six
	// times as long.
	RequestTimeout time.Duration

	// AuditRetention is how long audit events are kept (default 365
	// days); IdempotencyRetention how long a mutating request's first
	// outcome is remembered (default 7 days).
	AuditRetention, IdempotencyRetention time.Duration
	// DiskReserveMiB is the free space, in MiB, below which the SQLite
	// directory stops writing what unauthenticated parties and devices can
	// cause in bulk (audit events of failures, new enrollments), so that
	// administrators' writes keep working (default 64; a negative value
	// turns it off). It does not apply to PostgreSQL, whose disk is not the
	// directory's.
	DiskReserveMiB int64

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

	// Mailer sends the directory's mail (password reset links): package
	// mail's, configured by serve's --smtp-* flags. nil: no mail is sent
	// (SendResetLink answers CodeUnsupported).
	Mailer Mailer
	// ResetLinkTTL is how long a password reset link works (default 1 h,
	// at most 24 h).
	ResetLinkTTL time.Duration

	// PublicURL is the address people reach the portal at
	// (https://lockstep.example.com), for the links in reset mail; default
	// the listener's address. Never a request's Host header.
	PublicURL string
	// WebIdleTimeout ends a console or portal session after this long
	// without a request (default 15 min); WebMaxAge ends any session
	// (default 12 h).
	WebIdleTimeout, WebMaxAge time.Duration

	// Source holds the passwords when they are not the directory's own:
	// Active Directory (package source/ad). nil means the built-in store.
	// The caller closes it after Shutdown.
	Source source.Source
}

// Argon2Params are argon2id cost parameters.
type Argon2Params struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
}

// DefaultArgon2 is the production cost: 3 passes over 64 MiB on 2 lanes.
var DefaultArgon2 = Argon2Params{Time: 3, MemoryKiB: 64 << 10, Threads: 2}

// Bounds of argon2id parameters: a stored hash outside them is refused as
// malformed, so a configuration outside them is refused at start (a hash
// made with it could never be verified).
const (
	MaxArgon2Time      = 64
	MaxArgon2MemoryKiB = 4 << 20 // 4 GiB
	MaxArgon2Threads   = 255
)

// ConfigError says which setting is wrong and why. Field is the Config
// field's name ("Argon2.Time"), so that a command line can name its flag.
type ConfigError struct {
	Field   string
	Problem string
}

func (e *ConfigError) Error() string { return "config: " + e.Field + " " + e.Problem }

func badConfig(field, format string, args ...any) error {
	return &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

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

// setDefaults fills zero fields with their defaults and checks the rest.
func (c *Config) setDefaults() error {
	if c.DataDir == "" {
		return &ConfigError{Field: "DataDir", Problem: "is required"}
	}
	if c.MasterKeyFile == "" {
		c.MasterKeyFile = filepath.Join(c.DataDir, ServerKeyFile)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("config: CertFile and KeyFile go together")
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Argon2 == (Argon2Params{}) {
		c.Argon2 = DefaultArgon2
	}
	switch a := c.Argon2; {
	case a.Time < 1 || a.Time > MaxArgon2Time:
		return badConfig("Argon2.Time", "must be between 1 and %d, not %d", MaxArgon2Time, a.Time)
	case a.Threads < 1:
		return badConfig("Argon2.Threads", "must be between 1 and %d, not %d", MaxArgon2Threads, a.Threads)
	case a.MemoryKiB < 8*uint32(a.Threads) || a.MemoryKiB > MaxArgon2MemoryKiB:
		return badConfig("Argon2.MemoryKiB", "must be between 8 × threads (%d) and %d, not %d", 8*uint32(a.Threads), MaxArgon2MemoryKiB, a.MemoryKiB)
	}
	if c.HashMemoryKiB == 0 {
		c.HashMemoryKiB = 4 * checkCostKiB(c.Argon2)
	}
	if c.HashMemoryKiB < checkCostKiB(c.Argon2) {
		return badConfig("HashMemoryKiB", "must hold at least one password check (%d KiB with these argon2 parameters), not %d",
			checkCostKiB(c.Argon2), c.HashMemoryKiB)
	}
	if err := defaultInt(&c.Lockout.Threshold, 5, "Lockout.Threshold"); err != nil {
		return err
	}
	for _, d := range []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{
		{"Lockout.Window", &c.Lockout.Window, 15 * time.Minute},
		{"Lockout.Duration", &c.Lockout.Duration, 15 * time.Minute},
		{"PingInterval", &c.PingInterval, 30 * time.Second},
		{"ScanInterval", &c.ScanInterval, time.Hour},
		{"EnrollTokenTTL", &c.EnrollTokenTTL, 24 * time.Hour},
		{"RequestTimeout", &c.RequestTimeout, 10 * time.Second},
		{"AuditRetention", &c.AuditRetention, 365 * 24 * time.Hour},
		{"IdempotencyRetention", &c.IdempotencyRetention, 7 * 24 * time.Hour},
		{"WebIdleTimeout", &c.WebIdleTimeout, 15 * time.Minute},
		{"WebMaxAge", &c.WebMaxAge, 12 * time.Hour},
		{"ResetLinkTTL", &c.ResetLinkTTL, time.Hour},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < 0 {
			return badConfig(d.field, "must be positive, not %v", *d.v)
		}
	}
	if c.ResetLinkTTL > 24*time.Hour {
		return badConfig("ResetLinkTTL", "must be at most 24h, not %v", c.ResetLinkTTL)
	}
	if c.PingInterval < minPingInterval {
		return badConfig("PingInterval", "must be at least %v, not %v", minPingInterval, c.PingInterval)
	}
	for _, r := range []struct {
		field string
		v     *Rate
		def   Rate
	}{
		{"AccountRate", &c.AccountRate, Rate{Every: 6 * time.Second, Burst: 10}},
		{"DeviceRate", &c.DeviceRate, Rate{Every: 2 * time.Second, Burst: 30}},
		{"AddressRate", &c.AddressRate, Rate{Every: 500 * time.Millisecond, Burst: 60}},
	} {
		if *r.v == (Rate{}) {
			*r.v = r.def
		}
		if r.v.Every <= 0 {
			return badConfig(r.field+".Every", "must be positive, not %v", r.v.Every)
		}
		if r.v.Burst < 1 {
			return badConfig(r.field+".Burst", "must be at least 1, not %d", r.v.Burst)
		}
	}
	if err := defaultInt(&c.MaxConnsPerAddress, 1000, "MaxConnsPerAddress"); err != nil {
		return err
	}
	if err := defaultInt(&c.MaxConns, maxConnsFromLimit(), "MaxConns"); err != nil {
		return err
	}
	if c.DiskReserveMiB == 0 {
		c.DiskReserveMiB = 64
	}
	if c.Issuer == "" {
		c.Issuer = "Lockstep"
	}
	return nil
}

// minPingInterval keeps the ping wheel's tick positive.
const minPingInterval = 10 * time.Millisecond

// defaultInt sets a zero *v to def and refuses a negative one.
func defaultInt(v *int, def int, field string) error {
	if *v == 0 {
		*v = def
	}
	if *v < 1 {
		return badConfig(field, "must be at least 1, not %d", *v)
	}
	return nil
}
