//go:build !linux && !darwin

package peercred

func get(int) (Creds, error) { return Creds{}, ErrUnsupported }
