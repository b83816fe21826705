package admin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/protocol"
)

// Client calls the admin API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token []byte
	http  *http.Client
}

// Config says how to reach the admin API.
type Config struct {
	// URL is the directory's base URL, e.g. https://127.0.0.1:8443.
	URL string
	// Token is the admin token; TokenFile is read when Token is empty.
	Token     []byte
	TokenFile string
	// CAFile is a PEM file of CAs to trust instead of the system roots.
	CAFile string
	// HTTPClient replaces the client built from CAFile when set.
	HTTPClient *http.Client
}

// New builds a client from cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("admin: invalid server URL %q", cfg.URL)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("admin: server URL must be https, got %q", u.Scheme)
	}
	token := bytes.Clone(cfg.Token)
	if len(token) == 0 {
		if cfg.TokenFile == "" {
			return nil, errors.New("admin: no token or token file")
		}
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin: reading token: %w", err)
		}
		token = bytes.TrimSpace(b)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: protocol.TLS12CipherSuites}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("admin: reading CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("admin: no certificate in %s", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		hc = &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: false}}
	}
	return &Client{base: u, token: token, http: hc}, nil
}

// ReadInfo reads admin.json from a directory's data directory.
func ReadInfo(dataDir string) (Info, error) {
	var info Info
	b, err := os.ReadFile(filepath.Join(dataDir, "admin.json"))
	if err != nil {
		return info, fmt.Errorf("admin: reading server info (is the directory running with this --data?): %w", err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("admin: decoding admin.json: %w", err)
	}
	return info, nil
}

// FromDataDir builds a client from the admin.json that a running server
// wrote in its data directory.
func FromDataDir(dataDir string) (*Client, error) {
	info, err := ReadInfo(dataDir)
	if err != nil {
		return nil, err
	}
	return New(Config{URL: info.URL, TokenFile: info.TokenFile, CAFile: info.CAFile})
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("admin: encoding request: %w", err)
		}
		defer clear(b)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+string(c.token))
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("admin: reading response: %w", err)
	}
	defer clear(b)
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error != nil {
			return eb.Error
		}
		return &protocol.Error{Code: protocol.CodeInternal, Message: fmt.Sprintf("%s %s: HTTP %d", method, path, resp.StatusCode)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("admin: decoding response: %w", err)
		}
	}
	return nil
}

func userPath(name string, suffix string) string {
	return PathUsers + "/" + url.PathEscape(name) + suffix
}

// AddUser creates a user. Failures are *protocol.Error values: CodeExists,
// protocol.CodePolicyViolation (with Violations), protocol.CodeBadRequest.
func (c *Client) AddUser(ctx context.Context, req AddUserRequest) (*UserResponse, error) {
	var out UserResponse
	return &out, c.do(ctx, http.MethodPost, PathUsers, nil, req, &out)
}

// User returns one user with the devices it is bound to.
func (c *Client) User(ctx context.Context, name string) (*User, error) {
	var out User
	return &out, c.do(ctx, http.MethodGet, userPath(name, ""), nil, nil, &out)
}

// Users lists every user (without their devices).
func (c *Client) Users(ctx context.Context) ([]User, error) {
	var out []User
	return out, c.do(ctx, http.MethodGet, PathUsers, nil, nil, &out)
}

// ResetPassword sets a user's password and pushes password_reset to the
// user's devices. With an empty req.Password the server generates one and
// returns it in UserResponse.Password.
func (c *Client) ResetPassword(ctx context.Context, name string, req ResetRequest) (*UserResponse, error) {
	var out UserResponse
	return &out, c.do(ctx, http.MethodPost, userPath(name, "/reset"), nil, req, &out)
}

// Unlock ends a lockout and pushes account_unlocked.
func (c *Client) Unlock(ctx context.Context, name string) (*User, error) {
	var out User
	return &out, c.do(ctx, http.MethodPost, userPath(name, "/unlock"), nil, struct{}{}, &out)
}

// SetMFA enables, disables or resets TOTP (MFAEnable, MFADisable, MFAReset).
// Enable and reset return the new secret in UserResponse.MFA.
func (c *Client) SetMFA(ctx context.Context, name, action string) (*UserResponse, error) {
	return c.SetMFAWith(ctx, name, MFARequest{Action: action})
}

// SetMFAWith is SetMFA with every option, such as an enrolment period.
func (c *Client) SetMFAWith(ctx context.Context, name string, req MFARequest) (*UserResponse, error) {
	var out UserResponse
	return &out, c.do(ctx, http.MethodPost, userPath(name, "/mfa"), nil, req, &out)
}

// EditUser changes a built-in user's display name or e-mail address.
func (c *Client) EditUser(ctx context.Context, name string, req EditUserRequest) (*User, error) {
	var out User
	return &out, c.do(ctx, http.MethodPatch, userPath(name, ""), nil, req, &out)
}

// DeleteUser deletes a user and its bindings.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, userPath(name, ""), nil, nil, nil)
}

// CreateEnrollToken creates a one-time device enrollment token.
func (c *Client) CreateEnrollToken(ctx context.Context, req EnrollTokenRequest) (*EnrollToken, error) {
	var out EnrollToken
	return &out, c.do(ctx, http.MethodPost, PathEnrollTokens, nil, req, &out)
}

// Devices lists every enrolled device with its users.
func (c *Client) Devices(ctx context.Context) ([]Device, error) {
	var out []Device
	return out, c.do(ctx, http.MethodGet, PathDevices, nil, nil, &out)
}

func devicePath(id, suffix string) string {
	return PathDevices + "/" + url.PathEscape(id) + suffix
}

// RevokeDevice revokes a device: its bindings go, its connection is closed
// with protocol.CloseRevoked and its key is refused from then on.
// CodeNotFound for an unknown device.
func (c *Client) RevokeDevice(ctx context.Context, id string) (*Device, error) {
	var out Device
	return &out, c.do(ctx, http.MethodPost, devicePath(id, "/revoke"), nil, struct{}{}, &out)
}

// AssignDevice binds user to a device.
func (c *Client) AssignDevice(ctx context.Context, id, user string) (*Device, error) {
	var out Device
	return &out, c.do(ctx, http.MethodPut, devicePath(id, "/users/"+url.PathEscape(user)), nil, struct{}{}, &out)
}

// UnassignDevice removes user's binding to a device.
func (c *Client) UnassignDevice(ctx context.Context, id, user string) (*Device, error) {
	var out Device
	return &out, c.do(ctx, http.MethodDelete, devicePath(id, "/users/"+url.PathEscape(user)), nil, nil, &out)
}

// Policy returns the password policy.
func (c *Client) Policy(ctx context.Context) (protocol.Policy, error) {
	var out protocol.Policy
	return out, c.do(ctx, http.MethodGet, PathPolicy, nil, nil, &out)
}

// SetPolicy replaces the password policy and pushes policy_changed to every
// device.
func (c *Client) SetPolicy(ctx context.Context, p protocol.Policy) (protocol.Policy, error) {
	var out protocol.Policy
	return out, c.do(ctx, http.MethodPut, PathPolicy, nil, p, &out)
}

// Audit reads the audit log, oldest first.
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	v := url.Values{}
	if q.User != "" {
		v.Set("user", q.User)
	}
	if q.Actor != "" {
		v.Set("actor", q.Actor)
	}
	if q.Event != "" {
		v.Set("event", q.Event)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out []AuditEvent
	return out, c.do(ctx, http.MethodGet, PathAudit, v, nil, &out)
}

// Stats returns the server's live numbers. With collect the server runs a
// garbage collection first, so that heap figures count live memory only
// (for load generators measuring memory per connection).
func (c *Client) Stats(ctx context.Context, collect bool) (*Stats, error) {
	var out Stats
	var q url.Values
	if collect {
		q = url.Values{"gc": {"1"}}
	}
	return &out, c.do(ctx, http.MethodGet, PathStats, q, nil, &out)
}
