package directory

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// dispatch handles one frame from an authenticated device and returns the
// reply, or nil when none is due. It never panics on any input (see
// FuzzDispatch) and never lets one bad frame affect another connection.
func (s *Server) dispatch(ctx context.Context, sess session, data []byte) *protocol.Envelope {
	env, err := protocol.Decode(data)
	if err != nil {
		return errorReply(data, asProtoError(err))
	}
	defer clear(env.Body) // it may hold a password, base64-encoded
	a := actor{kind: "device", device: sess.deviceID, addr: sess.addr}
	switch env.Type {
	case protocol.TypeVerifyPassword:
		var req protocol.VerifyPasswordRequest
		if err := env.Decode(&req); err != nil {
			return reply(env, nil, asProtoError(err))
		}
		defer req.Password.Wipe()
		st, perr := s.verifyPassword(ctx, a, &req)
		return reply(env, st, perr)

	case protocol.TypeChangePassword:
		var req protocol.ChangePasswordRequest
		if err := env.Decode(&req); err != nil {
			return reply(env, nil, asProtoError(err))
		}
		defer req.Current.Wipe()
		defer req.New.Wipe()
		return s.idempotent(ctx, sess, env, &req, func(commit commitFunc) (any, *protocol.Error) {
			st, perr := s.changePassword(ctx, a, &req, env.IdempotencyKey, func(ctx context.Context, tx store.Tx, st protocol.AccountState) error {
				return commit(ctx, tx, st)
			})
			return st, perr
		})

	case protocol.TypeGetPolicy:
		return reply(env, s.devicePolicy(ctx, sess.deviceID), nil)

	case protocol.TypeGetAccount:
		var req protocol.GetAccountRequest
		if err := env.Decode(&req); err != nil {
			return reply(env, nil, asProtoError(err))
		}
		st, perr := s.getAccount(ctx, a, &req)
		return reply(env, st, perr)

	case protocol.TypeAckSync:
		var req protocol.AckSyncRequest
		if err := env.Decode(&req); err != nil {
			return reply(env, nil, asProtoError(err))
		}
		return s.idempotent(ctx, sess, env, &req, func(commit commitFunc) (any, *protocol.Error) {
			return s.ackSync(ctx, a, &req, commit)
		})

	case protocol.TypeBeginMFAEnrollment:
		var req protocol.MFAEnrollmentRequest
		if err := env.Decode(&req); err != nil {
			return reply(env, nil, asProtoError(err))
		}
		if perr := s.deviceEnrolment(ctx, a, req.User); perr != nil {
			return reply(env, nil, perr)
		}
		key, perr := s.beginEnrolment(ctx, a, req.User)
		if perr != nil && perr.Code == protocol.CodeUnknownUser {
			perr = errNotBound // deleted meanwhile
		}
		res := reply(env, key, perr)
		key.Secret.Wipe()
		key.URI.Wipe()
		return res

	case protocol.TypeConfirmMFAEnrollment:
		var req protocol.ConfirmMFAEnrollmentRequest
		if err := env.Decode(&req); err != nil {
			return reply(env, nil, asProtoError(err))
		}
		if perr := s.deviceEnrolment(ctx, a, req.User); perr != nil {
			return reply(env, nil, perr)
		}
		return s.idempotent(ctx, sess, env, &req, func(commit commitFunc) (any, *protocol.Error) {
			return s.confirmEnrolment(ctx, a, req.User, req.Code, commit)
		})

	case protocol.TypeReportPlaces:
		var req protocol.ReportPlacesRequest
		if err := env.Decode(&req); err != nil {
			return reply(env, nil, asProtoError(err))
		}
		return reply(env, nil, s.reportPlaces(ctx, a, &req))

	case protocol.TypeAckPush:
		var req protocol.AckPush
		if err := env.Decode(&req); err != nil {
			return reply(env, nil, asProtoError(err))
		}
		dev, seq := sess.deviceID, req.Seq
		s.bg.add(func(ctx context.Context, tx store.Tx) error { return tx.AckPushes(ctx, dev, seq) })
		if env.ID == "" {
			return nil
		}
		return reply(env, nil, nil)
	}
	return reply(env, nil, protocol.Errorf(protocol.CodeBadRequest, "%s is not a request an agent can send", env.Type))
}

// reply builds the result envelope for req.
func reply(req *protocol.Envelope, v any, perr *protocol.Error) *protocol.Envelope {
	res, err := protocol.Result(req, v, perr)
	if err != nil {
		res, _ = protocol.Result(req, nil, protocol.Errorf(protocol.CodeInternal, "encoding the result failed"))
	}
	return res
}

// errorReply answers a frame that did not decode, echoing its id when one
// can be read.
func errorReply(data []byte, perr *protocol.Error) *protocol.Envelope {
	var probe struct {
		ID any `json:"id"`
	}
	_ = json.NewDecoder(bytes.NewReader(data)).Decode(&probe)
	id, _ := probe.ID.(string)
	if len(id) > protocol.MaxIDLen || !utf8.ValidString(id) {
		id = ""
	}
	return &protocol.Envelope{V: protocol.Version, Type: protocol.TypeResult, ID: id, Error: perr}
}

// commitFunc records an operation's successful outcome inside the
// operation's own transaction.
type commitFunc func(ctx context.Context, tx store.Tx, result any) error

// outcome is what an idempotency record stores: the result minus its id.
type outcome struct {
	Body  json.RawMessage `json:"body,omitempty"`
	Error *protocol.Error `json:"error,omitempty"`
}

// remembered says which failures are stored as the first outcome. The
// transient ones (and mfa_required, which changes nothing and asks for a
// new request) are evaluated again on a retry.
func remembered(code string) bool {
	switch code {
	case protocol.CodeInternal, protocol.CodeRateLimited, protocol.CodeLocked, protocol.CodeMFARequired,
		protocol.CodeBadRequest, protocol.CodeUnknownUser, protocol.CodeUnsupported, protocol.CodeNotBound:
		return false
	}
	return true
}

// idempotent runs a mutating request at most once per (device, key): a
// retry with the same request returns the first outcome, the same key
// with a different request is refused.
func (s *Server) idempotent(ctx context.Context, sess session, env *protocol.Envelope, req any,
	run func(commitFunc) (any, *protocol.Error)) *protocol.Envelope {
	fp := s.keys.fingerprint(append([][]byte{[]byte(env.Type)}, fingerprintParts(req)...)...)
	unlock := s.keyLocks.lock(sess.deviceID + "\x00" + env.IdempotencyKey)
	defer unlock()

	// first returns the outcome recorded for this key, or nil.
	first := func() (*protocol.Envelope, error) {
		var rec store.IdempotencyRecord
		err := s.st.View(ctx, func(tx store.Tx) error {
			var err error
			rec, err = tx.Idempotency(ctx, sess.deviceID, env.IdempotencyKey)
			return err
		})
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, nil
		case err != nil:
			return nil, err
		case !hmac.Equal(rec.Fingerprint, fp):
			return reply(env, nil, protocol.Errorf(protocol.CodeIdempotencyReuse,
				"idempotency_key %q was already used for a different request", env.IdempotencyKey)), nil
		}
		var o outcome
		if err := json.Unmarshal(rec.Outcome, &o); err != nil {
			return nil, err
		}
		s.log.Debug("idempotent request replayed", "device_id", sess.deviceID, "type", env.Type)
		return &protocol.Envelope{V: protocol.Version, Type: protocol.TypeResult, ID: env.ID, Body: o.Body, Error: o.Error}, nil
	}
	prev, err := first()
	if err != nil {
		return reply(env, nil, s.internalError("idempotency record not read", err, "device_id", sess.deviceID))
	}
	if prev != nil {
		return prev
	}

	record := func(ctx context.Context, tx store.Tx, o outcome) error {
		b, err := json.Marshal(o)
		if err != nil {
			return fmt.Errorf("encoding outcome: %w", err)
		}
		return tx.PutIdempotency(ctx, store.IdempotencyRecord{DeviceID: sess.deviceID, Key: env.IdempotencyKey,
			Fingerprint: fp, Outcome: b, CreatedAt: s.now()}, maxIdempotencyRecords)
	}
	res, perr := run(func(ctx context.Context, tx store.Tx, result any) error {
		b, err := json.Marshal(result)
		if err != nil {
			return fmt.Errorf("encoding outcome: %w", err)
		}
		return record(ctx, tx, outcome{Body: b})
	})
	if perr == nil {
		return reply(env, res, perr)
	}
	// The lock above is per process: with replicas sharing a database the
	// same request may have run on another one meanwhile (an agent that
	// retried elsewhere). Its recorded outcome came first, so it stands;
	// here that shows as a failed transaction or a refused record.
	if perr.Code == protocol.CodeInternal {
		if prev, err := first(); err == nil && prev != nil {
			return prev
		}
	}
	if remembered(perr.Code) {
		err := s.st.Update(ctx, func(tx store.Tx) error { return record(ctx, tx, outcome{Error: perr}) })
		if errors.Is(err, store.ErrExists) {
			if prev, err := first(); err == nil && prev != nil {
				return prev
			}
		} else if err != nil {
			s.log.Error("idempotency record not written", "err", err)
		}
	}
	return reply(env, res, perr)
}

// maxIdempotencyRecords is how many first outcomes are kept per device:
// an agent retries a request only until it has the answer, so the newest
// few hundred cover every retry while a device flooding distinct keys
// cannot grow the table.
const maxIdempotencyRecords = 256

// fingerprintParts are the fields of a mutating request that make it the
// same request. Secrets go in as their bytes (never re-encoded as JSON,
// whose pooled buffers would keep a copy).
func fingerprintParts(req any) [][]byte {
	switch r := req.(type) {
	case *protocol.ChangePasswordRequest:
		return [][]byte{[]byte(r.User), r.Current, r.New, []byte(r.TOTP)}
	case *protocol.AckSyncRequest:
		return [][]byte{[]byte(r.User), []byte(fmt.Sprint(r.PasswordVersion))}
	case *protocol.ConfirmMFAEnrollmentRequest:
		return [][]byte{[]byte(r.User), []byte(r.Code)}
	}
	panic(fmt.Sprintf("no fingerprint for %T", req))
}

// getAccount answers get_account for a user bound to the device, and
// records the device's local name for the user when it changed. For any
// other user, known or not, it answers not_bound after reading only the
// binding: no argon2id work, no lockout budget spent, and the same answer
// and cost whether the user exists.
func (s *Server) getAccount(ctx context.Context, a actor, req *protocol.GetAccountRequest) (protocol.AccountState, *protocol.Error) {
	b, bound, err := s.bound(ctx, a.device, req.User)
	if err != nil {
		return protocol.AccountState{}, s.internalError("binding not read", err, "device_id", a.device)
	}
	if !bound {
		return protocol.AccountState{}, errNotBound
	}
	u, perr := s.loadUser(ctx, req.User)
	if perr != nil {
		if perr.Code == protocol.CodeUnknownUser { // deleted meanwhile
			return protocol.AccountState{}, errNotBound
		}
		return protocol.AccountState{}, perr
	}
	st, err := s.stateNow(ctx, u.Name)
	if err != nil {
		return protocol.AccountState{}, s.internalError("account state not read", err, "user", u.Name)
	}
	local := req.LocalName
	if local == "" {
		local = req.User
	}
	if b.LocalName != local {
		if ok, wait := s.limits.allowKey(&s.limits.device, a.device, s.now()); !ok {
			s.noise(a, "rate_limited", u.Name, nil)
			return protocol.AccountState{}, &protocol.Error{Code: protocol.CodeRateLimited,
				Message: "Too many requests; wait before trying again.", RetryAfter: retrySeconds(wait)}
		}
		err := s.update(ctx, func(tx store.Tx, out *outbox) error {
			if err := tx.Bind(ctx, store.Binding{DeviceID: a.device, User: u.Name, LocalName: local, BoundAt: out.now}); err != nil {
				return err
			}
			return a.audit(ctx, tx, out.now, "local_name_set", u.Name, map[string]string{"local_name": local})
		})
		if err != nil {
			return protocol.AccountState{}, s.internalError("binding not stored", err, "user", u.Name, "device_id", a.device)
		}
	}
	return st, nil
}

// ackSync records the password version a device holds everywhere.
func (s *Server) ackSync(ctx context.Context, a actor, req *protocol.AckSyncRequest, commit commitFunc) (any, *protocol.Error) {
	if ok, wait := s.limits.allowKey(&s.limits.device, a.device, s.now()); !ok {
		s.noise(a, "rate_limited", req.User, nil)
		return nil, &protocol.Error{Code: protocol.CodeRateLimited,
			Message: "Too many requests; wait before trying again.", RetryAfter: retrySeconds(wait)}
	}
	var res protocol.AccountState
	var perr *protocol.Error
	err := s.update(ctx, func(tx store.Tx, out *outbox) error {
		perr = nil
		if _, err := tx.Binding(ctx, a.device, req.User); errors.Is(err, store.ErrNotFound) {
			perr = errNotBound
			return nil
		} else if err != nil {
			return err
		}
		u, err := tx.User(ctx, req.User)
		if err != nil {
			return err
		}
		if req.PasswordVersion > u.PasswordVersion {
			perr = protocol.Errorf(protocol.CodeBadRequest, "password_version %d is newer than the directory's %d", req.PasswordVersion, u.PasswordVersion)
			return nil
		}
		if err := tx.SetSyncedVersion(ctx, a.device, u.Name, req.PasswordVersion, out.now); err != nil {
			return err
		}
		if err := a.audit(ctx, tx, out.now, "sync_acknowledged", u.Name, map[string]string{"password_version": fmt.Sprint(req.PasswordVersion)}); err != nil {
			return err
		}
		sa, err := tx.SourceAccount(ctx, u.Name)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		res = s.accountState(u, sa)
		return commit(ctx, tx, res)
	})
	if err != nil {
		return nil, s.internalError("sync acknowledgement not stored", err, "user", req.User, "device_id", a.device)
	}
	if perr != nil {
		return nil, perr
	}
	return res, nil
}

// keyedMutex serialises work per key and forgets keys nobody holds.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu sync.Mutex
	n  int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*keyedEntry)
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.n++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.n--; e.n == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
