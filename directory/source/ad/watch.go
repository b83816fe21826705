package ad

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/source/ldapconn"
)

// maxNotificationsPerConn is AD's default MaxNotificationPerConn (Samba's
// too): a connection holds at most this many change-notification searches.
const maxNotificationsPerConn = 5

// watcher reports changes with AD's change notification control
// (LDAP_SERVER_NOTIFICATION_OID): an asynchronous search per container that
// holds users in scope (the control allows only base and one-level scope),
// one on the domain head and one on the Password Settings Container (for
// policy changes). After a lost connection it reconnects with backoff and
// catches up by uSNChanged from the highest USN it had seen, so nothing
// that changed meanwhile is missed. Where the DC does not offer the
// control, or refuses it, it polls uSNChanged instead and says so in the
// log.
type watcher struct {
	s *Source

	mu         sync.Mutex
	containers map[string]string // lower-case DN → DN
	added      chan struct{}     // the container set grew
	open       int
	polling    bool
	usn        int64  // highest USN seen
	usnDC      string // of this DC (USNs are per DC)
}

func newWatcher(s *Source) *watcher {
	return &watcher{s: s, containers: map[string]string{}, added: make(chan struct{}, 1)}
}

// watchContainer adds a container that holds users in scope.
func (w *watcher) watchContainer(dn string) {
	if dn == "" {
		return
	}
	k := strings.ToLower(normDN(dn))
	w.mu.Lock()
	_, ok := w.containers[k]
	if !ok {
		w.containers[k] = dn
	}
	w.mu.Unlock()
	if !ok {
		select {
		case w.added <- struct{}{}:
		default:
		}
	}
}

func (w *watcher) state() (int, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.open, w.polling
}

func (w *watcher) targets() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.containers))
	for _, dn := range w.containers {
		out = append(out, dn)
	}
	return out
}

// Watch implements source.Source. AD's notifications cannot resume (from
// is ignored): at start every user in scope is reported.
func (s *Source) Watch(ctx context.Context, _ []byte, fn func(source.Event)) error {
	// Learn the containers of every user in scope first.
	if _, err := s.Accounts(ctx); err != nil {
		s.log.Warn("users not listed for watching; containers are added as users are read", "err", err)
	}
	return s.watcher.run(ctx, fn)
}

func (w *watcher) run(ctx context.Context, fn func(source.Event)) error {
	backoff := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		var err error
		if w.s.caps.notify {
			err = w.notify(ctx, fn)
		} else {
			w.s.log.Info("change notification not offered by the domain controller, polling uSNChanged", "interval", w.s.cfg.PollInterval.String())
			err = w.poll(ctx, fn)
		}
		if errors.Is(err, errRefused) {
			w.s.log.Warn("change notification refused by the domain controller, polling uSNChanged", "interval", w.s.cfg.PollInterval.String())
			err = w.poll(ctx, fn)
		}
		if ctx.Err() != nil {
			break
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		w.s.log.Warn("change notification lost, reconnecting", "err", err, "in", wait.Round(time.Millisecond).String())
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		backoff = min(2*backoff, time.Minute)
	}
	w.mu.Lock()
	w.open = 0
	w.mu.Unlock()
	return ctx.Err()
}

// errRefused means the DC refused the notification control.
var errRefused = errors.New("change notification refused")

// result is one notification entry, or the end of a search.
type result struct {
	entry *ldap.Entry
	err   error
	base  string
}

// notify runs one session of notification searches until one of them
// fails or ctx ends. Once they are open it catches up: on the first
// session with every user in scope (the hub compares each with what it
// recorded, so a change made while Lockstep was down is found), later with
// what changed since the highest USN seen.
func (w *watcher) notify(ctx context.Context, fn func(source.Event)) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, 64)
	var conns []*ldap.Conn
	var perConn []int
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		w.mu.Lock()
		w.open = 0
		w.mu.Unlock()
	}()
	started := map[string]bool{}
	// start opens a notification search on base (a container, one level,
	// or an object itself).
	start := func(base string, scope int) error {
		i := len(conns) - 1
		if i < 0 || perConn[i] >= maxNotificationsPerConn {
			c, err := w.s.d.Dial(sctx)
			if err != nil {
				return err
			}
			if err := w.s.svc.BindAs(c); err != nil {
				c.Close()
				return err
			}
			c.SetTimeout(0)
			conns, perConn = append(conns, c), append(perConn, 0)
			i++
		}
		perConn[i]++
		w.s.ops.Searches.Add(1)
		attrs := userAttrs
		if scope == ldap.ScopeBaseObject {
			attrs = domainPolicyAttrs
		}
		req := ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", attrs,
			[]ldap.Control{&criticalNotification{}})
		resp := conns[i].SearchAsync(sctx, req, 16)
		go func() {
			for resp.Next() {
				if e := resp.Entry(); e != nil {
					select {
					case results <- result{entry: e, base: base}:
					case <-sctx.Done():
						return
					}
				}
			}
			err := resp.Err()
			if err == nil {
				err = errors.New("the notification search ended")
			}
			select {
			case results <- result{err: err, base: base}:
			case <-sctx.Done():
			}
		}()
		w.mu.Lock()
		w.open++
		w.mu.Unlock()
		return nil
	}
	startAll := func() error {
		for _, dn := range w.targets() {
			if !started[strings.ToLower(dn)] {
				started[strings.ToLower(dn)] = true
				if err := start(dn, ldap.ScopeSingleLevel); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := start(w.s.caps.defaultNC, ldap.ScopeBaseObject); err != nil {
		return err
	}
	started[strings.ToLower(w.s.caps.defaultNC)] = true
	w.watchContainer(w.s.caps.passwordsNC)
	if err := startAll(); err != nil {
		return err
	}
	// A refusal comes back at once; give the searches a moment to fail
	// before the catch-up, so that nothing is read twice for nothing.
	select {
	case r := <-results:
		if r.err != nil {
			return w.searchError(r)
		}
		w.handle(ctx, r.entry, fn)
	case <-time.After(200 * time.Millisecond):
	}
	if err := w.catchUp(ctx, fn); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.added:
			if err := startAll(); err != nil {
				return err
			}
		case r := <-results:
			if r.err != nil {
				return w.searchError(r)
			}
			w.handle(ctx, r.entry, fn)
		}
	}
}

// searchError classifies a failed notification search.
func (w *watcher) searchError(r result) error {
	for _, code := range []uint16{ldap.LDAPResultUnavailableCriticalExtension, ldap.LDAPResultUnwillingToPerform,
		ldap.LDAPResultAdminLimitExceeded, ldap.LDAPResultProtocolError} {
		if ldap.IsErrorWithCode(r.err, code) {
			w.s.log.Info("notification search refused", "base", r.base, "err", r.err)
			return errRefused
		}
	}
	return r.err
}

// catchUp reports what changed since the highest USN seen (everything the
// first time, or on another DC, whose USNs are not comparable), then
// records the DC's highest USN.
func (w *watcher) catchUp(ctx context.Context, fn func(source.Event)) error {
	var root []*ldap.Entry
	err := w.s.svc.Do(ctx, func(c *ldap.Conn) error {
		var err error
		root, err = w.s.d.Search(c, "", ldap.ScopeBaseObject, "(objectClass=*)", []string{"highestCommittedUSN", "dsServiceName"})
		return err
	})
	if err != nil || len(root) != 1 {
		return errors.Join(errors.New("reading the rootDSE"), err)
	}
	high := attrInt(root[0], "highestCommittedUSN")
	dcName := root[0].GetAttributeValue("dsServiceName")
	w.mu.Lock()
	from, same := w.usn, w.usnDC == dcName
	w.mu.Unlock()
	if !same {
		from = 0
	}
	if err := w.changedSince(ctx, from, fn); err != nil {
		return err
	}
	w.mu.Lock()
	w.usn, w.usnDC = max(w.usn, high), dcName
	if !same {
		w.usn = high
	}
	w.mu.Unlock()
	return nil
}

// changedSince reports every user in scope, and the policy, changed after
// USN from.
func (w *watcher) changedSince(ctx context.Context, from int64, fn func(source.Event)) error {
	var es []*ldap.Entry
	f := "(&" + w.s.filter + ")(sAMAccountName=*)(uSNChanged>=" + strconv.FormatInt(from+1, 10) + "))"
	err := w.s.svc.Do(ctx, func(c *ldap.Conn) error {
		var err error
		es, err = w.s.d.Search(c, w.s.cfg.BaseDN, ldap.ScopeWholeSubtree, f, userAttrs)
		return err
	})
	if err != nil {
		return err
	}
	var high int64
	for _, e := range es {
		high = max(high, attrInt(e, "uSNChanged"))
		w.s.watcher.watchContainer(ldapconn.ParentDN(e.DN))
		if a := w.s.account(ctx, e); a.User != "" {
			fn(source.Event{User: a.User, Account: a})
		}
	}
	if changed, err := w.s.loadPolicies(ctx); err == nil && changed {
		fn(source.Event{Policy: true})
	}
	w.mu.Lock()
	w.usn = max(w.usn, high)
	w.mu.Unlock()
	return nil
}

// poll is the fallback: uSNChanged every PollInterval.
func (w *watcher) poll(ctx context.Context, fn func(source.Event)) error {
	w.mu.Lock()
	w.polling = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.polling = false
		w.mu.Unlock()
	}()
	if err := w.catchUp(ctx, fn); err != nil {
		return err
	}
	t := time.NewTicker(w.s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if err := w.catchUp(ctx, fn); err != nil {
			return err
		}
	}
}

// handle acts on one notification entry: the domain head or a PSO is a
// policy change; a user in scope is reported with its state.
func (w *watcher) handle(ctx context.Context, e *ldap.Entry, fn func(source.Event)) {
	if usn := attrInt(e, "uSNChanged"); usn > 0 {
		w.mu.Lock()
		w.usn = max(w.usn, usn)
		w.mu.Unlock()
	}
	dn := strings.ToLower(normDN(e.DN))
	if dn == strings.ToLower(normDN(w.s.caps.defaultNC)) || strings.HasSuffix(dn, ","+strings.ToLower(normDN(w.s.caps.passwordsNC))) {
		if changed, err := w.s.loadPolicies(ctx); err == nil && changed {
			fn(source.Event{Policy: true})
		}
		return
	}
	w.emit(ctx, e, fn)
}

// emit reports a user whose entry changed, read again within scope (a
// notification search sees every object of the container, in scope or
// not).
func (w *watcher) emit(ctx context.Context, e *ldap.Entry, fn func(source.Event)) {
	name := e.GetAttributeValue("sAMAccountName")
	if name == "" || strings.EqualFold(e.GetAttributeValue("isDeleted"), "TRUE") {
		return
	}
	a, err := w.s.Account(ctx, name)
	if err != nil {
		if !errors.Is(err, source.ErrUnknownUser) {
			w.s.log.Warn("changed user not read", "user", name, "err", err)
		}
		return
	}
	fn(source.Event{User: a.User, Account: a})
}

// criticalNotification is the change notification control, critical, so
// that a DC without it refuses the search rather than running it once.
type criticalNotification struct {
	ldap.ControlMicrosoftNotification
}

func (c *criticalNotification) Encode() *ber.Packet {
	p := c.ControlMicrosoftNotification.Encode()
	if len(p.Children) == 1 {
		p.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, "Criticality"))
	}
	return p
}
