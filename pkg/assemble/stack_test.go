package assemble_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/buildtool"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// stack is one rpm/dnf stack the packages must work on. Everything that
// differs between stacks is here: the rpm that reads the files (-K, -qp),
// and the disposable root whose DNF and RPM install them (its dnf command
// and database path are the root's). Another stack (rpm 6.1 and dnf5 in a
// Debian sid root) is one more entry.
type stack struct {
	name string
	rpm  string
	root func(*sandbox.NS) *sandbox.Root
}

var stacks = []stack{
	{name: "host", rpm: "/usr/bin/rpm", root: (*sandbox.NS).DNFRoot},
}

// TestPackagesOnStack checks both packages with each stack's rpm: rpm -K,
// the dependency queries, inspect, and an install, verify and erase in a
// disposable root.
func TestPackagesOnStack(t *testing.T) {
	needInterpreters(t, "s390x", "aarch64")
	for _, st := range stacks {
		sandbox.Require(t, st.rpm, "rpm")
	}
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	res := build(t, assemble.Options{CPUs: []string{"s390x", "aarch64"}, Version: "1.0", Release: "1", Compression: "fast"})
	helperPkg, main := res.Packages[0].Path, res.Path
	const evr = "1.0-1"
	// The helper's file triggers (spec/triggers.yaml) are in both
	// packages: the shell ones require /bin/sh, the Lua ones rpm's Lua.
	rpmlib := "rpmlib(BuiltinLuaScripts) <= 4.2.2-1\nrpmlib(CompressedFileNames) <= 3.0.4-1\nrpmlib(FileDigests) <= 4.6.0-1\nrpmlib(PayloadFilesHavePrefix) <= 4.0-1\n" +
		"rpmlib(PayloadIsZstd) <= 5.4.18-1\nrpmlib(RichDependencies) <= 4.12.0-1\n"
	macros := "rpm_macro(binfmtctl_post)\nrpm_macro(binfmtctl_postun)\nrpm_macro(binfmtctl_preun)\nrpm_macro(binfmtctl_requires)\n"
	want := map[string]map[string]string{
		helperPkg: {
			"--requires":  "(qemu-user-static-go = " + evr + " if qemu-user-static-go)\n/bin/sh\n" + rpmlib,
			"--provides":  "binfmtctl = " + evr + "\nbinfmtctl(x86-64) = " + evr + "\n" + macros,
			"--conflicts": "",
		},
		main: {
			"--requires":  "(binfmtctl = " + evr + " if binfmtctl)\n/bin/sh\n/bin/sh\n/bin/sh\n/bin/sh\n" + rpmlib,
			"--provides":  "qemu-user-static-go = " + evr + "\nqemu-user-static-go(x86-64) = " + evr + "\n" + macros,
			"--conflicts": "qemu-user-binfmt\nqemu-user-static\nqemu-user-static-aarch64\nqemu-user-static-s390x\n",
		},
	}
	for _, st := range stacks {
		t.Run(st.name, func(t *testing.T) {
			for _, p := range []string{helperPkg, main} {
				out, err := exec.Command(st.rpm, "-K", p).CombinedOutput()
				if err != nil || !strings.HasSuffix(string(out), ": digests OK\n") {
					t.Errorf("%s -K %s: %v\n%s", st.rpm, p, err, out)
				}
				for q, w := range want[p] {
					out, err := exec.Command(st.rpm, "-qp", q, p).CombinedOutput()
					if err != nil || string(out) != w {
						t.Errorf("%s -qp %s %s: %v\n%s\nwant:\n%s", st.rpm, q, p, err, out, w)
					}
				}
				// The build-time contexts: Requires(post) and friends.
				if p == main {
					out, err := exec.Command(st.rpm, "-qp", "--qf", "[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\n]", p).CombinedOutput()
					if err != nil || !strings.Contains(string(out), "/bin/sh post,interp\n/bin/sh preun,interp\n/bin/sh postun,interp\n") {
						t.Errorf("%s: the scriptlets' /bin/sh is not required in context: %v\n%s", p, err, out)
					}
				}
				var stdout, stderr bytes.Buffer
				if code := buildtool.Run([]string{"inspect", p}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "lint: no problems") {
					t.Errorf("inspect %s: exit %d\n%s%s", p, code, stdout.String(), stderr.String())
				}
			}
			r := st.root(ns)
			for _, step := range [][]string{{"install", helperPkg, main}} {
				if out, err := r.DNF(step...); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
			}
			if out, err := r.RPM("-V", "binfmtctl", "qemu-user-static-go"); err != nil || out != "" {
				t.Errorf("rpm -V: %v\n%s", err, out)
			}
			if out, err := r.RPM("-e", "binfmtctl", "qemu-user-static-go"); err != nil {
				t.Errorf("%v\n%s", err, out)
			}
			if out, err := r.RPM("-qa", "binfmtctl", "qemu-user-static-go"); err != nil || out != "" {
				t.Errorf("after the erase: %v %q", err, out)
			}
		})
	}
}
