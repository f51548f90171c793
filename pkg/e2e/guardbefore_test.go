package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// TestGuardBothHalvesBeforeSystemd: an rpm that runs both halves of the
// guard before systemd's binfmt trigger (as one that orders transaction
// triggers by package, not by priority, does when the helper's package
// comes first). Issue 13 point 1: "Design so that a wrong order cannot
// lose an entry, or detect the wrong order and say so." After the
// transaction the administrator's disabled entry is byte for byte the
// same, or the helper said that the order was wrong and named it.
func TestGuardBothHalvesBeforeSystemd(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			ns := sandbox.Enter(t)
			if ns == nil {
				return
			}
			// 1000701 -> 1000702, 1000699 -> 1000701: both above systemd's.
			helper := guardHelperAt(t, func(p int) int {
				if p < 1000700 {
					return 1000701
				}
				return 1000702
			})
			trigger, old := systemdTrigger(t), oldWay(t, "1")
			r := ns.DNFRootOn(st)
			hostConfs, _ := filepath.Glob(r.Path("/usr/lib/binfmt.d/*"))
			for _, f := range hostConfs {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.MkdirAll(r.Path(scriptletsSystemdBooted), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{trigger, helper} {
				if out, err := r.DNF("install", p); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
			}
			fs := &binfmt.FS{Dir: r.BinfmtDir}
			if err := fs.RegisterString("admin-entry", ":admin-entry:M::ADMINMAGIC::/bin/true:"); err != nil {
				t.Fatal(err)
			}
			if err := fs.Disable("admin-entry"); err != nil {
				t.Fatal(err)
			}
			want, _ := fs.Raw("admin-entry")
			out, err := r.DNF("install", old)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if _, err := fs.Entry("oldway"); err != nil {
				t.Fatalf("the old-way package's entry is not registered: %v\n%s", err, out)
			}
			got, err := fs.Raw("admin-entry")
			if err == nil && string(got) == string(want) {
				return
			}
			if !strings.Contains(out, `"admin-entry"`) {
				t.Fatalf("the administrator's entry is %q (%v), want %q, and the helper said nothing about it:\n%s", got, err, want, out)
			}
		})
	}
}
