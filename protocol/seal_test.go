package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Marshal's output is json.Marshal's, byte for byte, for every kind of
// value the wire carries.
func TestMarshalIsJSONMarshal(t *testing.T) {
	type nested struct {
		Name  string
		Inner ChangePasswordRequest
		Token Secret `json:"token,omitempty"`
	}
	for _, v := range []any{
		VerifyPasswordRequest{User: "alice", Password: Secret("pä$$wörd <&> \"quoted\"")},
		&ChangePasswordRequest{User: "a", Current: Secret("old-Passw0rd"), New: Secret("new-Passw0rd-1"), TOTP: "123456"},
		ChangePasswordRequest{User: "a", Current: Secret("same"), New: Secret("same")},
		EnrollRequest{Token: Secret("tok"), PublicKey: []byte{1, 2, 3}, Hostname: "mac"},
		VerifyPasswordRequest{User: "empty"},
		nested{Name: "n", Inner: ChangePasswordRequest{Current: Secret("c"), New: Secret("nn")}, Token: Secret("t")},
		AckPush{Seq: 7},
		map[string]int{"a": 1},
		nil,
		"text",
	} {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(%T): %v", v, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Marshal(%T) = %s, want %s", v, got, want)
		}
	}
}

// Marshal leaves the value it was given alone.
func TestMarshalDoesNotTouchItsArgument(t *testing.T) {
	req := &VerifyPasswordRequest{User: "alice", Password: Secret("Passw0rd-1")}
	if _, err := Marshal(req); err != nil {
		t.Fatal(err)
	}
	if string(req.Password) != "Passw0rd-1" {
		t.Fatalf("the argument's secret became %q", []byte(req.Password))
	}
}

// Encode's output is json.Marshal's, and Decode reads it back.
func TestEncodeIsJSONMarshal(t *testing.T) {
	req, err := New(TypeChangePassword, ChangePasswordRequest{User: "alice", Current: Secret("Old-Passw0rd"), New: Secret("New-Passw0rd")})
	if err != nil {
		t.Fatal(err)
	}
	req.ID, req.IdempotencyKey = "r1-abcd", "k1"
	for _, env := range []*Envelope{req, {V: Version, Type: TypeAckPush}, {V: Version, Type: TypeResult, ID: "r2", Error: &Error{Code: CodeLocked, Message: "locked"}}} {
		want, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Encode(env)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Encode = %s, want %s", got, want)
		}
		back, err := Decode(got)
		if err != nil || back.Type != env.Type || !bytes.Equal(back.Body, env.Body) {
			t.Errorf("Decode(Encode) = %+v, %v", back, err)
		}
	}
	if _, err := Encode(&Envelope{V: Version, Type: TypeAckPush, Body: []byte("{not json")}); err == nil {
		t.Error("Encode took an invalid body")
	}
}
