// Package sandbox lets tests run against the real kernel and the real rpm
// and dnf without touching the host.
//
// # Why a private binfmt_misc is possible
//
// Since Linux 6.7 binfmt_misc is per user namespace: mounting binfmt_misc
// in a new user namespace gives a fresh, empty table that belongs to that
// namespace and disappears with it (kernel change "binfmt_misc: enable
// sandboxed mounts"). Registering, disabling or removing entries
// there never reaches the host's table, even when the test runs as real
// root. So the kernel's own parser, flag handling and exec path can be
// tested for real, with no mocks and no risk to the machine.
//
// # Why the test binary re-executes itself
//
// A process joins a new user namespace only while it is single threaded
// (unshare(2) returns EINVAL otherwise), and a Go test binary never is. So
// Enter runs the one test that called it again, in a child copy of the test
// binary that clone(2) starts directly inside a new user and mount
// namespace (CLONE_NEWUSER|CLONE_NEWNS, uid and gid 0 mapped to the caller,
// or the whole id range when the caller is real root). In the parent, Enter
// streams the child's output into the test's log, fails the test if the
// child failed, and returns nil; the test then returns:
//
//	func TestRegister(t *testing.T) {
//		ns := sandbox.Enter(t)
//		if ns == nil {
//			return // the test ran in a child process
//		}
//		// Here we are inside the namespace, with a private binfmt_misc
//		// mounted at ns.BinfmtDir.
//	}
//
// Inside, mount propagation is made private first, so no mount made by a
// test can propagate back to the host. Tmpfs, Bind, RemountReadOnly and
// Unmount change the namespace's view of any directory, for example to give
// systemd-binfmt its own /etc/binfmt.d and /usr/lib/binfmt.d, or to make
// binfmt_misc read-only for a fault test. Every mount is lazily unmounted
// when the test ends, and the directories the namespace used are removed by
// the parent, where none of the child's mounts are visible. With the AtProc
// option the private binfmt_misc is mounted at /proc/sys/fs/binfmt_misc, in
// the namespace, for programs that hard-code that path.
//
// # A disposable dnf root
//
// NS.DNFRoot builds an installroot whose /usr is an overlay over the
// host's /usr (so rpm, the shell and the dynamic loader are the host's, and
// writes land in a temporary upper layer), with /proc and /dev bound in and
// a private binfmt_misc at <root>/proc/sys/fs/binfmt_misc. rpm and dnf then
// install packages built with BuildRPM, and the packages' scriptlets run
// chrooted in the root, where they see the namespace's binfmt_misc at the
// standard path.
//
// # Two stacks: the host's and Debian sid's
//
// A Root runs on a Stack: the host's rpm 4.18, dnf 4 and systemd 252, or
// Debian sid's rpm 6.1, dnf5 and systemd 262 from a root that debootstrap
// builds once per machine into /var/cache/qemu-user-static-go/test-roots
// (keyed by the package list and the builder's version, built under a
// lock). Stacks returns both; NS.DNFRootOn makes a Root on one. See Stack.
//
// # Other helpers
//
// CrossBuild compiles small static Go programs for foreign architectures,
// so qemu interpreters have something real to run. Require fails a test
// that needs a missing tool and says which Debian package provides it.
package sandbox
