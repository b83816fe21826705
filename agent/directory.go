package agent

import (
	"context"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/agent/session"
	"github.com/lockstep-dev/lockstep/protocol"
)

// requestWait is how long a request waits for a session before the
// directory counts as offline.
const requestWait = 10 * time.Second

// directory adapts the session to the engine's Directory interface.
type directory struct {
	s *session.Session

	mu     sync.Mutex
	policy protocol.Policy
	known  bool
}

func (d *directory) Connected() bool { return d.s.Status().State == session.Connected }

func (d *directory) setPolicy(p protocol.Policy) {
	d.mu.Lock()
	d.policy, d.known = p, true
	d.mu.Unlock()
}

func (d *directory) Policy() protocol.Policy {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.known {
		return protocol.DefaultPolicy()
	}
	return d.policy
}

func (d *directory) VerifyPassword(ctx context.Context, user string, pw protocol.Secret) (protocol.AccountState, error) {
	var st protocol.AccountState
	err := d.s.Request(ctx, protocol.TypeVerifyPassword, "", protocol.VerifyPasswordRequest{User: user, Password: pw}, &st, requestWait)
	return st, err
}

func (d *directory) ChangePassword(ctx context.Context, key string, req protocol.ChangePasswordRequest) (protocol.AccountState, error) {
	var st protocol.AccountState
	err := d.s.Request(ctx, protocol.TypeChangePassword, key, req, &st, requestWait)
	return st, err
}

func (d *directory) GetAccount(ctx context.Context, user, local string) (protocol.AccountState, error) {
	var st protocol.AccountState
	err := d.s.Request(ctx, protocol.TypeGetAccount, "", protocol.GetAccountRequest{User: user, LocalName: local}, &st, requestWait)
	return st, err
}

func (d *directory) AckSync(ctx context.Context, key, user string, version int64) error {
	return d.s.Request(ctx, protocol.TypeAckSync, key, protocol.AckSyncRequest{User: user, PasswordVersion: version}, nil, requestWait)
}

func (d *directory) BeginMFAEnrollment(ctx context.Context, user string) (protocol.MFAEnrollmentKey, error) {
	var k protocol.MFAEnrollmentKey
	err := d.s.Request(ctx, protocol.TypeBeginMFAEnrollment, "", protocol.MFAEnrollmentRequest{User: user}, &k, requestWait)
	return k, err
}

func (d *directory) ConfirmMFAEnrollment(ctx context.Context, key, user, code string) (protocol.AccountState, error) {
	var st protocol.AccountState
	err := d.s.Request(ctx, protocol.TypeConfirmMFAEnrollment, key, protocol.ConfirmMFAEnrollmentRequest{User: user, Code: code}, &st, requestWait)
	return st, err
}

func (d *directory) ReportPlaces(ctx context.Context, user string, places []protocol.PlaceReport) error {
	return d.s.Request(ctx, protocol.TypeReportPlaces, "", protocol.ReportPlacesRequest{User: user, Places: places}, nil, requestWait)
}
