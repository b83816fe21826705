// Package web is lockstep-directory's web console for IT (/admin/) and its
// portal for users (/), served on the directory's own TLS listener.
//
// Pages are rendered on the server with html/template from embedded
// files; the only script is the embedded checklist.js (the live policy
// checklist asks the server, which checks with protocol.Policy, so the
// rules stay defined once), and the Content-Security-Policy allows nothing
// else: no inline script or style, no other host. Sessions live on the
// server (store.Session, shared by replicas): the browser holds a random
// token in a __Host- cookie that is Secure, HttpOnly and SameSite=Strict,
// the store only its hash; a session ends after IdleTimeout without a
// request, after MaxAge, or at sign-out. Every form carries a CSRF token
// derived from the session's token with a server key, and every POST
// without the right one is refused and audited. What a person may do is
// decided here by role (see can); what the directory then does is its own
// (Auth, Console, Portal).
package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Config configures the pages.
type Config struct {
	Auth    Auth
	Console Console
	Portal  Portal
	// Key keys the CSRF tokens (32 bytes or more); replicas share it.
	Key []byte
	// Now is the clock of sessions (the directory's, so tests can move it).
	Now func() time.Time
	// IdleTimeout ends a session without requests (default 15 min);
	// MaxAge ends any session (default 12 h).
	IdleTimeout, MaxAge time.Duration
	Log                 *slog.Logger
	// Title names the service in page titles (default "Lockstep").
	Title string
}

// Handler serves the console and the portal.
type Handler struct {
	cfg   Config
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// Cookie names. The __Host- prefix makes the browser refuse them unless
// Secure, host-only and for the whole site.
const (
	consoleCookie = "__Host-lockstep-console"
	portalCookie  = "__Host-lockstep-portal"
	preCookie     = "__Host-lockstep-pre"
)

// contentSecurityPolicy allows the page's own script, style and images
// only; forms post only to this site and nothing may frame the pages.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// New builds the handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Auth == nil || cfg.Console == nil || cfg.Portal == nil {
		return nil, errors.New("web: Auth, Console and Portal are required")
	}
	if len(cfg.Key) < 32 {
		return nil, errors.New("web: the CSRF key must be at least 32 bytes")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 15 * time.Minute
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 12 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Title == "" {
		cfg.Title = "Lockstep"
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux()}
	if err := h.parse(); err != nil {
		return nil, err
	}
	assets, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(assets)
	h.mux.Handle("GET /assets/", http.StripPrefix("/assets/", noDirs(files)))
	h.consoleRoutes()
	h.portalRoutes()
	return h, nil
}

// noDirs refuses directory listings of the assets.
func noDirs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP sets the security headers on every answer and serves.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	hd.Set("Strict-Transport-Security", "max-age=31536000")
	hd.Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	h.mux.ServeHTTP(w, r)
}

// Mount registers the pages on mux: /admin/ for the console, / for the
// portal and the assets.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.Handle("/", h)
}

func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

var b64 = base64.RawURLEncoding

func newToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("web: reading random bytes: %v", err))
	}
	return b64.EncodeToString(b)
}

func sessionID(token string) []byte {
	s := sha256.Sum256([]byte(token))
	return s[:]
}

// csrfFor is the CSRF token of a session (or pre-session) token: only the
// holder of the cookie can know it, and no page can read the cookie.
func (h *Handler) csrfFor(purpose, token string) string {
	m := hmac.New(sha256.New, h.cfg.Key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(token))
	return b64.EncodeToString(m.Sum(nil))
}

func (h *Handler) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode})
}

// session is a request's signed-in browser.
type session struct {
	kind  string
	token string
	rec   store.Session
	who   Principal
}

func cookieFor(kind string) string {
	if kind == store.SessionAdmin {
		return consoleCookie
	}
	return portalCookie
}

// errNoSession: no cookie, or one the store does not know (signed out,
// expired, forged).
var errNoSession = errors.New("no session")

// load finds the request's session of kind; an expired one is deleted.
// refusedWhy says why a cookie that was sent is not a session, for the
// audit log ("" when no cookie came).
func (h *Handler) load(r *http.Request, kind string) (*session, string, error) {
	c, err := r.Cookie(cookieFor(kind))
	if err != nil || c.Value == "" {
		return nil, "", errNoSession
	}
	ctx := r.Context()
	id := sessionID(c.Value)
	rec, err := h.cfg.Auth.Session(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "unknown_session", errNoSession
	}
	if err != nil {
		return nil, "", err
	}
	now := h.cfg.Now()
	switch {
	case rec.Kind != kind:
		return nil, "unknown_session", errNoSession
	case now.Sub(rec.LastSeenAt) > h.cfg.IdleTimeout:
		_ = h.cfg.Auth.DeleteSession(ctx, id)
		return nil, "idle_timeout", errNoSession
	case now.Sub(rec.CreatedAt) > h.cfg.MaxAge:
		_ = h.cfg.Auth.DeleteSession(ctx, id)
		return nil, "max_age", errNoSession
	}
	who, err := h.cfg.Auth.Principal(ctx, kind, rec.Subject)
	if err != nil {
		// The account is gone: so is the session.
		_ = h.cfg.Auth.DeleteSession(ctx, id)
		return nil, "account_gone", errNoSession
	}
	// Refresh the idle clock at most once a minute: one write per page
	// would make every read a write.
	if now.Sub(rec.LastSeenAt) > min(time.Minute, h.cfg.IdleTimeout/4) {
		rec.LastSeenAt = now
		if err := h.cfg.Auth.PutSession(ctx, rec); err != nil {
			return nil, "", err
		}
	}
	return &session{kind: kind, token: c.Value, rec: rec, who: who}, "", nil
}

// start begins a session for who at stage, replacing any the browser had
// (a new token at every sign-in: a planted cookie never becomes one).
func (h *Handler) start(w http.ResponseWriter, r *http.Request, kind string, who Principal, stage string) (*session, error) {
	if old, _, err := h.load(r, kind); err == nil {
		_ = h.cfg.Auth.DeleteSession(r.Context(), sessionID(old.token))
	}
	tok := newToken()
	now := h.cfg.Now()
	rec := store.Session{ID: sessionID(tok), Kind: kind, Subject: who.Name, Stage: stage, Addr: remoteAddr(r), CreatedAt: now, LastSeenAt: now}
	if err := h.cfg.Auth.PutSession(r.Context(), rec); err != nil {
		return nil, err
	}
	h.setCookie(w, cookieFor(kind), tok, 0)
	return &session{kind: kind, token: tok, rec: rec, who: who}, nil
}

// save stores a session's new stage.
func (h *Handler) save(ctx context.Context, s *session) error {
	s.rec.LastSeenAt = h.cfg.Now()
	return h.cfg.Auth.PutSession(ctx, s.rec)
}

func (h *Handler) end(w http.ResponseWriter, r *http.Request, s *session) {
	if s != nil {
		_ = h.cfg.Auth.DeleteSession(r.Context(), sessionID(s.token))
	}
	h.setCookie(w, cookieFor(s.kind), "", -1)
}

// preToken is the pre-session token of a browser not signed in, which the
// sign-in forms' CSRF token is derived from; it is set when missing.
func (h *Handler) preToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(preCookie); err == nil && len(c.Value) >= 40 && len(c.Value) <= 64 {
		return c.Value
	}
	t := newToken()
	h.setCookie(w, preCookie, t, 0)
	return t
}

// csrf is the token the page's forms must carry.
func (h *Handler) csrf(w http.ResponseWriter, r *http.Request, s *session) string {
	if s != nil {
		return h.csrfFor("session", s.token)
	}
	return h.csrfFor("pre", h.preToken(w, r))
}

// checkCSRF compares the form's (or the X-CSRF-Token header's) token with
// the one the cookie calls for.
func (h *Handler) checkCSRF(r *http.Request, f *form, s *session) bool {
	got := f.get("csrf")
	if got == "" {
		got = r.Header.Get("X-CSRF-Token")
	}
	var want string
	if s != nil {
		want = h.csrfFor("session", s.token)
	} else {
		c, err := r.Cookie(preCookie)
		if err != nil || c.Value == "" {
			return false
		}
		want = h.csrfFor("pre", c.Value)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// sameOrigin refuses a POST another site made the browser send: browsers
// say so in Sec-Fetch-Site (SameSite=Strict cookies already stay home;
// this refuses even the sign-in forms, which have no session yet).
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// form is a posted form whose values are byte slices, so that passwords can
// be wiped after use (url.Values holds strings, which cannot be). The raw
// body is wiped once decoded.
type form struct {
	v map[string][]byte
}

// parseForm reads an application/x-www-form-urlencoded body (at most 64
// KiB: ServeHTTP bounds it).
func parseForm(r *http.Request) (*form, error) {
	f := &form{v: map[string][]byte{}}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return f, fmt.Errorf("unexpected content type %q", ct)
	}
	body := make([]byte, 0, 4096)
	buf := make([]byte, 4096)
	for {
		n, err := r.Body.Read(buf)
		body = append(body, buf[:n]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			clear(body)
			clear(buf)
			return f, err
		}
	}
	defer clear(body)
	defer clear(buf)
	for _, pair := range bytes.Split(body, []byte("&")) {
		if len(pair) == 0 {
			continue
		}
		k, v, _ := bytes.Cut(pair, []byte("="))
		key, err := unescape(k)
		if err != nil {
			return f, err
		}
		val, err := unescape(v)
		if err != nil {
			return f, err
		}
		if _, dup := f.v[string(key)]; !dup {
			f.v[string(key)] = val
		}
	}
	return f, nil
}

// unescape decodes one form component into a new slice.
func unescape(b []byte) ([]byte, error) {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '+':
			out = append(out, ' ')
		case '%':
			if i+2 >= len(b) {
				clear(out)
				return nil, errors.New("bad percent escape")
			}
			hi, lo := unhex(b[i+1]), unhex(b[i+2])
			if hi < 0 || lo < 0 {
				clear(out)
				return nil, errors.New("bad percent escape")
			}
			out = append(out, byte(hi<<4|lo))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out, nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// get is a field that holds no secret.
func (f *form) get(name string) string { return string(f.v[name]) }

// secret is a field that holds one; wipe clears it with the rest.
func (f *form) secret(name string) protocol.Secret { return protocol.Secret(f.v[name]) }

// wipe clears every value.
func (f *form) wipe() {
	for _, v := range f.v {
		clear(v)
	}
}

// secretFields are the form fields that hold passwords: they are never
// shown on a page, so any character may be in them.
var secretFields = map[string]bool{"password": true, "confirm": true, "current": true, "new": true}

// markup names the first field (or query parameter) that holds markup
// characters, or "". No name, note, search or filter needs < or >, and one
// that holds them is someone trying script: it is refused and audited,
// although every page escapes what it shows (and the CSP runs no inline
// script) anyway.
func markup(r *http.Request, f *form) string {
	for k, vs := range r.URL.Query() {
		for _, v := range vs {
			if strings.ContainsAny(k+v, "<>") {
				return k
			}
		}
	}
	if f == nil {
		return ""
	}
	for k, v := range f.v {
		if !secretFields[k] && (strings.ContainsAny(k, "<>") || bytes.ContainsAny(v, "<>")) {
			return k
		}
	}
	return ""
}
