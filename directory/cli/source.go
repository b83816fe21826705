package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/source/ad"
	"github.com/lockstep-dev/lockstep/directory/source/ldap"
	"github.com/lockstep-dev/lockstep/directory/source/ldapconn"
)

// sourceFlags are serve's flags for the directory behind Lockstep: Active
// Directory or an LDAP directory with ppolicy (OpenLDAP). Both share the
// connection, bind and scope flags.
type sourceFlags struct {
	kind, url, ca, baseDN, bindDN, passFile, filter, userAttr, ppolicyDN *string
	timeout, poll                                                        *time.Duration
}

func registerSourceFlags(fs *flag.FlagSet) *sourceFlags {
	return &sourceFlags{
		kind:      fs.String("source", "builtin", "where passwords live: builtin (Lockstep's own store), ad (Active Directory) or ldap (OpenLDAP with ppolicy)"),
		url:       fs.String("ldap-url", "", "the directory server: ldaps://HOST[:PORT], or ldap://HOST[:PORT] for StartTLS (--source ad or ldap)"),
		ca:        fs.String("ldap-ca", "", "PEM `FILE` of the CA that signs the directory server's certificate (default: the system roots)"),
		baseDN:    fs.String("base-dn", "", "where users are found, e.g. `DC=example,DC=com` (the whole subtree)"),
		bindDN:    fs.String("bind-dn", "", "Lockstep's own account: a DN (AD also takes `user@domain`)"),
		passFile:  fs.String("bind-password-file", "", "read the bind account's password from `FILE` (mode 0600; - for the first line of stdin)"),
		filter:    fs.String("user-filter", "", "an LDAP filter the users in scope must also match, e.g. (memberOf=CN=Mac users,OU=Groups,DC=example,DC=com)"),
		userAttr:  fs.String("user-attr", "uid", "the attribute that holds the name Macs map to (--source ldap)"),
		ppolicyDN: fs.String("ppolicy-dn", "", "the default pwdPolicy entry, for users without a pwdPolicySubentry (--source ldap; default: the one under --base-dn)"),
		timeout:   fs.Duration("ldap-timeout", 10*time.Second, "bound on each LDAP operation"),
		poll:      fs.Duration("ldap-poll-interval", 30*time.Second, "how often changes are polled if the server refuses change notification (AD) or has no syncprov (LDAP)"),
	}
}

// sourceFieldFlags names, for each field of ad.Config and ldap.Config a
// ConfigError can name, its flag.
var sourceFieldFlags = map[string]string{
	"URL": "ldap-url", "CAFile": "ldap-ca", "BaseDN": "base-dn", "BindDN": "bind-dn", "BindPassword": "bind-password-file",
	"UserFilter": "user-filter", "UserAttr": "user-attr", "PolicyDN": "ppolicy-dn",
}

// kindNames names each kind for people.
var kindNames = map[string]string{"ad": "Active Directory", "ldap": "the LDAP directory"}

// open makes the source the flags name; nil for the built-in store. The
// caller closes what it returns after the server stopped.
func (f *sourceFlags) open(ctx context.Context, fs *flag.FlagSet, stdin io.Reader, stdinTaken bool, log *slog.Logger) (source.Source, func(), error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	kind := *f.kind
	switch kind {
	case "builtin", "":
		for _, name := range []string{"ldap-url", "ldap-ca", "base-dn", "bind-dn", "bind-password-file", "user-filter", "user-attr", "ppolicy-dn"} {
			if set[name] {
				return nil, nil, usageError("--%s needs --source ad or --source ldap", name)
			}
		}
		return nil, func() {}, nil
	case "ad":
		for _, name := range []string{"user-attr", "ppolicy-dn"} {
			if set[name] {
				return nil, nil, usageError("--%s needs --source ldap (Active Directory finds users by sAMAccountName and has its own policies)", name)
			}
		}
	case "ldap":
	default:
		return nil, nil, usageError("--source must be builtin, ad or ldap, not %q", kind)
	}
	for _, r := range []struct{ name, v string }{{"ldap-url", *f.url}, {"base-dn", *f.baseDN}, {"bind-dn", *f.bindDN},
		{"bind-password-file", *f.passFile}} {
		if r.v == "" {
			return nil, nil, usageError("--source %s needs --%s", kind, r.name)
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
	var src interface {
		source.Source
		Close() error
	}
	switch kind {
	case "ad":
		src, err = ad.New(cctx, ad.Config{URL: *f.url, CAFile: *f.ca, BaseDN: *f.baseDN, BindDN: *f.bindDN, BindPassword: pw,
			UserFilter: *f.filter, Timeout: *f.timeout, PollInterval: *f.poll, Log: log.With("source", "ad")})
	case "ldap":
		src, err = ldap.New(cctx, ldap.Config{URL: *f.url, CAFile: *f.ca, BaseDN: *f.baseDN, BindDN: *f.bindDN, BindPassword: pw,
			UserAttr: *f.userAttr, UserFilter: *f.filter, PolicyDN: *f.ppolicyDN, Timeout: *f.timeout, PollInterval: *f.poll,
			Log: log.With("source", "ldap")})
	}
	if err != nil {
		clear(pw)
		var ce *ldapconn.ConfigError
		if errors.As(err, &ce) && sourceFieldFlags[ce.Field] != "" {
			return nil, nil, fmt.Errorf("--%s %s", sourceFieldFlags[ce.Field], strings.TrimPrefix(ce.Error(), ce.Field+" "))
		}
		return nil, nil, fmt.Errorf("connecting to %s: %w", kindNames[kind], err)
	}
	return src, func() { src.Close(); clear(pw) }, nil
}
