package protocol

import (
	"slices"
	"time"
)

// MFA enrolment and place reports over the agent websocket.
const (
	// TypeBeginMFAEnrollment asks for a fresh TOTP secret for a user in an
	// enrolment period, from a device bound to the user; the result
	// (MFAEnrollmentKey) goes to that device alone. A push never carries
	// a secret.
	TypeBeginMFAEnrollment = "begin_mfa_enrollment"
	// TypeConfirmMFAEnrollment confirms the secret with a code from the
	// authenticator; from then on codes are required (mutating).
	TypeConfirmMFAEnrollment = "confirm_mfa_enrollment"
	// TypeReportPlaces tells the directory each place's last state on the
	// device, for administrators (never a secret).
	TypeReportPlaces = "report_places"
	// TypeMFAEnrollment is pushed to a user's devices when enrolment
	// becomes needed (an MFA reset with an enrolment period) and when it
	// no longer is (enrolled, or MFA disabled).
	TypeMFAEnrollment = "mfa_enrollment"
)

// Enrolment periods an administrator may give, in days.
const (
	MinEnrollDays = 1
	MaxEnrollDays = 365
)

// MFAEnrollmentRequest begins an enrolment for User.
type MFAEnrollmentRequest struct {
	User string `json:"user"`
}

// MFAEnrollmentKey is the secret a begun enrolment hands out: the base32
// secret and its otpauth:// URI (both secrets), and when the period ends.
type MFAEnrollmentKey struct {
	Secret Secret    `json:"secret"`
	URI    Secret    `json:"uri"`
	Until  time.Time `json:"until"`
}

// ConfirmMFAEnrollmentRequest confirms a begun enrolment with a code.
type ConfirmMFAEnrollmentRequest struct {
	User string `json:"user"`
	Code string `json:"code"`
}

// MFAEnrollment is the push that says whether User must enrol an
// authenticator, and until when; MFA is whether the account has MFA
// (after an enrolment: true; after MFA was disabled: false).
type MFAEnrollment struct {
	User     string     `json:"user"`
	Required bool       `json:"required"`
	Until    *time.Time `json:"until,omitempty"`
	MFA      bool       `json:"mfa"`
}

// Places where a password lives on a Mac, and their states, as reported
// with TypeReportPlaces.
const (
	PlaceDirectory = "directory"
	PlaceLocal     = "local" // the Mac account
	PlaceFileVault = "filevault"
	PlaceKeychain  = "keychain"

	PlaceOK            = "ok"
	PlaceBehind        = "behind"
	PlaceUnknown       = "unknown"
	PlaceNotApplicable = "not_applicable"
)

var (
	places      = []string{PlaceDirectory, PlaceLocal, PlaceFileVault, PlaceKeychain}
	placeStates = []string{PlaceOK, PlaceBehind, PlaceUnknown, PlaceNotApplicable}
)

// PlaceReport is one place's state and when the device established it.
type PlaceReport struct {
	Place string    `json:"place"`
	State string    `json:"state"`
	At    time.Time `json:"at"`
}

// ReportPlacesRequest reports User's places on the device.
type ReportPlacesRequest struct {
	User   string        `json:"user"`
	Places []PlaceReport `json:"places"`
}

// Validate implements body validation.
func (r *MFAEnrollmentRequest) Validate() error { return validName("user", r.User) }

// Validate implements body validation.
func (r *ConfirmMFAEnrollmentRequest) Validate() error {
	if err := validName("user", r.User); err != nil {
		return err
	}
	if len(r.Code) > 16 {
		return Errorf(CodeBadRequest, "code is too long")
	}
	return nil
}

// Validate implements body validation.
func (r *MFAEnrollment) Validate() error { return validName("user", r.User) }

// Validate implements body validation: each known place at most once,
// with a known state.
func (r *ReportPlacesRequest) Validate() error {
	if err := validName("user", r.User); err != nil {
		return err
	}
	if len(r.Places) > len(places) {
		return Errorf(CodeBadRequest, "at most %d places", len(places))
	}
	seen := map[string]bool{}
	for _, p := range r.Places {
		if !slices.Contains(places, p.Place) || seen[p.Place] {
			return Errorf(CodeBadRequest, "unknown or repeated place %q", truncate(p.Place, 32))
		}
		seen[p.Place] = true
		if !slices.Contains(placeStates, p.State) {
			return Errorf(CodeBadRequest, "unknown state %q of %s", truncate(p.State, 32), p.Place)
		}
	}
	return nil
}
