// Package macsim is a macOS simulator for the tools Lockstep's platform
// layer runs: one binary (cmd/macsim) that acts as dscl, sysadminctl,
// fdesetup, security, diskutil and scutil, chosen by the basename of
// argv[0], over the state of a simulated Mac. It implements the behaviour
// recorded in macos-tools.md: exact output texts and exit statuses
// (dscl exits -status & 0xff, security OSStatus & 0xff, sysadminctl 0 even on
// refusal, with its NSLog prefix on stderr), getpass prompts (from /dev/tty
// when the process has a controlling terminal, else prompt on stderr and
// answer on stdin; 128-byte limit; a line ends at '\n' or '\r'), and the
// semantics of changes and resets:
//
//   - a change with the old password (dscl -passwd PATH OLD NEW, or the
//     "Permission denied. Please enter user's old password:" fallback) keeps
//     the SecureToken and moves the FileVault (crypto user) passphrase along;
//   - root's one-value dscl -passwd resets a user without a token (FileVault,
//     if that user is a crypto user, keeps the old passphrase); for a token
//     user, or for any non-root caller, it falls back to asking the old
//     password;
//   - sysadminctl -resetPasswordFor on a token user needs -adminUser and
//     -adminPassword of a token-holding admin (then token and FileVault
//     follow the new password); otherwise "Operation is not permitted without
//     secure token unlock." and exit 0;
//   - neither dscl nor sysadminctl ever touches the login keychain;
//   - sysadminctl -secureTokenOn prints "Done!" even when the grant was
//     silently refused (admin without a token);
//   - security works on real keychain files with the caller's own file
//     permissions (another user's keychain: UNIX[Permission denied]).
//
// # Layout
//
// A simulated Mac lives in a directory D:
//
//	D/state/state.json         the truth (accounts with PBKDF2 verifiers, never plain
//	                           passwords; groups; crypto users; faults)
//	D/state/lock               flock(2): every invocation holds it
//	D/state/invocations.jsonl  append-only record of every tool run (Invocation)
//	D/tools/macsim             the binary (hard link, or copy across file systems)
//	D/tools/dscl, ...          symlinks to macsim
//	D/root/Users/<name>/       homes; Library/Keychains/login.keychain-db is a real
//	                           file owned by the account's uid (when built as root)
//
// The tools find D from their own executable (os.Executable resolves the
// symlink to D/tools/macsim; the state is ../state), never from the caller's
// environment. The state directory is world-writable because every simulated
// uid records its runs and may change its own password; what only root may do
// is enforced by the simulator by uid. The simulated superuser is uid 0, or
// the uid that ran Init when that was not root (unprivileged test runs).
//
// # Command line
//
//	macsim init  --dir D [--spec FILE]   build a Mac (DefaultSpec without --spec) and its tools
//	macsim tools --dir D                 re-create D/tools
//	macsim state --dir D [--json]        the non-secret truth (Snapshot) as JSON
//	macsim check --dir D --user U --what account|filevault|keychain [--keychain PATH]
//	                                     password on stdin; prints match (exit 0) or mismatch (1)
//	macsim fault --dir D --tool T [--verb V] [--arg A] [--count N]
//	             (--fail MSG [--exit N] [--stdout S] | --hang | --crash-caller)
//	macsim fault --dir D --clear | --list
//	macsim records --dir D               the invocation record
//
// # Faults
//
// See Fault. --verb is the dscl command (passwd, authonly, read, list,
// create, append, delete), the sysadminctl operation (resetPasswordFor,
// secureTokenStatus, addUser, secureTokenOn, secureTokenOff, deleteUser),
// the security command (unlock-keychain, set-keychain-password,
// create-keychain, show-keychain-info, login-keychain, default-keychain),
// the fdesetup verb (isactive, status, list), the diskutil apfs verb
// (listCryptoUsers, updatePreboot) or "show" for scutil; empty or "*" is any.
// --fail without --exit exits 1, except for sysadminctl (0, as it does).
//
// # Assumptions
//
// Texts no capture in macos-tools.md shows are assumed and marked in the
// source: sysadminctl's password prompts ("Enter admin password for A:",
// "Enter new password for U:" then "Re-enter new password for U:",
// "Enter password for U:"), its "### Error:<status>" lines for failures other
// than a bad admin password, its silence on a successful reset, addUser or
// deleteUser; errors for unreadable keychain files (errno + 100000, exit
// 173 for EACCES); fdesetup list also listing users while FileVault is off.
// sysadminctl -addUser never grants a SecureToken here.
package macsim
