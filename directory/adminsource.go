package directory

import (
	"context"
	"errors"
	"net/http"
	"sort"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// The admin API's view of users a directory behind Lockstep owns (Active
// Directory): every user in scope, from the source, with what Lockstep
// keeps of them (password version, MFA, devices) where it has a record.

// sourceUser is the admin view of a source's account and the hub's record
// of it (u nil: none yet).
func (s *Server) sourceUser(ctx context.Context, tx store.Tx, acct source.Account, u *store.User, withDevices bool) (admin.User, error) {
	var out admin.User
	if u != nil {
		var err error
		if out, err = s.adminUser(ctx, tx, *u, withDevices); err != nil {
			return out, err
		}
	} else {
		out = admin.User{Name: acct.User, DisplayName: acct.DisplayName, MustChange: acct.MustChange, Devices: []admin.Binding{},
			Source: s.src.Info().Kind, PasswordChangedAt: acct.ChangedAt, ExpiresAt: acct.ExpiresAt}
	}
	out.Where, out.Disabled = acct.Where, acct.Disabled
	if acct.Email != "" {
		out.Email = acct.Email
	}
	out.Expired, out.GraceLogins = acct.Expired, acct.GraceLogins
	out.MustChange = acct.MustChange
	if acct.Locked {
		out.Locked, out.LockedUntil = true, acct.LockedUntil
	}
	if acct.ExpiresAt != nil {
		out.ExpiresAt = acct.ExpiresAt
	}
	if acct.Policy != nil {
		out.Policy = acct.Policy.Name
	}
	return out, nil
}

func (s *Server) adminListSourceUsers(w http.ResponseWriter, r *http.Request) {
	accts, err := s.src.Accounts(r.Context())
	if err != nil {
		fail(w, s.adminSourceError(r, "users not listed", "", err))
		return
	}
	sort.Slice(accts, func(i, j int) bool { return accts[i].User < accts[j].User })
	out := make([]admin.User, 0, len(accts))
	err = s.st.View(r.Context(), func(tx store.Tx) error {
		for _, a := range accts {
			s.notePolicy(a)
			var up *store.User
			if u, err := tx.User(r.Context(), a.User); err == nil {
				up = &u
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			au, err := s.sourceUser(r.Context(), tx, a, up, false)
			if err != nil {
				return err
			}
			out = append(out, au)
		}
		return nil
	})
	if err != nil {
		fail(w, s.adminFailed(r, err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) showSourceUser(ctx context.Context, name string) (admin.User, *protocol.Error) {
	acct, err := s.src.Account(ctx, name)
	if errors.Is(err, source.ErrUnknownUser) {
		return admin.User{}, protocol.Errorf(protocol.CodeUnknownUser, "no directory user %q", name)
	}
	if err != nil {
		return admin.User{}, s.internalError("the directory could not read the user", err, "user", name)
	}
	s.notePolicy(acct)
	var out admin.User
	err = s.st.View(ctx, func(tx store.Tx) error {
		var up *store.User
		if u, err := tx.User(ctx, name); err == nil {
			up = &u
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		var err error
		out, err = s.sourceUser(ctx, tx, acct, up, true)
		return err
	})
	if err != nil {
		return out, s.internalError("user not read", err, "user", name)
	}
	return out, nil
}
