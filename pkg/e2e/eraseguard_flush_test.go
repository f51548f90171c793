package e2e

import (
	"os"
	"strings"
	"testing"

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
//     guard must not register it again (before R2's fix it did: every
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
