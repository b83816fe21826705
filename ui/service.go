//go:build cgo || !darwin

// Package ui is Lockstep's menu-bar app: the tray icon and menu, and the
// Change Password, Sync Password, Status and About windows.
//
// It holds no state of its own. Everything it shows comes from lockstepd's
// local API (the watch stream's status and notices), and everything it does
// is a request to that API. It never imports fyne.io/fyne/v2/app, so its
// tests run headless with fyne.io/fyne/v2/test and no cgo.
package ui

import (
	"context"

	"fyne.io/fyne/v2"

	"github.com/lockstep-dev/lockstep/localapi"
)

// Service is the part of lockstepd's local API the app uses.
// *localapi.Client implements it; tests use an in-memory fake.
type Service interface {
	Status(ctx context.Context) (*localapi.Status, error)
	Policy(ctx context.Context, user string) (*localapi.PolicyResponse, error)
	Change(ctx context.Context, req localapi.ChangeRequest, onStep func(localapi.Step)) (*localapi.Operation, error)
	Sync(ctx context.Context, req localapi.SyncRequest, onStep func(localapi.Step)) (*localapi.Operation, error)
	Link(ctx context.Context, req localapi.LinkRequest) (*localapi.Account, error)
	BeginMFAEnrollment(ctx context.Context, req localapi.MFAEnrollRequest) (*localapi.MFAEnrollment, error)
	ConfirmMFAEnrollment(ctx context.Context, req localapi.MFAConfirmRequest) (*localapi.Account, error)
	KeptKeychains(ctx context.Context, user string) (*localapi.KeptKeychains, error)
	RecoverKeychain(ctx context.Context, req localapi.RecoverRequest, onStep func(localapi.Step)) (*localapi.Operation, error)
	Watch(ctx context.Context, fn func(localapi.Event) error) error
}

var _ Service = (*localapi.Client)(nil)

// Tray is where the app shows its icon and menu. Fyne's desktop.App
// implements it; tests record what is set.
type Tray interface {
	SetSystemTrayMenu(menu *fyne.Menu)
	SetSystemTrayIcon(icon fyne.Resource)
}
