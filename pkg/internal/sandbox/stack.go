package sandbox

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Stack is one set of rpm, dnf and systemd that a Root is made of.
//
// There are two:
//
//   - Host: this machine's own (Debian 12: rpm 4.18, dnf 4.14,
//     systemd 252). The Root's /usr is an overlay over the host's /usr,
//     and rpm and dnf run from outside with --root and --installroot.
//   - Sid: Debian sid's (rpm 6.1, dnf5 5.4, systemd 262, qemu 11.1), a
//     root that debootstrap builds once per machine and that is cached
//     under /var/cache/qemu-user-static-go/test-roots. The whole Root is an
//     overlay over it, and rpm, dnf5 and rpmbuild run chrooted in it, so
//     they are the sid root's own programs with its own libraries.
//
// Root.DNF, Root.RPM and Root.Chroot hide the difference: a test written
// for one stack runs on both. Parametrize a test over the stacks like this
// (Stacks must be called before Enter, in the parent test, because the sid
// root is built on the host, outside any namespace):
//
//	func TestX(t *testing.T) {
//		for _, st := range sandbox.Stacks(t) {
//			t.Run(st.Name, func(t *testing.T) {
//				ns := sandbox.Enter(t)
//				if ns == nil {
//					return
//				}
//				r := ns.DNFRootOn(st)
//				...
//			})
//		}
//	}
type Stack struct {
	// Name is "host" or "sid"; it doubles as a subtest name.
	Name string
	// Sysroot is the directory the stack's programs live in: "/" for the
	// host, the cached sid root for sid.
	Sysroot string
	// DNF is the path of the stack's dnf, inside the Root:
	// /usr/bin/dnf (dnf 4) or /usr/bin/dnf5.
	DNF string
	// DNF5 is true when DNF is dnf5, whose options and output differ
	// from dnf 4's in places.
	DNF5 bool
	// DefaultDBPath is where the stack's rpm keeps its database when
	// nothing overrides %_dbpath: /root/.rpmdb for Debian 12's rpm,
	// /var/lib/rpm for sid's (as on Fedora). Every Root keeps its
	// database at /var/lib/rpm (see DNFRoot) whatever this says.
	DefaultDBPath string
	// SystemdBinfmt is the path of systemd-binfmt, inside the Root.
	SystemdBinfmt string
	// Versions lists the stack's program versions, one a line (empty
	// for the host).
	Versions string
}

// Chrooted reports whether the stack's programs run inside the Root
// (sid) rather than from outside it (host).
func (s Stack) Chrooted() bool { return s.Sysroot != "/" }

// HostStack is this machine's own rpm, dnf and systemd: on Debian 12
// rpm 4.18, dnf 4 and systemd 252. /usr/bin/dnf counts as dnf5 when it is
// dnf5 or a link to it, as on Fedora 41 and later.
func HostStack() Stack {
	s := Stack{
		Name:          "host",
		Sysroot:       "/",
		DNF:           "/usr/bin/dnf",
		DefaultDBPath: "~/.rpmdb",
		SystemdBinfmt: "/lib/systemd/systemd-binfmt",
	}
	if real, err := filepath.EvalSymlinks(s.DNF); err == nil && filepath.Base(real) == "dnf5" {
		s.DNF5 = true
	} else if _, err := os.Stat(s.DNF); err != nil {
		if _, err := os.Stat("/usr/bin/dnf5"); err == nil {
			s.DNF, s.DNF5 = "/usr/bin/dnf5", true
		}
	}
	// What the host's rpm uses when nothing overrides it, as root.
	cmd := exec.Command("rpm", "--eval", "%_dbpath")
	cmd.Env = []string{"PATH=" + rootPath, "HOME=/root"}
	if out, err := cmd.Output(); err == nil {
		s.DefaultDBPath = strings.TrimSpace(string(out))
	}
	return s
}

// SidStack returns Debian sid's stack, building its root first when this
// machine has none in the cache (about a minute, once). A build that
// fails fails the test, naming the package that would not install. It
// skips only when the test is not run as real root, which debootstrap
// needs. Call it outside the namespace, before Enter: the root cannot be
// built inside one.
func SidStack(t testing.TB) Stack {
	t.Helper()
	inSandbox := os.Getenv(envTest) != ""
	if inSandbox {
		// The parent built it before entering; only the lookup is left.
		dir, err := sidRootIfReady()
		if err != nil {
			t.Fatal(err)
		}
		return sidStack(t, dir)
	}
	dir, err := ensureSidRoot(t.Logf)
	if err == errNotRoot {
		t.Skipf("%v: run the test as root", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sidStack(t, dir)
}

func sidStack(t testing.TB, dir string) Stack {
	t.Helper()
	v, err := os.ReadFile(dir + "/" + sidReady)
	if err != nil {
		t.Fatalf("reading the sid root's versions: %v", err)
	}
	return Stack{
		Name:          "sid",
		Sysroot:       dir,
		DNF:           "/usr/bin/dnf5",
		DNF5:          true,
		DefaultDBPath: "/var/lib/rpm",
		SystemdBinfmt: "/usr/lib/systemd/systemd-binfmt",
		Versions:      string(v),
	}
}

// sidRootIfReady returns the cached sid root, or an error saying that it
// should have been built before Enter.
func sidRootIfReady() (string, error) {
	dir := sidCacheDir() + "/" + sidKey(sidBuilderVersion, "sid", SidPackages)
	if _, err := os.Stat(dir + "/" + sidReady); err != nil {
		return "", fmt.Errorf("the sid test root %s is not built: call sandbox.SidStack or sandbox.Stacks before sandbox.Enter, outside the namespace", dir)
	}
	return dir, nil
}

// Stacks returns every stack the tests run on: the host's, then sid's.
// Like SidStack it builds the sid root on first use, and it must be called
// before Enter.
func Stacks(t testing.TB) []Stack {
	t.Helper()
	return []Stack{HostStack(), SidStack(t)}
}

// Command returns a command that runs the stack's program at path (a path
// inside the stack's sysroot, such as SystemdBinfmt) in the caller's own
// file system, without a chroot: it reads /etc, /run, /usr/lib and /proc
// as the caller sees them, mounts and tmpfs included. On the host that is
// plain exec. On sid the program is started through sid's own dynamic
// loader with sid's libraries (its ELF interpreter and RUNPATH, and the
// multiarch directory, all under the sysroot), so a binary linked against
// sid's glibc and libsystemd-shared runs on Debian 12.
func (s Stack) Command(path string, args ...string) (*exec.Cmd, error) {
	if !s.Chrooted() {
		return exec.Command(path, args...), nil
	}
	bin := filepath.Join(s.Sysroot, path)
	f, err := elf.Open(bin)
	if err != nil {
		return nil, fmt.Errorf("reading the %s stack's %s: %w", s.Name, path, err)
	}
	defer f.Close()
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return nil, fmt.Errorf("reading the ELF interpreter of %s: %w", bin, err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if interp == "" {
		// Static: nothing to redirect.
		return exec.Command(bin, args...), nil
	}
	var libs []string
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		vals, _ := f.DynString(tag)
		for _, v := range vals {
			for _, d := range strings.Split(v, ":") {
				if d != "" {
					libs = append(libs, filepath.Join(s.Sysroot, d))
				}
			}
		}
	}
	if triplet, ok := multiarch[runtime.GOARCH]; ok {
		libs = append(libs, filepath.Join(s.Sysroot, "usr/lib", triplet))
	}
	libs = append(libs, filepath.Join(s.Sysroot, "usr/lib"))
	full := append([]string{"--library-path", strings.Join(libs, ":"), "--argv0", path, bin}, args...)
	return exec.Command(filepath.Join(s.Sysroot, interp), full...), nil
}

// multiarch is Debian's library directory name for each GOARCH.
var multiarch = map[string]string{
	"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "ppc64le": "powerpc64le-linux-gnu",
	"s390x": "s390x-linux-gnu", "riscv64": "riscv64-linux-gnu", "386": "i386-linux-gnu",
}

// RunOptions are the extras of Stack.Run.
type RunOptions struct {
	// Share lists host directories that the program sees at the same
	// paths (bind mounts), so that paths among its arguments mean the
	// same inside and out, and what it writes there stays.
	Share []string
	// Env is added to the fixed environment (PATH, HOME=/root,
	// LC_ALL=C.UTF-8); a PATH here replaces the fixed one.
	Env []string
}

// Run runs the stack's program name (looked up in PATH inside the stack)
// with args and returns its combined output. On the host it is a plain
// run. On sid it runs chrooted in a throwaway overlay over the sid root,
// in a private mount namespace of its own, with /proc and /dev bound in
// and each of opt.Share at its own path, so nothing it does reaches the
// cached root. It works outside and inside a namespace of Enter (real
// root needed outside: it mounts).
func (s Stack) Run(t testing.TB, opt RunOptions, name string, args ...string) (string, error) {
	t.Helper()
	env := []string{"PATH=" + rootPath, "HOME=/root", "LC_ALL=C.UTF-8"}
	for _, e := range opt.Env {
		if strings.HasPrefix(e, "PATH=") {
			env[0] = e
			continue
		}
		env = append(env, e)
	}
	var cmd *exec.Cmd
	if !s.Chrooted() {
		cmd = exec.Command(name, args...)
	} else {
		layers := t.TempDir()
		if strings.ContainsAny(s.Sysroot+layers, ",:\\") {
			t.Fatalf("cannot overlay %q with layers in %q: overlayfs options cannot quote , : or \\", s.Sysroot, layers)
		}
		for _, d := range []string{"root", "upper", "work"} {
			if err := os.Mkdir(filepath.Join(layers, d), 0o755); err != nil {
				t.Fatalf("creating the overlay over the %s root: %v", s.Name, err)
			}
		}
		// userxattr: inside a user namespace overlayfs may only use
		// user.* xattrs; outside it is allowed as well.
		script := `set -e
l=$1 lower=$2; shift 2
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$l/upper,workdir=$l/work,userxattr" "$l/root"
mount --rbind /proc "$l/root/proc"
mount --rbind /dev "$l/root/dev"
while [ "$1" != -- ]; do
	mkdir -p "$l/root$1"
	mount --rbind "$1" "$l/root$1"
	shift
done
shift
exec chroot "$l/root" "$@"`
		full := []string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", layers, s.Sysroot}
		for _, d := range opt.Share {
			if !filepath.IsAbs(d) {
				t.Fatalf("sharing %q with the %s root: not an absolute path", d, s.Name)
			}
			full = append(full, filepath.Clean(d))
		}
		full = append(append(full, "--", name), args...)
		// The script's own tools are looked up in the same PATH as
		// the program: chroot passes the environment on unchanged.
		cmd = exec.Command("unshare", full...)
	}
	cmd.Env = env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s: %s %s: %.2fs", s.Name, name, strings.Join(args, " "), time.Since(start).Seconds())
	if err != nil {
		return string(out), fmt.Errorf("running %s %s on the %s stack: %w", name, strings.Join(args, " "), s.Name, err)
	}
	return string(out), nil
}
