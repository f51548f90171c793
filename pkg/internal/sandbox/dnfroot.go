package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
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

	t *testing.T
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
	t := ns.t
	t.Helper()
	Require(t, "/usr/bin/rpm", "rpm")
	Require(t, "/usr/bin/dnf", "dnf")
	if os.Getenv(envRealRoot) != "true" {
		t.Skip("a dnf root needs real root outside the namespace: rpm and the overlay over /usr need every user id mapped")
	}

	base := ns.TempDir()
	r := &Root{
		Dir: filepath.Join(base, "root"),
		t:   t,
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

	if out, err := r.RPM("--initdb"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sh := BuildRPM(t, ShellProvider())
	if out, err := r.DNF("install", sh); err != nil {
		t.Fatalf("installing the /bin/sh provider: %v\n%s", err, out)
	}
	return r
}

// DNF runs dnf on the root with no repositories and returns its combined
// output. The options before args are
//
//	-y --installroot=DIR --releasever=0 --disablerepo=* --setopt=reposdir=/dev/null --setopt=install_weak_deps=False
//
// so local packages are installed with "install", "upgrade" or
// "downgrade" and a path, and removed with "remove" and a name. Each run
// is logged with its duration.
func (r *Root) DNF(args ...string) (string, error) {
	r.t.Helper()
	full := append([]string{
		"-y",
		"--installroot=" + r.Dir,
		"--releasever=0",
		"--disablerepo=*",
		"--setopt=reposdir=/dev/null",
		"--setopt=install_weak_deps=False",
	}, args...)
	return r.run(exec.Command("/usr/bin/dnf", full...), "dnf "+strings.Join(args, " "))
}

// RPM runs rpm on the root (--root=DIR --dbpath=/var/lib/rpm) and returns
// its combined output.
func (r *Root) RPM(args ...string) (string, error) {
	r.t.Helper()
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
	cmd := &exec.Cmd{
		Path:        path,
		Args:        append([]string{name}, args...),
		Dir:         "/",
		SysProcAttr: &syscall.SysProcAttr{Chroot: r.Dir},
	}
	return r.run(cmd, "chroot "+strings.Join(cmd.Args, " "))
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
