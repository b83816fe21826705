package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/source/ad"
)

// sourceFlags are serve's flags for the directory behind Lockstep.
type sourceFlags struct {
	kind, url, ca, baseDN, bindDN, passFile, filter *string
	timeout, poll                                   *time.Duration
}

func registerSourceFlags(fs *flag.FlagSet) *sourceFlags {
	return &sourceFlags{
		kind:     fs.String("source", "builtin", "where passwords live: builtin (Lockstep's own store) or ad (Active Directory)"),
		url:      fs.String("ldap-url", "", "the domain controller: ldaps://HOST[:PORT], or ldap://HOST[:PORT] for StartTLS (--source ad)"),
		ca:       fs.String("ldap-ca", "", "PEM `FILE` of the CA that signs the domain controller's certificate (default: the system roots)"),
		baseDN:   fs.String("base-dn", "", "where users are found, e.g. `DC=example,DC=com` (the whole subtree)"),
		bindDN:   fs.String("bind-dn", "", "Lockstep's own account: a DN or `user@domain`"),
		passFile: fs.String("bind-password-file", "", "read the bind account's password from `FILE` (mode 0600; - for the first line of stdin)"),
		filter:   fs.String("user-filter", "", "an LDAP filter the users in scope must also match, e.g. (memberOf=CN=Mac users,OU=Groups,DC=example,DC=com)"),
		timeout:  fs.Duration("ldap-timeout", 10*time.Second, "bound on each LDAP operation"),
		poll:     fs.Duration("ldap-poll-interval", 30*time.Second, "how often uSNChanged is polled if the domain controller refuses change notification"),
	}
}

// adFlags names, for each ad.Config field, its flag.
var adFlags = map[string]string{
	"URL": "ldap-url", "CAFile": "ldap-ca", "BaseDN": "base-dn", "BindDN": "bind-dn", "BindPassword": "bind-password-file",
	"UserFilter": "user-filter",
}

// open makes the source the flags name; nil for the built-in store. The
// caller closes what it returns after the server stopped.
func (f *sourceFlags) open(ctx context.Context, fs *flag.FlagSet, stdin io.Reader, stdinTaken bool, log *slog.Logger) (source.Source, func(), error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	switch *f.kind {
	case "builtin", "":
		for _, name := range []string{"ldap-url", "ldap-ca", "base-dn", "bind-dn", "bind-password-file", "user-filter"} {
			if set[name] {
				return nil, nil, usageError("--%s needs --source ad", name)
			}
		}
		return nil, func() {}, nil
	case "ad":
	default:
		return nil, nil, usageError("--source must be builtin or ad, not %q", *f.kind)
	}
	for _, r := range []struct{ name, v string }{{"ldap-url", *f.url}, {"base-dn", *f.baseDN}, {"bind-dn", *f.bindDN},
		{"bind-password-file", *f.passFile}} {
		if r.v == "" {
			return nil, nil, usageError("--source ad needs --%s", r.name)
		}
	}
	if *f.passFile == "-" && stdinTaken {
		return nil, nil, usageError("only one of --bind-password-file and the database flags can read stdin")
	}
	if *f.timeout <= 0 || *f.poll <= 0 {
		return nil, nil, usageError("--ldap-timeout and --ldap-poll-interval must be positive")
	}
	pw, err := readSecret(*f.passFile, stdin)
	if err != nil {
		return nil, nil, fmt.Errorf("--bind-password-file: %w", err)
	}
	if len(pw) == 0 {
		return nil, nil, fmt.Errorf("--bind-password-file: %s holds no password", *f.passFile)
	}
	cctx, cancel := context.WithTimeout(ctx, 3**f.timeout)
	defer cancel()
	src, err := ad.New(cctx, ad.Config{URL: *f.url, CAFile: *f.ca, BaseDN: *f.baseDN, BindDN: *f.bindDN, BindPassword: pw,
		UserFilter: *f.filter, Timeout: *f.timeout, PollInterval: *f.poll, Log: log.With("source", "ad")})
	if err != nil {
		clear(pw)
		var ce *ad.ConfigError
		if errors.As(err, &ce) && adFlags[ce.Field] != "" {
			return nil, nil, fmt.Errorf("--%s %s", adFlags[ce.Field], ce.Error()[len(ce.Field)+1:])
		}
		return nil, nil, fmt.Errorf("connecting to Active Directory: %w", err)
	}
	return src, func() { src.Close(); clear(pw) }, nil
}
