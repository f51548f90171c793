package lifecycle_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

// manager returns a Manager over a fresh config root, with binfmt.d files
// written from confs, acting on the namespace's binfmt_misc.
func manager(t *testing.T, ns *sandbox.NS, confs map[string]string) (*lifecycle.Manager, []string) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "usr/lib/binfmt.d")
	os.MkdirAll(dir, 0o755)
	var files []string
	for name, content := range confs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, "/usr/lib/binfmt.d/"+name)
	}
	var notices strings.Builder
	t.Cleanup(func() {
		if notices.Len() > 0 {
			t.Logf("notices:\n%s", notices.String())
		}
	})
	return &lifecycle.Manager{
		BinfmtDir: ns.BinfmtDir,
		Config:    binfmt.Config{Root: root},
		Store:     lifecycle.Store{Dir: filepath.Join(root, "var/lib/binfmtctl")},
		Notices:   &syncWriter{w: &notices},
	}, files
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestConvergeIsIdempotent(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	m, files := manager(t, ns, map[string]string{
		"a.conf": ":id-a:M::IDA::/bin/true:F\n:id-b:E::idb::/bin/true:\n",
	})
	for i := 0; i < 3; i++ {
		if err := m.Converge("pkg", files, true); err != nil {
			t.Fatal(err)
		}
	}
	got := table(t, ns.BinfmtDir)
	if len(got) != 2 || got["id-a"] == "" || got["id-b"] == "" {
		t.Fatalf("table after three runs: %v", got)
	}
	c, err := m.Store.Claims("pkg")
	if err != nil || len(c["id-a"]) != 1 || len(c["id-b"]) != 1 {
		t.Fatalf("claims after three runs: %v %v", c, err)
	}
	for i := 0; i < 2; i++ {
		if err := m.Apply(lifecycle.Change{Package: "pkg", Gone: files, Adopt: true}); err != nil {
			t.Fatal(err)
		}
	}
	if got := table(t, ns.BinfmtDir); len(got) != 0 {
		t.Fatalf("table after erase: %v", got)
	}
	if _, err := os.Stat(m.Store.Dir); !os.IsNotExist(err) {
		t.Fatalf("state dir left after erase: %v", err)
	}
}

func TestStalePinIsReportedAndRepinned(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	// The interpreter must live where the kernel sees it; a root-owned
	// directory under the namespace's scratch space will do.
	bin := ns.TempDir()
	interp := filepath.Join(bin, "interp")
	data, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(interp, data, 0o755)
	m, files := manager(t, ns, map[string]string{"p.conf": fmt.Sprintf(":pin:M::PIN::%s:F\n", interp)})
	if err := m.Converge("pkg", files, true); err != nil {
		t.Fatal(err)
	}
	r, err := m.Status("pin")
	if err != nil || r.Entries[0].StalePin {
		t.Fatalf("fresh entry: %+v %v", r, err)
	}
	// Replace the interpreter the way rpm does: a new inode renamed over
	// the old one. The kernel keeps running the old, deleted one.
	time.Sleep(20 * time.Millisecond)
	tmp := interp + ".new"
	os.WriteFile(tmp, append(data, 0), 0o755)
	if err := os.Rename(tmp, interp); err != nil {
		t.Fatal(err)
	}
	r, _ = m.Status("pin")
	if !r.Entries[0].StalePin || r.Entries[0].Owner != "pkg" {
		t.Fatalf("replaced interpreter not reported as a stale pin: %+v", r.Entries[0])
	}
	findings, err := m.Prune(false)
	if err != nil || len(findings) != 1 || !strings.Contains(findings[0].Reasons[0], "pins an older file") {
		t.Fatalf("prune: %+v %v", findings, err)
	}
	if err := m.Converge("pkg", files, true); err != nil {
		t.Fatal(err)
	}
	if r, _ = m.Status("pin"); r.Entries[0].StalePin {
		t.Fatalf("still a stale pin after the hook re-registered it: %+v", r.Entries[0])
	}
}

func TestConcurrentHooks(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	confs := func(prefix string) map[string]string {
		c := map[string]string{}
		for i := 0; i < 20; i++ {
			c[fmt.Sprintf("%s%02d.conf", prefix, i)] = fmt.Sprintf(":%s%02d:M::%s%02d::/bin/true:\n", prefix, i, strings.ToUpper(prefix), i)
		}
		return c
	}
	all := confs("x")
	for k, v := range confs("y") {
		all[k] = v
	}
	m, files := manager(t, ns, all)
	var xs, ys []string
	for _, f := range files {
		if strings.Contains(f, "/x") {
			xs = append(xs, f)
		} else {
			ys = append(ys, f)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for _, job := range []struct {
		pkg   string
		files []string
	}{{"pkg-x", xs}, {"pkg-y", ys}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if err := m.Converge(job.pkg, job.files, true); err != nil {
					errs <- err
				}
				if err := m.Apply(lifecycle.Change{Package: job.pkg, Gone: job.files, Adopt: true}); err != nil {
					errs <- err
				}
			}
			if err := m.Converge(job.pkg, job.files, true); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := table(t, ns.BinfmtDir)
	if len(got) != 40 {
		t.Fatalf("want 40 entries after concurrent hooks, got %d", len(got))
	}
	for _, pkg := range []string{"pkg-x", "pkg-y"} {
		c, err := m.Store.Claims(pkg)
		if err != nil || len(c) != 20 {
			t.Fatalf("%s claims %d entries (%v), want 20", pkg, len(c), err)
		}
		for name, defs := range c {
			if len(defs) != 1 {
				t.Fatalf("%s has %d claims for %s, want 1", pkg, len(defs), name)
			}
		}
	}
}

// TestConvergeSkipsUnchangedRecord checks that a run which would write
// the record's own bytes again leaves the file alone (each write costs
// two fsyncs inside the transaction), and that a change is written.
func TestConvergeSkipsUnchangedRecord(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	m, files := manager(t, ns, map[string]string{"a.conf": ":skip-a:M::SKA::/bin/true:F\n"})
	record := filepath.Join(m.Store.Dir, "pkg")
	// A rewrite makes a new file, with a new modification time to the
	// nanosecond. (The inode number alone can come back: the second of
	// two writes may get the number the first one freed.)
	inode := func() string {
		t.Helper()
		fi, err := os.Stat(record)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("inode %d, mtime %d", fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime().UnixNano())
	}
	if err := m.Converge("pkg", files, true); err != nil {
		t.Fatal(err)
	}
	first := inode()
	// A reinstall registers the entry again (repin) and claims the same.
	if err := m.Converge("pkg", files, true); err != nil {
		t.Fatal(err)
	}
	if got := inode(); got != first {
		t.Errorf("a reinstall that changes nothing rewrote the record (%s, was %s)", got, first)
	}
	if got := table(t, ns.BinfmtDir); got["skip-a"] == "" {
		t.Fatalf("table after the reinstall: %v", got)
	}
	// An upgrade that changes the definition writes the new one.
	os.WriteFile(filepath.Join(m.Config.Root, "usr/lib/binfmt.d/a.conf"), []byte(":skip-a:M::SKB::/bin/true:F\n"), 0o644)
	if err := m.Converge("pkg", files, true); err != nil {
		t.Fatal(err)
	}
	c, err := m.Store.Claims("pkg")
	if err != nil || len(c["skip-a"]) != 1 || string(c["skip-a"][0].Magic) != "SKB" {
		t.Errorf("claims after the upgrade: %v, %v; want skip-a with magic SKB alone", c, err)
	}
}

// TestOrderMatchesSystemdBinfmt checks issue 16's point 8 against the real
// systemd-binfmt: a package shipping /etc/binfmt.d/z-ord.conf and
// /usr/lib/binfmt.d/a-ord.conf, both defining one entry, gets the
// definition systemd-binfmt registers at boot, z-ord.conf's, because
// systemd applies files sorted by name across directories; and a name
// defined twice in one file keeps the later line, as the later write
// wins there.
func TestOrderMatchesSystemdBinfmt(t *testing.T) {
	const systemdBinfmt = "/usr/lib/systemd/systemd-binfmt"
	sandbox.Require(t, systemdBinfmt, "systemd")
	ns := sandbox.Enter(t, sandbox.AtProc())
	if ns == nil {
		return
	}
	for _, d := range binfmt.ConfigDirs {
		ns.Tmpfs(d)
	}
	confs := map[string]string{
		"/etc/binfmt.d/z-ord.conf":     ":ord:M::ORDZ::/bin/true:\n:twice:E::tw1::/bin/true:\n:twice:E::tw2::/bin/true:\n",
		"/usr/lib/binfmt.d/a-ord.conf": ":ord:M::ORDA::/bin/true:\n:only-a:E::oa::/bin/true:\n",
	}
	var files []string
	for p, c := range confs {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	// rpm lists a package's files sorted by path: /etc first.
	sort.Strings(files)
	m := &lifecycle.Manager{BinfmtDir: ns.BinfmtDir, Store: lifecycle.Store{Dir: filepath.Join(ns.TempDir(), "binfmtctl")}}
	if err := m.Converge("pkg-ord", files, true); err != nil {
		t.Fatal(err)
	}
	ours := table(t, ns.BinfmtDir)
	clearEntries(t, ns.BinfmtDir, "ord", "twice", "only-a")
	// Without arguments, as at boot: every file, in systemd's order.
	out, err := exec.Command(systemdBinfmt).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-binfmt: %v\n%s", err, out)
	}
	boot := table(t, ns.BinfmtDir)
	if !strings.Contains(ours["ord"], "magic 4f52445a") {
		t.Errorf("the hook registered ord as\n%s\nwant z-ord.conf's (magic ORDZ)", ours["ord"])
	}
	if fmt.Sprint(ours) != fmt.Sprint(boot) {
		t.Errorf("the hook's table differs from systemd-binfmt's at boot:\nhook:\n%v\nsystemd-binfmt:\n%v", ours, boot)
	}
}
