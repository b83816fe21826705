package directory

import (
	"context"
	"errors"

	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// reportPlaces records what a device says of its user's places (the
// directory, the Mac account, FileVault, the login keychain: a state code
// and when the Mac established it, never a secret), for administrators:
// the console shows which Macs are out of step. Only a device bound to the
// user may report, within its write rate; the write is batched with the
// other background writes, so a report costs no transaction of its own.
func (s *Server) reportPlaces(ctx context.Context, a actor, req *protocol.ReportPlacesRequest) *protocol.Error {
	_, bound, err := s.bound(ctx, a.device, req.User)
	if err != nil {
		return s.internalError("binding not read", err, "user", req.User, "device_id", a.device)
	}
	if !bound {
		return errNotBound
	}
	if ok, wait := s.limits.allowKey(&s.limits.device, a.device, s.now()); !ok {
		s.noise(a, "rate_limited", req.User, nil)
		return &protocol.Error{Code: protocol.CodeRateLimited, Message: "Too many requests; wait before trying again.", RetryAfter: retrySeconds(wait)}
	}
	now := s.now()
	ps := make([]store.PlaceState, 0, len(req.Places))
	for _, p := range req.Places {
		at := p.At.UTC()
		if at.After(now) || at.IsZero() {
			at = now // a Mac's clock ahead of ours says nothing more
		}
		ps = append(ps, store.PlaceState{DeviceID: a.device, User: req.User, Place: p.Place, State: p.State, At: at, ReportedAt: now})
	}
	dev, user := a.device, req.User
	s.bg.add(func(ctx context.Context, tx store.Tx) error {
		err := tx.PutPlaceStates(ctx, dev, user, ps)
		if errors.Is(err, store.ErrNotFound) {
			return nil // unbound meanwhile
		}
		return err
	})
	return nil
}
