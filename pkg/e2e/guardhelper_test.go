package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// guardHelperAt is guardHelper with the guard's transaction triggers at
// the priorities prio gives: an rpm that runs file triggers out of their
// priority order runs the real ones in that order.
func guardHelperAt(t *testing.T, prio func(int) int) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "binfmtctl")
	if out, err := exec.Command("go", "build", "-trimpath", "-o", bin, "../../cmd/binfmtctl").CombinedOutput(); err != nil {
		t.Fatalf("building binfmtctl: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join("../..", assemble.DefaultTriggers))
	if err != nil {
		t.Fatal(err)
	}
	decl, err := assemble.ParseTriggers(assemble.DefaultTriggers, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := sandbox.PackageSpec{Name: "binfmtctl", Version: "1.0", Arch: "x86_64",
		Files: []sandbox.File{{Dst: "/usr/bin/binfmtctl", Src: bin, Mode: 0o755}}}
	for _, d := range decl {
		body, err := os.ReadFile(filepath.Join("../..", d.Script))
		if err != nil {
			t.Fatal(err)
		}
		pr := int(d.Priority)
		if d.Kind == "transfiletriggerin" {
			pr = prio(pr)
		}
		p.Triggers = append(p.Triggers, sandbox.Trigger{Kind: d.Kind, Priority: pr, Interpreter: d.Prog, Paths: d.Prefixes, Body: string(body)})
	}
	return sandbox.BuildRPM(t, p)
}

// guardRoot makes a Fedora-like root for the guard tests: the host's
// binfmt.d files hidden, systemd booted, systemd's binfmt trigger and the
// helper package installed, and an administrator's disabled entry
// registered. It returns the root, its binfmt_misc and that entry's
// bytes, which every step must leave as they are.
func guardRoot(t *testing.T, ns *sandbox.NS, st sandbox.Stack, trigger, helper string) (*sandbox.Root, *binfmt.FS, []byte) {
	t.Helper()
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
	for _, p := range []string{trigger, helper} {
		if out, err := r.DNF("install", p); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	fs := &binfmt.FS{Dir: r.BinfmtDir}
	if err := fs.RegisterString("admin-entry", ":admin-entry:M::ADMINMAGIC::/bin/true:"); err != nil {
		t.Fatal(err)
	}
	if err := fs.Disable("admin-entry"); err != nil {
		t.Fatal(err)
	}
	want, _ := fs.Raw("admin-entry")
	return r, fs, want
}
