package web

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/protocol"
)

// page is what every template gets.
type page struct {
	Title string
	// Area is "console" or "portal"; Nav the console section shown.
	Area, Nav string
	Who       *Principal
	CSRF      string
	// Notice says what was just done; Error why it was not.
	Notice, Error string
	// Violations are the policy rules a password failed.
	Violations []protocol.Violation
	// Warnings are shown on every console page (too few administrators).
	Warnings []string
	Data     any
	Now      time.Time
	can      func(string) bool
}

// Can reports whether the signed-in administrator may do action (see can).
func (p page) Can(action string) bool { return p.can != nil && p.can(action) }

var funcs = template.FuncMap{
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "never"
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if v == nil || v.IsZero() {
				return "never"
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
		return ""
	},
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"join": strings.Join,
	"reveal": func(s protocol.Secret) string {
		// A secret shown once (a generated password, a token): the page is
		// the one place it goes.
		return string(s.Bytes())
	},
	"placeName": func(p string) string {
		return map[string]string{protocol.PlaceDirectory: "directory", protocol.PlaceLocal: "Mac account",
			protocol.PlaceFileVault: "FileVault", protocol.PlaceKeychain: "login keychain"}[p]
	},
	"stateName": func(s string) string {
		return map[string]string{protocol.PlaceOK: "in step", protocol.PlaceBehind: "behind", protocol.PlaceUnknown: "not checked",
			protocol.PlaceNotApplicable: "not used"}[s]
	},
	"stateClass": func(s string) string {
		return map[string]string{protocol.PlaceOK: "ok", protocol.PlaceBehind: "bad", protocol.PlaceUnknown: "warn"}[s]
	},
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
}

// parse reads every page template with the layout.
func (h *Handler) parse() error {
	h.pages = map[string]*template.Template{}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return fmt.Errorf("web: parsing %s: %w", base, err)
		}
		h.pages[strings.TrimSuffix(base, ".html")] = t
	}
	return nil
}

// render writes a page with status.
func (h *Handler) render(w http.ResponseWriter, status int, name string, p page) {
	t := h.pages[name]
	if t == nil {
		h.cfg.Log.Error("web page template missing", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if p.Now.IsZero() {
		p.Now = h.cfg.Now()
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		h.cfg.Log.Error("web page not rendered", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	clear(buf.Bytes()) // a page may show a secret once
}

func asProto(err error, pe **protocol.Error) bool { return errors.As(err, pe) }

// problem is the sentence a page shows for a refusal, and its status.
func problem(err error) (string, []protocol.Violation, int) {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		return "Something went wrong; try again.", nil, http.StatusInternalServerError
	}
	msg := pe.Message
	switch pe.Code {
	case protocol.CodeRateLimited:
		msg = fmt.Sprintf("Too many attempts. Wait %d seconds and try again.", max(1, pe.RetryAfter))
		return msg, nil, http.StatusTooManyRequests
	case protocol.CodeLocked:
		if pe.LockedUntil != nil && pe.LockedUntil.Year() < 9999 {
			msg = "This account is locked after too many failed attempts, until " + pe.LockedUntil.UTC().Format("15:04 UTC") + "."
		} else {
			msg = "This account is locked. Ask IT to unlock it."
		}
		return msg, nil, http.StatusForbidden
	case protocol.CodePolicyViolation:
		return "The new password does not meet the password policy.", pe.Violations, http.StatusUnprocessableEntity
	case protocol.CodeInternal:
		return msg, nil, http.StatusInternalServerError
	case protocol.CodeWrongPassword, protocol.CodeMFAInvalid, protocol.CodeMFAReplayed, protocol.CodeMFARequired:
		return msg, nil, http.StatusUnauthorized
	}
	if msg == "" {
		msg = "The directory refused: " + pe.Code + "."
	}
	return msg, nil, http.StatusBadRequest
}
