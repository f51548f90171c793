package sandbox

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSidKey(t *testing.T) {
	base := sidKey("1", "sid", []string{"rpm", "dnf5"})
	if base != sidKey("1", "sid", []string{"rpm", "dnf5"}) {
		t.Fatal("the same inputs give different keys")
	}
	if !strings.HasPrefix(base, "sid-") || len(base) != len("sid-")+16 {
		t.Errorf("key %q: want sid- and 16 hex digits", base)
	}
	for name, other := range map[string]string{
		"builder version": sidKey("2", "sid", []string{"rpm", "dnf5"}),
		"package added":   sidKey("1", "sid", []string{"rpm", "dnf5", "gpg"}),
		"package renamed": sidKey("1", "sid", []string{"rpm", "dnf"}),
		"suite":           sidKey("1", "trixie", []string{"rpm", "dnf5"}),
		// One package "rpm dnf5" is not two packages.
		"joined": sidKey("1", "sid", []string{"rpm dnf5"}),
	} {
		if other == base {
			t.Errorf("%s: the key did not change (%s)", name, base)
		}
	}
}

func TestMirrorFromSources(t *testing.T) {
	for _, c := range []struct {
		name, text string
		deb822     bool
		want       string
	}{
		{"one-line", "deb http://deb.debian.org/debian bookworm main\n", false, "http://deb.debian.org/debian"},
		{"one-line options", "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian/ sid main\n", false, "http://m.example/debian"},
		{"deb-src and security skipped", "deb-src http://a/debian sid main\ndeb http://deb.debian.org/debian-security bookworm-security main\ndeb http://b/debian sid main\n", false, "http://b/debian"},
		{"comment", "# deb http://a/debian sid main\n", false, ""},
		{"other vendor", "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n", false, ""},
		{"deb822", "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n", true, "http://deb.debian.org/debian"},
		{"deb822 deb-src only", "Types: deb-src\nURIs: http://deb.debian.org/debian\n", true, ""},
		{"deb822 two uris", "Types: deb deb-src\nURIs: http://x/ubuntu http://y/debian/\n", true, "http://y/debian"},
		{"empty", "", true, ""},
	} {
		if got := mirrorFromSources(c.text, c.deb822); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func FuzzMirrorFromSources(f *testing.F) {
	f.Add("deb [arch=amd64] http://deb.debian.org/debian sid main\n", false)
	f.Add("Types: deb\nURIs: http://deb.debian.org/debian\nSuites: sid\n", true)
	f.Fuzz(func(t *testing.T, text string, deb822 bool) {
		m := mirrorFromSources(text, deb822)
		if m == "" {
			return
		}
		if !strings.Contains(m, "://") || !strings.HasSuffix(m, "/debian") || !strings.Contains(text, m) {
			t.Fatalf("mirror %q from %q", m, text)
		}
	})
}

// TestEnsureBuiltLocks starts several builders of one root at once: the
// build runs once, the others wait for it and find it, and a failed or
// unfinished build is never taken for a finished one.
func TestEnsureBuiltLocks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("ensureBuilt refuses to build unless run as root")
	}
	dir := filepath.Join(t.TempDir(), "root")
	var builds atomic.Int32
	build := func(tmp string) error {
		builds.Add(1)
		time.Sleep(200 * time.Millisecond) // long enough for the others to queue
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, sidReady), []byte("ok\n"), 0o644)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = ensureBuilt(dir, t.Logf, build)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if n := builds.Load(); n != 1 {
		t.Errorf("%d builds ran, want 1", n)
	}

	// A build that fails leaves nothing that counts as built.
	dir2 := filepath.Join(t.TempDir(), "root")
	boom := errors.New("boom")
	if err := ensureBuilt(dir2, t.Logf, func(tmp string) error { os.MkdirAll(tmp, 0o755); return boom }); !errors.Is(err, boom) {
		t.Errorf("failed build: got %v, want %v", err, boom)
	}
	// One that returns nil without finishing is an error, not a root.
	if err := ensureBuilt(dir2, t.Logf, func(tmp string) error { return os.MkdirAll(tmp, 0o755) }); err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Errorf("unfinished build: got %v", err)
	}
	if _, err := os.Stat(dir2); err == nil {
		t.Errorf("an unfinished build was moved into place")
	}
	if err := ensureBuilt(dir2, t.Logf, build); err != nil {
		t.Errorf("building after an interrupted build: %v", err)
	}
}

// TestSidStack builds (or finds) the sid root and checks that its stack
// is the one the tests are meant to cover.
func TestSidStack(t *testing.T) {
	start := time.Now()
	st := SidStack(t)
	t.Logf("sid root %s ready in %.1fs:\n%s", st.Sysroot, time.Since(start).Seconds(), st.Versions)
	for _, want := range []string{"rpm: RPM version 6.", "rpmbuild: RPM version 6.", "dnf5: dnf5 version 5.", "systemd-binfmt: systemd 26", "qemu-aarch64: qemu-aarch64 version 1", "rpmlint: 2."} {
		if !strings.Contains(st.Versions, want) {
			t.Errorf("the sid root's versions lack %q:\n%s", want, st.Versions)
		}
	}
	out, err := exec.Command("chroot", st.Sysroot, "/usr/bin/rpm", "--eval", "%_dbpath").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != st.DefaultDBPath {
		t.Errorf("sid's rpm --eval %%_dbpath: %v %q, want %q", err, out, st.DefaultDBPath)
	}
}

// TestSidBrokenPackage asks the sid root for a package that does not
// exist: the install fails, and the message names the package.
func TestSidBrokenPackage(t *testing.T) {
	st := SidStack(t)
	// apt refuses before it changes anything, so the cached root is
	// safe to use.
	err := installPackages(st.Sysroot, []string{"rpm", "no-such-package-sandbox"})
	if err == nil {
		t.Fatal("installing a package that does not exist succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "package no-such-package-sandbox will not install from sid") || !strings.Contains(msg, "Unable to locate package no-such-package-sandbox") {
		t.Errorf("the message does not name the package and apt's reason:\n%s", msg)
	}
	if strings.Contains(msg, "package rpm will not install") {
		t.Errorf("the message blames rpm, which installs:\n%s", msg)
	}
}

// TestStackCommand runs each stack's systemd-binfmt from outside any root:
// sid's must be sid's (262), started through sid's loader and libraries.
func TestStackCommand(t *testing.T) {
	for _, st := range Stacks(t) {
		want := "systemd 262"
		if st.Name == "host" {
			Require(t, st.SystemdBinfmt, "systemd")
			want = "systemd 252"
		}
		cmd, err := st.Command(st.SystemdBinfmt, "--version")
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), want) {
			t.Errorf("%s: %s --version: %v\n%s\nwant %q", st.Name, st.SystemdBinfmt, err, out, want)
		}
	}
}

// TestStackRun runs sid's rpm through Stack.Run with a shared directory:
// the program is sid's, it reads and writes the shared directory at its
// own path, and the cached root is not changed.
func TestStackRun(t *testing.T) {
	st := SidStack(t)
	if os.Geteuid() != 0 {
		t.Skip("Stack.Run on sid mounts an overlay: run as root")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in"), []byte("shared\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadDir(st.Sysroot + "/tmp")
	if err != nil {
		t.Fatal(err)
	}
	out, err := st.Run(t, RunOptions{Share: []string{dir}, Env: []string{"X_SANDBOX=1"}}, "sh", "-c",
		`rpm --version; cat "$1/in"; echo "$X_SANDBOX" >"$1/out"; touch /tmp/sandbox-run-test`, "sh", dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "RPM version 6.") || !strings.Contains(out, "shared\n") {
		t.Errorf("output:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "out")); err != nil || string(b) != "1\n" {
		t.Errorf("what the program wrote to the shared directory: %q, %v", b, err)
	}
	after, _ := os.ReadDir(st.Sysroot + "/tmp")
	if len(after) != len(before) {
		t.Errorf("the cached sid root changed: /tmp had %d entries, now %d", len(before), len(after))
	}
}

// TestHostStack checks what HostStack finds on this machine: Debian 12's
// dnf 4, and rpm's own default database, which the roots override.
func TestHostStack(t *testing.T) {
	Require(t, "/usr/bin/rpm", "rpm")
	Require(t, "/usr/bin/dnf", "dnf")
	st := HostStack()
	out, err := exec.Command(st.DNF, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", st.DNF, err, out)
	}
	if is5 := strings.Contains(string(out), "dnf5"); is5 != st.DNF5 {
		t.Errorf("HostStack says DNF5=%v, but %s --version says:\n%s", st.DNF5, st.DNF, out)
	}
	if st.DefaultDBPath == "" || !filepath.IsAbs(st.DefaultDBPath) {
		t.Errorf("DefaultDBPath %q: want rpm's %%_dbpath, an absolute path", st.DefaultDBPath)
	}
}
