// Package api serves lockstepd's local API: HTTP and JSON over a unix socket
// that anyone may connect to, where the kernel, not the request, says who is
// calling. A caller acts on its own account only; root may name any.
//
// Requests that carry Origin or Referer, or a Host other than
// localapi.Host, are refused: they come from a browser that was talked into
// reaching the socket, not from Lockstep's app or CLI.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/agent/peercred"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Caller is who is on the other end of a connection.
type Caller struct {
	UID int
	PID int
	// User is the caller's local short name; empty when the uid has no
	// account (which only an admin caller may get away with).
	User string
	// Admin is root, or the uid lockstepd itself runs as (a developer's
	// demo, where the daemon is not root): it may see every account, act on
	// any it names, and manage the service account.
	Admin bool
}

// Backend is what the server needs from the daemon, in the engine's own
// terms; the server turns them into the local API's contract.
type Backend interface {
	// LocalUser returns the short name of the local account with uid.
	LocalUser(ctx context.Context, uid int) (string, error)
	// Accounts returns what caller may see: its own account, or all for an
	// admin caller.
	Accounts(ctx context.Context, caller Caller) []engine.Account
	// Connection is the state of the directory session.
	Connection() Connection
	Policy(ctx context.Context, localUser string) (*engine.PolicyView, error)
	// Change and Sync run an operation to its end. An error means the
	// operation did not start (busy, not bound, invalid); otherwise the
	// outcome, failure included, is in the returned operation.
	Change(ctx context.Context, localUser string, req engine.ChangeRequest, progress func(engine.Step)) (*engine.Operation, error)
	Sync(ctx context.Context, localUser string, req engine.SyncRequest, progress func(engine.Step)) (*engine.Operation, error)
	// Link links the account to its directory user with the user's
	// directory password, and returns the account as it then stands.
	Link(ctx context.Context, localUser string, password protocol.Secret) (engine.Account, error)
	// Subscribe returns a channel of events; cancel releases it. A
	// subscriber that falls behind loses events but always gets the next
	// status.
	Subscribe() (events <-chan engine.Event, cancel func())
	// Diagnostics returns the support bundle's parts: the server adds the
	// status and turns journalled operations into the contract's.
	Diagnostics(ctx context.Context, caller Caller) (Diagnostics, error)
	Doctor(ctx context.Context, localUser string, password protocol.Secret) engine.DoctorReport
	// Standing are the notices that still stand for localUser.
	Standing(localUser string) []engine.Notice
	ServiceAccount(ctx context.Context) engine.ServiceStatus
	SetupServiceAccount(ctx context.Context, adminUser string, adminPassword protocol.Secret) (engine.ServiceStatus, error)
	RotateServiceAccount(ctx context.Context) (engine.ServiceStatus, error)
	RemoveServiceAccount(ctx context.Context) (engine.ServiceStatus, error)
	// BeginEnrollment and ConfirmEnrollment set up an authenticator during
	// an enrolment period; the key goes to the caller alone.
	BeginEnrollment(ctx context.Context, localUser string) (engine.EnrollmentKey, error)
	ConfirmEnrollment(ctx context.Context, localUser, code string) (engine.Account, error)
	// KeptKeychains lists localUser's kept keychains; RecoverKeychain puts
	// one back, as Change and Sync run theirs.
	KeptKeychains(ctx context.Context, localUser string) ([]engine.KeptKeychain, error)
	RecoverKeychain(ctx context.Context, localUser string, req engine.RecoverRequest, progress func(engine.Step)) (*engine.Operation, error)
}

// Connection is the directory session's state as the backend reports it.
type Connection struct {
	State     string
	URL       string
	Since     time.Time
	Problem   string // a localapi.Problem* code
	LastError string
	DeviceID  string
}

// Diagnostics is what the backend adds to a support bundle: free-form
// parts (configuration, logs, versions) and the recent operations.
type Diagnostics struct {
	Parts      map[string]any
	Operations []*engine.Operation
}

// maxBody bounds a request body; the largest holds three passwords.
const maxBody = 16 << 10

// heartbeat is how often an idle watch stream gets a blank line, so that a
// vanished client is noticed. It is the only timer a quiet daemon runs for a
// watcher.
const heartbeat = 30 * time.Second

// Server is the local API.
type Server struct {
	b     Backend
	admin func(uid int) bool
	// stopping is closed by Shutdown: watch streams end at once rather
	// than hold the shutdown until they time out.
	stopping chan struct{}
	stopOnce sync.Once
	version  string
	log      *slog.Logger
	mux      *http.ServeMux
	srv      *http.Server
	conns    *quota
	watches  *quota
}

type (
	ctxKey  struct{} // the peer's credentials
	connKey struct{} // the *peerConn
)

// Options configure a Server.
type Options struct {
	// Version is lockstepd's, reported in the status.
	Version string
	Log     *slog.Logger
	// Limits bound connections and watch streams (zero fields: defaults).
	Limits Limits
	// Admin reports whether uid is an admin caller (nil: root, or the uid
	// lockstepd itself runs as, for a developer's demo).
	Admin func(uid int) bool
}

// New returns a server over b.
func New(b Backend, o Options) *Server {
	lim := o.Limits.withDefaults()
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	admin := o.Admin
	if admin == nil {
		self := os.Geteuid()
		admin = func(uid int) bool { return uid == 0 || uid == self }
	}
	s := &Server{b: b, admin: admin, stopping: make(chan struct{}), version: o.Version, log: log, mux: http.NewServeMux(),
		conns:   newQuota("connections", lim.ConnsPerUID, lim.Conns, log),
		watches: newQuota("watch streams", lim.WatchesPerUID, lim.Watches, log)}
	s.mux.HandleFunc("GET "+localapi.PathStatus, s.status)
	s.mux.HandleFunc("GET "+localapi.PathPolicy, s.policy)
	s.mux.HandleFunc("POST "+localapi.PathChange, s.change)
	s.mux.HandleFunc("POST "+localapi.PathSync, s.sync)
	s.mux.HandleFunc("GET "+localapi.PathWatch, s.watch)
	s.mux.HandleFunc("GET "+localapi.PathDiagnostics, s.diagnostics)
	s.mux.HandleFunc("POST "+localapi.PathDoctor, s.doctor)
	s.mux.HandleFunc("POST "+localapi.PathLink, s.link)
	s.mux.HandleFunc("POST "+localapi.PathMFAEnrollBegin, s.enrollBegin)
	s.mux.HandleFunc("POST "+localapi.PathMFAEnrollConfirm, s.enrollConfirm)
	s.mux.HandleFunc("GET "+localapi.PathKeychains, s.keptKeychains)
	s.mux.HandleFunc("POST "+localapi.PathKeychainRecover, s.recoverKeychain)
	s.mux.HandleFunc("GET "+localapi.PathServiceAccount, s.serviceAccount)
	s.mux.HandleFunc("POST "+localapi.PathServiceAccount, s.serviceAccount)
	s.mux.HandleFunc("PUT "+localapi.PathServiceAccount, s.serviceAccount)
	s.mux.HandleFunc("DELETE "+localapi.PathServiceAccount, s.serviceAccount)
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleTimeout,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			pc, ok := c.(*peerConn)
			if !ok {
				return ctx // no identity: every request is refused
			}
			return context.WithValue(context.WithValue(ctx, ctxKey{}, pc.creds), connKey{}, pc)
		},
	}
	return s
}

// Listen opens the socket at path: it refuses to take over a socket another
// lockstepd answers on, removes a stale one, and makes it connectable by
// every local user (mode 0666); identity comes from peer credentials.
func Listen(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another lockstepd is already listening on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale socket: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating socket directory: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("opening up socket %s: %w", path, err)
	}
	return ln, nil
}

// Serve serves on ln until Shutdown, accepting each uid's connections
// within its share.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(&limitListener{Listener: ln, q: s.conns, log: s.log})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, ends every watch stream, and waits for the
// other requests (a running change or sync) to end, up to ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopping) })
	return s.srv.Shutdown(ctx)
}

// ServeHTTP applies the checks every request must pass, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "" {
		writeError(w, forbidden("web_page"))
		return
	}
	if r.Host != localapi.Host {
		writeError(w, forbidden("host"))
		return
	}
	cr, ok := r.Context().Value(ctxKey{}).(peercred.Creds)
	if !ok {
		writeError(w, forbidden("no_peer"))
		return
	}
	caller := Caller{UID: cr.UID, PID: cr.PID, Admin: s.admin(cr.UID)}
	if name, err := s.b.LocalUser(r.Context(), cr.UID); err == nil {
		caller.User = name
	} else if !caller.Admin {
		s.log.Warn("local api caller has no local account", "uid", cr.UID, "err", err)
		e := forbidden("no_account")
		e.Params["uid"] = strconv.Itoa(cr.UID)
		writeError(w, e)
		return
	}
	s.log.Debug("local api request", "method", r.Method, "path", r.URL.Path, "uid", caller.UID, "pid", caller.PID)
	r = r.WithContext(context.WithValue(r.Context(), callerKey{}, caller))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

type callerKey struct{}

func callerOf(r *http.Request) Caller { return r.Context().Value(callerKey{}).(Caller) }

// target resolves which local account a request acts on: the caller's own,
// or, for root only, the one named.
func target(c Caller, named string) (string, *localapi.Error) {
	if named == "" {
		if c.UID == 0 || c.User == "" {
			return "", &localapi.Error{Code: localapi.CodeNameAccount}
		}
		return c.User, nil
	}
	if named == c.User || c.Admin {
		return named, nil
	}
	e := forbidden("other_account")
	e.Params["user"] = c.User
	return "", e
}

func forbidden(why string) *localapi.Error {
	return &localapi.Error{Code: localapi.CodeForbidden, Params: map[string]string{"why": why}}
}

// statusFor is what caller may see of lockstepd's state.
func (s *Server) statusFor(ctx context.Context, c Caller) *localapi.Status {
	conn := s.b.Connection()
	st := &localapi.Status{Version: s.version, ServiceAccount: serviceStatus(s.b.ServiceAccount(ctx)),
		Directory: localapi.Connection{State: conn.State, URL: conn.URL, Since: conn.Since, Problem: conn.Problem, LastError: conn.LastError, DeviceID: conn.DeviceID}}
	for _, a := range s.b.Accounts(ctx, c) {
		st.Accounts = append(st.Accounts, account(a))
	}
	return st
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.statusFor(r.Context(), callerOf(r)))
}

func (s *Server) policy(w http.ResponseWriter, r *http.Request) {
	user, e := target(callerOf(r), r.URL.Query().Get("user"))
	if e != nil {
		writeError(w, e)
		return
	}
	p, err := s.b.Policy(r.Context(), user)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, &localapi.PolicyResponse{DirectoryUser: p.DirectoryUser, Policy: p.Policy, Rules: p.Rules, MFA: p.MFA, MacRules: p.MacRules})
}

func (s *Server) change(w http.ResponseWriter, r *http.Request) {
	var req localapi.ChangeRequest
	if !readJSON(w, r, &req) {
		return
	}
	defer req.Current.Wipe()
	defer req.New.Wipe()
	user, e := target(callerOf(r), req.User)
	if e != nil {
		writeError(w, e)
		return
	}
	s.runOperation(w, r, func(ctx context.Context, progress func(engine.Step)) (*engine.Operation, error) {
		return s.b.Change(ctx, user, engine.ChangeRequest{Current: req.Current, New: req.New, TOTP: req.TOTP}, progress)
	})
}

func (s *Server) sync(w http.ResponseWriter, r *http.Request) {
	var req localapi.SyncRequest
	if !readJSON(w, r, &req) {
		return
	}
	defer req.Previous.Wipe()
	defer req.New.Wipe()
	user, e := target(callerOf(r), req.User)
	if e != nil {
		writeError(w, e)
		return
	}
	s.runOperation(w, r, func(ctx context.Context, progress func(engine.Step)) (*engine.Operation, error) {
		return s.b.Sync(ctx, user, engine.SyncRequest{Previous: req.Previous, New: req.New, ForgotPrevious: req.ForgotPrevious}, progress)
	})
}

// runOperation streams an operation's steps and result. The operation runs
// on a context that outlives the request: a user closing the window half-way
// must not leave the places half-changed.
func (s *Server) runOperation(w http.ResponseWriter, r *http.Request, run func(context.Context, func(engine.Step)) (*engine.Operation, error)) {
	sw := newStream(w)
	started := false
	progress := func(st engine.Step) {
		if !started {
			started = true
			sw.begin()
		}
		ls := step(st)
		sw.send(localapi.Event{Type: localapi.EventStep, Step: &ls})
	}
	op, err := run(context.WithoutCancel(r.Context()), progress)
	if err != nil && !started {
		writeError(w, err)
		return
	}
	if !started {
		sw.begin()
	}
	result := operation(op)
	if err != nil && op == nil {
		result = &localapi.Operation{State: localapi.OpFailed, Error: asAPIError(err)}
	}
	sw.send(localapi.Event{Type: localapi.EventResult, Operation: result})
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if !s.watches.acquire(c.UID) {
		writeError(w, &localapi.Error{Code: localapi.CodeTooMany})
		return
	}
	defer s.watches.release(c.UID)
	events, cancel := s.b.Subscribe()
	defer cancel()
	sw := newStream(w)
	sw.begin()
	first := s.statusFor(r.Context(), c)
	if !sw.send(localapi.Event{Type: localapi.EventStatus, Status: first}) {
		return
	}
	// What still stands is told again (with the same IDs), so that a user
	// whose app starts after a reset hears of it.
	for _, a := range first.Accounts {
		for _, n := range s.b.Standing(a.LocalUser) {
			if !sw.send(localapi.Event{Type: localapi.EventNotice, Notice: notice(n)}) {
				return
			}
		}
	}
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.stopping:
			return
		case <-t.C:
			if !sw.heartbeat() {
				return
			}
		case ev, ok := <-events:
			if !ok {
				return
			}
			var out localapi.Event
			switch ev.Type {
			case engine.EventStatus:
				out = localapi.Event{Type: localapi.EventStatus, Status: s.statusFor(r.Context(), c)} // the caller's view only
			case engine.EventNotice:
				if ev.Notice == nil || (!c.Admin && ev.Notice.LocalUser != c.User) {
					continue
				}
				out = localapi.Event{Type: localapi.EventNotice, Notice: notice(*ev.Notice)}
			case engine.EventStep, engine.EventResult:
				if ev.Operation == nil || (!c.Admin && ev.Operation.LocalUser != c.User) {
					continue
				}
				out = localapi.Event{Type: ev.Type, Operation: operation(ev.Operation)}
				if ev.Step != nil {
					ls := step(*ev.Step)
					out.Step = &ls
				}
			default:
				continue
			}
			if !sw.send(out) {
				return
			}
		}
	}
}

func (s *Server) link(w http.ResponseWriter, r *http.Request) {
	var req localapi.LinkRequest
	if !readJSON(w, r, &req) {
		return
	}
	defer req.Password.Wipe()
	user, e := target(callerOf(r), req.User)
	if e != nil {
		writeError(w, e)
		return
	}
	a, err := s.b.Link(context.WithoutCancel(r.Context()), user, req.Password)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, account(a))
}

// enrollBegin hands the caller a new authenticator's secret. It is the
// one answer of the local API that holds a secret the caller did not send:
// it is written to this caller's connection only, never logged, and the
// copy here is wiped.
func (s *Server) enrollBegin(w http.ResponseWriter, r *http.Request) {
	var req localapi.MFAEnrollRequest
	if !readJSON(w, r, &req) {
		return
	}
	user, e := target(callerOf(r), req.User)
	if e != nil {
		writeError(w, e)
		return
	}
	k, err := s.b.BeginEnrollment(context.WithoutCancel(r.Context()), user)
	if err != nil {
		writeError(w, err)
		return
	}
	defer k.Secret.Wipe()
	defer k.URI.Wipe()
	writeJSON(w, http.StatusOK, &localapi.MFAEnrollment{Secret: k.Secret, URI: k.URI, Until: k.Until})
}

func (s *Server) enrollConfirm(w http.ResponseWriter, r *http.Request) {
	var req localapi.MFAConfirmRequest
	if !readJSON(w, r, &req) {
		return
	}
	user, e := target(callerOf(r), req.User)
	if e != nil {
		writeError(w, e)
		return
	}
	a, err := s.b.ConfirmEnrollment(context.WithoutCancel(r.Context()), user, req.Code)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, account(a))
}

func (s *Server) diagnostics(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	d, err := s.b.Diagnostics(r.Context(), c)
	if err != nil {
		writeError(w, err)
		return
	}
	bundle := map[string]any{}
	maps.Copy(bundle, d.Parts)
	bundle["status"] = s.statusFor(r.Context(), c)
	var ops []*localapi.Operation
	for _, op := range d.Operations {
		ops = append(ops, operation(op))
	}
	bundle["operations"] = ops
	writeJSON(w, http.StatusOK, bundle)
}

func (s *Server) doctor(w http.ResponseWriter, r *http.Request) {
	var req localapi.DoctorRequest
	if !readJSON(w, r, &req) {
		return
	}
	defer req.Password.Wipe()
	user, e := target(callerOf(r), req.User)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, doctorReport(s.b.Doctor(r.Context(), user, req.Password)))
}

func (s *Server) serviceAccount(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, serviceStatus(s.b.ServiceAccount(ctx)))
		return
	}
	if !callerOf(r).Admin {
		writeError(w, forbidden("root_only"))
		return
	}
	var (
		st  engine.ServiceStatus
		err error
	)
	switch r.Method {
	case http.MethodPost:
		var req localapi.ServiceAccountRequest
		if !readJSON(w, r, &req) {
			return
		}
		defer req.AdminPassword.Wipe()
		st, err = s.b.SetupServiceAccount(context.WithoutCancel(ctx), req.AdminUser, req.AdminPassword)
	case http.MethodPut:
		st, err = s.b.RotateServiceAccount(context.WithoutCancel(ctx))
	case http.MethodDelete:
		st, err = s.b.RemoveServiceAccount(context.WithoutCancel(ctx))
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, serviceStatus(st))
}

// stream writes newline-delimited JSON events, flushing each.
type stream struct {
	mu  sync.Mutex
	w   http.ResponseWriter
	enc *json.Encoder
	rc  *http.ResponseController
	ok  bool
}

func newStream(w http.ResponseWriter) *stream {
	return &stream{w: w, enc: json.NewEncoder(w), rc: http.NewResponseController(w), ok: true}
}

func (s *stream) begin() {
	s.w.Header().Set("Content-Type", "application/x-ndjson")
	s.w.WriteHeader(http.StatusOK)
}

func (s *stream) send(ev localapi.Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ok {
		return false
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := s.enc.Encode(ev); err != nil {
		s.ok = false
		return false
	}
	s.ok = s.rc.Flush() == nil
	return s.ok
}

func (s *stream) heartbeat() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := io.WriteString(s.w, "\n"); err != nil {
		s.ok = false
	}
	s.ok = s.ok && s.rc.Flush() == nil
	return s.ok
}

// readJSON decodes a request body of at most maxBody bytes into v. Bodies
// carry passwords, so the body is read into one buffer of its own (no
// growing, which would leave copies behind) and decoded from there without
// another copy; then that buffer and the connection's read buffer are
// wiped, and the connection is closed after the answer so that nothing
// else is read into that buffer.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(bodyTimeout))
	w.Header().Set("Connection", "close")
	buf := make([]byte, maxBody+1)
	defer clear(buf)
	if pc, ok := r.Context().Value(connKey{}).(*peerConn); ok {
		defer pc.wipeReads()
	}
	n, err := io.ReadFull(r.Body, buf)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		err = nil
	case err == nil:
		err = fmt.Errorf("the body is larger than %d bytes", maxBody)
	}
	if err == nil {
		err = json.Unmarshal(buf[:n], v)
	}
	if err != nil {
		// The deadline stays: the server's draining of what is left of
		// the body must not wait for a client that stopped sending.
		writeError(w, &localapi.Error{Code: localapi.CodeBadRequest, Detail: err.Error()})
		return false
	}
	// The server's own reader of the connection goes on without one.
	_ = rc.SetReadDeadline(time.Time{})
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// asAPIError turns any error into the local API's *Error.
func asAPIError(err error) *localapi.Error {
	var e *localapi.Error
	if errors.As(err, &e) {
		return e
	}
	var ee *engine.Error
	if errors.As(err, &ee) {
		return apiError(ee)
	}
	return &localapi.Error{Code: localapi.CodePlatform, Detail: err.Error()}
}

func writeError(w http.ResponseWriter, err error) {
	e := asAPIError(err)
	writeJSON(w, httpStatus(e.Code), e)
}

func httpStatus(code string) int {
	switch code {
	case localapi.CodeForbidden:
		return http.StatusForbidden
	case localapi.CodeBadRequest, localapi.CodeNameAccount, localapi.CodeMissing:
		return http.StatusBadRequest
	case localapi.CodeNotBound:
		return http.StatusNotFound
	case localapi.CodeBusy:
		return http.StatusConflict
	case localapi.CodeOffline:
		return http.StatusServiceUnavailable
	case localapi.CodeThrottled, localapi.CodeTooMany:
		return http.StatusTooManyRequests
	case localapi.CodePlatform:
		return http.StatusInternalServerError
	}
	return http.StatusUnprocessableEntity
}
