package binfmtctl_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

// TestNonRootChangesNothing runs the built binfmtctl as an unprivileged
// user (uid 65534) against a table and a record that root set up. Every
// command that would change something fails with one line saying
// "permission denied" and changes nothing, neither in the kernel nor in
// the record; the commands that only read still work and still show who
// owns each entry.
func TestNonRootChangesNothing(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	// Everything the user touches must be reachable by it: the sandbox's
	// own directories are root's alone, and t.TempDir is mode 0700.
	reachable := func(d string) string {
		t.Helper()
		for _, p := range []string{d, filepath.Dir(d)} {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	bin := filepath.Join(reachable(t.TempDir()), "binfmtctl")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "../../cmd/binfmtctl")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building binfmtctl: %v\n%s", err, out)
	}
	bm := reachable(t.TempDir())
	if err := binfmt.Mount(bm); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(bm, unix.MNT_DETACH) })
	root := reachable(t.TempDir())
	writeFile(t, filepath.Join(root, "usr/lib/binfmt.d/p.conf"), ":priv-a:E::pa::/bin/sh:\n")
	writeFile(t, filepath.Join(root, "usr/lib/binfmt.d/q.conf"), ":priv-new:E::pn::/bin/sh:\n")

	// As root: the package's entry with its record, and someone else's
	// entry that prune would remove.
	m := &lifecycle.Manager{
		BinfmtDir: bm,
		Config:    binfmt.Config{Root: root},
		Store:     lifecycle.Store{Dir: filepath.Join(root, lifecycle.DefaultStateDir)},
	}
	if err := m.Converge("pkg-priv", []string{"/usr/lib/binfmt.d/p.conf"}, true); err != nil {
		t.Fatal(err)
	}
	writeRegister(t, bm, ":other-p:E::op::/nonexistent/other-p:")
	snapshot := func() string {
		var b strings.Builder
		for _, d := range []string{bm, m.Store.Dir} {
			ents, err := os.ReadDir(d)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				data, _ := os.ReadFile(filepath.Join(d, e.Name()))
				b.WriteString(e.Name() + "\n" + string(data))
			}
		}
		return b.String()
	}
	before := snapshot()

	asNobody := func(args ...string) result {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--binfmt-dir", bm, "--root", root}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		r := result{stdout: stdout.String(), stderr: stderr.String()}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			r.code = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("running binfmtctl as uid 65534: %v", err)
		}
		return r
	}

	for _, args := range [][]string{
		{"register", "/usr/lib/binfmt.d/q.conf"},
		{"register", "--mount", "q.conf"},
		{"unregister", "priv-a"},
		{"unregister", "other-p"},
		{"disable", "priv-a"},
		{"enable", "other-p"},
		{"hook", "preun", "pkg-priv-1.0-1", "0"},
		{"hook", "postun", "pkg-priv-1.0-1", "0"},
		{"prune", "--apply"},
	} {
		r := asNobody(args...)
		t.Logf("binfmtctl %s as uid 65534: exit %d: %s", strings.Join(args, " "), r.code, strings.TrimSpace(r.stderr))
		oneLineError(t, r, 1, "permission denied")
		// Said once: the hint, not the hint and the errno again.
		if n := strings.Count(r.stderr, "permission denied"); n != 1 {
			t.Errorf("binfmtctl %s as uid 65534 says \"permission denied\" %d times: %q", strings.Join(args, " "), n, r.stderr)
		}
		if now := snapshot(); now != before {
			t.Fatalf("binfmtctl %s as uid 65534 changed the table or the record:\n%s\nwas\n%s", strings.Join(args, " "), now, before)
		}
	}

	// Reading works, owners included.
	r := asNobody("status")
	if r.code != 0 || !strings.Contains(r.stdout, "pkg-priv") || !strings.Contains(r.stdout, "other-p") {
		t.Errorf("status as uid 65534: %s\nwant both entries and the owner pkg-priv", r)
	}
	if r := asNobody("status", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"owner": "pkg-priv"`) {
		t.Errorf("status --json as uid 65534: %s", r)
	}
	if r := asNobody("prune"); r.code != 0 || !strings.Contains(r.stdout, "other-p: would remove") {
		t.Errorf("prune as uid 65534: %s", r)
	}
	if r := asNobody("cat-config"); r.code != 0 || !strings.Contains(r.stdout, ":priv-a:E::pa::/bin/sh:") {
		t.Errorf("cat-config as uid 65534: %s", r)
	}
}
