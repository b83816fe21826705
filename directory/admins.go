package directory

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Console administrators: named accounts with an argon2id password and a
// TOTP secret (mandatory: one without it enrols at the next sign-in), and
// a role. They are created and recovered through the admin API, whose
// token is in --data: file access to the data directory is the authority
// for the break-glass path, as it is for every other admin command.

// consoleAdminRoutes adds the administrators and the enrollment tokens'
// list to the admin API.
func (s *Server) consoleAdminRoutes(mux *http.ServeMux) {
	h := func(pattern string, fn func(http.ResponseWriter, *http.Request, actor)) {
		mux.HandleFunc(pattern, s.adminAuth(fn))
	}
	h("POST "+admin.PathAdmins, s.adminAddAdmin)
	h("GET "+admin.PathAdmins, s.adminListAdmins)
	h("DELETE "+admin.PathAdmins+"/{name}", s.adminDeleteAdmin)
	h("POST "+admin.PathAdmins+"/{name}/recover", s.adminRecoverAdmin)
	h("GET "+admin.PathEnrollTokens, s.adminListEnrollTokens)
	h("POST "+admin.PathEnrollTokens+"/{id}/revoke", s.adminRevokeEnrollToken)
}

func validRole(r string) bool {
	return r == store.RoleAdmin || r == store.RoleHelpdesk || r == store.RoleAuditor
}

// adminTOTPLabel binds a console administrator's sealed TOTP secret to
// them, apart from a directory user of the same name.
func adminTOTPLabel(name string) string { return "console admin\x00" + name }

// pendingLabel binds a TOTP secret being enrolled (kept sealed in a
// browser session) to its account.
func pendingLabel(kind, name string) string { return "pending " + kind + "\x00" + name }

func (s *Server) adminView(a store.Admin) admin.Admin {
	out := admin.Admin{Name: a.Name, Role: a.Role, TOTP: a.TOTPSecret != nil, MustChange: a.MustChange, CreatedAt: a.CreatedAt,
		LastSignInAt: timePtr(a.LastSignInAt)}
	if s.adminLocked(a) {
		out.Locked = true
		until := a.LockedUntil
		out.LockedUntil = &until
	}
	return out
}

func (s *Server) adminLocked(a store.Admin) bool {
	return !a.LockedUntil.IsZero() && s.now().Before(a.LockedUntil)
}

func (s *Server) adminAddAdmin(w http.ResponseWriter, r *http.Request, a actor) {
	var req admin.AddAdminRequest
	if e := decodeBody(r, &req); e != nil {
		fail(w, e)
		return
	}
	defer req.Password.Wipe()
	if e := checkName(req.Name); e != nil {
		fail(w, e)
		return
	}
	if req.Role == "" {
		req.Role = store.RoleAdmin
	}
	if !validRole(req.Role) {
		fail(w, protocol.Errorf(protocol.CodeBadRequest, "role must be admin, helpdesk or auditor"))
		return
	}
	if req.Password.Empty() {
		fail(w, protocol.Errorf(protocol.CodeBadRequest, "a password is required"))
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
	secret, uri, err := newTOTPKey(s.cfg.Issuer+" console", req.Name)
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	defer clear(secret)
	sealed, err := s.keys.seal(adminTOTPLabel(req.Name), secret)
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	var out store.Admin
	err = s.update(r.Context(), func(tx store.Tx, ob *outbox) error {
		out = store.Admin{Name: req.Name, Role: req.Role, PasswordHash: hash, TOTPSecret: sealed, CreatedAt: ob.now, PasswordChangedAt: ob.now}
		if err := tx.CreateAdmin(r.Context(), out); err != nil {
			return err
		}
		return a.audit(r.Context(), tx, ob.now, "console_admin_created", "", map[string]string{"admin": req.Name, "role": req.Role})
	})
	if errors.Is(err, store.ErrExists) {
		fail(w, protocol.Errorf(admin.CodeExists, "administrator %q already exists", req.Name))
		return
	}
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	s.log.Info("console administrator created", "admin", req.Name, "role", req.Role)
	writeJSON(w, http.StatusCreated, admin.AdminResponse{Admin: s.adminView(out),
		MFA: &admin.TOTPEnrollment{URI: protocol.Secret(uri), Secret: protocol.Secret(b32.EncodeToString(secret))}})
}

func (s *Server) adminListAdmins(w http.ResponseWriter, r *http.Request, _ actor) {
	out := []admin.Admin{}
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		as, err := tx.Admins(r.Context())
		for _, a := range as {
			out = append(out, s.adminView(a))
		}
		return err
	})
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminDeleteAdmin(w http.ResponseWriter, r *http.Request, a actor) {
	name := r.PathValue("name")
	if a.kind == "admin" && a.name == name {
		fail(w, protocol.Errorf(protocol.CodeBadRequest, "you cannot delete yourself; ask another administrator"))
		return
	}
	err := s.update(r.Context(), func(tx store.Tx, ob *outbox) error {
		if err := tx.DeleteAdmin(r.Context(), name); err != nil {
			return err
		}
		return a.audit(r.Context(), tx, ob.now, "console_admin_deleted", "", map[string]string{"admin": name})
	})
	if errors.Is(err, store.ErrNotFound) {
		fail(w, protocol.Errorf(admin.CodeNotFound, "no administrator %q", name))
		return
	}
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	s.log.Info("console administrator deleted", "admin", name)
	w.WriteHeader(http.StatusNoContent)
}

// adminRecoverAdmin gives an administrator a one-time password and clears
// their TOTP (they enrol again at the next sign-in), lifts their lockout
// and ends their sessions. It is the break-glass path when run with the
// token from --data, and another administrator's reset from the console.
func (s *Server) adminRecoverAdmin(w http.ResponseWriter, r *http.Request, a actor) {
	name := r.PathValue("name")
	if a.kind == "admin" && a.name == name {
		fail(w, protocol.Errorf(protocol.CodeBadRequest, "you cannot reset yourself from the console; ask another administrator, or use admin recover on the server"))
		return
	}
	pw, err := generatePassword(s.Policy(), name)
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	defer clear(pw)
	hash, err := s.hash.Hash(r.Context(), pw)
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	event := "console_admin_recovered"
	if a.name != "" {
		event = "console_admin_reset"
	}
	var out store.Admin
	var ended int
	err = s.update(r.Context(), func(tx store.Tx, ob *outbox) error {
		var err error
		if out, err = tx.Admin(r.Context(), name); err != nil {
			return err
		}
		out.PasswordHash, out.MustChange, out.PasswordChangedAt = hash, true, ob.now
		out.TOTPSecret, out.TOTPLastStep = nil, 0
		out.FailedCount, out.FailedWindowStart, out.LockedUntil = 0, time.Time{}, time.Time{}
		if err := tx.UpdateAdmin(r.Context(), out); err != nil {
			return err
		}
		if ended, err = tx.DeleteSessions(r.Context(), store.SessionAdmin, name); err != nil {
			return err
		}
		return a.audit(r.Context(), tx, ob.now, event, "", map[string]string{"admin": name, "sessions_ended": fmt.Sprint(ended)})
	})
	if errors.Is(err, store.ErrNotFound) {
		fail(w, protocol.Errorf(admin.CodeNotFound, "no administrator %q", name))
		return
	}
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	s.log.Warn("console administrator given a one-time password", "admin", name, "by", a.who(), "sessions_ended", ended)
	writeJSON(w, http.StatusOK, admin.AdminResponse{Admin: s.adminView(out), Password: protocol.Secret(pw)})
}

// tokenID names an enrollment token in the console: a prefix of its hash,
// which tells nothing of the token.
func tokenID(hash []byte) string { return hex.EncodeToString(hash[:min(len(hash), 8)]) }

func (s *Server) adminListEnrollTokens(w http.ResponseWriter, r *http.Request, _ actor) {
	out := []admin.EnrollTokenInfo{}
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		ts, err := tx.EnrollTokens(r.Context())
		for _, t := range ts {
			out = append(out, admin.EnrollTokenInfo{ID: tokenID(t.Hash), Note: t.Note, Users: t.Users, CreatedAt: t.CreatedAt,
				ExpiresAt: t.ExpiresAt, UsedAt: timePtr(t.UsedAt), DeviceID: t.DeviceID, RevokedAt: timePtr(t.RevokedAt)})
		}
		return err
	})
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminRevokeEnrollToken(w http.ResponseWriter, r *http.Request, a actor) {
	id := r.PathValue("id")
	var perr *protocol.Error
	err := s.update(r.Context(), func(tx store.Tx, ob *outbox) error {
		perr = nil
		ts, err := tx.EnrollTokens(r.Context())
		if err != nil {
			return err
		}
		for _, t := range ts {
			if tokenID(t.Hash) != id {
				continue
			}
			switch {
			case !t.UsedAt.IsZero():
				perr = protocol.Errorf(protocol.CodeBadRequest, "the token was already used by device %s: revoke the device instead", t.DeviceID)
				return nil
			case !t.RevokedAt.IsZero():
				return nil
			}
			if err := tx.RevokeEnrollToken(r.Context(), t.Hash, ob.now); err != nil {
				return err
			}
			return a.audit(r.Context(), tx, ob.now, "enroll_token_revoked", "", map[string]string{"token_id": id, "note": t.Note})
		}
		perr = protocol.Errorf(admin.CodeNotFound, "no enrollment token %q", id)
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
	w.WriteHeader(http.StatusNoContent)
}

// signInAdmins counts the administrators with the admin role who can sign
// in now (not locked out): the console warns below two, since a sole
// administrator who loses their authenticator needs the break-glass path.
func (s *Server) signInAdmins(ctx context.Context) (int, error) {
	n := 0
	err := s.st.View(ctx, func(tx store.Tx) error {
		as, err := tx.Admins(ctx)
		for _, a := range as {
			if a.Role == store.RoleAdmin && !s.adminLocked(a) {
				n++
			}
		}
		return err
	})
	return n, err
}
