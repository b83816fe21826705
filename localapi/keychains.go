package localapi

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// Getting a kept keychain back: the old login keychains a forgotten-password
// sync (or macOS) set aside, and the operation that puts one back.

// API paths.
const (
	// PathKeychains lists the kept keychains (GET, ?user= for root).
	PathKeychains = "/v0/keychains"
	// PathKeychainRecover puts one back (POST RecoverRequest; a stream of
	// steps and the result, like change and sync).
	PathKeychainRecover = "/v0/keychains/recover"
)

// The recovery's operation kind, its own end state, steps and field.
const (
	OpKeychainRecover = "keychain_recover"
	// OpIncomplete: a recovery stopped part-way; running it again finishes
	// it. The account's password is not involved.
	OpIncomplete = "incomplete"

	StepKeptRekey  = "kept_keychain" // re-key the kept keychain to the current password
	StepSearchList = "search_list"   // put it in the keychain list, unlocked

	FieldOld = "old" // the kept keychain's old password

	CodeNoKeptKeychain = codes.NoKeptKeychain
)

// KeptKeychain is an old login keychain kept aside in ~/Library/Keychains.
type KeptKeychain struct {
	// Name is its file name: a recovery names it by this.
	Name string `json:"name"`
	Path string `json:"path"`
	// KeptAt is when it was set aside.
	KeptAt time.Time `json:"kept_at"`
	// LocalItems are the Local Items folders set aside with it; they stay
	// where they are.
	LocalItems []string `json:"local_items,omitempty"`
	// Recovered: Lockstep put it back already.
	Recovered bool `json:"recovered"`
}

// KeptKeychains lists an account's kept keychains, newest first.
type KeptKeychains struct {
	LocalUser string         `json:"local_user"`
	Keychains []KeptKeychain `json:"keychains"`
}

// RecoverRequest puts the kept keychain Name back: re-keyed from Old (the
// password it was kept with, the Mac password before the reset) to Current
// (the Mac password now), and back in the keychain list.
type RecoverRequest struct {
	User    string          `json:"user,omitempty"`
	Name    string          `json:"name"`
	Old     protocol.Secret `json:"old"`
	Current protocol.Secret `json:"current"`
}

// KeptKeychains lists the caller's kept keychains (user's, for root).
func (c *Client) KeptKeychains(ctx context.Context, user string) (*KeptKeychains, error) {
	p := PathKeychains
	if user != "" {
		p += "?user=" + url.QueryEscape(user)
	}
	var out KeptKeychains
	if err := c.do(ctx, http.MethodGet, p, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RecoverKeychain puts a kept keychain back; onStep, when not nil, is called
// for each step.
func (c *Client) RecoverKeychain(ctx context.Context, req RecoverRequest, onStep func(Step)) (*Operation, error) {
	return c.operation(ctx, PathKeychainRecover, req, onStep)
}
