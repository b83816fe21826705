package platform

// Mac bundles the platform's parts over one Runner, for wiring a daemon or
// a test against the simulator in one call. The service account is separate
// because it needs a SecretStore.
type Mac struct {
	Runner    *Runner
	Accounts  *Accounts
	FileVault *FileVault
	Keychains *Keychains
	Console   *Console
}

// New returns every part of the platform layer using a Runner for cfg.
func New(cfg Config) *Mac {
	r := NewRunner(cfg)
	return &Mac{Runner: r, Accounts: NewAccounts(r), FileVault: NewFileVault(r), Keychains: NewKeychains(r), Console: NewConsole(r)}
}
