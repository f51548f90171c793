package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/inspect"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

const pkgName = "qemu-user-static-go"

// Go's names for the cpus the suite uses, and qemu's.
var goarch = map[string]string{"aarch64": "arm64", "riscv64": "riscv64", "ppc64le": "ppc64le", "s390x": "s390x"}

var (
	v1CPUs = []string{"aarch64", "riscv64", "ppc64le"}
	v2CPUs = []string{"aarch64", "s390x", "ppc64le"}
)

// builder makes a package from a directory of interpreters.
type builder func(t *testing.T, qemuDir string, cpus []string, version string) string

// buildTool builds cmd/qemu-user-static-go.
func buildTool(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "qemu-user-static-go")
	if b, err := exec.Command("go", "build", "-o", out, "../../cmd/qemu-user-static-go").CombinedOutput(); err != nil {
		t.Fatalf("building the build tool: %v\n%s", err, b)
	}
	return out
}

// nfpmBuilder runs the project's own build command, on the host whatever
// the root's stack.
func nfpmBuilder(t *testing.T, _ *sandbox.Root) builder {
	tool := buildTool(t)
	return func(t *testing.T, qemuDir string, cpus []string, version string) string {
		t.Helper()
		outDir := t.TempDir()
		cmd := exec.Command(tool, "build", "--qemu-dir", qemuDir, "--cpus", strings.Join(cpus, ","),
			"--version", version, "--release", "1", "--output", outDir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("building %s %s: %v\n%s", pkgName, version, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		path := lines[len(lines)-1]
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("the build's last line %q is not the RPM: %v\n%s", path, err, out)
		}
		return path
	}
}

// rpmbuildBuilder builds the package the rpm way: make dist, then
// rpmbuild on qemu-user-static-go.spec, as docs/rpmbuild.md says, with the
// root's stack: the host's rpmbuild 4.18 (-bb), or sid's rpmbuild 6.1
// (-ba), chrooted in the sid root with the host's Go toolchain shared in.
// On sid the packages must come out in the v6 format, and the build must
// print no warning (rpm 6 warns about deprecated macros).
func rpmbuildBuilder(t *testing.T, r *sandbox.Root) builder {
	if !r.Stack.Chrooted() {
		sandbox.Require(t, "/usr/bin/rpmbuild", "rpm")
	}
	src, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	goEnv := func(key string) string {
		out, err := exec.Command("go", "env", key).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", key, err)
		}
		return strings.TrimSpace(string(out))
	}
	// Nothing from a user's ~/.rpmmacros, but the usual Go build cache.
	gocache, goroot := goEnv("GOCACHE"), goEnv("GOROOT")
	return func(t *testing.T, qemuDir string, cpus []string, version string) string {
		t.Helper()
		dist := t.TempDir()
		if out, err := exec.Command("make", "-C", src, "dist", "DIST="+dist, "VERSION="+version).CombinedOutput(); err != nil {
			t.Fatalf("make dist: %v\n%s", err, out)
		}
		mode := "-bb"
		if r.Stack.Chrooted() {
			mode = "-ba"
		}
		args := []string{mode, "--nodeps",
			"--define", "_topdir " + filepath.Join(dist, "rpmbuild"), "--define", "_sourcedir " + dist,
			"--define", "pkg_version " + version, "--define", "pkg_release 1",
			"--define", "qemu_bindir " + qemuDir, "--define", "qemu_cpus " + strings.Join(cpus, ","),
			filepath.Join(src, "qemu-user-static-go.spec")}
		home := t.TempDir()
		var out string
		if r.Stack.Chrooted() {
			env := []string{"PATH=" + filepath.Join(goroot, "bin") + ":/usr/sbin:/usr/bin:/sbin:/bin",
				"HOME=" + home, "GOCACHE=" + gocache}
			// As on the host, where rpmbuild inherits the test's
			// environment; rpm 6 refuses an empty one.
			if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
				env = append(env, "SOURCE_DATE_EPOCH="+e)
			}
			out, err = r.Stack.Run(t, sandbox.RunOptions{
				Share: []string{dist, qemuDir, src, home, gocache, goroot}, Env: env,
			}, "rpmbuild", args...)
		} else {
			cmd := exec.Command("rpmbuild", args...)
			cmd.Env = append(os.Environ(), "HOME="+home, "GOCACHE="+gocache)
			var b []byte
			b, err = cmd.CombinedOutput()
			out = string(b)
		}
		if err != nil {
			t.Fatalf("rpmbuild: %v\n%s", err, out)
		}
		rpms, _ := filepath.Glob(filepath.Join(dist, "rpmbuild", "RPMS", "*", pkgName+"-"+version+"-1.*.rpm"))
		if len(rpms) != 1 {
			t.Fatalf("rpmbuild wrote %v, want one %s-%s package", rpms, pkgName, version)
		}
		if r.Stack.Chrooted() {
			checkSidBuild(t, r.Stack, out, dist, rpms[0])
		}
		return rpms[0]
	}
}

// checkSidBuild checks what sid's rpmbuild -ba made: no warnings in its
// output, and a binary and a source package in rpm's v6 format that the
// host's rpm 4.18 verifies as well.
func checkSidBuild(t *testing.T, st sandbox.Stack, out, dist, rpm string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "warning:") || strings.Contains(l, "deprecated") {
			t.Errorf("rpmbuild %s warns: %s", st.Name, l)
		}
	}
	srpms, _ := filepath.Glob(filepath.Join(dist, "rpmbuild", "SRPMS", pkgName+"-*.src.rpm"))
	if len(srpms) != 1 {
		t.Fatalf("rpmbuild -ba wrote the source packages %v, want one", srpms)
	}
	for _, p := range []string{rpm, srpms[0]} {
		f, err := st.Run(t, sandbox.RunOptions{Share: []string{dist}}, "rpm", "-qp", "--qf", "%{RPMFORMAT}", p)
		if err != nil || strings.TrimSpace(f) != "6" {
			t.Errorf("%s: rpm -qp --qf %%{RPMFORMAT} says %q (%v), want 6", p, f, err)
		}
		// The host's rpm 4.18 reads the v6 format too.
		if out, err := exec.Command("rpm", "-K", p).CombinedOutput(); err != nil || !strings.Contains(string(out), "digests") {
			t.Errorf("the host's rpm -K %s: %v\n%s", p, err, out)
		}
	}
	// And so does inspect: the v6 package passes it as the v4 one does.
	rep, err := inspect.File(rpm, inspect.Options{})
	if err != nil {
		t.Fatalf("inspect of sid's v6 package: %v", err)
	}
	if rep.Format != 6 || len(rep.Entries) == 0 || len(rep.Errors()) > 0 {
		t.Errorf("inspect of sid's v6 package: format %d, %d entries, errors %v", rep.Format, len(rep.Entries), rep.Errors())
	}
}

// interpreters puts the host's interpreters for cpus into a new
// directory. With extra, each copy gets bytes appended, so that a second
// version's interpreters differ from the first's while still running.
func interpreters(t *testing.T, cpus []string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	for _, cpu := range cpus {
		src := "/usr/bin/qemu-" + cpu + "-static"
		sandbox.Require(t, src, "qemu-user-static")
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, extra...)
		if err := os.WriteFile(filepath.Join(dir, "qemu-"+cpu+"-static"), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type suite struct {
	t       *testing.T
	ns      *sandbox.NS
	r       *sandbox.Root
	hellos  map[string]string // cpu -> program path inside the root
	sleeper string
	frozen  map[string]string // entries that must never change
	hostBM  string
}

// hostState records what the suite must never change on the host.
func hostState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	mounted, _ := binfmt.Mounted("/proc/sys/fs/binfmt_misc")
	fmt.Fprintf(&b, "binfmt_misc mounted: %v\n", mounted)
	if mounted {
		fs := &binfmt.FS{Dir: "/proc/sys/fs/binfmt_misc"}
		names, _ := fs.Names()
		sort.Strings(names)
		for _, n := range names {
			raw, _ := fs.Raw(n)
			fmt.Fprintf(&b, "%s\n%s", n, raw)
		}
	}
	matches, _ := filepath.Glob("/usr/bin/qemu-*-static")
	for _, m := range matches {
		fi, err := os.Stat(m)
		if err != nil {
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "%s %d %d %s\n", m, fi.Size(), st.Ino, fi.ModTime())
	}
	return b.String()
}

func (s *suite) table() map[string]string {
	fs := &binfmt.FS{Dir: s.r.BinfmtDir}
	names, err := fs.Names()
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range names {
		raw, err := fs.Raw(n)
		if err == nil {
			out[n] = string(raw)
		}
	}
	return out
}

func (s *suite) dumpTable() string {
	tab := s.table()
	names := make([]string, 0, len(tab))
	for n := range tab {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "== %s\n%s", n, tab[n])
	}
	return b.String()
}

// step runs one named step and, when it fails, shows the step, the kernel
// table and the output of the transaction.
func (s *suite) step(name string, f func() string) {
	s.t.Helper()
	start := time.Now()
	var out string
	ok := s.t.Run(name, func(t *testing.T) {
		old := s.t
		s.t = t
		defer func() { s.t = old }()
		out = f()
	})
	s.t.Logf("step %q: %.2fs", name, time.Since(start).Seconds())
	if !ok {
		s.t.Fatalf("step %q failed\n--- kernel table:\n%s--- transaction and scriptlet output:\n%s", name, s.dumpTable(), out)
	}
}

func (s *suite) must(what string, out string, err error) string {
	s.t.Helper()
	if err != nil {
		s.t.Fatalf("%s: %v\n%s", what, err, out)
	}
	return out
}

func (s *suite) runs(cpu string) {
	s.t.Helper()
	out, err := s.r.Chroot(s.hellos[cpu])
	if err != nil || !strings.Contains(out, "hello from "+cpu) {
		s.t.Fatalf("the %s program does not run: %v\n%s", cpu, err, out)
	}
}

func (s *suite) fails(cpu string) {
	s.t.Helper()
	out, err := s.r.Chroot(s.hellos[cpu])
	if err == nil || !strings.Contains(out+err.Error(), "exec format error") {
		s.t.Fatalf("the %s program should fail with exec format error: %v\n%s", cpu, err, out)
	}
}

// installed checks the live table against the installed cpus: each qemu
// entry is owned by the package with its interpreter present, programs of
// those cpus run and others fail, the frozen entries are untouched, and a
// boot from the root's files would give the same entries.
func (s *suite) installed(cpus []string, all []string, skip ...string) {
	s.t.Helper()
	out, err := s.r.Chroot("/usr/bin/binfmtctl", "status", "--json")
	s.must("binfmtctl status --json", out, err)
	var report struct {
		Entries []struct {
			Name              string `json:"name"`
			Owner             string `json:"owner"`
			InterpreterExists bool   `json:"interpreter_exists"`
			StalePin          bool   `json:"stale_pin"`
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		s.t.Fatalf("status --json: %v\n%s", err, out)
	}
	owned := map[string]bool{}
	for _, e := range report.Entries {
		if strings.HasPrefix(e.Name, "qemu-") && !contains(skip, e.Name) {
			if e.Owner != pkgName || !e.InterpreterExists || e.StalePin {
				s.t.Fatalf("entry %s: owner %q, interpreter present %v, stale pin %v", e.Name, e.Owner, e.InterpreterExists, e.StalePin)
			}
			owned[e.Name] = true
		}
	}
	for _, cpu := range all {
		if contains(skip, "qemu-"+cpu) {
			continue
		}
		if contains(cpus, cpu) {
			if !owned["qemu-"+cpu] {
				s.t.Fatalf("qemu-%s is not registered and owned by %s", cpu, pkgName)
			}
			s.runs(cpu)
		} else {
			if owned["qemu-"+cpu] {
				s.t.Fatalf("qemu-%s is still registered", cpu)
			}
			s.fails(cpu)
		}
	}
	s.checkFrozen()
	s.bootEquivalent(skip...)
}

func (s *suite) checkFrozen() {
	s.t.Helper()
	tab := s.table()
	for n, want := range s.frozen {
		if tab[n] != want {
			s.t.Fatalf("entry %s changed:\n%s\nwant\n%s", n, tab[n], want)
		}
	}
}

// bootEquivalent registers the root's binfmt.d files with the real
// systemd-binfmt, chrooted into the root, in a fresh binfmt_misc of a
// nested user namespace: what the next boot would do. The package's
// entries it creates must equal the live ones.
func (s *suite) bootEquivalent(skip ...string) {
	s.t.Helper()
	script := `set -e
mount -t binfmt_misc binfmt_misc "$1/proc/sys/fs/binfmt_misc"
chroot "$1" /lib/systemd/systemd-binfmt
cd "$1/proc/sys/fs/binfmt_misc"
for f in qemu-*; do [ -f "$f" ] || continue; echo "== $f"; cat "$f"; done
`
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", s.r.Dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("systemd-binfmt in a fresh binfmt_misc: %v\n%s", err, out)
	}
	boot := map[string]string{}
	for _, chunk := range strings.Split(string(out), "== ")[1:] {
		name, body, _ := strings.Cut(chunk, "\n")
		boot[name] = body
	}
	live := map[string]string{}
	for n, v := range s.table() {
		if strings.HasPrefix(n, "qemu-") && !contains(skip, n) {
			live[n] = v
		}
	}
	for _, n := range skip {
		delete(boot, n)
	}
	if fmt.Sprint(boot) != fmt.Sprint(live) {
		s.t.Fatalf("a boot would register other qemu entries than are live:\nboot: %v\nlive: %v", keys(boot), keys(live))
	}
}

func (s *suite) pinned() {
	s.t.Helper()
	cmd := &exec.Cmd{Path: s.sleeper, Args: []string{s.sleeper}, Dir: "/", SysProcAttr: &syscall.SysProcAttr{Chroot: s.r.Dir}}
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	exe := fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid)
	var target string
	for i := 0; i < 200 && !strings.Contains(out.String(), "sleeping"); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	// Compare the files, not their paths: rpm 6.1 runs scriptlets in a
	// mount namespace of its own (its unshare plugin), and the path the
	// kernel shows for a file opened there lacks the root's prefix. The
	// link still leads to the pinned file itself, so its device and
	// inode say whether it is the interpreter now on disk or an old,
	// deleted one.
	target, _ = os.Readlink(exe)
	want := s.r.Path("/usr/bin/qemu-aarch64-static")
	if !sameFile(exe, want) {
		s.t.Fatalf("a sleeping arm64 program runs %q, which is not the file now at %s", target, want)
	}
}

// sameFile reports whether a and b (links followed) are one file: the
// same device and inode.
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false
	}
	return os.SameFile(fa, fb)
}

func (s *suite) noFilesLeft(cpus []string) {
	s.t.Helper()
	paths := []string{"/var/lib/binfmtctl", "/usr/bin/binfmtctl", "/usr/share/doc/" + pkgName, "/usr/share/licenses/" + pkgName, "/usr/lib/rpm/macros.d/macros.binfmtctl"}
	// Only the package's own interpreters: the root's /usr is an overlay
	// over the host's, whose other qemu interpreters show through.
	for _, cpu := range cpus {
		paths = append(paths, "/usr/bin/qemu-"+cpu+"-static", "/usr/lib/binfmt.d/qemu-"+cpu+"-static.conf")
	}
	for _, p := range paths {
		if _, err := os.Lstat(s.r.Path(p)); err == nil {
			s.t.Errorf("%s is left behind", p)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func keys(m map[string]string) []string {
	var out []string
	for k, v := range m {
		sum := sha256.Sum256([]byte(v))
		out = append(out, fmt.Sprintf("%s:%x", k, sum[:4]))
	}
	sort.Strings(out)
	return out
}

// foreignPackage owns an unrelated entry, registered by its own %post the
// way packages without binfmtctl do.
func foreignPackage(t *testing.T) string {
	return sandbox.BuildRPM(t, sandbox.PackageSpec{
		Name:    "foreign-binfmt",
		Version: "1",
		Arch:    "x86_64",
		Files: []sandbox.File{
			{Dst: "/usr/libexec/foreign-binfmt", Type: "dir", Mode: 0o755},
			{Dst: "/usr/libexec/foreign-binfmt/run", Content: []byte("#!/bin/sh\necho foreign \"$@\"\n"), Mode: 0o755},
		},
		Post: "echo ':foreign-fmt:M::FOREIGN::/usr/libexec/foreign-binfmt/run:' > /proc/sys/fs/binfmt_misc/register || :\n",
	})
}

type transactions struct {
	install, upgrade, reinstall, downgrade func(s *suite, path string) (string, error)
	remove                                 func(s *suite) (string, error)
}

var viaDNF = transactions{
	install:   func(s *suite, p string) (string, error) { return s.r.DNF("install", p) },
	upgrade:   func(s *suite, p string) (string, error) { return s.r.DNF("upgrade", p) },
	reinstall: func(s *suite, p string) (string, error) { return s.r.DNF("reinstall", p) },
	downgrade: func(s *suite, p string) (string, error) { return s.r.DNF("downgrade", p) },
	remove:    func(s *suite) (string, error) { return s.r.DNF("remove", pkgName) },
}

var viaRPM = transactions{
	install:   func(s *suite, p string) (string, error) { return s.r.RPM("-i", p) },
	upgrade:   func(s *suite, p string) (string, error) { return s.r.RPM("-U", p) },
	reinstall: func(s *suite, p string) (string, error) { return s.r.RPM("-U", "--replacepkgs", p) },
	downgrade: func(s *suite, p string) (string, error) { return s.r.RPM("-U", "--oldpackage", p) },
	remove:    func(s *suite) (string, error) { return s.r.RPM("-e", pkgName) },
}

// lifecycle runs the whole sequence of issue 5 with one builder and one
// way of running transactions, on each stack: the host's rpm 4.18 and
// dnf 4, and Debian sid's rpm 6.1 and dnf5 (subtests host and sid).
func lifecycle(t *testing.T, newBuilder func(t *testing.T, r *sandbox.Root) builder, tx transactions) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { lifecycleOn(t, st, newBuilder, tx) })
	}
}

func lifecycleOn(t *testing.T, st sandbox.Stack, newBuilder func(t *testing.T, r *sandbox.Root) builder, tx transactions) {
	before := hostState(t)
	ns := sandbox.Enter(t)
	if ns == nil {
		if after := hostState(t); after != before {
			t.Fatalf("the host changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		return
	}
	if st.Name == "host" {
		sandbox.Require(t, "/lib/systemd/systemd-binfmt", "systemd")
	}
	all := []string{"aarch64", "riscv64", "ppc64le", "s390x"}
	r := ns.DNFRootOn(st)
	start := time.Now()
	build := newBuilder(t, r)
	v1 := build(t, interpreters(t, v1CPUs, ""), v1CPUs, "1.0")
	v2 := build(t, interpreters(t, v2CPUs, "\x00version 2\x00"), v2CPUs, "2.0")
	foreign := foreignPackage(t)
	t.Logf("packages built in %.1fs", time.Since(start).Seconds())

	s := &suite{t: t, ns: ns, r: r, hellos: map[string]string{}}
	// The root's /usr is an overlay over the host's (or sid's), where
	// Debian's qemu-user-binfmt files define the same qemu-<cpu> names.
	// Fedora's equivalent conflicts with the package; hide them in the
	// root (the removal is a whiteout in the overlay, the host and the
	// cached sid root keep their files).
	debian, _ := filepath.Glob(s.r.Path("/usr/lib/binfmt.d/qemu-*.conf"))
	for _, f := range debian {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	for _, cpu := range all {
		bin := sandbox.CrossBuild(t, goarch[cpu], sandbox.HelloSource("hello from "+cpu))
		data, _ := os.ReadFile(bin)
		p := "/tmp/hello-" + cpu
		os.WriteFile(s.r.Path(p), data, 0o755)
		s.hellos[cpu] = p
	}
	sleeper, _ := os.ReadFile(sandbox.CrossBuild(t, "arm64", sandbox.SleeperSource("sleeping", 60)))
	s.sleeper = "/tmp/sleeper-aarch64"
	os.WriteFile(s.r.Path(s.sleeper), sleeper, 0o755)

	s.step("before", func() string {
		out, err := s.r.DNF("install", foreign)
		s.must("install the foreign package", out, err)
		fs := &binfmt.FS{Dir: s.r.BinfmtDir}
		if err := fs.RegisterString("manual-test", ":manual-test:M::MANUALTEST::/bin/true:"); err != nil {
			t.Fatal(err)
		}
		s.frozen = s.table()
		if len(s.frozen) != 2 {
			t.Fatalf("want the foreign and the manual entry, have %v", keys(s.frozen))
		}
		return out
	})
	s.step("install v1", func() string {
		out, err := tx.install(s, v1)
		s.must("install v1", out, err)
		s.installed(v1CPUs, all)
		return out
	})
	s.step("upgrade to v2", func() string {
		out, err := tx.upgrade(s, v2)
		s.must("upgrade to v2", out, err)
		s.installed(v2CPUs, all)
		s.pinned()
		return out
	})
	s.step("reinstall v2", func() string {
		out, err := tx.reinstall(s, v2)
		s.must("reinstall v2", out, err)
		s.installed(v2CPUs, all)
		s.pinned()
		return out
	})
	s.step("downgrade to v1", func() string {
		out, err := tx.downgrade(s, v1)
		s.must("downgrade to v1", out, err)
		s.installed(v1CPUs, all)
		s.pinned()
		return out
	})
	s.step("upgrade to v2 again", func() string {
		out, err := tx.upgrade(s, v2)
		s.must("upgrade to v2 again", out, err)
		s.installed(v2CPUs, all)
		s.pinned()
		return out
	})
	s.step("hijack qemu-ppc64le", func() string {
		fs := &binfmt.FS{Dir: s.r.BinfmtDir}
		live, err := fs.Entry("qemu-ppc64le")
		if err != nil {
			t.Fatal(err)
		}
		hijack := live.Entry
		// Without F: the path is the root's, and the kernel would open it
		// now, from the test's root, with F.
		hijack.Interpreter = "/usr/libexec/foreign-binfmt/run"
		hijack.Flags = ""
		if err := fs.Replace(hijack); err != nil {
			t.Fatal(err)
		}
		raw, _ := fs.Raw("qemu-ppc64le")
		s.frozen["qemu-ppc64le"] = string(raw)
		s.installed(v2CPUs, all, "qemu-ppc64le")
		return ""
	})
	s.step("remove", func() string {
		out, err := tx.remove(s)
		s.must("remove", out, err)
		s.checkFrozen()
		for n := range s.table() {
			if _, ok := s.frozen[n]; !ok {
				t.Fatalf("entry %s is left after remove", n)
			}
		}
		for _, cpu := range []string{"aarch64", "s390x"} {
			s.fails(cpu)
		}
		s.noFilesLeft(all)
		return out
	})
}

func TestLifecycleDNF(t *testing.T) {
	lifecycle(t, nfpmBuilder, viaDNF)
}

func TestLifecycleRPM(t *testing.T) {
	lifecycle(t, nfpmBuilder, viaRPM)
}

// TestLifecycleRPMBuild runs the sequence with the package rpmbuild makes
// from qemu-user-static-go.spec.
func TestLifecycleRPMBuild(t *testing.T) {
	lifecycle(t, rpmbuildBuilder, viaDNF)
}
