package api

import (
	"context"
	"net/http"

	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/localapi"
)

// Kept keychains: the list, and the operation that puts one back.

func (s *Server) keptKeychains(w http.ResponseWriter, r *http.Request) {
	user, e := target(callerOf(r), r.URL.Query().Get("user"))
	if e != nil {
		writeError(w, e)
		return
	}
	kept, err := s.b.KeptKeychains(r.Context(), user)
	if err != nil {
		writeError(w, err)
		return
	}
	out := &localapi.KeptKeychains{LocalUser: user, Keychains: []localapi.KeptKeychain{}}
	for _, k := range kept {
		out.Keychains = append(out.Keychains, localapi.KeptKeychain{Name: k.Name, Path: k.Path, KeptAt: k.KeptAt,
			LocalItems: k.LocalItems, Recovered: k.Recovered})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) recoverKeychain(w http.ResponseWriter, r *http.Request) {
	var req localapi.RecoverRequest
	if !readJSON(w, r, &req) {
		return
	}
	defer req.Old.Wipe()
	defer req.Current.Wipe()
	user, e := target(callerOf(r), req.User)
	if e != nil {
		writeError(w, e)
		return
	}
	s.runOperation(w, r, func(ctx context.Context, progress func(engine.Step)) (*engine.Operation, error) {
		return s.b.RecoverKeychain(ctx, user, engine.RecoverRequest{Name: req.Name, Old: req.Old, Current: req.Current}, progress)
	})
}
