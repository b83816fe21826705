package directory

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

func (s *Server) adminRoutes(mux *http.ServeMux) {
	h := func(pattern string, fn func(http.ResponseWriter, *http.Request, actor)) {
		mux.HandleFunc(pattern, s.adminAuth(fn))
	}
	h("POST "+admin.PathUsers, s.adminAddUser)
	h("GET "+admin.PathUsers, s.adminListUsers)
	h("GET "+admin.PathUsers+"/{name}", s.adminShowUser)
	h("DELETE "+admin.PathUsers+"/{name}", s.adminDeleteUser)
	h("PATCH "+admin.PathUsers+"/{name}", s.adminEditUser)
	h("POST "+admin.PathUsers+"/{name}/reset", s.adminReset)
	h("POST "+admin.PathUsers+"/{name}/unlock", s.adminUnlock)
	h("POST "+admin.PathUsers+"/{name}/mfa", s.adminMFA)
	h("POST "+admin.PathEnrollTokens, s.adminEnrollToken)
	h("GET "+admin.PathDevices, s.adminListDevices)
	h("POST "+admin.PathDevices+"/{id}/revoke", s.adminRevokeDevice)
	h("PUT "+admin.PathDevices+"/{id}/users/{name}", s.adminAssign)
	h("DELETE "+admin.PathDevices+"/{id}/users/{name}", s.adminUnassign)
	h("GET "+admin.PathPolicy, s.adminPolicy)
	h("PUT "+admin.PathPolicy, s.adminSetPolicy)
	h("GET "+admin.PathAudit, s.adminAudit)
	h("GET "+admin.PathStats, func(w http.ResponseWriter, r *http.Request, _ actor) {
		if r.URL.Query().Get("gc") == "1" {
			runtime.GC()
		}
		writeJSON(w, http.StatusOK, s.Stats())
	})
}

// adminAuth checks the bearer token in constant time, within the
// request deadlines.
func (s *Server) adminAuth(fn func(http.ResponseWriter, *http.Request, actor)) http.HandlerFunc {
	return s.withDeadlines(func(w http.ResponseWriter, r *http.Request) {
		a := actor{kind: "admin", addr: remoteAddr(r)}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), s.adminToken) != 1 {
			if ok, wait := s.limits.allowKey(&s.limits.address, "admin:"+a.addr, s.now()); !ok {
				writeError(w, http.StatusTooManyRequests, &protocol.Error{Code: protocol.CodeRateLimited,
					Message: "Too many failed admin calls.", RetryAfter: retrySeconds(wait)})
				return
			}
			s.noise(a, "admin_auth_failed", "", map[string]string{"path": r.URL.Path})
			s.warnEvery("admin:"+a.addr, "admin authentication failed", "addr", a.addr, "path", r.URL.Path)
			writeError(w, http.StatusUnauthorized, protocol.Errorf(protocol.CodeUnauthorized, "a valid admin token is required"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		fn(w, r, a)
	})
}

// decodeBody decodes a JSON request body, which may hold a secret: it is
// read into one buffer of the announced size (io.ReadAll would leave the
// copies it outgrew) and wiped after decoding.
func decodeBody(r *http.Request, v any) *protocol.Error {
	var b []byte
	var err error
	if n := r.ContentLength; n >= 0 && n <= 1<<20 {
		b = make([]byte, n)
		_, err = io.ReadFull(r.Body, b)
	} else {
		b, err = io.ReadAll(r.Body)
	}
	defer clear(b)
	if err != nil {
		return protocol.Errorf(protocol.CodeBadRequest, "reading request: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return protocol.Errorf(protocol.CodeBadRequest, "invalid JSON: %v", err)
	}
	return nil
}

func statusOf(e *protocol.Error) int {
	switch e.Code {
	case protocol.CodeUnknownUser, admin.CodeNotFound:
		return http.StatusNotFound
	case admin.CodeExists, protocol.CodeUnsupported:
		return http.StatusConflict
	case admin.CodeNotPermitted:
		return http.StatusForbidden
	case protocol.CodePolicyViolation, protocol.CodeBadRequest:
		return http.StatusUnprocessableEntity
	case protocol.CodeRateLimited:
		return http.StatusTooManyRequests
	case protocol.CodeInternal:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

func fail(w http.ResponseWriter, e *protocol.Error) { writeError(w, statusOf(e), e) }

// adminFailed is the answer to an admin call the directory could not
// complete; the log says which call and why.
func (s *Server) adminFailed(r *http.Request, err error) *protocol.Error {
	return s.internalError("admin request failed", err, "method", r.Method, "path", r.URL.Path)
}

func checkName(name string) *protocol.Error {
	var probe protocol.GetAccountRequest
	probe.User = name
	if err := probe.Validate(); err != nil {
		return asProtoError(err)
	}
	if strings.ContainsAny(name, "/\\") || strings.TrimSpace(name) != name {
		return protocol.Errorf(protocol.CodeBadRequest, "user names cannot contain slashes or surrounding spaces")
	}
	return nil
}

// adminUser is the admin view of u with its bindings.
func (s *Server) adminUser(ctx context.Context, tx store.Tx, u store.User, withDevices bool) (admin.User, error) {
	sa, err := tx.SourceAccount(ctx, u.Name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return admin.User{}, err
	}
	st := s.accountState(u, sa)
	out := admin.User{Name: u.Name, DisplayName: u.DisplayName, PasswordVersion: u.PasswordVersion,
		PasswordChangedAt: u.PasswordChangedAt, ExpiresAt: st.ExpiresAt, MustChange: u.MustChange, MFA: st.MFA,
		Locked: st.Locked, LockedUntil: st.LockedUntil, FailedAttempts: u.FailedCount, CreatedAt: u.CreatedAt,
		Devices: []admin.Binding{}, Source: s.src.Info().Kind, Email: u.Email, MFAEnrollBy: st.MFAEnrollBy}
	if !withDevices {
		return out, nil
	}
	bs, err := tx.UserBindings(ctx, u.Name)
	if err != nil {
		return out, err
	}
	ps, err := tx.PlaceStates(ctx, u.Name)
	if err != nil {
		return out, err
	}
	for _, b := range bs {
		d, err := tx.Device(ctx, b.DeviceID)
		if err != nil {
			return out, err
		}
		ab := admin.Binding{DeviceID: b.DeviceID, Hostname: d.Hostname, LocalName: b.LocalName,
			SyncedVersion: b.SyncedVersion, SyncedAt: timePtr(b.SyncedAt), LastSeenAt: timePtr(d.LastSeenAt),
			Connected: s.hub.connected(b.DeviceID)}
		for _, p := range ps {
			if p.DeviceID == b.DeviceID {
				ab.Places = append(ab.Places, admin.Place{Place: p.Place, State: p.State, At: p.At, ReportedAt: p.ReportedAt})
			}
		}
		out.Devices = append(out.Devices, ab)
	}
	return out, nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// showUser reads a user for a response.
func (s *Server) showUser(ctx context.Context, name string) (admin.User, *protocol.Error) {
	var out admin.User
	err := s.st.View(ctx, func(tx store.Tx) error {
		u, err := tx.User(ctx, name)
		if err != nil {
			return err
		}
		out, err = s.adminUser(ctx, tx, u, true)
		return err
	})
	if err != nil {
		return out, s.userError("user not read", name, err)
	}
	return out, nil
}

// userError turns a failed store call about the named user into the
// answer: unknown_user when it does not exist, otherwise an internal
// error whose cause is logged with what failed.
func (s *Server) userError(what, name string, err error) *protocol.Error {
	if errors.Is(err, store.ErrNotFound) {
		return protocol.Errorf(protocol.CodeUnknownUser, "no directory user %q", name)
	}
	return s.internalError(what, err, "user", name)
}

// errSourceOwnsUsers refuses creating or deleting users a directory behind
// Lockstep owns.
func (s *Server) errSourceOwnsUsers(what string) *protocol.Error {
	info := s.src.Info()
	return protocol.Errorf(protocol.CodeUnsupported, "%s owns the users: %s them there (Lockstep finds users in scope by "+
		"%s); TOTP, devices and resets are still managed here", info.Name, what, info.UserAttr)
}

func (s *Server) adminAddUser(w http.ResponseWriter, r *http.Request, a actor) {
	if !s.src.Info().ManagesUsers {
		fail(w, s.errSourceOwnsUsers("create"))
		return
	}
	var req admin.AddUserRequest
	if e := decodeBody(r, &req); e != nil {
		fail(w, e)
		return
	}
	defer req.Password.Wipe()
	if e := checkName(req.Name); e != nil {
		fail(w, e)
		return
	}
	if len(req.DisplayName) > protocol.MaxNameLen {
		fail(w, protocol.Errorf(protocol.CodeBadRequest, "display name too long"))
		return
	}
	if req.Password.Empty() {
		fail(w, protocol.Errorf(protocol.CodeBadRequest, "an initial password is required"))
		return
	}
	email, e := checkEmail(req.Email)
	if e != nil {
		fail(w, e)
		return
	}
	if vs := s.Policy().Check(req.Name, req.Password); len(vs) > 0 {
		fail(w, policyError(vs))
		return
	}
	hash, err := s.hash.Hash(r.Context(), req.Password)
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	var mfa *admin.TOTPEnrollment
	var sealed []byte
	if req.MFA {
		secret, uri, err := newTOTPKey(s.cfg.Issuer, req.Name)
		if err != nil {
			fail(w, s.adminFailed(r, err))
			return
		}
		if sealed, err = s.keys.seal(req.Name, secret); err != nil {
			fail(w, s.adminFailed(r, err))
			return
		}
		mfa = &admin.TOTPEnrollment{URI: protocol.Secret(uri), Secret: protocol.Secret(b32.EncodeToString(secret))}
		clear(secret)
	}
	var out admin.User
	var exists bool
	err = s.update(r.Context(), func(tx store.Tx, ob *outbox) error {
		u := store.User{Name: req.Name, DisplayName: req.DisplayName, PasswordHash: hash, PasswordVersion: 1,
			PasswordChangedAt: ob.now, MustChange: req.Temporary, TOTPSecret: sealed, CreatedAt: ob.now, Email: email}
		err := tx.CreateUser(r.Context(), u)
		if errors.Is(err, store.ErrExists) {
			exists = true
			return nil
		}
		if err != nil {
			return err
		}
		if err := tx.AddPasswordHistory(r.Context(), u.Name, hash, ob.now, maxHistory); err != nil {
			return err
		}
		if err := tx.PutSourceAccount(r.Context(), store.SourceAccount{User: u.Name, Stamp: stamp(hash)}); err != nil {
			return err
		}
		if err := a.audit(r.Context(), tx, ob.now, "user_created", u.Name, map[string]string{"mfa": fmt.Sprint(req.MFA), "temporary": fmt.Sprint(req.Temporary)}); err != nil {
			return err
		}
		out, err = s.adminUser(r.Context(), tx, u, true)
		return err
	})
	if exists {
		fail(w, protocol.Errorf(admin.CodeExists, "user %q already exists", req.Name))
		return
	}
	if err != nil {
		fail(w, s.internalError("user not created", err, "user", req.Name))
		return
	}
	s.log.Info("user created", "user", req.Name, "mfa", req.MFA)
	writeJSON(w, http.StatusCreated, admin.UserResponse{User: out, MFA: mfa})
}

func (s *Server) adminListUsers(w http.ResponseWriter, r *http.Request, _ actor) {
	if !s.src.Info().ManagesUsers {
		s.adminListSourceUsers(w, r)
		return
	}
	out := []admin.User{}
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		us, err := tx.Users(r.Context())
		if err != nil {
			return err
		}
		for _, u := range us {
			au, err := s.adminUser(r.Context(), tx, u, false)
			if err != nil {
				return err
			}
			out = append(out, au)
		}
		return nil
	})
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminShowUser(w http.ResponseWriter, r *http.Request, _ actor) {
	s.bg.sync() // include last-seen times
	if !s.src.Info().ManagesUsers {
		u, e := s.showSourceUser(r.Context(), r.PathValue("name"))
		if e != nil {
			fail(w, e)
			return
		}
		writeJSON(w, http.StatusOK, u)
		return
	}
	u, e := s.showUser(r.Context(), r.PathValue("name"))
	if e != nil {
		fail(w, e)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *Server) adminDeleteUser(w http.ResponseWriter, r *http.Request, a actor) {
	if !s.src.Info().ManagesUsers {
		fail(w, s.errSourceOwnsUsers("delete"))
		return
	}
	name := r.PathValue("name")
	err := s.update(r.Context(), func(tx store.Tx, ob *outbox) error {
		if err := tx.DeleteUser(r.Context(), name); err != nil {
			return err
		}
		return a.audit(r.Context(), tx, ob.now, "user_deleted", name, nil)
	})
	if err != nil {
		fail(w, s.userError("user not deleted", name, err))
		return
	}
	s.log.Info("user deleted", "user", name)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminReset(w http.ResponseWriter, r *http.Request, a actor) {
	name := r.PathValue("name")
	var req admin.ResetRequest
	if e := decodeBody(r, &req); e != nil {
		fail(w, e)
		return
	}
	defer req.Password.Wipe()
	acct, e := s.adminAccount(r.Context(), name)
	if e != nil {
		fail(w, e)
		return
	}
	generated := req.Password.Empty()
	pw := []byte(req.Password)
	if generated {
		var err error
		if pw, err = generatePassword(s.userPolicy(acct), name); err != nil {
			fail(w, s.adminFailed(r, err))
			return
		}
		defer clear(pw)
	}
	var out admin.User
	_, err := s.src.Reset(r.Context(), name, pw, req.Temporary, source.Hooks{Commit: func(ctx context.Context, acct source.Account) error {
		return s.inTx(ctx, func(tx store.Tx, ob *outbox) error {
			cur, err := tx.User(ctx, name)
			if err != nil {
				return err
			}
			// A reset ends strangers' blocks on linking, and the hub's own
			// lock: the user has a new password to try.
			if cur.LinkFailedCount != 0 || !cur.LinkLockedUntil.IsZero() || (s.src.Info().External && !cur.LockedUntil.IsZero()) {
				cur.LinkFailedCount, cur.LinkFailedWindowStart, cur.LinkLockedUntil = 0, time.Time{}, time.Time{}
				if s.src.Info().External {
					cur.LockedUntil = time.Time{}
					cur.MFAFailedCount, cur.MFAFailedWindowStart = 0, time.Time{}
				}
				if err := tx.UpdateUser(ctx, cur); err != nil {
					return err
				}
			}
			st, err := s.observe(ctx, tx, ob, acct, cause{set: true})
			if err != nil {
				return err
			}
			if err := a.audit(ctx, tx, ob.now, "password_reset", name, map[string]string{"temporary": fmt.Sprint(req.Temporary),
				"generated": fmt.Sprint(generated), "password_version": fmt.Sprint(st.PasswordVersion)}); err != nil {
				return err
			}
			cur, err = tx.User(ctx, name)
			if err != nil {
				return err
			}
			out, err = s.adminUser(ctx, tx, cur, true)
			return err
		})
	}})
	if err != nil {
		fail(w, s.adminSourceError(r, "password reset failed", name, err))
		return
	}
	s.log.Info("password reset", "user", name, "temporary", req.Temporary, "password_version", out.PasswordVersion)
	resp := admin.UserResponse{User: out}
	if generated {
		resp.Password = protocol.Secret(pw)
	}
	writeJSON(w, http.StatusOK, resp)
}

// adminAccount reads, for an administrator's action, the source's account
// of name, making the hub's record of it when there is none yet.
func (s *Server) adminAccount(ctx context.Context, name string) (source.Account, *protocol.Error) {
	acct, err := s.src.Account(ctx, name)
	if errors.Is(err, source.ErrUnknownUser) {
		return acct, protocol.Errorf(protocol.CodeUnknownUser, "no directory user %q", name)
	}
	if err != nil {
		return acct, s.internalError("the directory could not read the user", err, "user", name)
	}
	s.notePolicy(acct)
	return acct, s.ensure(ctx, acct)
}

// adminSourceError turns a source's refusal of an administrator's action
// into the answer, saying clearly what the bind account may not do.
func (s *Server) adminSourceError(r *http.Request, what, name string, err error) *protocol.Error {
	var pe *protocol.Error
	var pol *source.PolicyError
	var np *source.NotPermittedError
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, source.ErrUnknownUser), errors.Is(err, store.ErrNotFound):
		return protocol.Errorf(protocol.CodeUnknownUser, "no directory user %q", name)
	case errors.As(err, &pol):
		return policyError(pol.Violations)
	case errors.As(err, &np):
		s.log.Warn("directory refused an action to lockstep's account", "user", name, "action", np.Action)
		name := s.src.Info().Name
		return protocol.Errorf(admin.CodeNotPermitted, "%s refused: Lockstep's bind account may not %s. Grant it %s (see the README's "+
			"%s set-up), or do it in %s's own tools.", name, np.Action, np.Need, name, name)
	}
	return s.internalError(what, err, "method", r.Method, "path", r.URL.Path, "user", name)
}

func (s *Server) adminUnlock(w http.ResponseWriter, r *http.Request, a actor) {
	name := r.PathValue("name")
	if _, e := s.adminAccount(r.Context(), name); e != nil {
		fail(w, e)
		return
	}
	var out admin.User
	_, err := s.src.Unlock(r.Context(), name, source.Hooks{Commit: func(ctx context.Context, acct source.Account) error {
		return s.inTx(ctx, func(tx store.Tx, ob *outbox) error {
			u, err := tx.User(ctx, name)
			if err != nil {
				return err
			}
			sa, err := tx.SourceAccount(ctx, name)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			wasLocked := s.locked(u) || (sa.Locked && (sa.LockedUntil.IsZero() || sa.LockedUntil.After(ob.now)))
			u.LockedUntil, u.FailedCount, u.FailedWindowStart = time.Time{}, 0, time.Time{}
			u.MFAFailedCount, u.MFAFailedWindowStart = 0, time.Time{}
			u.LinkLockedUntil, u.LinkFailedCount, u.LinkFailedWindowStart = time.Time{}, 0, time.Time{}
			if err := tx.UpdateUser(ctx, u); err != nil {
				return err
			}
			if _, err := s.observe(ctx, tx, ob, acct, cause{}); err != nil {
				return err
			}
			if err := a.audit(ctx, tx, ob.now, "account_unlocked", name, map[string]string{"was_locked": fmt.Sprint(wasLocked)}); err != nil {
				return err
			}
			if u, err = tx.User(ctx, name); err != nil {
				return err
			}
			out, err = s.adminUser(ctx, tx, u, true)
			return err
		})
	}})
	if err != nil {
		fail(w, s.adminSourceError(r, "account not unlocked", name, err))
		return
	}
	s.log.Info("account unlocked", "user", name)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminMFA(w http.ResponseWriter, r *http.Request, a actor) {
	var req admin.MFARequest
	if e := decodeBody(r, &req); e != nil {
		fail(w, e)
		return
	}
	res, e := s.setMFA(r.Context(), a, r.PathValue("name"), req)
	if e != nil {
		fail(w, e)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) adminEnrollToken(w http.ResponseWriter, r *http.Request, a actor) {
	var req admin.EnrollTokenRequest
	if e := decodeBody(r, &req); e != nil {
		fail(w, e)
		return
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = s.cfg.EnrollTokenTTL
	}
	if ttl < 0 || ttl > 30*24*time.Hour {
		fail(w, protocol.Errorf(protocol.CodeBadRequest, "ttl must be between 0 and 30 days"))
		return
	}
	if len(req.Note) > 256 {
		fail(w, protocol.Errorf(protocol.CodeBadRequest, "note too long"))
		return
	}
	if len(req.Users) > 64 {
		fail(w, protocol.Errorf(protocol.CodeBadRequest, "at most 64 users per token"))
		return
	}
	for _, u := range req.Users {
		if checkName(u) != nil {
			continue // refused below as unknown
		}
		if e := s.ensureName(r.Context(), u); e != nil && e.Code != protocol.CodeUnknownUser {
			fail(w, e)
			return
		}
	}
	tok := []byte("lst_" + b64url.EncodeToString(randBytes(32)))
	sum := sha256Sum(tok)
	var exp time.Time
	var missing string
	err := s.update(r.Context(), func(tx store.Tx, ob *outbox) error {
		missing = ""
		for _, u := range req.Users {
			if _, err := tx.User(r.Context(), u); errors.Is(err, store.ErrNotFound) {
				missing = u
				return nil
			} else if err != nil {
				return err
			}
		}
		exp = ob.now.Add(ttl)
		if err := tx.CreateEnrollToken(r.Context(), store.EnrollToken{Hash: sum, Note: req.Note, CreatedAt: ob.now, ExpiresAt: exp,
			Users: req.Users}); err != nil {
			return err
		}
		return a.audit(r.Context(), tx, ob.now, "enroll_token_created", "", map[string]string{"note": req.Note,
			"expires_at": exp.Format(time.RFC3339), "users": strings.Join(req.Users, ",")})
	})
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	if missing != "" {
		fail(w, protocol.Errorf(protocol.CodeUnknownUser, "no directory user %q", missing))
		return
	}
	writeJSON(w, http.StatusCreated, admin.EnrollToken{Token: tok, ExpiresAt: exp})
}

func (s *Server) adminPolicy(w http.ResponseWriter, r *http.Request, _ actor) {
	writeJSON(w, http.StatusOK, s.Policy())
}

func (s *Server) adminSetPolicy(w http.ResponseWriter, r *http.Request, a actor) {
	if s.src.Info().ExtraRules {
		s.setExtraRules(w, r, a)
		return
	}
	if !s.src.Info().ManagesPolicy {
		fail(w, protocol.Errorf(protocol.CodeUnsupported, "the password policy is %s's own (its domain policy and fine-grained "+
			"password settings): change it there; Macs hear of it at once", s.src.Info().Name))
		return
	}
	var p protocol.Policy
	if e := decodeBody(r, &p); e != nil {
		fail(w, e)
		return
	}
	if err := p.Validate(); err != nil {
		fail(w, protocol.Errorf(protocol.CodeBadRequest, "%v", err))
		return
	}
	body, err := json.Marshal(protocol.PolicyChanged{Policy: p})
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	err = s.update(r.Context(), func(tx store.Tx, ob *outbox) error {
		if err := tx.SetPolicy(r.Context(), p); err != nil {
			return err
		}
		pb, _ := json.Marshal(p)
		if err := a.audit(r.Context(), tx, ob.now, "policy_changed", "", map[string]string{"policy": string(pb)}); err != nil {
			return err
		}
		devs, err := tx.Devices(r.Context())
		if err != nil {
			return err
		}
		for _, d := range devs {
			if !d.RevokedAt.IsZero() {
				continue // it will never connect again
			}
			if err := ob.addRaw(r.Context(), tx, d.ID, protocol.TypePolicyChanged, body); err != nil {
				return err
			}
		}
		// Publish the new policy before the pushes go out.
		s.policy.Store(&p)
		return nil
	})
	if err != nil {
		_ = s.loadPolicyView(r.Context())
		fail(w, s.adminFailed(r, err))
		return
	}
	s.log.Info("policy changed")
	writeJSON(w, http.StatusOK, p)
}

// reloadPolicy re-reads the stored policy after another replica set it.
func (s *Server) reloadPolicy(ctx context.Context) error {
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	return s.loadPolicyView(ctx)
}

// loadPolicyView re-reads the stored policy (after a failed set); the
// caller holds policyMu.
func (s *Server) loadPolicyView(ctx context.Context) error {
	if !s.src.Info().ManagesPolicy {
		// The source's own policy, with Lockstep's rules on top where it
		// takes them (another replica may have changed those).
		if s.src.Info().ExtraRules {
			if err := s.st.View(ctx, func(tx store.Tx) error { return s.loadExtraRules(ctx, tx) }); err != nil {
				return err
			}
		}
		return s.loadSourcePolicy(ctx)
	}
	return s.st.View(ctx, func(tx store.Tx) error {
		p, err := tx.Policy(ctx)
		if err == nil {
			s.policy.Store(&p)
		}
		return err
	})
}

func (s *Server) adminAudit(w http.ResponseWriter, r *http.Request, _ actor) {
	q := r.URL.Query()
	f := store.AuditFilter{User: q.Get("user"), Actor: q.Get("actor"), Event: q.Get("event")}
	for _, b := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(b.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				fail(w, protocol.Errorf(protocol.CodeBadRequest, "%s must be an RFC 3339 time", b.name))
				return
			}
			*b.dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			fail(w, protocol.Errorf(protocol.CodeBadRequest, "limit must be between 1 and 100000"))
			return
		}
		f.Limit = n
	}
	s.bg.sync() // include batched events
	var evs []store.AuditEvent
	if err := s.st.View(r.Context(), func(tx store.Tx) error {
		var err error
		evs, err = tx.AuditEvents(r.Context(), f)
		return err
	}); err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	out := make([]admin.AuditEvent, 0, len(evs))
	for _, e := range evs {
		out = append(out, admin.AuditEvent(e))
	}
	writeJSON(w, http.StatusOK, out)
}

// adminListDevices lists every enrolled device with the users bound to it.
func (s *Server) adminListDevices(w http.ResponseWriter, r *http.Request, _ actor) {
	s.bg.sync() // include last-seen times and addresses
	out := []admin.Device{}
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		ds, err := tx.Devices(r.Context())
		if err != nil {
			return err
		}
		bs, err := tx.Bindings(r.Context())
		if err != nil {
			return err
		}
		users := map[string][]admin.DeviceUser{}
		for _, b := range bs {
			users[b.DeviceID] = append(users[b.DeviceID], admin.DeviceUser{User: b.User, LocalName: b.LocalName, BoundBy: b.BoundBy,
				BoundAt: b.BoundAt})
		}
		for _, d := range ds {
			out = append(out, s.adminDevice(d, users[d.ID]))
		}
		return nil
	})
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminDevice(d store.Device, users []admin.DeviceUser) admin.Device {
	if users == nil {
		users = []admin.DeviceUser{}
	}
	return admin.Device{ID: d.ID, Hostname: d.Hostname, Note: d.Note, Users: users, EnrolledAt: d.CreatedAt,
		LastSeenAt: timePtr(d.LastSeenAt), LastAddr: d.LastAddr, RevokedAt: timePtr(d.RevokedAt), Connected: s.hub.connected(d.ID)}
}

// deviceError turns a failed store call about a device into the answer.
func (s *Server) deviceError(r *http.Request, id string, err error) *protocol.Error {
	if errors.Is(err, store.ErrNotFound) {
		return protocol.Errorf(admin.CodeNotFound, "no device %q", id)
	}
	return s.adminFailed(r, err)
}

// adminRevokeDevice revokes a device: its bindings and stored pushes go,
// its open connection is closed at once (on whichever replica holds it)
// with protocol.CloseRevoked, and its key is refused from then on.
func (s *Server) adminRevokeDevice(w http.ResponseWriter, r *http.Request, a actor) {
	id := r.PathValue("id")
	var out admin.Device
	var already bool
	err := s.update(r.Context(), func(tx store.Tx, ob *outbox) error {
		d, err := tx.Device(r.Context(), id)
		if err != nil {
			return err
		}
		if already = !d.RevokedAt.IsZero(); already {
			out = s.adminDevice(d, nil)
			return nil
		}
		bs, err := tx.DeviceBindings(r.Context(), id)
		if err != nil {
			return err
		}
		var users []string
		for _, b := range bs {
			users = append(users, b.User)
		}
		if err := tx.RevokeDevice(r.Context(), id, ob.now); err != nil {
			return err
		}
		d.RevokedAt = ob.now
		out = s.adminDevice(d, nil)
		return a.audit(r.Context(), tx, ob.now, "device_revoked", "", map[string]string{"device_id": id, "hostname": d.Hostname,
			"users": strings.Join(users, ",")})
	})
	if err != nil {
		fail(w, s.deviceError(r, id, err))
		return
	}
	if s.hub.closeDevice(id, protocol.CloseRevoked, "device revoked") {
		out.Connected = false
	}
	if !already {
		s.log.Info("device revoked", "device_id", id)
	}
	writeJSON(w, http.StatusOK, out)
}

// adminAssign binds a user to a device: the device may then read the
// user's state and receives the user's pushes.
func (s *Server) adminAssign(w http.ResponseWriter, r *http.Request, a actor) {
	s.assign(w, r, a, true)
}

// adminUnassign removes a binding: the device no longer hears of the user.
func (s *Server) adminUnassign(w http.ResponseWriter, r *http.Request, a actor) {
	s.assign(w, r, a, false)
}

func (s *Server) assign(w http.ResponseWriter, r *http.Request, a actor, bind bool) {
	id, name := r.PathValue("id"), r.PathValue("name")
	if bind {
		if e := s.ensureName(r.Context(), name); e != nil && e.Code != protocol.CodeUnknownUser {
			fail(w, e)
			return
		}
	}
	var out admin.Device
	var perr *protocol.Error
	err := s.update(r.Context(), func(tx store.Tx, ob *outbox) error {
		perr = nil
		d, err := tx.Device(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			perr = protocol.Errorf(admin.CodeNotFound, "no device %q", id)
			return nil
		} else if err != nil {
			return err
		}
		if _, err := tx.User(r.Context(), name); errors.Is(err, store.ErrNotFound) {
			perr = protocol.Errorf(protocol.CodeUnknownUser, "no directory user %q", name)
			return nil
		} else if err != nil {
			return err
		}
		if !d.RevokedAt.IsZero() {
			perr = protocol.Errorf(protocol.CodeBadRequest, "device %q is revoked", id)
			return nil
		}
		event := "device_assigned"
		if bind {
			// An existing binding keeps its local name and how it was made.
			if _, err = tx.Binding(r.Context(), id, name); errors.Is(err, store.ErrNotFound) {
				err = tx.Bind(r.Context(), store.Binding{DeviceID: id, User: name, LocalName: name, BoundAt: ob.now, BoundBy: store.BoundByAdmin})
			}
		} else {
			event = "device_unassigned"
			if err = tx.Unbind(r.Context(), id, name); errors.Is(err, store.ErrNotFound) {
				perr = protocol.Errorf(admin.CodeNotFound, "user %q is not assigned to device %q", name, id)
				return nil
			}
		}
		if err != nil {
			return err
		}
		if err := a.audit(r.Context(), tx, ob.now, event, name, map[string]string{"device_id": id}); err != nil {
			return err
		}
		bs, err := tx.DeviceBindings(r.Context(), id)
		if err != nil {
			return err
		}
		var users []admin.DeviceUser
		for _, b := range bs {
			users = append(users, admin.DeviceUser{User: b.User, LocalName: b.LocalName, BoundBy: b.BoundBy, BoundAt: b.BoundAt})
		}
		out = s.adminDevice(d, users)
		return nil
	})
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	if perr != nil {
		fail(w, perr)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
