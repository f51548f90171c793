package binfmt_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// TestKernelInterpreterPathAsResolved reproduces the two exploits of
// issue 16 point 1 on the real kernel: an interpreter path that reads as
// a root-owned file but that the kernel, resolving it at exec time in
// the process that runs the program, takes into a directory the user
// controls. First the test shows the kernel does run the user's file
// for such a path (without C, so no credentials are at stake in the
// test); then it checks that Apply, which register, the hooks and sync
// go through, refuses each of them with C or O.
func TestKernelInterpreterPathAsResolved(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	// The safe interpreter, root's, at the path of the issue.
	src := filepath.Join(t.TempDir(), "safe-interp")
	writeFile(t, src, "#!/bin/sh\necho safe\n")
	if err := os.Chmod(src, 0o755); err != nil {
		t.Fatal(err)
	}
	ns.Bind(src, "/usr/libexec/safe-interp")

	// The user's tree: home/usr/libexec/safe-interp, and a deep
	// directory for the link.
	d := t.TempDir()
	home := filepath.Join(d, "home")
	writeFile(t, filepath.Join(home, "usr/libexec/safe-interp"), "#!/bin/sh\necho attacker\n")
	if err := os.Chmod(filepath.Join(home, "usr/libexec/safe-interp"), 0o755); err != nil {
		t.Fatal(err)
	}
	// d/x/ followed by enough ".." to climb from d to /: lexically
	// the path is /usr/libexec/safe-interp.
	depth := strings.Count(d, "/")
	dotdot := d + "/x" + strings.Repeat("/..", depth+1) + "/usr/libexec/safe-interp"
	if filepath.Clean(dotdot) != "/usr/libexec/safe-interp" {
		t.Fatalf("%q cleans to %q", dotdot, filepath.Clean(dotdot))
	}
	// d/x -> home/a1/.../a{depth+1}: the kernel follows the link, then
	// climbs depth+1 directories from there, into home.
	deep := home
	for i := range depth + 1 {
		deep = filepath.Join(deep, "a"+itoa(i))
	}
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(deep, filepath.Join(d, "x")); err != nil {
		t.Fatal(err)
	}
	procCwd := "/proc/self/cwd/usr/libexec/safe-interp"
	// procfs elsewhere, under root's directories: its magic links are
	// refused by the file system's type, not by the name /proc.
	ns.Bind("/proc", "/usr/libexec/pp")

	// What the kernel runs for each path, from home as the working
	// directory (the program's, not the registering process's).
	prog := filepath.Join(d, "prog")
	if err := os.WriteFile(prog, []byte("\x7fDOT and the rest"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, interp := range []string{dotdot, procCwd} {
		if err := writeRegister(ns.BinfmtDir, `:probe:M::\x7fDOT::`+interp+":"); err != nil {
			t.Fatalf("registering %s without credentials: %v", interp, err)
		}
		cmd := exec.Command(prog)
		cmd.Dir = home
		out, err := cmd.Output()
		if err != nil || string(out) != "attacker\n" {
			t.Errorf("running a program through %s: %v, output %q; the test expects the kernel to run home's file", interp, err, out)
		}
		removeEntry(t, ns.BinfmtDir, "probe")
	}

	// The checker runs from / here, where the old lexical check found
	// /usr/libexec/safe-interp behind /proc/self/cwd as well.
	t.Chdir("/")
	fs := openFS(t, ns.BinfmtDir)
	for _, tt := range []struct{ interp, flags, why string }{
		{dotdot, "OC", `".." component`},
		{"/tmp/x/../../usr/libexec/safe-interp", "OC", `".." component`},
		{procCwd, "OC", "goes through /proc"},
		{procCwd, "O", "goes through /proc"},
		{"/proc/1/root/usr/libexec/safe-interp", "OC", "goes through /proc"},
		{"/usr/libexec/./safe-interp", "OC", `"." component`},
		{"/usr//libexec/safe-interp", "OC", "empty component"},
		{"/dev/fd/3", "OC", "goes through /proc"},
		{"/usr/libexec/pp/self/cwd/usr/libexec/safe-interp", "OC", `"/usr/libexec/pp" is on procfs`},
	} {
		lines, errs := binfmt.Parse(strings.NewReader(`:bad:M::\x7fDOT::`+tt.interp+":"+tt.flags+"\n"), "bad.conf")
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		res := fs.Apply(lines, "/")
		if err := res[0].Err; !errors.Is(err, binfmt.ErrUnsafe) || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("Apply of %s with %s: %v; want ErrUnsafe: %s", tt.interp, tt.flags, err, tt.why)
		}
		if names := liveNames(t, ns.BinfmtDir); len(names) != 0 {
			t.Errorf("after refusing %s the table holds %q", tt.interp, names)
			removeEntry(t, ns.BinfmtDir, "bad")
		}
	}
	// The canonical path of the same file passes.
	lines, _ := binfmt.Parse(strings.NewReader(`:good:M::\x7fDOT::/usr/libexec/safe-interp:OC`+"\n"), "good.conf")
	if res := fs.Apply(lines, "/"); res[0].Err != nil {
		t.Errorf("Apply of the canonical /usr/libexec/safe-interp with OC: %v", res[0].Err)
	}
}
