package lifecycle_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

// manifestOf is a Querier that knows one installed package.
type manifestOf lifecycle.Manifest

func (q manifestOf) Manifest(nevra string) (lifecycle.Manifest, error) {
	if nevra != q.NEVRA {
		return lifecycle.Manifest{}, lifecycle.ErrNotInstalled
	}
	return lifecycle.Manifest(q), nil
}

func (q manifestOf) Installed(name string) ([]lifecycle.Manifest, error) {
	if name != q.Name {
		return nil, nil
	}
	return []lifecycle.Manifest{lifecycle.Manifest(q)}, nil
}

func (q manifestOf) Owners(paths []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, p := range paths {
		out[p] = []string{}
		for _, f := range q.Files {
			if f == p {
				out[p] = []string{q.Name}
			}
		}
	}
	return out, nil
}

// TestHookRefusesNativeEntries runs the post hook and sync of a package
// whose binfmt.d file defines an entry matching every native executable
// ("\x7fELF") and one matching its own interpreter: on the real kernel
// neither is registered, the hook says why and still succeeds (the
// transaction goes on), and the package's harmless entry is registered.
func TestHookRefusesNativeEntries(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	bin := ns.TempDir()
	loop := filepath.Join(bin, "loop-interp")
	if err := os.WriteFile(loop, []byte("#!LOOP\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m, files := manager(t, ns, map[string]string{
		"brick.conf": ":any-elf:M::\\x7fELF::/bin/true:\n:loop:M::#!LOOP::" + loop + ":\n:harmless:E::hl::/bin/sh:\n",
	})
	var notices strings.Builder
	m.Notices = &notices
	m.RPM = manifestOf{Name: "brick", NEVRA: "brick-1-1.noarch", Files: files}
	for _, step := range []struct {
		name string
		run  func() error
	}{
		{"hook post", func() error { return m.Hook(lifecycle.Post, "brick-1-1.noarch", 1) }},
		{"sync", func() error { return m.Sync("brick") }},
	} {
		notices.Reset()
		if err := step.run(); err != nil {
			t.Fatalf("%s: %v, want success: the transaction must go on", step.name, err)
		}
		for _, want := range []string{
			`entry "any-elf" matches binfmtctl's own file /proc/self/exe: the entry would run the host's own programs through /bin/true`,
			`entry "loop" matches its own interpreter ` + loop + `: the entry would run the host's own programs`,
		} {
			if !strings.Contains(notices.String(), want) {
				t.Errorf("%s: notices lack %q:\n%s", step.name, want, notices.String())
			}
		}
		for _, n := range []string{"any-elf", "loop"} {
			if _, err := os.Stat(filepath.Join(ns.BinfmtDir, n)); !os.IsNotExist(err) {
				t.Errorf("%s: %s is registered (%v)", step.name, n, err)
			}
		}
		if _, err := os.Stat(filepath.Join(ns.BinfmtDir, "harmless")); err != nil {
			t.Errorf("%s: the harmless entry is not registered: %v", step.name, err)
		}
	}
}

// TestNativeEntryThroughDNF installs, with real dnf and the package's
// real scriptlets, a package whose binfmt.d file has the host's own ELF
// form, as the x86-64 conf on an x86_64 host: the transaction
// succeeds, the user is told why the entry was refused, programs still
// run, and the package's other entry is registered and later removed.
//
// It runs on each stack (subtests host and sid): rpm 4.18 and dnf 4, and
// Debian sid's rpm 6.1 and dnf5.
func TestNativeEntryThroughDNF(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { nativeEntryThroughDNF(t, st) })
	}
}

func nativeEntryThroughDNF(t *testing.T, st sandbox.Stack) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	helper := buildHelper(t)
	r := ns.DNFRootOn(st)
	head, err := os.ReadFile("/bin/true")
	if err != nil || len(head) < 20 {
		t.Fatalf("reading /bin/true's ELF header: %v", err)
	}
	// qemu-binfmt-conf.sh's form for the host: its class, byte order and
	// machine, e_type 2 or 3 (mask 0xfe), the OS ABI open.
	magic := append(append([]byte{}, head[:7]...), make([]byte, 9)...)
	magic = append(magic, 2, 0, head[18], head[19])
	mask := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff}
	p := testPkg{name: "pkg-native", version: "1.0", self: true}
	host := binfmt.Entry{Name: "host-native", Type: binfmt.TypeMagic, Magic: magic, Mask: mask, Interpreter: p.interp(), Flags: "F"}
	p.confs = map[string]string{"native.conf": host.RegisterString() + "\n", "ok.conf": ":native-ok:E::nok::" + p.interp() + ":\n"}
	rpm := p.build(t, helper)
	out := must(t, "dnf install")(r.DNF("install", rpm))
	if !strings.Contains(out, `entry "host-native" matches`) || !strings.Contains(out, "the entry would run the host's own programs") {
		t.Errorf("dnf install does not say why host-native was refused:\n%s", out)
	}
	tbl := table(t, r.BinfmtDir)
	if _, ok := tbl["host-native"]; ok {
		t.Fatalf("host-native is registered:\n%s", out)
	}
	if _, ok := tbl["native-ok"]; !ok {
		t.Fatalf("native-ok is not registered:\n%s", out)
	}
	if o, err := r.Chroot("/bin/true"); err != nil {
		t.Fatalf("running a native program after the install: %v\n%s", err, o)
	}
	out = must(t, "dnf remove")(r.DNF("remove", p.name))
	if _, ok := table(t, r.BinfmtDir)["native-ok"]; ok {
		t.Fatalf("native-ok is still registered after dnf remove:\n%s", out)
	}
}
