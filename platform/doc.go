// Package platform is where Lockstep touches the Mac: the local account
// (dscl, sysadminctl), its SecureToken and FileVault (fdesetup, diskutil),
// the login keychain (security), the console user (scutil) and the daemon's
// own secrets (the System keychain through go-keychain on macOS with cgo, a
// root-only directory elsewhere).
//
// Every tool is run by a Runner from one allow-list of absolute paths
// (Config.ToolsDir swaps the directory for the macOS simulator, macsim), in
// its own session and process group, with a scrubbed environment, stdin fed
// or /dev/null, and a timeout that kills the whole group. Secrets only ever
// reach a tool on stdin or on a pseudo-terminal answering its prompt — never
// in argv, the environment, a log line or a file — and are wiped after use.
//
// No tool's exit status is trusted alone: dscl exits with -status & 0xff,
// security with OSStatus & 0xff, sysadminctl with 0 even when it refused.
// Outputs are parsed, failures come back as *ToolError wrapping a sentinel
// (ErrWrongPassword, ErrPolicy, ErrNoSecureToken, ErrKeychainMissing, …), and
// every change is verified by observation (dscl -authonly with the new
// password, security unlock-keychain, sysadminctl -secureTokenStatus).
//
// The package builds and runs on Linux; it never looks at runtime.GOOS.
// It imports nothing of the project.
package platform
