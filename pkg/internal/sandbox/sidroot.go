package sandbox

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// sidBuilderVersion is part of the sid root's cache key: bump it whenever
// buildSidRoot changes what it makes, so that old roots are not reused.
const sidBuilderVersion = "1"

// SidPackages are the Debian packages installed into the sid root on top
// of `debootstrap --variant=minbase sid`: rpm 6.1 (rpmbuild, rpmsign and
// rpmkeys included), dnf5, systemd 262 (systemd-binfmt), qemu 11.1's
// user-mode interpreters and binfmt.d files, createrepo_c, rpmlint 2.8,
// and what rpmbuild and the signing tests call (cpio, file, gpg). The cache
// key is made from this list: changing it builds a new root.
var SidPackages = []string{
	"rpm", "dnf5", "systemd", "qemu-user", "qemu-user-binfmt", "createrepo-c", "rpmlint",
	"cpio", "file", "gpg", "gpg-agent",
}

// SidCacheDir is where sid roots are kept, outside any checkout, so that
// every clone and every test binary on the machine shares them. The
// environment variable SANDBOX_ROOT_CACHE overrides it.
const SidCacheDir = "/var/cache/qemu-user-static-go/test-roots"

// sidKey names a sid root by what it is made of: the builder's version,
// the suite and the package list, in that order. The same inputs always
// give the same key, and any change gives another.
func sidKey(builderVersion, suite string, pkgs []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "builder %s\nsuite %s\n", builderVersion, suite)
	for _, p := range pkgs {
		fmt.Fprintf(h, "package %s\n", p)
	}
	return suite + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// sidCacheDir returns the directory that holds the sid roots.
func sidCacheDir() string {
	if d := os.Getenv("SANDBOX_ROOT_CACHE"); d != "" {
		return d
	}
	return SidCacheDir
}

// sidReady is the file whose presence says a root was built completely;
// it holds the versions of the stack.
const sidReady = ".sandbox-root-complete"

// ensureSidRoot returns the sid root, building it first when it is not in
// the cache. It runs on the host, outside any namespace: debootstrap
// creates device nodes and needs real root. An exclusive lock on a file
// beside the root makes concurrent callers (go test runs packages in
// parallel) wait for one build instead of making their own. A root is
// built under a temporary name and renamed when complete, so an
// interrupted build is never mistaken for a finished one.
func ensureSidRoot(log func(format string, args ...any)) (string, error) {
	dir := filepath.Join(sidCacheDir(), sidKey(sidBuilderVersion, "sid", SidPackages))
	err := ensureBuilt(dir, log, func(tmp string) error {
		mirror, err := debianMirror()
		if err != nil {
			return err
		}
		log("building the sid test root %s from %s (once per machine, about a minute)", dir, mirror)
		return buildSidRoot(tmp, mirror, SidPackages)
	})
	return dir, err
}

// ensureBuilt makes sure dir holds a complete build: when it does not,
// it takes an exclusive lock on dir.lock, checks again, and calls build on
// a temporary directory beside dir, renamed to dir when build succeeds.
// Concurrent callers, in this process or others, block on the lock and
// then find the finished build. A build that died leaves only the
// temporary directory, which the next build removes first.
func ensureBuilt(dir string, log func(format string, args ...any), build func(tmp string) error) error {
	if _, err := os.Stat(filepath.Join(dir, sidReady)); err == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("creating the test root cache %q: %w", filepath.Dir(dir), err)
	}
	lock, err := os.OpenFile(dir+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("opening the lock of the test root: %w", err)
	}
	// Closing releases the lock, and so does the process dying.
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		log("waiting for another process that is building the test root %s", dir)
		if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
			return fmt.Errorf("locking %q: %w", lock.Name(), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, sidReady)); err == nil {
		return nil // built by another process while we waited
	}
	start := time.Now()
	tmp := dir + ".building"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("removing an interrupted build %q: %w", tmp, err)
	}
	if err := build(tmp); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(tmp, sidReady)); err != nil {
		return fmt.Errorf("the test root build in %q did not finish: %w", tmp, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("moving the finished test root into place: %w", err)
	}
	log("built the test root %s in %.0fs", dir, time.Since(start).Seconds())
	return nil
}

var errNotRoot = errors.New("building the sid test root needs real root (debootstrap creates device nodes and chroots)")

// buildSidRoot makes a root at dir: debootstrap, then the packages, then
// a check that the stack's programs are there and run.
func buildSidRoot(dir, mirror string, pkgs []string) error {
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return fmt.Errorf("building the sid test root: missing debootstrap: install with `apt-get install -y debootstrap` (make deps does)")
	}
	// unshare --mount gives debootstrap a private copy of the mount table
	// (util-linux makes its propagation private), so the /proc and /sys
	// it mounts in the target never appear in the host's.
	if out, err := runLogged(exec.Command("unshare", "--mount", "--propagation", "private",
		"debootstrap", "--variant=minbase", "sid", dir, mirror)); err != nil {
		return fmt.Errorf("building the sid test root: debootstrap --variant=minbase sid %s: %v\n%s", dir, err, tail(out, 40))
	}
	files := map[string]struct {
		text string
		mode os.FileMode
	}{
		// The mirror's Release files are past their Valid-Until date.
		"etc/apt/apt.conf.d/99sandbox": {"Acquire::Check-Valid-Until \"false\";\nAPT::Install-Recommends \"false\";\nAPT::Install-Suggests \"false\";\n", 0o644},
		// invoke-rc.d asks policy-rc.d; 101 means "action forbidden", so
		// no package starts a service in the chroot (policy-rc.d(8)).
		"usr/sbin/policy-rc.d": {"#!/bin/sh\nexit 101\n", 0o755},
	}
	for name, f := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(f.text), f.mode); err != nil {
			return fmt.Errorf("building the sid test root: %w", err)
		}
	}
	if out, err := aptInRoot(dir, "update", "-qq"); err != nil {
		return fmt.Errorf("building the sid test root: apt-get update: %v\n%s", err, tail(out, 40))
	}
	if err := installPackages(dir, pkgs); err != nil {
		return err
	}
	if out, err := aptInRoot(dir, "clean"); err != nil {
		return fmt.Errorf("building the sid test root: apt-get clean: %v\n%s", err, out)
	}
	versions, err := stackVersions(dir)
	if err != nil {
		return fmt.Errorf("building the sid test root: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, sidReady), []byte(versions), 0o644)
}

// installPackages installs pkgs with apt-get in the root at dir. When
// that fails, the error names each package that will not install.
func installPackages(dir string, pkgs []string) error {
	args := append([]string{"install", "-y", "-qq"}, pkgs...)
	if out, err := aptInRoot(dir, args...); err != nil {
		return fmt.Errorf("building the sid test root: %s\n--- apt-get %s:\n%s", brokenPackages(dir, pkgs), strings.Join(args, " "), tail(out, 40))
	}
	return nil
}

// brokenPackages names the packages of pkgs that apt cannot install, each
// tried alone in a simulation (apt-get -s), with apt's reason. A failing
// install of the whole list says only that something is wrong; this says
// what.
func brokenPackages(dir string, pkgs []string) string {
	var bad []string
	for _, p := range pkgs {
		if out, err := aptInRoot(dir, "install", "-s", "-qq", p); err != nil {
			bad = append(bad, fmt.Sprintf("package %s will not install from sid:\n%s", p, indent(aptErrors(out))))
		}
	}
	if len(bad) == 0 {
		return "apt-get install of the sid packages failed, though each installs alone (see apt's output)"
	}
	return strings.Join(bad, "\n")
}

// aptErrors keeps the lines of apt's output that explain a failure.
func aptErrors(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "E:") || strings.Contains(t, "Depends:") || strings.Contains(t, "but it is not") ||
			strings.Contains(t, "has no installation candidate") || strings.Contains(t, "Unable to locate") || strings.Contains(t, "Conflicts:") || strings.Contains(t, "Breaks:") {
			keep = append(keep, t)
		}
	}
	if len(keep) == 0 {
		return tail(out, 10)
	}
	return strings.Join(keep, "\n")
}

// aptInRoot runs apt-get chrooted in dir, with /proc and /dev mounted in a
// private mount namespace that ends with the command (maintainer scripts
// read /proc and write /dev/null).
func aptInRoot(dir string, args ...string) (string, error) {
	script := `set -e
mount -t proc proc "$1/proc"
mount --rbind /dev "$1/dev"
d=$1; shift
exec chroot "$d" apt-get "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", dir}, args...)...)
	cmd.Env = []string{"PATH=" + rootPath, "HOME=/root", "LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"}
	return runLogged(cmd)
}

// stackVersions checks that the root has the stack the tests rely on and
// returns the programs' versions, one a line.
func stackVersions(dir string) (string, error) {
	var b strings.Builder
	for _, c := range [][]string{
		{"/usr/bin/rpm", "--version"},
		{"/usr/bin/rpmbuild", "--version"},
		{"/usr/bin/dnf5", "--version"},
		{"/usr/lib/systemd/systemd-binfmt", "--version"},
		{"/usr/bin/qemu-aarch64", "--version"},
		{"/usr/bin/rpmlint", "--version"},
		{"/usr/bin/createrepo_c", "--version"},
	} {
		cmd := exec.Command("chroot", append([]string{dir}, c...)...)
		cmd.Env = []string{"PATH=" + rootPath, "HOME=/root", "LC_ALL=C.UTF-8"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("%s in the sid root does not run: %v\n%s", strings.Join(c, " "), err, out)
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		fmt.Fprintf(&b, "%s: %s\n", filepath.Base(c[0]), first)
	}
	return b.String(), nil
}

// debianMirror returns the Debian archive this machine's apt uses: the
// first deb URI in /etc/apt/sources.list and sources.list.d that serves
// the main archive (not debian-security). SANDBOX_DEBIAN_MIRROR
// overrides it.
func debianMirror() (string, error) {
	if m := os.Getenv("SANDBOX_DEBIAN_MIRROR"); m != "" {
		return m, nil
	}
	paths := []string{"/etc/apt/sources.list"}
	more, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	paths = append(paths, more...)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if m := mirrorFromSources(string(b), strings.HasSuffix(p, ".sources")); m != "" {
			return m, nil
		}
	}
	return "", fmt.Errorf("building the sid test root: no Debian archive in /etc/apt/sources.list or sources.list.d (set SANDBOX_DEBIAN_MIRROR to one)")
}

// mirrorFromSources returns the first URI of a Debian main archive in an
// apt sources file: one-line style ("deb [opts] URI suite comp...") or,
// with deb822, stanzas with "Types: deb" and "URIs: ...". A URI serves
// Debian's archive when its path ends in /debian; debian-security and
// other vendors' repositories do not count.
func mirrorFromSources(text string, deb822 bool) string {
	isDebian := func(uri string) bool {
		if !strings.Contains(uri, "://") {
			return false
		}
		return strings.HasSuffix(strings.TrimRight(uri, "/"), "/debian")
	}
	if !deb822 {
		for _, line := range strings.Split(text, "\n") {
			f := strings.Fields(line)
			if len(f) < 3 || f[0] != "deb" {
				continue
			}
			i := 1
			if strings.HasPrefix(f[1], "[") {
				for i < len(f) && !strings.HasSuffix(f[i], "]") {
					i++
				}
				i++
			}
			if i < len(f) && isDebian(f[i]) {
				return strings.TrimRight(f[i], "/")
			}
		}
		return ""
	}
	for _, stanza := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		var types, uris []string
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "types":
				types = strings.Fields(v)
			case "uris":
				uris = strings.Fields(v)
			}
		}
		if !contains(types, "deb") {
			continue
		}
		for _, u := range uris {
			if isDebian(u) {
				return strings.TrimRight(u, "/")
			}
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func runLogged(cmd *exec.Cmd) (string, error) {
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}
