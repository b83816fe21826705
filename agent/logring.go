package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// LogRing keeps the most recent log records for the diagnostics bundle.
// Records hold only what the code logged, and the code never logs a secret
// (protocol.Secret redacts itself even if it tried).
type LogRing struct {
	mu   sync.Mutex
	recs []RingRecord
	next int
	full bool
}

// RingRecord is one remembered log record.
type RingRecord struct {
	Time  time.Time      `json:"time"`
	Level string         `json:"level"`
	Msg   string         `json:"msg"`
	Attrs map[string]any `json:"attrs,omitempty"`
}

// NewLogRing keeps the last n records.
func NewLogRing(n int) *LogRing { return &LogRing{recs: make([]RingRecord, n)} }

func (r *LogRing) add(rec RingRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs[r.next] = rec
	r.next = (r.next + 1) % len(r.recs)
	if r.next == 0 {
		r.full = true
	}
}

// Records returns the remembered records, oldest first.
func (r *LogRing) Records() []RingRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]RingRecord(nil), r.recs[:r.next]...)
	}
	return append(append([]RingRecord(nil), r.recs[r.next:]...), r.recs[:r.next]...)
}

// Handler returns a slog.Handler that records into the ring and passes every
// record on to next.
func (r *LogRing) Handler(next slog.Handler) slog.Handler {
	return &ringHandler{ring: r, next: next}
}

type ringHandler struct {
	ring  *LogRing
	next  slog.Handler
	attrs []slog.Attr
	group string
}

func (h *ringHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *ringHandler) Handle(ctx context.Context, rec slog.Record) error {
	attrs := map[string]any{}
	add := func(a slog.Attr) {
		k := a.Key
		if h.group != "" {
			k = h.group + "." + k
		}
		attrs[k] = a.Value.Resolve().String()
	}
	for _, a := range h.attrs {
		add(a)
	}
	rec.Attrs(func(a slog.Attr) bool { add(a); return true })
	h.ring.add(RingRecord{Time: rec.Time, Level: rec.Level.String(), Msg: rec.Message, Attrs: attrs})
	return h.next.Handle(ctx, rec)
}

func (h *ringHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &ringHandler{ring: h.ring, next: h.next.WithAttrs(as), attrs: append(append([]slog.Attr(nil), h.attrs...), as...), group: h.group}
}

func (h *ringHandler) WithGroup(name string) slog.Handler {
	g := name
	if h.group != "" {
		g = h.group + "." + name
	}
	return &ringHandler{ring: h.ring, next: h.next.WithGroup(name), attrs: h.attrs, group: g}
}
