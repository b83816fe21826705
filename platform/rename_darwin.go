package platform

import "golang.org/x/sys/unix"

// renameNoReplace renames from to to inside the directory dir, failing with
// EEXIST instead of replacing an existing to (renameatx_np RENAME_EXCL).
func renameNoReplace(dir int, from, to string) error {
	return unix.RenameatxNp(dir, from, dir, to, unix.RENAME_EXCL)
}
