package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// hookCPUs is the package the hooks are timed with: three entries, as in
// the end-to-end suite.
var hookCPUs = []string{"aarch64", "riscv64", "ppc64le"}

// queryFormat is the query the hooks make (pkg/lifecycle/rpm.go).
const queryFormat = `@%{NAME} %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n[%{FILENAMES}\n]`

// scriptVariant is spec/nfpm.yaml with its scripts section replaced by
// scripts (an nfpm "scripts:" mapping, or "" for none), written into dir.
// Everything else about the package stays the same, so two builds differ
// only in their scriptlets.
func scriptVariant(t *testing.T, dir, name, scripts string) string {
	t.Helper()
	wd, _ := os.Getwd()
	src, err := assemble.FindSourceDir(wd)
	if err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(src, assemble.DefaultSpec)
	data, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	// Drop the top-level "scripts:" key and its indented lines.
	var out []string
	in, found := false, false
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case l == "scripts:":
			in, found = true, true
			continue
		case in && (l == "" || strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")):
			continue
		}
		in = false
		out = append(out, l)
	}
	if !found {
		t.Fatalf("%s has no top-level \"scripts:\" section to replace", spec)
	}
	p := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(p, []byte(strings.Join(out, "\n")+"\n"+scripts), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// noTriggers writes a triggers file that declares none, for
// assemble.Options.Triggers.
func noTriggers(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "no-triggers.yaml")
	if err := os.WriteFile(p, []byte("triggers: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// buildHookPackage builds the package for hookCPUs with Build, from spec
// and triggers ("" for the real ones).
func buildHookPackage(t *testing.T, spec, triggers string) *assemble.Result {
	t.Helper()
	var log strings.Builder
	res, err := assemble.Build(context.Background(), assemble.Options{
		Spec:            spec,
		Triggers:        triggers,
		CPUs:            hookCPUs,
		Version:         "1.0",
		OutputDir:       t.TempDir(),
		TempDir:         t.TempDir(),
		SourceDateEpoch: time.Unix(1700000000, 0),
		Log:             &log,
	})
	if err != nil {
		t.Fatalf("building the package: %v\n%s", err, log.String())
	}
	return res
}

// rootPath is PATH in the dnf root, as sandbox.Root sets it.
const rootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// dnfArgs is the command line sandbox.Root.DNF runs, for root.
func dnfArgs(root string, args ...string) []string {
	return append([]string{"-y", "--installroot=" + root, "--releasever=0", "--disablerepo=*",
		"--setopt=reposdir=/dev/null", "--setopt=install_weak_deps=False"}, args...)
}

// hookVariant is one build of the package.
type hookVariant struct {
	name    string
	pkg     *assemble.Result
	entries int // binfmt entries once it is installed
	install, remove,
	installCPU, removeCPU, cycle, cycleCPU Sample
}

// TestBenchHooks times dnf install and dnf remove of the package with its
// real scriptlets and file triggers against the same package with empty
// scriptlets (each runs only ":") and no file triggers, and without
// either, in one disposable root, interleaved, each round starting with
// the next variant. The reference variants carry no triggers because the
// helper's triggers register the entries of packages that never call the
// hooks (docs/triggers.md): with them, a package whose scriptlets do
// nothing still registers its entries, and real ÷ empty would leave out
// what the triggers cost. So real ÷ empty is what the package's binfmt
// work costs a user, scriptlets and triggers together. The package
// without either shows what rpm and dnf spend on a scriptlet of their
// own. It then breaks the hook down: the rpm database query it makes, and
// the whole %post hook run by hand (TestBenchTriggers times the triggers
// on their own).
//
// Issue 6's target is real ≤ 1.05× empty for an install and remove cycle.
// There is no guard in make test: a cycle takes about 1.1 s on an idle
// machine and 2–5 s under the load of a parallel test run, where three
// runs of 5 rounds gave 0.80×, 1.02× and 1.05× for an overhead that 31
// rounds put at 1.07×. A guard that noise cannot trip would need more
// rounds than make test can afford (each costs 4–9 s), so this runs only
// for the report (BENCH_REPORT).
func TestBenchHooks(t *testing.T) {
	if !reporting() {
		t.Skip("a benchmark of a few minutes of dnf transactions, too noisy for a guard under make test's load: it runs with BENCH_REPORT set (make bench)")
	}
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	load := loadavg()
	dir := t.TempDir()
	shipped := &hookVariant{name: "real", pkg: buildHookPackage(t, "", ""), entries: len(hookCPUs)}
	empty := &hookVariant{name: "empty", pkg: buildHookPackage(t, scriptVariant(t, dir, "empty", emptyScripts(t, dir)), noTriggers(t, dir))}
	none := &hookVariant{name: "no", pkg: buildHookPackage(t, scriptVariant(t, dir, "none", ""), noTriggers(t, dir))}
	variants := []*hookVariant{shipped, empty, none}
	for _, v := range variants {
		out, err := exec.Command("rpm", "-qp", "--scripts", v.pkg.Path).CombinedOutput()
		if err != nil {
			t.Fatalf("rpm -qp --scripts %s: %v\n%s", v.pkg.Path, err, out)
		}
		has := strings.Contains(string(out), "binfmtctl hook")
		if has != (v == shipped) || (v == none) != (len(strings.TrimSpace(string(out))) == 0) {
			t.Fatalf("the package with %s scriptlets has these:\n%s", v.name, out)
		}
		out, err = exec.Command("rpm", "-qp", "--filetriggers", v.pkg.Path).CombinedOutput()
		if err != nil {
			t.Fatalf("rpm -qp --filetriggers %s: %v\n%s", v.pkg.Path, err, out)
		}
		if (len(strings.TrimSpace(string(out))) > 0) != (v == shipped) {
			t.Fatalf("the package with %s scriptlets has these file triggers:\n%s", v.name, out)
		}
	}

	r := ns.DNFRoot()
	// Debian's qemu-user-binfmt files define the same qemu-<cpu> names;
	// hide them in the root, as the end-to-end suite does.
	debian, _ := filepath.Glob(r.Path("/usr/lib/binfmt.d/qemu-*.conf"))
	for _, f := range debian {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	fs := &binfmt.FS{Dir: r.BinfmtDir}
	env := []string{"PATH=" + rootPath, "HOME=/root", "LC_ALL=C.UTF-8"}
	dnf := func(want int, args ...string) proc {
		cmd := exec.Command("/usr/bin/dnf", dnfArgs(r.Dir, args...)...)
		cmd.Env = env
		p := measure(t, cmd)
		names, err := fs.Names()
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != want {
			t.Fatalf("after dnf %s: binfmt entries %v, want %d\n%s", strings.Join(args, " "), names, want, p.Out)
		}
		return p
	}
	const name = "qemu-user-static-go"
	n := rounds(5)
	for i := 0; i < n; i++ {
		for j := range variants {
			v := variants[(i+j)%len(variants)]
			in := dnf(v.entries, "install", v.pkg.Path)
			rm := dnf(0, "remove", name)
			v.install = append(v.install, in.Wall)
			v.remove = append(v.remove, rm.Wall)
			v.installCPU = append(v.installCPU, in.CPU)
			v.removeCPU = append(v.removeCPU, rm.CPU)
			v.cycle = append(v.cycle, in.Wall+rm.Wall)
			v.cycleCPU = append(v.cycleCPU, in.CPU+rm.CPU)
		}
	}

	// The hook's parts, with the real package installed.
	dnf(shipped.entries, "install", shipped.pkg.Path)
	nevr := strings.TrimSuffix(shipped.pkg.NEVRA, "."+shipped.pkg.Arch)
	chroot := func(args ...string) func() time.Duration {
		return func() time.Duration {
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Env = env
			cmd.Dir = "/"
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: r.Dir}
			return measure(t, cmd).Wall
		}
	}
	query := []string{"/usr/bin/rpm", "-q", "--qf", queryFormat, "--", nevr}
	hook := []string{"/usr/bin/binfmtctl", "hook", "post", nevr, "2"}
	sh := []string{"/bin/sh", "-c", ":"}
	parts := Interleave(rounds(15), chroot(query...), chroot(hook...), chroot(sh...))

	overhead := Ratio(shipped.cycle, empty.cycle)
	header := []string{"what", "empty scriptlets, no triggers", "real scriptlets and triggers", "real ÷ empty", "no scriptlets, no triggers", "real ÷ none"}
	var rows [][]string
	for _, m := range []struct {
		what string
		f    func(*hookVariant) Sample
	}{
		{"`dnf install`, wall", func(v *hookVariant) Sample { return v.install }},
		{"`dnf remove`, wall", func(v *hookVariant) Sample { return v.remove }},
		{"install + remove, wall", func(v *hookVariant) Sample { return v.cycle }},
		{"`dnf install`, CPU", func(v *hookVariant) Sample { return v.installCPU }},
		{"`dnf remove`, CPU", func(v *hookVariant) Sample { return v.removeCPU }},
		{"install + remove, CPU", func(v *hookVariant) Sample { return v.cycleCPU }},
	} {
		rows = append(rows, []string{m.what,
			m.f(empty).String(), m.f(shipped).String(), fmt.Sprintf("%.3f×", Ratio(m.f(shipped), m.f(empty))),
			m.f(none).String(), fmt.Sprintf("%.3f×", Ratio(m.f(shipped), m.f(none)))})
	}
	verdict := "met"
	if overhead > 1.05 {
		verdict = "**not met**"
	}
	summary := fmt.Sprintf("The real scriptlets and file triggers make an install and remove cycle **%.3f×** as long as empty scriptlets without triggers (target ≤ 1.05×: %s), and %.3f× in CPU time. Against the package without either it is %.3f×: rpm and dnf spend %.0f ms of a cycle on three scriptlets that do nothing, the hooks and triggers %.0f ms more.",
		overhead, verdict, Ratio(shipped.cycleCPU, empty.cycleCPU), Ratio(shipped.cycle, none.cycle),
		float64(empty.cycle.Median()-none.cycle.Median())/1e6, float64(shipped.cycle.Median()-empty.cycle.Median())/1e6)
	report(t, fmt.Sprintf(`## Hooks in a transaction: %s, %d interleaved rounds

The package of %s (%s compression) built by `+"`assemble.Build`"+` from spec/nfpm.yaml and spec/triggers.yaml, then again with only the scripts and file triggers changed: three scripts that run `+"`:`"+` and no triggers, and neither. The reference variants carry no triggers because the helper's triggers register the entries of packages that never call the hooks (docs/triggers.md): a package with empty scriptlets and the triggers would still do the binfmt work. So real ÷ empty is what that work costs a user, hooks and triggers together; TestBenchTriggers times the triggers on their own. Each round installs and removes each variant in one disposable dnf root, starting with the next variant each round; load average %s at the start. Medians with min–max; CPU is user + system of dnf and everything it waited for, scriptlets included.

%s
%s

What a hook spends, run by hand in the root with the package installed (%d interleaved rounds): an install runs the shell and `+"`binfmtctl hook post`"+` once; a remove runs the shell twice, `+"`hook preun`"+` (no rpm query while the record is sound) and `+"`hook postun`"+` (binfmtctl is gone by then: shell only).

%s
The rpm database query is %.0f %% of the %%post hook.

Reproduce with:

    BENCH_REPORT=/tmp/bench.md BENCH_ROUNDS=%d go test -count=1 -timeout 60m -run '^TestBenchHooks$' -v ./pkg/bench

Each transaction is, with ROOT a root made by `+"`sandbox.NS.DNFRoot`"+` (/usr an overlay of the host's, without Debian's qemu-*.conf) and the environment PATH=%s HOME=/root LC_ALL=C.UTF-8:

    dnf %s
    dnf %s
`,
		strings.Join(hookCPUs, ", "), n,
		strings.Join(hookCPUs, ", "), shipped.pkg.Compression, load,
		Table(header, rows), summary,
		len(parts[0]),
		Table([]string{"command (chrooted in ROOT)", "median (min–max)"}, [][]string{
			{"`" + shellJoin(query) + "`", parts[0].String()},
			{"`" + shellJoin(hook) + "`", parts[1].String()},
			{"`" + shellJoin(sh) + "`", parts[2].String()},
		}),
		100*float64(parts[0].Median())/float64(parts[1].Median()),
		n, rootPath,
		shellJoin(dnfArgs("ROOT", "install", "PKG.rpm")),
		shellJoin(dnfArgs("ROOT", "remove", name))))
}

// emptyScripts writes scriptlets that do nothing and returns the spec's
// scripts section for them.
func emptyScripts(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("scripts:\n")
	for _, s := range []string{"postinstall", "preremove", "postremove"} {
		p := filepath.Join(dir, s+".sh")
		if err := os.WriteFile(p, []byte(":\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  %s: %s\n", s, p)
	}
	return b.String()
}
