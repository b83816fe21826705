package macsim

import (
	"fmt"
	"strings"
)

func (in *inv) fdesetup() int {
	if len(in.args) == 0 {
		fmt.Fprintln(in.stderr, "Usage: fdesetup <verb> <options>") // assumed
		return 1
	}
	switch in.args[0] {
	case "isactive":
		// "Returns status 0 if FileVault is enabled along with the string true".
		if in.st.FileVault {
			fmt.Fprintln(in.stdout, "true")
			return 0
		}
		fmt.Fprintln(in.stdout, "false")
		return 1
	case "status":
		if in.st.FileVault {
			fmt.Fprintln(in.stdout, "FileVault is On.")
		} else {
			fmt.Fprintln(in.stdout, "FileVault is Off.")
		}
		return 0
	case "list":
		// One "shortname,UUID" line per crypto user that is an OD user.
		for _, c := range in.st.Crypto {
			if c.Type != TypeODUser {
				continue
			}
			for _, n := range in.st.userNames() {
				if strings.EqualFold(in.st.Users[n].first("GeneratedUID"), c.UUID) {
					fmt.Fprintf(in.stdout, "%s,%s\n", n, c.UUID)
				}
			}
		}
		return 0
	}
	fmt.Fprintf(in.stderr, "Error: Unknown verb '%s'.\n", in.args[0]) // assumed
	return 1
}
