package ldap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	ldapv3 "github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
)

// checkpointPrefix starts a checkpoint of this source: the scope (base DN,
// filter, user attribute) the cookie is for, then the cookie. A cookie of
// another scope is not used: it would not bring the users now in scope.
const checkpointPrefix = "ldap-sync-1 "

func (s *Source) checkpoint(cookie []byte) []byte {
	return append([]byte(checkpointPrefix+s.scope+" "), cookie...)
}

func (s *Source) cookieFrom(from []byte) []byte {
	p := []byte(checkpointPrefix + s.scope + " ")
	if !bytes.HasPrefix(from, p) || len(from) == len(p) {
		return nil
	}
	return append([]byte(nil), from[len(p):]...)
}

// errRefreshRequired is syncprov's e-syncRefreshRequired (4096): the
// cookie is too old or unknown, and the content must be refreshed whole.
const resultSyncRefreshRequired = 4096

// Watch implements source.Source: one syncrepl refreshAndPersist search
// (RFC 4533) over the users in scope, and one on each password policy
// entry; the first refresh reports every user (from is nil) or only what
// changed since the cookie in from. Each change comes with its cookie,
// reported as a checkpoint for the hub to keep. After a lost connection
// the search starts again from the last cookie, with backoff (1 s doubling
// to a minute, with jitter). Without syncprov it polls pwdChangedTime,
// modifyTimestamp and pwdAccountLockedTime every PollInterval.
func (s *Source) Watch(ctx context.Context, from []byte, fn func(source.Event)) error {
	cookie := s.cookieFrom(from)
	if s.caps.syncrepl {
		if cookie != nil {
			s.log.Info("syncrepl resuming from the stored sync cookie: only what changed since is replayed")
		} else {
			s.log.Info("syncrepl starting with a refresh of every user in scope")
		}
	}
	backoff := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		var err error
		if s.caps.syncrepl {
			cookie, err = s.syncrepl(ctx, cookie, fn)
			if errors.Is(err, errRefused) {
				s.log.Warn("syncrepl refused by the LDAP server (no syncprov on this database?), polling pwdChangedTime",
					"interval", s.cfg.PollInterval.String(), "err", err)
				err = s.poll(ctx, fn)
			}
		} else {
			err = s.poll(ctx, fn)
		}
		if ctx.Err() != nil {
			break
		}
		if ldapv3.IsErrorWithCode(err, resultSyncRefreshRequired) {
			s.log.Info("the LDAP server asked for a full refresh (the sync cookie is too old)")
			cookie = nil
			continue
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		s.log.Warn("syncrepl lost, reconnecting", "err", err, "in", wait.Round(time.Millisecond).String())
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		backoff = min(2*backoff, time.Minute)
	}
	return ctx.Err()
}

func (s *Source) setState(syncing, polling bool) {
	s.wmu.Lock()
	s.syncing, s.polling = syncing, polling
	s.wmu.Unlock()
}

// syncResult is one message of a syncrepl search.
type syncResult struct {
	entry    *ldapv3.Entry
	controls []ldapv3.Control
	err      error
	policy   bool // of a policy search
}

// syncrepl runs one session until it fails or ctx ends, and returns the
// last cookie.
func (s *Source) syncrepl(ctx context.Context, cookie []byte, fn func(source.Event)) ([]byte, error) {
	defer s.setState(false, false)
	c, err := s.d.Dial(ctx)
	if err != nil {
		return cookie, err
	}
	defer c.Close()
	if err := s.svc.BindAs(c); err != nil {
		return cookie, err
	}
	c.SetTimeout(0) // the searches last as long as the session
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan syncResult, 64)
	run := func(req *ldapv3.SearchRequest, ck []byte, policy bool) {
		s.ops.Searches.Add(1)
		r := c.Syncrepl(sctx, req, 64, ldapv3.SyncRequestModeRefreshAndPersist, ck, false)
		go func() {
			for r.Next() {
				select {
				case results <- syncResult{entry: r.Entry(), controls: r.Controls(), policy: policy}:
				case <-sctx.Done():
					return
				}
			}
			err := r.Err()
			if err == nil {
				err = errors.New("the syncrepl search ended")
			}
			select {
			case results <- syncResult{err: err, policy: policy}:
			case <-sctx.Done():
			}
		}()
	}
	run(ldapv3.NewSearchRequest(s.cfg.BaseDN, ldapv3.ScopeWholeSubtree, ldapv3.NeverDerefAliases, 0, 0, false, s.allFilter(),
		s.userAttrs(), nil), cookie, false)
	for _, dn := range s.policyDNs() {
		run(ldapv3.NewSearchRequest(dn, ldapv3.ScopeBaseObject, ldapv3.NeverDerefAliases, 0, 0, false, "(objectClass=pwdPolicy)",
			policyAttrs, nil), nil, true)
	}
	for {
		var r syncResult
		select {
		case <-ctx.Done():
			return cookie, ctx.Err()
		case r = <-results:
		}
		if r.err != nil {
			return cookie, syncError(r.err)
		}
		if r.policy {
			s.policyEntry(r, fn)
			continue
		}
		if next, changed := s.userResult(ctx, r, fn); changed {
			cookie = next
			fn(source.Event{Checkpoint: s.checkpoint(cookie)})
		}
	}
}

// syncError classifies a failed syncrepl search: a server without
// syncprov on this database refuses the critical control.
func syncError(err error) error {
	if ldapv3.IsErrorWithCode(err, ldapv3.LDAPResultSizeLimitExceeded) {
		return fmt.Errorf("the LDAP server's size limit for Lockstep's bind account is below the number of users in scope "+
			"(slapd's default is 500): raise it, e.g. limits dn.exact=\"BIND-DN\" size=unlimited: %w", err)
	}
	for _, code := range []uint16{ldapv3.LDAPResultUnavailableCriticalExtension, ldapv3.LDAPResultUnwillingToPerform,
		ldapv3.LDAPResultProtocolError} {
		if ldapv3.IsErrorWithCode(err, code) {
			return errors.Join(errRefused, err)
		}
	}
	return err
}

// userResult reports a user entry (added or modified) and returns the
// cookie the message carries, if any.
func (s *Source) userResult(ctx context.Context, r syncResult, fn func(source.Event)) ([]byte, bool) {
	var cookie []byte
	state := ldapv3.SyncStateModify
	for _, ctl := range r.controls {
		switch c := ctl.(type) {
		case *ldapv3.ControlSyncState:
			state, cookie = c.State, c.Cookie
		case *ldapv3.ControlSyncInfo:
			switch {
			case c.NewCookie != nil:
				cookie = c.NewCookie.Cookie
			case c.RefreshDelete != nil:
				cookie = c.RefreshDelete.Cookie
				if c.RefreshDelete.RefreshDone {
					s.setState(true, false)
				}
			case c.RefreshPresent != nil:
				cookie = c.RefreshPresent.Cookie
				if c.RefreshPresent.RefreshDone {
					s.setState(true, false)
				}
			case c.SyncIdSet != nil:
				cookie = c.SyncIdSet.Cookie
			}
		case *ldapv3.ControlSyncDone:
			cookie = c.Cookie
		}
	}
	if r.entry != nil && r.entry.DN != "" && (state == ldapv3.SyncStateAdd || state == ldapv3.SyncStateModify) {
		if a := s.account(ctx, r.entry); a.User != "" {
			fn(source.Event{User: a.User, Account: a})
		}
	}
	return cookie, len(cookie) > 0
}

// policyEntry acts on a policy entry's message: a policy that differs from
// the one known is a policy change.
func (s *Source) policyEntry(r syncResult, fn func(source.Event)) {
	if r.entry == nil || r.entry.DN == "" || len(r.entry.Attributes) == 0 {
		return
	}
	p := policyFromEntry(r.entry)
	k := normDN(r.entry.DN)
	s.pmu.Lock()
	old, ok := s.policies[k]
	changed := !ok || old != p
	s.policies[k] = p
	s.pmu.Unlock()
	if changed {
		s.log.Info("password policy changed", "policy_dn", r.entry.DN)
		fn(source.Event{Policy: true})
	}
}

// poll is the fallback: every user at first, then those whose password,
// lock or entry changed since the newest time seen (inclusive: a change
// in the same second is read again, and the hub compares).
func (s *Source) poll(ctx context.Context, fn func(source.Event)) error {
	s.setState(false, true)
	defer s.setState(false, false)
	since := ""
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		filter := s.allFilter()
		if since != "" {
			v := ldapv3.EscapeFilter(since)
			filter = "(&" + filter + "(|(pwdChangedTime>=" + v + ")(modifyTimestamp>=" + v + ")(pwdAccountLockedTime>=" + v + ")))"
		}
		es, err := s.svc.Search(ctx, s.cfg.BaseDN, ldapv3.ScopeWholeSubtree, filter, s.userAttrs())
		if err != nil {
			return err
		}
		for _, e := range es {
			for _, attr := range []string{"modifyTimestamp", "pwdChangedTime", "pwdAccountLockedTime"} {
				if v := e.GetAttributeValue(attr); v != lockedForever && len(v) == len("20060102150405Z") && v > since {
					since = v
				}
			}
			if a := s.account(ctx, e); a.User != "" {
				fn(source.Event{User: a.User, Account: a})
			}
		}
		if changed, err := s.reloadPolicies(ctx); err == nil && changed {
			fn(source.Event{Policy: true})
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
