package assemble_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/buildtool"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// TestPackagesOnStack checks both packages with each stack's rpm: rpm -K,
// the dependency queries, inspect, and an install, verify and erase in a
// disposable root of that stack.
func TestPackagesOnStack(t *testing.T) {
	needInterpreters(t, "s390x", "aarch64")
	// The stacks (sandbox.Stacks: the host's rpm 4.18 and dnf 4, sid's
	// rpm 6.1 and dnf5) are made before the namespace, as they must be.
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { packagesOnStack(t, st) })
	}
}

func packagesOnStack(t *testing.T, st sandbox.Stack) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	// Every rpm below is the stack's, run on (or in) its root: r.RPM
	// imports the package files into a chrooted root.
	r := ns.DNFRootOn(st)
	res := build(t, assemble.Options{CPUs: []string{"s390x", "aarch64"}, Version: "1.0", Release: "1", Compression: "fast"})
	helperPkg, main := res.Packages[0].Path, res.Path
	const evr = "1.0-1"
	// The helper's file triggers (spec/triggers.yaml) are in both
	// packages, all Lua: they require rpm's Lua and no /bin/sh, so the
	// helper's package needs no shell at all; /bin/sh is the main
	// package's %post, %preun and %postun.
	rpmlib := "rpmlib(BuiltinLuaScripts) <= 4.2.2-1\nrpmlib(CompressedFileNames) <= 3.0.4-1\nrpmlib(FileDigests) <= 4.6.0-1\nrpmlib(PayloadFilesHavePrefix) <= 4.0-1\n" +
		"rpmlib(PayloadIsZstd) <= 5.4.18-1\nrpmlib(RichDependencies) <= 4.12.0-1\n"
	macros := "rpm_macro(binfmtctl_post)\nrpm_macro(binfmtctl_postun)\nrpm_macro(binfmtctl_preun)\nrpm_macro(binfmtctl_requires)\n"
	want := map[string]map[string]string{
		helperPkg: {
			"--requires":  "(qemu-user-static-go = " + evr + " if qemu-user-static-go)\n" + rpmlib,
			"--provides":  "binfmtctl = " + evr + "\nbinfmtctl(x86-64) = " + evr + "\n" + macros,
			"--conflicts": "",
		},
		main: {
			"--requires":  "(binfmtctl = " + evr + " if binfmtctl)\n/bin/sh\n/bin/sh\n/bin/sh\n" + rpmlib,
			"--provides":  "qemu-user-static-go = " + evr + "\nqemu-user-static-go(x86-64) = " + evr + "\n" + macros,
			"--conflicts": "qemu-user-binfmt\nqemu-user-static\nqemu-user-static-aarch64\nqemu-user-static-s390x\n",
		},
	}
	for _, p := range []string{helperPkg, main} {
		out, err := r.RPM("-K", p)
		if err != nil || !strings.HasSuffix(out, ": digests OK\n") {
			t.Errorf("rpm -K %s: %v\n%s", p, err, out)
		}
		for q, w := range want[p] {
			out, err := r.RPM("-qp", q, p)
			if err != nil || out != w {
				t.Errorf("rpm -qp %s %s: %v\n%s\nwant:\n%s", q, p, err, out, w)
			}
		}
		// The build-time contexts: Requires(post) and friends.
		if p == main {
			out, err := r.RPM("-qp", "--qf", "[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\n]", p)
			if err != nil || !strings.Contains(out, "/bin/sh post,interp\n/bin/sh preun,interp\n/bin/sh postun,interp\n") {
				t.Errorf("%s: the scriptlets' /bin/sh is not required in context: %v\n%s", p, err, out)
			}
		}
		var stdout, stderr bytes.Buffer
		if code := buildtool.Run([]string{"inspect", p}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "lint: no problems") {
			t.Errorf("inspect %s: exit %d\n%s%s", p, code, stdout.String(), stderr.String())
		}
	}
	if out, err := r.DNF("install", helperPkg, main); err != nil {
		t.Fatalf("%v\n%s", err, out)
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
}
