package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	lc "github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

// eraseGuardLog is the erase guard's log in a root.
func eraseGuardLog(r *sandbox.Root) string {
	return r.Path(lc.DefaultTxDir + "/" + lc.EraseGuardLog)
}

// waitEraseGuards waits until no erase guard started in r is running: each
// holds a shared flock on its log for its whole life, so an exclusive one
// is granted once none is. It fails the test after a minute, and returns
// the log.
func waitEraseGuards(t *testing.T, r *sandbox.Root) string {
	t.Helper()
	f, err := os.Open(eraseGuardLog(r))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	done := make(chan error, 1)
	go func() { done <- unix.Flock(int(f.Fd()), unix.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("waiting for the erase guards: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("an erase guard still runs a minute after the transaction")
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	b, _ := os.ReadFile(eraseGuardLog(r))
	return "\n--- erase guard log:\n" + string(b)
}

// eraseGuardRoot is a Fedora-like root where only our package would ship
// the helper: the host's binfmt.d files hidden, systemd booted, systemd's
// binfmt trigger installed, and an administrator's disabled entry. It
// returns the root and its table.
func eraseGuardRoot(t *testing.T, ns *sandbox.NS, st sandbox.Stack) (*sandbox.Root, *binfmt.FS) {
	t.Helper()
	sandbox.Require(t, "/lib/systemd/systemd-binfmt", "systemd")
	r := ns.DNFRootOn(st)
	hostConfs, _ := filepath.Glob(r.Path("/usr/lib/binfmt.d/*"))
	for _, f := range hostConfs {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(r.Path(scriptletsSystemdBooted), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := r.DNF("install", systemdTrigger(t)); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	fs := &binfmt.FS{Dir: r.BinfmtDir}
	if err := fs.RegisterString("admin-entry", ":admin-entry:M::ADMINMAGIC::/bin/true:"); err != nil {
		t.Fatal(err)
	}
	if err := fs.Disable("admin-entry"); err != nil {
		t.Fatal(err)
	}
	return r, fs
}

// registerDocker registers a docker-style entry (tonistiigi/binfmt): F,
// its interpreter deleted once registered, as when its container exits.
// No flush may come after it that the test does not mean.
func registerDocker(t *testing.T, fs *binfmt.FS) {
	t.Helper()
	interp := filepath.Join(t.TempDir(), "qemu-riscv64")
	if err := os.WriteFile(interp, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fs.RegisterString(dockerEntry, ":"+dockerEntry+":M::DOCKERMAGIC::"+interp+":OCF"); err != nil {
		t.Fatal(err)
	}
	os.Remove(interp)
}

const dockerEntry = "qemu-docker-riscv64"

// inodes returns each live entry's bytes and inode number: the kernel
// makes a new inode for every registration, so an entry that keeps its
// inode was never written to.
func inodes(t *testing.T, fs *binfmt.FS) map[string]string {
	t.Helper()
	names, err := fs.Names()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range names {
		var st unix.Stat_t
		raw, err := fs.Raw(n)
		if err != nil || unix.Stat(filepath.Join(fs.Dir, n), &st) != nil {
			t.Fatalf("reading entry %s: %v", n, err)
		}
		out[n] = fmt.Sprintf("inode %d\n%s", st.Ino, raw)
	}
	return out
}

// TestEraseGuardPlainErase: a plain erase of our package on a systemd
// host installs no binfmt.d file, so nothing flushes: the erase guard,
// started because the administrator's entry is live, writes nothing to
// the kernel (every other entry keeps its inode). The hook names the
// docker-style entry a flush would take for good. Through dnf and the rpm
// CLI, on both stacks.
func TestEraseGuardPlainErase(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			ns := sandbox.Enter(t)
			if ns == nil {
				return
			}
			r, fs := eraseGuardRoot(t, ns, st)
			cpus := []string{"aarch64"}
			ours := nfpmBuilder(t, r)(t, interpreters(t, cpus, ""), cpus, "1.0")
			for _, tx := range []struct {
				name   string
				remove func() (string, error)
			}{
				{"dnf", func() (string, error) { return r.DNF("remove", pkgName) }},
				{"rpm", func() (string, error) { return r.RPM("-e", pkgName) }},
			} {
				if out, err := r.DNF("install", ours); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				registerDocker(t, fs)
				before := inodes(t, fs)
				delete(before, "qemu-aarch64")
				out, err := tx.remove()
				if err != nil {
					t.Fatalf("%s: %v\n%s", tx.name, err, out)
				}
				log := waitEraseGuards(t, r)
				out += log
				after := inodes(t, fs)
				if _, ok := after["qemu-aarch64"]; ok {
					t.Errorf("%s: our entry outlives our package:\n%s", tx.name, out)
				}
				if !reflect.DeepEqual(before, after) {
					t.Errorf("%s: the table changed: %v, want %v\n%s", tx.name, after, before, out)
				}
				if !strings.HasSuffix(strings.TrimSpace(log), "the table was not flushed: nothing to do") {
					t.Errorf("%s: the erase guard did not see the end of the transaction unflushed:\n%s", tx.name, out)
				}
				if !strings.Contains(out, `entry "`+dockerEntry+`" cannot be registered again if systemd-binfmt flushes the table in this transaction: flag F`) {
					t.Errorf("%s: the hook does not name the docker-style entry:\n%s", tx.name, out)
				}
				os.Remove(eraseGuardLog(r))
			}
		})
	}
}

// guardHook copies a fresh binfmtctl into the root (not at
// /usr/bin/binfmtctl: there it would count as a helper left installed)
// and returns a function that runs its erase %preun hook chrooted, as
// our %preun does, with env as extra environment, under a timeout, so
// that a hook that blocks fails the test instead of hanging it.
func guardHook(t *testing.T, r *sandbox.Root) func(env ...string) (string, error) {
	t.Helper()
	bin := r.Path("/opt/guardtest/binfmtctl")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("go", "build", "-trimpath", "-o", bin, "../../cmd/binfmtctl").CombinedOutput(); err != nil {
		t.Fatalf("building binfmtctl: %v\n%s", err, out)
	}
	return func(env ...string) (string, error) {
		args := append([]string{"60"}, "env")
		args = append(args, env...)
		args = append(args, "/opt/guardtest/binfmtctl", "hook", "preun", "--ships-helper", "gone-pkg-1.0-1", "0")
		return r.Chroot("timeout", args...)
	}
}

// holdRPMLock takes the write lock rpm takes for a transaction on the
// root's lock file, as rpm does (fcntl, whole file), in this process:
// the hook's parent, as rpm is a scriptlet's. It returns the release.
func holdRPMLock(t *testing.T, r *sandbox.Root) func() {
	t.Helper()
	f, err := os.OpenFile(r.Path("/var/lib/rpm/.rpm.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		t.Fatalf("taking rpm's lock: %v", err)
	}
	return func() { f.Close() }
}

// TestEraseGuardLock: the erase guard waits for rpm's transaction lock,
// and only for a sound one. With an rpm lock file that is missing, a
// FIFO, a symlink or a file a user planted, or one no ancestor holds, the
// hook returns at once, starts nothing and names the entries a flush
// would take. Holding the lock as rpm does, a flush by the real
// systemd-binfmt is put back once the lock goes, and the guard gives up
// at its bound, touching nothing, while the lock stays held.
func TestEraseGuardLock(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			ns := sandbox.Enter(t)
			if ns == nil {
				return
			}
			r, fs := eraseGuardRoot(t, ns, st)
			hook := guardHook(t, r)
			lock := r.Path("/var/lib/rpm/.rpm.lock")
			if _, err := os.Stat(lock); err != nil {
				t.Fatalf("rpm left no lock file in the root: %v", err)
			}
			if err := os.Rename(lock, lock+".real"); err != nil {
				t.Fatal(err)
			}
			user := r.Path("/tmp/user-lock")
			if err := os.WriteFile(user, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(user, 1000, 1000); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name, want string
				plant      func() error
			}{
				{"missing", "no such file or directory", func() error { return nil }},
				{"fifo", "is not a regular file", func() error { return unix.Mkfifo(lock, 0o644) }},
				{"symlink planted by a user", "is a symlink", func() error {
					if err := os.Symlink("/tmp/user-lock", lock); err != nil {
						return err
					}
					return os.Lchown(lock, 1000, 1000)
				}},
				{"a user's file", "is owned by uid 1000, not root", func() error { return os.Link(user, lock) }},
				{"held by no ancestor", "cannot tell when this transaction ends: no process this one runs in holds rpm's lock /var/lib/rpm/.rpm.lock", func() error { return os.Link(lock+".real", lock) }},
			} {
				t.Run(c.name, func(t *testing.T) {
					os.Remove(lock)
					if err := c.plant(); err != nil {
						t.Fatal(err)
					}
					out, err := hook()
					if err != nil {
						t.Fatalf("the hook failed: %v\n%s", err, out)
					}
					if !strings.Contains(out, c.want) || !strings.Contains(out, "nothing of binfmtctl is left to register again: admin-entry") {
						t.Errorf("the hook says %q, want %q and the entry at risk named", out, c.want)
					}
					if _, err := os.Stat(eraseGuardLog(r)); err == nil {
						t.Errorf("an erase guard started:\n%s", waitEraseGuards(t, r))
					}
				})
			}
			os.Remove(lock)
			if err := os.Rename(lock+".real", lock); err != nil {
				t.Fatal(err)
			}

			t.Run("flush put back after the transaction", func(t *testing.T) {
				want := inodes(t, fs)
				registerDocker(t, fs)
				release := holdRPMLock(t, r)
				out, err := hook()
				if err != nil {
					t.Fatalf("the hook failed: %v\n%s", err, out)
				}
				if !strings.Contains(out, `entry "`+dockerEntry+`" cannot be registered again if systemd-binfmt flushes the table in this transaction`) {
					t.Errorf("the hook does not name the docker-style entry:\n%s", out)
				}
				// systemd's trigger, inside the transaction, for the
				// binfmt.d file the transaction installed: it fires
				// only for one (the erase guard takes a flush to be
				// systemd-binfmt's only when some file's entry is
				// registered after it).
				writeConf(t, r, "installed.conf", ":installed:M::INSTALLEDMAGIC::/bin/true:")
				defer os.Remove(r.Path("/usr/lib/binfmt.d/installed.conf"))
				defer fs.Unregister("installed")
				if out, err := r.Chroot("/usr/lib/systemd/systemd-binfmt"); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				if _, err := fs.Raw("admin-entry"); err == nil {
					t.Fatalf("systemd-binfmt did not flush the table")
				}
				release()
				log := waitEraseGuards(t, r)
				got := inodes(t, fs)
				if g, w := strings.SplitN(got["admin-entry"], "\n", 2), strings.SplitN(want["admin-entry"], "\n", 2); len(g) != 2 || g[1] != w[1] || g[0] == w[0] {
					t.Errorf("the administrator's entry is %q, want %q registered anew\n%s", got["admin-entry"], want["admin-entry"], log)
				}
				if !strings.Contains(log, `entry "`+dockerEntry+`" was flushed by systemd-binfmt and cannot be registered again: flag F`) {
					t.Errorf("the guard's log does not name the docker-style entry:\n%s", log)
				}
				os.Remove(eraseGuardLog(r))
			})

			t.Run("gives up at its bound", func(t *testing.T) {
				want := inodes(t, fs)
				release := holdRPMLock(t, r)
				defer release()
				start := time.Now()
				if out, err := hook("BINFMTCTL_GUARD_TIMEOUT=2s"); err != nil {
					t.Fatalf("the hook failed: %v\n%s", err, out)
				}
				log := waitEraseGuards(t, r)
				if d := time.Since(start); d < 2*time.Second || d > 30*time.Second {
					t.Errorf("the guard ran %v with a bound of 2s", d)
				}
				if !strings.Contains(log, "erase guard: gave up after 2s, touching nothing") {
					t.Errorf("the guard's log does not say it gave up:\n%s", log)
				}
				if got := inodes(t, fs); !reflect.DeepEqual(got, want) {
					t.Errorf("the table changed: %v, want %v\n%s", got, want, log)
				}
				os.Remove(eraseGuardLog(r))
			})
		})
	}
}
