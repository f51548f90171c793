package lifecycle_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

// manifestOf is a Querier that knows one installed package.
type manifestOf lifecycle.Manifest

func (q manifestOf) Manifest(nevra string) (lifecycle.Manifest, error) {
	if nevra != q.NEVRA {
		return lifecycle.Manifest{}, lifecycle.ErrNotInstalled
	}
	return lifecycle.Manifest(q), nil
}

func (q manifestOf) Installed(name string) ([]lifecycle.Manifest, error) {
	if name != q.Name {
		return nil, nil
	}
	return []lifecycle.Manifest{lifecycle.Manifest(q)}, nil
}

// TestHookRefusesNativeEntries runs the post hook and sync of a package
// whose binfmt.d file defines an entry matching every native executable
// ("\x7fELF") and one matching its own interpreter: on the real kernel
// neither is registered, the hook says why and still succeeds (the
// transaction goes on), and the package's harmless entry is registered.
func TestHookRefusesNativeEntries(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	bin := ns.TempDir()
	loop := filepath.Join(bin, "loop-interp")
	if err := os.WriteFile(loop, []byte("#!LOOP\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m, files := manager(t, ns, map[string]string{
		"brick.conf": ":any-elf:M::\\x7fELF::/bin/true:\n:loop:M::#!LOOP::" + loop + ":\n:harmless:E::hl::/bin/sh:\n",
	})
	var notices strings.Builder
	m.Notices = &notices
	m.RPM = manifestOf{Name: "brick", NEVRA: "brick-1-1.noarch", Files: files}
	for _, step := range []struct {
		name string
		run  func() error
	}{
		{"hook post", func() error { return m.Hook(lifecycle.Post, "brick-1-1.noarch", 1) }},
		{"sync", func() error { return m.Sync("brick") }},
	} {
		notices.Reset()
		if err := step.run(); err != nil {
			t.Fatalf("%s: %v, want success: the transaction must go on", step.name, err)
		}
		for _, want := range []string{
			`entry "any-elf" matches binfmtctl's own file /proc/self/exe: the entry would run the host's own programs through /bin/true`,
			`entry "loop" matches its own interpreter ` + loop + `: the entry would run the host's own programs`,
		} {
			if !strings.Contains(notices.String(), want) {
				t.Errorf("%s: notices lack %q:\n%s", step.name, want, notices.String())
			}
		}
		for _, n := range []string{"any-elf", "loop"} {
			if _, err := os.Stat(filepath.Join(ns.BinfmtDir, n)); !os.IsNotExist(err) {
				t.Errorf("%s: %s is registered (%v)", step.name, n, err)
			}
		}
		if _, err := os.Stat(filepath.Join(ns.BinfmtDir, "harmless")); err != nil {
			t.Errorf("%s: the harmless entry is not registered: %v", step.name, err)
		}
	}
}
