package lifecycle_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/scriptlets"
)

// interpreterSource is a native program that stands in for an emulator: it
// says which version it is and what it runs, and sleeps when the program's
// name asks it to, so a test can look at /proc/PID/exe.
const interpreterSource = `package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	fmt.Printf("interp VERSION %s\n", strings.Join(os.Args[1:], " "))
	if len(os.Args) > 1 && strings.Contains(os.Args[1], "sleep") {
		time.Sleep(120 * time.Second)
	}
}
`

// testPkg is a small package that ships binfmt.d files. With self set it
// is built like qemu-user-static-go: it ships binfmtctl and the project's
// own scriptlets. Otherwise it uses the rpm macros from spec/ and requires
// /usr/bin/binfmtctl from elsewhere.
type testPkg struct {
	name, version string
	confs         map[string]string // binfmt.d file name -> content
	self          bool
	// paths are more files: absolute path -> content.
	paths map[string]string
	// epoch and release, "" for none and "1".
	epoch, release string
	obsoletes      []string
}

func (p testPkg) interp() string { return "/usr/libexec/" + p.name + "/interp" }

func (p testPkg) rel() string {
	if p.release == "" {
		return "1"
	}
	return p.release
}

func (p testPkg) build(t *testing.T, helper string) string {
	t.Helper()
	spec := sandbox.PackageSpec{
		Name:      p.name,
		Epoch:     p.epoch,
		Version:   p.version,
		Release:   p.release,
		Arch:      "x86_64",
		Obsoletes: p.obsoletes,
		Files: []sandbox.File{
			{Dst: "/usr/libexec/" + p.name, Type: "dir", Mode: 0o755},
			{Dst: p.interp(), Src: sandbox.CrossBuild(t, runtime.GOARCH, strings.Replace(interpreterSource, "VERSION", p.name+"-"+p.version, 1)), Mode: 0o755},
		},
	}
	for name, content := range p.confs {
		spec.Files = append(spec.Files, sandbox.File{Dst: "/usr/lib/binfmt.d/" + name, Content: []byte(content), Mode: 0o644})
	}
	for path, content := range p.paths {
		spec.Files = append(spec.Files, sandbox.File{Dst: path, Content: []byte(content), Mode: 0o644})
	}
	if p.self {
		s := scriptlets.Render(p.name, p.version, p.rel())
		spec.Post, spec.PreUn, spec.PostUn = s.Post, s.Preun, s.Postun
		spec.Files = append(spec.Files, sandbox.File{Dst: "/usr/bin/binfmtctl", Src: helper, Mode: 0o755})
	} else {
		spec.Post = rpmEval(t, p, "%binfmtctl_post")
		spec.PreUn = rpmEval(t, p, "%binfmtctl_preun")
		spec.PostUn = rpmEval(t, p, "%binfmtctl_postun")
		spec.Requires = []string{"/usr/bin/binfmtctl"}
	}
	return sandbox.BuildRPM(t, spec)
}

// rpmEval expands one of the macros other packagers use, with the real
// rpm and the real macros file.
func rpmEval(t *testing.T, p testPkg, macro string) string {
	t.Helper()
	args := []string{"--load", "../../spec/macros.binfmtctl",
		"--define", "name " + p.name, "--define", "version " + p.version, "--define", "release " + p.rel()}
	if p.epoch != "" {
		args = append(args, "--define", "epoch "+p.epoch)
	}
	out, err := exec.Command("rpm", append(args, "--eval", macro)...).CombinedOutput()
	if err != nil {
		t.Fatalf("rpm --eval %s: %v\n%s", macro, err, out)
	}
	return string(out)
}

// buildHelper builds binfmtctl the way the package ships it.
func buildHelper(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "binfmtctl")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "../../cmd/binfmtctl")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building binfmtctl: %v\n%s", err, b)
	}
	return out
}

// table reads every live entry file.
func table(t *testing.T, dir string) map[string]string {
	t.Helper()
	fs := &binfmt.FS{Dir: dir}
	names, err := fs.Names()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range names {
		b, err := fs.Raw(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = string(b)
	}
	return out
}

// want builds the expected table: the untouched entries plus, for each
// line, the entry file the kernel shows once it is registered.
func want(t *testing.T, untouched map[string]string, lines ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range untouched {
		out[k] = v
	}
	for _, l := range lines {
		e, err := binfmt.ParseLine(l)
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name] = e.Status()
	}
	return out
}

func checkTable(t *testing.T, step, dir string, want map[string]string, output string) {
	t.Helper()
	got := table(t, dir)
	var diffs []string
	for n, w := range want {
		if g, ok := got[n]; !ok {
			diffs = append(diffs, fmt.Sprintf("missing %s", n))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s is\n%s\nwant\n%s", n, g, w))
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %s:\n%s", n, got[n]))
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Fatalf("after %s, the kernel table is wrong:\n%s\n--- transaction output:\n%s", step, strings.Join(diffs, "\n"), output)
	}
}

func must(t *testing.T, step string) func(string, error) string {
	return func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v\n%s", step, err, out)
		}
		return out
	}
}

// program writes an executable whose first bytes are magic into the root.
func program(t *testing.T, r *sandbox.Root, name, magic string) string {
	t.Helper()
	p := "/tmp/" + name
	if err := os.WriteFile(r.Path(p), []byte(magic+"\x00payload\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTransactions runs on each stack: the host's rpm 4.18 and dnf 4, and
// Debian sid's rpm 6.1 and dnf5 (subtests host and sid).
func TestTransactions(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { testTransactions(t, st) })
	}
}

func testTransactions(t *testing.T, st sandbox.Stack) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	helper := buildHelper(t)
	r := ns.DNFRootOn(st)
	bm := r.BinfmtDir

	// Entries of package A, version 1 and 2. v2 drops t-a, changes t-b,
	// keeps t-c, and adds t-d.
	const (
		lineA  = ":t-a:M::BFTA::/usr/libexec/pkg-a/interp:F"
		lineB1 = ":t-b:M::BFTB::/usr/libexec/pkg-a/interp:F"
		lineB2 = ":t-b:M:2:TB2::/usr/libexec/pkg-a/interp:PF"
		lineC  = ":t-c:M::BFTC::/usr/libexec/pkg-a/interp:F"
		lineD  = "|t-d|E||tdx||/usr/libexec/pkg-a/interp|"
		// Package B's entry shares t-c's magic under its own name.
		lineSame = ":u-same:M::BFTC::/usr/libexec/pkg-b/interp:F"
		lineU    = ":u-e:M::BFTU::/usr/libexec/pkg-b/interp:F"
	)
	a1 := testPkg{name: "pkg-a", version: "1.0", self: true, confs: map[string]string{
		"t-a.conf": "# package A\n" + lineA + "\n", "t-b.conf": lineB1 + "\n", "t-c.conf": lineC + "\n"}}
	a2 := testPkg{name: "pkg-a", version: "2.0", self: true, confs: map[string]string{
		"t-b.conf": lineB2 + "\n", "t-c.conf": "; same entry\n" + lineC + "\n", "t-d.conf": lineD + "\n"}}
	b1 := testPkg{name: "pkg-b", version: "1.0", confs: map[string]string{"u.conf": lineSame + "\n" + lineU + "\n"}}
	rpmA1, rpmA2, rpmB1 := a1.build(t, helper), a2.build(t, helper), b1.build(t, helper)

	// Someone else's entry, registered by hand before anything else.
	manual := ":manual-test:M::MANUAL::/bin/true:"
	fs := &binfmt.FS{Dir: bm}
	if err := fs.RegisterString("manual-test", manual); err != nil {
		t.Fatal(err)
	}
	others := table(t, bm)

	run := func(step, prog, wantOut string) {
		t.Helper()
		out, err := r.Chroot(prog)
		if wantOut == "" {
			if err == nil || !strings.Contains(out+err.Error(), "exec format error") {
				t.Fatalf("%s: running %s should fail with exec format error, got %v\n%s", step, prog, err, out)
			}
			return
		}
		if err != nil || !strings.Contains(out, wantOut) {
			t.Fatalf("%s: running %s: %v\n%s\nwant %q", step, prog, err, out, wantOut)
		}
	}
	progA := program(t, r, "prog-a", "BFTA")
	progC := program(t, r, "prog-c", "BFTC")
	progD := "/tmp/prog.tdx"
	os.WriteFile(r.Path(progD), []byte("anything\n"), 0o755)

	t.Run("install", func(t *testing.T) {
		out := must(t, "dnf install v1")(r.DNF("install", rpmA1))
		checkTable(t, "install", bm, want(t, others, lineA, lineB1, lineC), out)
		run("install", progA, "interp pkg-a-1.0 /tmp/prog-a")
		run("install", progD, "")
		run("install", progC, "interp pkg-a-1.0 /tmp/prog-c")
	})

	t.Run("upgrade", func(t *testing.T) {
		out := must(t, "dnf upgrade v2")(r.DNF("upgrade", rpmA2))
		checkTable(t, "upgrade", bm, want(t, others, lineB2, lineC, lineD), out)
		run("upgrade", progA, "")
		run("upgrade", progD, "interp pkg-a-2.0 /tmp/prog.tdx")
		checkPinned(t, r, a2)
	})

	t.Run("reinstall", func(t *testing.T) {
		out := must(t, "dnf reinstall v2")(r.DNF("reinstall", rpmA2))
		checkTable(t, "reinstall", bm, want(t, others, lineB2, lineC, lineD), out)
		checkPinned(t, r, a2)
	})

	t.Run("downgrade", func(t *testing.T) {
		out := must(t, "dnf downgrade v1")(r.DNF("downgrade", rpmA1))
		checkTable(t, "downgrade", bm, want(t, others, lineA, lineB1, lineC), out)
		run("downgrade", progA, "interp pkg-a-1.0")
		checkPinned(t, r, a1)
		out = must(t, "rpm -U v2")(r.RPM("-U", rpmA2))
		checkTable(t, "rpm -U", bm, want(t, others, lineB2, lineC, lineD), out)
	})

	t.Run("override and mask", func(t *testing.T) {
		override := ":t-b:M::OVERRIDE::/usr/libexec/pkg-a/interp:F"
		os.MkdirAll(r.Path("/etc/binfmt.d"), 0o755)
		os.WriteFile(r.Path("/etc/binfmt.d/t-b.conf"), []byte(override+"\n"), 0o644)
		os.Symlink("/dev/null", r.Path("/etc/binfmt.d/t-d.conf"))
		out := must(t, "dnf reinstall with override")(r.DNF("reinstall", rpmA2))
		checkTable(t, "reinstall with an /etc override and a mask", bm, want(t, others, override, lineC), out)
		os.Remove(r.Path("/etc/binfmt.d/t-b.conf"))
		os.Remove(r.Path("/etc/binfmt.d/t-d.conf"))
		out = must(t, "binfmtctl sync")(r.Chroot("/usr/bin/binfmtctl", "sync", "pkg-a"))
		checkTable(t, "sync without the override", bm, want(t, others, lineB2, lineC, lineD), out)
	})

	t.Run("binfmt_misc unmounted during install", func(t *testing.T) {
		ns.Unmount(bm)
		out := must(t, "dnf install B")(r.DNF("install", rpmB1))
		if !strings.Contains(out, "not mounted") {
			t.Errorf("no notice that binfmt_misc is not mounted:\n%s", out)
		}
		checkTable(t, "install without binfmt_misc", ns.BinfmtDir, want(t, others, lineB2, lineC, lineD), out)
		if _, err := os.Stat(r.Path("/var/lib/binfmtctl/pkg-b")); err == nil {
			t.Errorf("a record was kept for pkg-b although nothing was registered")
		}
		ns.Bind(ns.BinfmtDir, bm)
		out = must(t, "binfmtctl sync pkg-b")(r.Chroot("/usr/bin/binfmtctl", "sync", "pkg-b"))
		checkTable(t, "sync pkg-b", bm, want(t, others, lineB2, lineC, lineD, lineSame, lineU), out)
	})

	t.Run("status", func(t *testing.T) {
		out := must(t, "binfmtctl status --json")(r.Chroot("/usr/bin/binfmtctl", "status", "--json"))
		for name, owner := range map[string]string{"t-b": "pkg-a", "t-c": "pkg-a", "t-d": "pkg-a", "u-same": "pkg-b", "manual-test": ""} {
			if !strings.Contains(out, fmt.Sprintf("\"name\": %q", name)) {
				t.Fatalf("status lacks %s:\n%s", name, out)
			}
			if owner != "" && !strings.Contains(out, fmt.Sprintf("\"owner\": %q", owner)) {
				t.Fatalf("status lacks owner %s:\n%s", owner, out)
			}
		}
	})

	t.Run("erase the second package", func(t *testing.T) {
		out := must(t, "dnf remove B")(r.DNF("remove", "pkg-b"))
		checkTable(t, "remove B", bm, want(t, others, lineB2, lineC, lineD), out)
	})

	t.Run("erase with --nopreun after a hijack", func(t *testing.T) {
		hijack := ":t-c:M::BFTC::/bin/true:"
		if err := fs.Unregister("t-c"); err != nil {
			t.Fatal(err)
		}
		if err := fs.RegisterString("t-c", hijack); err != nil {
			t.Fatal(err)
		}
		out := must(t, "rpm -e --nopreun")(r.RPM("-e", "--nopreun", "pkg-a"))
		checkTable(t, "rpm -e --nopreun", bm, want(t, others, hijack), out)
		if !strings.Contains(out, "t-c was replaced by someone else") {
			t.Errorf("no notice naming the hijacked entry:\n%s", out)
		}
		fs.Unregister("t-c")
		assertGone(t, r, "/var/lib/binfmtctl", "/usr/libexec/pkg-a", "/usr/bin/binfmtctl")
	})

	t.Run("erase with --noscripts, then prune", func(t *testing.T) {
		out := must(t, "dnf install v2")(r.DNF("install", rpmA2))
		out = must(t, "rpm -e --noscripts")(r.RPM("-e", "--noscripts", "pkg-a"))
		// The bug this project exists for: the entries outlive the package.
		checkTable(t, "rpm -e --noscripts", bm, want(t, others, lineB2, lineC, lineD), out)
		ctl := "/tmp/binfmtctl"
		data, _ := os.ReadFile(helper)
		os.WriteFile(r.Path(ctl), data, 0o755)
		status := must(t, "status")(r.Chroot(ctl, "status"))
		if !strings.Contains(status, "t-c") || !strings.Contains(status, "/usr/libexec/pkg-a/interp  no") {
			t.Fatalf("status does not show the missing interpreter:\n%s", status)
		}
		list := must(t, "prune")(r.Chroot(ctl, "prune"))
		for _, n := range []string{"t-b", "t-c", "t-d"} {
			if !strings.Contains(list, n+": would remove (left behind: the record of pkg-a claims it, and pkg-a is not installed)") {
				t.Errorf("prune does not list %s:\n%s", n, list)
			}
		}
		// A working entry nothing claims is someone else's (issue 14).
		if !strings.Contains(list, "manual-test: keep (unmanaged: interpreter /bin/true exists and nothing claims it") {
			t.Errorf("prune does not keep manual-test:\n%s", list)
		}
		checkTable(t, "prune without --apply", bm, want(t, others, lineB2, lineC, lineD), list)
		out = must(t, "prune --apply")(r.Chroot(ctl, "prune", "--apply"))
		checkTable(t, "prune --apply", bm, others, out)
		assertGone(t, r, "/var/lib/binfmtctl")
	})

	t.Run("erase", func(t *testing.T) {
		out := must(t, "dnf install v2")(r.DNF("install", rpmA2))
		checkTable(t, "install v2", bm, want(t, others, lineB2, lineC, lineD), out)
		out = must(t, "dnf remove")(r.DNF("remove", "pkg-a"))
		checkTable(t, "dnf remove", bm, others, out)
		assertGone(t, r, "/var/lib/binfmtctl", "/usr/libexec/pkg-a")
	})
}

func assertGone(t *testing.T, r *sandbox.Root, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(r.Path(p)); err == nil {
			t.Errorf("%s is left behind", p)
		}
	}
}

// checkPinned starts a program that sleeps under p's F entry t-c and
// checks that the kernel runs the interpreter file now on disk, not the
// deleted file of an earlier version.
func checkPinned(t *testing.T, r *sandbox.Root, p testPkg) {
	t.Helper()
	prog := "/tmp/sleep-c"
	os.WriteFile(r.Path(prog), []byte("BFTC\x00sleep\n"), 0o755)
	cmd := &exec.Cmd{Path: prog, Args: []string{prog}, Dir: "/", SysProcAttr: &syscall.SysProcAttr{Chroot: r.Dir}}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", prog, err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	exe := fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid)
	var target string
	for i := 0; i < 100; i++ {
		target, _ = os.Readlink(exe)
		if strings.Contains(target, "interp") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.HasSuffix(target, "(deleted)") || !strings.HasSuffix(target, p.interp()) {
		t.Fatalf("the emulated process runs %q, want %s (not deleted)", target, r.Path(p.interp()))
	}
	var running, onDisk syscall.Stat_t
	if err := syscall.Stat(exe, &running); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(r.Path(p.interp()), &onDisk); err != nil {
		t.Fatal(err)
	}
	if running.Ino != onDisk.Ino || running.Dev != onDisk.Dev {
		t.Fatalf("the emulated process runs inode %d, the interpreter on disk is inode %d", running.Ino, onDisk.Ino)
	}
}
