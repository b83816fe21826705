package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Lockstep's own rules on top of a directory's policy (source.Info's
// ExtraRules): OpenLDAP's ppolicy has a minimum length, history and ages
// but no character classes, so an administrator may add classes, the user
// name rule and a longer minimum with `policy set`. They are kept in the
// store, merged into every policy the Macs get (marked as Lockstep's in
// Policy.Lockstep), and checked before a password is sent to the
// directory, which never sees the rules it does not hold.

// extraRulesSetting names the setting that holds them; the "policy."
// prefix makes replicas on PostgreSQL reload their policy when it changes.
const extraRulesSetting = "policy.lockstep_rules"

// extraRules derives Lockstep's own rules from the policy an administrator
// asked for (the current one, changed by `policy set`'s flags) and the
// directory's own: only what the directory does not hold may differ.
func extraRules(want, dir protocol.Policy) (protocol.Policy, error) {
	var theirs []string
	if want.HistoryCount != dir.HistoryCount {
		theirs = append(theirs, "history (pwdInHistory)")
	}
	if want.MaxAgeDays != dir.MaxAgeDays {
		theirs = append(theirs, "maximum age (pwdMaxAge)")
	}
	if want.ExpiryWarningDays != dir.ExpiryWarningDays {
		theirs = append(theirs, "expiry warning (pwdExpireWarning)")
	}
	if want.MinAgeDays != dir.MinAgeDays {
		theirs = append(theirs, "minimum age (pwdMinAge)")
	}
	if len(theirs) > 0 {
		return protocol.Policy{}, fmt.Errorf("the %s is the directory's own: set it in its pwdPolicy entry (Macs hear of it at once); "+
			"Lockstep adds only character classes, the user name rule and a longer minimum length", strings.Join(theirs, ", "))
	}
	if want.MinLength < dir.MinLength {
		return protocol.Policy{}, fmt.Errorf("the directory's minimum length is %d (pwdMinLength): Lockstep can only add a longer one", dir.MinLength)
	}
	x := protocol.Policy{RequireUpper: want.RequireUpper, RequireLower: want.RequireLower, RequireDigit: want.RequireDigit,
		RequireSymbol: want.RequireSymbol, DisallowUsername: want.DisallowUsername, MinCategories: want.MinCategories}
	if want.MinLength > dir.MinLength {
		x.MinLength = want.MinLength
	}
	return x, nil
}

// withExtra is a directory's policy with Lockstep's own rules on top, each
// one it adds marked in Lockstep.
func withExtra(p, x protocol.Policy) protocol.Policy {
	var codes []string
	add := func(dst *bool, v bool, code string) {
		if v && !*dst {
			*dst = true
			codes = append(codes, code)
		}
	}
	if x.MinLength > p.MinLength {
		p.MinLength = x.MinLength
		codes = append(codes, protocol.RuleMinLength)
	}
	add(&p.RequireUpper, x.RequireUpper, protocol.RuleUpper)
	add(&p.RequireLower, x.RequireLower, protocol.RuleLower)
	add(&p.RequireDigit, x.RequireDigit, protocol.RuleDigit)
	add(&p.RequireSymbol, x.RequireSymbol, protocol.RuleSymbol)
	add(&p.DisallowUsername, x.DisallowUsername, protocol.RuleNotUsername)
	if x.MinCategories > p.MinCategories {
		p.MinCategories = x.MinCategories
		codes = append(codes, protocol.RuleCategories)
	}
	p.Lockstep = strings.Join(codes, ",")
	return p
}

// extra is Lockstep's own rules now (none for a source without them).
func (s *Server) extra() protocol.Policy {
	if x := s.extraRules.Load(); x != nil {
		return *x
	}
	return protocol.Policy{}
}

// withOwnRules is p with Lockstep's own rules on top, for a source that
// takes them; p itself otherwise.
func (s *Server) withOwnRules(p protocol.Policy) protocol.Policy {
	if !s.src.Info().ExtraRules {
		return p
	}
	return withExtra(p, s.extra())
}

// loadExtraRules reads Lockstep's own rules from the store.
func (s *Server) loadExtraRules(ctx context.Context, tx store.Tx) error {
	b, err := tx.Setting(ctx, extraRulesSetting)
	if errors.Is(err, store.ErrNotFound) {
		s.extraRules.Store(&protocol.Policy{})
		return nil
	}
	if err != nil {
		return err
	}
	var x protocol.Policy
	if err := json.Unmarshal(b, &x); err != nil {
		return fmt.Errorf("decoding Lockstep's own password rules: %w", err)
	}
	s.extraRules.Store(&x)
	return nil
}

// setExtraRules is `policy set` for a source that takes Lockstep's own
// rules on top of its policy: it stores them and sends every device its
// policy with them, in one transaction.
func (s *Server) setExtraRules(w http.ResponseWriter, r *http.Request, a actor) {
	var want protocol.Policy
	if e := decodeBody(r, &want); e != nil {
		fail(w, e)
		return
	}
	if err := want.Validate(); err != nil {
		fail(w, protocol.Errorf(protocol.CodeBadRequest, "%v", err))
		return
	}
	dir := s.sourceRules()
	x, err := extraRules(want, dir)
	if err != nil {
		fail(w, protocol.Errorf(protocol.CodeUnsupported, "%v", err))
		return
	}
	b, _ := json.Marshal(x)
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	prev := s.extra()
	restore := func() {
		s.extraRules.Store(&prev)
		merged := withExtra(dir, prev)
		s.policy.Store(&merged)
	}
	// Publish first, so that each device's policy is the new one.
	s.extraRules.Store(&x)
	merged := withExtra(dir, x)
	s.policy.Store(&merged)
	var devs []store.Device
	if err := s.st.View(r.Context(), func(tx store.Tx) error {
		var err error
		devs, err = tx.Devices(r.Context())
		return err
	}); err != nil {
		restore()
		fail(w, s.adminFailed(r, err))
		return
	}
	bodies := map[string][]byte{}
	for _, d := range devs {
		if d.RevokedAt.IsZero() {
			bodies[d.ID], _ = json.Marshal(protocol.PolicyChanged{Policy: s.devicePolicy(r.Context(), d.ID)})
		}
	}
	err = s.update(r.Context(), func(tx store.Tx, ob *outbox) error {
		if err := tx.PutSetting(r.Context(), extraRulesSetting, b); err != nil {
			return err
		}
		if err := a.audit(r.Context(), tx, ob.now, "policy_changed", "", map[string]string{"lockstep_rules": string(b)}); err != nil {
			return err
		}
		for id, body := range bodies {
			if err := ob.addRaw(r.Context(), tx, id, protocol.TypePolicyChanged, body); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		restore()
		fail(w, s.adminFailed(r, err))
		return
	}
	s.log.Info("lockstep's own password rules changed", "rules", s.Policy().Lockstep)
	writeJSON(w, http.StatusOK, s.Policy())
}

// sourceRules is the directory's own default rules, as last read.
func (s *Server) sourceRules() protocol.Policy {
	if p := s.srcRules.Load(); p != nil {
		return *p
	}
	return protocol.Policy{}
}
