package platform

import (
	"context"
	"strings"
)

// FileVault reads FileVault and SecureToken state (fdesetup, sysadminctl,
// diskutil) and refreshes the Preboot volume.
type FileVault struct {
	r *Runner
}

// NewFileVault returns FileVault using r.
func NewFileVault(r *Runner) *FileVault { return &FileVault{r: r} }

func toolFailure(t Tool, verb string, res *Result, msg string, sentinel error) error {
	return &ToolError{Tool: t, Verb: verb, Exit: res.Exit, Message: msg, Stdout: res.stdoutText(), Stderr: res.stderrText(), Err: sentinel}
}

// IsActive reports whether FileVault is on: `fdesetup isactive` prints
// "true" (exit 0) or "false" (exit 1).
func (f *FileVault) IsActive(ctx context.Context) (bool, error) {
	res, err := f.r.Run(ctx, Cmd{Tool: Fdesetup, Args: []string{"isactive"}})
	if err != nil {
		return false, err
	}
	switch strings.TrimSpace(string(res.Stdout)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, toolFailure(Fdesetup, "isactive", res, firstLine(string(res.Stdout)+string(res.Stderr)), ErrToolFailed)
}

// Status is `fdesetup status`.
func (f *FileVault) Status(ctx context.Context) (FileVaultStatus, error) {
	res, err := f.r.Run(ctx, Cmd{Tool: Fdesetup, Args: []string{"status"}})
	if err != nil {
		return FileVaultStatus{}, err
	}
	if res.Exit != 0 {
		return FileVaultStatus{}, toolFailure(Fdesetup, "status", res, firstLine(string(res.Stderr)), ErrToolFailed)
	}
	st, err := parseFdesetupStatus(string(res.Stdout))
	if err != nil {
		return st, toolFailure(Fdesetup, "status", res, err.Error(), ErrToolFailed)
	}
	return st, nil
}

// Users lists the FileVault users (`fdesetup list`).
func (f *FileVault) Users(ctx context.Context) ([]FileVaultUser, error) {
	res, err := f.r.Run(ctx, Cmd{Tool: Fdesetup, Args: []string{"list"}})
	if err != nil {
		return nil, err
	}
	if res.Exit != 0 {
		return nil, toolFailure(Fdesetup, "list", res, firstLine(string(res.Stderr)), ErrToolFailed)
	}
	return parseFdesetupList(string(res.Stdout)), nil
}

// IsFileVaultUser reports whether name can unlock FileVault.
func (f *FileVault) IsFileVaultUser(ctx context.Context, name string) (bool, error) {
	users, err := f.Users(ctx)
	if err != nil {
		return false, err
	}
	for _, u := range users {
		if u.Name == name {
			return true, nil
		}
	}
	return false, nil
}

// SecureTokenStatus reports whether name holds a SecureToken
// (`sysadminctl -secureTokenStatus`, which prints the RealName, on stderr,
// and exits 0 whatever happened).
func (f *FileVault) SecureTokenStatus(ctx context.Context, name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	res, err := f.r.Run(ctx, Cmd{Tool: Sysadminctl, Args: []string{"-secureTokenStatus", name}})
	if err != nil {
		return false, err
	}
	on, _, err := tokenStatus(sysadminctlLines(string(res.Stderr)))
	if err != nil {
		return false, toolFailure(Sysadminctl, "secureTokenStatus", res, lastLine([]byte(strings.TrimRight(string(res.Stderr), "\n"))), err)
	}
	return on, nil
}

// CryptoUsers lists the APFS crypto users of the boot volume
// (`diskutil apfs listCryptoUsers /`).
func (f *FileVault) CryptoUsers(ctx context.Context) ([]CryptoUser, error) {
	res, err := f.r.Run(ctx, Cmd{Tool: Diskutil, Args: []string{"apfs", "listCryptoUsers", "/"}})
	if err != nil {
		return nil, err
	}
	if res.Exit != 0 {
		return nil, toolFailure(Diskutil, "apfs listCryptoUsers", res, firstLine(string(res.Stderr)+string(res.Stdout)), ErrToolFailed)
	}
	users, err := parseCryptoUsers(string(res.Stdout))
	if err != nil {
		return nil, toolFailure(Diskutil, "apfs listCryptoUsers", res, err.Error(), ErrToolFailed)
	}
	return users, nil
}

// IsCryptoUser reports whether the account with this GeneratedUID is a
// crypto user of the boot volume.
func (f *FileVault) IsCryptoUser(ctx context.Context, generatedUID string) (bool, error) {
	users, err := f.CryptoUsers(ctx)
	if err != nil {
		return false, err
	}
	for _, u := range users {
		if strings.EqualFold(u.UUID, generatedUID) {
			return true, nil
		}
	}
	return false, nil
}

// RefreshPreboot updates the Preboot volume (what the FileVault unlock
// screen knows) after a password or token change of a FileVault user:
// `diskutil apfs updatePreboot /`, checked by its "overall error=…=0" line.
func (f *FileVault) RefreshPreboot(ctx context.Context) error {
	res, err := f.r.Run(ctx, Cmd{Tool: Diskutil, Args: []string{"apfs", "updatePreboot", "/"}, Timeout: 5 * DefaultTimeout})
	if err != nil {
		return err
	}
	code, perr := parsePreboot(string(res.Stdout))
	if perr != nil || res.Exit != 0 {
		msg := "updatePreboot failed"
		if perr != nil {
			msg = perr.Error()
		}
		if l := lastLine([]byte(strings.TrimRight(string(res.Stderr), "\n"))); l != "" {
			msg += ": " + l
		}
		e := toolFailure(Diskutil, "apfs updatePreboot", res, msg, ErrToolFailed)
		e.(*ToolError).Status = code
		return e
	}
	return nil
}
