package web

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/lockstep-dev/lockstep/directory/store"
)

// Signing in, for both areas: the password, then a code (or, without a
// TOTP secret yet, an enrolment), then a new password when the one given
// was one-time or temporary. Each step is a stage of the session; only a
// session at StageDone reaches the pages.

// area is what differs between the console and the portal's sign-in.
type area struct {
	kind   string // store.SessionAdmin or store.SessionUser
	prefix string // "/admin/" or "/"
	name   string // "console" or "portal"
}

var (
	consoleArea = area{kind: store.SessionAdmin, prefix: "/admin/", name: "console"}
	portalArea  = area{kind: store.SessionUser, prefix: "/", name: "portal"}
)

func (a area) actor(s *session, r *http.Request) Actor {
	if a.kind == store.SessionAdmin {
		return Actor{Admin: s.who.Name, Addr: remoteAddr(r)}
	}
	return Actor{User: s.who.Name, Addr: remoteAddr(r)}
}

// stagePath is where a session at stage goes next.
func (a area) stagePath(stage string) string {
	switch stage {
	case store.StageTOTP:
		return a.prefix + "login/code"
	case store.StageEnrol:
		return a.prefix + "enrol"
	case store.StagePassword:
		return a.prefix + "password"
	}
	return a.prefix
}

func (h *Handler) authRoutes(a area) {
	h.mux.HandleFunc("GET "+a.prefix+"login", func(w http.ResponseWriter, r *http.Request) {
		if s, _, err := h.load(r, a.kind); err == nil {
			http.Redirect(w, r, a.stagePath(s.rec.Stage), http.StatusSeeOther)
			return
		}
		h.render(w, http.StatusOK, a.name+"-login", page{Title: "Sign in", Area: a.name, CSRF: h.csrf(w, r, nil), Notice: notice(r)})
	})
	h.mux.HandleFunc("POST "+a.prefix+"login", func(w http.ResponseWriter, r *http.Request) { h.signIn(w, r, a) })
	h.mux.HandleFunc("GET "+a.prefix+"login/code", h.staged(a, store.StageTOTP, func(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
		h.render(w, http.StatusOK, "code", page{Title: "Verification code", Area: a.name, CSRF: h.csrf(w, r, s), Who: &s.who})
	}))
	h.mux.HandleFunc("POST "+a.prefix+"login/code", h.staged(a, store.StageTOTP, func(w http.ResponseWriter, r *http.Request, s *session, f *form) {
		if err := h.cfg.Auth.CheckCode(r.Context(), a.kind, remoteAddr(r), s.who.Name, f.get("code")); err != nil {
			msg, _, status := problem(err)
			h.render(w, status, "code", page{Title: "Verification code", Area: a.name, CSRF: h.csrf(w, r, s), Who: &s.who, Error: msg})
			return
		}
		h.advance(w, r, a, s)
	}))
	h.mux.HandleFunc("GET "+a.prefix+"enrol", h.staged(a, store.StageEnrol, func(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
		h.enrolPage(w, r, a, s, http.StatusOK, "")
	}))
	h.mux.HandleFunc("POST "+a.prefix+"enrol", h.staged(a, store.StageEnrol, func(w http.ResponseWriter, r *http.Request, s *session, f *form) {
		if len(s.rec.Pending) == 0 {
			http.Redirect(w, r, a.prefix+"enrol", http.StatusSeeOther)
			return
		}
		err := h.cfg.Auth.FinishEnrol(r.Context(), a.kind, a.actor(s, r), s.who.Name, s.rec.Pending, f.get("code"))
		if err != nil {
			msg, _, status := problem(err)
			h.enrolPage(w, r, a, s, status, msg)
			return
		}
		s.rec.Pending = nil
		h.advance(w, r, a, s)
	}))
	h.mux.HandleFunc("POST "+a.prefix+"logout", func(w http.ResponseWriter, r *http.Request) {
		s, _, err := h.load(r, a.kind)
		f, ferr := parseForm(r)
		if ferr == nil {
			defer f.wipe()
		}
		if err != nil || ferr != nil || !sameOrigin(r) || !h.checkCSRF(r, f, s) {
			h.refuse(w, r, a, s, "web_csrf_refused", "csrf")
			return
		}
		h.cfg.Auth.Audit(r.Context(), a.actor(s, r), a.name+"_signed_out", userOf(a, s), nil)
		h.end(w, r, s)
		http.Redirect(w, r, a.prefix+"login?notice=signed_out", http.StatusSeeOther)
	})
}

func userOf(a area, s *session) string {
	if a.kind == store.SessionUser && s != nil {
		return s.who.Name
	}
	return ""
}

func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, a area) {
	f, err := parseForm(r)
	if err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	defer f.wipe()
	if !sameOrigin(r) || !h.checkCSRF(r, f, nil) {
		h.refuse(w, r, a, nil, "web_csrf_refused", "csrf")
		return
	}
	if field := markup(r, f); field != "" {
		h.refuseInput(w, r, a, nil, field)
		return
	}
	name := f.get("name")
	who, err := h.cfg.Auth.SignIn(r.Context(), a.kind, remoteAddr(r), name, f.secret("password"))
	if err != nil {
		msg, _, status := problem(err)
		h.render(w, status, a.name+"-login", page{Title: "Sign in", Area: a.name, CSRF: h.csrf(w, r, nil), Error: msg,
			Data: map[string]string{"Name": name}})
		return
	}
	stage := store.StageDone
	switch {
	case who.Enrol:
		stage = store.StageEnrol
	case who.TOTP:
		stage = store.StageTOTP
	case who.MustChange:
		stage = store.StagePassword
	}
	s, err := h.start(w, r, a.kind, who, stage)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if stage == store.StageDone {
		h.cfg.Auth.Audit(r.Context(), a.actor(s, r), a.name+"_signed_in", userOf(a, s), nil)
	}
	http.Redirect(w, r, a.stagePath(stage), http.StatusSeeOther)
}

// advance moves a session past a second factor or an enrolment.
func (h *Handler) advance(w http.ResponseWriter, r *http.Request, a area, s *session) {
	s.rec.Stage = store.StageDone
	if s.who.MustChange {
		s.rec.Stage = store.StagePassword
	}
	if err := h.save(r.Context(), s); err != nil {
		h.fail(w, r, err)
		return
	}
	if s.rec.Stage == store.StageDone {
		h.cfg.Auth.Audit(r.Context(), a.actor(s, r), a.name+"_signed_in", userOf(a, s), nil)
	}
	http.Redirect(w, r, a.stagePath(s.rec.Stage), http.StatusSeeOther)
}

func (h *Handler) enrolPage(w http.ResponseWriter, r *http.Request, a area, s *session, status int, msg string) {
	ctx := r.Context()
	var e Enrolment
	var err error
	if len(s.rec.Pending) == 0 {
		if e, err = h.cfg.Auth.BeginEnrol(ctx, a.kind, s.who.Name); err == nil {
			s.rec.Pending = e.Sealed
			err = h.save(ctx, s)
		}
	} else {
		e, err = h.cfg.Auth.OpenEnrol(ctx, a.kind, s.who.Name, s.rec.Pending)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer e.URI.Wipe()
	defer e.Secret.Wipe()
	qr, err := qrSVG(e.URI.Bytes())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, status, "enrol", page{Title: "Set up your authenticator", Area: a.name, CSRF: h.csrf(w, r, s), Who: &s.who, Error: msg,
		Data: enrolData{QR: qr, Secret: groupSecret(string(e.Secret.Bytes())), Until: s.who.EnrolUntil}})
}

// staged serves a sign-in step: the session must be at stage.
func (h *Handler) staged(a area, stage string, fn func(http.ResponseWriter, *http.Request, *session, *form)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, why, err := h.load(r, a.kind)
		if err != nil {
			if !errors.Is(err, errNoSession) {
				h.fail(w, r, err)
				return
			}
			if why != "" {
				h.cfg.Auth.Refused(Actor{Addr: remoteAddr(r)}, "web_session_refused", why, map[string]string{"path": r.URL.Path})
			}
			http.Redirect(w, r, a.prefix+"login", http.StatusSeeOther)
			return
		}
		if s.rec.Stage != stage {
			http.Redirect(w, r, a.stagePath(s.rec.Stage), http.StatusSeeOther)
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
				h.refuse(w, r, a, s, "web_csrf_refused", "csrf")
				return
			}
		}
		if field := markup(r, f); field != "" {
			h.refuseInput(w, r, a, s, field)
			return
		}
		fn(w, r, s, f)
	}
}

// refuse answers a request the pages will not serve, and audits it.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, a area, s *session, event, reason string) {
	act := Actor{Addr: remoteAddr(r)}
	if s != nil {
		act = a.actor(s, r)
	}
	h.cfg.Auth.Refused(act, event, reason, map[string]string{"path": r.URL.Path, "method": r.Method})
	msg := "This form has expired or did not come from this site. Go back, reload the page and try again."
	switch reason {
	case "role":
		msg = "Your role does not allow this."
	case "session":
		msg = "Your session has ended. Sign in again."
	}
	h.render(w, http.StatusForbidden, "refused", page{Title: "Refused", Area: a.name, Error: msg, Data: map[string]string{"Login": a.prefix + "login"}})
}

// refuseInput answers a form or query with markup in field, and audits it.
func (h *Handler) refuseInput(w http.ResponseWriter, r *http.Request, a area, s *session, field string) {
	act := Actor{Addr: remoteAddr(r)}
	if s != nil {
		act = a.actor(s, r)
	}
	h.cfg.Auth.Refused(act, "web_input_refused", "markup", map[string]string{"path": r.URL.Path, "field": field})
	p := page{Title: "Refused", Area: a.name, Error: "A field held < or >, which no name, note or search needs. Go back and remove them.",
		Data: map[string]string{"Login": a.prefix}}
	if s != nil {
		p.Who, p.CSRF = &s.who, h.csrfFor("session", s.token)
	}
	h.render(w, http.StatusBadRequest, "refused", p)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.cfg.Log.Error("web request failed", "path", r.URL.Path, "err", err)
	h.render(w, http.StatusInternalServerError, "refused", page{Title: "Error", Error: "Something went wrong; try again."})
}

// notices are the sentences a redirect after an action may show; a query
// names one by code, so no page ever echoes what the URL says.
var notices = map[string]string{
	"signed_out":     "You are signed out.",
	"unlocked":       "The account is unlocked.",
	"reset":          "The password is reset. The user's Macs were told at once.",
	"mfa_disable":    "MFA is off for this user.",
	"deleted":        "The user is deleted.",
	"revoked":        "The device is revoked: its connection was closed and its key is refused.",
	"token_revoked":  "The enrollment token is revoked.",
	"policy":         "The policy is saved. Every Mac was told at once.",
	"admin_deleted":  "The administrator is deleted.",
	"changed":        "Your password is changed. Your Macs were told: each asks you to sync.",
	"enrolled":       "Your authenticator is set up.",
	"password_set":   "Your password is set.",
	"reset_sent":     "If that address belongs to an account, a reset link is on its way. It works once, for a short time.",
	"reset_done":     "Your password is reset. Sign in with it; your Macs ask you to sync.",
	"session_ended":  "Your session has ended. Sign in again.",
	"mfa_enroll_set": "MFA is reset with an enrolment period: the user sets up their authenticator from their Mac or the account page.",
}

func notice(r *http.Request) string { return notices[r.URL.Query().Get("notice")] }

func withNotice(path, code string) string { return path + "?notice=" + url.QueryEscape(code) }
