package lifecycle_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

// TestRecordTooLargeRegistersNothing checks issue 16's point 6 through a
// whole run on the real kernel: a run whose record would exceed
// MaxRecordSize refuses before any kernel write, as its error says
// ("nothing registered"), so every entry stays manageable: on a fresh
// install nothing is live and no record is left, and on an upgrade that
// grows past the limit the old entries and their record stay as they were.
func TestRecordTooLargeRegistersNothing(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, ":lim-%d:M::LIM%04d::/bin/true:\n", i, i)
		}
		return b.String()
	}
	m, files := manager(t, ns, map[string]string{"lim.conf": lines(0, 40)})
	base := table(t, ns.BinfmtDir)
	rec := filepath.Join(m.Store.Dir, "lim")
	defer func(old int64) { lifecycle.MaxRecordSize = old }(lifecycle.MaxRecordSize)
	defer clearEntries(t, ns.BinfmtDir, limNames(60)...)

	// 40 claims of about 120 bytes each.
	lifecycle.MaxRecordSize = 2000
	err := m.Converge("lim", files, true)
	if !errors.Is(err, lifecycle.ErrRecordTooLarge) || !strings.Contains(err.Error(), "40 entries") {
		t.Fatalf("a fresh install over the limit: %v; want ErrRecordTooLarge naming 40 entries", err)
	}
	if got := table(t, ns.BinfmtDir); len(got) != len(base) {
		t.Errorf("a fresh install over the limit registered %d entries; want none", len(got)-len(base))
	}
	if _, err := os.Lstat(rec); err == nil {
		t.Errorf("a fresh install over the limit left a record")
	}

	lifecycle.MaxRecordSize = 1 << 20
	if err := m.Converge("lim", files, true); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	live := table(t, ns.BinfmtDir)
	lifecycle.MaxRecordSize = int64(len(before)) + 100
	os.WriteFile(filepath.Join(m.Config.Root, "usr/lib/binfmt.d/lim.conf"), []byte(lines(0, 60)), 0o644)
	err = m.Converge("lim", files, true)
	if !errors.Is(err, lifecycle.ErrRecordTooLarge) {
		t.Fatalf("an upgrade past the limit: %v; want ErrRecordTooLarge", err)
	}
	if got := table(t, ns.BinfmtDir); fmt.Sprint(got) != fmt.Sprint(live) {
		t.Errorf("an upgrade past the limit changed the table: %d entries live, want the %d from before", len(got), len(live))
	}
	if after, _ := os.ReadFile(rec); string(after) != string(before) {
		t.Errorf("an upgrade past the limit changed the record")
	}
	// Every entry is still the package's: an erase removes them all.
	os.Remove(filepath.Join(m.Config.Root, "usr/lib/binfmt.d/lim.conf"))
	if err := m.Converge("lim", nil, false); err != nil {
		t.Fatal(err)
	}
	if got := table(t, ns.BinfmtDir); len(got) != len(base) {
		t.Errorf("after the erase %d of the package's entries are left", len(got)-len(base))
	}
}

func limNames(n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("lim-%d", i))
	}
	return out
}
