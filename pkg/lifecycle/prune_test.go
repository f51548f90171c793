package lifecycle_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

func TestDecidePrune(t *testing.T) {
	const interp = "/usr/bin/qemu-aarch64-static"
	present := lifecycle.EntryStatus{Name: "e", Interpreter: interp, InterpreterExists: true}
	with := func(f func(*lifecycle.EntryStatus)) lifecycle.EntryStatus {
		e := present
		f(&e)
		return e
	}
	missing := with(func(e *lifecycle.EntryStatus) { e.InterpreterExists = false })
	pinnedGone := with(func(e *lifecycle.EntryStatus) { e.InterpreterExists, e.Flags = false, "F" })
	stale := with(func(e *lifecycle.EntryStatus) { e.StalePin, e.Flags = true, "F" })
	owned := func(e lifecycle.EntryStatus) lifecycle.EntryStatus { e.Owner = "pkg"; return e }
	defined := with(func(e *lifecycle.EntryStatus) { e.Source = "/usr/lib/binfmt.d/e.conf" })
	tests := []struct {
		name          string
		e             lifecycle.EntryStatus
		owner         lifecycle.OwnerState
		named, pinned bool
		verdict       string
		remove        bool
		reason        string
	}{
		// Working entries nothing claims are someone else's: never removed.
		{"unmanaged, interpreter exists", present, lifecycle.NoOwner, false, false, lifecycle.PruneKeep, false, "unmanaged: interpreter " + interp + " exists and nothing claims it"},
		{"unmanaged, named", present, lifecycle.NoOwner, true, false, lifecycle.PruneKeep, false, "unmanaged"},
		{"unmanaged, --pinned", present, lifecycle.NoOwner, false, true, lifecycle.PruneKeep, false, "unmanaged"},
		{"unmanaged F, interpreter exists", with(func(e *lifecycle.EntryStatus) { e.Flags = "F" }), lifecycle.NoOwner, true, true, lifecycle.PruneKeep, false, "unmanaged"},
		{"defined by a file", defined, lifecycle.NoOwner, false, false, lifecycle.PruneKeep, false, "in use: defined by /usr/lib/binfmt.d/e.conf"},
		{"owned, installed", owned(present), lifecycle.OwnerInstalled, false, false, lifecycle.PruneKeep, false, "claimed by pkg, which is installed"},
		{"owned, rpm unknown", owned(present), lifecycle.OwnerUnknown, false, false, lifecycle.PruneKeep, false, "rpm could not say"},
		// Broken: the kernel cannot run it.
		{"interpreter missing, not pinned", missing, lifecycle.NoOwner, false, false, lifecycle.PruneRemove, true, "broken: interpreter " + interp + " does not exist and flag F does not pin it"},
		{"interpreter missing, owned and installed", owned(missing), lifecycle.OwnerInstalled, false, false, lifecycle.PruneRemove, true, "broken"},
		// Left behind.
		{"stale pin", stale, lifecycle.NoOwner, false, false, lifecycle.PruneRemove, true, "flag F pins an older file: " + interp + " was replaced"},
		{"owner not installed, interpreter exists", owned(present), lifecycle.OwnerNotInstalled, false, false, lifecycle.PruneRemove, true, "left behind: the record of pkg claims it, and pkg is not installed"},
		{"owner not installed, pinned to a deleted file", owned(pinnedGone), lifecycle.OwnerNotInstalled, false, false, lifecycle.PruneRemove, true, "left behind"},
		// Pinned to a deleted file: still runs programs; only by name or --pinned.
		{"pinned, file deleted", pinnedGone, lifecycle.NoOwner, false, false, lifecycle.PruneIfNamed, false, `flag F pins a file whose path ` + interp + ` no longer exists: the entry still runs programs (docker's entries are such); "binfmtctl prune --apply e" or --pinned removes it`},
		{"pinned, file deleted, named", pinnedGone, lifecycle.NoOwner, true, false, lifecycle.PruneIfNamed, true, "removed because it was named"},
		{"pinned, file deleted, --pinned", pinnedGone, lifecycle.NoOwner, false, true, lifecycle.PruneIfNamed, true, "removed because of --pinned"},
		{"pinned, file deleted, owned and installed", owned(pinnedGone), lifecycle.OwnerInstalled, false, false, lifecycle.PruneIfNamed, false, "still runs programs"},
	}
	for _, tt := range tests {
		d := lifecycle.DecidePrune(tt.e, tt.owner, tt.named, tt.pinned)
		if d.Verdict != tt.verdict || d.Remove != tt.remove || !strings.Contains(d.Reason, tt.reason) {
			t.Errorf("%s: DecidePrune = %+v, want verdict %s, remove %v, a reason with %q", tt.name, d, tt.verdict, tt.remove, tt.reason)
		}
	}
}

func TestInterpreterState(t *testing.T) {
	for _, tt := range []struct {
		e    lifecycle.EntryStatus
		want string
	}{
		{lifecycle.EntryStatus{InterpreterExists: true}, "present"},
		{lifecycle.EntryStatus{}, "missing"},
		{lifecycle.EntryStatus{Flags: "F"}, "pinned, file deleted"},
		{lifecycle.EntryStatus{Flags: "OCF"}, "pinned, file deleted"},
		{lifecycle.EntryStatus{Flags: "F", InterpreterExists: true, StalePin: true}, "replaced"},
		{lifecycle.EntryStatus{Flags: "F", InterpreterExists: true}, "present"},
	} {
		if got := tt.e.InterpreterState(); got != tt.want {
			t.Errorf("InterpreterState(%+v) = %q, want %q", tt.e, got, tt.want)
		}
	}
}

// notInstalled is a Querier whose packages are all erased.
type notInstalled struct{}

func (notInstalled) Manifest(string) (lifecycle.Manifest, error) {
	return lifecycle.Manifest{}, lifecycle.ErrNotInstalled
}
func (notInstalled) Installed(string) ([]lifecycle.Manifest, error) { return nil, nil }
func (notInstalled) Owners(paths []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, p := range paths {
		out[p] = []string{}
	}
	return out, nil
}

// TestPruneOnTheKernel registers, in a private binfmt_misc, the entries
// the issue names and the kinds prune must remove, and checks what a dry
// run says, what --apply removes and what it leaves, byte for byte.
func TestPruneOnTheKernel(t *testing.T) {
	sandbox.Require(t, "/usr/bin/python3", "python3")
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	bin := ns.TempDir()
	write := func(p string) {
		data, err := os.ReadFile("/bin/true")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dockerInterp := filepath.Join(bin, "qemu-docker")
	staleInterp := filepath.Join(bin, "qemu-stale")
	gonePkgInterp := filepath.Join(bin, "qemu-gone-pkg")
	write(dockerInterp)
	write(staleInterp)
	write(gonePkgInterp)
	m, files := manager(t, ns, map[string]string{"gone.conf": ":gone-pkg:M::GONE::" + gonePkgInterp + ":\n"})
	if err := m.Converge("gone", files, true); err != nil {
		t.Fatal(err)
	}
	// The package was erased without its scriptlets: its file is gone,
	// the entry and the record stay.
	os.Remove(filepath.Join(m.Config.Root, files[0]))
	m.RPM = notInstalled{}
	reg := func(s string) {
		t.Helper()
		if err := writeRegister(ns.BinfmtDir, s); err != nil {
			t.Fatalf("registering %q: %v", s, err)
		}
	}
	reg(":handmade:E::xyz::/bin/true:")
	reg(":python3:M::\\x42\\x0d\\x0d\\x0a::/usr/bin/python3:")
	reg(":docker-f:M::\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00::" + dockerInterp + ":F")
	reg(":broken:E::brk::/nonexistent/qemu-broken:")
	reg(":stale:M::STALE::" + staleInterp + ":F")
	// docker's container went away; rpm replaced the stale one's file.
	os.Remove(dockerInterp)
	time.Sleep(20 * time.Millisecond)
	os.Remove(staleInterp)
	write(staleInterp)

	snapshot := func() map[string]string {
		out := map[string]string{}
		names, err := (&binfmt.FS{Dir: ns.BinfmtDir}).Names()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			b, _ := os.ReadFile(filepath.Join(ns.BinfmtDir, n))
			out[n] = string(b)
		}
		return out
	}
	before := snapshot()

	want := map[string]struct {
		action, reason string
	}{
		"handmade": {lifecycle.PruneKeep, "unmanaged: interpreter /bin/true exists"},
		"python3":  {lifecycle.PruneKeep, "unmanaged: interpreter /usr/bin/python3 exists"},
		"docker-f": {lifecycle.PruneIfNamed, "flag F pins a file whose path " + dockerInterp + " no longer exists"},
		"broken":   {lifecycle.PruneRemove, "broken: interpreter /nonexistent/qemu-broken does not exist"},
		"stale":    {lifecycle.PruneRemove, "flag F pins an older file"},
		"gone-pkg": {lifecycle.PruneRemove, "left behind: the record of gone claims it, and gone is not installed"},
	}
	check := func(step string, fs []lifecycle.Finding, apply bool) {
		t.Helper()
		if len(fs) != len(want) {
			t.Fatalf("%s: %d findings, want one per entry (%d): %+v", step, len(fs), len(want), fs)
		}
		for _, f := range fs {
			w := want[f.Entry.Name]
			if f.Action != w.action || !strings.Contains(f.Reasons[0], w.reason) || f.Removed != (apply && f.WouldRemove()) {
				t.Errorf("%s: %s: %s %q removed %v; want %s with %q", step, f.Entry.Name, f.Action, f.Reasons, f.Removed, w.action, w.reason)
			}
		}
	}
	fs, err := m.Prune(false)
	if err != nil {
		t.Fatal(err)
	}
	check("dry run", fs, false)
	if got := snapshot(); !equalMaps(got, before) {
		t.Fatalf("the dry run changed the table: %v", got)
	}

	fs, err = m.Prune(true)
	if err != nil {
		t.Fatal(err)
	}
	check("--apply", fs, true)
	after := snapshot()
	for _, n := range []string{"handmade", "python3", "docker-f"} {
		if after[n] != before[n] {
			t.Errorf("--apply changed %s:\n%s\nwas\n%s", n, after[n], before[n])
		}
	}
	for _, n := range []string{"broken", "stale", "gone-pkg"} {
		if _, ok := after[n]; ok {
			t.Errorf("--apply left %s", n)
		}
	}
	if c, _ := m.Store.Claims("gone"); len(c) != 0 {
		t.Errorf("the erased package's record still claims %v", c.Names())
	}

	// By name, the pinned entry goes; a working unmanaged one never does.
	fs, err = m.PruneWith(lifecycle.PruneOptions{Apply: true, Names: []string{"docker-f", "handmade"}})
	if err != nil || len(fs) != 2 {
		t.Fatalf("prune --apply docker-f handmade: %+v %v", fs, err)
	}
	after = snapshot()
	if _, ok := after["docker-f"]; ok {
		t.Errorf("prune --apply docker-f left it")
	}
	if after["handmade"] != before["handmade"] || after["python3"] != before["python3"] {
		t.Errorf("prune by name touched a working unmanaged entry: %v", after)
	}
	// --pinned removes every pinned entry whose file is gone.
	write(dockerInterp)
	reg(":docker-g:M::DOCKERG::" + dockerInterp + ":F")
	os.Remove(dockerInterp)
	if fs, err = m.PruneWith(lifecycle.PruneOptions{Apply: true, Pinned: true}); err != nil {
		t.Fatal(err)
	}
	if _, ok := snapshot()["docker-g"]; ok {
		t.Errorf("prune --apply --pinned left docker-g: %+v", fs)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// writeRegister writes s to binfmt_misc's register file in one write, as
// another tool would.
func writeRegister(dir, s string) error {
	f, err := os.OpenFile(filepath.Join(dir, "register"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write([]byte(s))
	return err
}
