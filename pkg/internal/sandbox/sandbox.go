package sandbox

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Environment variables that tell the child copy of the test binary which
// test it runs for, where its scratch directory is, and which user
// namespace the parent was in (so the child can prove it left it).
const (
	envTest     = "SANDBOX_TEST"
	envDir      = "SANDBOX_DIR"
	envHostNS   = "SANDBOX_HOST_USERNS"
	envRealRoot = "SANDBOX_REAL_ROOT"
	procBinfmt  = "/proc/sys/fs/binfmt_misc"
	// maxIDMapSize covers every id but (uid_t)-1, which is not an id;
	// min keeps the constant within int on 32-bit builds.
	maxIDMapSize = min(4294967295, math.MaxInt)
)

// Option changes how Enter sets the namespace up.
type Option func(*config)

type config struct {
	atProc bool
}

// AtProc mounts the private binfmt_misc at /proc/sys/fs/binfmt_misc, in the
// namespace only, instead of a temporary directory. Use it for programs
// that hard-code that path, such as systemd-binfmt.
func AtProc() Option {
	return func(c *config) { c.atProc = true }
}

// NS is the inside of a private user and mount namespace with its own
// binfmt_misc. It is only ever returned inside the child process.
type NS struct {
	// BinfmtDir is where the namespace's binfmt_misc is mounted. The
	// table starts empty and nothing registered there reaches the host.
	BinfmtDir string

	t         *testing.T
	dir       string // scratch space, removed by the parent
	rpmMacros bool   // useVarLibRPM has run
}

// Enter runs the calling test inside a private user and mount namespace
// with its own, empty binfmt_misc.
//
// In the test process Enter re-executes the test binary for just this test
// (-test.run with the exact, anchored name, including subtest elements),
// with the child started by clone(2) directly in CLONE_NEWUSER|CLONE_NEWNS.
// It streams the child's output into the test log, marks the test failed
// or skipped as the child did, and returns nil; the caller must then
// return. In the child Enter returns the namespace.
//
// Enter skips the test when the machine cannot give it a private
// binfmt_misc: a kernel older than 6.7, or no permission to create a user
// namespace without being root. Call it once per test, from the test that
// needs the namespace (a subtest may call it when its parent test did not).
func Enter(t *testing.T, opts ...Option) *NS {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	if want, ok := os.LookupEnv(envTest); ok {
		if want != t.Name() {
			t.Fatalf("sandbox.Enter called by %s inside the sandbox of %s: call Enter once, in the test that needs it", t.Name(), want)
		}
		return inside(t, c)
	}
	runChild(t)
	return nil
}

// runChild runs t again in a child test binary inside new namespaces and
// reports its outcome on t.
func runChild(t *testing.T) {
	t.Helper()
	if err := kernelHasUserNSBinfmt(); err != nil {
		t.Skip(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("finding the test binary to re-execute: %v", err)
	}
	hostNS, err := nsID("/proc/self/ns/user")
	if err != nil {
		t.Fatalf("reading the current user namespace: %v", err)
	}

	// The scratch directory belongs to the parent: the child mounts things
	// inside it, and only here, in the host's mount namespace where those
	// mounts are invisible, is removing it sure not to reach through a
	// bind mount into host files.
	dir, err := os.MkdirTemp("", "sandbox-")
	if err != nil {
		t.Fatalf("creating the sandbox scratch directory: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing the sandbox scratch directory: %v", err)
		}
	})
	if strings.ContainsAny(dir, ",:\\") {
		// overlayfs mount options cannot quote these.
		t.Fatalf("sandbox scratch directory %q contains one of , : \\ (set TMPDIR to a plainer path)", dir)
	}

	args := []string{
		"-test.run=" + runPattern(t.Name()),
		"-test.count=1",
		// Always verbose: the child's "--- SKIP" line is how the parent
		// learns that the child skipped, and the output only reaches the
		// user through the parent's log anyway.
		"-test.v=true",
	}
	if testing.Short() {
		args = append(args, "-test.short=true")
	}
	if d, ok := t.Deadline(); ok {
		// The child times out a little before the parent, so that its
		// panic, which shows where the test hangs, reaches the log.
		left := time.Until(d)
		left -= max(time.Second, left/20)
		args = append(args, "-test.timeout="+max(left, time.Second).Round(100*time.Millisecond).String())
	}
	if f := flag.Lookup("test.gocoverdir"); f != nil && f.Value.String() != "" {
		args = append(args, "-test.gocoverdir="+f.Value.String())
	}

	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(),
		envTest+"="+t.Name(),
		envDir+"="+dir,
		envHostNS+"="+hostNS,
		envRealRoot+"="+strconv.FormatBool(os.Geteuid() == 0),
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		// If the test binary dies (test timeout, ^C), so does the child.
		Pdeathsig: syscall.SIGKILL,
	}
	if os.Geteuid() == 0 {
		// Real root maps every id onto itself, so files keep their real
		// owners and rpm can chown to any user.
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: maxIDMapSize}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: maxIDMapSize}}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
	} else {
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
	}

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatalf("creating a pipe for the sandboxed test's output: %v", err)
	}
	cmd.Stdout = pw
	cmd.Stderr = pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		// EPERM or EACCES: user namespaces are forbidden here, for
		// unprivileged users by sysctl or for everyone by a container's
		// seccomp profile. ENOSPC or EUSERS: user.max_user_namespaces is
		// used up or 0.
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EUSERS) {
			hint := "run the test as root"
			if os.Geteuid() == 0 {
				hint = "a container may forbid clone(CLONE_NEWUSER); run on a host or a privileged container"
			}
			t.Skipf("this machine does not allow creating a user namespace (%v): %s", err, hint)
		}
		t.Fatalf("starting the sandboxed test %s in a new user namespace: %v", t.Name(), err)
	}
	res := relay(t.Output(), pr, t.Name())
	pr.Close()
	err = cmd.Wait()

	switch {
	case err != nil:
		t.Errorf("test %s failed inside the sandbox: %v", t.Name(), err)
	case res.noTests:
		t.Errorf("the sandboxed test binary found no test matching %s (-test.run=%s)", t.Name(), runPattern(t.Name()))
	case res.skipped:
		t.SkipNow()
	}
}

type relayResult struct {
	skipped bool // the child printed "--- SKIP: <name>"
	noTests bool // the child's -test.run matched nothing
}

// relay copies the child's output to w, line by line as it arrives,
// dropping the child's "=== RUN" framing, its final PASS line and the PASS
// lines of the test and its ancestors, which would only repeat the
// parent's. Results of subtests that run inside the child are kept.
func relay(w io.Writer, r io.Reader, name string) relayResult {
	var res relayResult
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			trimmed := strings.TrimLeft(line, " ")
			body := strings.TrimRight(trimmed, "\n")
			switch {
			case strings.HasPrefix(trimmed, "--- SKIP: "+name+" ("):
				res.skipped = true
				io.WriteString(w, line)
			case strings.HasPrefix(body, "testing: warning: no tests to run"):
				res.noTests = true
				io.WriteString(w, line)
			case strings.HasPrefix(trimmed, "=== "), body == "PASS", passOf(trimmed, name):
			default:
				if !strings.HasSuffix(line, "\n") {
					line += "\n"
				}
				io.WriteString(w, line)
			}
		}
		if err != nil {
			return res
		}
	}
}

// passOf reports whether line is the "--- PASS" line of the test called
// name or of one of its ancestors.
func passOf(line, name string) bool {
	for {
		if strings.HasPrefix(line, "--- PASS: "+name+" (") {
			return true
		}
		i := strings.LastIndex(name, "/")
		if i < 0 {
			return false
		}
		name = name[:i]
	}
}

// runPattern is a -test.run value that matches exactly the test called
// name. testing splits both the pattern and the name at "/", so each
// element is anchored and quoted on its own.
func runPattern(name string) string {
	elems := strings.Split(name, "/")
	for i, e := range elems {
		elems[i] = "^" + regexp.QuoteMeta(e) + "$"
	}
	return strings.Join(elems, "/")
}

// kernelHasUserNSBinfmt reports why this kernel cannot give a user
// namespace its own binfmt_misc, or nil if it can.
func kernelHasUserNSBinfmt() error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fmt.Errorf("reading the kernel version: %v", err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err != nil {
		return fmt.Errorf("parsing kernel release %q: %v", release, err)
	}
	if major < 6 || major == 6 && minor < 7 {
		return fmt.Errorf("binfmt_misc is per user namespace only since Linux 6.7, and this kernel is %s", release)
	}
	return nil
}

// nsID identifies a namespace by the device and inode of its nsfs file.
func nsID(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", fmt.Errorf("stat %q: %w", path, err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino), nil
}

// inside sets the namespace up in the child: private propagation first,
// then a fresh binfmt_misc.
func inside(t *testing.T, c config) *NS {
	t.Helper()
	// Refuse to mount anything unless we really left the parent's user
	// namespace: SANDBOX_TEST alone could have leaked into a plain run.
	self, err := nsID("/proc/self/ns/user")
	if err != nil {
		t.Fatalf("reading the current user namespace: %v", err)
	}
	if host := os.Getenv(envHostNS); host == "" || host == self {
		t.Fatalf("%s is set but this process is not in a private user namespace; refusing to mount", envTest)
	}
	dir := os.Getenv(envDir)
	if dir == "" {
		t.Fatalf("%s is not set in the sandboxed test", envDir)
	}

	// The child's mounts start as copies of the host's. Making them all
	// private keeps anything mounted from here on out of the host's
	// mount namespace (see mount_namespaces(7), "Shared subtrees").
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		t.Fatalf("making mount propagation private: %v", err)
	}

	ns := &NS{t: t, dir: dir}
	target := procBinfmt
	if !c.atProc {
		target = ns.TempDir()
	}
	if err := ns.mount("binfmt_misc", target, "binfmt_misc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		if os.Getenv(envRealRoot) != "true" && errors.Is(err, unix.EPERM) {
			t.Skipf("%v (user namespaces may be restricted for unprivileged users here; run the test as root)", err)
		}
		t.Fatal(err)
	}
	ns.BinfmtDir = target
	return ns
}

// TempDir returns a new, empty directory for mount points and layers. It
// is removed by the parent process after the child exits, where the
// child's mounts no longer exist, so a mount that outlived the test can
// never lead the removal into host files.
func (ns *NS) TempDir() string {
	ns.t.Helper()
	d, err := os.MkdirTemp(ns.dir, "d")
	if err != nil {
		ns.t.Fatalf("creating a directory in the sandbox: %v", err)
	}
	return d
}

// Tmpfs mounts an empty tmpfs at path, in the namespace only.
//
// If path does not exist, it is made to exist in the namespace only: the
// nearest existing ancestor gets an overlay whose upper layer is scratch
// space, and path is created there. So /run/binfmt.d or
// /usr/local/lib/binfmt.d can be given content without creating them on the
// host. Such an overlay hides the mounts below that ancestor, in the
// namespace.
func (ns *NS) Tmpfs(path string) {
	ns.t.Helper()
	ns.ensure(path, true)
	if err := ns.mount("tmpfs", path, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		ns.t.Fatal(err)
	}
}

// Bind makes src visible at dst as well, in the namespace only. Writes
// through dst change src. A missing dst is created as Tmpfs describes.
func (ns *NS) Bind(src, dst string) {
	ns.t.Helper()
	fi, err := os.Stat(src)
	if err != nil {
		ns.t.Fatalf("bind mount source: %v", err)
	}
	ns.ensure(dst, fi.IsDir())
	if err := ns.mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		ns.t.Fatal(err)
	}
}

// RemountReadOnly makes the mount at path read-only, for that mount only:
// other mounts of the same file system, such as another binfmt_misc mount
// of the same namespace, stay writable.
func (ns *NS) RemountReadOnly(path string) {
	ns.t.Helper()
	if err := remount(path, unix.MS_RDONLY); err != nil {
		ns.t.Fatal(err)
	}
}

// RemountReadWrite undoes RemountReadOnly.
func (ns *NS) RemountReadWrite(path string) {
	ns.t.Helper()
	if err := remount(path, 0); err != nil {
		ns.t.Fatal(err)
	}
}

// Unmount detaches the mount at path, in the namespace only. Use it to
// take binfmt_misc away, or to undo an earlier Tmpfs or Bind.
func (ns *NS) Unmount(path string) {
	ns.t.Helper()
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
		ns.t.Fatalf("unmounting %q: %v", path, err)
	}
}

// mount mounts and arranges for a lazy unmount when the test ends. Each
// mount gets its own cleanup so that it runs before the cleanup of any
// t.TempDir the mount point lives in (cleanups run last-in first-out).
func (ns *NS) mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		what := fstype
		if flags&unix.MS_BIND != 0 {
			what = "bind of " + source
		}
		if data != "" {
			what += " (" + data + ")"
		}
		return fmt.Errorf("mounting %s at %q: %w", what, target, err)
	}
	ns.t.Cleanup(func() {
		// EINVAL: no longer a mount point, because the test unmounted it
		// or an outer mount's detach took it along.
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			ns.t.Errorf("unmounting %q: %v", target, err)
		}
	})
	return nil
}

// remount changes the read-only flag of the mount at path. The flags that
// the mount already has are carried over: in a user namespace the kernel
// refuses a remount that would drop nosuid, nodev or noexec from a mount
// inherited from the host (they are locked).
func remount(path string, rdonly uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("reading the mount flags of %q: %w", path, err)
	}
	// The ST_* flags statfs reports have the values of the MS_* flags.
	keep := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC |
		unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_NOSYMFOLLOW)
	if err := unix.Mount("", path, "", unix.MS_REMOUNT|unix.MS_BIND|keep|rdonly, ""); err != nil {
		mode := "read-write"
		if rdonly != 0 {
			mode = "read-only"
		}
		return fmt.Errorf("remounting %q %s: %w", path, mode, err)
	}
	return nil
}

// ensure makes path exist as a directory (or an empty file) without
// changing the host: paths inside the sandbox's scratch space or inside an
// existing temporary directory (such as one from t.TempDir) are created
// directly, anything else through an overlay on its nearest existing
// ancestor.
func (ns *NS) ensure(path string, dir bool) {
	ns.t.Helper()
	if !filepath.IsAbs(path) {
		ns.t.Fatalf("mount point %q is not an absolute path", path)
	}
	path = filepath.Clean(path)
	if _, err := os.Lstat(path); err == nil {
		return
	}
	anc := filepath.Dir(path)
	for {
		if _, err := os.Lstat(anc); err == nil {
			break
		}
		anc = filepath.Dir(anc)
	}
	tmp := filepath.Clean(os.TempDir())
	if !within(anc, ns.dir) && (anc == tmp || !within(anc, tmp)) {
		if anc == "/" {
			ns.t.Fatalf("cannot create %q in the namespace: it would need an overlay over /", path)
		}
		ns.overlay(anc)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		ns.t.Fatalf("creating the mount point: %v", err)
	}
	var err error
	if dir {
		err = os.Mkdir(path, 0o755)
	} else {
		err = os.WriteFile(path, nil, 0o644)
	}
	if err != nil {
		ns.t.Fatalf("creating the mount point: %v", err)
	}
}

// overlay puts a writable overlay over dir, with the upper layer in the
// sandbox's scratch space.
func (ns *NS) overlay(dir string) {
	ns.t.Helper()
	layers := ns.TempDir()
	upper, work := filepath.Join(layers, "upper"), filepath.Join(layers, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			ns.t.Fatalf("creating overlay layers for %q: %v", dir, err)
		}
	}
	if strings.ContainsAny(dir, ",:\\") {
		ns.t.Fatalf("cannot overlay %q: overlayfs options cannot quote , : or \\", dir)
	}
	opts := "lowerdir=" + dir + ",upperdir=" + upper + ",workdir=" + work
	if err := ns.mount("overlay", dir, "overlay", 0, opts); err != nil {
		ns.t.Fatal(err)
	}
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
