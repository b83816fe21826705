package protocol

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
)

// Marshal encodes v as json.Marshal does, except that no Secret in v passes
// through encoding/json: its buffers are pooled and never wiped, so every
// password encoded there would stay in memory until the buffer happened to
// be reused. Each Secret field of v (of v's struct, of structs within it)
// is encoded as a random marker instead, and the result is rebuilt in one
// buffer of the exact size with each marker replaced by the secret's
// base64, written there directly. That buffer is the only copy: the caller
// wipes it after use.
func Marshal(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return json.Marshal(v)
	}
	cp := reflect.New(rv.Type()).Elem()
	cp.Set(rv) // a shallow copy whose Secret fields are swapped for markers
	var subs []substitution
	if err := markSecrets(cp, &subs); err != nil {
		return nil, err
	}
	if len(subs) == 0 {
		return json.Marshal(v)
	}
	js, err := json.Marshal(cp.Interface())
	if err != nil {
		return nil, err
	}
	return splice(js, subs)
}

// substitution replaces a marker (as it appears in the JSON) with what is
// written in its place.
type substitution struct {
	marker []byte
	size   int
	write  func(dst []byte)
}

var secretType = reflect.TypeFor[Secret]()

// markSecrets replaces, in the settable struct v, each non-empty Secret
// field (and those of struct fields) with a marker, and records the
// substitution.
func markSecrets(v reflect.Value, subs *[]substitution) error {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if !v.Type().Field(i).IsExported() {
			continue
		}
		switch {
		case f.Type() == secretType:
			s := f.Interface().(Secret)
			if len(s) == 0 {
				continue
			}
			m := make([]byte, 12) // base64: 16 characters, no padding
			if _, err := rand.Read(m); err != nil {
				return fmt.Errorf("marking a secret: %w", err)
			}
			f.Set(reflect.ValueOf(Secret(m)))
			*subs = append(*subs, substitution{
				marker: []byte(base64.StdEncoding.EncodeToString(m)),
				size:   base64.StdEncoding.EncodedLen(len(s)),
				write:  func(dst []byte) { base64.StdEncoding.Encode(dst, s) },
			})
		case f.Kind() == reflect.Struct:
			if err := markSecrets(f, subs); err != nil {
				return err
			}
		}
	}
	return nil
}

// splice rebuilds js in a new buffer with every marker substituted.
func splice(js []byte, subs []substitution) ([]byte, error) {
	type at struct {
		pos int
		s   substitution
	}
	var found []at
	size := len(js)
	for _, s := range subs {
		i := bytes.Index(js, s.marker)
		if i < 0 || bytes.Index(js[i+1:], s.marker) >= 0 {
			return nil, fmt.Errorf("encoding a secret: marker found %s", map[bool]string{true: "twice", false: "nowhere"}[i >= 0])
		}
		found = append(found, at{i, s})
		size += s.size - len(s.marker)
	}
	// In the order they appear.
	for i := 1; i < len(found); i++ {
		for j := i; j > 0 && found[j].pos < found[j-1].pos; j-- {
			found[j], found[j-1] = found[j-1], found[j]
		}
	}
	out := make([]byte, 0, size)
	prev := 0
	for _, f := range found {
		out = append(out, js[prev:f.pos]...)
		n := len(out)
		out = out[:n+f.s.size]
		f.s.write(out[n:])
		prev = f.pos + len(f.s.marker)
	}
	return append(out, js[prev:]...), nil
}

// encodeEnvelope is json.Marshal(e) with the body, which may hold
// passwords, copied once into the result and never into encoding/json's
// buffers.
func encodeEnvelope(e *Envelope) ([]byte, error) {
	if len(e.Body) == 0 {
		return json.Marshal(e)
	}
	if !json.Valid(e.Body) {
		return nil, fmt.Errorf("body is not valid JSON")
	}
	m := make([]byte, 12)
	if _, err := rand.Read(m); err != nil {
		return nil, err
	}
	marker := []byte(`"` + base64.StdEncoding.EncodeToString(m) + `"`)
	cp := *e
	cp.Body = marker
	js, err := json.Marshal(&cp)
	if err != nil {
		return nil, err
	}
	body := e.Body
	return splice(js, []substitution{{marker: marker, size: len(body), write: func(dst []byte) { copy(dst, body) }}})
}
