package macsim

import (
	"fmt"
	"strings"
)

func canonicalAPFSVerb(v string) string {
	switch strings.ToLower(v) {
	case "listcryptousers", "listusers":
		return "listCryptoUsers"
	case "updatepreboot":
		return "updatePreboot"
	}
	return v
}

func (in *inv) diskutil() int {
	if len(in.args) < 2 || !strings.EqualFold(in.args[0], "apfs") {
		fmt.Fprintln(in.stderr, "macsim: only `diskutil apfs listCryptoUsers|updatePreboot` is simulated")
		return 1
	}
	verb := canonicalAPFSVerb(in.args[1])
	target := "/"
	if len(in.args) > 2 {
		target = in.args[2]
	}
	if target != "/" && target != in.st.Disk {
		fmt.Fprintf(in.stderr, "Could not find disk: %s\n", target) // assumed
		return 1
	}
	switch verb {
	case "listCryptoUsers":
		return in.listCryptoUsers()
	case "updatePreboot":
		return in.updatePreboot()
	}
	fmt.Fprintf(in.stderr, "macsim: diskutil apfs %s is not simulated\n", in.args[1])
	return 1
}

// listCryptoUsers prints the tree of macos-tools.md §4.4.
func (in *inv) listCryptoUsers() int {
	if len(in.st.Crypto) == 0 {
		fmt.Fprintf(in.stdout, "No cryptographic users for %s\n", in.st.Disk)
		return 0
	}
	fmt.Fprintf(in.stdout, "Cryptographic users for %s (%d found)\n|\n", in.st.Disk, len(in.st.Crypto))
	for i, c := range in.st.Crypto {
		bar := "|"
		if i == len(in.st.Crypto)-1 {
			bar = " "
		}
		owner := "No"
		if c.VolumeOwner {
			owner = "Yes"
		}
		fmt.Fprintf(in.stdout, "+-- %s\n%s   Type: %s\n%s   Volume Owner: %s\n", c.UUID, bar, c.Type, bar, owner)
		if i < len(in.st.Crypto)-1 {
			fmt.Fprintln(in.stdout, "|")
		}
	}
	return 0
}

// updatePreboot copies the crypto users to the Preboot volume (what the
// FileVault unlock screen knows); its output keeps the shape of a real run.
func (in *inv) updatePreboot() int {
	if !in.isRoot() {
		fmt.Fprintln(in.stderr, "Error: -69863: You must run this command as root") // assumed
		return 1
	}
	w := in.stdout
	fmt.Fprintln(w, "Started APFS operation")
	fmt.Fprintf(w, "UpdatePreboot: Commencing operation to update the Preboot Volume for Target Volume %s (Macintosh HD)\n", in.st.Disk)
	fmt.Fprintf(w, "UpdatePreboot: Obtained list of %d APFS Crypto User(s) on Target Volume\n", len(in.st.Crypto))
	for _, c := range in.st.Crypto {
		fmt.Fprintf(w, "UpdatePreboot: Considering APFS Crypto User %s\n", c.UUID)
		if c.Type == TypeODUser {
			for _, n := range in.st.userNames() {
				if strings.EqualFold(in.st.Users[n].first("GeneratedUID"), c.UUID) {
					fmt.Fprintf(w, "UpdatePreboot: Correlated APFS Volume Crypto User with Open Directory User %s aka %q\n", c.UUID, n)
				}
			}
		}
		fmt.Fprintf(w, "UpdatePreboot: Processed APFS Volume Crypto User %s\n", c.UUID)
		fmt.Fprintln(w, "UpdatePreboot: Error for this processed user was 0")
	}
	fmt.Fprintln(w, "UpdatePreboot: Error among all processed users was 0")
	fmt.Fprintln(w, "UpdatePreboot: Exiting Update Preboot operation with overall error=(ZeroMeansSuccess)=0")
	fmt.Fprintln(w, "Finished APFS operation")
	in.st.PrebootGen = in.st.CryptoGen
	in.dirty = true
	return 0
}
