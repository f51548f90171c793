package lifecycle_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

// Helpers shared by the fault, safety and load tests. They run programs in
// a sandbox.Root the way rpm runs scriptlets (chrooted, root's fixed
// environment) but also let a test add environment variables, switch to
// another user, and see how a program ended, SIGKILL included.

// rootEnv is the environment sandbox.Root gives everything it runs.
var rootEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C.UTF-8"}

// nobody is the unprivileged user the tests switch to.
var nobody = &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}

// outcome is how one program run ended.
type outcome struct {
	out    string
	code   int            // exit code; -1 when killed by a signal
	signal syscall.Signal // the signal that killed it, or 0
}

func (o outcome) String() string {
	if o.signal != 0 {
		return fmt.Sprintf("killed by %v\n%s", o.signal, o.out)
	}
	return fmt.Sprintf("exit %d\n%s", o.code, o.out)
}

// runIn runs the program at path (inside the root) chrooted in r, with
// rootEnv plus env, as cred (nil for root).
func runIn(t *testing.T, r *sandbox.Root, cred *syscall.Credential, env []string, path string, args ...string) outcome {
	t.Helper()
	cmd := &exec.Cmd{
		Path:        path,
		Args:        append([]string{path}, args...),
		Dir:         "/",
		Env:         append(append([]string{}, rootEnv...), env...),
		SysProcAttr: &syscall.SysProcAttr{Chroot: r.Dir, Credential: cred},
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	o := outcome{out: out.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		o.code = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			o.signal = ws.Signal()
		}
	default:
		t.Fatalf("running %s %q in %s: %v", path, args, r.Dir, err)
	}
	return o
}

// dnfEnv runs dnf on r like Root.DNF, with env added to the environment
// that rpm hands down to the scriptlets: on the host, dnf 4 from outside
// with --installroot; on sid, dnf5 chrooted in the root (it has no
// --disablerepo=* there: dnf5 refuses a pattern that matches nothing),
// with the packages named by host paths imported first.
func dnfEnv(t *testing.T, r *sandbox.Root, env []string, args ...string) (string, error) {
	t.Helper()
	opts := []string{"-y", "--releasever=0", "--setopt=reposdir=/dev/null", "--setopt=install_weak_deps=False"}
	var cmd *exec.Cmd
	if r.Stack.Chrooted() {
		for i, a := range args {
			args[i] = r.Import(a)
		}
		full := append(opts, args...)
		cmd = &exec.Cmd{Path: r.Stack.DNF, Args: append([]string{r.Stack.DNF}, full...), Dir: "/",
			SysProcAttr: &syscall.SysProcAttr{Chroot: r.Dir}}
	} else {
		full := append(append(opts, "--installroot="+r.Dir, "--disablerepo=*"), args...)
		cmd = exec.Command(r.Stack.DNF, full...)
	}
	cmd.Env = append(append([]string{}, rootEnv...), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("dnf %s with %q: %w", strings.Join(args, " "), env, err)
	}
	return string(out), nil
}

// buildHelperTags builds binfmtctl with build tags, e.g. "crashpoint".
func buildHelperTags(t *testing.T, tags string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "binfmtctl")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", tags, "-o", out, "../../cmd/binfmtctl")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building binfmtctl -tags %s: %v\n%s", tags, err, b)
	}
	return out
}

// entries renders register strings into the entry files the kernel shows.
func entries(t *testing.T, lines ...string) map[string]string {
	t.Helper()
	return want(t, nil, lines...)
}

// merge returns the union of tables.
func merge(tables ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, tb := range tables {
		for k, v := range tb {
			out[k] = v
		}
	}
	return out
}

// checkRecord checks that pkg's record in dir claims exactly want (name to
// entry file), one definition per name, and parses without an error. An
// empty want means no record file at all.
func checkRecord(t *testing.T, step, dir, pkg string, want map[string]string) {
	t.Helper()
	p := filepath.Join(dir, pkg)
	if len(want) == 0 {
		if _, err := os.Lstat(p); err == nil {
			data, _ := os.ReadFile(p)
			t.Fatalf("after %s, %s should have no record, but %s holds\n%s", step, pkg, p, data)
		}
		return
	}
	c, err := lifecycle.Store{Dir: dir}.Claims(pkg)
	if err != nil {
		t.Fatalf("after %s, reading the record of %s: %v", step, pkg, err)
	}
	var diffs []string
	for n, defs := range c {
		switch {
		case len(defs) != 1:
			diffs = append(diffs, fmt.Sprintf("%d claims for %s", len(defs), n))
		case want[n] == "":
			diffs = append(diffs, fmt.Sprintf("stray claim %s:\n%s", n, defs[0].Status()))
		case defs[0].Status() != want[n]:
			diffs = append(diffs, fmt.Sprintf("claim %s is\n%s\nwant\n%s", n, defs[0].Status(), want[n]))
		}
	}
	for n := range want {
		if _, ok := c[n]; !ok {
			diffs = append(diffs, "no claim for "+n)
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Fatalf("after %s, the record of %s is wrong:\n%s", step, pkg, strings.Join(diffs, "\n"))
	}
}

// checkClaimed checks the property every crash must keep: the record of
// pkg parses, and each live entry called one of names is claimed by it.
// That is what lets a rerun of the hook converge.
func checkClaimed(t *testing.T, step, bm, dir, pkg string, names []string) {
	t.Helper()
	c, err := lifecycle.Store{Dir: dir}.Claims(pkg)
	if err != nil {
		t.Fatalf("after %s, the record of %s does not read back: %v", step, pkg, err)
	}
	fs := &binfmt.FS{Dir: bm}
	for _, n := range names {
		live, err := fs.Entry(n)
		if errors.Is(err, binfmt.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !c.Owns(live) {
			t.Fatalf("after %s, entry %s is live but the record of %s does not claim it: a rerun would leave it behind", step, n, pkg)
		}
	}
}

// notices returns the lines of out that binfmtctl or the scriptlets
// printed for the user.
func notices(out string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "binfmtctl: ") {
			ls = append(ls, strings.TrimSpace(l))
		}
	}
	return ls
}

// oneNotice checks that out holds exactly one line from binfmtctl and that
// it contains each of parts.
func oneNotice(t *testing.T, step, out string, parts ...string) {
	t.Helper()
	ns := notices(out)
	t.Logf("%s, the user reads:\n%s", step, strings.Join(ns, "\n"))
	if len(ns) != 1 {
		t.Errorf("after %s, want one line of explanation, got %d:\n%s\n--- output:\n%s", step, len(ns), strings.Join(ns, "\n"), out)
		return
	}
	for _, p := range parts {
		if !strings.Contains(ns[0], p) {
			t.Errorf("after %s, the explanation %q does not say %q", step, ns[0], p)
		}
	}
}

// clearEntries unregisters the named entries that are live.
func clearEntries(t *testing.T, bm string, names ...string) {
	t.Helper()
	fs := &binfmt.FS{Dir: bm}
	for _, n := range names {
		if err := fs.Unregister(n); err != nil && !errors.Is(err, binfmt.ErrNotFound) {
			t.Fatal(err)
		}
	}
}

// copyFile copies src to dst with mode.
func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		t.Fatal(err)
	}
}
