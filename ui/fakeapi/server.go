package fakeapi

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/lockstep-dev/lockstep/localapi"
)

// Handler serves the fake over HTTP the way lockstepd serves its local API:
// JSON replies, NDJSON streams for operations and the watch, errors as a
// localapi.Error with lockstepd's HTTP status codes, and the same refusal of
// browser-borne requests.
func (f *Fake) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+localapi.PathStatus, func(w http.ResponseWriter, r *http.Request) {
		st, err := f.Status(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET "+localapi.PathPolicy, func(w http.ResponseWriter, r *http.Request) {
		p, err := f.Policy(r.Context(), r.URL.Query().Get("user"))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	mux.HandleFunc("POST "+localapi.PathChange, func(w http.ResponseWriter, r *http.Request) {
		var req localapi.ChangeRequest
		if !readJSON(w, r, &req) {
			return
		}
		defer req.Current.Wipe()
		defer req.New.Wipe()
		run, err := f.begin(localapi.OpChange)
		if err != nil {
			writeError(w, err)
			return
		}
		s := beginStream(w)
		op := run.change(req, s.step)
		s.send(localapi.Event{Type: localapi.EventResult, Operation: op})
	})
	mux.HandleFunc("POST "+localapi.PathSync, func(w http.ResponseWriter, r *http.Request) {
		var req localapi.SyncRequest
		if !readJSON(w, r, &req) {
			return
		}
		defer req.Previous.Wipe()
		defer req.New.Wipe()
		kind := localapi.OpSync
		if req.ForgotPrevious {
			kind = localapi.OpSyncForgot
		}
		run, err := f.begin(kind)
		if err != nil {
			writeError(w, err)
			return
		}
		s := beginStream(w)
		op := run.sync(req, s.step)
		s.send(localapi.Event{Type: localapi.EventResult, Operation: op})
	})
	mux.HandleFunc("POST "+localapi.PathLink, func(w http.ResponseWriter, r *http.Request) {
		var req localapi.LinkRequest
		if !readJSON(w, r, &req) {
			return
		}
		defer req.Password.Wipe()
		a, err := f.Link(r.Context(), req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, a)
	})
	mux.HandleFunc("GET "+localapi.PathWatch, func(w http.ResponseWriter, r *http.Request) {
		var s *stream
		err := f.Watch(r.Context(), func(ev localapi.Event) error {
			if s == nil {
				s = beginStream(w)
			}
			if !s.send(ev) {
				return errors.New("watcher went away")
			}
			return nil
		})
		if s == nil && err != nil {
			writeError(w, err)
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != localapi.Host || r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "" {
			writeJSON(w, http.StatusForbidden, &localapi.Error{Code: localapi.CodeForbidden, Message: "Request refused."})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Server is a Fake served on a unix socket.
type Server struct {
	Path string
	srv  *http.Server
	done chan struct{}
}

// Serve listens on a unix socket at path (replacing a stale file) and
// serves f until Close.
func Serve(f *Fake, path string) (*Server, error) {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	s := &Server{Path: path, srv: &http.Server{Handler: f.Handler(), ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Close stops the server, ending its streams, and removes the socket.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	_ = os.Remove(s.Path)
	return err
}

type stream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	ok bool
}

func beginStream(w http.ResponseWriter) *stream {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	return &stream{w: w, rc: http.NewResponseController(w), ok: true}
}

func (s *stream) step(st localapi.Step) {
	s.send(localapi.Event{Type: localapi.EventStep, Step: &st})
}

func (s *stream) send(ev localapi.Event) bool {
	if !s.ok {
		return false
	}
	if err := json.NewEncoder(s.w).Encode(ev); err != nil {
		s.ok = false
		return false
	}
	s.ok = s.rc.Flush() == nil
	return s.ok
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, &localapi.Error{Code: localapi.CodeBadRequest, Message: "The request could not be read."})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var e *localapi.Error
	if !errors.As(err, &e) {
		e = &localapi.Error{Code: localapi.CodePlatform, Message: err.Error()}
	}
	code := http.StatusUnprocessableEntity
	switch e.Code {
	case localapi.CodeForbidden:
		code = http.StatusForbidden
	case localapi.CodeBadRequest:
		code = http.StatusBadRequest
	case localapi.CodeBusy:
		code = http.StatusConflict
	case localapi.CodeOffline:
		code = http.StatusServiceUnavailable
	case localapi.CodeThrottled:
		code = http.StatusTooManyRequests
	case localapi.CodePlatform:
		code = http.StatusInternalServerError
	}
	writeJSON(w, code, e)
}
