package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// writeConf puts a binfmt.d file in the root as rpm does: a temporary
// file renamed into place.
func writeConf(t *testing.T, r *sandbox.Root, name, line string) {
	t.Helper()
	p := r.Path("/usr/lib/binfmt.d/" + name)
	if err := os.WriteFile(p+";tmp", []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+";tmp", p); err != nil {
		t.Fatal(err)
	}
}

// TestEraseGuardWritesOnlyWhatAFlushTook: the erase guard puts back only
// what systemd-binfmt's flush took, and nothing the transaction itself
// meant to remove. The transaction is played in the root around the real
// hook, with rpm's lock held as rpm holds it (TestEraseGuardLock), on
// both stacks:
//
//   - no flush: another package erased in the same transaction
//     unregisters, from its own scriptlet, the entry it registered
//     without a binfmt.d file, the only entry no file defines. The
//     guard must not register it again (before the fix it did: every
//     entry of the snapshot was gone, which passed for a flush);
//   - a flush, after an upgrade in the same transaction rewrote an
//     old-way package's binfmt.d file under the same path with another
//     entry name: the administrator's entry comes back, the old name
//     does not (before the fix it did: only files gone from disk
//     counted as removed).
func TestEraseGuardWritesOnlyWhatAFlushTook(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			ns := sandbox.Enter(t)
			if ns == nil {
				return
			}
			r, fs := eraseGuardRoot(t, ns, st)
			hook := guardHook(t, r)
			admin, _ := fs.Raw("admin-entry")

			t.Run("another package's scriptlet unregisters its own entry, nothing flushes", func(t *testing.T) {
				if err := fs.Unregister("admin-entry"); err != nil {
					t.Fatal(err)
				}
				defer func() {
					_ = fs.RegisterString("admin-entry", ":admin-entry:M::ADMINMAGIC::/bin/true:")
					_ = fs.Disable("admin-entry")
				}()
				if err := fs.RegisterString("direct-pkg", ":direct-pkg:M::DIRECTMAGIC::/bin/true:"); err != nil {
					t.Fatal(err)
				}
				release := holdRPMLock(t, r)
				out, err := hook()
				if err != nil {
					release()
					t.Fatalf("the hook failed: %v\n%s", err, out)
				}
				// The other package's %preun, later in the transaction.
				if err := fs.Unregister("direct-pkg"); err != nil {
					t.Fatal(err)
				}
				release()
				log := waitEraseGuards(t, r)
				if log == "" {
					t.Fatalf("no erase guard started:\n%s", out)
				}
				if raw, err := fs.Raw("direct-pkg"); err == nil {
					t.Errorf("the erase guard registered again an entry its package's scriptlet removed, with no flush:\n%s%s", raw, log)
				}
				if !strings.Contains(log, "the table was not flushed: nothing to do") {
					t.Errorf("the guard's log does not say the table was not flushed:%s", log)
				}
				os.Remove(eraseGuardLog(r))
			})

			t.Run("an upgrade rewrote a file with another entry name, then a flush", func(t *testing.T) {
				writeConf(t, r, "oldway.conf", ":oldway-v1:M::OLDWAYV1::/bin/true:")
				defer os.Remove(r.Path("/usr/lib/binfmt.d/oldway.conf"))
				// Registered as systemd-binfmt registered it when the
				// old version was installed.
				if err := fs.RegisterString("oldway-v1", ":oldway-v1:M::OLDWAYV1::/bin/true:"); err != nil {
					t.Fatal(err)
				}
				release := holdRPMLock(t, r)
				out, err := hook()
				if err != nil {
					release()
					t.Fatalf("the hook failed: %v\n%s", err, out)
				}
				// The old-way package's upgrade, later in the
				// transaction, and systemd's trigger for its file.
				writeConf(t, r, "oldway.conf", ":oldway-v2:M::OLDWAYV2::/bin/true:")
				if out, err := r.Chroot("/usr/lib/systemd/systemd-binfmt"); err != nil {
					release()
					t.Fatalf("%v\n%s", err, out)
				}
				release()
				log := waitEraseGuards(t, r)
				if got, err := fs.Raw("admin-entry"); err != nil || string(got) != string(admin) {
					t.Errorf("the administrator's entry is %q (%v), want %q\n%s", got, err, admin, log)
				}
				if _, err := fs.Raw("oldway-v2"); err != nil {
					t.Errorf("the upgraded file's entry is not live: %v\n%s", err, log)
				}
				if raw, err := fs.Raw("oldway-v1"); err == nil {
					t.Errorf("the erase guard put back what the upgraded file no longer defines:\n%s%s", raw, log)
				}
				for _, n := range []string{"oldway-v1", "oldway-v2"} {
					_ = fs.Unregister(n)
				}
				os.Remove(eraseGuardLog(r))
			})
		})
	}
}

// TestEraseGuardHoldsNothingOfTheTransaction: the detached copy keeps no
// descriptor of the scriptlet's but its own four (a pipe rpm or dnf
// reads the scriptlet's output from, given to the hook as fd 5 here, is
// closed in it: the hook's caller sees end of file while the copy still
// waits), and a user who can read rpm's lock file cannot hold the copy
// up: the read lock a user takes on it once rpm lets go is shared with
// the copy's. Both stacks.
func TestEraseGuardHoldsNothingOfTheTransaction(t *testing.T) {
	sandbox.Require(t, "/usr/bin/setpriv", "util-linux")
	sandbox.Require(t, "/usr/bin/python3", "python3")
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			ns := sandbox.Enter(t)
			if ns == nil {
				return
			}
			r, fs := eraseGuardRoot(t, ns, st)
			guardHook(t, r)
			admin, _ := fs.Raw("admin-entry")
			release := holdRPMLock(t, r)
			defer release()
			done := make(chan string, 1)
			go func() {
				out, err := r.Chroot("sh", "-c", "exec 5>&1; exec timeout 60 /opt/guardtest/binfmtctl hook preun --ships-helper gone-pkg-1.0-1 0")
				done <- fmt.Sprint(out, err)
			}()
			select {
			case out := <-done:
				if !strings.Contains(out, "<nil>") {
					t.Errorf("the hook failed: %s", out)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("the hook's output pipe (fd 5) stays open while the erase guard waits: the copy kept it")
			}
			if _, err := os.Stat(eraseGuardLog(r)); err != nil {
				t.Fatalf("no erase guard started: %v", err)
			}

			// A user's read lock, queued behind rpm's write lock.
			lock, err := os.Open(r.Path("/var/lib/rpm/.rpm.lock"))
			if err != nil {
				t.Fatal(err)
			}
			defer lock.Close()
			user := exec.Command("/usr/bin/setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "/usr/bin/python3", "-c",
				"import fcntl,os,time; f=os.fdopen(3); fcntl.lockf(f, fcntl.LOCK_SH); print('locked', flush=True); time.sleep(120)")
			user.ExtraFiles = []*os.File{lock}
			stdout, err := user.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := user.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = user.Process.Kill(); _ = user.Wait() }()
			time.Sleep(200 * time.Millisecond)
			release()
			got := make([]byte, 7)
			if _, err := io.ReadFull(stdout, got); err != nil || string(got) != "locked\n" {
				t.Fatalf("the user's process did not take its read lock: %q %v", got, err)
			}
			start := time.Now()
			log := waitEraseGuards(t, r)
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("the erase guard finished %v after rpm let go, while a user held a read lock", d)
			}
			if !strings.Contains(log, "the table was not flushed: nothing to do") {
				t.Errorf("the guard's log does not say it saw the end of the transaction:%s", log)
			}
			if got, err := fs.Raw("admin-entry"); err != nil || string(got) != string(admin) {
				t.Errorf("the administrator's entry is %q (%v), want %q", got, err, admin)
			}
		})
	}
}

// TestEraseGuardNotOnUpgrade: only the erase of our package starts the
// erase guard. On the old side of an upgrade, a downgrade or a
// reinstall, our %preun gets $1 = 1 and starts nothing, through dnf and
// the rpm CLI, on both stacks, with systemd's trigger flushing in every
// one of those transactions (the helper's own triggers put the
// administrator's entry back).
func TestEraseGuardNotOnUpgrade(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			ns := sandbox.Enter(t)
			if ns == nil {
				return
			}
			r, fs := eraseGuardRoot(t, ns, st)
			admin, _ := fs.Raw("admin-entry")
			cpus := []string{"aarch64"}
			build := nfpmBuilder(t, r)
			v1 := build(t, interpreters(t, cpus, ""), cpus, "1.0")
			v2 := build(t, interpreters(t, cpus, ""), cpus, "2.0")
			if out, err := r.DNF("install", v1); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, tx := range []struct {
				name string
				run  func() (string, error)
			}{
				{"dnf upgrade", func() (string, error) { return r.DNF("install", v2) }},
				{"dnf reinstall", func() (string, error) { return r.DNF("reinstall", v2) }},
				{"dnf downgrade", func() (string, error) { return r.DNF("downgrade", v1) }},
				{"rpm -U", func() (string, error) { return r.RPM("-U", v2) }},
				{"rpm --reinstall", func() (string, error) { return r.RPM("--reinstall", v2) }},
				{"rpm -U --oldpackage", func() (string, error) { return r.RPM("-U", "--oldpackage", v1) }},
			} {
				out, err := tx.run()
				if err != nil {
					t.Fatalf("%s: %v\n%s", tx.name, err, out)
				}
				if _, err := os.Stat(eraseGuardLog(r)); err == nil {
					t.Errorf("%s started an erase guard:\n%s%s", tx.name, out, waitEraseGuards(t, r))
					os.Remove(eraseGuardLog(r))
				}
				if got, err := fs.Raw("admin-entry"); err != nil || string(got) != string(admin) {
					t.Errorf("%s: the administrator's entry is %q (%v), want %q\n%s", tx.name, got, err, admin, out)
				}
			}
		})
	}
}

// TestEraseGuardReplacedEntryOfOurs: an entry of the erased package that
// someone else replaced (another interpreter) is left live by the hook,
// and the package's own binfmt.d file still defines its name at the
// %preun. When it is the only entry no remaining file defines, the hook
// must still start the guard, and the guard puts it back after a flush
// (before the fix no guard started: a file defined the name, and the
// flush took the entry for good). Both stacks.
func TestEraseGuardReplacedEntryOfOurs(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			ns := sandbox.Enter(t)
			if ns == nil {
				return
			}
			r, fs := eraseGuardRoot(t, ns, st)
			hook := guardHook(t, r)
			if err := fs.Unregister("admin-entry"); err != nil {
				t.Fatal(err)
			}
			// The erased package's file, and someone else's entry of
			// that name in place of the package's.
			writeConf(t, r, "gone-pkg.conf", ":gone-entry:M::GONEMAGIC::/bin/true:")
			if err := fs.RegisterString("gone-entry", ":gone-entry:M::GONEMAGIC::/bin/false:"); err != nil {
				t.Fatal(err)
			}
			want, _ := fs.Raw("gone-entry")
			release := holdRPMLock(t, r)
			defer release()
			out, err := hook()
			if err != nil {
				t.Fatalf("the hook failed: %v\n%s", err, out)
			}
			if _, err := os.Stat(eraseGuardLog(r)); err != nil {
				t.Fatalf("no erase guard started for the replaced entry: %v\n%s", err, out)
			}
			// rpm removes the package's file; the transaction installs
			// another package's, and systemd's trigger flushes.
			os.Remove(r.Path("/usr/lib/binfmt.d/gone-pkg.conf"))
			writeConf(t, r, "installed.conf", ":installed:M::INSTALLEDMAGIC::/bin/true:")
			defer os.Remove(r.Path("/usr/lib/binfmt.d/installed.conf"))
			if out, err := r.Chroot("/usr/lib/systemd/systemd-binfmt"); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			release()
			log := waitEraseGuards(t, r)
			if got, err := fs.Raw("gone-entry"); err != nil || string(got) != string(want) {
				t.Errorf("the replaced entry is %q (%v), want %q\n%s%s", got, err, want, out, log)
			}
		})
	}
}

// TestEraseGuardInstallrootHostTable: in a dnf --installroot whose
// scriptlets see the host's own table (the host's /proc in the root, as
// an image build has it) the erase guard never starts, even where the
// root has /run/systemd/system and rpm's lock is held as rpm holds it:
// the host's entries are not the root's to guard or put back. Both
// stacks.
func TestEraseGuardInstallrootHostTable(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			ns := sandbox.Enter(t, sandbox.AtProc())
			if ns == nil {
				return
			}
			r, fs := eraseGuardRoot(t, ns, st)
			if got, err := fs.Raw("admin-entry"); err != nil || ns.BinfmtDir != "/proc/sys/fs/binfmt_misc" {
				t.Fatalf("the root does not see the namespace's own table at /proc: %q %v (%s)", got, err, ns.BinfmtDir)
			}
			hook := guardHook(t, r)
			release := holdRPMLock(t, r)
			defer release()
			out, err := hook()
			if err != nil {
				t.Fatalf("the hook failed: %v\n%s", err, out)
			}
			if strings.Contains(out, "erase guard") || strings.Contains(out, "cannot be registered again") {
				t.Errorf("the hook speaks of guarding the host's table:\n%s", out)
			}
			if _, err := os.Stat(eraseGuardLog(r)); err == nil {
				release()
				t.Errorf("an erase guard started for the host's table:\n%s", waitEraseGuards(t, r))
			}
		})
	}
}
