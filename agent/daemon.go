// Package agent is lockstepd: it wires the configuration, the directory
// session, the sync engine and the local API together, and implements what
// the local API serves.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/agent/api"
	"github.com/lockstep-dev/lockstep/agent/config"
	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/agent/journal"
	"github.com/lockstep-dev/lockstep/agent/session"
	"github.com/lockstep-dev/lockstep/agent/statusplist"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// stopWait is how long a stopping daemon lets a running operation finish.
// launchd sends SIGKILL 20 s after SIGTERM by default.
const stopWait = 15 * time.Second

// rebindWait is how long after a failed attempt a caller's request may
// try to bind its account again. Binding asks the directory and runs tools
// as root; any local user's every status request must not.
const rebindWait = time.Minute

// Options configure a Daemon.
type Options struct {
	Config *config.Config
	Log    *slog.Logger
	// Ring holds recent log records for diagnostics; may be nil.
	Ring *LogRing
	// Mac is the platform; Run builds it from the configuration when nil.
	Mac *engine.Mac
	// Keys keeps the device key; built from the platform when nil.
	Keys session.KeyStore
	// ConsoleUser returns who is logged in at the screen, if anyone.
	ConsoleUser func(ctx context.Context) (string, error)
	// Version is lockstepd's, reported to the directory and the local API.
	Version string
	// Directory replaces the directory session (tests of the app against
	// a real lockstepd over a fake directory); nil: a session to
	// Config.DirectoryURL. The fake tells the daemon what the session
	// would: Welcomed, HandlePush and ConnectionChanged.
	Directory Directory
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Directory is the link to the directory when it is not the session: what
// the engine needs, and the link's state for the local API.
type Directory interface {
	engine.Directory
	Connection() api.Connection
}

// Daemon is lockstepd.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	ring    *LogRing
	mac     engine.Mac
	console func(ctx context.Context) (string, error)
	bus     *bus
	sess    *session.Session
	dir     *directory
	eng     *engine.Engine
	jrnl    *journal.Journal
	api     *api.Server
	// status keeps the status file for MDM; nil when StatusPlist is "".
	status *statusplist.Writer

	link    func() api.Connection
	version string
	now     func() time.Time

	saMu sync.Mutex
	sa   engine.ServiceStatus

	// statusErr is the last failure to write the status file, logged once.
	statusMu  sync.Mutex
	statusErr string

	bindMu    sync.Mutex
	binding   map[string]bool
	bindTried map[string]time.Time

	reports *reporter
	// keptOnce counts each account's kept keychains once after start, so
	// the menu offers Recover Old Keychain… for keychains kept before.
	keptOnce sync.Once
}

// New builds a daemon; nothing runs until Run.
func New(opt Options) (*Daemon, error) {
	cfg := opt.Config
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	if opt.Mac == nil || opt.Keys == nil {
		mac, keys, console, err := newPlatform(cfg, opt.Log)
		if err != nil {
			return nil, err
		}
		if opt.Mac == nil {
			opt.Mac = mac
		}
		if opt.Keys == nil {
			opt.Keys = keys
		}
		if opt.ConsoleUser == nil {
			opt.ConsoleUser = console
		}
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	d := &Daemon{cfg: cfg, log: opt.Log, ring: opt.Ring, mac: *opt.Mac, console: opt.ConsoleUser, version: opt.Version, now: opt.Now,
		bus: newBus(), binding: map[string]bool{}, bindTried: map[string]time.Time{}}
	j, err := journal.Open(filepath.Join(cfg.StateDir, "operations"))
	if err != nil {
		return nil, err
	}
	d.jrnl = j
	var dir engine.Directory
	if opt.Directory != nil {
		dir, d.link = opt.Directory, opt.Directory.Connection
	} else {
		roots, err := cfg.RootCAs()
		if err != nil {
			return nil, err
		}
		d.sess, err = session.New(session.Options{
			URL: cfg.DirectoryURL, RootCAs: roots, EnrollmentToken: cfg.EnrollmentToken,
			StateDir: cfg.StateDir, Keys: opt.Keys, AgentVersion: opt.Version, Log: opt.Log.With("component", "session"),
			OnPush:    d.HandlePush,
			OnState:   func(session.Status) { d.ConnectionChanged() },
			OnWelcome: d.Welcomed,
		})
		if err != nil {
			return nil, err
		}
		d.dir = &directory{s: d.sess}
		dir = d.dir
		d.link = func() api.Connection {
			st := d.sess.Status()
			return api.Connection{State: st.State, URL: st.URL, Since: st.Since, Problem: st.Problem, LastError: st.LastError, DeviceID: st.DeviceID}
		}
	}
	for _, k := range cfg.Deprecated {
		opt.Log.Warn("configuration key ignored", "key", k, "sources", cfg.Sources)
	}
	d.reports = newReporter(dir, opt.Log.With("component", "reports"))
	d.eng, err = engine.New(engine.Options{
		StateDir: cfg.StateDir, Mac: d.mac, Directory: dir, Journal: j, Log: opt.Log.With("component", "engine"),
		Emit: d.bus.publish, DirectoryUser: cfg.DirectoryUser, Now: opt.Now, Report: d.reports.add,
	})
	if err != nil {
		return nil, err
	}
	d.api = api.New(d, api.Options{Version: opt.Version, Log: opt.Log.With("component", "localapi")})
	if cfg.StatusPlist != "" {
		d.status = statusplist.NewWriter(cfg.StatusPlist, d.statusDocument)
		d.bus.onStatus = d.writeStatus
	}
	return d, nil
}

// statusDocument is what the status file shows: the engine's accounts and
// the link, as the local API serves them to root.
func (d *Daemon) statusDocument() statusplist.Document {
	c := d.link()
	return statusplist.Build(d.version,
		statusplist.Connection{State: c.State, URL: c.URL, Since: c.Since, Problem: c.Problem, DeviceID: c.DeviceID},
		d.eng.Accounts(nil))
}

// writeStatus rewrites the status file; a failure is logged when it first
// happens and when it ends, not on every change.
func (d *Daemon) writeStatus() {
	err := d.status.Update()
	d.statusMu.Lock()
	defer d.statusMu.Unlock()
	switch {
	case err != nil && err.Error() != d.statusErr:
		d.statusErr = err.Error()
		d.log.Error("status plist not written", "path", d.status.Path(), "err", err)
	case err == nil && d.statusErr != "":
		d.statusErr = ""
		d.log.Info("status plist written again", "path", d.status.Path())
	}
}

// followClock tells watchers, and so the status file, when an account's
// state changes by the clock alone (a lock ends, a day passes while a
// password expires): the engine publishes nothing then. It waits on one
// timer, set again after every status event.
func (d *Daemon) followClock(ctx context.Context) {
	events, cancel := d.bus.subscribe()
	defer cancel()
	timer := time.NewTimer(time.Hour)
	var armedAt time.Time
	arm := func() {
		timer.Stop()
		if at, ok := d.eng.NextChange(); ok {
			armedAt = d.now()
			timer.Reset(at.Sub(armedAt))
		}
	}
	arm()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case ev := <-events:
			if ev.Type == engine.EventStatus {
				arm()
			}
		case <-timer.C:
			if d.now().Equal(armedAt) {
				// A stopped clock (tests pin one): the change never
				// comes, and publishing would only set the timer again.
				continue
			}
			d.bus.publish(engine.Event{Type: engine.EventStatus})
		}
	}
}

// Run serves until ctx ends, then stops cleanly.
func (d *Daemon) Run(ctx context.Context) error {
	for local := range d.cfg.UserMap {
		d.eng.Touch(local)
	}
	if d.status != nil {
		// What a crash recovered, or the state as the last run left it,
		// is in the file before anyone can ask lockstepd.
		d.writeStatus()
		if ok, dir := statusplist.Readable(d.status.Path()); !ok {
			d.log.Warn("status plist not readable by other users", "path", d.status.Path(), "directory", dir)
		}
	}
	ln, err := api.Listen(d.cfg.Socket)
	if err != nil {
		return err
	}
	d.log.Info("lockstepd started", "version", d.version, "socket", d.cfg.Socket, "directory", d.cfg.DirectoryURL)
	d.refreshServiceAccount(ctx)
	clockCtx, stopClock := context.WithCancel(ctx)
	defer stopClock()
	go d.followClock(clockCtx)
	if err := d.jrnl.Prune(90*24*time.Hour, 5, time.Now()); err != nil {
		d.log.Warn("journal prune failed", "err", err)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- d.api.Serve(ln) }()
	sctx, stopSession := context.WithCancel(ctx)
	reportsDone := make(chan struct{})
	go func() { d.reports.run(sctx); close(reportsDone) }()
	sessDone := make(chan struct{})
	go func() {
		if d.sess != nil {
			d.sess.Run(sctx)
		}
		close(sessDone)
	}()

	select {
	case <-ctx.Done():
	case err = <-serveErr:
		d.log.Error("local api stopped", "err", err)
	}
	shut, cancel := context.WithTimeout(context.Background(), stopWait)
	defer cancel()
	if serr := d.api.Shutdown(shut); serr != nil {
		d.log.Warn("local api shutdown", "err", serr)
	}
	stopSession()
	<-sessDone
	<-reportsDone
	d.log.Info("lockstepd stopped")
	return err
}

// HandlePush handles a push from the directory.
func (d *Daemon) HandlePush(ctx context.Context, env *protocol.Envelope) error {
	return d.eng.HandlePush(ctx, env)
}

// ConnectionChanged tells watchers the directory link's state changed.
func (d *Daemon) ConnectionChanged() { d.bus.publish(engine.Event{Type: engine.EventStatus}) }

// Welcomed runs on every new directory session: it takes the policy and
// refreshes every known account, which also settles unconfirmed changes and
// sends pending acknowledgements. A fake directory calls it as the session
// does.
func (d *Daemon) Welcomed(w protocol.Welcome) {
	if d.dir != nil {
		d.dir.setPolicy(w.Policy)
	}
	d.eng.SetPolicy(w.Policy)
	d.eng.SetLockoutThreshold(w.LockoutThreshold)
	go d.bindAll()
}

func (d *Daemon) bindAll() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	users := map[string]bool{}
	for local := range d.cfg.UserMap {
		users[local] = true
	}
	for _, local := range d.eng.Bound() {
		users[local] = true
	}
	if d.console != nil {
		if u, err := d.console(ctx); err == nil && u != "" {
			users[u] = true
		}
	}
	// Before binding, so that an account shows its kept keychains as soon
	// as it shows its state.
	d.keptOnce.Do(func() {
		for u := range users {
			if _, err := d.eng.KeptKeychains(ctx, u); err != nil {
				d.log.Warn("kept keychains not listed", "local_user", u, "err", err)
			}
		}
	})
	for u := range users {
		if err := d.eng.Bind(ctx, u); err != nil {
			d.log.Warn("account not refreshed", "local_user", u, "err", err)
		}
	}
}

// ensureBound binds a caller's account the first time it is seen.
func (d *Daemon) ensureBound(ctx context.Context, local string) {
	if local == "" || d.eng.IsBound(local) {
		return
	}
	if d.link().State != session.Connected {
		d.eng.Touch(local) // bound when the session comes up
		return
	}
	d.bindMu.Lock()
	if d.binding[local] || time.Since(d.bindTried[local]) < rebindWait {
		d.bindMu.Unlock()
		return
	}
	d.binding[local], d.bindTried[local] = true, time.Now()
	d.bindMu.Unlock()
	defer func() {
		d.bindMu.Lock()
		delete(d.binding, local)
		d.bindMu.Unlock()
	}()
	bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := d.eng.Bind(bctx, local); err != nil {
		d.log.Warn("account not bound", "local_user", local, "err", err)
	}
}

func (d *Daemon) refreshServiceAccount(ctx context.Context) engine.ServiceStatus {
	st := d.mac.Service.Status(ctx)
	d.saMu.Lock()
	d.sa = st
	d.saMu.Unlock()
	return st
}

// LocalUser implements api.Backend.
func (d *Daemon) LocalUser(ctx context.Context, uid int) (string, error) {
	return d.eng.LocalUser(ctx, uid)
}

// Accounts implements api.Backend.
func (d *Daemon) Accounts(ctx context.Context, c api.Caller) []engine.Account {
	if c.Admin {
		return d.eng.Accounts(nil)
	}
	d.ensureBound(ctx, c.User)
	return d.eng.Accounts([]string{c.User})
}

// Connection implements api.Backend.
func (d *Daemon) Connection() api.Connection { return d.link() }

// Policy implements api.Backend.
func (d *Daemon) Policy(ctx context.Context, local string) (*engine.PolicyView, error) {
	d.ensureBound(ctx, local)
	return d.eng.PolicyFor(ctx, local), nil
}

// Change implements api.Backend.
func (d *Daemon) Change(ctx context.Context, local string, req engine.ChangeRequest, progress func(engine.Step)) (*engine.Operation, error) {
	op, err := d.eng.Change(ctx, local, req, progress)
	d.eng.Relink(ctx, local, op)
	return op, err
}

// Sync implements api.Backend.
func (d *Daemon) Sync(ctx context.Context, local string, req engine.SyncRequest, progress func(engine.Step)) (*engine.Operation, error) {
	op, err := d.eng.Sync(ctx, local, req, progress)
	d.eng.Relink(ctx, local, op)
	return op, err
}

// KeptKeychains implements api.Backend.
func (d *Daemon) KeptKeychains(ctx context.Context, local string) ([]engine.KeptKeychain, error) {
	return d.eng.KeptKeychains(ctx, local)
}

// RecoverKeychain implements api.Backend.
func (d *Daemon) RecoverKeychain(ctx context.Context, local string, req engine.RecoverRequest, progress func(engine.Step)) (*engine.Operation, error) {
	return d.eng.RecoverKeychain(ctx, local, req, progress)
}

// Link implements api.Backend.
func (d *Daemon) Link(ctx context.Context, local string, password protocol.Secret) (engine.Account, error) {
	return d.eng.Link(ctx, local, password)
}

// BeginEnrollment implements api.Backend.
func (d *Daemon) BeginEnrollment(ctx context.Context, local string) (engine.EnrollmentKey, error) {
	return d.eng.BeginEnrollment(ctx, local)
}

// ConfirmEnrollment implements api.Backend.
func (d *Daemon) ConfirmEnrollment(ctx context.Context, local, code string) (engine.Account, error) {
	return d.eng.ConfirmEnrollment(ctx, local, code)
}

// Doctor runs the engine's checks.
func (d *Daemon) Doctor(ctx context.Context, local string, password protocol.Secret) engine.DoctorReport {
	d.ensureBound(ctx, local)
	return d.eng.Doctor(ctx, local, password, d.link().State == session.Connected)
}

// Standing implements api.Backend.
func (d *Daemon) Standing(local string) []engine.Notice { return d.eng.Standing(local) }

// Subscribe implements api.Backend.
func (d *Daemon) Subscribe() (<-chan engine.Event, func()) { return d.bus.subscribe() }

// Diagnostics implements api.Backend: a redacted support bundle. Root gets
// everything; a user gets what concerns their own account.
func (d *Daemon) Diagnostics(ctx context.Context, c api.Caller) (api.Diagnostics, error) {
	host, _ := os.Hostname()
	parts := map[string]any{
		"generated_at": time.Now().UTC(),
		"version":      d.version,
		"go":           runtime.Version(),
		"os":           runtime.GOOS + "/" + runtime.GOARCH,
		"hostname":     host,
	}
	ops, err := d.eng.Operations(func(local string) bool { return c.Admin || local == c.User }, 20)
	if err != nil {
		parts["journal_error"] = err.Error()
	}
	if c.Admin {
		parts["config"] = d.cfg.Redacted()
		if d.ring != nil {
			parts["logs"] = d.ring.Records()
		}
	}
	return api.Diagnostics{Parts: parts, Operations: ops}, nil
}

// ServiceAccount implements api.Backend. It answers from the state checked
// at start and after every setup, rotation and removal: any local user may
// ask, and checking means running tools as root and signing in as the
// hidden admin, which counts as a failed login when its stored password is
// stale. A read must cost neither.
func (d *Daemon) ServiceAccount(context.Context) engine.ServiceStatus {
	d.saMu.Lock()
	defer d.saMu.Unlock()
	return d.sa
}

// SetupServiceAccount implements api.Backend.
func (d *Daemon) SetupServiceAccount(ctx context.Context, adminUser string, adminPW protocol.Secret) (engine.ServiceStatus, error) {
	if adminUser == "" {
		return engine.ServiceStatus{}, &engine.Error{Code: codes.Missing, Field: "admin_user"}
	}
	if adminPW.Empty() {
		return engine.ServiceStatus{}, &engine.Error{Code: codes.Missing, Field: "admin_password"}
	}
	err := d.mac.Service.Setup(ctx, adminUser, adminPW)
	st := d.refreshServiceAccount(ctx)
	d.bus.publish(engine.Event{Type: engine.EventStatus})
	if err != nil {
		return st, serviceError("setup", err)
	}
	return st, nil
}

// RotateServiceAccount implements api.Backend.
func (d *Daemon) RotateServiceAccount(ctx context.Context) (engine.ServiceStatus, error) {
	err := d.mac.Service.Rotate(ctx)
	st := d.refreshServiceAccount(ctx)
	if err != nil {
		return st, serviceError("rotate", err)
	}
	return st, nil
}

// RemoveServiceAccount implements api.Backend.
func (d *Daemon) RemoveServiceAccount(ctx context.Context) (engine.ServiceStatus, error) {
	err := d.mac.Service.Remove(ctx)
	st := d.refreshServiceAccount(ctx)
	d.bus.publish(engine.Event{Type: engine.EventStatus})
	if err != nil {
		return st, serviceError("remove", err)
	}
	return st, nil
}

func serviceError(step string, err error) error {
	why := "failed"
	switch {
	case errors.Is(err, engine.ErrWrongPassword):
		why = "admin_password"
	case errors.Is(err, engine.ErrNoSecureToken):
		why = "admin_token"
	}
	return &engine.Error{Code: codes.ServiceSetup, Params: map[string]string{"step": step, "why": why}, Detail: err.Error()}
}
