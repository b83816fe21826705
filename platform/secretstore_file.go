//go:build !darwin || !cgo

package platform

// NewSystemSecretStore returns the platform's secret store: without the
// macOS System keychain (not darwin, or no cgo) a root-only FileStore in dir.
// service is unused here; it names the keychain service on macOS.
func NewSystemSecretStore(service, dir string) SecretStore { return NewFileStore(dir) }
