package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// dbPath is where the root's rpm database lives, as on Fedora. Debian's
// rpm defaults %_dbpath to ~/.rpmdb, which would put the database wherever
// HOME points, and make the rpm that scriptlets run inside the root look
// somewhere else than the rpm that installs them.
const dbPath = "/var/lib/rpm"

// rootPath is PATH for everything run in or on the root, and for its
// scriptlets' children.
const rootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Root is a disposable installroot for rpm and dnf, inside a namespace.
//
// Its /usr is an overlay over the host's /usr: the host's rpm, shell and
// libraries are there, and whatever packages install or remove under /usr
// changes only the overlay's upper layer. /proc and /dev are the host's,
// bound in, with the namespace's private binfmt_misc on top of
// /proc/sys/fs/binfmt_misc. Scriptlets run chrooted in Dir and therefore
// find binfmt_misc at the standard path.
type Root struct {
	// Dir is the root directory, the --installroot.
	Dir string
	// BinfmtDir is Dir/proc/sys/fs/binfmt_misc. It shows the same table
	// as the namespace's BinfmtDir: there is one binfmt_misc instance per
	// user namespace, however often it is mounted.
	BinfmtDir string
	// Stack is the rpm, dnf and systemd this root runs.
	Stack Stack

	t       *testing.T
	imports int // files Import has copied in so far
}

// DNFRoot creates a Root and installs ShellProvider into it, so that
// packages with scriptlets can be installed right away. It needs real root
// outside the namespace, because rpm and the overlay over /usr need every
// user id mapped, and it fails the test when rpm or dnf is missing.
//
// The rpm database is at /var/lib/rpm in the root, as on Fedora, and not at
// Debian's default ~/.rpmdb. rpm run by scriptlets reads that setting from
// the root's /etc/rpm/macros; rpm and dnf run from outside read it from a
// file that DNFRoot binds into /usr/lib/rpm/macros.d, which only this
// namespace sees. So from then on every rpm in the namespace uses
// /var/lib/rpm.
func (ns *NS) DNFRoot() *Root {
	ns.t.Helper()
	return ns.DNFRootOn(HostStack())
}

// DNFRootOn is DNFRoot on the given stack. On the host stack it is
// DNFRoot. On sid the whole root is an overlay over the cached sid root
// (so its /usr, /etc and /var are sid's, its rpm database at /var/lib/rpm
// starts empty), with the same /proc, /dev and binfmt_misc mounts, and
// rpm, dnf5 and every program Chroot starts are sid's, run chrooted.
func (ns *NS) DNFRootOn(st Stack) *Root {
	t := ns.t
	t.Helper()
	if st.Chrooted() {
		return ns.chrootedRoot(st)
	}
	Require(t, "/usr/bin/rpm", "rpm")
	Require(t, st.DNF, "dnf")
	if os.Getenv(envRealRoot) != "true" {
		t.Skip("a dnf root needs real root outside the namespace: rpm and the overlay over /usr need every user id mapped")
	}

	base := ns.TempDir()
	r := &Root{
		Dir:   filepath.Join(base, "root"),
		Stack: st,
		t:     t,
	}
	r.BinfmtDir = filepath.Join(r.Dir, procBinfmt)

	for _, d := range []struct {
		path string
		mode os.FileMode
	}{
		{"usr", 0o755}, {"proc", 0o555}, {"dev", 0o755}, {"etc/rpm", 0o755},
		{"root", 0o700}, {"tmp", 0o1777}, {"var/tmp", 0o1777},
		{"var/lib/rpm", 0o755}, {"run", 0o755},
	} {
		p := filepath.Join(r.Dir, d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatalf("creating the dnf root: %v", err)
		}
		// MkdirAll applies the umask; sticky bits need an explicit chmod.
		if err := os.Chmod(p, d.mode); err != nil {
			t.Fatalf("creating the dnf root: %v", err)
		}
	}

	// Merged /usr: /bin, /lib and friends are symlinks into usr on the
	// host, and must be in the root too, or /bin/sh (the scriptlet
	// interpreter) and the ELF loader in /lib64 are not found.
	for _, name := range []string{"bin", "sbin", "lib", "lib64", "lib32", "libx32"} {
		target, err := os.Readlink("/" + name)
		if err != nil {
			if fi, serr := os.Lstat("/" + name); serr == nil && fi.IsDir() {
				t.Fatalf("the host's /%s is a directory, not a symlink into /usr: the dnf root needs a merged-/usr host", name)
			}
			continue // not there, as /lib32 often is not
		}
		if err := os.Symlink(target, filepath.Join(r.Dir, name)); err != nil {
			t.Fatalf("creating the dnf root: %v", err)
		}
	}

	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":  "root:x:0:\n",
		// Read by every rpm run inside the root, including the ones
		// scriptlets start.
		"etc/rpm/macros": "%_dbpath " + dbPath + "\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(r.Dir, name), []byte(text), 0o644); err != nil {
			t.Fatalf("creating the dnf root: %v", err)
		}
	}
	ns.useVarLibRPM()

	layers := ns.TempDir()
	upper, work := filepath.Join(layers, "upper"), filepath.Join(layers, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("creating the overlay layers for /usr: %v", err)
		}
	}
	mounts := []struct {
		source, target, fstype string
		flags                  uintptr
		data                   string
	}{
		{"overlay", "usr", "overlay", 0, "lowerdir=/usr,upperdir=" + upper + ",workdir=" + work},
		{"/proc", "proc", "", unix.MS_BIND | unix.MS_REC, ""},
		{"/dev", "dev", "", unix.MS_BIND | unix.MS_REC, ""},
		{"binfmt_misc", procBinfmt, "binfmt_misc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	}
	for _, m := range mounts {
		if m.fstype == "binfmt_misc" && ns.BinfmtDir == procBinfmt {
			// With AtProc the bound /proc brought the namespace's
			// binfmt_misc along (the kernel refuses to mount the same
			// instance on top of itself, EBUSY): the root then shares
			// the table, as the host's does with dnf --installroot.
			continue
		}
		if err := ns.mount(m.source, filepath.Join(r.Dir, m.target), m.fstype, m.flags, m.data); err != nil {
			t.Fatalf("setting up the dnf root: %v", err)
		}
	}

	r.init()
	return r
}

// init creates the rpm database and installs ShellProvider.
func (r *Root) init() {
	t := r.t
	t.Helper()
	t.Cleanup(r.noProcessLeft)
	if out, err := r.RPM("--initdb"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sh := BuildRPM(t, ShellProvider())
	if out, err := r.DNF("install", sh); err != nil {
		t.Fatalf("installing the /bin/sh provider: %v\n%s", err, out)
	}
}

// chrootedRoot makes a Root on a stack whose programs run inside it: an
// overlay over the stack's whole sysroot.
func (ns *NS) chrootedRoot(st Stack) *Root {
	t := ns.t
	t.Helper()
	if os.Getenv(envRealRoot) != "true" {
		t.Skip("a dnf root needs real root outside the namespace: rpm and the overlay need every user id mapped")
	}
	for _, p := range []string{"/usr/bin/rpm", st.DNF} {
		if _, err := os.Stat(filepath.Join(st.Sysroot, p)); err != nil {
			t.Fatalf("the %s stack's root %s has no %s: %v", st.Name, st.Sysroot, p, err)
		}
	}
	base := ns.TempDir()
	r := &Root{Dir: filepath.Join(base, "root"), Stack: st, t: t}
	r.BinfmtDir = filepath.Join(r.Dir, procBinfmt)
	upper, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{r.Dir, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("creating the dnf root: %v", err)
		}
	}
	if strings.ContainsAny(st.Sysroot, ",:\\") {
		t.Fatalf("cannot overlay %q: overlayfs options cannot quote , : or \\", st.Sysroot)
	}
	// userxattr: in a user namespace overlayfs may not use trusted.*
	// xattrs for whiteouts and opaque directories, only user.* ones.
	opts := "lowerdir=" + st.Sysroot + ",upperdir=" + upper + ",workdir=" + work + ",userxattr"
	mounts := []struct {
		source, target, fstype string
		flags                  uintptr
		data                   string
	}{
		{"overlay", "", "overlay", 0, opts},
		{"/proc", "proc", "", unix.MS_BIND | unix.MS_REC, ""},
		{"/dev", "dev", "", unix.MS_BIND | unix.MS_REC, ""},
		{"binfmt_misc", procBinfmt, "binfmt_misc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	}
	for _, m := range mounts {
		if m.fstype == "binfmt_misc" && ns.BinfmtDir == procBinfmt {
			// With AtProc the bound /proc brought the namespace's
			// binfmt_misc along, as in a host-stack root (see
			// DNFRootOn): the root shares the table.
			continue
		}
		if err := ns.mount(m.source, filepath.Join(r.Dir, m.target), m.fstype, m.flags, m.data); err != nil {
			t.Fatalf("setting up the %s dnf root: %v", st.Name, err)
		}
	}
	// The same setting as in a host root, so both keep the database at
	// /var/lib/rpm whatever the stack's default.
	if err := os.MkdirAll(r.Path("/etc/rpm"), 0o755); err != nil {
		t.Fatalf("creating the dnf root: %v", err)
	}
	if err := os.WriteFile(r.Path("/etc/rpm/macros"), []byte("%_dbpath "+dbPath+"\n"), 0o644); err != nil {
		t.Fatalf("creating the dnf root: %v", err)
	}
	r.init()
	return r
}

// Import makes the host file at path visible inside a chrooted root and
// returns its path there; on the host stack, whose programs run outside
// the root, it returns path unchanged. DNF and RPM import their arguments
// that name host files, so tests pass the paths BuildRPM returns to
// either stack.
func (r *Root) Import(path string) string {
	r.t.Helper()
	if !r.Stack.Chrooted() || !filepath.IsAbs(path) || within(path, r.Dir) {
		return path
	}
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return path
	}
	r.imports++
	in := filepath.Join("/var/tmp/sandbox-import", fmt.Sprint(r.imports), filepath.Base(path))
	dst := r.Path(in)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		r.t.Fatalf("importing %q into the root: %v", path, err)
	}
	// A copy: the root is an overlay, another mount, so a hard link
	// would fail with EXDEV.
	if err := copyFile(path, dst, fi.Mode().Perm()); err != nil {
		r.t.Fatalf("importing %q into the root: %v", path, err)
	}
	return in
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (r *Root) importAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.Import(a)
	}
	return out
}

// DNF runs dnf on the root with no repositories and returns its combined
// output. The options before args are
//
//	-y --installroot=DIR --releasever=0 --disablerepo=* --setopt=reposdir=/dev/null --setopt=install_weak_deps=False
//
// so local packages are installed with "install", "upgrade" or
// "downgrade" and a path, and removed with "remove" and a name. Each run
// is logged with its duration. On sid it is dnf5, chrooted, with the same
// options but --installroot and --disablerepo, and paths of host files
// among args are imported into the root first (see Import).
func (r *Root) DNF(args ...string) (string, error) {
	r.t.Helper()
	opts := []string{"-y"}
	if !r.Stack.Chrooted() {
		opts = append(opts, "--installroot="+r.Dir)
	}
	if !r.Stack.DNF5 {
		// dnf5 fails on a --disablerepo pattern that matches no
		// repository ("No matching repositories for *"); reposdir
		// already leaves it none.
		opts = append(opts, "--disablerepo=*")
	}
	full := append(append(opts,
		"--releasever=0",
		"--setopt=reposdir=/dev/null",
		"--setopt=install_weak_deps=False",
	), r.importAll(args)...)
	if r.Stack.Chrooted() {
		return r.run(r.chrootCmd(r.Stack.DNF, full...), filepath.Base(r.Stack.DNF)+" "+strings.Join(args, " "))
	}
	return r.run(exec.Command(r.Stack.DNF, full...), filepath.Base(r.Stack.DNF)+" "+strings.Join(args, " "))
}

// RPM runs rpm on the root (--root=DIR --dbpath=/var/lib/rpm) and returns
// its combined output.
func (r *Root) RPM(args ...string) (string, error) {
	r.t.Helper()
	if r.Stack.Chrooted() {
		full := append([]string{"--dbpath=" + dbPath}, r.importAll(args)...)
		return r.run(r.chrootCmd("/usr/bin/rpm", full...), "rpm "+strings.Join(args, " "))
	}
	full := append([]string{"--root=" + r.Dir, "--dbpath=" + dbPath}, args...)
	return r.run(exec.Command("/usr/bin/rpm", full...), "rpm "+strings.Join(args, " "))
}

// Chroot runs name chrooted in the root, with HOME=/root and a standard
// PATH, and returns its combined output. A name without a slash is looked
// up in PATH inside the root.
func (r *Root) Chroot(name string, args ...string) (string, error) {
	r.t.Helper()
	path := name
	if !strings.Contains(name, "/") {
		path = ""
		for _, d := range filepath.SplitList(rootPath) {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(filepath.Join(r.Dir, p)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				path = p
				break
			}
		}
		if path == "" {
			return "", fmt.Errorf("running %q in the root %q: not found in %s", name, r.Dir, rootPath)
		}
	}
	cmd := r.chrootCmd(path, args...)
	cmd.Args[0] = name
	return r.run(cmd, "chroot "+strings.Join(cmd.Args, " "))
}

// chrootCmd is the command path (a path inside the root) with args, to
// run chrooted in the root.
func (r *Root) chrootCmd(path string, args ...string) *exec.Cmd {
	return &exec.Cmd{
		Path:        path,
		Args:        append([]string{path}, args...),
		Dir:         "/",
		SysProcAttr: &syscall.SysProcAttr{Chroot: r.Dir},
	}
}

// useVarLibRPM makes rpm and dnf in the namespace keep the database of
// any --root or --installroot at /var/lib/rpm.
//
// Debian's rpm sets %_dbpath to ~/.rpmdb, so the database would follow
// HOME. dnf has no --dbpath option, and rpm and dnf read macros from the
// running system, never from the installroot. So the setting goes into a
// file matched by /usr/lib/rpm/macros.d/macros.*, which is in rpm's macro
// path, through a bind mount that only this namespace sees; the host's
// files in that directory are copied along. The root itself carries the
// same setting in /etc/rpm/macros, for the rpm that scriptlets run.
func (ns *NS) useVarLibRPM() {
	t := ns.t
	t.Helper()
	if ns.rpmMacros {
		return
	}
	const macrosD = "/usr/lib/rpm/macros.d"
	dir := ns.TempDir()
	ents, err := os.ReadDir(macrosD)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reading rpm's macros: %v", err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(macrosD, e.Name()))
		if err != nil {
			t.Fatalf("copying rpm's macros: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatalf("copying rpm's macros: %v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "macros.sandbox-dbpath"), []byte("%_dbpath "+dbPath+"\n"), 0o644); err != nil {
		t.Fatalf("writing rpm's macros: %v", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ns.Bind(dir, macrosD)
	ns.rpmMacros = true
}

// Path returns the host path of p inside the root.
func (r *Root) Path(p string) string {
	return filepath.Join(r.Dir, p)
}

func (r *Root) run(cmd *exec.Cmd, what string) (string, error) {
	r.t.Helper()
	// A fixed environment: nothing from the test process (GOFLAGS,
	// SANDBOX_*, a user's locale) reaches rpm, dnf or scriptlets, and
	// scriptlets, which inherit it, see what root's login would give.
	cmd.Env = []string{"PATH=" + rootPath, "HOME=/root", "LC_ALL=C.UTF-8"}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	err := cmd.Run()
	r.t.Logf("%s: %.2fs", what, time.Since(start).Seconds())
	if err != nil {
		return out.String(), fmt.Errorf("running %s in the root %q: %w", what, r.Dir, err)
	}
	return out.String(), nil
}

// Processes returns the pids of the processes whose root directory is the
// root, such as a scriptlet's, or a process a scriptlet left running.
func (r *Root) Processes() []int {
	var root unix.Stat_t
	if unix.Stat(r.Dir, &root) != nil {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		// Compared by identity: a process in another mount namespace
		// (rpm 6.1's unshare plugin) sees the same directory elsewhere.
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/root/", &st) == nil && st.Dev == root.Dev && st.Ino == root.Ino {
			out = append(out, pid)
		}
	}
	return out
}

// noProcessLeft fails the test when a process still runs in the root
// after it (the erase guard of binfmtctl must not outlive its bound, nor
// the test), and kills it. A process that is just finishing (the test
// ended right after a transaction) gets ten seconds.
func (r *Root) noProcessLeft() {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		left := r.Processes()
		if len(left) == 0 {
			return
		}
		if time.Now().Before(deadline) {
			continue
		}
		for _, pid := range left {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			r.t.Errorf("process %d (%s) still runs in the root %s after the test; killed", pid, strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " "), r.Dir)
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		return
	}
}
