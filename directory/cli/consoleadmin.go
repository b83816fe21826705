package cli

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/lockstep-dev/lockstep/directory/admin"
)

// The web console's administrators, managed on the server:
//
//	lockstep-directory admin add NAME [--role admin|helpdesk|auditor]   (password on stdin)
//	lockstep-directory admin list | delete NAME
//	lockstep-directory admin recover NAME   (break-glass)
//
// recover is the way back for a sole or locked-out administrator: whoever
// can read --data (the admin token) is the authority. It prints a one-time
// password and clears the administrator's TOTP, so they set up their
// authenticator again and choose a password at the next sign-in; it is
// audited.

func adminAdd(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	role := fs.String("role", "admin", "admin (everything), helpdesk (users: reset, unlock, MFA reset) or auditor (read only)")
	name, cl, err := oneName(fs, args, &e.conn)
	if err != nil {
		return err
	}
	pw, err := readPassword(e.stdin, e.stderr, "Password for administrator "+name+": ")
	if err != nil {
		return err
	}
	defer pw.Wipe()
	res, err := cl.AddAdmin(ctx, admin.AddAdminRequest{Name: name, Role: *role, Password: pw})
	if err != nil {
		return err
	}
	defer res.MFA.URI.Wipe()
	defer res.MFA.Secret.Wipe()
	if e.json {
		return e.out.encode(struct {
			Admin  admin.Admin `json:"admin"`
			URI    string      `json:"totp_uri"`
			Secret string      `json:"totp_secret"`
		}{res.Admin, string(res.MFA.URI), string(res.MFA.Secret)})
	}
	fmt.Fprintf(e.stdout, "created administrator %s (%s)\n", clean(name), clean(res.Admin.Role))
	fmt.Fprintf(e.stdout, "TOTP URI (shown once; add it to an authenticator app, the console asks for its codes):\n%s\n", res.MFA.URI.Bytes())
	_, err = fmt.Fprintf(e.stdout, "TOTP secret (base32): %s\n", res.MFA.Secret.Bytes())
	return err
}

func adminList(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	cl, err := noArgs(fs, args, &e.conn)
	if err != nil {
		return err
	}
	as, err := cl.Admins(ctx)
	if err != nil {
		return err
	}
	if e.json {
		return e.out.encode(as)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tTOTP\tONE-TIME PASSWORD\tLOCKED\tLAST SIGN-IN")
	for _, a := range as {
		totp := "set up"
		if !a.TOTP {
			totp = "enrols at next sign-in"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", clean(a.Name), clean(a.Role), totp, yesNo(a.MustChange), yesNo(a.Locked), fmtTime(a.LastSignInAt))
	}
	return tw.Flush()
}

func adminDelete(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	name, cl, err := oneName(fs, args, &e.conn)
	if err != nil {
		return err
	}
	if err := cl.DeleteAdmin(ctx, name); err != nil {
		return err
	}
	if e.json {
		return e.out.encode(map[string]any{"deleted": name})
	}
	_, err = fmt.Fprintf(e.stdout, "deleted administrator %s; their sessions ended\n", clean(name))
	return err
}

func adminRecover(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	name, cl, err := oneName(fs, args, &e.conn)
	if err != nil {
		return err
	}
	res, err := cl.RecoverAdmin(ctx, name)
	if err != nil {
		return err
	}
	defer res.Password.Wipe()
	if e.json {
		return e.out.encode(struct {
			Admin    admin.Admin `json:"admin"`
			Password string      `json:"password"`
		}{res.Admin, string(res.Password)})
	}
	fmt.Fprintf(e.stdout, "administrator %s recovered: their TOTP is cleared and their sessions ended\n", clean(name))
	fmt.Fprintf(e.stdout, "one-time password (shown once): %s\n", res.Password.Bytes())
	_, err = fmt.Fprintln(e.stdout, "at the next sign-in they set up their authenticator again and choose their own password")
	return err
}

func enrollTokenList(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	cl, err := noArgs(fs, args, &e.conn)
	if err != nil {
		return err
	}
	ts, err := cl.EnrollTokens(ctx)
	if err != nil {
		return err
	}
	if e.json {
		return e.out.encode(ts)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNOTE\tCREATED\tEXPIRES\tUSED BY\tREVOKED")
	for _, t := range ts {
		created, expires := t.CreatedAt, t.ExpiresAt
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", clean(t.ID), clean(t.Note), fmtTime(&created), fmtTime(&expires), clean(t.DeviceID), fmtTime(t.RevokedAt))
	}
	return tw.Flush()
}

func enrollTokenRevoke(ctx context.Context, e *adminEnv, fs *flag.FlagSet, args []string) error {
	pos, cl, err := positional(fs, args, &e.conn, 1, "a token id (from enroll-token list)")
	if err != nil {
		return err
	}
	if err := cl.RevokeEnrollToken(ctx, pos[0]); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "revoked enrollment token %s\n", clean(pos[0]))
	return err
}
