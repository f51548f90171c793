package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostUsrState fingerprints a few things under the host's /usr that an
// overlay mistake would change: the modification time of /usr/bin (any
// file added or removed there changes it) and the content of files rpm
// and dnf use.
func hostUsrState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, d := range []string{"/usr", "/usr/bin", "/usr/share"} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(d + " " + fi.ModTime().Format(time.RFC3339Nano) + "\n")
	}
	for _, p := range []string{"/usr/bin/rpm", "/usr/bin/dash", "/usr/lib/rpm/macros"} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(p + " " + hex.EncodeToString(h.Sum(nil)) + "\n")
	}
	return b.String()
}

// TestDNFRoot installs and removes a package whose scriptlets write files,
// query the rpm database from inside the transaction, and register and
// unregister a binfmt_misc entry through the standard path, on each stack.
func TestDNFRoot(t *testing.T) {
	Require(t, "/usr/bin/rpm", "rpm")
	Require(t, "/usr/bin/dnf", "dnf")
	for _, st := range Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { testDNFRoot(t, st) })
	}
}

func testDNFRoot(t *testing.T, st Stack) {
	before := hostUsrState(t)
	ns := Enter(t)
	if ns == nil {
		if after := hostUsrState(t); after != before {
			t.Errorf("the host's /usr changed:\nbefore:\n%safter:\n%s", before, after)
		}
		for _, p := range []string{"/usr/bin/sandbox-hello", "/var/lib/sandbox-hello"} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s exists on the host", p)
			}
		}
		return
	}

	// Root logs how long each rpm and dnf run takes.
	start := time.Now()
	root := ns.DNFRootOn(st)
	t.Logf("DNFRoot set-up, including one dnf transaction: %.2fs", time.Since(start).Seconds())

	pkg := BuildRPM(t, PackageSpec{
		Name:    "sandbox-hello",
		Version: "1.0",
		Files: []File{
			{Dst: "/usr/bin/sandbox-hello", Content: []byte("#!/bin/sh\necho hello from the root\n"), Mode: 0o755},
		},
		Post: `mkdir -p /var/lib/sandbox-hello
rpm -q sandbox-sh sandbox-hello > /var/lib/sandbox-hello/post.out 2>&1
echo "post $1 rc=$?" >> /var/lib/sandbox-hello/post.out
env > /var/lib/sandbox-hello/env.out
echo ':sandbox-hello:E::sandboxhello::/usr/bin/sandbox-hello:' > /proc/sys/fs/binfmt_misc/register
`,
		PostUn: `rpm -q sandbox-hello > /var/lib/sandbox-hello/postun.out 2>&1
echo "postun $1" >> /var/lib/sandbox-hello/postun.out
echo -1 > /proc/sys/fs/binfmt_misc/sandbox-hello
`,
	})

	if out, err := root.DNF("install", pkg); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}

	if env := readFile(t, root.Path("/var/lib/sandbox-hello/env.out")); !strings.Contains(env, "\nHOME=/root\n") && !strings.HasPrefix(env, "HOME=/root\n") {
		t.Errorf("%%post ran with environment:\n%s", env)
	}
	// The database is where Fedora keeps it, for rpm outside and inside
	// alike, not at Debian's ~/.rpmdb.
	if _, err := os.Stat(root.Path("/var/lib/rpm/rpmdb.sqlite")); err != nil {
		t.Errorf("no rpm database at /var/lib/rpm in the root: %v", err)
	}
	if _, err := os.Stat(root.Path("/root/.rpmdb")); err == nil {
		t.Errorf("an rpm database appeared at /root/.rpmdb in the root")
	}
	post := readFile(t, root.Path("/var/lib/sandbox-hello/post.out"))
	for _, want := range []string{"sandbox-sh-1-1.noarch\n", "sandbox-hello-1.0-1.noarch\n", "post 1 rc=0\n"} {
		if !strings.Contains(post, want) {
			t.Errorf("%%post output lacks %q:\n%s", want, post)
		}
	}
	if _, err := os.Stat(filepath.Join(ns.BinfmtDir, "sandbox-hello")); err != nil {
		t.Errorf("the entry %%post registered in the root is not in the namespace's binfmt_misc: %v", err)
	}
	if out, err := root.RPM("-q", "sandbox-hello"); err != nil || out != "sandbox-hello-1.0-1.noarch\n" {
		t.Errorf("rpm -q sandbox-hello from outside: %v, %q", err, out)
	}
	if out, err := root.Chroot("sandbox-hello"); err != nil || out != "hello from the root\n" {
		t.Errorf("running the installed program in the root: %v, %q", err, out)
	}
	// The stack's own rpm is the one that ran, inside and outside.
	wantRPM := "RPM version 4."
	if st.Name == "sid" {
		wantRPM = "RPM version 6."
	}
	if out, err := root.Chroot("rpm", "--version"); err != nil || !strings.Contains(out, wantRPM) {
		t.Errorf("rpm --version in the %s root: %v, %q, want %q", st.Name, err, out, wantRPM)
	}
	if _, err := exec.LookPath("sandbox-hello"); err == nil {
		t.Errorf("sandbox-hello is in the namespace's own PATH: the install reached /usr outside the root")
	}

	if out, err := root.DNF("remove", "sandbox-hello"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}

	postun := readFile(t, root.Path("/var/lib/sandbox-hello/postun.out"))
	// rpm drops the header from the database only after %postun, so the
	// nested query still finds the package.
	if postun != "sandbox-hello-1.0-1.noarch\npostun 0\n" {
		t.Errorf("%%postun output:\n%s", postun)
	}
	if _, err := os.Stat(filepath.Join(ns.BinfmtDir, "sandbox-hello")); err == nil {
		t.Errorf("the entry is still registered after %%postun")
	}
	if _, err := os.Lstat(root.Path("/usr/bin/sandbox-hello")); err == nil {
		t.Errorf("/usr/bin/sandbox-hello is still in the root after removal")
	}
	if after := hostUsrState(t); after != before {
		t.Errorf("the host's /usr changed, seen from the namespace:\nbefore:\n%safter:\n%s", before, after)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRootProcesses: Processes finds a process chrooted in the root, the
// kind a scriptlet may leave running, that the cleanup would report.
func TestRootProcesses(t *testing.T) {
	ns := Enter(t)
	if ns == nil {
		return
	}
	r := ns.DNFRoot()
	if left := r.Processes(); len(left) != 0 {
		t.Fatalf("processes in a fresh root: %v", left)
	}
	cmd := r.chrootCmd("/bin/cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if left := r.Processes(); len(left) != 1 || left[0] != cmd.Process.Pid {
		t.Errorf("Processes = %v, want [%d]", left, cmd.Process.Pid)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if left := r.Processes(); len(left) != 0 {
		t.Errorf("Processes = %v once it exited", left)
	}
}
