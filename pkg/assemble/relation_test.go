package assemble_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// The relation between qemu-user-static-go and binfmtctl (docs/packages.md)
// is tested here with the real rpm and dnf in a disposable root, with a
// packager's package built by rpmbuild with the macros, through both tools.
// Only sandbox.Root's DNF and RPM run a package manager, so the test runs
// on every stack of sandbox.Stacks.

const relVersion = "1.0"

// relPkgs is one build's two packages.
type relPkgs struct{ helper, main string }

// sample is the packager's package: one binfmt.d file whose interpreter
// it ships, and the macros' scriptlets. Release 2 points the entry at a
// second interpreter, so that an upgrade shows in the live entry.
type samplePkg struct {
	path, interp string
}

func buildSample(t *testing.T, macros, release string) samplePkg {
	t.Helper()
	sandbox.Require(t, "rpmbuild", "rpm")
	dir := t.TempDir()
	interp := "/usr/libexec/binfmt-sample/interp-" + release
	spec := filepath.Join(dir, "binfmt-sample.spec")
	text := fmt.Sprintf(`%%global debug_package %%{nil}
%%global _build_id_links none
%%global __os_install_post %%{nil}
Name: binfmt-sample
Version: 1
Release: %s
Summary: a packager's package that adopts the binfmtctl macros
License: MIT
BuildArch: noarch
%%{?binfmtctl_requires}
%%description
A packager's package with one binfmt.d file.
%%install
mkdir -p %%{buildroot}/usr/lib/binfmt.d %%{buildroot}/usr/libexec/binfmt-sample
printf '#!/bin/sh\nexit 0\n' >%%{buildroot}%s
chmod 0755 %%{buildroot}%s
echo ':binfmt-sample:M::BINFMTSAMPLE::%s:' >%%{buildroot}/usr/lib/binfmt.d/binfmt-sample.conf
%%post
%%binfmtctl_post
%%preun
%%binfmtctl_preun
%%postun
%%binfmtctl_postun
%%files
/usr/lib/binfmt.d/binfmt-sample.conf
%s
`, release, interp, interp, interp, interp)
	if err := os.WriteFile(spec, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	top := filepath.Join(dir, "top")
	cmd := exec.Command("rpmbuild", "-bb", "--nodeps", "--load", macros, "--define", "_topdir "+top, spec)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpmbuild of the packager's package: %v\n%s", err, out)
	}
	rpms, _ := filepath.Glob(filepath.Join(top, "RPMS", "noarch", "*.rpm"))
	if len(rpms) != 1 {
		t.Fatalf("rpmbuild wrote %q", rpms)
	}
	out, err := exec.Command("rpm", "-qp", "--requires", rpms[0]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "/usr/bin/binfmtctl\n") {
		t.Fatalf("the packager's package does not require /usr/bin/binfmtctl (%%{?binfmtctl_requires} unexpanded?): %v\n%s", err, out)
	}
	return samplePkg{path: rpms[0], interp: interp}
}

func TestPackageRelation(t *testing.T) {
	needInterpreters(t, "s390x")
	sandbox.Require(t, "createrepo_c", "createrepo-c")
	// The stacks are made before the namespace, as they must be.
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { packageRelation(t, st) })
	}
}

func packageRelation(t *testing.T, st sandbox.Stack) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	macros := filepath.Join(sourceDir(t), "spec", "macros.binfmtctl")
	sample1, sample2 := buildSample(t, macros, "1"), buildSample(t, macros, "2")
	// Each release gets its own helper build, version stamped, so that
	// the shared /usr/bin/binfmtctl differs between releases as it does
	// between real ones.
	rel := func(release string) relPkgs {
		res := build(t, assemble.Options{CPUs: []string{"s390x"}, Version: relVersion, Release: release, Binfmtctl: "-", Compression: "fast"})
		return relPkgs{helper: res.Packages[0].Path, main: res.Path}
	}
	v1, v2 := rel("1"), rel("2")
	repo := t.TempDir()
	for _, p := range []string{v2.helper, v2.main} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, filepath.Base(p)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("createrepo_c", repo).CombinedOutput(); err != nil {
		t.Fatalf("createrepo_c: %v\n%s", err, out)
	}

	for _, tool := range []string{"dnf", "rpm"} {
		t.Run(tool, func(t *testing.T) {
			r := newRelRoot(t, ns, st, tool)
			r.packagerFollowsWithHelperOnly(sample1, sample2, v1)
		})
		t.Run(tool+"/main-alone-then-helper", func(t *testing.T) {
			r := newRelRoot(t, ns, st, tool)
			r.mainAloneThenHelper(sample1, v1)
		})
		if tool == "dnf" {
			t.Run("dnf/neither-installed", func(t *testing.T) {
				r := newRelRoot(t, ns, st, tool)
				r.neitherInstalled(sample1, r.repo(repo))
			})
		}
		t.Run(tool+"/upgrade-both", func(t *testing.T) {
			r := newRelRoot(t, ns, st, tool)
			r.upgradeBoth(sample1, v1, v2, r.repo(repo))
		})
		t.Run(tool+"/skew", func(t *testing.T) {
			r := newRelRoot(t, ns, st, tool)
			r.newMainOverOldHelper(sample1, v1, v2)
		})
		t.Run(tool+"/skew-reverse", func(t *testing.T) {
			r := newRelRoot(t, ns, st, tool)
			r.newHelperOverOldMain(sample1, v1, v2)
		})
	}
}

// newRelRoot makes a root for one tool. The root's /usr is an overlay
// over the host's (or sid's), where Debian's qemu-user-binfmt files
// define the same qemu-<cpu> names and, sorting after
// qemu-<cpu>-static.conf, win at boot: binfmtctl registers what boot
// would, so they are hidden in the root, as pkg/e2e does (a whiteout in
// the overlay; the host keeps its files).
func newRelRoot(t *testing.T, ns *sandbox.NS, st sandbox.Stack, tool string) *relRoot {
	t.Helper()
	r := &relRoot{t: t, r: ns.DNFRootOn(st), tool: tool}
	debian, _ := filepath.Glob(r.r.Path("/usr/lib/binfmt.d/qemu-*.conf"))
	for _, f := range debian {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	// The namespace's binfmt_misc instance is shared by all its roots,
	// so the entries earlier roots left are cleared first: every entry a
	// test checks is then its own root's.
	r.clearEntries("qemu-s390x", "binfmt-sample")
	return r
}

// relRoot runs one tool's transactions in a root.
type relRoot struct {
	t    *testing.T
	r    *sandbox.Root
	tool string
}

// repo returns the repository directory as the root's dnf sees it: the
// host's path on the host stack; on a chrooted one, a copy inside the
// root.
func (r *relRoot) repo(dir string) string {
	r.t.Helper()
	if !r.r.Stack.Chrooted() {
		return dir
	}
	const in = "/var/tmp/relation-repo"
	if err := os.MkdirAll(r.r.Path(in), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", dir+"/.", r.r.Path(in)).CombinedOutput(); err != nil {
		r.t.Fatalf("copying the repository into the root: %v\n%s", err, out)
	}
	return in
}

// install installs local package files: dnf install, or rpm -U.
func (r *relRoot) install(paths ...string) {
	r.t.Helper()
	var out string
	var err error
	if r.tool == "dnf" {
		out, err = r.r.DNF(append([]string{"install"}, paths...)...)
	} else {
		out, err = r.r.RPM(append([]string{"-U"}, paths...)...)
	}
	if err != nil {
		r.t.Fatalf("%v\n%s", err, out)
	}
}

func (r *relRoot) remove(names ...string) {
	r.t.Helper()
	var out string
	var err error
	if r.tool == "dnf" {
		out, err = r.r.DNF(append([]string{"remove"}, names...)...)
	} else {
		out, err = r.r.RPM(append([]string{"-e"}, names...)...)
	}
	if err != nil {
		r.t.Fatalf("%v\n%s", err, out)
	}
}

// installed reports which of names are installed.
func (r *relRoot) installed(names ...string) map[string]bool {
	r.t.Helper()
	got := map[string]bool{}
	for _, n := range names {
		_, err := r.r.RPM("-q", n)
		got[n] = err == nil
	}
	return got
}

func (r *relRoot) want(state map[string]bool) {
	r.t.Helper()
	var names []string
	for n := range state {
		names = append(names, n)
	}
	got := r.installed(names...)
	for n, w := range state {
		if got[n] != w {
			r.t.Errorf("%s installed: %v, want %v", n, got[n], w)
		}
	}
}

// entry returns the live entry's interpreter, or "" when it is absent.
func (r *relRoot) entry(name string) string {
	r.t.Helper()
	e, err := (&binfmt.FS{Dir: r.r.BinfmtDir}).Raw(name)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(e), "\n") {
		if v, ok := strings.CutPrefix(line, "interpreter "); ok {
			return v
		}
	}
	return "?"
}

func (r *relRoot) wantEntry(name, interp, when string) {
	r.t.Helper()
	if got := r.entry(name); got != interp {
		r.t.Errorf("%s: entry %s has interpreter %q, want %q", when, name, got, interp)
	}
}

// packagerFollowsWithHelperOnly: with only binfmtctl, the packager's
// package installs without qemu and its entry follows it through install,
// upgrade and erase; then qemu-user-static-go installs beside binfmtctl,
// and goes again while the packager's package still needs the helper.
func (r *relRoot) packagerFollowsWithHelperOnly(s1, s2 samplePkg, v1 relPkgs) {
	r.install(v1.helper)
	r.install(s1.path)
	r.want(map[string]bool{"binfmtctl": true, "binfmt-sample": true, "qemu-user-static-go": false})
	r.wantEntry("binfmt-sample", s1.interp, "install with binfmtctl only")
	r.install(s2.path)
	r.wantEntry("binfmt-sample", s2.interp, "upgrade with binfmtctl only")
	r.remove("binfmt-sample")
	r.wantEntry("binfmt-sample", "", "erase with binfmtctl only")

	r.install(s1.path)
	// qemu-user-static-go where binfmtctl is installed.
	r.install(v1.main)
	r.want(map[string]bool{"binfmtctl": true, "binfmt-sample": true, "qemu-user-static-go": true})
	r.wantEntry("qemu-s390x", "/usr/bin/qemu-s390x-static", "qemu-user-static-go installed beside binfmtctl")
	r.wantEntry("binfmt-sample", s1.interp, "qemu-user-static-go installed beside binfmtctl")
	// Removing qemu-user-static-go while the packager's package needs
	// the helper: binfmtctl keeps it, nothing else goes.
	r.remove("qemu-user-static-go")
	r.want(map[string]bool{"binfmtctl": true, "binfmt-sample": true, "qemu-user-static-go": false})
	if _, err := os.Stat(r.r.Path("/usr/bin/binfmtctl")); err != nil {
		r.t.Errorf("removing qemu-user-static-go took the helper binfmtctl still ships: %v", err)
	}
	r.wantEntry("qemu-s390x", "", "qemu-user-static-go removed")
	r.wantEntry("binfmt-sample", s1.interp, "qemu-user-static-go removed")
	r.remove("binfmt-sample")
	r.wantEntry("binfmt-sample", "", "erase after qemu-user-static-go went")
}

// mainAloneThenHelper: the single qemu-user-static-go file installs
// everything the lifecycle needs, the helper included; the packager's
// package installs on it without binfmtctl; binfmtctl installs beside it.
func (r *relRoot) mainAloneThenHelper(s1 samplePkg, v1 relPkgs) {
	r.install(v1.main)
	r.want(map[string]bool{"qemu-user-static-go": true, "binfmtctl": false})
	r.wantEntry("qemu-s390x", "/usr/bin/qemu-s390x-static", "qemu-user-static-go alone")
	r.install(s1.path)
	r.want(map[string]bool{"binfmtctl": false, "binfmt-sample": true})
	r.wantEntry("binfmt-sample", s1.interp, "packager's package on qemu-user-static-go")
	// binfmtctl where qemu-user-static-go is installed.
	r.install(v1.helper)
	r.want(map[string]bool{"qemu-user-static-go": true, "binfmtctl": true, "binfmt-sample": true})
	if out, err := r.r.RPM("-V", "binfmtctl", "qemu-user-static-go"); err != nil {
		r.t.Errorf("rpm -V after installing binfmtctl beside qemu-user-static-go: %v\n%s", err, out)
	}
}

// upgradeBoth: release 1 of both, and the packager's package, upgrade to
// release 2 from a repository (dnf) or from both files (rpm); upgrading
// only binfmtctl pulls qemu-user-static-go's upgrade along instead of
// conflicting on the shared files.
func (r *relRoot) upgradeBoth(s1 samplePkg, v1, v2 relPkgs, repo string) {
	r.install(v1.helper, v1.main)
	r.install(s1.path)
	if r.tool == "dnf" {
		args := []string{"--repofrompath=rel," + repo, "--enablerepo=rel", "--setopt=rel.gpgcheck=0", "upgrade", "binfmtctl"}
		if out, err := r.r.DNF(args...); err != nil {
			r.t.Fatalf("%v\n%s", err, out)
		}
	} else {
		// rpm upgrades what it is given: one file alone is refused on
		// dependencies, before any file conflict.
		out, err := r.r.RPM("-U", v2.helper)
		if err == nil || !strings.Contains(out, "(qemu-user-static-go = "+relVersion+"-2 if qemu-user-static-go) is needed by binfmtctl-"+relVersion+"-2") {
			r.t.Errorf("rpm -U of binfmtctl alone: %v, want the dependency on qemu-user-static-go = %s-2:\n%s", err, relVersion, out)
		}
		if strings.Contains(out, "conflicts with file") {
			r.t.Errorf("rpm -U of binfmtctl alone reports a file conflict:\n%s", out)
		}
		r.install(v2.helper, v2.main)
	}
	for _, n := range []string{"binfmtctl", "qemu-user-static-go"} {
		out, err := r.r.RPM("-q", "--qf", "%{VERSION}-%{RELEASE}", n)
		if err != nil || out != relVersion+"-2" {
			r.t.Errorf("after the upgrade %s is %q (%v), want %s-2", n, out, err, relVersion)
		}
	}
	r.wantEntry("qemu-s390x", "/usr/bin/qemu-s390x-static", "after the upgrade")
	r.wantEntry("binfmt-sample", s1.interp, "after the upgrade")
	if out, err := r.r.RPM("-V", "binfmtctl", "qemu-user-static-go", "binfmt-sample"); err != nil {
		r.t.Errorf("rpm -V after the upgrade: %v\n%s", err, out)
	}
}

// neitherInstalled: on a host with neither package, installing the
// packager's package from a repository that has both takes binfmtctl,
// not qemu.
func (r *relRoot) neitherInstalled(s1 samplePkg, repo string) {
	args := []string{"--repofrompath=rel," + repo, "--enablerepo=rel", "--setopt=rel.gpgcheck=0", "install", s1.path}
	if out, err := r.r.DNF(args...); err != nil {
		r.t.Fatalf("%v\n%s", err, out)
	}
	r.want(map[string]bool{"binfmt-sample": true, "binfmtctl": true, "qemu-user-static-go": false})
	r.wantEntry("binfmt-sample", s1.interp, "installed with the helper from a repository")
}

// clearEntries unregisters live entries that earlier roots of the same
// namespace left.
func (r *relRoot) clearEntries(names ...string) {
	r.t.Helper()
	fs := &binfmt.FS{Dir: r.r.BinfmtDir}
	for _, n := range names {
		if r.entry(n) == "" {
			continue
		}
		if err := fs.Unregister(n); err != nil {
			r.t.Fatalf("unregistering %s left by an earlier root: %v", n, err)
		}
	}
}

// refused runs a transaction that must fail on the other package's
// version before any file is touched: its output names the requirement
// and no file conflict.
func (r *relRoot) refused(want string, paths ...string) {
	r.t.Helper()
	var out string
	var err error
	if r.tool == "dnf" {
		out, err = r.r.DNF(append([]string{"install"}, paths...)...)
	} else {
		out, err = r.r.RPM(append([]string{"-U"}, paths...)...)
	}
	if err == nil {
		r.t.Fatalf("installing %q alone succeeded, want it refused on %s:\n%s", paths, want, out)
	}
	if !strings.Contains(out, want) {
		r.t.Errorf("installing %q alone: %v, want the output to name %s:\n%s", paths, err, want, out)
	}
	if strings.Contains(out, "conflicts with file") {
		r.t.Errorf("installing %q alone reports a file conflict, want a dependency problem:\n%s", paths, out)
	}
}

func (r *relRoot) wantVersion(name, vr string) {
	r.t.Helper()
	out, err := r.r.RPM("-q", "--qf", "%{VERSION}-%{RELEASE}", name)
	if err != nil || out != vr {
		r.t.Errorf("%s is %q (%v), want %s", name, out, err, vr)
	}
}

// newMainOverOldHelper: binfmtctl of an older release is installed (from
// a repository that has nothing newer, or by hand) with a packager's
// package, and the user installs the newer qemu-user-static-go file
// alone. The shared files differ between the releases, so no relation
// can install it while binfmtctl stays at the old one; Obsoletes, the
// only one that would, makes dnf replace binfmtctl by qemu-user-static-go
// in every upgrade too (docs/packages.md). So it is refused at dependency
// time, naming binfmtctl, with nothing changed, and the new release's
// two files install together, the packager's entry kept throughout.
func (r *relRoot) newMainOverOldHelper(s1 samplePkg, v1, v2 relPkgs) {
	r.install(v1.helper)
	r.install(s1.path)
	r.refused("(binfmtctl = "+relVersion+"-2 if binfmtctl)", v2.main)
	r.want(map[string]bool{"binfmtctl": true, "binfmt-sample": true, "qemu-user-static-go": false})
	r.wantVersion("binfmtctl", relVersion+"-1")
	r.wantEntry("binfmt-sample", s1.interp, "the newer qemu-user-static-go refused")
	r.wantEntry("qemu-s390x", "", "the newer qemu-user-static-go refused")

	r.install(v2.main, v2.helper)
	r.wantVersion("binfmtctl", relVersion+"-2")
	r.wantVersion("qemu-user-static-go", relVersion+"-2")
	r.wantEntry("binfmt-sample", s1.interp, "both files of the newer release")
	r.wantEntry("qemu-s390x", "/usr/bin/qemu-s390x-static", "both files of the newer release")
	if out, err := r.r.RPM("-V", "binfmtctl", "qemu-user-static-go", "binfmt-sample"); err != nil {
		r.t.Errorf("rpm -V after installing both files of the newer release: %v\n%s", err, out)
	}
}

// newHelperOverOldMain: the other way round, qemu-user-static-go of an
// older release and the newer binfmtctl file alone: refused, naming
// qemu-user-static-go (binfmtctl must not take the interpreters away),
// and the two newer files upgrade together.
func (r *relRoot) newHelperOverOldMain(s1 samplePkg, v1, v2 relPkgs) {
	r.install(v1.main)
	r.install(s1.path)
	r.refused("(qemu-user-static-go = "+relVersion+"-2 if qemu-user-static-go)", v2.helper)
	r.want(map[string]bool{"binfmtctl": false, "binfmt-sample": true, "qemu-user-static-go": true})
	r.wantVersion("qemu-user-static-go", relVersion+"-1")
	r.wantEntry("qemu-s390x", "/usr/bin/qemu-s390x-static", "the newer binfmtctl refused")

	r.install(v2.main, v2.helper)
	r.wantVersion("binfmtctl", relVersion+"-2")
	r.wantVersion("qemu-user-static-go", relVersion+"-2")
	r.wantEntry("binfmt-sample", s1.interp, "both files of the newer release")
	r.wantEntry("qemu-s390x", "/usr/bin/qemu-s390x-static", "both files of the newer release")
}
