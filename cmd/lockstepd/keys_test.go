package main

import (
	"fmt"
	"testing"

	"github.com/lockstep-dev/lockstep/agent/config"
	"github.com/lockstep-dev/lockstep/packaging/profile"
)

// TestConfigKeysMatchMDMProfile keeps the daemon's configuration keys and
// the keys documented to IT (schema, .mobileconfig, key table) in step.
func TestConfigKeysMatchMDMProfile(t *testing.T) {
	doc := profile.Keys()
	if len(doc) != len(config.Keys) {
		t.Fatalf("daemon has %d keys, MDM profile documents %d", len(config.Keys), len(doc))
	}
	for i, k := range config.Keys {
		d := doc[i]
		if d.Name != k.Name || string(d.Type) != k.Type {
			t.Errorf("key %d: daemon %s (%s), profile %s (%s)", i, k.Name, k.Type, d.Name, d.Type)
			continue
		}
		got, want := fmt.Sprint(d.Default), fmt.Sprint(k.Default)
		if d.Default == nil {
			got = ""
		}
		if k.Default == nil {
			want = ""
		}
		if got != want && !(want == "map[]" && got == "map[]") {
			t.Errorf("%s: default %q in the daemon, %q in the profile", k.Name, want, got)
		}
	}
}
