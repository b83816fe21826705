package web

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

func (h *Handler) portalRoutes() {
	h.authRoutes(portalArea)
	h.resetRoutes()
	h.mux.HandleFunc("GET /{$}", h.portal(h.homePage))
	h.mux.HandleFunc("GET /password", h.portalOrStage(h.passwordPage))
	h.mux.HandleFunc("POST /password", h.portalOrStage(h.passwordChange))
	h.mux.HandleFunc("POST /password/check", h.portalOrStage(h.passwordCheck))
	h.mux.HandleFunc("GET /mfa", h.portal(func(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
		// Setting up MFA from the portal: a user without it may turn it on.
		if s.who.TOTP {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		s.rec.Stage = store.StageEnrol
		if err := h.save(r.Context(), s); err != nil {
			h.fail(w, r, err)
			return
		}
		http.Redirect(w, r, "/enrol", http.StatusSeeOther)
	}))
	// Anything else is not a page.
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.render(w, http.StatusNotFound, "refused", page{Title: "Not found", Area: "portal", Error: "There is no such page.",
			Data: map[string]string{"Login": "/"}})
	})
}

// portal serves a portal page to a signed-in user.
func (h *Handler) portal(fn func(http.ResponseWriter, *http.Request, *session, *form)) http.HandlerFunc {
	return h.portalStages(false, fn)
}

// portalOrStage also serves a session that must still replace a temporary
// password (the password pages themselves).
func (h *Handler) portalOrStage(fn func(http.ResponseWriter, *http.Request, *session, *form)) http.HandlerFunc {
	return h.portalStages(true, fn)
}

func (h *Handler) portalStages(passwordStage bool, fn func(http.ResponseWriter, *http.Request, *session, *form)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, why, err := h.load(r, store.SessionUser)
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
				h.refuse(w, r, portalArea, nil, "web_session_refused", "session")
				return
			}
			if r.URL.Path == "/" && why == "" {
				h.render(w, http.StatusOK, "portal-login", page{Title: "Sign in", Area: "portal", CSRF: h.csrf(w, r, nil), Notice: notice(r)})
				return
			}
			http.Redirect(w, r, withNotice("/login", "session_ended"), http.StatusSeeOther)
			return
		}
		if s.rec.Stage != store.StageDone && !(passwordStage && s.rec.Stage == store.StagePassword) {
			if r.Method == http.MethodPost {
				h.refuse(w, r, portalArea, s, "web_session_refused", "session")
				return
			}
			http.Redirect(w, r, portalArea.stagePath(s.rec.Stage), http.StatusSeeOther)
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
				h.refuse(w, r, portalArea, s, "web_csrf_refused", "csrf")
				return
			}
		}
		if field := markup(r, f); field != "" {
			h.refuseInput(w, r, portalArea, s, field)
			return
		}
		fn(w, r, s, f)
	}
}

func (h *Handler) portalPage(r *http.Request, s *session, title string) page {
	return page{Title: title, Area: "portal", Who: &s.who, CSRF: h.csrfFor("session", s.token), Notice: notice(r)}
}

type homeData struct {
	User admin.User
}

func (h *Handler) homePage(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
	p := h.portalPage(r, s, "Your account")
	u, err := h.cfg.Portal.Account(r.Context(), s.who.Name)
	p.Data = homeData{User: u}
	if err != nil {
		h.showError(w, "home", p, err)
		return
	}
	h.render(w, http.StatusOK, "home", p)
}

type passwordData struct {
	Rules     []protocol.Rule
	Temporary bool
}

func (h *Handler) passwordData(r *http.Request, s *session) (passwordData, error) {
	pol, err := h.cfg.Portal.Policy(r.Context(), s.who.Name)
	return passwordData{Rules: pol.Rules(), Temporary: s.rec.Stage == store.StagePassword}, err
}

func (h *Handler) passwordPage(w http.ResponseWriter, r *http.Request, s *session, _ *form) {
	p := h.portalPage(r, s, "Change your password")
	d, err := h.passwordData(r, s)
	p.Data = d
	if err != nil {
		h.showError(w, "password", p, err)
		return
	}
	h.render(w, http.StatusOK, "password", p)
}

func (h *Handler) passwordChange(w http.ResponseWriter, r *http.Request, s *session, f *form) {
	p := h.portalPage(r, s, "Change your password")
	d, err := h.passwordData(r, s)
	p.Data = d
	if err != nil {
		h.showError(w, "password", p, err)
		return
	}
	cur, next := f.secret("current"), f.secret("new")
	if string(next) != string(f.secret("confirm")) {
		h.showError(w, "password", p, protocol.Errorf(protocol.CodeBadRequest, "The new password and its confirmation differ."))
		return
	}
	if err := h.cfg.Portal.ChangePassword(r.Context(), portalArea.actor(s, r), cur, next, ""); err != nil {
		h.showError(w, "password", p, err)
		return
	}
	if s.rec.Stage != store.StageDone {
		s.rec.Stage = store.StageDone
		s.who.MustChange = false
		if err := h.save(r.Context(), s); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	http.Redirect(w, r, withNotice("/", "changed"), http.StatusSeeOther)
}

// ruleState is one checklist line as the live checklist shows it.
type ruleState struct {
	Code string `json:"code"`
	Met  bool   `json:"met"`
	// Local is false for rules only the directory checks when saving
	// (history): they show no verdict while typing.
	Local bool `json:"local"`
}

// passwordCheck answers the live checklist: which of the user's rules a
// candidate meets, by protocol.Policy.Check, the one definition of them.
func (h *Handler) passwordCheck(w http.ResponseWriter, r *http.Request, s *session, f *form) {
	pol, err := h.cfg.Portal.Policy(r.Context(), s.who.Name)
	if err != nil {
		http.Error(w, "policy unavailable", http.StatusServiceUnavailable)
		return
	}
	writeChecklist(w, pol, s.who.Name, f.secret("new"))
}

// writeChecklist answers the live checklist for user's candidate.
func writeChecklist(w http.ResponseWriter, pol protocol.Policy, user string, candidate []byte) {
	unmet := map[string]bool{}
	for _, v := range pol.Check(user, candidate) {
		unmet[v.Code] = true
	}
	var out []ruleState
	for _, rule := range pol.Rules() {
		out = append(out, ruleState{Code: rule.Code, Met: rule.Local && !unmet[rule.Code], Local: rule.Local})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
