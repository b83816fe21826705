package e2e

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
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
)

// memCount counts, in every readable mapping of process pid, the
// occurrences of each needle. It needs the right to read another process's
// memory (root).
func memCount(t testing.TB, pid int, needles map[string][]byte) map[string]int {
	t.Helper()
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer maps.Close()
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	counts := map[string]int{}
	for name := range needles {
		counts[name] = 0
	}
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[1][0] != 'r' || (len(f) >= 6 && strings.HasPrefix(f[5], "[v")) {
			continue // unreadable, or the kernel's vvar/vsyscall pages
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		buf := make([]byte, end-start)
		n, _ := mem.ReadAt(buf, int64(start))
		for name, needle := range needles {
			counts[name] += bytes.Count(buf[:n], needle)
		}
	}
	return counts
}

// secretForms are the ways a password can sit in lockstepd's memory: as
// itself, and base64-encoded as it travels in JSON (protocol.Secret).
func secretForms(label, pw string) map[string][]byte {
	return map[string][]byte{
		label + " plain":  []byte(pw),
		label + " base64": []byte(base64.StdEncoding.EncodeToString([]byte(pw))),
	}
}

// 12. After a change, a sync after an admin reset and a doctor check, no
// copy of any of the passwords is left in lockstepd's memory: not in the
// local API's read buffers and JSON, not in the websocket frames'
// encoding. Measured in the real daemon by reading /proc/PID/mem, which
// takes root.
func TestNoPasswordCopiesLeftInLockstepd(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to read lockstepd's memory")
	}
	u := newUser(t, shared, false)
	m := newMac(t, shared, u)
	old, nw, reset := u.password, newPassword(), newPassword()
	needles := map[string][]byte{"control: the directory user's name": []byte(u.name)}
	for label, pw := range map[string]string{"old": old, "new": nw, "reset": reset} {
		for k, v := range secretForms(label, pw) {
			needles[k] = v
		}
	}
	pid := m.daemon.Process.Pid
	before := memCount(t, pid, needles)

	if r := m.cli(lines(old, nw), "change", "--stdin", "--user", "alice"); r.code != 0 {
		t.Fatalf("change: %s", r)
	}
	if _, err := shared.admin.ResetPassword(t.Context(), u.name, admin.ResetRequest{Password: protocol.Secret(reset)}); err != nil {
		t.Fatal(err)
	}
	m.waitState(localapi.StateSyncNeeded)
	if r := m.cli(lines(nw, reset), "sync", "--stdin", "--user", "alice"); r.code != 0 {
		t.Fatalf("sync: %s", r)
	}
	if r := m.cli(lines(reset), "doctor", "--password", "--stdin", "--user", "alice"); r.code != 0 {
		t.Fatalf("doctor: %s", r)
	}
	u.password = reset
	time.Sleep(time.Second)
	after := memCount(t, pid, needles)
	t.Logf("copies in lockstepd's memory before: %v", before)
	t.Logf("copies in lockstepd's memory a second after a change, a sync and a doctor check: %v", after)
	for name, n := range after {
		switch {
		case strings.HasPrefix(name, "control"):
			if n == 0 {
				t.Errorf("the scan found no %s: it does not see lockstepd's memory", name)
			}
		case n > 0:
			t.Errorf("%d copies of the %s password left in lockstepd's memory", n, name)
		}
	}
}
