package cli

import (
	"context"
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// enroll sets up an authenticator during an enrolment period: it asks
// lockstepd for a new key, shows it as a QR code in text blocks and as
// text on the terminal (never in JSON or a log), then asks for a code from
// the app and confirms it.
func (c *CLI) enroll(ctx context.Context, user string) int {
	k, err := c.client.BeginMFAEnrollment(ctx, localapi.MFAEnrollRequest{User: user})
	if err != nil {
		return c.failIn(err, text.InChange, nil)
	}
	defer k.Secret.Wipe()
	defer k.URI.Wipe()
	q, err := qrcode.New(string(k.URI), qrcode.Medium)
	if err != nil {
		return c.fail(err)
	}
	// The key goes to the terminal: stderr, like the prompts, so that a
	// script reading stdout (or --json) never receives it.
	fmt.Fprintln(c.Err, text.CLIEnrollScan.S())
	fmt.Fprint(c.Err, q.ToSmallString(false))
	fmt.Fprintln(c.Err, text.CLIEnrollKey.S(map[string]any{"Key": text.KeyGroups(string(k.Secret))}))
	fmt.Fprintln(c.Err, text.EnrollByLine(k.Until))
	code, err := c.secret(text.LabelEnrollCode.S())
	if err != nil {
		return c.fail(err)
	}
	a, err := c.client.ConfirmMFAEnrollment(ctx, localapi.MFAConfirmRequest{User: user, Code: strings.TrimSpace(string(code))})
	code.Wipe()
	if err != nil {
		return c.failIn(err, text.InChange, nil)
	}
	if c.json {
		englishAccount(a)
		c.printJSON(a)
		return exitOK
	}
	fmt.Fprintln(c.Out, "✓", text.CLIEnrolled.S())
	return exitOK
}
