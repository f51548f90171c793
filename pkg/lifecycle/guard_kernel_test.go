package lifecycle_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

// TestGuardRestoresOnTheKernel: the guard's two halves around a real
// flush (what systemd-binfmt does: -1 to status) put back every entry of
// every shape byte for byte — offsets, masks, E entries, every flag, an
// interpreter path with a space, the disabled state — in the kernel's
// order, and name in one line each the F entry whose interpreter is gone.
// An entry a binfmt.d file registered again after the flush is left as
// the file made it.
func TestGuardRestoresOnTheKernel(t *testing.T) { guardRestores(t, false) }

// TestGuardRestoresFromEarlyOnTheKernel: the same flush, where
// guard-before's Lua body found the table as the early step left it and
// started no process (scriptlets' TestGuardBeforeSkip): guard-after, told
// so (lifecycle.EarlyIsBefore), puts back everything from the early
// snapshot byte for byte, in the kernel's order, and says nothing of a
// wrong order.
func TestGuardRestoresFromEarlyOnTheKernel(t *testing.T) { guardRestores(t, true) }

func guardRestores(t *testing.T, earlyIsBefore bool) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	m, _ := manager(t, ns, map[string]string{"f.conf": ":by-file:M::BYFILE::/bin/true:\n"})
	var notices strings.Builder
	m.Notices = &syncWriter{w: &notices}
	if err := os.MkdirAll(filepath.Join(m.Config.Root, lifecycle.SystemdBooted), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := ns.TempDir()
	spaced := filepath.Join(dir, "an interpreter")
	gone := filepath.Join(dir, "docker-qemu")
	data, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{spaced, gone} {
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fs := &binfmt.FS{Dir: ns.BinfmtDir}
	regs := []struct{ name, s string }{
		{"offset-mask", `:offset-mask:M:3:\x01\x3a\x5c\xff:\xff\xf0\xff\x0f:/bin/true:P`},
		{"ext", ":ext:E::guardext::/bin/true:"},
		{"oc", ":oc:M::OCMAGIC::/bin/true:C"},
		{"pinned", ":pinned:M::PINNED::/bin/true:POF"},
		{"spaced", ":spaced:M::SPACED::" + spaced + ":"},
		{"disabled", ":disabled:M::DISABLED::/bin/true:F"},
		{"docker", ":docker:M::DOCKER::" + gone + ":F"},
		{"by-file", ":by-file:M::OLDDEF::/bin/true:"},
	}
	for _, r := range regs {
		if err := fs.RegisterString(r.name, r.s); err != nil {
			t.Fatalf("registering %s: %v", r.s, err)
		}
	}
	if err := fs.Disable("disabled"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	before := rawTable(t, fs)
	order, _ := fs.Names()

	const tx = "4242 1"
	var afterArgs []string
	if earlyIsBefore {
		if err := m.Trigger(lifecycle.StepEarly, tx, []string{"/usr/lib/binfmt.d/f.conf"}); err != nil {
			t.Fatal(err)
		}
		afterArgs = []string{lifecycle.EarlyIsBefore}
	} else if err := m.Trigger(lifecycle.StepGuardBefore, tx, nil); err != nil {
		t.Fatal(err)
	}
	// systemd-binfmt: flush, then register every binfmt.d file.
	if err := os.WriteFile(filepath.Join(ns.BinfmtDir, "status"), []byte("-1"), 0); err != nil {
		t.Fatal(err)
	}
	if err := fs.RegisterString("by-file", ":by-file:M::BYFILE::/bin/true:"); err != nil {
		t.Fatal(err)
	}
	byFile, _ := fs.Raw("by-file")
	if err := m.Trigger(lifecycle.StepGuardAfter, tx, afterArgs); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(notices.String(), "against their priorities") {
		t.Errorf("the guard speaks of a wrong order:\n%s", notices.String())
	}

	after := rawTable(t, fs)
	want := map[string]string{}
	for n, raw := range before {
		want[n] = raw
	}
	delete(want, "docker")
	want["by-file"] = string(byFile)
	if !reflect.DeepEqual(after, want) {
		t.Errorf("after the flush and the guard:\n%q\nwant\n%q\nnotices:\n%s", after, want, notices.String())
	}
	var wantOrder []string
	for _, n := range order {
		if n != "docker" && n != "by-file" {
			wantOrder = append(wantOrder, n)
		}
	}
	var gotOrder []string
	now, _ := fs.Names()
	for _, n := range now {
		if n != "by-file" {
			gotOrder = append(gotOrder, n)
		}
	}
	if !reflect.DeepEqual(gotOrder, wantOrder) {
		t.Errorf("the kernel lists %q after the guard, want the order before the flush %q", gotOrder, wantOrder)
	}
	var named []string
	for _, l := range strings.Split(strings.TrimSpace(notices.String()), "\n") {
		if strings.Contains(l, `"docker"`) {
			named = append(named, l)
		}
	}
	if len(named) != 1 || !strings.Contains(named[0], "cannot be registered again") || !strings.Contains(named[0], gone) {
		t.Errorf("the docker-style entry is named %d times, want once with its interpreter %s:\n%s", len(named), gone, notices.String())
	}
	if strings.Contains(notices.String(), `"by-file"`) {
		t.Errorf("the entry a file registered again is named:\n%s", notices.String())
	}
}

func rawTable(t *testing.T, fs *binfmt.FS) map[string]string {
	t.Helper()
	names, err := fs.Names()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range names {
		raw, err := fs.Raw(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = string(raw)
	}
	return out
}
