package lifecycle_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

// startIn starts path chrooted in r as cred, in the background, and
// returns a function that kills it, and its children, and waits.
func startIn(t *testing.T, r *sandbox.Root, cred *syscall.Credential, path string, args ...string) func() {
	t.Helper()
	cmd := &exec.Cmd{
		Path:        path,
		Args:        append([]string{path}, args...),
		Dir:         "/",
		Env:         rootEnv,
		SysProcAttr: &syscall.SysProcAttr{Chroot: r.Dir, Credential: cred, Setpgid: true},
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s %q: %v", path, args, err)
	}
	// The whole group: flock's child inherits the locked descriptor.
	return func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }
}

// timed runs f and fails the test when it takes longer than limit.
func timed(t *testing.T, what string, limit time.Duration, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	f()
	d := time.Since(start)
	t.Logf("%s took %v", what, d.Round(time.Millisecond))
	if d > limit {
		t.Errorf("%s took %v, more than %v", what, d, limit)
	}
	return d
}

// TestHardening runs issue 16's points 3, 6, 9 and 10 against the real
// kernel, rpm and dnf in the disposable root: a user's lock, a FIFO in
// place of the record, a record that is not root's, and a record over
// 1 MiB.
func TestHardening(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { hardeningOn(t, st) })
	}
}

func hardeningOn(t *testing.T, st sandbox.Stack) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	sandbox.Require(t, "/usr/bin/flock", "util-linux")
	helper := buildHelper(t)
	r := ns.DNFRootOn(st)
	bm := r.BinfmtDir
	state := r.Path("/var/lib/binfmtctl")
	others := table(t, bm)
	line := ":hard-a:M::HARDA::/usr/libexec/pkg-h/interp:F"
	h := testPkg{name: "pkg-h", version: "1.0", self: true, confs: map[string]string{"h.conf": line + "\n"}}
	rpmH := h.build(t, helper)
	ctl := "/usr/bin/binfmtctl"

	t.Run("a user's lock on /var/lib does not hang a transaction", func(t *testing.T) {
		// The old lock: any user can open /var/lib and flock it.
		stop := startIn(t, r, nobody, "/usr/bin/flock", "-x", "/var/lib", "sleep", "60")
		defer stop()
		time.Sleep(200 * time.Millisecond)
		var out string
		timed(t, "dnf install while uid 65534 locks /var/lib", 20*time.Second, func() {
			out = must(t, "dnf install")(r.DNF("install", rpmH))
		})
		checkTable(t, "dnf install while uid 65534 locks /var/lib", bm, want(t, others, line), out)
		timed(t, "dnf remove while uid 65534 locks /var/lib", 20*time.Second, func() {
			out = must(t, "dnf remove")(r.DNF("remove", "pkg-h"))
		})
		checkTable(t, "dnf remove while uid 65534 locks /var/lib", bm, others, out)
	})

	t.Run("a user cannot take the lock", func(t *testing.T) {
		must(t, "rpm -i")(r.RPM("-i", rpmH))
		defer r.RPM("-e", "pkg-h")
		fi, err := os.Stat(r.Path(lifecycle.DefaultLockFile))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Errorf("the lock file is %v, uid %d; want 0600, root's", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
		}
		o := runIn(t, r, nobody, nil, "/usr/bin/flock", "-x", "-w", "1", lifecycle.DefaultLockFile, "true")
		if o.code == 0 || !strings.Contains(o.out, "Permission denied") {
			t.Errorf("uid 65534 locking %s: %s; want permission denied", lifecycle.DefaultLockFile, o)
		}
	})

	t.Run("every wait for the lock is bounded", func(t *testing.T) {
		must(t, "rpm -i --noscripts")(r.RPM("-i", "--noscripts", rpmH))
		defer r.RPM("-e", "--noscripts", "pkg-h")
		// Root's own lock, held by a stuck process.
		stop := startIn(t, r, nil, "/usr/bin/flock", "-x", lifecycle.DefaultLockFile, "sleep", "60")
		defer stop()
		time.Sleep(200 * time.Millisecond)
		env := []string{"BINFMTCTL_LOCK_TIMEOUT=1s"}
		var o outcome
		timed(t, "hook post with the lock held", 5*time.Second, func() {
			o = runIn(t, r, nil, env, ctl, "hook", "post", "pkg-h-1.0-1", "1")
		})
		if o.code != 0 {
			t.Errorf("hook post with the lock held: %s; want exit 0", o)
		}
		oneNotice(t, "hook post with the lock held", o.out, "timed out waiting for the binfmtctl lock", "binfmtctl sync pkg-h")
		checkTable(t, "hook post with the lock held", bm, others, o.out)
		timed(t, "sync with the lock held", 5*time.Second, func() {
			o = runIn(t, r, nil, env, ctl, "sync", "pkg-h")
		})
		if o.code != 1 || !strings.Contains(o.out, "timed out") {
			t.Errorf("sync with the lock held: %s; want exit 1 saying it timed out", o)
		}
		timed(t, "prune --apply with the lock held", 5*time.Second, func() {
			o = runIn(t, r, nil, env, ctl, "prune", "--apply")
		})
		if o.code != 1 || !strings.Contains(o.out, "timed out") {
			t.Errorf("prune --apply with the lock held: %s; want exit 1 saying it timed out", o)
		}
		// The default bound, without the variable.
		d := timed(t, "hook preun with the lock held", lifecycle.DefaultLockTimeout+5*time.Second, func() {
			o = runIn(t, r, nil, nil, ctl, "hook", "preun", "pkg-h-1.0-1", "0")
		})
		if o.code != 0 || d < lifecycle.DefaultLockTimeout {
			t.Errorf("hook preun with the lock held: %s after %v; want exit 0 after %v", o, d, lifecycle.DefaultLockTimeout)
		}
	})

	t.Run("a FIFO in place of the record", func(t *testing.T) {
		must(t, "rpm -i")(r.RPM("-i", rpmH))
		rec := filepath.Join(state, "pkg-h")
		saved, err := os.ReadFile(rec)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(rec)
		if err := unix.Mkfifo(rec, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			cred *syscall.Credential
			args []string
		}{
			{nil, []string{"hook", "preun", "pkg-h-1.0-1", "0"}},
			{nil, []string{"hook", "post", "pkg-h-1.0-1", "1"}},
			{nil, []string{"status"}},
			{nobody, []string{"status"}},
		} {
			var o outcome
			timed(t, strings.Join(c.args, " "), 5*time.Second, func() {
				o = runIn(t, r, c.cred, nil, ctl, c.args...)
			})
			if c.args[0] == "status" {
				// status shows the table without that record's owners.
				if o.code != 0 || !strings.Contains(o.out, "hard-a") {
					t.Errorf("status with a FIFO as the record: %s; want the table", o)
				}
				continue
			}
			if o.code != 1 || !strings.Contains(o.out, "is not a regular file") {
				t.Errorf("%s with a FIFO as the record: %s; want exit 1 saying it is not a regular file", c.args, o)
			}
		}
		checkTable(t, "hooks with a FIFO as the record", bm, want(t, others, line), "")
		os.Remove(rec)
		os.WriteFile(rec, saved, 0o644)
		out := must(t, "rpm -e")(r.RPM("-e", "pkg-h"))
		checkTable(t, "rpm -e", bm, others, out)
	})

	t.Run("a FIFO among the binfmt.d files", func(t *testing.T) {
		// Every run reads every binfmt.d file systemd's lookup sees, not
		// only the package's: a FIFO anywhere must not block it.
		os.MkdirAll(r.Path("/etc/binfmt.d"), 0o755)
		fifo := r.Path("/etc/binfmt.d/zz-fifo.conf")
		if err := unix.Mkfifo(fifo, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(fifo)
		var out string
		timed(t, "dnf install and remove with a FIFO in /etc/binfmt.d", 20*time.Second, func() {
			out = must(t, "dnf install")(r.DNF("install", rpmH))
			checkTable(t, "dnf install with a FIFO in /etc/binfmt.d", bm, want(t, others, line), out)
			out = must(t, "dnf remove")(r.DNF("remove", "pkg-h"))
			checkTable(t, "dnf remove with a FIFO in /etc/binfmt.d", bm, others, out)
		})
	})

	t.Run("a record that is not root's", func(t *testing.T) {
		for _, spoil := range []struct {
			name string
			do   func(p string) error
			why  string
		}{
			{"owned by uid 1000", func(p string) error { return os.Chown(p, 1000, 1000) }, "owned by uid 1000"},
			{"mode 0666", func(p string) error { return os.Chmod(p, 0o666) }, "writable by group or others"},
		} {
			must(t, "rpm -i")(r.RPM("-i", rpmH))
			rec := filepath.Join(state, "pkg-h")
			if err := spoil.do(rec); err != nil {
				t.Fatal(err)
			}
			// Both sides refuse it: binfmtctl's hooks and the shell
			// %postun that runs when binfmtctl is gone.
			o := runIn(t, r, nil, nil, ctl, "hook", "preun", "pkg-h-1.0-1", "0")
			if o.code != 1 || !strings.Contains(o.out, spoil.why) {
				t.Errorf("hook preun with a record %s: %s; want exit 1 saying %q", spoil.name, o, spoil.why)
			}
			checkTable(t, "hook preun with a record "+spoil.name, bm, want(t, others, line), o.out)
			out := must(t, "rpm -e --nopreun")(r.RPM("-e", "--nopreun", "pkg-h"))
			if !strings.Contains(out, "refusing "+"/var/lib/binfmtctl/pkg-h") {
				t.Errorf("the shell %%postun did not refuse the record %s:\n%s", spoil.name, out)
			}
			checkTable(t, "the shell %postun with a record "+spoil.name, bm, want(t, others, line), out)
			clearEntries(t, bm, "hard-a")
			os.Remove(rec)
		}
	})

	t.Run("a record over 1 MiB", func(t *testing.T) {
		lines := lifecycle.LargeLines(2000)
		for i := range lines {
			lines[i] = strings.Replace(lines[i], "/usr/bin/interp", "/usr/libexec/pkg-big/interp", 1)
		}
		// Four files of 500 lines: a binfmt.d file is read up to 1 MiB.
		confs := map[string]string{}
		for i := 0; i < 4; i++ {
			confs[fmt.Sprintf("big-%d.conf", i)] = strings.Join(lines[i*500:(i+1)*500], "\n") + "\n"
		}
		big := testPkg{name: "pkg-big", version: "1.0", self: true, confs: confs}
		var out string
		timed(t, "dnf install of 2,000 entries", 5*time.Minute, func() {
			out = must(t, "dnf install")(r.DNF("install", big.build(t, helper)))
		})
		if got := len(table(t, bm)); got != len(others)+2000 {
			t.Fatalf("after the install, %d entries are live, want %d\n%s", got, len(others)+2000, out)
		}
		fi, err := os.Stat(filepath.Join(state, "pkg-big"))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("the record of 2,000 entries is %d bytes", fi.Size())
		if o := runIn(t, r, nil, nil, ctl, "sync", "pkg-big"); o.code != 0 {
			t.Errorf("sync of pkg-big: %s", o)
		}
		timed(t, "dnf remove of 2,000 entries", 5*time.Minute, func() {
			out = must(t, "dnf remove")(r.DNF("remove", "pkg-big"))
		})
		if strings.Contains(out, "too large") {
			t.Errorf("the erase could not read the record:\n%s", out)
		}
		checkTable(t, "dnf remove of 2,000 entries", bm, others, fmt.Sprintf("%.2000s", out))
		assertGone(t, r, "/var/lib/binfmtctl")
	})
}
