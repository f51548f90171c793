package sandbox

import (
	"fmt"
	"os"
	"testing"
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
	// nothing overrides %_dbpath: ~/.rpmdb for Debian 12's rpm,
	// /var/lib/rpm for sid's (as on Fedora). Every Root keeps its
	// database at /var/lib/rpm (see DNFRoot) whatever this says.
	DefaultDBPath string
	// SystemdBinfmt is the path of systemd-binfmt, inside the Root.
	SystemdBinfmt string
	// Versions lists the stack's program versions, one a line (empty
	// for the host).
	Versions string
}

// chrooted reports whether the stack's programs run inside the Root
// rather than from outside it.
func (s Stack) chrooted() bool { return s.Sysroot != "/" }

// HostStack is this machine's own rpm, dnf 4 and systemd.
func HostStack() Stack {
	return Stack{
		Name:          "host",
		Sysroot:       "/",
		DNF:           "/usr/bin/dnf",
		DefaultDBPath: "~/.rpmdb",
		SystemdBinfmt: "/lib/systemd/systemd-binfmt",
	}
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
