package directory

import (
	"context"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/protocol"
)

// The Go API: what the web console and the user portal (served by the
// same process) do with accounts, under the same rules, rate limits,
// pushes and audit as the admin API and the agent websocket. Every method
// returns a *protocol.Error (or nil) as its error, whose Code callers
// branch on (protocol.Code*, admin.Code*) and whose Message may be shown
// to an administrator; the portal should say the same thing for an
// unknown user as for a known one where the method's doc says so.
//
// Secrets in results (a TOTP secret, a reset token) are protocol.Secret:
// the caller shows them once and wipes them.

// Actor says who acts, for the audit log and the rate limits.
type Actor struct {
	// Kind is ActorAdmin (the web console) or ActorUser (the portal).
	Kind string
	// Name is the acting administrator's account, or the user's own name
	// (empty before the user is known, as for a forgotten password). The
	// audit log's actor is "Kind:Name".
	Name string
	// Addr is the client's address (rate limits per address use it).
	Addr string
}

// Actor kinds.
const (
	ActorAdmin = "admin"
	ActorUser  = "user"
)

func (a Actor) internal() actor { return actor{kind: a.Kind, name: a.Name, addr: a.Addr} }

// apiErr keeps a nil *protocol.Error a nil error.
func apiErr(e *protocol.Error) error {
	if e == nil {
		return nil
	}
	return e
}

// ShowUser reads a user with its devices, what each last reported of
// its places (admin.Binding.Places), the MFA enrolment state and the
// e-mail address (with a directory behind Lockstep, its own).
func (s *Server) ShowUser(ctx context.Context, name string) (admin.User, error) {
	s.bg.sync() // last-seen times and place reports
	if !s.src.Info().ManagesUsers {
		u, e := s.showSourceUser(ctx, name)
		return u, apiErr(e)
	}
	u, e := s.showUser(ctx, name)
	return u, apiErr(e)
}

// EditUser changes a built-in user's display name or e-mail address
// (CodeUnsupported with a directory behind Lockstep, which owns both).
func (s *Server) EditUser(ctx context.Context, by Actor, name string, req admin.EditUserRequest) (admin.User, error) {
	u, e := s.editUser(ctx, by.internal(), name, req)
	return u, apiErr(e)
}

// SetMFA enables, disables or resets a user's TOTP, as `lockstep-directory
// user mfa` does. With req.EnrollDays (protocol.MinEnrollDays to
// MaxEnrollDays) the old secret is dropped, no new one is made here, the
// user's Macs are told at once, and the user enrols with
// BeginMFAEnrollment and ConfirmMFAEnrollment (from the Mac or the
// portal); without, the new secret is in the result, shown once.
func (s *Server) SetMFA(ctx context.Context, by Actor, name string, req admin.MFARequest) (admin.UserResponse, error) {
	res, e := s.setMFA(ctx, by.internal(), name, req)
	return res, apiErr(e)
}

// BeginMFAEnrollment makes a fresh TOTP secret for a user in an enrolment
// period and returns it (base32 and otpauth:// URI) with the period's
// end; nothing but the confirming code ever checks against it. Calling it
// again replaces the secret. The portal calls it once the user signed in
// with the password (during the period the password alone is enough).
// CodeMFANotEnrolling: the user is not in an enrolment period;
// CodeMFAEnrollmentExpired: the period ended.
func (s *Server) BeginMFAEnrollment(ctx context.Context, by Actor, user string) (protocol.MFAEnrollmentKey, error) {
	k, e := s.beginEnrolment(ctx, by.internal(), user)
	return k, apiErr(e)
}

// ConfirmMFAEnrollment checks a code from the new authenticator; when it
// matches, the secret becomes the user's, codes are required from then
// on, and the user's Macs are told. A wrong code counts towards lockout
// (CodeMFAInvalid, then CodeLocked); CodeMFANotEnrolling when no
// enrolment was begun in the last 30 minutes.
func (s *Server) ConfirmMFAEnrollment(ctx context.Context, by Actor, user, code string) (protocol.AccountState, error) {
	st, e := s.confirmEnrolment(ctx, by.internal(), user, code, nil)
	return st, apiErr(e)
}

// ResetLink is a new password reset link's token, shown or sent once.
type ResetLink struct {
	// Token goes in the link; only its hash is stored.
	Token     protocol.Secret
	User      string
	Email     string
	ExpiresAt time.Time
}

// ResetLinkInfo says what a token resets.
type ResetLinkInfo struct {
	User      string
	ExpiresAt time.Time
	// NeedsCode: the user has MFA, so RedeemResetLink needs a TOTP code.
	NeedsCode bool
}

// CreateResetLink makes a single-use reset token for the user named by
// who (a user name, or an e-mail address that names exactly one user),
// valid for Config.ResetLinkTTL. CodeUnknownUser otherwise.
func (s *Server) CreateResetLink(ctx context.Context, by Actor, who string) (ResetLink, error) {
	l, e := s.createResetLink(ctx, by.internal(), who)
	return l, apiErr(e)
}

// SendResetLink makes a reset link and mails it, through Config.Mailer,
// to the user's address; linkURL turns the token into the portal's URL.
// CodeUnknownUser (no such user or address) and CodeBadRequest (no
// address) are for the log and the audit: the portal must answer the same
// ("if the account exists, a link is on its way") whatever happened, so
// that it tells nobody which accounts exist. CodeUnsupported without a
// Mailer.
func (s *Server) SendResetLink(ctx context.Context, by Actor, who string, linkURL func(token string) string) error {
	return apiErr(s.sendResetLink(ctx, by.internal(), who, linkURL))
}

// CheckResetLink says whom a token would reset and whether a code is
// needed, without using it up (admin.CodeResetLinkInvalid for a token
// used, expired or unknown: one answer). Rate-limited per address.
func (s *Server) CheckResetLink(ctx context.Context, by Actor, token []byte) (ResetLinkInfo, error) {
	i, e := s.checkResetLink(ctx, by.internal(), token)
	return i, apiErr(e)
}

// RedeemResetLink sets the user's new password with a token, checking the
// policy (history included) and, for a user with MFA, the TOTP code first
// (a wrong one counts towards lockout). On success the token and the
// user's other links are spent, the user's Macs are told ("changed
// elsewhere: sync"), and the event is audited.
func (s *Server) RedeemResetLink(ctx context.Context, by Actor, token, newPassword []byte, code string) (protocol.AccountState, error) {
	st, e := s.redeemResetLink(ctx, by.internal(), token, newPassword, code)
	return st, apiErr(e)
}

// ExpireResetLinks ends every unused reset link of user and says how many.
func (s *Server) ExpireResetLinks(ctx context.Context, by Actor, user string) (int, error) {
	n, e := s.expireResetLinks(ctx, by.internal(), user)
	return n, apiErr(e)
}
