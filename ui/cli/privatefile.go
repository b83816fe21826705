package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// writePrivate writes data to path as a file only its owner can read
// (0600), the way a command run with sudo must: it never writes through a
// link planted at path (a symbolic link, or a hard link to a file of
// root's, would make root overwrite that file), and replaces an existing
// file only when it is a regular file of the caller's own. The caller is
// the effective user, or under sudo also the user who ran sudo.
//
// A new file is created with O_CREAT|O_EXCL|O_NOFOLLOW, which fails on
// anything already at path; an existing file is replaced by renaming a new
// one over it, which changes the name, never the file it named.
func writePrivate(path string, data []byte) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		return writeClose(f, data)
	case err != nil:
		return err
	}
	if err := replaceable(fi); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if err := writeClose(tmp, data); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func writeClose(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// unsafeFile is an existing path writePrivate will not replace: why
// (not_regular, owner_unknown, hard_links, not_yours) and the value that
// says so (the file's type, its link count, its owner's uid).
type unsafeFile struct{ why, value string }

func (u *unsafeFile) Error() string {
	return fmt.Sprintf("refusing to replace the file: %s %s", u.why, u.value)
}

// replaceable refuses an existing path that is not a regular file of the
// caller's with a single link.
func replaceable(fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return &unsafeFile{"not_regular", fi.Mode().Type().String()}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &unsafeFile{"owner_unknown", ""}
	}
	if st.Nlink != 1 {
		return &unsafeFile{"hard_links", strconv.FormatUint(uint64(st.Nlink), 10)}
	}
	if !callerOwns(int(st.Uid)) {
		return &unsafeFile{"not_yours", strconv.FormatUint(uint64(st.Uid), 10)}
	}
	return nil
}

func callerOwns(uid int) bool {
	euid := os.Geteuid()
	if uid == euid {
		return true
	}
	if euid != 0 {
		return false
	}
	sudo, err := strconv.Atoi(os.Getenv("SUDO_UID"))
	return err == nil && sudo == uid
}
