package localapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/lockstep-dev/lockstep/protocol"
)

// ErrUnavailable is returned when lockstepd does not answer on its socket.
var ErrUnavailable = errors.New("lockstepd is not running")

// maxEventLine bounds one line of a stream.
const maxEventLine = 1 << 20

// Client talks to lockstepd over its unix socket. It is safe for concurrent
// use.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the socket at path (DefaultSocket when
// empty).
func NewClient(path string) *Client {
	if path == "" {
		path = DefaultSocket
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := d.DialContext(ctx, "unix", path)
			if err != nil {
				return nil, fmt.Errorf("%w (socket %s): %w", ErrUnavailable, path, err)
			}
			return c, nil
		},
		DisableCompression: true,
		MaxIdleConns:       2,
		IdleConnTimeout:    30 * time.Second,
	}
	return &Client{socket: path, hc: &http.Client{Transport: tr}}
}

// Socket returns the socket path.
func (c *Client) Socket() string { return c.socket }

// Status returns the caller's view of lockstepd.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if err := c.do(ctx, http.MethodGet, PathStatus, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Policy returns the password policy for the caller's account (or user's,
// for root).
func (c *Client) Policy(ctx context.Context, user string) (*PolicyResponse, error) {
	p := PathPolicy
	if user != "" {
		p += "?user=" + url.QueryEscape(user)
	}
	var r PolicyResponse
	if err := c.do(ctx, http.MethodGet, p, nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Change changes the password everywhere. onStep, when not nil, is called
// for each step as it progresses. The returned operation is complete; when
// it did not end done, the error is its *Error.
func (c *Client) Change(ctx context.Context, req ChangeRequest, onStep func(Step)) (*Operation, error) {
	return c.operation(ctx, PathChange, req, onStep)
}

// Sync brings the Mac in line with the directory password.
func (c *Client) Sync(ctx context.Context, req SyncRequest, onStep func(Step)) (*Operation, error) {
	return c.operation(ctx, PathSync, req, onStep)
}

// Link links this Mac to the caller's directory account (user's, for
// root) with the directory password, and returns the account as it then
// stands.
func (c *Client) Link(ctx context.Context, req LinkRequest) (*Account, error) {
	var a Account
	if err := c.do(ctx, http.MethodPost, PathLink, req, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// BeginMFAEnrollment asks for the secret of a new authenticator; the
// caller shows it (QR code and text) and wipes it.
func (c *Client) BeginMFAEnrollment(ctx context.Context, req MFAEnrollRequest) (*MFAEnrollment, error) {
	var m MFAEnrollment
	if err := c.do(ctx, http.MethodPost, PathMFAEnrollBegin, req, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// ConfirmMFAEnrollment confirms the enrolment with a code; codes are
// required from then on. It returns the account as it then stands.
func (c *Client) ConfirmMFAEnrollment(ctx context.Context, req MFAConfirmRequest) (*Account, error) {
	var a Account
	if err := c.do(ctx, http.MethodPost, PathMFAEnrollConfirm, req, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Doctor checks every place of an account and says what is out of step.
func (c *Client) Doctor(ctx context.Context, req DoctorRequest) (*DoctorReport, error) {
	var r DoctorReport
	if err := c.do(ctx, http.MethodPost, PathDoctor, req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Diagnostics returns a redacted support bundle (JSON).
func (c *Client) Diagnostics(ctx context.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, PathDiagnostics, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// ServiceAccount reports the service account's state.
func (c *Client) ServiceAccount(ctx context.Context) (*ServiceAccountStatus, error) {
	var s ServiceAccountStatus
	if err := c.do(ctx, http.MethodGet, PathServiceAccount, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// SetupServiceAccount creates the service account (root only).
func (c *Client) SetupServiceAccount(ctx context.Context, req ServiceAccountRequest) (*ServiceAccountStatus, error) {
	var s ServiceAccountStatus
	if err := c.do(ctx, http.MethodPost, PathServiceAccount, req, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// RotateServiceAccount gives the service account a new random password
// (root only).
func (c *Client) RotateServiceAccount(ctx context.Context) (*ServiceAccountStatus, error) {
	var s ServiceAccountStatus
	if err := c.do(ctx, http.MethodPut, PathServiceAccount, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// RemoveServiceAccount deletes the service account (root only).
func (c *Client) RemoveServiceAccount(ctx context.Context) (*ServiceAccountStatus, error) {
	var s ServiceAccountStatus
	if err := c.do(ctx, http.MethodDelete, PathServiceAccount, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Watch streams events until ctx ends or the connection drops. The first
// event is always the current status. fn returning an error stops the watch
// with that error.
func (c *Client) Watch(ctx context.Context, fn func(Event) error) error {
	resp, err := c.send(ctx, http.MethodGet, PathWatch, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return readEvents(resp.Body, fn)
}

func (c *Client) operation(ctx context.Context, path string, req any, onStep func(Step)) (*Operation, error) {
	resp, err := c.send(ctx, http.MethodPost, path, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var op *Operation
	err = readEvents(resp.Body, func(ev Event) error {
		switch ev.Type {
		case EventStep:
			if ev.Step != nil && onStep != nil {
				onStep(*ev.Step)
			}
		case EventResult:
			op = ev.Operation
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if op == nil {
		return nil, fmt.Errorf("lockstepd ended the operation without a result; run `lockstep status` to see where it stands")
	}
	if op.Error != nil {
		return op, op.Error
	}
	return op, nil
}

var errStop = errors.New("stop")

func readEvents(r io.Reader, fn func(Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("reading lockstepd stream: %w", err)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading lockstepd stream: %w", err)
	}
	return io.ErrUnexpectedEOF
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding lockstepd reply to %s: %w", path, err)
	}
	return nil
}

// send performs a request and turns a non-2xx reply into its *Error.
func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		// The body can hold passwords: encoded past encoding/json's
		// buffers, into b alone, which is wiped.
		b, err := protocol.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
		defer clear(b)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+Host+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return nil, fmt.Errorf("%w (no answer on %s); start it with `sudo lockstepd start`", ErrUnavailable, c.socket)
		}
		return nil, fmt.Errorf("calling lockstepd: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e Error
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &e) != nil || e.Code == "" {
		return nil, fmt.Errorf("lockstepd answered %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return nil, &e
}
