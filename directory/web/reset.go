package web

import (
	"net/http"
	"net/url"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/protocol"
)

// The forgotten password: a person names their account (or its e-mail
// address) and the directory mails a single-use link that expires; the
// link's page asks for the new password (and, for a user with MFA, a code
// from the authenticator) and spends the link. Every answer to "send me a
// link" is the same, so the page tells nobody which accounts exist.

func (h *Handler) resetRoutes() {
	h.mux.HandleFunc("GET /forgot", func(w http.ResponseWriter, r *http.Request) {
		h.render(w, http.StatusOK, "forgot", page{Title: "Forgot your password?", Area: "portal", CSRF: h.csrf(w, r, nil), Notice: notice(r)})
	})
	h.mux.HandleFunc("POST /forgot", h.anonymous(func(w http.ResponseWriter, r *http.Request, f *form) {
		who := f.get("who")
		base := h.cfg.Portal.BaseURL()
		link := func(token string) string { return base + "/reset?token=" + url.QueryEscape(token) }
		if err := h.cfg.Portal.SendResetLink(r.Context(), Actor{Addr: remoteAddr(r)}, who, link); err != nil {
			msg, _, status := problem(err)
			h.render(w, status, "forgot", page{Title: "Forgot your password?", Area: "portal", CSRF: h.csrf(w, r, nil), Error: msg})
			return
		}
		http.Redirect(w, r, withNotice("/forgot", "reset_sent"), http.StatusSeeOther)
	}))
	h.mux.HandleFunc("GET /reset", func(w http.ResponseWriter, r *http.Request) {
		tok := protocol.Secret(r.URL.Query().Get("token"))
		h.resetPage(w, r, tok, http.StatusOK, nil)
	})
	h.mux.HandleFunc("POST /reset", h.anonymous(func(w http.ResponseWriter, r *http.Request, f *form) {
		tok, next := f.secret("token"), f.secret("new")
		if string(next) != string(f.secret("confirm")) {
			h.resetPage(w, r, tok, 0, protocol.Errorf(protocol.CodeBadRequest, "The new password and its confirmation differ."))
			return
		}
		if err := h.cfg.Portal.RedeemResetLink(r.Context(), Actor{Addr: remoteAddr(r)}, tok, next, f.get("code")); err != nil {
			h.resetPage(w, r, tok, 0, err)
			return
		}
		http.Redirect(w, r, withNotice("/login", "reset_done"), http.StatusSeeOther)
	}))
	h.mux.HandleFunc("POST /reset/check", h.anonymous(func(w http.ResponseWriter, r *http.Request, f *form) {
		info, err := h.cfg.Portal.CheckResetLink(r.Context(), Actor{Addr: remoteAddr(r)}, f.secret("token"))
		if err != nil {
			http.Error(w, "invalid link", http.StatusForbidden)
			return
		}
		pol, err := h.cfg.Portal.Policy(r.Context(), info.User)
		if err != nil {
			http.Error(w, "policy unavailable", http.StatusServiceUnavailable)
			return
		}
		writeChecklist(w, pol, info.User, f.secret("new"))
	}))
}

type resetData struct {
	Token     string
	User      string
	NeedsCode bool
	Rules     []protocol.Rule
	Valid     bool
}

// resetPage shows the link's form, or why the link does not work.
func (h *Handler) resetPage(w http.ResponseWriter, r *http.Request, tok protocol.Secret, status int, actErr error) {
	p := page{Title: "Choose a new password", Area: "portal", CSRF: h.csrf(w, r, nil)}
	info, err := h.cfg.Portal.CheckResetLink(r.Context(), Actor{Addr: remoteAddr(r)}, tok)
	if err != nil {
		p.Data = resetData{}
		h.showError(w, "reset", p, err)
		return
	}
	d := resetData{Token: string(tok), User: info.User, NeedsCode: info.NeedsCode, Valid: true}
	if pol, perr := h.cfg.Portal.Policy(r.Context(), info.User); perr == nil {
		d.Rules = pol.Rules()
	}
	p.Data = d
	if actErr != nil {
		var pe *protocol.Error
		if ok := asProto(actErr, &pe); ok && pe.Code == admin.CodeResetLinkInvalid {
			d.Valid = false
			p.Data = d
		}
		h.showError(w, "reset", p, actErr)
		return
	}
	h.render(w, status, "reset", p)
}

// anonymous serves a POST of someone not signed in: it must come from this
// site with the pre-session CSRF token, and hold no markup.
func (h *Handler) anonymous(fn func(http.ResponseWriter, *http.Request, *form)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := parseForm(r)
		if err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		defer f.wipe()
		if !sameOrigin(r) || !h.checkCSRF(r, f, nil) {
			h.refuse(w, r, portalArea, nil, "web_csrf_refused", "csrf")
			return
		}
		if field := markup(r, f); field != "" {
			h.refuseInput(w, r, portalArea, nil, field)
			return
		}
		fn(w, r, f)
	}
}
