package directory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/directory/web"
	"github.com/lockstep-dev/lockstep/protocol"
)

// The web console and the portal (package web) over this server. Every
// console action runs the admin API's own handler in-process with the
// signed-in administrator as the actor, so the console and the
// lockstep-directory commands share every check (the policy's validation,
// the source's refusals) and every audit event.

func (s *Server) webActor(a web.Actor) actor {
	if a.User != "" {
		return actor{kind: "user", name: a.User, addr: a.Addr, verified: true}
	}
	return actor{kind: "admin", name: a.Admin, addr: a.Addr}
}

// recorder is the response of an in-process admin API call.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}

// call runs an admin API handler for a console action. Bodies may hold
// secrets (a password set, a generated one): both buffers are wiped.
func (s *Server) call(ctx context.Context, a web.Actor, h func(http.ResponseWriter, *http.Request, actor), method string,
	path map[string]string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = protocol.Marshal(in); err != nil {
			return fmt.Errorf("encoding console request: %w", err)
		}
		defer clear(body)
	}
	r, err := http.NewRequestWithContext(ctx, method, "https://console.invalid/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.ContentLength = int64(len(body))
	r.URL.RawQuery = query.Encode()
	for k, v := range path {
		r.SetPathValue(k, v)
	}
	rec := &recorder{header: http.Header{}}
	rec.body.Grow(8 << 10)
	h(rec, r, s.webActor(a))
	b := rec.body.Bytes()
	defer clear(b)
	if rec.code/100 != 2 {
		var eb admin.ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error != nil {
			return eb.Error
		}
		return protocol.Errorf(protocol.CodeInternal, "the directory could not complete the request; try again")
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decoding console response: %w", err)
		}
	}
	return nil
}

// webConsole is web.Console.
type webConsole struct{ s *Server }

func (c webConsole) Source() web.Source {
	i := c.s.src.Info()
	return web.Source{Kind: i.Kind, Name: i.Name, ManagesUsers: i.ManagesUsers, ManagesPolicy: i.ManagesPolicy}
}

func (c webConsole) Users(ctx context.Context) ([]admin.User, error) {
	var out []admin.User
	return out, c.s.call(ctx, web.Actor{}, c.s.adminListUsers, http.MethodGet, nil, nil, nil, &out)
}

func (c webConsole) User(ctx context.Context, name string) (admin.User, error) {
	var out admin.User
	return out, c.s.call(ctx, web.Actor{}, c.s.adminShowUser, http.MethodGet, map[string]string{"name": name}, nil, nil, &out)
}

func (c webConsole) ResetPassword(ctx context.Context, a web.Actor, name string, req admin.ResetRequest) (admin.UserResponse, error) {
	var out admin.UserResponse
	return out, c.s.call(ctx, a, c.s.adminReset, http.MethodPost, map[string]string{"name": name}, nil, req, &out)
}

func (c webConsole) Unlock(ctx context.Context, a web.Actor, name string) (admin.User, error) {
	var out admin.User
	return out, c.s.call(ctx, a, c.s.adminUnlock, http.MethodPost, map[string]string{"name": name}, nil, struct{}{}, &out)
}

func (c webConsole) SetMFA(ctx context.Context, a web.Actor, name string, req admin.MFARequest) (admin.UserResponse, error) {
	var out admin.UserResponse
	return out, c.s.call(ctx, a, c.s.adminMFA, http.MethodPost, map[string]string{"name": name}, nil, req, &out)
}

func (c webConsole) DeleteUser(ctx context.Context, a web.Actor, name string) error {
	return c.s.call(ctx, a, c.s.adminDeleteUser, http.MethodDelete, map[string]string{"name": name}, nil, nil, nil)
}

func (c webConsole) Devices(ctx context.Context) ([]admin.Device, error) {
	var out []admin.Device
	return out, c.s.call(ctx, web.Actor{}, c.s.adminListDevices, http.MethodGet, nil, nil, nil, &out)
}

func (c webConsole) RevokeDevice(ctx context.Context, a web.Actor, id string) (admin.Device, error) {
	var out admin.Device
	return out, c.s.call(ctx, a, c.s.adminRevokeDevice, http.MethodPost, map[string]string{"id": id}, nil, struct{}{}, &out)
}

func (c webConsole) EnrollTokens(ctx context.Context) ([]admin.EnrollTokenInfo, error) {
	var out []admin.EnrollTokenInfo
	return out, c.s.call(ctx, web.Actor{}, c.s.adminListEnrollTokens, http.MethodGet, nil, nil, nil, &out)
}

func (c webConsole) CreateEnrollToken(ctx context.Context, a web.Actor, req admin.EnrollTokenRequest) (admin.EnrollToken, error) {
	var out admin.EnrollToken
	return out, c.s.call(ctx, a, c.s.adminEnrollToken, http.MethodPost, nil, nil, req, &out)
}

func (c webConsole) RevokeEnrollToken(ctx context.Context, a web.Actor, id string) error {
	return c.s.call(ctx, a, c.s.adminRevokeEnrollToken, http.MethodPost, map[string]string{"id": id}, nil, struct{}{}, nil)
}

func (c webConsole) Policy(ctx context.Context) (protocol.Policy, error) { return c.s.Policy(), nil }

func (c webConsole) SetPolicy(ctx context.Context, a web.Actor, p protocol.Policy) (protocol.Policy, error) {
	var out protocol.Policy
	return out, c.s.call(ctx, a, c.s.adminSetPolicy, http.MethodPut, nil, nil, p, &out)
}

func (c webConsole) Audit(ctx context.Context, q admin.AuditQuery) ([]admin.AuditEvent, error) {
	v := url.Values{}
	for k, s := range map[string]string{"user": q.User, "actor": q.Actor, "event": q.Event} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", fmt.Sprint(q.Limit))
	}
	var out []admin.AuditEvent
	return out, c.s.call(ctx, web.Actor{}, c.s.adminAudit, http.MethodGet, nil, v, nil, &out)
}

func (c webConsole) Admins(ctx context.Context) ([]admin.Admin, error) {
	var out []admin.Admin
	return out, c.s.call(ctx, web.Actor{}, c.s.adminListAdmins, http.MethodGet, nil, nil, nil, &out)
}

func (c webConsole) ResetAdmin(ctx context.Context, a web.Actor, name string) (protocol.Secret, error) {
	var out admin.AdminResponse
	err := c.s.call(ctx, a, c.s.adminRecoverAdmin, http.MethodPost, map[string]string{"name": name}, nil, struct{}{}, &out)
	return out.Password, err
}

func (c webConsole) DeleteAdmin(ctx context.Context, a web.Actor, name string) error {
	return c.s.call(ctx, a, c.s.adminDeleteAdmin, http.MethodDelete, map[string]string{"name": name}, nil, nil, nil)
}

func (c webConsole) SignInAdmins(ctx context.Context) (int, error) { return c.s.signInAdmins(ctx) }

func (c webConsole) SetAdminPassword(ctx context.Context, wa web.Actor, pw []byte) error {
	s := c.s
	if vs := s.Policy().Check(wa.Admin, pw); len(vs) > 0 {
		return policyError(vs)
	}
	hash, err := s.hash.Hash(ctx, pw)
	if err != nil {
		return s.internalError("admin password not hashed", err, "admin", wa.Admin)
	}
	a := s.webActor(wa)
	err = s.update(ctx, func(tx store.Tx, ob *outbox) error {
		ad, err := tx.Admin(ctx, wa.Admin)
		if err != nil {
			return err
		}
		ad.PasswordHash, ad.MustChange, ad.PasswordChangedAt = hash, false, ob.now
		if err := tx.UpdateAdmin(ctx, ad); err != nil {
			return err
		}
		return a.audit(ctx, tx, ob.now, "console_password_set", "", map[string]string{"admin": wa.Admin})
	})
	if err != nil {
		return s.internalError("admin password not set", err, "admin", wa.Admin)
	}
	return nil
}

// webPortal is web.Portal.
type webPortal struct{ s *Server }

func (p webPortal) Account(ctx context.Context, name string) (admin.User, error) {
	p.s.bg.sync() // include last-seen times
	if !p.s.src.Info().ManagesUsers {
		u, e := p.s.showSourceUser(ctx, name)
		return u, asErr(e)
	}
	u, e := p.s.showUser(ctx, name)
	return u, asErr(e)
}

// asErr keeps a nil *protocol.Error a nil error.
func asErr(e *protocol.Error) error {
	if e == nil {
		return nil
	}
	return e
}

func (p webPortal) Policy(ctx context.Context, name string) (protocol.Policy, error) {
	acct, err := p.s.src.Account(ctx, name)
	if err != nil {
		return protocol.Policy{}, p.s.internalError("the directory could not read the user", err, "user", name)
	}
	pol := p.s.userPolicy(acct)
	if p.s.src.Info().External {
		pol.NameParts = protocol.EncodeNameParts([]string{acct.User}, map[string][]string{acct.User: protocol.NameParts(acct.DisplayName)})
	}
	return pol, nil
}

func (p webPortal) ChangePassword(ctx context.Context, wa web.Actor, current, next []byte, code string) error {
	req := &protocol.ChangePasswordRequest{User: wa.User, Current: current, New: next, TOTP: code}
	_, perr := p.s.changePassword(ctx, p.s.webActor(wa), req, "portal-"+b64url.EncodeToString(randBytes(12)), nil)
	return asErr(perr)
}

func (p webPortal) SendResetLink(ctx context.Context, wa web.Actor, who string, link func(string) string) error {
	err := p.s.SendResetLink(ctx, Actor{Kind: ActorUser, Addr: wa.Addr}, who, link)
	var pe *protocol.Error
	if errors.As(err, &pe) && (pe.Code == protocol.CodeUnknownUser || pe.Code == protocol.CodeBadRequest) {
		return nil // the page says the same whoever was named
	}
	return err
}

func (p webPortal) CheckResetLink(ctx context.Context, wa web.Actor, token []byte) (web.ResetInfo, error) {
	i, err := p.s.CheckResetLink(ctx, Actor{Kind: ActorUser, Addr: wa.Addr}, token)
	return web.ResetInfo{User: i.User, ExpiresAt: i.ExpiresAt, NeedsCode: i.NeedsCode}, err
}

func (p webPortal) RedeemResetLink(ctx context.Context, wa web.Actor, token, next []byte, code string) error {
	_, err := p.s.RedeemResetLink(ctx, Actor{Kind: ActorUser, Name: wa.User, Addr: wa.Addr}, token, next, code)
	return err
}

func (p webPortal) BaseURL() string {
	if p.s.cfg.PublicURL != "" {
		return strings.TrimRight(p.s.cfg.PublicURL, "/")
	}
	return p.s.listenURL()
}

// webAuth is web.Auth.
type webAuth struct{ s *Server }

var (
	errConsoleWrong = protocol.Errorf(protocol.CodeWrongPassword, "The name or password is not correct.")
	errCodeInvalid  = protocol.Errorf(protocol.CodeMFAInvalid, "The verification code is not valid.")
	errCodeReplayed = protocol.Errorf(protocol.CodeMFAReplayed, "This verification code was already used; wait for the next one.")
)

// signInLimit takes a token for a sign-in attempt from the address's bucket
// and the target's: the buckets the agents' handshakes and password checks
// take from, so one budget bounds both paths.
func (s *Server) signInLimit(kind, addr, name string) *protocol.Error {
	now := s.now()
	if ok, wait := s.limits.allowKey(&s.limits.address, "web:"+addr, now); !ok {
		s.noise(actor{kind: kind, addr: addr}, "web_rate_limited", "", nil)
		return &protocol.Error{Code: protocol.CodeRateLimited, Message: "Too many attempts; wait before trying again.", RetryAfter: retrySeconds(wait)}
	}
	if kind == store.SessionAdmin {
		if ok, wait := s.limits.allowKey(&s.limits.user, "console admin\x00"+name, now); !ok {
			s.noise(actor{kind: kind, addr: addr}, "web_rate_limited", "", map[string]string{"admin": name})
			return &protocol.Error{Code: protocol.CodeRateLimited, Message: "Too many attempts; wait before trying again.", RetryAfter: retrySeconds(wait)}
		}
	}
	return nil
}

func (w webAuth) SignIn(ctx context.Context, kind, addr, name string, pw []byte) (web.Principal, error) {
	if kind == store.SessionAdmin {
		return w.s.adminSignIn(ctx, addr, name, pw)
	}
	return w.s.portalSignIn(ctx, addr, name, pw)
}

func (s *Server) adminSignIn(ctx context.Context, addr, name string, pw []byte) (web.Principal, error) {
	if e := s.signInLimit(store.SessionAdmin, addr, name); e != nil {
		return web.Principal{}, e
	}
	a := actor{kind: "console", addr: addr}
	var ad store.Admin
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		ad, err = tx.Admin(ctx, name)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || checkName(name) != nil {
		if err := s.hash.VerifyDummy(ctx, pw); err != nil {
			return web.Principal{}, s.internalError("password not verified", err)
		}
		s.noise(a, "console_sign_in_failed", "", map[string]string{"reason": "unknown_admin"})
		return web.Principal{}, errConsoleWrong
	}
	if err != nil {
		return web.Principal{}, s.internalError("administrator not read", err, "admin", name)
	}
	ok, _, err := s.hash.Verify(ctx, ad.PasswordHash, pw)
	if err != nil {
		return web.Principal{}, s.internalError("password not verified", err, "admin", name)
	}
	if s.adminLocked(ad) {
		s.noise(a, "console_sign_in_locked", "", map[string]string{"admin": name})
		until := ad.LockedUntil
		return web.Principal{}, &protocol.Error{Code: protocol.CodeLocked, Message: "The account is locked after too many failed attempts.", LockedUntil: &until}
	}
	if !ok {
		return web.Principal{}, s.adminFailure(ctx, a, name, "wrong_password")
	}
	// A right password does not clear the count: only a whole sign-in
	// (the code too) does, so that codes cannot be guessed without end.
	return web.Principal{Name: ad.Name, Role: ad.Role, TOTP: ad.TOTPSecret != nil, Enrol: ad.TOTPSecret == nil, MustChange: ad.MustChange}, nil
}

// adminFailure counts a wrong password or code of an administrator and
// locks the account at the threshold, in one transaction with its audit.
func (s *Server) adminFailure(ctx context.Context, a actor, name, reason string) error {
	var locked time.Time
	err := s.update(ctx, func(tx store.Tx, ob *outbox) error {
		locked = time.Time{}
		ad, err := tx.Admin(ctx, name)
		if err != nil {
			return err
		}
		if ad.FailedWindowStart.IsZero() || ob.now.Sub(ad.FailedWindowStart) > s.cfg.Lockout.Window {
			ad.FailedCount, ad.FailedWindowStart = 0, ob.now
		}
		ad.FailedCount++
		detail := map[string]string{"admin": name, "reason": reason, "failures": fmt.Sprint(ad.FailedCount)}
		if err := a.audit(ctx, tx, ob.now, "console_sign_in_failed", "", detail); err != nil {
			return err
		}
		if ad.FailedCount >= s.cfg.Lockout.Threshold {
			ad.LockedUntil, locked = ob.now.Add(s.cfg.Lockout.Duration), ob.now.Add(s.cfg.Lockout.Duration)
			ad.FailedCount, ad.FailedWindowStart = 0, time.Time{}
			if err := a.audit(ctx, tx, ob.now, "console_admin_locked", "", map[string]string{"admin": name,
				"until": locked.Format(time.RFC3339)}); err != nil {
				return err
			}
		}
		return tx.UpdateAdmin(ctx, ad)
	})
	if err != nil {
		return s.internalError("failure not recorded", err, "admin", name)
	}
	if !locked.IsZero() {
		return &protocol.Error{Code: protocol.CodeLocked, Message: "The account is locked after too many failed attempts.", LockedUntil: &locked}
	}
	if reason == "wrong_password" {
		return errConsoleWrong
	}
	return errCodeInvalid
}

func (s *Server) portalSignIn(ctx context.Context, addr, name string, pw []byte) (web.Principal, error) {
	if e := s.signInLimit(store.SessionUser, addr, name); e != nil {
		return web.Principal{}, e
	}
	a := actor{kind: "user", name: name, addr: addr}
	if checkName(name) != nil {
		if err := s.hash.VerifyDummy(ctx, pw); err != nil {
			return web.Principal{}, s.internalError("password not verified", err)
		}
		return web.Principal{}, errWrongPassword
	}
	p, perr := s.precheck(ctx, a, name, pw)
	if perr != nil {
		return web.Principal{}, perr
	}
	acct, err := s.src.Verify(ctx, name, pw, source.Attempt{})
	if err != nil {
		return web.Principal{}, s.sourceError(ctx, a, name, p, err)
	}
	if perr := s.ensure(ctx, acct); perr != nil {
		return web.Principal{}, perr
	}
	u, perr := s.loadUser(ctx, acct.User)
	if perr != nil {
		return web.Principal{}, perr
	}
	if s.locked(u) {
		return web.Principal{}, lockedError(u)
	}
	s.notePolicy(acct)
	who := web.Principal{Name: u.Name, TOTP: u.TOTPSecret != nil, MustChange: acct.MustChange}
	if enrolling(u) {
		// An MFA reset with an enrolment period: the password alone is
		// enough until its end, and the user enrols first.
		if !s.now().Before(u.MFAEnrollUntil) {
			return web.Principal{}, protocol.Errorf(protocol.CodeMFAEnrollmentExpired,
				"The time to set up your authenticator has ended. Ask IT to reset your MFA again.")
		}
		until := u.MFAEnrollUntil
		who.Enrol, who.EnrolUntil = true, &until
	}
	return who, nil
}

func (w webAuth) CheckCode(ctx context.Context, kind, addr, name, code string) error {
	s := w.s
	if kind == store.SessionAdmin {
		if e := s.signInLimit(kind, addr, name); e != nil {
			return e
		}
		return s.adminCode(ctx, actor{kind: "console", addr: addr}, name, code)
	}
	a := actor{kind: "user", name: name, addr: addr}
	u, perr := s.loadUser(ctx, name)
	if perr != nil {
		return perr
	}
	if u.TOTPSecret == nil {
		return nil
	}
	step, perr := s.checkTOTP(ctx, a, u, code)
	if perr != nil {
		return perr
	}
	err := s.update(ctx, func(tx store.Tx, ob *outbox) error {
		perr = nil
		cur, err := tx.User(ctx, name)
		if err != nil {
			return err
		}
		if s.locked(cur) {
			perr = lockedError(cur)
			return nil
		}
		if step <= cur.TOTPLastStep {
			perr = errCodeReplayed
			return nil
		}
		cur.TOTPLastStep, cur.MFAFailedCount, cur.MFAFailedWindowStart = step, 0, time.Time{}
		return tx.UpdateUser(ctx, cur)
	})
	if err != nil {
		return s.internalError("code not recorded", err, "user", name)
	}
	return asErr(perr)
}

// adminCode checks an administrator's second factor, with replay
// rejection; a wrong one counts with wrong passwords.
func (s *Server) adminCode(ctx context.Context, a actor, name, code string) error {
	var ad store.Admin
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		ad, err = tx.Admin(ctx, name)
		return err
	})
	if err != nil {
		return s.internalError("administrator not read", err, "admin", name)
	}
	if s.adminLocked(ad) {
		until := ad.LockedUntil
		return &protocol.Error{Code: protocol.CodeLocked, Message: "The account is locked after too many failed attempts.", LockedUntil: &until}
	}
	if ad.TOTPSecret == nil {
		return protocol.Errorf(protocol.CodeMFARequired, "Set up your authenticator first.")
	}
	secret, err := s.keys.open(adminTOTPLabel(name), ad.TOTPSecret)
	if err != nil {
		return s.internalError("totp secret not opened", err, "admin", name)
	}
	step, ok := totpMatch(secret, code, s.now())
	clear(secret)
	if !ok {
		return s.adminFailure(ctx, a, name, "mfa_invalid")
	}
	var perr *protocol.Error
	err = s.update(ctx, func(tx store.Tx, ob *outbox) error {
		perr = nil
		cur, err := tx.Admin(ctx, name)
		if err != nil {
			return err
		}
		if step <= cur.TOTPLastStep {
			perr = errCodeReplayed
			return nil
		}
		cur.TOTPLastStep, cur.FailedCount, cur.FailedWindowStart, cur.LastSignInAt = step, 0, time.Time{}, ob.now
		return tx.UpdateAdmin(ctx, cur)
	})
	if err != nil {
		return s.internalError("code not recorded", err, "admin", name)
	}
	if perr != nil {
		s.noise(a, "mfa_replayed", "", map[string]string{"admin": name})
	}
	return asErr(perr)
}

// enrolling is a user in an MFA enrolment period.
func enrolling(u store.User) bool { return u.TOTPSecret == nil && !u.MFAEnrollUntil.IsZero() }

func (w webAuth) BeginEnrol(ctx context.Context, kind, name string) (web.Enrolment, error) {
	s := w.s
	if kind == store.SessionUser {
		u, perr := s.loadUser(ctx, name)
		if perr != nil {
			return web.Enrolment{}, perr
		}
		if enrolling(u) {
			// The directory's own enrolment (the one the Mac uses too):
			// its secret is kept sealed in the session to show again.
			k, err := s.BeginMFAEnrollment(ctx, Actor{Kind: ActorUser, Name: name}, name)
			if err != nil {
				return web.Enrolment{}, err
			}
			defer k.Secret.Wipe()
			raw, err := b32.DecodeString(string(k.Secret.Bytes()))
			if err != nil {
				return web.Enrolment{}, s.internalError("totp key not decoded", err)
			}
			defer clear(raw)
			sealed, err := s.keys.seal(pendingLabel(kind, name), raw)
			if err != nil {
				return web.Enrolment{}, s.internalError("totp key not sealed", err)
			}
			return web.Enrolment{URI: k.URI, Secret: protocol.Secret(bytes.Clone(k.Secret.Bytes())), Sealed: sealed}, nil
		}
	}
	issuer := s.cfg.Issuer
	if kind == store.SessionAdmin {
		issuer += " console"
	}
	secret, uri, err := newTOTPKey(issuer, name)
	if err != nil {
		return web.Enrolment{}, s.internalError("totp key not made", err)
	}
	defer clear(secret)
	sealed, err := s.keys.seal(pendingLabel(kind, name), secret)
	if err != nil {
		return web.Enrolment{}, s.internalError("totp key not sealed", err)
	}
	return web.Enrolment{URI: protocol.Secret(uri), Secret: protocol.Secret(b32.EncodeToString(secret)), Sealed: sealed}, nil
}

func (w webAuth) OpenEnrol(ctx context.Context, kind, name string, sealed []byte) (web.Enrolment, error) {
	s := w.s
	secret, err := s.keys.open(pendingLabel(kind, name), sealed)
	if err != nil {
		return web.Enrolment{}, s.internalError("pending totp key not opened", err)
	}
	defer clear(secret)
	issuer := s.cfg.Issuer
	if kind == store.SessionAdmin {
		issuer += " console"
	}
	enc := b32.EncodeToString(secret)
	return web.Enrolment{URI: protocol.Secret(totpURI(issuer, name, enc)), Secret: protocol.Secret(enc), Sealed: sealed}, nil
}

// totpURI is the otpauth:// URI of a secret, as newTOTPKey makes it.
func totpURI(issuer, account, secret string) string {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", issuer)
	v.Set("period", fmt.Sprint(totpPeriod))
	v.Set("algorithm", "SHA1")
	v.Set("digits", fmt.Sprint(protocol.TOTPDigits))
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + issuer + ":" + account, RawQuery: v.Encode()}
	return u.String()
}

func (w webAuth) FinishEnrol(ctx context.Context, kind string, wa web.Actor, name string, sealed []byte, code string) error {
	s := w.s
	secret, err := s.keys.open(pendingLabel(kind, name), sealed)
	if err != nil {
		return s.internalError("pending totp key not opened", err)
	}
	defer clear(secret)
	step, ok := totpMatch(secret, code, s.now())
	a := s.webActor(wa)
	if kind == store.SessionAdmin {
		if !ok {
			return s.adminFailure(ctx, actor{kind: "console", addr: wa.Addr}, name, "mfa_invalid")
		}
		final, err := s.keys.seal(adminTOTPLabel(name), secret)
		if err != nil {
			return s.internalError("totp key not sealed", err)
		}
		err = s.update(ctx, func(tx store.Tx, ob *outbox) error {
			ad, err := tx.Admin(ctx, name)
			if err != nil {
				return err
			}
			ad.TOTPSecret, ad.TOTPLastStep = final, step
			ad.FailedCount, ad.FailedWindowStart, ad.LastSignInAt = 0, time.Time{}, ob.now
			if err := tx.UpdateAdmin(ctx, ad); err != nil {
				return err
			}
			return a.audit(ctx, tx, ob.now, "console_mfa_enrolled", "", map[string]string{"admin": name})
		})
		if err != nil {
			return s.internalError("totp enrolment not stored", err, "admin", name)
		}
		return nil
	}
	if u, perr := s.loadUser(ctx, name); perr == nil && enrolling(u) {
		_, err := s.ConfirmMFAEnrollment(ctx, Actor{Kind: ActorUser, Name: name, Addr: wa.Addr}, name, code)
		return err
	}
	if !ok {
		return s.recordFailure(ctx, actor{kind: "user", name: name, addr: wa.Addr}, name, wrongCode)
	}
	final, err := s.keys.seal(name, secret)
	if err != nil {
		return s.internalError("totp key not sealed", err)
	}
	var perr *protocol.Error
	err = s.update(ctx, func(tx store.Tx, ob *outbox) error {
		perr = nil
		u, err := tx.User(ctx, name)
		if err != nil {
			return err
		}
		if u.TOTPSecret != nil {
			perr = protocol.Errorf(admin.CodeExists, "MFA is already set up; ask IT to reset it to enrol a new authenticator.")
			return nil
		}
		u.TOTPSecret, u.TOTPLastStep = final, step
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		return a.audit(ctx, tx, ob.now, "mfa_enrolled", name, nil)
	})
	if err != nil {
		return s.internalError("totp enrolment not stored", err, "user", name)
	}
	return asErr(perr)
}

func (w webAuth) Principal(ctx context.Context, kind, name string) (web.Principal, error) {
	s := w.s
	if kind == store.SessionAdmin {
		var ad store.Admin
		err := s.st.View(ctx, func(tx store.Tx) error {
			var err error
			ad, err = tx.Admin(ctx, name)
			return err
		})
		if err != nil {
			return web.Principal{}, err
		}
		return web.Principal{Name: ad.Name, Role: ad.Role, TOTP: ad.TOTPSecret != nil, Enrol: ad.TOTPSecret == nil, MustChange: ad.MustChange}, nil
	}
	u, perr := s.loadUser(ctx, name)
	if perr != nil {
		return web.Principal{}, perr
	}
	who := web.Principal{Name: u.Name, TOTP: u.TOTPSecret != nil, MustChange: u.MustChange}
	if enrolling(u) {
		until := u.MFAEnrollUntil
		who.Enrol, who.EnrolUntil = true, &until
	}
	return who, nil
}

func (w webAuth) Session(ctx context.Context, id []byte) (store.Session, error) {
	var out store.Session
	err := w.s.st.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.Session(ctx, id)
		return err
	})
	return out, err
}

func (w webAuth) PutSession(ctx context.Context, sess store.Session) error {
	return w.s.st.Update(ctx, func(tx store.Tx) error { return tx.PutSession(ctx, sess) })
}

func (w webAuth) DeleteSession(ctx context.Context, id []byte) error {
	return w.s.st.Update(ctx, func(tx store.Tx) error { return tx.DeleteSession(ctx, id) })
}

func (w webAuth) Refused(wa web.Actor, event, reason string, detail map[string]string) {
	d := map[string]string{"reason": reason}
	for k, v := range detail {
		d[k] = v
	}
	a := w.s.webActor(wa)
	if wa.Admin == "" && wa.User == "" {
		a = actor{kind: "web", addr: wa.Addr}
	}
	w.s.noise(a, event, wa.User, d)
}

func (w webAuth) Audit(ctx context.Context, wa web.Actor, event, user string, detail map[string]string) {
	w.s.auditAsync(w.s.webActor(wa), event, user, detail)
}
