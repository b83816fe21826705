// Package e2e holds Lockstep's end-to-end tests: the real lockstep-directory,
// lockstepd and lockstep binaries, and a simulated Mac, talking over real
// TLS and unix sockets on loopback, as a user and an administrator would.
package e2e
