package binfmt_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// These tests run against the real kernel, each in a private user and
// mount namespace with its own empty binfmt_misc (see package sandbox).

// writeRegister writes s to the register file in one write, bypassing
// the package, to ask the kernel itself.
func writeRegister(dir, s string) error {
	f, err := os.OpenFile(filepath.Join(dir, "register"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write([]byte(s))
	return err
}

func readEntry(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("reading entry %q: %v", name, err)
	}
	return string(b)
}

func removeEntry(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("-1"), 0); err != nil {
		t.Fatalf("removing entry %q: %v", name, err)
	}
}

// liveNames lists the entry files in directory order (newest first).
func liveNames(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := f.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range all {
		if n != "register" && n != "status" {
			out = append(out, n)
		}
	}
	return out
}

func openFS(t *testing.T, dir string) *binfmt.FS {
	t.Helper()
	fs, err := binfmt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// stricterThanKernel lists register strings the kernel accepts and
// ParseLine refuses on purpose, with the reason.
var stricterThanKernel = map[string]string{
	":t:E::x::bin/sh:":     "a relative interpreter would be resolved against whatever directory a program runs in",
	":a\nb:E::x::/bin/sh:": "a name with a newline cannot come from a binfmt.d line and breaks line-based output",
	// The kernel's entry file is line-based: with a newline in the
	// interpreter or the extension it cannot be read back (ParseLive).
	":t:E::x::/bin/s\nh:":  "an interpreter with a newline makes the entry file unreadable",
	":t:E::a\nb::/bin/sh:": "an extension with a newline makes the entry file unreadable",
	// string_unescape stops at a NUL byte, so the kernel silently
	// registers a shorter magic than the line says (verified on 6.18:
	// "magic 61" for a\0b).
	":t:M::a\x00b::/bin/sh:": "the kernel truncates the magic at a literal NUL",
	// kstrtoint takes one trailing newline.
	":t:M:5\n:AB::/bin/sh:": "a newline cannot be part of a binfmt.d line",
}

// TestKernelAgreesWithParseLine writes every TestParseLine input, and a
// few more, to a real register file: the kernel must accept exactly the
// lines ParseLine accepts, and the entry file it shows must be what
// Entry.Status renders.
func TestKernelAgreesWithParseLine(t *testing.T) {
	sandbox.Require(t, "/usr/bin/qemu-aarch64-static", "qemu-user-static")
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	type probe struct{ name, in string }
	var probes []probe
	for _, tt := range parseLineTests(t) {
		if _, ok := stricterThanKernel[tt.in]; !ok {
			probes = append(probes, probe{tt.name, tt.in})
		}
	}
	for in := range stricterThanKernel {
		probes = append(probes, probe{"stricter", in})
	}
	probes = append(probes,
		probe{"F with a missing interpreter", ":fmissing:E::x::/nonexistent/interp:F"},
	)
	for _, p := range probes {
		kerr := writeRegister(ns.BinfmtDir, p.in)
		e, perr := binfmt.ParseLine(p.in)
		why, stricter := stricterThanKernel[p.in]
		switch {
		case stricter:
			if kerr != nil || perr == nil {
				t.Errorf("%s %q: kernel error %v, ParseLine error %v; listed as accepted by the kernel and refused by ParseLine (%s)", p.name, p.in, kerr, perr, why)
			}
		case p.name == "F with a missing interpreter":
			// ParseLine cannot know; CheckInterpreter warns and the
			// kernel refuses with ENOENT.
			if !errors.Is(kerr, unix.ENOENT) || perr != nil {
				t.Errorf("%s: kernel error %v (want ENOENT), ParseLine error %v", p.name, kerr, perr)
			}
		case (kerr == nil) != (perr == nil):
			t.Errorf("%s %q: kernel error %v, ParseLine error %v; they must agree", p.name, p.in, kerr, perr)
		case kerr == nil:
			if got, want := readEntry(t, ns.BinfmtDir, e.Name), e.Status(); got != want {
				t.Errorf("%s %q: kernel entry file\n%q\nEntry.Status()\n%q", p.name, p.in, got, want)
			}
		}
		// Leave the table empty for the next probe.
		for _, n := range liveNames(t, ns.BinfmtDir) {
			removeEntry(t, ns.BinfmtDir, n)
		}
	}
}

// TestKernelStatusMatchesGolden checks the golden renderings against the
// kernel: each line of render.conf, registered verbatim and as rendered by
// RegisterString, gives the entry file Status renders.
func TestKernelStatusMatchesGolden(t *testing.T) {
	sandbox.Require(t, "/usr/bin/qemu-aarch64-static", "qemu-user-static")
	sandbox.Require(t, "/usr/bin/qemu-riscv64-static", "qemu-user-static")
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	fs := openFS(t, ns.BinfmtDir)
	for _, l := range renderLines(t) {
		for _, s := range []string{l.Raw, l.RegisterString()} {
			if err := fs.RegisterString(l.Name, s); err != nil {
				t.Errorf("%s: registering %q: %v", l, s, err)
				continue
			}
			if got := readEntry(t, ns.BinfmtDir, l.Name); got != l.Status() {
				t.Errorf("%s: registered %q, entry file\n%s\nwant\n%s", l, s, got, l.Status())
			}
			live, err := fs.Entry(l.Name)
			if err != nil || !live.Matches(l.Entry) || !live.Enabled {
				t.Errorf("%s: Entry = %+v, %v; want it to match %+v", l, live, err, l.Entry)
			}
			if err := fs.Unregister(l.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestKernelOperations(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	fs := openFS(t, ns.BinfmtDir)
	on, err := fs.Status()
	if err != nil || !on {
		t.Fatalf("Status() = %v, %v; want enabled", on, err)
	}
	if names, err := fs.Names(); err != nil || len(names) != 0 {
		t.Fatalf("Names() of a fresh binfmt_misc = %q, %v", names, err)
	}

	a := binfmt.Entry{Name: "a", Type: 'E', Magic: []byte("a"), Interpreter: "/bin/sh"}
	b := binfmt.Entry{Name: "b", Type: 'M', Offset: 4, Magic: []byte("BB"), Mask: []byte{0xff, 0xdf}, Interpreter: "/bin/sh", Flags: "PF"}
	c := binfmt.Entry{Name: "c", Type: 'E', Magic: []byte("c"), Interpreter: "/bin/false", Flags: "OC"}
	for _, e := range []binfmt.Entry{a, b, c} {
		if err := fs.Register(e); err != nil {
			t.Fatalf("Register(%+v): %v", e, err)
		}
	}
	// The kernel lists, and tries, the most recent entry first.
	if names, err := fs.Names(); err != nil || !slices.Equal(names, []string{"c", "b", "a"}) {
		t.Errorf("Names() = %q, %v; want newest first [c b a]", names, err)
	}
	lives, err := fs.Entries()
	if err != nil || len(lives) != 3 {
		t.Fatalf("Entries() = %+v, %v", lives, err)
	}
	for i, e := range []binfmt.Entry{c, b, a} {
		if !lives[i].Matches(e) || !lives[i].Enabled {
			t.Errorf("Entries()[%d] = %+v, want %+v", i, lives[i], e)
		}
	}
	raw, err := fs.Raw("b")
	if err != nil || string(raw) != readEntry(t, ns.BinfmtDir, "b") || string(raw) != b.Status() {
		t.Errorf("Raw(b) = %q, %v; want %q", raw, err, b.Status())
	}

	// Registering a taken name is EEXIST.
	err = fs.Register(a)
	if !errors.Is(err, binfmt.ErrExists) || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("registering a again: %v, want ErrExists naming it", err)
	}

	if err := fs.Disable("b"); err != nil {
		t.Fatal(err)
	}
	if l, err := fs.Entry("b"); err != nil || l.Enabled || !l.Matches(b) {
		t.Errorf("after Disable, Entry(b) = %+v, %v", l, err)
	}
	if !strings.HasPrefix(readEntry(t, ns.BinfmtDir, "b"), "disabled\n") {
		t.Errorf("entry file of a disabled entry: %q", readEntry(t, ns.BinfmtDir, "b"))
	}
	if err := fs.Enable("b"); err != nil {
		t.Fatal(err)
	}
	if l, err := fs.Entry("b"); err != nil || !l.Enabled {
		t.Errorf("after Enable, Entry(b) = %+v, %v", l, err)
	}

	// Replace swaps the definition and moves the entry to the front.
	a2 := a
	a2.Interpreter = "/bin/true"
	if err := fs.Replace(a2); err != nil {
		t.Fatal(err)
	}
	if l, err := fs.Entry("a"); err != nil || !l.Matches(a2) {
		t.Errorf("after Replace, Entry(a) = %+v, %v", l, err)
	}
	if names, _ := fs.Names(); !slices.Equal(names, []string{"a", "c", "b"}) {
		t.Errorf("after Replace, Names() = %q, want [a c b]", names)
	}
	// Replace of an absent name just registers.
	d := binfmt.Entry{Name: "d", Type: 'E', Magic: []byte("d"), Interpreter: "/bin/sh"}
	if err := fs.Replace(d); err != nil {
		t.Errorf("Replace of an absent entry: %v", err)
	}

	// Unregister removes exactly that entry.
	before := map[string]string{}
	for _, n := range []string{"a", "c", "d"} {
		before[n] = readEntry(t, ns.BinfmtDir, n)
	}
	if err := fs.Unregister("b"); err != nil {
		t.Fatal(err)
	}
	if names, _ := fs.Names(); !slices.Equal(names, []string{"d", "a", "c"}) {
		t.Errorf("after Unregister(b), Names() = %q", names)
	}
	for n, want := range before {
		if got := readEntry(t, ns.BinfmtDir, n); got != want {
			t.Errorf("entry %q changed when b was unregistered:\n%s\nwas\n%s", n, got, want)
		}
	}

	for name, op := range map[string]func(string) error{"Unregister": fs.Unregister, "Enable": fs.Enable, "Disable": fs.Disable} {
		err := op("b")
		if !errors.Is(err, binfmt.ErrNotFound) || !strings.Contains(err.Error(), `"b"`) {
			t.Errorf("%s of a missing entry: %v, want ErrNotFound naming it", name, err)
		}
	}
	if _, err := fs.Entry("b"); !errors.Is(err, binfmt.ErrNotFound) {
		t.Errorf("Entry of a missing entry: %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"register", "status", "..", "a/b", ""} {
		if err := fs.Unregister(bad); !errors.Is(err, binfmt.ErrInvalid) {
			t.Errorf("Unregister(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if on, err := fs.Status(); err != nil || !on {
		t.Errorf("global status after all that: %v, %v; nothing may touch it", on, err)
	}
}

// TestKernelRegisterIsOneWrite checks the limits of a register write: a
// string of exactly MaxRegisterLength bytes registers, which it could not
// if it were split into several writes, and a longer one is refused
// before anything reaches the kernel.
func TestKernelRegisterIsOneWrite(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	fs := openFS(t, ns.BinfmtDir)
	long := lineOfLength(t, binfmt.MaxRegisterLength)
	if err := fs.RegisterString("long", long); err != nil {
		t.Fatalf("registering a %d-byte string: %v", len(long), err)
	}
	e, _ := binfmt.ParseLine(long)
	if l, err := fs.Entry("long"); err != nil || !l.Matches(e) {
		t.Errorf("entry registered from %d bytes = %+v, %v", len(long), l, err)
	}
	if err := fs.Unregister("long"); err != nil {
		t.Fatal(err)
	}
	tooLong := lineOfLength(t, binfmt.MaxRegisterLength+1)
	if err := fs.RegisterString("long", tooLong); !errors.Is(err, binfmt.ErrInvalid) {
		t.Errorf("registering %d bytes: %v, want ErrInvalid", len(tooLong), err)
	}
	if names := liveNames(t, ns.BinfmtDir); len(names) != 0 {
		t.Errorf("after refused writes the table holds %q", names)
	}
	// The kernel parses each write on its own: a line cut in two is two
	// bad register strings, never one entry.
	if err := writeRegister(ns.BinfmtDir, ":half:E::x:"); !errors.Is(err, unix.EINVAL) {
		t.Errorf("writing half a line: %v, want EINVAL", err)
	}
}

func TestKernelFlagFMissingInterpreter(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	fs := openFS(t, ns.BinfmtDir)
	e := binfmt.Entry{Name: "fmissing", Type: 'E', Magic: []byte("x"), Interpreter: "/nonexistent/interp", Flags: "F"}
	warnings, err := binfmt.CheckInterpreter("/", e)
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "flag F") || !strings.Contains(warnings[0], "/nonexistent/interp") {
		t.Errorf("CheckInterpreter = %q, %v; want one warning about flag F naming the interpreter", warnings, err)
	}
	err = fs.Register(e)
	if !errors.Is(err, binfmt.ErrInvalid) || errors.Is(err, binfmt.ErrNotFound) || !strings.Contains(err.Error(), "interpreter does not exist") {
		t.Errorf("Register with F and a missing interpreter: %v, want ErrInvalid saying the interpreter does not exist", err)
	}
	// Without F the kernel takes it and fails only at exec time.
	e.Flags = ""
	if err := fs.Register(e); err != nil {
		t.Errorf("Register without F and a missing interpreter: %v", err)
	}
}

// TestKernelFind registers entries that compete for the same files and
// checks that Find picks the entry the kernel really runs: every
// interpreter is a script that prints its own name.
func TestKernelFind(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	dir := t.TempDir()
	interp := func(name string) string {
		p := filepath.Join(dir, "interp-"+name)
		writeFile(t, p, "#!/bin/sh\necho "+name+"\n")
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := func(name string, content []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fs := openFS(t, ns.BinfmtDir)
	register := func(s string) {
		t.Helper()
		e, err := binfmt.ParseLine(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.Register(e); err != nil {
			t.Fatal(err)
		}
	}
	// Registration order matters: the newest entry wins.
	register(":old:M::QQ::" + interp("old") + ":")
	register(":new:M::QQ::" + interp("new") + ":")
	register(`:masked:M::\x01\x02\x03:\xff\x00\xff:` + interp("masked") + ":")
	register(":offset:M:10:ZZ::" + interp("offset") + ":")
	register(":ext:E::foo::" + interp("ext") + ":")
	register(":disabled:M::DD::" + interp("disabled") + ":")
	register(":short:M:4:\\x00\\x00::" + interp("short") + ":")
	if err := fs.Disable("disabled"); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		path string
		want string // "" for no handler
	}{
		{file("qq", []byte("QQ and more")), "new"},
		{file("masked", []byte{1, 0x77, 3, 9, 9, 9}), "masked"},
		{file("masked-no", []byte{1, 0x77, 4, 9, 9, 9}), ""},
		{file("offset", []byte("0123456789ZZ......")), "offset"},
		{file("offset-no", []byte("ZZ................")), ""},
		{file("prog.foo", []byte("nothing else matches")), "ext"},
		// The extension is tried in registration order too: "short"
		// (newer) matches this 4-byte file's zero padding first.
		{file("tiny.foo", []byte("abcd")), "short"},
		{file("dd", []byte("DD is disabled")), ""},
	}
	check := func(enabled bool) {
		t.Helper()
		for _, c := range cases {
			want := c.want
			if !enabled {
				want = ""
			}
			l, err := fs.Find(c.path)
			got := l.Name
			if want == "" {
				if !errors.Is(err, binfmt.ErrNotFound) {
					t.Errorf("Find(%s) = %+v, %v; want ErrNotFound", filepath.Base(c.path), l, err)
				}
			} else if err != nil || got != want {
				t.Errorf("Find(%s) = %q, %v; want %q", filepath.Base(c.path), got, err, want)
			}
			// Ask the kernel.
			out, err := exec.Command(c.path).Output()
			if want == "" {
				if !errors.Is(err, unix.ENOEXEC) {
					t.Errorf("running %s: %v, output %q; want exec format error", filepath.Base(c.path), err, out)
				}
			} else if err != nil || string(out) != want+"\n" {
				t.Errorf("running %s: %v, output %q; the kernel ran %q's interpreter, want %q", filepath.Base(c.path), err, out, strings.TrimSpace(string(out)), want)
			}
		}
	}
	check(true)

	// With binfmt_misc disabled as a whole, nothing matches.
	if err := os.WriteFile(filepath.Join(ns.BinfmtDir, "status"), []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
	check(false)
	if err := os.WriteFile(filepath.Join(ns.BinfmtDir, "status"), []byte("1"), 0); err != nil {
		t.Fatal(err)
	}

	if _, err := fs.Find(filepath.Join(dir, "missing")); err == nil || errors.Is(err, binfmt.ErrNotFound) {
		t.Errorf("Find of a missing file: %v, want an error that is not ErrNotFound", err)
	}
}

func TestKernelReadOnly(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	fs := openFS(t, ns.BinfmtDir)
	a := binfmt.Entry{Name: "a", Type: 'E', Magic: []byte("a"), Interpreter: "/bin/sh"}
	if err := fs.Register(a); err != nil {
		t.Fatal(err)
	}
	before := readEntry(t, ns.BinfmtDir, "a")
	ns.RemountReadOnly(ns.BinfmtDir)
	b := binfmt.Entry{Name: "b", Type: 'E', Magic: []byte("b"), Interpreter: "/bin/sh"}
	for what, err := range map[string]error{
		"Register":   fs.Register(b),
		"Unregister": fs.Unregister("a"),
		"Disable":    fs.Disable("a"),
	} {
		if !errors.Is(err, binfmt.ErrReadOnly) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s on a read-only binfmt_misc: %v, want a one-line ErrReadOnly", what, err)
		}
	}
	// Reading still works.
	if l, err := fs.Entry("a"); err != nil || !l.Matches(a) {
		t.Errorf("Entry on a read-only mount: %+v, %v", l, err)
	}
	if got := readEntry(t, ns.BinfmtDir, "a"); got != before {
		t.Errorf("entry changed on a read-only mount")
	}
}

func TestKernelNotMounted(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	plain := t.TempDir()
	for _, dir := range []string{plain, filepath.Join(plain, "missing"), filepath.Join(plain, "file")} {
		if strings.HasSuffix(dir, "file") {
			writeFile(t, dir, "")
		}
		if ok, err := binfmt.Mounted(dir); ok || err != nil {
			t.Errorf("Mounted(%q) = %v, %v; want false, nil", dir, ok, err)
		}
		_, err := binfmt.Open(dir)
		if !errors.Is(err, binfmt.ErrNotMounted) || !strings.Contains(err.Error(), dir) {
			t.Errorf("Open(%q) = %v, want ErrNotMounted naming the directory", dir, err)
		}
	}
	if ok, err := binfmt.Mounted(ns.BinfmtDir); !ok || err != nil {
		t.Errorf("Mounted(%q) = %v, %v; want true", ns.BinfmtDir, ok, err)
	}

	// binfmt_misc going away under an open FS reads as not mounted, not
	// as a missing entry.
	fs := openFS(t, ns.BinfmtDir)
	ns.Unmount(ns.BinfmtDir)
	a := binfmt.Entry{Name: "a", Type: 'E', Magic: []byte("a"), Interpreter: "/bin/sh"}
	if err := fs.Register(a); !errors.Is(err, binfmt.ErrNotMounted) {
		t.Errorf("Register after unmount: %v, want ErrNotMounted", err)
	}
	if err := fs.Unregister("a"); !errors.Is(err, binfmt.ErrNotMounted) {
		t.Errorf("Unregister after unmount: %v, want ErrNotMounted", err)
	}
}

func TestKernelMount(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	fs := openFS(t, ns.BinfmtDir)
	a := binfmt.Entry{Name: "a", Type: 'E', Magic: []byte("a"), Interpreter: "/bin/sh"}
	if err := fs.Register(a); err != nil {
		t.Fatal(err)
	}
	dir := ns.TempDir()
	if err := binfmt.Mount(dir); err != nil {
		t.Fatalf("Mount(%q): %v", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	// Mounting where it is mounted already is a no-op.
	if err := binfmt.Mount(dir); err != nil {
		t.Errorf("second Mount(%q): %v", dir, err)
	}
	// Both mounts show the namespace's one table.
	second := openFS(t, dir)
	if l, err := second.Entry("a"); err != nil || !l.Matches(a) {
		t.Errorf("the second mount does not show entry a: %+v, %v", l, err)
	}
	if err := binfmt.Mount(filepath.Join(dir, "..", "missing-dir")); err == nil {
		t.Errorf("Mount on a missing directory succeeded")
	}
}

// TestKernelPermission checks that an unprivileged user gets a clear
// ErrPermission. It needs another user id in the namespace, which the
// full id map gives a test run as real root.
func TestKernelPermission(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	fs := openFS(t, ns.BinfmtDir)
	a := binfmt.Entry{Name: "a", Type: 'E', Magic: []byte("a"), Interpreter: "/bin/sh"}
	if err := fs.Register(a); err != nil {
		t.Fatal(err)
	}
	asUser(t, 1000, func() {
		b := binfmt.Entry{Name: "b", Type: 'E', Magic: []byte("b"), Interpreter: "/bin/sh"}
		for what, err := range map[string]error{
			"Register":   fs.Register(b),
			"Unregister": fs.Unregister("a"),
			"Disable":    fs.Disable("a"),
		} {
			if !errors.Is(err, binfmt.ErrPermission) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s as uid 1000: %v, want a one-line ErrPermission", what, err)
			}
		}
	})
	if names := liveNames(t, ns.BinfmtDir); !slices.Equal(names, []string{"a"}) {
		t.Errorf("after refused changes the table holds %q", names)
	}
}

// asUser runs f with effective uid and gid uid, keeping 0 as the saved
// uid so that the test can switch back. It skips the test when the
// namespace has no such user (a test not run as real root maps only 0).
func asUser(t *testing.T, uid int, f func()) {
	t.Helper()
	if err := unix.Setresgid(-1, uid, 0); err != nil {
		t.Skipf("cannot switch to gid %d in the namespace (only real root gets a full id map): %v", uid, err)
	}
	if err := unix.Setresuid(-1, uid, 0); err != nil {
		unix.Setresgid(-1, 0, 0)
		t.Skipf("cannot switch to uid %d in the namespace (only real root gets a full id map): %v", uid, err)
	}
	defer func() {
		if err := unix.Setresuid(-1, 0, 0); err != nil {
			t.Fatalf("switching back to uid 0: %v", err)
		}
		if err := unix.Setresgid(-1, 0, 0); err != nil {
			t.Fatalf("switching back to gid 0: %v", err)
		}
	}()
	f()
}

// TestCheckInterpreter builds interpreters with bad owners and modes under
// a root directory. It runs in the namespace because chown to another
// user needs the full id map.
func TestCheckInterpreter(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	root := t.TempDir()
	mk := func(p string, mode os.FileMode, uid int) {
		t.Helper()
		full := filepath.Join(root, p)
		if mode.IsDir() {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
		} else {
			writeFile(t, full, "#!/bin/sh\n")
		}
		if err := os.Chmod(full, mode.Perm()|mode&os.ModeSticky); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(full, uid, 0); err != nil {
			t.Skipf("cannot chown to uid %d in the namespace (only real root gets a full id map): %v", uid, err)
		}
	}
	link := func(p, target string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	mk("/usr/bin", os.ModeDir|0o755, 0)
	mk("/usr/bin/good", 0o755, 0)
	mk("/usr/bin/groupw", 0o775, 0)
	mk("/usr/bin/otherw", 0o757, 0)
	mk("/usr/bin/user", 0o755, 1000)
	mk("/opt/ww", os.ModeDir|0o777, 0)
	mk("/opt/ww/interp", 0o755, 0)
	mk("/opt/sticky", os.ModeDir|os.ModeSticky|0o777, 0)
	mk("/opt/sticky/interp", 0o755, 0)
	mk("/home/u/bin", os.ModeDir|0o755, 0)
	mk("/home/u", os.ModeDir|0o755, 1000)
	mk("/home/u/bin/interp", 0o755, 0)
	mk("/usr/lib/x", os.ModeDir|0o777, 0)
	mk("/usr/lib/x/interp", 0o755, 0)
	link("/usr/bin/abslink", "/opt/ww/interp")
	link("/usr/bin/rellink", "../lib/x/interp")
	link("/usr/bin/goodlink", "good")
	// Directory links with absolute targets lead inside the root, not to
	// the host's /opt and /usr.
	link("/usr/wwdir", "/opt/ww")
	link("/usr/bindir", "/usr/bin")

	tests := []struct {
		interp string
		flags  string
		bad    string // the path the error must name; "" for no error
		why    string
	}{
		{"/usr/bin/good", "OC", "", ""},
		{"/usr/bin/goodlink", "OCF", "", ""},
		{"/usr/bin/groupw", "OC", "/usr/bin/groupw", "writable by group or others (mode 0775)"},
		{"/usr/bin/otherw", "O", "/usr/bin/otherw", "writable by group or others (mode 0757)"},
		{"/usr/bin/user", "OC", "/usr/bin/user", "owned by uid 1000, not root"},
		{"/opt/ww/interp", "OC", "/opt/ww", "writable by group or others (mode 0777)"},
		{"/opt/sticky/interp", "OC", "/opt/sticky", "writable by group or others"},
		{"/home/u/bin/interp", "OC", "/home/u", "owned by uid 1000, not root"},
		{"/usr/bin/abslink", "OC", "/opt/ww", "writable by group or others"},
		{"/usr/bin/rellink", "OCF", "/usr/lib/x", "writable by group or others"},
		{"/usr/bin/missing", "OC", "/usr/bin/missing", "does not exist"},
		{"/usr/wwdir/interp", "OC", "/opt/ww", "writable by group or others"},
		{"/usr/bindir/good", "OC", "", ""},
		{"/usr/bindir/goodlink", "OC", "", ""},
		{"/usr/bindir/user", "OC", "/usr/bin/user", "owned by uid 1000"},
		// Without C or O the interpreter runs with the caller's own
		// credentials, so its owner is not checked.
		{"/usr/bin/groupw", "", "", ""},
		{"/opt/ww/interp", "PF", "", ""},
	}
	for _, tt := range tests {
		e := binfmt.Entry{Name: "t", Type: 'E', Magic: []byte("t"), Interpreter: tt.interp, Flags: tt.flags}
		_, err := binfmt.CheckInterpreter(root, e)
		if tt.bad == "" {
			if err != nil {
				t.Errorf("CheckInterpreter(%s, %q): %v", tt.interp, tt.flags, err)
			}
			continue
		}
		if !errors.Is(err, binfmt.ErrUnsafe) || !strings.Contains(err.Error(), `"`+tt.bad+`"`) || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("CheckInterpreter(%s, %q) = %v; want ErrUnsafe naming %q: %s", tt.interp, tt.flags, err, tt.bad, tt.why)
		}
		if err != nil && strings.Contains(err.Error(), root) {
			t.Errorf("CheckInterpreter error %q shows the root prefix", err)
		}
	}

	// One checker for many entries, as Apply uses, remembers directories
	// between them: the verdicts must be those of a fresh checker for each
	// entry, whichever entries came first.
	entries := make([]binfmt.Entry, len(tests))
	for i, tt := range tests {
		entries[i] = binfmt.Entry{Name: "t", Type: 'E', Magic: []byte("t"), Interpreter: tt.interp, Flags: tt.flags}
	}
	for _, order := range []string{"forward", "backward"} {
		if order == "backward" {
			slices.Reverse(entries)
		}
		_, errs := binfmt.CheckEach(root, entries)
		for i, e := range entries {
			_, want := binfmt.CheckInterpreter(root, e)
			if fmt.Sprint(errs[i]) != fmt.Sprint(want) {
				t.Errorf("%s: one checker for all says %v for %s %q; alone: %v", order, errs[i], e.Interpreter, e.Flags, want)
			}
		}
	}

	warn := func(interp, flags, want string) {
		t.Helper()
		e := binfmt.Entry{Name: "w", Type: 'E', Magic: []byte("w"), Interpreter: interp, Flags: flags}
		w, _ := binfmt.CheckInterpreter(root, e)
		if want == "" && len(w) != 0 || want != "" && (len(w) != 1 || !strings.Contains(w[0], want) || !strings.Contains(w[0], interp)) {
			t.Errorf("CheckInterpreter(%s, %q) warnings %q, want %q", interp, flags, w, want)
		}
	}
	warn("/usr/bin/nope", "F", "the kernel refuses flag F")
	warn("/usr/bin/nope", "", "matching programs will fail")
	warn("/usr/bin/good", "F", "")
}

func TestKernelUnrelatedEntriesUntouched(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	// Another tool's entries, one of them disabled.
	if err := writeRegister(ns.BinfmtDir, ":other-e:E::zz::/usr/bin/other:"); err != nil {
		t.Fatal(err)
	}
	if err := writeRegister(ns.BinfmtDir, `,other-m,M,3,\x01\x02,\xff\x0f,/usr/bin/other,P`); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ns.BinfmtDir, "other-m"), []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
	snapshot := func() map[string][]byte {
		out := map[string][]byte{}
		for _, n := range []string{"other-e", "other-m", "status"} {
			b, err := os.ReadFile(filepath.Join(ns.BinfmtDir, n))
			if err != nil {
				t.Fatal(err)
			}
			out[n] = b
		}
		return out
	}
	before := snapshot()
	fs := openFS(t, ns.BinfmtDir)
	lines, errs := binfmt.ParseFile(filepath.Join(goldenDir, "render.conf"))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	for _, r := range fs.Apply(lines, "/") {
		_ = r // C/O lines with missing interpreters fail; that is fine here
	}
	for _, l := range lines {
		fs.Unregister(l.Name)
	}
	after := snapshot()
	for n, b := range before {
		if !bytes.Equal(after[n], b) {
			t.Errorf("%s changed:\n%s\nwas\n%s", n, after[n], b)
		}
	}
}
