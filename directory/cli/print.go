package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/protocol"
)

type printer struct {
	w    io.Writer
	json *bool
}

func (p *printer) encode(v any) error {
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// userResponse prints a user and any secret the server returned once.
func (p *printer) userResponse(r *admin.UserResponse, done string) error {
	if *p.json {
		type mfa struct {
			URI    string `json:"uri"`
			Secret string `json:"secret"`
		}
		out := struct {
			User     admin.User `json:"user"`
			MFA      *mfa       `json:"mfa,omitempty"`
			Password string     `json:"password,omitempty"`
		}{User: r.User, Password: string(r.Password)}
		if r.MFA != nil {
			out.MFA = &mfa{URI: string(r.MFA.URI), Secret: string(r.MFA.Secret)}
		}
		return p.encode(out)
	}
	fmt.Fprintln(p.w, done)
	if !r.Password.Empty() {
		fmt.Fprintf(p.w, "password (shown once): %s\n", r.Password.Bytes())
	}
	if r.MFA != nil {
		fmt.Fprintf(p.w, "TOTP URI (shown once; add it to an authenticator app):\n%s\n", r.MFA.URI.Bytes())
		fmt.Fprintf(p.w, "TOTP secret (base32): %s\n", r.MFA.Secret.Bytes())
	}
	return nil
}

func (p *printer) user(u *admin.User) error {
	if *p.json {
		return p.encode(u)
	}
	fmt.Fprintf(p.w, "name:              %s\n", clean(u.Name))
	fmt.Fprintf(p.w, "display name:      %s\n", clean(u.DisplayName))
	if u.Email != "" {
		fmt.Fprintf(p.w, "e-mail:            %s\n", clean(u.Email))
	}
	if u.Where != "" {
		fmt.Fprintf(p.w, "in the directory:  %s\n", clean(u.Where))
	}
	if u.Disabled {
		fmt.Fprintf(p.w, "disabled:          yes (in the directory)\n")
	}
	if u.Policy != "" {
		fmt.Fprintf(p.w, "password policy:   %s\n", clean(u.Policy))
	}
	fmt.Fprintf(p.w, "password version:  %d\n", u.PasswordVersion)
	fmt.Fprintf(p.w, "password changed:  %s\n", u.PasswordChangedAt.Local().Format(time.RFC3339))
	fmt.Fprintf(p.w, "expires:           %s\n", fmtTime(u.ExpiresAt))
	fmt.Fprintf(p.w, "must change:       %s\n", yesNo(u.MustChange))
	if u.Expired {
		fmt.Fprintf(p.w, "expired:           yes, %d grace login(s) left\n", u.GraceLogins)
	}
	mfa := onOff(u.MFA)
	if u.MFAEnrollBy != nil {
		if u.MFAEnrollBy.After(time.Now()) {
			mfa = "on, not enrolled yet: the user must enrol an authenticator by " + fmtTime(u.MFAEnrollBy)
		} else {
			mfa = "on, not enrolled: the enrolment period ended " + fmtTime(u.MFAEnrollBy) + " (reset MFA again)"
		}
	}
	fmt.Fprintf(p.w, "MFA:               %s\n", mfa)
	lock := "no"
	switch {
	case u.Locked && u.LockedUntil == nil:
		lock = "until an administrator unlocks it"
	case u.Locked:
		lock = "until " + fmtTime(u.LockedUntil)
	}
	fmt.Fprintf(p.w, "locked:            %s (failed attempts: %d)\n", lock, u.FailedAttempts)
	fmt.Fprintf(p.w, "devices:           %d\n", len(u.Devices))
	for _, d := range u.Devices {
		state := "offline"
		if d.Connected {
			state = "connected"
		}
		synced := "never synced"
		if d.SyncedVersion > 0 {
			synced = fmt.Sprintf("synced version %d", d.SyncedVersion)
			if d.SyncedVersion == u.PasswordVersion {
				synced += " (current)"
			} else {
				synced += " (behind)"
			}
		}
		fmt.Fprintf(p.w, "  %s  %s  local name %s  %s  %s\n", clean(d.DeviceID), clean(d.Hostname), clean(d.LocalName), state, synced)
		for _, pl := range d.Places {
			fmt.Fprintf(p.w, "    %-10s %-15s %s\n", clean(pl.Place), clean(pl.State), pl.At.Local().Format(time.RFC3339))
		}
	}
	return nil
}

func (p *printer) policy(pol protocol.Policy) error {
	if *p.json {
		return p.encode(pol)
	}
	for _, r := range pol.Rules() {
		mark := ""
		if r.Lockstep {
			mark = ", Lockstep's rule on top of the directory's"
		}
		fmt.Fprintf(p.w, "- %s (%s%s)\n", r.Message, r.Code, mark)
	}
	if pol.MaxAgeDays > 0 {
		fmt.Fprintf(p.w, "passwords expire after %d days; agents warn %d days before\n", pol.MaxAgeDays, pol.ExpiryWarningDays)
	} else {
		fmt.Fprintln(p.w, "passwords do not expire")
	}
	return nil
}

// clean makes text from the directory safe to print on a terminal: a rune
// a terminal would act on (ESC, CSI and the other control characters, bidi
// overrides) is shown as a Go escape, and so is a tab or a backslash, so
// the escapes cannot be forged and the columns hold.
func clean(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case r == '\t' || protocol.Unprintable(r) || !unicode.IsPrint(r) && r != ' ':
			q := strconv.QuoteRuneToASCII(r) // '\x1b', '\u009b'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Local().Format(time.RFC3339)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
