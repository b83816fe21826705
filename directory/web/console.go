package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Console actions, and which roles may take them. The helpdesk handles
// users (reset, unlock, MFA reset); the auditor reads everything and
// changes nothing.
var permissions = map[string][]string{
	"users.read":        {store.RoleAdmin, store.RoleHelpdesk, store.RoleAuditor},
	"users.reset":       {store.RoleAdmin, store.RoleHelpdesk},
	"users.unlock":      {store.RoleAdmin, store.RoleHelpdesk},
	"users.mfa.reset":   {store.RoleAdmin, store.RoleHelpdesk},
	"users.mfa.enable":  {store.RoleAdmin},
	"users.mfa.disable": {store.RoleAdmin},
	"users.delete":      {store.RoleAdmin},
	"devices.read":      {store.RoleAdmin, store.RoleAuditor},
	"devices.revoke":    {store.RoleAdmin},
	"tokens.read":       {store.RoleAdmin, store.RoleAuditor},
	"tokens.write":      {store.RoleAdmin},
	"policy.read":       {store.RoleAdmin, store.RoleAuditor},
	"policy.write":      {store.RoleAdmin},
	"audit.read":        {store.RoleAdmin, store.RoleAuditor},
	"admins.read":       {store.RoleAdmin, store.RoleAuditor},
	"admins.write":      {store.RoleAdmin},
}

// can reports whether role may take action; an unknown action is refused.
func can(role, action string) bool { return slices.Contains(permissions[action], role) }

func (h *Handler) consoleRoutes() {
	h.authRoutes(consoleArea)
	h.mux.HandleFunc("GET /admin/password", h.staged(consoleArea, store.StagePassword, func(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
		h.render(w, http.StatusOK, "admin-password", h.consolePage(r, s, "Choose your password", ""))
	}))
	h.mux.HandleFunc("POST /admin/password", h.staged(consoleArea, store.StagePassword, func(w http.ResponseWriter, r *http.Request, s *session, f *form) {
		pw, again := f.secret("password"), f.secret("confirm")
		p := h.consolePage(r, s, "Choose your password", "")
		if string(pw) != string(again) {
			p.Error = "The two passwords differ."
			h.render(w, http.StatusUnprocessableEntity, "admin-password", p)
			return
		}
		if err := h.cfg.Console.SetAdminPassword(r.Context(), consoleArea.actor(s, r), pw); err != nil {
			p.Error, p.Violations, _ = problem(err)
			h.render(w, http.StatusUnprocessableEntity, "admin-password", p)
			return
		}
		s.who.MustChange = false
		s.rec.Stage = store.StageDone
		if err := h.save(r.Context(), s); err != nil {
			h.fail(w, r, err)
			return
		}
		h.cfg.Auth.Audit(r.Context(), consoleArea.actor(s, r), "console_signed_in", "", nil)
		http.Redirect(w, r, withNotice("/admin/users", "password_set"), http.StatusSeeOther)
	}))
	h.mux.HandleFunc("GET /admin/{$}", h.console("users.read", func(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
		http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
	}))
	h.mux.HandleFunc("GET /admin/users", h.console("users.read", h.usersPage))
	h.mux.HandleFunc("GET /admin/users/{name}", h.console("users.read", h.userPage))
	h.mux.HandleFunc("POST /admin/users/{name}/reset", h.console("users.reset", h.userReset))
	h.mux.HandleFunc("POST /admin/users/{name}/unlock", h.console("users.unlock", h.userUnlock))
	h.mux.HandleFunc("POST /admin/users/{name}/mfa", h.console("", h.userMFA))
	h.mux.HandleFunc("POST /admin/users/{name}/delete", h.console("users.delete", h.userDelete))
	h.mux.HandleFunc("GET /admin/devices", h.console("devices.read", h.devicesPage))
	h.mux.HandleFunc("POST /admin/devices/{id}/revoke", h.console("devices.revoke", h.deviceRevoke))
	h.mux.HandleFunc("GET /admin/tokens", h.console("tokens.read", h.tokensPage))
	h.mux.HandleFunc("POST /admin/tokens", h.console("tokens.write", h.tokenCreate))
	h.mux.HandleFunc("POST /admin/tokens/{id}/revoke", h.console("tokens.write", h.tokenRevoke))
	h.mux.HandleFunc("GET /admin/policy", h.console("policy.read", h.policyPage))
	h.mux.HandleFunc("POST /admin/policy", h.console("policy.write", h.policySave))
	h.mux.HandleFunc("GET /admin/audit", h.console("audit.read", h.auditPage))
	h.mux.HandleFunc("GET /admin/admins", h.console("admins.read", h.adminsPage))
	h.mux.HandleFunc("POST /admin/admins/{name}/reset", h.console("admins.write", h.adminReset))
	h.mux.HandleFunc("POST /admin/admins/{name}/delete", h.console("admins.write", h.adminDelete))
}

// console serves a console page: a complete session whose role may take
// action ("" lets fn decide); a POST must also come from this site with
// the session's CSRF token. Every refusal is audited.
func (h *Handler) console(action string, fn func(http.ResponseWriter, *http.Request, *session, *form)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, why, err := h.load(r, store.SessionAdmin)
		if err != nil {
			if !errors.Is(err, errNoSession) {
				h.fail(w, r, err)
				return
			}
			if why != "" {
				h.cfg.Auth.Refused(Actor{Addr: remoteAddr(r)}, "web_session_refused", why, map[string]string{"path": r.URL.Path,
					"method": r.Method})
			}
			if r.Method == http.MethodPost {
				h.refuse(w, r, consoleArea, nil, "web_session_refused", "session")
				return
			}
			next := "/admin/login"
			if why != "" {
				next = withNotice(next, "session_ended")
			}
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
		if s.rec.Stage != store.StageDone {
			if r.Method == http.MethodPost {
				h.refuse(w, r, consoleArea, s, "web_session_refused", "session")
				return
			}
			http.Redirect(w, r, consoleArea.stagePath(s.rec.Stage), http.StatusSeeOther)
			return
		}
		var f *form
		if r.Method == http.MethodPost {
			if f, err = parseForm(r); err != nil {
				http.Error(w, "bad form", http.StatusBadRequest)
				return
			}
			defer f.wipe()
			if !sameOrigin(r) || !h.checkCSRF(r, f, s) {
				h.refuse(w, r, consoleArea, s, "web_csrf_refused", "csrf")
				return
			}
			if s.who.Role == store.RoleAuditor {
				h.refuse(w, r, consoleArea, s, "web_forbidden", "role")
				return
			}
		}
		if action != "" && !can(s.who.Role, action) {
			h.refuse(w, r, consoleArea, s, "web_forbidden", "role")
			return
		}
		if field := markup(r, f); field != "" {
			h.refuseInput(w, r, consoleArea, s, field)
			return
		}
		fn(w, r, s, f)
	}
}

// consolePage is a console page's frame for s.
func (h *Handler) consolePage(r *http.Request, s *session, title, nav string) page {
	p := page{Title: title, Area: "console", Nav: nav, Who: &s.who, CSRF: h.csrfFor("session", s.token), Notice: notice(r)}
	role := s.who.Role
	p.can = func(a string) bool { return can(role, a) }
	if s.rec.Stage == store.StageDone && can(role, "admins.read") {
		if n, err := h.cfg.Console.SignInAdmins(r.Context()); err == nil && n < 2 {
			p.Warnings = append(p.Warnings, "Only "+strconv.Itoa(n)+" administrator with the admin role can sign in. Add a second one "+
				"(lockstep-directory admin add NAME --data DIR), so that one who loses their authenticator is not locked out.")
		}
	}
	return p
}

// showError renders page name with err's sentence.
func (h *Handler) showError(w http.ResponseWriter, name string, p page, err error) {
	var status int
	p.Error, p.Violations, status = problem(err)
	h.render(w, status, name, p)
}

type usersData struct {
	Query  string
	Users  []admin.User
	Source Source
}

func (h *Handler) usersPage(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
	p := h.consolePage(r, s, "Users", "users")
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	d := usersData{Query: q, Source: h.cfg.Console.Source()}
	users, err := h.cfg.Console.Users(r.Context())
	if err != nil {
		p.Data = d
		h.showError(w, "users", p, err)
		return
	}
	lq := strings.ToLower(q)
	for _, u := range users {
		if lq == "" || strings.Contains(strings.ToLower(u.Name), lq) || strings.Contains(strings.ToLower(u.DisplayName), lq) {
			d.Users = append(d.Users, u)
		}
	}
	p.Data = d
	h.render(w, http.StatusOK, "users", p)
}

type userData struct {
	User   admin.User
	Source Source
	// Shown once: a generated password, a new TOTP enrolment.
	Password protocol.Secret
	MFA      *admin.TOTPEnrollment
	QR       any
	Policy   protocol.Policy
}

func (h *Handler) userData(r *http.Request, name string) (userData, error) {
	d := userData{Source: h.cfg.Console.Source()}
	var err error
	d.User, err = h.cfg.Console.User(r.Context(), name)
	if err == nil {
		d.Policy, err = h.cfg.Console.Policy(r.Context())
	}
	return d, err
}

func (h *Handler) userPage(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
	p := h.consolePage(r, s, "User "+r.PathValue("name"), "users")
	d, err := h.userData(r, r.PathValue("name"))
	p.Data = d
	if err != nil {
		h.showError(w, "user", p, err)
		return
	}
	h.render(w, http.StatusOK, "user", p)
}

// userAction renders the user's page after an action: err's sentence, or
// the outcome shown once.
func (h *Handler) userAction(w http.ResponseWriter, r *http.Request, s *session, err error, done func(*userData)) {
	name := r.PathValue("name")
	p := h.consolePage(r, s, "User "+name, "users")
	d, rerr := h.userData(r, name)
	if done != nil {
		done(&d)
	}
	p.Data = d
	if err != nil {
		h.showError(w, "user", p, err)
		return
	}
	if rerr != nil {
		h.showError(w, "user", p, rerr)
		return
	}
	h.render(w, http.StatusOK, "user", p)
}

func (h *Handler) userReset(w http.ResponseWriter, r *http.Request, s *session, f *form) {
	name := r.PathValue("name")
	req := admin.ResetRequest{Temporary: f.get("temporary") == "on"}
	if f.get("mode") == "set" {
		req.Password = f.secret("password")
		if len(req.Password) == 0 {
			h.userAction(w, r, s, protocol.Errorf(protocol.CodeBadRequest, "Type the new password, or choose to generate one."), nil)
			return
		}
		if string(req.Password) != string(f.secret("confirm")) {
			h.userAction(w, r, s, protocol.Errorf(protocol.CodeBadRequest, "The two passwords differ."), nil)
			return
		}
	}
	res, err := h.cfg.Console.ResetPassword(r.Context(), consoleArea.actor(s, r), name, req)
	if err != nil {
		h.userAction(w, r, s, err, nil)
		return
	}
	defer res.Password.Wipe()
	if res.Password.Empty() {
		http.Redirect(w, r, withNotice("/admin/users/"+url.PathEscape(name), "reset"), http.StatusSeeOther)
		return
	}
	h.userAction(w, r, s, nil, func(d *userData) { d.Password = res.Password })
}

func (h *Handler) userUnlock(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
	name := r.PathValue("name")
	if _, err := h.cfg.Console.Unlock(r.Context(), consoleArea.actor(s, r), name); err != nil {
		h.userAction(w, r, s, err, nil)
		return
	}
	http.Redirect(w, r, withNotice("/admin/users/"+url.PathEscape(name), "unlocked"), http.StatusSeeOther)
}

func (h *Handler) userMFA(w http.ResponseWriter, r *http.Request, s *session, f *form) {
	name := r.PathValue("name")
	action := f.get("action")
	perm := map[string]string{admin.MFAEnable: "users.mfa.enable", admin.MFADisable: "users.mfa.disable", admin.MFAReset: "users.mfa.reset"}[action]
	if perm == "" {
		h.userAction(w, r, s, protocol.Errorf(protocol.CodeBadRequest, "Choose enable, disable or reset."), nil)
		return
	}
	if !can(s.who.Role, perm) {
		h.refuse(w, r, consoleArea, s, "web_forbidden", "role")
		return
	}
	req := admin.MFARequest{Action: action}
	if v := strings.TrimSpace(f.get("enroll_days")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < protocol.MinEnrollDays || n > protocol.MaxEnrollDays {
			h.userAction(w, r, s, protocol.Errorf(protocol.CodeBadRequest, "The enrolment period is %d to %d days.",
				protocol.MinEnrollDays, protocol.MaxEnrollDays), nil)
			return
		}
		req.EnrollDays = n
	}
	res, err := h.cfg.Console.SetMFA(r.Context(), consoleArea.actor(s, r), name, req)
	if err != nil {
		h.userAction(w, r, s, err, nil)
		return
	}
	if res.MFA == nil {
		done := "mfa_" + action
		if req.EnrollDays > 0 {
			done = "mfa_enroll_set"
		}
		http.Redirect(w, r, withNotice("/admin/users/"+url.PathEscape(name), done), http.StatusSeeOther)
		return
	}
	defer res.MFA.URI.Wipe()
	defer res.MFA.Secret.Wipe()
	qr, qerr := qrSVG(res.MFA.URI.Bytes())
	h.userAction(w, r, s, qerr, func(d *userData) { d.MFA, d.QR = res.MFA, qr })
}

func (h *Handler) userDelete(w http.ResponseWriter, r *http.Request, s *session, f *form) {
	name := r.PathValue("name")
	if f.get("confirm_name") != name {
		h.userAction(w, r, s, protocol.Errorf(protocol.CodeBadRequest, "Type the user's name to confirm the deletion."), nil)
		return
	}
	if err := h.cfg.Console.DeleteUser(r.Context(), consoleArea.actor(s, r), name); err != nil {
		h.userAction(w, r, s, err, nil)
		return
	}
	http.Redirect(w, r, withNotice("/admin/users", "deleted"), http.StatusSeeOther)
}

func (h *Handler) devicesPage(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
	h.devicesRender(w, r, s, nil)
}

func (h *Handler) devicesRender(w http.ResponseWriter, r *http.Request, s *session, actErr error) {
	p := h.consolePage(r, s, "Devices", "devices")
	ds, err := h.cfg.Console.Devices(r.Context())
	p.Data = ds
	if err == nil {
		err = actErr
	}
	if err != nil {
		h.showError(w, "devices", p, err)
		return
	}
	h.render(w, http.StatusOK, "devices", p)
}

func (h *Handler) deviceRevoke(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
	if _, err := h.cfg.Console.RevokeDevice(r.Context(), consoleArea.actor(s, r), r.PathValue("id")); err != nil {
		h.devicesRender(w, r, s, err)
		return
	}
	http.Redirect(w, r, withNotice("/admin/devices", "revoked"), http.StatusSeeOther)
}

type tokensData struct {
	Tokens []admin.EnrollTokenInfo
	// New is the token just created, shown once.
	New     *admin.EnrollToken
	NewNote string
	Form    map[string]string
}

func (h *Handler) tokensRender(w http.ResponseWriter, r *http.Request, s *session, d tokensData, actErr error) {
	p := h.consolePage(r, s, "Enrollment tokens", "tokens")
	var err error
	d.Tokens, err = h.cfg.Console.EnrollTokens(r.Context())
	p.Data = d
	if err == nil {
		err = actErr
	}
	if err != nil {
		h.showError(w, "tokens", p, err)
		return
	}
	h.render(w, http.StatusOK, "tokens", p)
}

func (h *Handler) tokensPage(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
	h.tokensRender(w, r, s, tokensData{}, nil)
}

// tokenLifetimes are the lifetimes the form offers.
var tokenLifetimes = map[string]time.Duration{"1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}

func (h *Handler) tokenCreate(w http.ResponseWriter, r *http.Request, s *session, f *form) {
	d := tokensData{Form: map[string]string{"note": f.get("note"), "users": f.get("users"), "ttl": f.get("ttl")}}
	ttl, ok := tokenLifetimes[f.get("ttl")]
	if !ok {
		h.tokensRender(w, r, s, d, protocol.Errorf(protocol.CodeBadRequest, "Choose how long the token is valid."))
		return
	}
	req := admin.EnrollTokenRequest{TTL: ttl, Note: f.get("note")}
	for _, u := range strings.FieldsFunc(f.get("users"), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' }) {
		req.Users = append(req.Users, u)
	}
	t, err := h.cfg.Console.CreateEnrollToken(r.Context(), consoleArea.actor(s, r), req)
	if err != nil {
		h.tokensRender(w, r, s, d, err)
		return
	}
	defer t.Token.Wipe()
	h.tokensRender(w, r, s, tokensData{New: &t, NewNote: req.Note}, nil)
}

func (h *Handler) tokenRevoke(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
	if err := h.cfg.Console.RevokeEnrollToken(r.Context(), consoleArea.actor(s, r), r.PathValue("id")); err != nil {
		h.tokensRender(w, r, s, tokensData{}, err)
		return
	}
	http.Redirect(w, r, withNotice("/admin/tokens", "token_revoked"), http.StatusSeeOther)
}

type policyData struct {
	Policy   protocol.Policy
	Editable bool
	Source   Source
}

func (h *Handler) policyPage(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
	p := h.consolePage(r, s, "Password policy", "policy")
	pol, err := h.cfg.Console.Policy(r.Context())
	src := h.cfg.Console.Source()
	p.Data = policyData{Policy: pol, Source: src, Editable: src.ManagesPolicy && can(s.who.Role, "policy.write")}
	if err != nil {
		h.showError(w, "policy", p, err)
		return
	}
	h.render(w, http.StatusOK, "policy", p)
}

func (h *Handler) policySave(w http.ResponseWriter, r *http.Request, s *session, f *form) {
	p := h.consolePage(r, s, "Password policy", "policy")
	src := h.cfg.Console.Source()
	pol, err := h.cfg.Console.Policy(r.Context())
	if err != nil {
		h.showError(w, "policy", p, err)
		return
	}
	num := func(name string, dst *int) error {
		v, err := strconv.Atoi(strings.TrimSpace(f.get(name)))
		if err != nil {
			return protocol.Errorf(protocol.CodeBadRequest, "%s must be a whole number.", policyLabels[name])
		}
		*dst = v
		return nil
	}
	for _, n := range []struct {
		name string
		dst  *int
	}{{"min_length", &pol.MinLength}, {"history_count", &pol.HistoryCount}, {"max_age_days", &pol.MaxAgeDays},
		{"expiry_warning_days", &pol.ExpiryWarningDays}} {
		if err := num(n.name, n.dst); err != nil {
			p.Data = policyData{Policy: pol, Source: src, Editable: true}
			h.showError(w, "policy", p, err)
			return
		}
	}
	pol.RequireUpper = f.get("require_upper") == "on"
	pol.RequireLower = f.get("require_lower") == "on"
	pol.RequireDigit = f.get("require_digit") == "on"
	pol.RequireSymbol = f.get("require_symbol") == "on"
	pol.DisallowUsername = f.get("disallow_username") == "on"
	if _, err := h.cfg.Console.SetPolicy(r.Context(), consoleArea.actor(s, r), pol); err != nil {
		p.Data = policyData{Policy: pol, Source: src, Editable: true}
		h.showError(w, "policy", p, err)
		return
	}
	http.Redirect(w, r, withNotice("/admin/policy", "policy"), http.StatusSeeOther)
}

var policyLabels = map[string]string{"min_length": "Minimum length", "history_count": "Passwords remembered",
	"max_age_days": "Maximum age", "expiry_warning_days": "Warning before expiry"}

type auditData struct {
	Filter map[string]string
	Events []admin.AuditEvent
	Limit  int
}

// auditLimit bounds the events one page lists (the newest).
const auditLimit = 500

func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
	p := h.consolePage(r, s, "Audit log", "audit")
	qv := r.URL.Query()
	d := auditData{Filter: map[string]string{}, Limit: auditLimit}
	for _, k := range []string{"user", "admin", "event", "since", "until"} {
		d.Filter[k] = strings.TrimSpace(qv.Get(k))
	}
	q := admin.AuditQuery{User: d.Filter["user"], Event: d.Filter["event"], Limit: auditLimit}
	if a := d.Filter["admin"]; a != "" {
		q.Actor = "admin:" + a
	}
	var bad error
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		v := d.Filter[t.name]
		if v == "" {
			continue
		}
		tm, err := time.Parse("2006-01-02T15:04", v)
		if err != nil {
			tm, err = time.Parse("2006-01-02", v)
		}
		if err != nil {
			bad = protocol.Errorf(protocol.CodeBadRequest, "Give times as YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC).")
			continue
		}
		*t.dst = tm.UTC()
	}
	p.Data = d
	if bad != nil {
		h.showError(w, "audit", p, bad)
		return
	}
	evs, err := h.cfg.Console.Audit(r.Context(), q)
	slices.Reverse(evs) // newest first
	d.Events = evs
	p.Data = d
	if err != nil {
		h.showError(w, "audit", p, err)
		return
	}
	h.render(w, http.StatusOK, "audit", p)
}

type adminsData struct {
	Admins []admin.Admin
	// Reset is the administrator just given a one-time password, shown once.
	Reset    string
	Password protocol.Secret
}

func (h *Handler) adminsRender(w http.ResponseWriter, r *http.Request, s *session, d adminsData, actErr error) {
	p := h.consolePage(r, s, "Administrators", "admins")
	var err error
	d.Admins, err = h.cfg.Console.Admins(r.Context())
	p.Data = d
	if err == nil {
		err = actErr
	}
	if err != nil {
		h.showError(w, "admins", p, err)
		return
	}
	h.render(w, http.StatusOK, "admins", p)
}

func (h *Handler) adminsPage(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
	h.adminsRender(w, r, s, adminsData{}, nil)
}

func (h *Handler) adminReset(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
	name := r.PathValue("name")
	pw, err := h.cfg.Console.ResetAdmin(r.Context(), consoleArea.actor(s, r), name)
	if err != nil {
		h.adminsRender(w, r, s, adminsData{}, err)
		return
	}
	defer pw.Wipe()
	h.adminsRender(w, r, s, adminsData{Reset: name, Password: pw}, nil)
}

func (h *Handler) adminDelete(w http.ResponseWriter, r *http.Request, s *session, f *form) {
	name := r.PathValue("name")
	if f.get("confirm_name") != name {
		h.adminsRender(w, r, s, adminsData{}, protocol.Errorf(protocol.CodeBadRequest, "Type the administrator's name to confirm."))
		return
	}
	if err := h.cfg.Console.DeleteAdmin(r.Context(), consoleArea.actor(s, r), name); err != nil {
		h.adminsRender(w, r, s, adminsData{}, err)
		return
	}
	http.Redirect(w, r, withNotice("/admin/admins", "admin_deleted"), http.StatusSeeOther)
}
