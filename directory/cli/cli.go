// Package cli is the lockstep-directory command: it runs the directory
// service and administers a running one.
//
//	lockstep-directory serve --data DIR [--listen ADDR] [--cert F --key F]
//	    [--database URL [--database-password-file F] | --database-url-file F] [--master-key-file F]
//	lockstep-directory user add|show|list|reset|unlock|mfa|delete ...
//	lockstep-directory enroll-token create [--user NAME]...
//	lockstep-directory device list|revoke|assign|unassign ...
//	lockstep-directory policy show|set
//	lockstep-directory audit
//	lockstep-directory admin add|list|delete|recover ...   (the web console's administrators)
//
// Admin commands talk to the running server's admin API; they find it from
// --data DIR alone (admin.json), or take --server URL --token-file F [--ca F].
// Secrets are read from stdin or a terminal prompt, never from arguments.
//
// With a PostgreSQL database (--database or --database-url-file) several
// serve processes, each with its own --data, share one directory; see
// package directory for how pushes reach agents connected to any of them.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/lockstep-dev/lockstep/protocol"
)

const usage = `usage:
  lockstep-directory serve --data DIR [--listen ADDR] [--cert FILE --key FILE]
                           [--database URL [--database-password-file FILE] | --database-url-file FILE]
                           [--master-key-file FILE] (serve --help lists the limits)
                           [--source ad --ldap-url ldaps://DC --ldap-ca CA.pem --base-dn DN
                            --bind-dn DN|USER@DOMAIN --bind-password-file FILE [--user-filter LDAPFILTER]]
  lockstep-directory user add NAME [--display-name NAME] [--mfa] [--temporary]   (password on stdin)
  lockstep-directory user show NAME
  lockstep-directory user list
  lockstep-directory user reset NAME [--temporary] [--stdin]
  lockstep-directory user unlock NAME
  lockstep-directory user mfa NAME --enable|--disable|--reset
  lockstep-directory user delete NAME
  lockstep-directory enroll-token create [--ttl DURATION] [--note TEXT] [--user NAME]...
  lockstep-directory enroll-token list | revoke TOKEN_ID
  lockstep-directory admin add NAME [--role admin|helpdesk|auditor]   (web console; password on stdin)
  lockstep-directory admin list | delete NAME
  lockstep-directory admin recover NAME      (break-glass: one-time password, TOTP cleared)
  lockstep-directory device list
  lockstep-directory device revoke DEVICE_ID
  lockstep-directory device assign|unassign DEVICE_ID USER
  lockstep-directory policy show
  lockstep-directory policy set [--min-length N] [--upper=BOOL] [--lower=BOOL] [--digit=BOOL]
                                [--symbol=BOOL] [--not-username=BOOL] [--history N]
                                [--max-age-days N] [--warning-days N]
  lockstep-directory audit [--user NAME] [--since TIME|DURATION] [--limit N]
  lockstep-directory version

Admin commands take --data DIR (on the server's machine) or
--server URL --token-file FILE [--ca FILE], and --json for machine output.
`

// Main is the lockstep-directory command's entry point.
func Main(args []string) int {
	return Run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr)
}

// Run runs the command in args (without the program name) and returns its
// exit code. serve runs until ctx ends or the process gets SIGTERM.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdin, stdout, stderr)
	case "user", "enroll-token", "device", "policy", "audit", "admin":
		err = adminCommand(ctx, args, stdin, stdout, stderr)
	case "version":
		err = printVersion(stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = usageError("unknown command %q", args[0])
	}
	if err == nil {
		return 0
	}
	var ue *usageErr
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "lockstep-directory: %v\n\n%s", err, usage)
		return 2
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		fmt.Fprintf(stderr, "lockstep-directory: %s\n", clean(pe.Message))
		for _, v := range pe.Violations {
			fmt.Fprintf(stderr, "  - %s (%s)\n", clean(v.Message), clean(v.Code))
		}
		if pe.RetryAfter > 0 {
			fmt.Fprintf(stderr, "  retry after %d s\n", pe.RetryAfter)
		}
		return 1
	}
	fmt.Fprintf(stderr, "lockstep-directory: %v\n", err)
	return 1
}

type usageErr struct{ msg string }

func (e *usageErr) Error() string { return e.msg }

func usageError(format string, args ...any) error {
	return &usageErr{msg: fmt.Sprintf(format, args...)}
}
