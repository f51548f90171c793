package e2e

import (
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// guardHelper is a package with binfmtctl built from this tree and the
// triggers spec/triggers.yaml declares, with the priorities of the
// guard's two halves swapped when reversed: what an rpm that runs file
// triggers against their priorities does with the real ones.
func guardHelper(t *testing.T, reversed bool) string {
	t.Helper()
	return guardHelperAt(t, func(p int) int {
		if reversed {
			return 2*1000700 - p
		}
		return p
	})
}

// guardOrder installs an old-way package on a host with systemd's binfmt
// trigger and the helper installed, and an administrator's disabled entry
// registered: the entry must come back byte for byte, and when the
// guard's halves run against their priorities the helper must say so.
func guardOrder(t *testing.T, reversed bool) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { guardOrderOn(t, st, reversed) })
	}
}

func guardOrderOn(t *testing.T, st sandbox.Stack, reversed bool) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	helper, trigger, old := guardHelper(t, reversed), systemdTrigger(t), oldWay(t, "1")
	r, fs, want := guardRoot(t, ns, st, trigger, helper)
	out, err := r.DNF("install", old)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got, err := fs.Raw("admin-entry"); err != nil || string(got) != string(want) {
		t.Fatalf("the administrator's entry is %q (%v), want %q\n%s", got, err, want, out)
	}
	if _, err := fs.Entry("oldway"); err != nil {
		t.Fatalf("the old-way package's entry is not registered: %v\n%s", err, out)
	}
	said := strings.Contains(out, "against their priorities")
	if said != reversed {
		t.Fatalf("the helper said the priorities were run against their order: %v, want %v\n%s", said, reversed, out)
	}
}

// TestGuardPriorityOrder: the guard puts the administrator's entry back
// around systemd's flush, saying nothing.
func TestGuardPriorityOrder(t *testing.T) { guardOrder(t, false) }

// TestGuardReversedPriorities: rpm runs the guard's halves against their
// priorities (reversed here by swapping them in the package, which is
// what such an rpm does with the real ones): nothing is lost, and the
// helper says what happened.
func TestGuardReversedPriorities(t *testing.T) { guardOrder(t, true) }
