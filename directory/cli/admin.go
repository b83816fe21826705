package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/protocol"
	"golang.org/x/term"
)

// conn holds the flags every admin command shares.
type conn struct {
	data, server, tokenFile, ca string
	json                        bool
}

func (c *conn) register(fs *flag.FlagSet) {
	fs.StringVar(&c.data, "data", "", "the server's data directory (finds URL, CA and token in admin.json)")
	fs.StringVar(&c.server, "server", "", "admin API URL, e.g. https://dir.example.com:8443")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the admin token")
	fs.StringVar(&c.ca, "ca", "", "CA certificate to trust (PEM)")
	fs.BoolVar(&c.json, "json", false, "print JSON")
}

func (c *conn) client() (*admin.Client, error) {
	if c.server != "" {
		if c.tokenFile == "" {
			return nil, usageError("--server needs --token-file")
		}
		return admin.New(admin.Config{URL: c.server, TokenFile: c.tokenFile, CAFile: c.ca})
	}
	if c.data == "" {
		return nil, usageError("give --data DIR, or --server URL --token-file FILE")
	}
	info, err := admin.ReadInfo(c.data)
	if err != nil {
		return nil, err
	}
	if c.ca != "" {
		info.CAFile = c.ca
	}
	if c.tokenFile != "" {
		info.TokenFile = c.tokenFile
	}
	return admin.New(admin.Config{URL: info.URL, TokenFile: info.TokenFile, CAFile: info.CAFile})
}

// parse parses flags that may come before or after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError("%v", err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// adminCmd is one admin command: its flags are registered on fs, then run
// parses args and acts.
type adminCmd func(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error

// adminEnv is what every admin command shares.
type adminEnv struct {
	conn
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	out    *printer
}

// adminCommands are the admin commands by "command subcommand" ("audit"
// has no subcommand).
var adminCommands = map[string]adminCmd{
	"user add":            userAdd,
	"user show":           userShow,
	"user list":           userList,
	"user reset":          userReset,
	"user unlock":         userUnlock,
	"user mfa":            userMFA,
	"user edit":           userEdit,
	"user delete":         userDelete,
	"enroll-token create": enrollTokenCreate,
	"enroll-token list":   enrollTokenList,
	"enroll-token revoke": enrollTokenRevoke,
	"admin add":           adminAdd,
	"admin list":          adminList,
	"admin delete":        adminDelete,
	"admin recover":       adminRecover,
	"device list":         deviceList,
	"device revoke":       deviceRevoke,
	"device assign":       deviceAssign,
	"device unassign":     deviceUnassign,
	"policy show":         policyShow,
	"policy set":          policySet,
	"audit":               auditCmd,
}

func adminCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	name, rest := args[0], args[1:]
	if name != "audit" {
		if len(rest) == 0 {
			return usageError("%s needs a subcommand", name)
		}
		name, rest = name+" "+rest[0], rest[1:]
	}
	cmd, ok := adminCommands[name]
	if !ok {
		return usageError("unknown command %q", name)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	e := &adminEnv{stdin: stdin, stdout: stdout, stderr: stderr}
	e.register(fs)
	e.out = &printer{w: stdout, json: &e.json}
	return cmd(ctx, e, fs, rest)
}

func userAdd(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	display := fs.String("display-name", "", "display name")
	mfa := fs.Bool("mfa", false, "enable TOTP and print its otpauth URI once")
	temp := fs.Bool("temporary", false, "the user must change the initial password")
	email := fs.String("email", "", "the user's e-mail address, where password reset links go")
	name, cl, err := oneName(fs, args, &e.conn)
	if err != nil {
		return err
	}
	pw, err := readPassword(e.stdin, e.stderr, "Initial password for "+name+": ")
	if err != nil {
		return err
	}
	defer pw.Wipe()
	res, err := cl.AddUser(ctx, admin.AddUserRequest{Name: name, DisplayName: *display, Password: pw, MFA: *mfa, Temporary: *temp, Email: *email})
	if err != nil {
		return err
	}
	return e.out.userResponse(res, "created user "+name)
}

func userShow(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	name, cl, err := oneName(fs, args, &e.conn)
	if err != nil {
		return err
	}
	u, err := cl.User(ctx, name)
	if err != nil {
		return err
	}
	return e.out.user(u)
}

func userList(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	cl, err := noArgs(fs, args, &e.conn)
	if err != nil {
		return err
	}
	us, err := cl.Users(ctx)
	if err != nil {
		return err
	}
	if e.json {
		return e.out.encode(us)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDISPLAY NAME\tVERSION\tMFA\tLOCKED\tMUST CHANGE\tEXPIRES")
	for _, u := range us {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", clean(u.Name), clean(u.DisplayName), u.PasswordVersion, onOff(u.MFA),
			yesNo(u.Locked), yesNo(u.MustChange), fmtTime(u.ExpiresAt))
	}
	return tw.Flush()
}

func userReset(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	temp := fs.Bool("temporary", false, "the user must change the password at the next sync")
	fromStdin := fs.Bool("stdin", false, "read the new password from stdin instead of generating one")
	name, cl, err := oneName(fs, args, &e.conn)
	if err != nil {
		return err
	}
	req := admin.ResetRequest{Temporary: *temp}
	if *fromStdin {
		if req.Password, err = readPassword(e.stdin, e.stderr, "New password for "+name+": "); err != nil {
			return err
		}
		defer req.Password.Wipe()
	}
	res, err := cl.ResetPassword(ctx, name, req)
	if err != nil {
		return err
	}
	defer res.Password.Wipe()
	return e.out.userResponse(res, fmt.Sprintf("reset the password of %s (version %d)", name, res.User.PasswordVersion))
}

func userUnlock(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	name, cl, err := oneName(fs, args, &e.conn)
	if err != nil {
		return err
	}
	u, err := cl.Unlock(ctx, name)
	if err != nil {
		return err
	}
	if e.json {
		return e.out.encode(u)
	}
	_, err = fmt.Fprintf(e.stdout, "unlocked %s\n", name)
	return err
}

func userMFA(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	enable := fs.Bool("enable", false, "enable TOTP (prints the otpauth URI once)")
	disable := fs.Bool("disable", false, "disable TOTP")
	reset := fs.Bool("reset", false, "replace the TOTP secret (prints the new URI once)")
	days := fs.Int("enroll-days", 0, fmt.Sprintf("with --reset or --enable: make no secret; the user has `N` days (%d to %d) to enrol an authenticator from the Mac or the portal, with the password alone meanwhile",
		protocol.MinEnrollDays, protocol.MaxEnrollDays))
	name, cl, err := oneName(fs, args, &e.conn)
	if err != nil {
		return err
	}
	var action string
	n := 0
	for a, on := range map[string]bool{admin.MFAEnable: *enable, admin.MFADisable: *disable, admin.MFAReset: *reset} {
		if on {
			action = a
			n++
		}
	}
	if n != 1 {
		return usageError("user mfa needs exactly one of --enable, --disable, --reset")
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "enroll-days" })
	if set {
		switch {
		case *disable:
			return usageError("--enroll-days goes with --reset or --enable, not --disable")
		case *days < protocol.MinEnrollDays || *days > protocol.MaxEnrollDays:
			return usageError("--enroll-days must be %d to %d days, not %d", protocol.MinEnrollDays, protocol.MaxEnrollDays, *days)
		}
	}
	res, err := cl.SetMFAWith(ctx, name, admin.MFARequest{Action: action, EnrollDays: *days})
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("MFA %sd for %s", action, name)
	if res.User.MFAEnrollBy != nil {
		msg += fmt.Sprintf("; %s must enrol an authenticator by %s (the password alone works until then)", name,
			res.User.MFAEnrollBy.Local().Format("2006-01-02 15:04 MST"))
	}
	return e.out.userResponse(res, msg)
}

func userEdit(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	display := fs.String("display-name", "", "new display name")
	email := fs.String("email", "", "new e-mail address (\"\" removes it)")
	name, cl, err := oneName(fs, args, &e.conn)
	if err != nil {
		return err
	}
	var req admin.EditUserRequest
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "display-name":
			req.DisplayName = display
		case "email":
			req.Email = email
		}
	})
	if req.DisplayName == nil && req.Email == nil {
		return usageError("user edit needs --display-name or --email")
	}
	u, err := cl.EditUser(ctx, name, req)
	if err != nil {
		return err
	}
	if e.json {
		return e.out.encode(u)
	}
	_, err = fmt.Fprintf(e.stdout, "edited %s\n", clean(name))
	return err
}

func userDelete(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	name, cl, err := oneName(fs, args, &e.conn)
	if err != nil {
		return err
	}
	if err := cl.DeleteUser(ctx, name); err != nil {
		return err
	}
	if e.json {
		return e.out.encode(map[string]any{"deleted": name})
	}
	_, err = fmt.Fprintf(e.stdout, "deleted %s\n", name)
	return err
}

func enrollTokenCreate(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	ttl := fs.Duration("ttl", 0, "lifetime (default: the server's, 24h)")
	note := fs.String("note", "", "a note for the audit log, e.g. the Mac's asset tag")
	var users names
	fs.Var(&users, "user", "bind this user to the device that enrolls (repeat for more)")
	cl, err := noArgs(fs, args, &e.conn)
	if err != nil {
		return err
	}
	t, err := cl.CreateEnrollToken(ctx, admin.EnrollTokenRequest{TTL: *ttl, Note: *note, Users: users})
	if err != nil {
		return err
	}
	defer t.Token.Wipe()
	if e.json {
		return e.out.encode(struct {
			Token     string    `json:"token"`
			ExpiresAt time.Time `json:"expires_at"`
		}{string(t.Token), t.ExpiresAt})
	}
	_, err = fmt.Fprintf(e.stdout, "enrollment token (shown once, valid until %s):\n%s\n", t.ExpiresAt.Local().Format(time.RFC3339), t.Token.Bytes())
	return err
}

// names is a repeatable string flag.
type names []string

func (n *names) String() string     { return strings.Join(*n, ",") }
func (n *names) Set(v string) error { *n = append(*n, v); return nil }

func deviceList(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	cl, err := noArgs(fs, args, &e.conn)
	if err != nil {
		return err
	}
	ds, err := cl.Devices(ctx)
	if err != nil {
		return err
	}
	if e.json {
		return e.out.encode(ds)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOSTNAME\tNOTE\tUSERS\tENROLLED\tLAST SEEN\tLAST ADDRESS\tREVOKED")
	for _, d := range ds {
		var us []string
		for _, u := range d.Users {
			us = append(us, u.User+" ("+u.BoundBy+")")
		}
		enrolled := d.EnrolledAt
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(d.ID), clean(d.Hostname), clean(d.Note), clean(strings.Join(us, ", ")),
			fmtTime(&enrolled), fmtTime(d.LastSeenAt), clean(d.LastAddr), fmtTime(d.RevokedAt))
	}
	return tw.Flush()
}

func deviceRevoke(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	pos, cl, err := positional(fs, args, &e.conn, 1, "a device id")
	if err != nil {
		return err
	}
	d, err := cl.RevokeDevice(ctx, pos[0])
	if err != nil {
		return err
	}
	if e.json {
		return e.out.encode(d)
	}
	_, err = fmt.Fprintf(e.stdout, "revoked %s (%s): its connection is closed and its key refused\n", clean(d.ID), clean(d.Hostname))
	return err
}

func deviceAssign(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	pos, cl, err := positional(fs, args, &e.conn, 2, "a device id and a user name")
	if err != nil {
		return err
	}
	d, err := cl.AssignDevice(ctx, pos[0], pos[1])
	if err != nil {
		return err
	}
	if e.json {
		return e.out.encode(d)
	}
	_, err = fmt.Fprintf(e.stdout, "assigned %s to %s\n", clean(pos[1]), clean(d.ID))
	return err
}

func deviceUnassign(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	pos, cl, err := positional(fs, args, &e.conn, 2, "a device id and a user name")
	if err != nil {
		return err
	}
	d, err := cl.UnassignDevice(ctx, pos[0], pos[1])
	if err != nil {
		return err
	}
	if e.json {
		return e.out.encode(d)
	}
	_, err = fmt.Fprintf(e.stdout, "unassigned %s from %s\n", clean(pos[1]), clean(d.ID))
	return err
}

func policyShow(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	cl, err := noArgs(fs, args, &e.conn)
	if err != nil {
		return err
	}
	p, err := cl.Policy(ctx)
	if err != nil {
		return err
	}
	return e.out.policy(p)
}

func policySet(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	minLen := fs.Int("min-length", -1, "minimum length")
	upper := fs.String("upper", "", "require an uppercase letter (true/false)")
	lower := fs.String("lower", "", "require a lowercase letter (true/false)")
	digit := fs.String("digit", "", "require a digit (true/false)")
	symbol := fs.String("symbol", "", "require a symbol (true/false)")
	notUser := fs.String("not-username", "", "forbid the user name (true/false)")
	history := fs.Int("history", -1, "forbid the last N passwords")
	maxAge := fs.Int("max-age-days", -1, "days until a password expires (0: never)")
	warn := fs.Int("warning-days", -1, "days before expiry that agents warn")
	cl, err := noArgs(fs, args, &e.conn)
	if err != nil {
		return err
	}
	p, err := cl.Policy(ctx)
	if err != nil {
		return err
	}
	setInt := func(dst *int, v int) {
		if v >= 0 {
			*dst = v
		}
	}
	setInt(&p.MinLength, *minLen)
	setInt(&p.HistoryCount, *history)
	setInt(&p.MaxAgeDays, *maxAge)
	setInt(&p.ExpiryWarningDays, *warn)
	for _, b := range []struct {
		dst *bool
		v   string
		n   string
	}{{&p.RequireUpper, *upper, "upper"}, {&p.RequireLower, *lower, "lower"}, {&p.RequireDigit, *digit, "digit"},
		{&p.RequireSymbol, *symbol, "symbol"}, {&p.DisallowUsername, *notUser, "not-username"}} {
		switch b.v {
		case "":
		case "true", "yes", "on", "1":
			*b.dst = true
		case "false", "no", "off", "0":
			*b.dst = false
		default:
			return usageError("--%s must be true or false", b.n)
		}
	}
	p, err = cl.SetPolicy(ctx, p)
	if err != nil {
		return err
	}
	return e.out.policy(p)
}

func auditCmd(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	user := fs.String("user", "", "only events about this user")
	since := fs.String("since", "", "only events since this RFC 3339 time or this long ago (e.g. 24h)")
	limit := fs.Int("limit", 1000, "at most this many (the newest)")
	cl, err := noArgs(fs, args, &e.conn)
	if err != nil {
		return err
	}
	q := admin.AuditQuery{User: *user, Limit: *limit}
	if *since != "" {
		if d, err := time.ParseDuration(*since); err == nil {
			q.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, *since); err == nil {
			q.Since = t
		} else {
			return usageError("--since must be an RFC 3339 time or a duration")
		}
	}
	evs, err := cl.Audit(ctx, q)
	if err != nil {
		return err
	}
	if e.json {
		return e.out.encode(evs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tACTOR\tUSER\tDEVICE\tSOURCE\tDETAIL")
	for _, ev := range evs {
		var d []string
		for k, v := range ev.Detail {
			d = append(d, clean(k)+"="+clean(v))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.At.Local().Format(time.RFC3339), clean(ev.Event), clean(ev.Actor),
			clean(ev.User), clean(ev.Device), clean(ev.Source), strings.Join(sorted(d), " "))
	}
	return tw.Flush()
}

// positional parses flags and exactly n positional arguments (what).
func positional(fs *flag.FlagSet, args []string, c *conn, n int, what string) ([]string, *admin.Client, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if len(pos) != n {
		return nil, nil, usageError("%s needs %s", fs.Name(), what)
	}
	cl, err := c.client()
	return pos, cl, err
}

func oneName(fs *flag.FlagSet, args []string, c *conn) (string, *admin.Client, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return "", nil, err
	}
	if len(pos) != 1 {
		return "", nil, usageError("%s needs exactly one user name", fs.Name())
	}
	cl, err := c.client()
	return pos[0], cl, err
}

func noArgs(fs *flag.FlagSet, args []string, c *conn) (*admin.Client, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != 0 {
		return nil, usageError("%s takes no arguments", fs.Name())
	}
	return c.client()
}

// readPassword prompts twice without echo on a terminal, or reads one line
// from stdin otherwise.
func readPassword(stdin io.Reader, stderr io.Writer, prompt string) (protocol.Secret, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, prompt)
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, fmt.Errorf("reading password: %w", err)
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		defer clear(b)
		if err != nil {
			clear(a)
			return nil, fmt.Errorf("reading password: %w", err)
		}
		if !bytes.Equal(a, b) {
			clear(a)
			return nil, errors.New("the passwords do not match")
		}
		return protocol.Secret(a), nil
	}
	r := bufio.NewReaderSize(stdin, 1024)
	line, err := r.ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading password from stdin: %w", err)
	}
	pw := bytes.TrimRight(line, "\r\n")
	out := protocol.Secret(bytes.Clone(pw))
	clear(line)
	if out.Empty() {
		return nil, errors.New("no password on stdin")
	}
	return out, nil
}
