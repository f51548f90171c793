package e2e

import (
	"strings"
	"testing"

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
			r, fs, want := guardRoot(t, ns, st, trigger, helper)
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
