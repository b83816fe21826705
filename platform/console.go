package platform

import (
	"context"
	"strings"
)

// ConsoleUser is who is logged in at the screen.
type ConsoleUser struct {
	Name string
	UID  int
}

// Console finds the console user through scutil.
type Console struct {
	r *Runner
}

// NewConsole returns Console using r.
func NewConsole(r *Runner) *Console { return &Console{r: r} }

// User returns the console user; ok is false at the login window
// ("loginwindow" is nobody) or when there is no console session.
func (c *Console) User(ctx context.Context) (u ConsoleUser, ok bool, err error) {
	res, err := c.r.Run(ctx, Cmd{Tool: Scutil, Stdin: []byte("show State:/Users/ConsoleUser\n")})
	if err != nil {
		return ConsoleUser{}, false, err
	}
	if res.Exit != 0 {
		return ConsoleUser{}, false, toolFailure(Scutil, "show", res, firstLine(strings.TrimSpace(string(res.Stderr))), ErrToolFailed)
	}
	name, uid, ok := parseConsoleUser(string(res.Stdout))
	if !ok {
		return ConsoleUser{}, false, nil
	}
	return ConsoleUser{Name: name, UID: uid}, true, nil
}
