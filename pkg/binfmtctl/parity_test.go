package binfmtctl_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

const systemdBinfmt = "/lib/systemd/systemd-binfmt"

// configDirs are systemd-binfmt's directories, in its order.
var configDirs = []string{"/etc/binfmt.d", "/run/binfmt.d", "/usr/local/lib/binfmt.d", "/usr/lib/binfmt.d"}

// parityOutEnv carries the parent's result directory into the sandboxed
// children, which inherit the parent's environment.
const parityOutEnv = "BINFMTCTL_PARITY_OUT"

// parityCase is one set of binfmt.d directories and the arguments given
// to both tools.
type parityCase struct {
	name string
	// tree holds etc/binfmt.d, run/binfmt.d, usr/local/lib/binfmt.d and
	// usr/lib/binfmt.d; a missing one is empty. With hostUsrLib, the
	// machine's own /usr/lib/binfmt.d is used as it is.
	tree       string
	hostUsrLib bool
	args       []string
}

func parityCases(t *testing.T) []parityCase {
	t.Helper()
	var cases []parityCase

	// Every *.conf the machine ships, by bare name.
	ents, err := os.ReadDir("/usr/lib/binfmt.d")
	if err != nil {
		t.Fatalf("reading the machine's /usr/lib/binfmt.d (install qemu-user-static: apt-get install -y qemu-user-static): %v", err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".conf") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatalf("no *.conf in /usr/lib/binfmt.d: install qemu-user-static (apt-get install -y qemu-user-static)")
	}
	cases = append(cases, parityCase{name: "machine", hostUsrLib: true, args: names})

	// The project's corpus: testdata/binfmt/parity/<case>/ with an args
	// file, one argument a line.
	base := filepath.Join("..", "..", "testdata", "binfmt", "parity")
	dirs, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		tree, err := filepath.Abs(filepath.Join(base, d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		args, err := os.ReadFile(filepath.Join(tree, "args"))
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, parityCase{name: d.Name(), tree: tree, args: strings.Fields(string(args))})
	}
	return cases
}

// TestParityWithSystemdBinfmt registers the same files once with
// systemd-binfmt and once with binfmtctl register, each in a fresh private
// binfmt_misc at /proc/sys/fs/binfmt_misc with its own binfmt.d
// directories, and checks that the kernel ends up with the same entries,
// byte for byte, and that both tools agree on whether anything failed.
// It does so for each stack's systemd-binfmt: the host's (systemd 252,
// subtest systemd-binfmt) and Debian sid's (systemd 262, subtest
// systemd-binfmt-sid), which reads the same directories.
func TestParityWithSystemdBinfmt(t *testing.T) {
	sandbox.Require(t, systemdBinfmt, "systemd")
	sandbox.Require(t, "/usr/bin/qemu-aarch64-static", "qemu-user-static")
	systemds := map[string]sandbox.Stack{}
	var tools []string
	for _, st := range sandbox.Stacks(t) {
		tool := "systemd-binfmt"
		if st.Name != "host" {
			tool += "-" + st.Name
		}
		systemds[tool] = st
		tools = append(tools, tool)
	}
	tools = append(tools, "binfmtctl")
	for _, c := range parityCases(t) {
		t.Run(c.name, func(t *testing.T) {
			// The parent picks the result directory; a child keeps the
			// one it inherited.
			if os.Getenv(parityOutEnv) == "" {
				t.Setenv(parityOutEnv, t.TempDir())
			}
			out := os.Getenv(parityOutEnv)
			ran := map[string]bool{}
			for _, tool := range tools {
				t.Run(tool, func(t *testing.T) {
					ns := sandbox.Enter(t, sandbox.AtProc())
					if ns == nil {
						ran[tool] = !t.Failed() && !t.Skipped()
						return
					}
					applyInNamespace(t, ns, c, tool, systemds[tool], filepath.Join(out, tool))
				})
			}
			// Only the parent saw the tools run.
			for _, tool := range tools[:len(tools)-1] {
				if ran[tool] && ran["binfmtctl"] {
					compareParity(t, tool, filepath.Join(out, tool), filepath.Join(out, "binfmtctl"))
				}
			}
		})
	}
}

// applyInNamespace lays the case's binfmt.d directories out, runs the
// tool, and records the table it leaves in out.
func applyInNamespace(t *testing.T, ns *sandbox.NS, c parityCase, tool string, st sandbox.Stack, out string) {
	for _, d := range configDirs {
		if c.hostUsrLib && d == "/usr/lib/binfmt.d" {
			continue
		}
		ns.Tmpfs(d)
		if c.tree != "" {
			copyTree(t, filepath.Join(c.tree, d), d)
		}
	}
	var log []byte
	failed := false
	switch tool {
	default: // a stack's systemd-binfmt
		// Always with arguments: without them systemd-binfmt first
		// removes every entry. Stack.Command runs sid's with sid's
		// libraries but in this namespace's file system, so it reads
		// the same binfmt.d directories as the host's.
		cmd, err := st.Command(st.SystemdBinfmt, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=debug", "SYSTEMD_LOG_TARGET=console")
		log, err = cmd.CombinedOutput()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatalf("running %s of the %s stack: %v", st.SystemdBinfmt, st.Name, err)
		}
		failed = err != nil
	case "binfmtctl":
		args := append([]string{"--state-dir", t.TempDir(), "register"}, c.args...)
		r := run(args...)
		log = []byte(r.String())
		failed = r.code != 0
		if r.code > 1 {
			t.Fatalf("binfmtctl register: %s", r)
		}
		checkIdempotent(t, c, r)
	}
	t.Logf("%s %s:\n%s", tool, strings.Join(c.args, " "), log)

	entries := filepath.Join(out, "entries")
	if err := os.MkdirAll(entries, 0o755); err != nil {
		t.Fatal(err)
	}
	names := liveNames(t, "/proc/sys/fs/binfmt_misc")
	for _, n := range append(names, "status") {
		b := readFile(t, filepath.Join("/proc/sys/fs/binfmt_misc", n))
		if err := os.WriteFile(filepath.Join(entries, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(out, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("order", strings.Join(names, " "))
	write("failed", fmt.Sprint(failed))
	write("log", string(log))
}

// checkIdempotent runs binfmtctl register a second time: every entry
// defined once by the arguments must then be "unchanged", which holds only
// if binfmtctl reads the live entries exactly as the kernel parsed them.
func checkIdempotent(t *testing.T, c parityCase, first result) {
	t.Helper()
	before := map[string][]byte{}
	for _, n := range liveNames(t, "/proc/sys/fs/binfmt_misc") {
		before[n] = readFile(t, filepath.Join("/proc/sys/fs/binfmt_misc", n))
	}
	count := map[string]int{}
	for _, l := range strings.Split(first.stdout, "\n") {
		if name, _, ok := strings.Cut(l, ": "); ok {
			count[name]++
		}
	}
	second := run(append([]string{"--state-dir", t.TempDir(), "register"}, c.args...)...)
	for _, l := range strings.Split(second.stdout, "\n") {
		name, rest, ok := strings.Cut(l, ": ")
		if !ok || count[name] != 1 || strings.HasPrefix(rest, "masked") {
			continue
		}
		if !strings.HasPrefix(rest, "unchanged") {
			t.Errorf("registering the same files again: %q, want unchanged (entry file:\n%s)", l, before[name])
		}
	}
}

// liveNames lists the entry files in directory order (newest first).
func liveNames(t *testing.T, dir string) []string {
	t.Helper()
	names, err := (&binfmt.FS{Dir: dir}).Names()
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// copyTree copies the files and symlinks below src into dst, if src
// exists.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == src && os.IsNotExist(err) {
				return filepath.SkipDir
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		}
	})
	if err != nil {
		t.Fatalf("copying %s to %s: %v", src, dst, err)
	}
}

// compareParity compares what the systemd-binfmt called label left in sd
// with what binfmtctl left in bc.
func compareParity(t *testing.T, label, sd, bc string) {
	t.Helper()
	load := func(dir string) map[string][]byte {
		out := map[string][]byte{}
		ents, err := os.ReadDir(filepath.Join(dir, "entries"))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			out[e.Name()] = readFile(t, filepath.Join(dir, "entries", e.Name()))
		}
		return out
	}
	want, got := load(sd), load(bc)
	var all []string
	for n := range want {
		all = append(all, n)
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			all = append(all, n)
		}
	}
	sort.Strings(all)
	diffs := 0
	for _, n := range all {
		w, inW := want[n]
		g, inG := got[n]
		switch {
		case !inG:
			t.Errorf("entry %q: registered by %s, not by binfmtctl:\n%s", abbrev(n), label, w)
		case !inW:
			t.Errorf("entry %q: registered by binfmtctl, not by %s:\n%s", abbrev(n), label, g)
		case !bytes.Equal(w, g):
			t.Errorf("entry %q differs:\n%s:\n%s\nbinfmtctl:\n%s", abbrev(n), label, w, g)
		default:
			continue
		}
		diffs++
	}
	wf, gf := string(readFile(t, filepath.Join(sd, "failed"))), string(readFile(t, filepath.Join(bc, "failed")))
	if wf != gf {
		t.Errorf("%s failed: %s, binfmtctl failed: %s; want both to report the same", label, wf, gf)
		diffs++
	}
	// The kernel tries the newest entry first; binfmtctl leaves an
	// identical entry in place where systemd-binfmt re-registers it, so
	// only the order of the entries both registered once can be compared.
	wo := strings.Fields(string(readFile(t, filepath.Join(sd, "order"))))
	go_ := strings.Fields(string(readFile(t, filepath.Join(bc, "order"))))
	if !slices.Equal(wo, go_) {
		t.Logf("registration order differs (newest first):\n%s: %q\nbinfmtctl: %q", label, wo, go_)
	}
	if diffs > 0 {
		t.Logf("%s log:\n%s", label, readFile(t, filepath.Join(sd, "log")))
		t.Logf("binfmtctl log:\n%s", readFile(t, filepath.Join(bc, "log")))
	}
	if len(want) < 2 && diffs == 0 {
		t.Logf("note: only %d entry files compared", len(want))
	}
}

func abbrev(s string) string {
	if len(s) > 40 {
		return s[:20] + "…" + s[len(s)-10:]
	}
	return s
}
