package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// qemuAarch64 is the register string of Fedora's qemu-aarch64-static.conf,
// pointing at Debian's static interpreter.
const qemuAarch64 = `:qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F`

// fsMagic returns the file system type of path, as statfs(2) reports it.
func fsMagic(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatalf("statfs %q: %v", path, err)
	}
	return int64(st.Type)
}

// checkHostBinfmtUnmounted fails t if the host's binfmt_misc is mounted:
// nothing in these tests may mount it, and it is not mounted on the
// machines this suite runs on.
func checkHostBinfmtUnmounted(t *testing.T) {
	t.Helper()
	if fsMagic(t, procBinfmt) == unix.BINFMTFS_MAGIC {
		t.Errorf("the host's %s is a mounted binfmt_misc", procBinfmt)
	}
}

// names lists the entries of a directory, sorted.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

func register(t *testing.T, binfmtDir, line string) {
	t.Helper()
	// One write per register string, as the kernel wants it.
	f, err := os.OpenFile(filepath.Join(binfmtDir, "register"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		t.Fatalf("registering %q: %v", line, err)
	}
}

func TestPrivateBinfmtIsEmptyAndPrivate(t *testing.T) {
	checkHostBinfmtUnmounted(t)
	ns := Enter(t)
	if ns == nil {
		// The child registered an entry; the host must still have no
		// binfmt_misc at all.
		checkHostBinfmtUnmounted(t)
		return
	}

	if got := fsMagic(t, ns.BinfmtDir); got != unix.BINFMTFS_MAGIC {
		t.Fatalf("%s has file system magic %#x, want binfmt_misc", ns.BinfmtDir, got)
	}
	if got, want := names(t, ns.BinfmtDir), []string{"register", "status"}; !slices.Equal(got, want) {
		t.Fatalf("fresh binfmt_misc holds %q, want %q", got, want)
	}
	register(t, ns.BinfmtDir, ":sandbox-test:E::sandboxtest::/bin/false:")
	if got, want := names(t, ns.BinfmtDir), []string{"register", "sandbox-test", "status"}; !slices.Equal(got, want) {
		t.Fatalf("after registering, binfmt_misc holds %q, want %q", got, want)
	}
	// Without AtProc, the standard path stays the host's plain proc
	// directory, in here too.
	checkHostBinfmtUnmounted(t)
}

func TestForeignProgramRunsThroughPrivateEntry(t *testing.T) {
	Require(t, "/usr/bin/qemu-aarch64-static", "qemu-user-static")
	// Build before entering, in the parent, where the build cache and the
	// go command are used as in any test; the child finds it cached.
	hello := CrossBuild(t, "arm64", HelloSource("hello from arm64"))
	ns := Enter(t)
	if ns == nil {
		return
	}

	// Unregistered, the kernel does not know the format.
	out, err := exec.Command(hello).CombinedOutput()
	if !errors.Is(err, unix.ENOEXEC) {
		t.Fatalf("running the arm64 program with no entry: err = %v, output %q; want ENOEXEC", err, out)
	}

	register(t, ns.BinfmtDir, qemuAarch64)
	out, err = exec.Command(hello).CombinedOutput()
	if err != nil {
		t.Fatalf("running the arm64 program through qemu-aarch64: %v\n%s", err, out)
	}
	if got := string(out); got != "hello from arm64\n" {
		t.Fatalf("arm64 program printed %q", got)
	}
}

func TestReadOnlyAndUnmount(t *testing.T) {
	ns := Enter(t)
	if ns == nil {
		return
	}
	ns.RemountReadOnly(ns.BinfmtDir)
	f, err := os.OpenFile(filepath.Join(ns.BinfmtDir, "register"), os.O_WRONLY, 0)
	if !errors.Is(err, unix.EROFS) {
		if err == nil {
			f.Close()
		}
		t.Fatalf("opening register on a read-only mount: err = %v, want EROFS", err)
	}
	ns.RemountReadWrite(ns.BinfmtDir)
	register(t, ns.BinfmtDir, ":sandbox-test:E::sandboxtest::/bin/false:")

	ns.Unmount(ns.BinfmtDir)
	if got := fsMagic(t, ns.BinfmtDir); got == unix.BINFMTFS_MAGIC {
		t.Fatalf("%s is still binfmt_misc after Unmount", ns.BinfmtDir)
	}
}

// TestSystemdBinfmt gives the host's real systemd-binfmt configuration
// directories of the test's own, including two that do not exist on the
// host, and a binfmt_misc at the path it hard-codes.
func TestSystemdBinfmt(t *testing.T) {
	const systemdBinfmt = "/lib/systemd/systemd-binfmt"
	Require(t, systemdBinfmt, "systemd")
	Require(t, "/usr/bin/qemu-aarch64-static", "qemu-user-static")
	hello := CrossBuild(t, "arm64", HelloSource("hello via systemd-binfmt"))
	dirs := []string{"/etc/binfmt.d", "/run/binfmt.d", "/usr/local/lib/binfmt.d", "/usr/lib/binfmt.d"}
	existed := map[string]bool{}
	for _, d := range dirs {
		_, err := os.Lstat(d)
		existed[d] = err == nil
	}
	ns := Enter(t, AtProc())
	if ns == nil {
		checkHostBinfmtUnmounted(t)
		for _, d := range dirs {
			if _, err := os.Lstat(d); (err == nil) != existed[d] {
				t.Errorf("host %s: existed before the test: %v, now: %v", d, existed[d], err == nil)
			}
		}
		return
	}
	if ns.BinfmtDir != procBinfmt || fsMagic(t, procBinfmt) != unix.BINFMTFS_MAGIC {
		t.Fatalf("AtProc: BinfmtDir %q, %s not a binfmt_misc mount", ns.BinfmtDir, procBinfmt)
	}
	for _, d := range dirs {
		ns.Tmpfs(d)
	}
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// /run overrides /usr/lib for the same file name, as systemd's
	// configuration lookup does everywhere.
	write("/usr/lib/binfmt.d/sandbox.conf", ":overridden:E::overridden::/bin/false:\n")
	write("/run/binfmt.d/sandbox.conf", qemuAarch64+"\n")
	write("/usr/local/lib/binfmt.d/other.conf", ":other:E::other::/bin/false:\n")

	cmd := exec.Command(systemdBinfmt)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=debug")
	out, err := cmd.CombinedOutput()
	t.Logf("systemd-binfmt:\n%s", out)
	if err != nil {
		t.Fatalf("systemd-binfmt: %v", err)
	}
	if got, want := names(t, procBinfmt), []string{"other", "qemu-aarch64", "register", "status"}; !slices.Equal(got, want) {
		t.Fatalf("after systemd-binfmt, binfmt_misc holds %q, want %q", got, want)
	}
	out, err = exec.Command(hello).CombinedOutput()
	if err != nil || string(out) != "hello via systemd-binfmt\n" {
		t.Fatalf("running the arm64 program: %v, output %q", err, out)
	}
}

func TestCrossBuildCachesAndRuns(t *testing.T) {
	// The host's own architecture needs no interpreter, so this runs
	// anywhere and checks the build, the cache and SleeperSource.
	start := time.Now()
	bin := CrossBuild(t, runtime.GOARCH, SleeperSource("sleeper up", 0))
	t.Logf("first CrossBuild: %.2fs", time.Since(start).Seconds())
	start = time.Now()
	if again := CrossBuild(t, runtime.GOARCH, SleeperSource("sleeper up", 0)); again != bin {
		t.Errorf("second CrossBuild gave %q, first %q", again, bin)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cached CrossBuild took %v", d)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil || string(out) != "sleeper up\n" {
		t.Errorf("running the sleeper: %v, output %q", err, out)
	}
}

// TestSubtestNames checks that Enter re-runs exactly one subtest, whatever
// its name, and that a skip inside the namespace reaches the parent.
func TestSubtestNames(t *testing.T) {
	for _, name := range []string{"plain", "with space", "regexp[.*]+(x)", "plain#01"} {
		t.Run(name, func(t *testing.T) {
			ns := Enter(t)
			if ns == nil {
				return
			}
			if got := os.Getenv(envTest); got != t.Name() {
				t.Fatalf("child runs for %q, want %q", got, t.Name())
			}
		})
	}
	var skipped bool
	t.Run("skip", func(t *testing.T) {
		t.Cleanup(func() { skipped = t.Skipped() })
		ns := Enter(t)
		if ns == nil {
			return
		}
		t.Skip("skipping inside the namespace")
	})
	if os.Getenv(envTest) == "" && !skipped {
		t.Error("a skip inside the namespace did not skip the test in the parent")
	}
}

func TestRunPattern(t *testing.T) {
	for _, name := range []string{"TestX", "TestX/a_b", "TestX/regexp[.*]+(x)", "TestX/a#01", "TestX/a/b"} {
		pat := runPattern(name)
		elems := strings.Split(pat, "/")
		names := strings.Split(name, "/")
		if len(elems) != len(names) {
			t.Fatalf("runPattern(%q) = %q: %d elements, want %d", name, pat, len(elems), len(names))
		}
		for i := range elems {
			re := regexp.MustCompile(elems[i])
			if !re.MatchString(names[i]) || re.MatchString(names[i]+"x") || re.MatchString("x"+names[i]) {
				t.Errorf("runPattern(%q) element %q does not match %q exactly", name, elems[i], names[i])
			}
		}
	}
}

// fatalRecorder records Fatalf instead of stopping the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestRequire(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	Require(rec, "/nonexistent/qemu-foo-static", "qemu-user-static")
	if !strings.Contains(rec.msg, "missing /nonexistent/qemu-foo-static: install with `apt-get install -y qemu-user-static`") {
		t.Errorf("Require message = %q", rec.msg)
	}
	rec = &fatalRecorder{TB: t}
	Require(rec, "sh", "dash")
	if rec.msg != "" {
		t.Errorf("Require(sh) failed: %s", rec.msg)
	}
}
