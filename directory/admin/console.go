package admin

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/lockstep-dev/lockstep/protocol"
)

// Paths of the console administrators and of the enrollment tokens' list.
const (
	PathAdmins = "/v1/admin/admins"
)

// Admin is a console administrator (never their password or TOTP secret).
type Admin struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// TOTP says whether they have set up their authenticator; without it
	// they enrol at the next sign-in.
	TOTP bool `json:"totp"`
	// MustChange marks a one-time password not yet replaced.
	MustChange   bool       `json:"must_change"`
	Locked       bool       `json:"locked"`
	LockedUntil  *time.Time `json:"locked_until,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	LastSignInAt *time.Time `json:"last_sign_in_at,omitempty"`
}

// AddAdminRequest creates a console administrator with a password (the
// directory's policy applies) and a new TOTP secret.
type AddAdminRequest struct {
	Name     string          `json:"name"`
	Role     string          `json:"role"`
	Password protocol.Secret `json:"password"`
}

// AdminResponse answers AddAdmin (with the TOTP secret, shown once) and
// RecoverAdmin (with the one-time password, shown once).
type AdminResponse struct {
	Admin    Admin           `json:"admin"`
	MFA      *TOTPEnrollment `json:"mfa,omitempty"`
	Password protocol.Secret `json:"password,omitempty"`
}

// EnrollTokenInfo is an enrollment token as the console lists it: never
// the token, only an id made from its hash.
type EnrollTokenInfo struct {
	ID        string     `json:"id"`
	Note      string     `json:"note,omitempty"`
	Users     []string   `json:"users,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
	DeviceID  string     `json:"device_id,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

func adminPath(name, suffix string) string {
	return PathAdmins + "/" + url.PathEscape(name) + suffix
}

// AddAdmin creates a console administrator and returns their TOTP
// enrolment, once.
func (c *Client) AddAdmin(ctx context.Context, req AddAdminRequest) (*AdminResponse, error) {
	var out AdminResponse
	return &out, c.do(ctx, http.MethodPost, PathAdmins, nil, req, &out)
}

// Admins lists the console administrators.
func (c *Client) Admins(ctx context.Context) ([]Admin, error) {
	var out []Admin
	return out, c.do(ctx, http.MethodGet, PathAdmins, nil, nil, &out)
}

// DeleteAdmin deletes a console administrator and ends their sessions.
func (c *Client) DeleteAdmin(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, adminPath(name, ""), nil, nil, nil)
}

// RecoverAdmin is the break-glass path: a one-time password (returned
// once) and no TOTP, so the administrator enrols again at the next
// sign-in; their sessions end and the lockout is lifted.
func (c *Client) RecoverAdmin(ctx context.Context, name string) (*AdminResponse, error) {
	var out AdminResponse
	return &out, c.do(ctx, http.MethodPost, adminPath(name, "/recover"), nil, struct{}{}, &out)
}

// EnrollTokens lists the enrollment tokens, newest first.
func (c *Client) EnrollTokens(ctx context.Context) ([]EnrollTokenInfo, error) {
	var out []EnrollTokenInfo
	return out, c.do(ctx, http.MethodGet, PathEnrollTokens, nil, nil, &out)
}

// RevokeEnrollToken ends an unused enrollment token at once.
func (c *Client) RevokeEnrollToken(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, PathEnrollTokens+"/"+url.PathEscape(id)+"/revoke", nil, struct{}{}, nil)
}
