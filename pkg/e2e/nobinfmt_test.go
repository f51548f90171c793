package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// mounted reports whether dir is a mount point, from mountinfo.
func mounted(t *testing.T, dir string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// TestContainerHostWithoutBinfmtMisc: issue 13 point 2, "On install,
// they are registered where systemd's trigger does not run and
// binfmt_misc is available; otherwise nothing is mounted and a later sync
// converges, as for our own package." A container host (no
// /run/systemd/system) with the helper installed and binfmt_misc not
// mounted: installing an old-way package succeeds, says why nothing was
// registered, mounts nothing, and once binfmt_misc is there
// "binfmtctl sync PACKAGE" registers the entry.
func TestContainerHostWithoutBinfmtMisc(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			ns := sandbox.Enter(t)
			if ns == nil {
				return
			}
			helper := guardHelperAt(t, func(p int) int { return p })
			old := oldWay(t, "1")
			r := ns.DNFRootOn(st)
			hostConfs, _ := filepath.Glob(r.Path("/usr/lib/binfmt.d/*"))
			for _, f := range hostConfs {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
			if out, err := r.DNF("install", helper); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if err := syscall.Unmount(r.BinfmtDir, 0); err != nil {
				t.Fatalf("unmounting the root's binfmt_misc: %v", err)
			}
			out, err := r.DNF("install", old)
			if err != nil {
				t.Fatalf("installing the old-way package without binfmt_misc: %v\n%s", err, out)
			}
			if mounted(t, r.BinfmtDir) {
				t.Fatalf("the helper's trigger mounted binfmt_misc at %s:\n%s", r.BinfmtDir, out)
			}
			if !strings.Contains(out, "oldway-binfmt.conf") || !strings.Contains(out, "binfmtctl:") {
				t.Errorf("the transaction does not say why the old-way package's entry was not registered:\n%s", out)
			}
			if err := syscall.Mount("binfmt_misc", r.BinfmtDir, "binfmt_misc", 0, ""); err != nil {
				t.Fatalf("mounting binfmt_misc again: %v", err)
			}
			fs := &binfmt.FS{Dir: r.BinfmtDir}
			if _, err := fs.Entry("oldway"); err == nil {
				t.Fatalf("the entry is registered before any sync")
			}
			if out, err := r.Chroot("/usr/bin/binfmtctl", "sync", "oldway-binfmt"); err != nil {
				t.Fatalf("binfmtctl sync oldway-binfmt: %v\n%s", err, out)
			}
			if _, err := fs.Entry("oldway"); err != nil {
				t.Fatalf("binfmtctl sync did not register the old-way package's entry: %v", err)
			}
		})
	}
}
