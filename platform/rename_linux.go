package platform

import "golang.org/x/sys/unix"

// renameNoReplace renames from to to inside the directory dir, failing with
// EEXIST instead of replacing an existing to (renameat2 RENAME_NOREPLACE).
func renameNoReplace(dir int, from, to string) error {
	return unix.Renameat2(dir, from, dir, to, unix.RENAME_NOREPLACE)
}
