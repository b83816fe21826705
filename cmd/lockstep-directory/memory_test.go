package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/protocol"
)

// countInMemory reads every readable mapping of process pid through
// /proc/PID/mem and counts the occurrences of each needle; one in
// argon2id's input block (inArgon2Input) is counted under the needle's
// name + " in argon2's state".
func countInMemory(t *testing.T, pid int, needles map[string][]byte) map[string]int {
	t.Helper()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	counts := map[string]int{}
	for name := range needles {
		counts[name] = 0
	}
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[1][0] != 'r' || (len(f) >= 6 && strings.HasPrefix(f[5], "[v")) { // [vvar], [vsyscall]
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		const chunk = 1 << 20
		const overlap = 256
		buf := make([]byte, chunk+overlap)
		for off := start; off < end; off += chunk {
			n := min(uint64(len(buf)), end-off)
			got, _ := mem.ReadAt(buf[:n], int64(off))
			if got <= 0 {
				continue
			}
			region := buf[:got]
			for name, nd := range needles {
				// Count matches that start inside this chunk only.
				for i := 0; ; {
					j := bytes.Index(region[i:], nd)
					if j < 0 || uint64(i+j) >= chunk {
						break
					}
					if inArgon2Input(region, i+j, len(nd)) {
						counts[name+" in argon2's state"]++
					} else {
						counts[name]++
					}
					i += j + 1
				}
			}
		}
	}
	return counts
}

// inArgon2Input reports whether the n bytes at i sit where argon2id's
// first BLAKE2b input holds the password: after the parameters, version
// 0x13, type 2 (argon2id) and the password's length, little-endian. That
// block lives in golang.org/x/crypto's BLAKE2b state, freed after each
// hash and beyond the directory's reach to wipe.
func inArgon2Input(region []byte, i, n int) bool {
	if i < 12 {
		return false
	}
	le := func(off int) uint32 {
		b := region[off : off+4]
		return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	}
	return le(i-4) == uint32(n) && le(i-8) == 2 && le(i-12) == 0x13
}

// TestNoPasswordCopiesInMemory (issue 10, item 12) scans the memory of the
// running directory process, a few seconds after a password change over
// the websocket, for the new password and its base64 form (how it
// travels in JSON). The frame is read into a buffer that is wiped after
// use and decoded in place, so no copy of the directory's own may remain;
// what argon2id leaves in its freed BLAKE2b state is counted apart.
// Needs root (to read another process's memory).
func TestNoPasswordCopiesInMemory(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("reading /proc/PID/mem of the directory needs root")
	}
	dir := t.TempDir()
	s := start(t, dir)
	cl, err := admin.FromDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	initial := "Initial-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-Pw9"
	changed := "Changed-" + strconv.FormatInt(time.Now().UnixNano()+1, 36) + "-Qx8"
	if _, err := cl.AddUser(t.Context(), admin.AddUserRequest{Name: "alice", Password: protocol.Secret(initial)}); err != nil {
		t.Fatal(err)
	}
	a := enrollAgent(t, dir, "alice")
	res, err := a.call(protocol.TypeChangePassword, "change-1", protocol.ChangePasswordRequest{User: "alice",
		Current: protocol.Secret(initial), New: protocol.Secret(changed)})
	if err != nil || res.Error != nil {
		t.Fatalf("change: %v %+v", err, res)
	}
	for range 3 {
		if res, err := a.call(protocol.TypeVerifyPassword, "", protocol.VerifyPasswordRequest{User: "alice", Password: protocol.Secret(changed)}); err != nil || res.Error != nil {
			t.Fatalf("verify: %v %+v", err, res)
		}
	}
	time.Sleep(3 * time.Second)
	b64 := func(s string) []byte { return []byte(base64.StdEncoding.EncodeToString([]byte(s))) }
	counts := countInMemory(t, s.cmd.Process.Pid, map[string][]byte{
		"new password":            []byte(changed),
		"new password, base64":    b64(changed),
		"initial password":        []byte(initial),
		"initial password base64": b64(initial),
	})
	t.Logf("copies in the directory's memory 3 s after the change: %v", counts)
	for _, k := range []string{"new password", "new password, base64", "initial password"} {
		if counts[k] != 0 {
			t.Errorf("%d copies of the %s left in memory", counts[k], k)
		}
	}
	s.stop()
}
