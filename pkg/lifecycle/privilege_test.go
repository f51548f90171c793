package lifecycle_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// TestUnsafeInterpreterViaHook checks, one case at a time, that the hook
// refuses to register an entry with flag C or O whose interpreter, or a
// directory above it, is writable by group or others or not owned by root
// (the kernel would run it with the credentials of the program it runs),
// that an entry of the package's that has become unsafe is unregistered,
// and that each refusal is one line naming the offending path.
func TestUnsafeInterpreterViaHook(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	// A root-owned tree whose parents are root's and not writable by
	// others, unlike anything under /tmp.
	base := "/usr/local/lib/binfmtctl-unsafe"
	ns.Tmpfs(base)
	mk := func(t *testing.T, p string, mode os.FileMode, uid int) string {
		t.Helper()
		full := filepath.Join(base, p)
		if mode.IsDir() {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
		} else {
			os.MkdirAll(filepath.Dir(full), 0o755)
			if err := os.WriteFile(full, []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(full, mode&(os.ModePerm|os.ModeSticky)); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(full, uid, 0); err != nil {
			t.Skipf("cannot chown to uid %d in the namespace (only real root gets a full id map): %v", uid, err)
		}
		return full
	}
	dir := os.ModeDir
	cases := []struct {
		name   string
		flags  string
		build  func(t *testing.T) (interp string, unsafe, safe func())
		bad    string // the path the refusal names, under base
		reason string
	}{
		{"interpreter writable by group", "C", func(t *testing.T) (string, func(), func()) {
			p := mk(t, "g/interp", 0o755, 0)
			return p, func() { os.Chmod(p, 0o775) }, func() { os.Chmod(p, 0o755) }
		}, "g/interp", "writable by group or others (mode 0775)"},
		{"interpreter writable by others", "O", func(t *testing.T) (string, func(), func()) {
			p := mk(t, "o/interp", 0o755, 0)
			return p, func() { os.Chmod(p, 0o757) }, func() { os.Chmod(p, 0o755) }
		}, "o/interp", "writable by group or others (mode 0757)"},
		{"interpreter owned by a user", "OC", func(t *testing.T) (string, func(), func()) {
			p := mk(t, "u/interp", 0o755, 0)
			return p, func() { os.Lchown(p, 1000, 0) }, func() { os.Lchown(p, 0, 0) }
		}, "u/interp", "owned by uid 1000, not root"},
		{"directory writable by group", "C", func(t *testing.T) (string, func(), func()) {
			d := mk(t, "dg", dir|0o755, 0)
			p := mk(t, "dg/interp", 0o755, 0)
			return p, func() { os.Chmod(d, 0o775) }, func() { os.Chmod(d, 0o755) }
		}, "dg", "writable by group or others (mode 0775)"},
		{"directory writable by others", "O", func(t *testing.T) (string, func(), func()) {
			d := mk(t, "do", dir|0o755, 0)
			p := mk(t, "do/interp", 0o755, 0)
			return p, func() { os.Chmod(d, 0o777) }, func() { os.Chmod(d, 0o755) }
		}, "do", "writable by group or others (mode 0777)"},
		{"sticky directory writable by all", "OC", func(t *testing.T) (string, func(), func()) {
			d := mk(t, "ds", dir|0o755, 0)
			p := mk(t, "ds/interp", 0o755, 0)
			return p, func() { os.Chmod(d, 0o777|os.ModeSticky) }, func() { os.Chmod(d, 0o755) }
		}, "ds", "writable by group or others"},
		{"directory two levels up owned by a user", "C", func(t *testing.T) (string, func(), func()) {
			d := mk(t, "du", dir|0o755, 0)
			mk(t, "du/bin", dir|0o755, 0)
			p := mk(t, "du/bin/interp", 0o755, 0)
			return p, func() { os.Lchown(d, 1000, 0) }, func() { os.Lchown(d, 0, 0) }
		}, "du", "owned by uid 1000, not root"},
		{"symlink into a directory writable by others", "OC", func(t *testing.T) (string, func(), func()) {
			d := mk(t, "dl", dir|0o755, 0)
			mk(t, "dl/interp", 0o755, 0)
			mk(t, "links", dir|0o755, 0)
			link := filepath.Join(base, "links/interp")
			if err := os.Symlink(filepath.Join(d, "interp"), link); err != nil {
				t.Fatal(err)
			}
			return link, func() { os.Chmod(d, 0o777) }, func() { os.Chmod(d, 0o755) }
		}, "dl", "writable by group or others (mode 0777)"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			interp, unsafe, safe := tc.build(t)
			name := fmt.Sprintf("unsafe-%d", i)
			line := fmt.Sprintf(":%s:E::us%d::%s:%s", name, i, interp, tc.flags)
			// Someone else's entry, which must never be touched.
			fs := &binfmt.FS{Dir: ns.BinfmtDir}
			foreign := fmt.Sprintf(":foreign-%d:E::fo%d::%s:%s", i, i, interp, tc.flags)
			if err := fs.RegisterString(fmt.Sprintf("foreign-%d", i), foreign); err != nil {
				t.Fatal(err)
			}
			m, files := manager(t, ns, map[string]string{"u.conf": line + "\n"})
			var notes strings.Builder
			m.Notices = &notes
			others := table(t, ns.BinfmtDir)
			delete(others, name)

			refused := func(step string) {
				t.Helper()
				err := m.Converge("pkg-u", files, true)
				if !errors.Is(err, binfmt.ErrUnsafe) || strings.Contains(err.Error(), "\n") ||
					!strings.Contains(err.Error(), "/usr/lib/binfmt.d/u.conf:1") ||
					!strings.Contains(err.Error(), `"`+filepath.Join(base, tc.bad)+`"`) || !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("%s: Converge = %v; want one line wrapping ErrUnsafe naming %s: %s", step, err, filepath.Join(base, tc.bad), tc.reason)
				}
				if notes.Len() != 0 {
					t.Errorf("%s: the refusal is also a notice, so the user reads it twice:\n%s", step, notes.String())
				}
				checkTable(t, step, ns.BinfmtDir, others, "")
				checkRecord(t, step, m.Store.Dir, "pkg-u", nil)
			}

			unsafe()
			refused("the hook with an unsafe interpreter")
			// Once safe it is registered; once unsafe again, the
			// package's own entry goes.
			safe()
			if err := m.Converge("pkg-u", files, true); err != nil {
				t.Fatalf("the hook with the interpreter made safe: %v", err)
			}
			checkTable(t, "the hook with the interpreter made safe", ns.BinfmtDir, merge(others, entries(t, line)), "")
			unsafe()
			refused("the hook after the interpreter became unsafe")
			safe()
			clearEntries(t, ns.BinfmtDir, fmt.Sprintf("foreign-%d", i))
		})
	}

	t.Run("without C or O the owner does not matter", func(t *testing.T) {
		p := mk(t, "plain/interp", 0o777, 1000)
		m, files := manager(t, ns, map[string]string{"p.conf": ":plain:E::pl::" + p + ":F\n"})
		if err := m.Converge("pkg-p", files, true); err != nil {
			t.Fatal(err)
		}
		if got := table(t, ns.BinfmtDir); got["plain"] == "" {
			t.Fatalf("plain is not registered: %v", got)
		}
		clearEntries(t, ns.BinfmtDir, "plain")
	})
}
