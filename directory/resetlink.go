package directory

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/directory/mail"
	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Password reset links ("forgot my password" on the portal).
//
// A link carries a random 256-bit token; the directory keeps only its
// SHA-256, so neither a copy of the database nor the audit log can be
// used to reset. A token works once (the transaction that sets the
// password marks it used, so two uses racing cannot both succeed), until
// Config.ResetLinkTTL; setting a password through one ends the user's
// other links. For a user with MFA the link is not enough: a code from the
// authenticator is checked first (and a wrong one counts towards lockout);
// during an enrolment period the link is enough, as the password is.

// Mailer sends one message (package mail's Mailer is one).
type Mailer interface {
	Send(ctx context.Context, m mail.Message) error
}

var errResetLinkInvalid = protocol.Errorf(admin.CodeResetLinkInvalid,
	"This reset link is not valid: it was used already, has expired or was never made. Ask for a new one.")

// tokenHash is how a reset token is stored and looked up.
func tokenHash(token []byte) []byte {
	h := sha256.Sum256(token)
	return h[:]
}

// resetTarget finds the user a reset link is for, by name or by e-mail
// address (which must name exactly one user), with the address to send it
// to. The source's address wins over the hub's record.
func (s *Server) resetTarget(ctx context.Context, who string) (user, email string, perr *protocol.Error) {
	who = strings.TrimSpace(who)
	unknown := protocol.Errorf(protocol.CodeUnknownUser, "no directory user or address %q", who)
	if who == "" || len(who) > 254 {
		return "", "", unknown
	}
	if s.src.Info().ManagesUsers {
		var us []store.User
		err := s.st.View(ctx, func(tx store.Tx) error {
			u, err := tx.User(ctx, who)
			if err == nil {
				us = []store.User{u}
				return nil
			}
			if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if strings.Contains(who, "@") {
				us, err = tx.UsersByEmail(ctx, who)
			}
			return err
		})
		if err != nil {
			return "", "", s.internalError("user not read", err)
		}
		if len(us) != 1 {
			return "", "", unknown
		}
		return us[0].Name, us[0].Email, nil
	}
	var accts []source.Account
	acct, err := s.src.Account(ctx, who)
	switch {
	case err == nil:
		accts = []source.Account{acct}
	case !errors.Is(err, source.ErrUnknownUser):
		return "", "", s.internalError("the directory could not read the user", err)
	case strings.Contains(who, "@"):
		if f, ok := s.src.(source.EmailFinder); ok {
			if accts, err = f.AccountsByEmail(ctx, who); err != nil {
				return "", "", s.internalError("the directory could not look up the address", err)
			}
		}
	}
	if len(accts) != 1 {
		return "", "", unknown
	}
	if perr := s.ensure(ctx, accts[0]); perr != nil {
		return "", "", perr
	}
	return accts[0].User, store.NormalizeEmail(accts[0].Email), nil
}

// createResetLink makes a token for the user named (by name or address).
func (s *Server) createResetLink(ctx context.Context, a actor, who string) (ResetLink, *protocol.Error) {
	user, email, perr := s.resetTarget(ctx, who)
	if perr != nil {
		s.auditAsync(a, "reset_link_refused", "", map[string]string{"reason": "unknown_user"})
		return ResetLink{}, perr
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return ResetLink{}, s.internalError("random bytes not read", err)
	}
	token := make([]byte, base64.RawURLEncoding.EncodedLen(len(raw)))
	base64.RawURLEncoding.Encode(token, raw)
	clear(raw)
	var link ResetLink
	err := s.update(ctx, func(tx store.Tx, ob *outbox) error {
		rt := store.ResetToken{Hash: tokenHash(token), User: user, CreatedAt: ob.now, ExpiresAt: ob.now.Add(s.cfg.ResetLinkTTL)}
		if err := tx.CreateResetToken(ctx, rt); err != nil {
			return err
		}
		link = ResetLink{Token: protocol.Secret(token), User: user, Email: email, ExpiresAt: rt.ExpiresAt}
		return a.audit(ctx, tx, ob.now, "reset_link_created", user, map[string]string{"expires": rt.ExpiresAt.Format(time.RFC3339)})
	})
	if err != nil {
		clear(token)
		return ResetLink{}, s.userError("reset link not stored", user, err)
	}
	return link, nil
}

// sendResetLink makes a link and mails it to the user's address.
func (s *Server) sendResetLink(ctx context.Context, a actor, who string, linkURL func(token string) string) *protocol.Error {
	if s.cfg.Mailer == nil {
		return protocol.Errorf(protocol.CodeUnsupported, "the directory sends no mail: start it with --smtp-url and --smtp-from")
	}
	user, email, perr := s.resetTarget(ctx, who)
	if perr != nil {
		s.auditAsync(a, "reset_link_refused", "", map[string]string{"reason": "unknown_user"})
		return perr
	}
	if email == "" {
		s.auditAsync(a, "reset_link_refused", user, map[string]string{"reason": "no_address"})
		return protocol.Errorf(protocol.CodeBadRequest, "the user %q has no e-mail address", user)
	}
	link, perr := s.createResetLink(ctx, a, user)
	if perr != nil {
		return perr
	}
	defer link.Token.Wipe()
	minutes := int(s.cfg.ResetLinkTTL.Round(time.Minute) / time.Minute)
	body := fmt.Sprintf("Someone, we hope you, asked to reset the password of the directory account %s.\n\n"+
		"Open this link within %d minutes to choose a new password:\n\n%s\n\n"+
		"The link works once. If you did not ask for it, ignore this message: your password stays as it is.\n",
		user, minutes, linkURL(string(link.Token)))
	if err := s.cfg.Mailer.Send(ctx, mail.Message{To: email, Subject: "Reset your password", Body: body}); err != nil {
		s.log.Error("reset link not sent", "user", user, "err", err)
		s.auditAsync(a, "reset_link_not_sent", user, nil)
		return protocol.Errorf(protocol.CodeInternal, "the reset link could not be sent; try again later")
	}
	s.auditAsync(a, "reset_link_sent", user, nil)
	return nil
}

// checkResetLink says whom a token resets and whether a code is needed,
// without using it.
func (s *Server) checkResetLink(ctx context.Context, a actor, token []byte) (ResetLinkInfo, *protocol.Error) {
	rt, u, perr := s.validResetToken(ctx, a, token)
	if perr != nil {
		return ResetLinkInfo{}, perr
	}
	return ResetLinkInfo{User: u.Name, ExpiresAt: rt.ExpiresAt, NeedsCode: u.TOTPSecret != nil}, nil
}

// validResetToken reads a token that can still be used, and its user;
// every other case is one answer (audited with its reason).
func (s *Server) validResetToken(ctx context.Context, a actor, token []byte) (store.ResetToken, store.User, *protocol.Error) {
	if ok, wait := s.limits.allowKey(&s.limits.address, "reset:"+a.addr, s.now()); !ok {
		s.noise(a, "rate_limited", "", nil)
		return store.ResetToken{}, store.User{}, &protocol.Error{Code: protocol.CodeRateLimited,
			Message: "Too many attempts; wait before trying again.", RetryAfter: retrySeconds(wait)}
	}
	var rt store.ResetToken
	var u store.User
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		if rt, err = tx.ResetToken(ctx, tokenHash(token)); err != nil {
			return err
		}
		u, err = tx.User(ctx, rt.User)
		return err
	})
	reason := ""
	switch {
	case errors.Is(err, store.ErrNotFound):
		reason = "unknown"
	case err != nil:
		return rt, u, s.internalError("reset token not read", err)
	case !rt.UsedAt.IsZero():
		reason = "used"
	case !s.now().Before(rt.ExpiresAt):
		reason = "expired"
	}
	if reason != "" {
		s.noise(a, "reset_link_refused", rt.User, map[string]string{"reason": reason})
		return rt, u, errResetLinkInvalid
	}
	return rt, u, nil
}

// redeemResetLink sets a new password with a token (and the code, for a
// user with MFA). Nothing is used up by a refusal before the password is
// set, except with a directory behind Lockstep, where the token is spent
// just before the source is asked (its write is not part of the hub's
// transaction): a password it then refuses needs a new link.
func (s *Server) redeemResetLink(ctx context.Context, a actor, token, pw []byte, code string) (protocol.AccountState, *protocol.Error) {
	rt, u, perr := s.validResetToken(ctx, a, token)
	if perr != nil {
		return protocol.AccountState{}, perr
	}
	name := u.Name
	var step int64
	switch {
	case u.TOTPSecret != nil && s.locked(u):
		return protocol.AccountState{}, lockedError(u)
	case u.TOTPSecret != nil:
		if step, perr = s.checkTOTP(ctx, a, u, code); perr != nil {
			return protocol.AccountState{}, perr
		}
	default:
		if perr := s.enrolmentOver(a, u); perr != nil {
			return protocol.AccountState{}, perr
		}
	}
	external := s.src.Info().External
	use := func(ctx context.Context, tx store.Tx, at time.Time) error {
		err := tx.UseResetToken(ctx, rt.Hash, at)
		if errors.Is(err, store.ErrNotFound) {
			return errResetLinkInvalid // used meanwhile
		}
		return err
	}
	if external {
		acct, perr := s.adminAccount(ctx, name)
		if perr != nil {
			return protocol.AccountState{}, perr
		}
		if vs := s.userPolicy(acct).Check(name, pw); len(vs) > 0 {
			return protocol.AccountState{}, policyError(vs)
		}
		if err := s.st.Update(ctx, func(tx store.Tx) error { return use(ctx, tx, s.now()) }); err != nil {
			var pe *protocol.Error
			if errors.As(err, &pe) {
				return protocol.AccountState{}, pe
			}
			return protocol.AccountState{}, s.internalError("reset token not used", err, "user", name)
		}
	}
	var st protocol.AccountState
	_, err := s.src.Reset(ctx, name, pw, false, source.Hooks{Commit: func(ctx context.Context, acct source.Account) error {
		return s.inTx(ctx, func(tx store.Tx, ob *outbox) error {
			if !external {
				if err := use(ctx, tx, ob.now); err != nil {
					return err
				}
			}
			cur, err := tx.User(ctx, name)
			if err != nil {
				return err
			}
			if step != 0 {
				if step <= cur.TOTPLastStep {
					return protocol.Errorf(protocol.CodeMFAReplayed, "This verification code was already used; wait for the next one.")
				}
				cur.TOTPLastStep = step
				cur.MFAFailedCount, cur.MFAFailedWindowStart = 0, time.Time{}
			}
			// As after an administrator's reset: strangers' blocks on
			// linking end, the user has a new password to try.
			cur.LinkFailedCount, cur.LinkFailedWindowStart, cur.LinkLockedUntil = 0, time.Time{}, time.Time{}
			if err := tx.UpdateUser(ctx, cur); err != nil {
				return err
			}
			if _, err := tx.ExpireResetTokens(ctx, name, ob.now); err != nil {
				return err
			}
			if st, err = s.observe(ctx, tx, ob, acct, cause{set: true}); err != nil {
				return err
			}
			return a.audit(ctx, tx, ob.now, "password_reset_by_link", name, map[string]string{"password_version": fmt.Sprint(st.PasswordVersion)})
		})
	}})
	if err != nil {
		var pe *protocol.Error
		var pol *source.PolicyError
		switch {
		case errors.As(err, &pe):
			return protocol.AccountState{}, pe
		case errors.As(err, &pol):
			s.auditAsync(a, "password_change_refused", name, map[string]string{"violations": violationCodes(pol.Violations)})
			return protocol.AccountState{}, policyError(pol.Violations)
		}
		return protocol.AccountState{}, s.internalError("password not reset by link", err, "user", name)
	}
	s.log.Info("password reset by link", "user", name, "password_version", st.PasswordVersion)
	return st, nil
}

// expireResetLinks ends every unused link of user.
func (s *Server) expireResetLinks(ctx context.Context, a actor, user string) (int, *protocol.Error) {
	var n int
	err := s.update(ctx, func(tx store.Tx, ob *outbox) error {
		if _, err := tx.User(ctx, user); err != nil {
			return err
		}
		var err error
		if n, err = tx.ExpireResetTokens(ctx, user, ob.now); err != nil {
			return err
		}
		return a.audit(ctx, tx, ob.now, "reset_links_expired", user, map[string]string{"count": fmt.Sprint(n)})
	})
	if err != nil {
		return 0, s.userError("reset links not expired", user, err)
	}
	return n, nil
}
