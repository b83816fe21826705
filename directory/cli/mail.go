package cli

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lockstep-dev/lockstep/directory/mail"
)

// mailFlags are serve's outgoing mail settings.
type mailFlags struct {
	url, from, passFile, ca *string
	linkTTL                 *time.Duration
}

func registerMailFlags(fs *flag.FlagSet) *mailFlags {
	return &mailFlags{
		url:      fs.String("smtp-url", "", "send mail (password reset links) through `URL`: smtps://[USER@]HOST[:465], or smtp://[USER@]HOST[:587] with STARTTLS, which is then required"),
		from:     fs.String("smtp-from", "", "the sender `ADDRESS` of the directory's mail"),
		passFile: fs.String("smtp-password-file", "", "read the SMTP user's password from `FILE` (mode 0600; - for the first line of stdin)"),
		ca:       fs.String("smtp-ca", "", "PEM `FILE` of the CA that signs the SMTP server's certificate (default: the system roots)"),
		linkTTL:  fs.Duration("reset-link-ttl", time.Hour, "how long a password reset link works (at most 24h)"),
	}
}

// open checks the flags and makes the mailer (nil without --smtp-url). The
// server is tried once, and only a warning is logged if it cannot be
// reached: the directory serves its Macs without mail.
func (f *mailFlags) open(ctx context.Context, fs *flag.FlagSet, stdin io.Reader, stdinTaken bool, log *slog.Logger) (*mail.Mailer, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if *f.url == "" {
		for _, name := range []string{"smtp-from", "smtp-password-file", "smtp-ca"} {
			if set[name] {
				return nil, usageError("--%s needs --smtp-url", name)
			}
		}
		return nil, nil
	}
	if *f.from == "" {
		return nil, usageError("--smtp-url needs --smtp-from")
	}
	var pw []byte
	if *f.passFile != "" {
		if *f.passFile == "-" && stdinTaken {
			return nil, usageError("only one of --smtp-password-file and the other secret flags can read stdin")
		}
		var err error
		if pw, err = readSecret(*f.passFile, stdin); err != nil {
			return nil, fmt.Errorf("--smtp-password-file: %w", err)
		}
		defer clear(pw)
		if len(pw) == 0 {
			return nil, fmt.Errorf("--smtp-password-file: %s holds no password", *f.passFile)
		}
	}
	var roots *x509.CertPool
	if *f.ca != "" {
		b, err := os.ReadFile(*f.ca)
		if err != nil {
			return nil, fmt.Errorf("--smtp-ca: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--smtp-ca: %s holds no PEM certificate", *f.ca)
		}
	}
	m, err := mail.New(mail.Config{URL: *f.url, From: *f.from, Password: pw, RootCAs: roots})
	if err != nil {
		return nil, usageError("--smtp-url: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := m.Check(cctx); err != nil {
		log.Warn("smtp server not usable", "server", m.Server(), "err", err)
	}
	return m, nil
}
