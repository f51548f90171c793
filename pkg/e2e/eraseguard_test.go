package e2e

import (
	"fmt"
	"os"
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
