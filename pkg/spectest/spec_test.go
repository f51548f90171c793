// Package spectest_test checks qemu-user-static-go.spec against the nfpm
// build of pkg/assemble: it makes the dist tarball the way `make dist`
// does, builds the package with rpmbuild -ba and with assemble.Build for
// the same cpus and version, and compares the two with go-rpmutils. It
// also runs rpm -K, inspect and rpmlint on both.
package spectest_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rpmutils "github.com/sassoftware/go-rpmutils"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/buildtool"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/inspect"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/qemu"
	"github.com/qemu-user-static-go/qemu-user-static-go/scriptlets"
)

const (
	name     = "qemu-user-static-go"
	specFile = name + ".spec"
)

// twoCPUs are the real interpreters the main comparison packages: two are
// enough to see per-cpu files and conflicts, and keep the test fast.
var twoCPUs = []string{"aarch64", "riscv64"}

// epoch is SOURCE_DATE_EPOCH for both builds.
var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// helperName is the helper's package, built beside name.
const helperName = "binfmtctl"

// build is one package built both ways.
type build struct {
	nfpm, rpmbuild string
}

// builds is one build's packages, by name, built both ways.
type builds map[string]*build

func (b builds) set(name string, nfpm bool, path string) {
	if b[name] == nil {
		b[name] = &build{}
	}
	if nfpm {
		b[name].nfpm = path
	} else {
		b[name].rpmbuild = path
	}
}

// setRPMs files each rpm under its package name.
func (b builds) setRPMs(rpms []string) {
	for _, p := range rpms {
		base := filepath.Base(p)
		for _, n := range []string{name, helperName} {
			if strings.HasPrefix(base, n+"-") && len(base) > len(n)+1 && base[len(n)+1] >= '0' && base[len(n)+1] <= '9' {
				b.set(n, false, p)
			}
		}
	}
}

func (b builds) setResult(res *assemble.Result) {
	for _, p := range res.Packages {
		b.set(p.Name, true, p.Path)
	}
}

// check fails unless both builds wrote both packages.
func (b builds) check(t *testing.T, what string) {
	t.Helper()
	for _, n := range []string{name, helperName} {
		if b[n] == nil || b[n].nfpm == "" || b[n].rpmbuild == "" {
			t.Fatalf("%s: %s was not built both ways: %+v", what, n, b[n])
		}
	}
}

func TestSpec(t *testing.T) {
	start := time.Now()
	sandbox.Require(t, "rpmbuild", "rpm")
	sandbox.Require(t, "rpm", "rpm")
	sandbox.Require(t, "git", "git")
	for _, cpu := range twoCPUs {
		sandbox.Require(t, filepath.Join(qemu.DefaultBinDir, "qemu-"+cpu+"-static"), "qemu-user-static")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not in PATH (install Go from https://go.dev/dl or apt-get install -y golang-go): %v", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	src, err := assemble.FindSourceDir(wd)
	if err != nil {
		t.Fatal(err)
	}
	version, release := changelogVersion(t, src)

	work := t.TempDir()
	dist := filepath.Join(work, "dist")
	tree := filepath.Join(work, "src", name+"-"+version)
	makeDist(t, gobin, src, tree, dist, version)
	t.Logf("dist tarball with vendor/: %v", time.Since(start).Round(time.Millisecond))

	// rpmbuild gets a HOME of its own, so that no ~/.rpmmacros changes
	// the package; the go command keeps the real build cache.
	gocache := goEnv(t, gobin, "GOCACHE")
	home := filepath.Join(work, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+home, "GOCACHE="+gocache,
		"SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch.Unix(), 10))

	// Every target of the table, with a header-only ELF of this machine
	// as its interpreter: cheap, and enough for both builds to choose the
	// cpus and the conflicts by themselves for every cpu group.
	fake := fakeInterpreters(t, filepath.Join(work, "fake"))

	two, every := builds{}, builds{}
	var srpm string
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, fmt.Sprintf(format, args...))
	}
	timed := func(what string, f func() error) {
		defer wg.Done()
		t0 := time.Now()
		if err := f(); err != nil {
			fail("%s: %v", what, err)
			return
		}
		t.Logf("%s: %v", what, time.Since(t0).Round(time.Millisecond))
	}
	ctx := context.Background()
	wg.Add(4)
	go timed("rpmbuild -ba, "+strings.Join(twoCPUs, ","), func() (err error) {
		var rpms []string
		rpms, srpm, err = runRPMBuild(ctx, env, filepath.Join(work, "rb-real"), dist, src, "-ba", map[string]string{
			"pkg_version": version, "pkg_release": release, "qemu_cpus": strings.Join(twoCPUs, ","),
		})
		if err == nil {
			mu.Lock()
			two.setRPMs(rpms)
			mu.Unlock()
		}
		return err
	})
	go timed("rpmbuild -bb, every cpu (fake interpreters)", func() error {
		rpms, _, err := runRPMBuild(ctx, env, filepath.Join(work, "rb-every"), dist, src, "-bb", map[string]string{
			"pkg_version": version, "pkg_release": release, "qemu_bindir": fake,
		})
		if err == nil {
			mu.Lock()
			every.setRPMs(rpms)
			mu.Unlock()
		}
		return err
	})
	// The nfpm builds read the same tree the tarball holds: with vendor/
	// there, go builds binfmtctl from it, as rpmbuild does. (From a
	// checkout without vendor/ the binary differs only in the module
	// sums Go records in its build info; see docs/rpmbuild.md.)
	go timed("nfpm build, "+strings.Join(twoCPUs, ","), func() error {
		res, err := assemble.Build(ctx, assemble.Options{
			SourceDir: tree, CPUs: twoCPUs, Version: version, Release: release,
			OutputDir: filepath.Join(work, "nfpm-real"), SourceDateEpoch: epoch, TempDir: work,
		})
		if err == nil {
			mu.Lock()
			two.setResult(res)
			mu.Unlock()
		}
		return err
	})
	go timed("nfpm build, every cpu (fake interpreters)", func() error {
		res, err := assemble.Build(ctx, assemble.Options{
			SourceDir: tree, QemuDir: fake, Version: version, Release: release,
			OutputDir: filepath.Join(work, "nfpm-every"), SourceDateEpoch: epoch, TempDir: work,
		})
		if err == nil {
			mu.Lock()
			every.setResult(res)
			mu.Unlock()
		}
		return err
	})
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("building:\n%s", strings.Join(errs, "\n"))
	}

	two.check(t, "two cpus")
	every.check(t, "every cpu")
	t.Run("equivalent/two-cpus", func(t *testing.T) {
		a, b := compare(t, *two[name], tree, true)
		checkConfs(t, a, twoCPUs, true)
		checkConfs(t, b, twoCPUs, true)
	})
	t.Run("equivalent/every-cpu", func(t *testing.T) {
		a, b := compare(t, *every[name], tree, true)
		checkConfs(t, a, nil, false)
		checkConfs(t, b, nil, false)
	})
	t.Run("equivalent/binfmtctl", func(t *testing.T) {
		a, r := compare(t, *two[helperName], tree, false)
		checkHelper(t, a, two[name].nfpm)
		checkHelper(t, r, two[name].rpmbuild)
	})
	t.Run("equivalent/binfmtctl-every-cpu", func(t *testing.T) { compare(t, *every[helperName], tree, false) })
	t.Run("srpm", func(t *testing.T) { checkSRPM(t, srpm, src, version) })
	t.Run("rpm-K", func(t *testing.T) {
		for _, p := range []string{two[name].nfpm, two[name].rpmbuild, two[helperName].nfpm, two[helperName].rpmbuild, srpm} {
			out, err := exec.Command("rpm", "-K", p).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "digests") || !strings.Contains(string(out), "OK") {
				t.Errorf("rpm -K %s: %v\n%s", p, err, out)
			}
		}
	})
	t.Run("inspect", func(t *testing.T) {
		for _, p := range []string{two[helperName].nfpm, two[helperName].rpmbuild} {
			var stdout, stderr bytes.Buffer
			if code := buildtool.Run([]string{"inspect", p}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "lint: no problems") {
				t.Errorf("qemu-user-static-go inspect %s: exit %d\n%s%s", p, code, stdout.String(), stderr.String())
			}
		}
		for _, p := range []string{two[name].nfpm, two[name].rpmbuild} {
			var stdout, stderr bytes.Buffer
			if code := buildtool.Run([]string{"inspect", p}, &stdout, &stderr); code != 0 {
				t.Errorf("qemu-user-static-go inspect %s: exit %d\n%s%s", p, code, stdout.String(), stderr.String())
			}
			for _, cpu := range twoCPUs {
				if !strings.Contains(stdout.String(), "qemu-"+cpu) {
					t.Errorf("qemu-user-static-go inspect %s shows no entry qemu-%s:\n%s", p, cpu, stdout.String())
				}
			}
		}
	})
	// Every package each build wrote, so that a second package is
	// covered as soon as a build makes it.
	groups := map[string][]string{
		"nfpm":     glob(t, filepath.Join(filepath.Dir(two[name].nfpm), "*.rpm")),
		"rpmbuild": append(glob(t, filepath.Join(work, "rb-real", "RPMS", "*", "*.rpm")), srpm),
	}
	t.Run("rpmlint", func(t *testing.T) {
		sandbox.Require(t, "rpmlint", "rpmlint")
		rpmlint(t, sandbox.HostStack(), src, home, groups)
	})
	// Debian sid's rpmlint 2.8, as Fedora runs (the host's is 2.4).
	t.Run("rpmlint-sid", func(t *testing.T) {
		rpmlint(t, sandbox.SidStack(t), src, home, groups)
	})
	t.Logf("total: %v", time.Since(start).Round(time.Millisecond))
}

// changelogVersion returns the version and release of the newest entry of
// spec/changelog.yml, which both builds put in the package's changelog:
// building that version keeps the changelog coherent for rpmlint.
func changelogVersion(t *testing.T, src string) (string, string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(src, "spec", "changelog.yml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^- semver: *([^\s-]+)-(\S+)\s*$`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("spec/changelog.yml: no \"- semver: VERSION-RELEASE\" line")
	}
	return string(m[1]), string(m[2])
}

func goEnv(t *testing.T, gobin, key string) string {
	t.Helper()
	out, err := exec.Command(gobin, "env", key).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", key, err)
	}
	return strings.TrimSpace(string(out))
}

// makeDist does what `make dist` does, into dist: the repository's files
// and `go mod vendor` in tree, packed as NAME-VERSION.tar.gz with fixed
// times and owners, and the scriptlets beside it for the spec's
// %include. The test takes untracked files too (not ignored ones), so
// that it checks the working tree, as the nfpm build of it would.
func makeDist(t *testing.T, gobin, src, tree, dist, version string) {
	t.Helper()
	out, err := exec.Command("git", "-C", src, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("listing the repository's files (git ls-files in %s): %v", src, err)
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if err := copyEntry(filepath.Join(src, rel), filepath.Join(tree, rel)); err != nil {
			t.Fatal(err)
		}
	}
	vendor := exec.Command(gobin, "mod", "vendor")
	vendor.Dir = tree
	// The modules come from the module cache (building the project's
	// tests fills it); only missing ones are fetched.
	vendor.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := vendor.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor in %s (run `go mod download` in the repository if a module is missing and there is no network): %v\n%s", tree, err, out)
	}
	if err := os.MkdirAll(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeTarball(filepath.Join(dist, name+"-"+version+".tar.gz"), tree, epoch); err != nil {
		t.Fatal(err)
	}
	for _, s := range specSources(t, src) {
		if err := copyEntry(filepath.Join(src, "scriptlets", s), filepath.Join(dist, s)); err != nil {
			t.Fatal(err)
		}
	}
}

// specSources lists the spec's sources besides the tarball (Source1..N):
// the scriptlets and file trigger bodies it %includes, each a file of
// scriptlets/, as `make dist` copies them.
func specSources(t *testing.T, src string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(src, specFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^Source[1-9][0-9]*:\s*(\S+)\s*$`).FindAllSubmatch(data, -1) {
		out = append(out, string(m[1]))
	}
	if len(out) < 3 {
		t.Fatalf("%s lists sources %q, want at least the three scriptlets", specFile, out)
	}
	return out
}

// copyEntry copies a regular file with its permissions, or a symlink as a
// symlink. A path git lists that is gone from the working tree is skipped.
func copyEntry(from, to string) error {
	st, err := os.Lstat(from)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(from)
		if err != nil {
			return err
		}
		return os.Symlink(target, to)
	case st.Mode().IsRegular():
		data, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, st.Mode().Perm())
	}
	return nil // a submodule's directory
}

// writeTarball packs dir as a tree named after its base name, in name
// order, with every time at mtime and root as owner, like `make dist`.
func writeTarball(out, dir string, mtime time.Time) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	parent := filepath.Dir(dir)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(parent, p)
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = mtime, time.Time{}, time.Time{}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return f.Close()
}

// fakeInterpreters writes, for every target in the table, an ELF header
// of this machine's architecture (the test binary's) and nothing else, as
// qemu-<cpu>-static in dir.
func fakeInterpreters(t *testing.T, dir string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	self, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	var ident [elf.EI_NIDENT]byte
	copy(ident[:], []byte{0x7f, 'E', 'L', 'F', byte(self.Class), byte(self.Data), byte(elf.EV_CURRENT), byte(self.OSABI)})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tg := range qemu.Targets() {
		var b bytes.Buffer
		if self.Class == elf.ELFCLASS64 {
			binary.Write(&b, self.ByteOrder, elf.Header64{Ident: ident, Type: uint16(elf.ET_EXEC), Machine: uint16(self.Machine),
				Version: uint32(elf.EV_CURRENT), Ehsize: 64, Phentsize: 56, Shentsize: 64})
		} else {
			binary.Write(&b, self.ByteOrder, elf.Header32{Ident: ident, Type: uint16(elf.ET_EXEC), Machine: uint16(self.Machine),
				Version: uint32(elf.EV_CURRENT), Ehsize: 52, Phentsize: 32, Shentsize: 40})
		}
		// Different contents, so that a mixed-up file shows in the digests.
		b.WriteString(tg.InterpreterName() + "\n")
		if err := os.WriteFile(filepath.Join(dir, tg.InterpreterName()), b.Bytes(), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runRPMBuild runs rpmbuild (-ba or -bb) on the repository's spec, with
// its own _topdir and the sources in sourcedir, and returns the binary
// rpms and the source rpm it wrote.
func runRPMBuild(ctx context.Context, env []string, topdir, sourcedir, src, mode string, defines map[string]string) ([]string, string, error) {
	args := []string{mode, "--nodeps", "--define", "_topdir " + topdir, "--define", "_sourcedir " + sourcedir}
	var keys []string
	for k := range defines {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--define", k+" "+defines[k])
	}
	args = append(args, filepath.Join(src, specFile))
	cmd := exec.CommandContext(ctx, "rpmbuild", args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, "", fmt.Errorf("rpmbuild %s: %w\n%s", strings.Join(args, " "), err, tail(out, 40))
	}
	rpms, _ := filepath.Glob(filepath.Join(topdir, "RPMS", "*", "*.rpm"))
	srpms, _ := filepath.Glob(filepath.Join(topdir, "SRPMS", "*.src.rpm"))
	if len(rpms) != 2 {
		return nil, "", fmt.Errorf("rpmbuild %s wrote %d binary rpms, want 2 (%s and %s): %q", mode, len(rpms), name, helperName, rpms)
	}
	srpm := ""
	if len(srpms) == 1 {
		srpm = srpms[0]
	}
	if bytes.Contains(out, []byte("RPM build warnings")) {
		return nil, "", fmt.Errorf("rpmbuild %s warned:\n%s", mode, tail(out, 10))
	}
	return rpms, srpm, nil
}

func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pkg is what the comparison reads from one rpm.
type pkg struct {
	path   string
	header map[string]string
	files  map[string]file
	report *inspect.Report
	confs  map[string]string
}

// file is one entry of the header's file list, everything rpm records.
type file struct {
	Mode               int
	User, Group        string
	Size               int64
	Digest             string
	Mtime              int
	Flags, VerifyFlags int
	Link               string
	Rdev               int
	Caps, Lang         string
}

func (f file) String() string {
	return fmt.Sprintf("mode %#o %s:%s size %d digest %q mtime %d flags %#x verify %#x link %q dev %d caps %q lang %q",
		f.Mode, f.User, f.Group, f.Size, f.Digest, f.Mtime, f.Flags, f.VerifyFlags, f.Link, f.Rdev, f.Caps, f.Lang)
}

// headerTags are compared as they are. Left out on purpose, as they
// describe the build rather than the package: PAYLOADCOMPRESSOR and
// PAYLOADFLAGS (each build's compression), RPMVERSION, PLATFORM and
// OPTFLAGS (rpmbuild's environment), COOKIE, FILECOLORS and FILECLASS
// (rpmbuild's libmagic classification of the files, which nfpm does not
// record), ARCHIVESIZE (cpio framing), and the signature header.
var headerTags = []struct {
	name string
	tag  int
}{
	{"NAME", rpmutils.NAME}, {"EPOCH", rpmutils.EPOCH}, {"VERSION", rpmutils.VERSION},
	{"RELEASE", rpmutils.RELEASE}, {"ARCH", rpmutils.ARCH}, {"OS", rpmutils.OS},
	{"SUMMARY", rpmutils.SUMMARY}, {"DESCRIPTION", rpmutils.DESCRIPTION},
	{"LICENSE", rpmutils.LICENSE}, {"GROUP", rpmutils.GROUP}, {"URL", rpmutils.URL},
	{"PACKAGER", rpmutils.PACKAGER}, {"VENDOR", rpmutils.VENDOR},
	{"DISTRIBUTION", rpmutils.DISTRIBUTION}, {"BUILDHOST", rpmutils.BUILDHOST},
	{"BUILDTIME", rpmutils.BUILDTIME}, {"SOURCERPM", rpmutils.SOURCERPM},
	{"SIZE", rpmutils.SIZE}, {"FILEDIGESTALGO", rpmutils.FILEDIGESTALGO},
	{"CHANGELOGTIME", rpmutils.CHANGELOGTIME}, {"CHANGELOGNAME", rpmutils.CHANGELOGNAME},
	{"CHANGELOGTEXT", rpmutils.CHANGELOGTEXT},
	// Weak and ordering dependencies: neither build has any.
	{"RECOMMENDNAME", 5046}, {"SUGGESTNAME", 5049}, {"SUPPLEMENTNAME", 5052},
	{"ENHANCENAME", 5055}, {"ORDERNAME", 5035},
	{"TRIGGERNAME", rpmutils.TRIGGERNAME},
	// Dependencies with their sense flags (the scriptlets' interpreter
	// in context, rpmlib() features, the ISA provide, rpm_macro()), in
	// rpmbuild's order.
	{"REQUIRENAME", rpmutils.REQUIRENAME}, {"REQUIREFLAGS", rpmutils.REQUIREFLAGS}, {"REQUIREVERSION", rpmutils.REQUIREVERSION},
	{"PROVIDENAME", rpmutils.PROVIDENAME}, {"PROVIDEFLAGS", rpmutils.PROVIDEFLAGS}, {"PROVIDEVERSION", rpmutils.PROVIDEVERSION},
	{"CONFLICTNAME", rpmutils.CONFLICTNAME}, {"CONFLICTFLAGS", rpmutils.CONFLICTFLAGS}, {"CONFLICTVERSION", rpmutils.CONFLICTVERSION},
	{"OBSOLETENAME", rpmutils.OBSOLETENAME}, {"OBSOLETEFLAGS", rpmutils.OBSOLETEFLAGS}, {"OBSOLETEVERSION", rpmutils.OBSOLETEVERSION},
	// File triggers (spec/triggers.yaml and the spec's
	// %filetrigger*/%transfiletrigger* sections): bodies, interpreters,
	// prefixes with their kind and trigger index, and priorities.
	{"FILETRIGGERSCRIPTS", 5066}, {"FILETRIGGERSCRIPTPROG", 5067}, {"FILETRIGGERSCRIPTFLAGS", 5068},
	{"FILETRIGGERNAME", 5069}, {"FILETRIGGERINDEX", 5070}, {"FILETRIGGERFLAGS", 5072},
	{"FILETRIGGERPRIORITIES", 5084},
	{"TRANSFILETRIGGERSCRIPTS", 5076}, {"TRANSFILETRIGGERSCRIPTPROG", 5077}, {"TRANSFILETRIGGERSCRIPTFLAGS", 5078},
	{"TRANSFILETRIGGERNAME", 5079}, {"TRANSFILETRIGGERINDEX", 5080}, {"TRANSFILETRIGGERFLAGS", 5082},
	{"TRANSFILETRIGGERPRIORITIES", 5085},
}

// TestNoIntendedDifferences keeps the equivalence exact: every tag that
// carries a dependency or a trigger is compared as it is, so no
// difference between the builds can be declared intended by leaving its
// tag out.
func TestNoIntendedDifferences(t *testing.T) {
	compared := map[int]bool{}
	for _, ht := range headerTags {
		compared[ht.tag] = true
	}
	for _, tag := range []int{
		rpmutils.REQUIRENAME, rpmutils.REQUIREFLAGS, rpmutils.REQUIREVERSION,
		rpmutils.PROVIDENAME, rpmutils.PROVIDEFLAGS, rpmutils.PROVIDEVERSION,
		rpmutils.CONFLICTNAME, rpmutils.CONFLICTFLAGS, rpmutils.CONFLICTVERSION,
		rpmutils.OBSOLETENAME, rpmutils.OBSOLETEFLAGS, rpmutils.OBSOLETEVERSION,
		5046, 5049, 5052, 5055, 5035, rpmutils.TRIGGERNAME,
		5066, 5067, 5068, 5069, 5070, 5072, 5084, 5076, 5077, 5078, 5079, 5080, 5082, 5085,
	} {
		if !compared[tag] {
			t.Errorf("tag %d is not compared between the builds", tag)
		}
	}
}

// Tags go-rpmutils has no name for.
const (
	tagFileLangs = 1097
	tagFileCaps  = rpmutils.FILECAPS
)

func readPkg(t *testing.T, p string) *pkg {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := rpmutils.ReadRpm(f)
	if err != nil {
		t.Fatalf("reading %s: %v", p, err)
	}
	h := r.Header
	out := &pkg{path: p, header: map[string]string{}, files: map[string]file{}, confs: map[string]string{}}
	for _, ht := range headerTags {
		out.header[ht.name] = tagString(h, ht.tag)
	}
	files, err := h.GetFiles()
	if err != nil {
		t.Fatalf("reading the file list of %s: %v", p, err)
	}
	verify, _ := h.GetInts(rpmutils.FILEVERIFYFLAGS)
	caps, _ := h.GetStrings(tagFileCaps)
	langs, _ := h.GetStrings(tagFileLangs)
	for i, fi := range files {
		e := file{Mode: fi.Mode(), User: fi.UserName(), Group: fi.GroupName(), Size: fi.Size(), Digest: fi.Digest(),
			Mtime: fi.Mtime(), Flags: fi.Flags(), Link: fi.Linkname(), Rdev: fi.Device()}
		if i < len(verify) {
			e.VerifyFlags = verify[i]
		}
		if i < len(caps) {
			e.Caps = caps[i]
		}
		if i < len(langs) {
			e.Lang = langs[i]
		}
		out.files[fi.Name()] = e
	}
	// inspect checks every file's digest against the payload, and reads
	// the binfmt.d files and the scriptlets.
	out.report, err = inspect.File(p, inspect.Options{DefaultHost: runtime.GOARCH})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range out.report.Confs {
		out.confs[c.Path] = c.Data
	}
	return out
}

func tagString(h *rpmutils.RpmHeader, tag int) string {
	if !h.HasTag(tag) {
		return ""
	}
	if s, err := h.GetStrings(tag); err == nil {
		return strings.Join(s, "\x00")
	}
	if n, err := h.GetUint64s(tag); err == nil {
		return fmt.Sprint(n)
	}
	v, _ := h.Get(tag)
	return fmt.Sprint(v)
}

// compare fails on every difference between the nfpm and the rpmbuild
// package that is not one of the intended ones, which are listed here
// with the reason.
func compare(t *testing.T, b build, tree string, scripts bool) (nfpmPkg, rbPkg *pkg) {
	t.Helper()
	a, r := readPkg(t, b.nfpm), readPkg(t, b.rpmbuild)
	if filepath.Base(a.path) != filepath.Base(r.path) {
		t.Errorf("file names differ: nfpm %s, rpmbuild %s", filepath.Base(a.path), filepath.Base(r.path))
	}
	for _, ht := range headerTags {
		if a.header[ht.name] != r.header[ht.name] {
			t.Errorf("%s differs:\nnfpm:     %q\nrpmbuild: %q", ht.name, a.header[ht.name], r.header[ht.name])
		}
	}

	// The file manifest: paths, types and modes, owners, sizes, digests
	// (binfmtctl included: same sources, flags and toolchain), times and
	// flags (%doc, %license, %config).
	for _, p := range union(keys(a.files), keys(r.files)) {
		fa, inA := a.files[p]
		fr, inR := r.files[p]
		switch {
		case !inA:
			t.Errorf("%s is only in the rpmbuild package", p)
			continue
		case !inR:
			t.Errorf("%s is only in the nfpm package", p)
			continue
		}
		if fa.Mode&0o170000 == 0o040000 {
			// Intended: nfpm records a directory's size as 4096, rpmbuild
			// as 0; rpm never checks it.
			fa.Size, fr.Size = 0, 0
		}
		if fa != fr {
			t.Errorf("%s differs:\nnfpm:     %s\nrpmbuild: %s", p, fa, fr)
		}
	}

	// The binfmt.d files, byte for byte.
	for _, p := range union(keys(a.confs), keys(r.confs)) {
		if a.confs[p] != r.confs[p] {
			t.Errorf("%s differs:\nnfpm:\n%s\nrpmbuild:\n%s", p, a.confs[p], r.confs[p])
		}
	}

	// The scriptlets: both are scriptlets/*.sh with the package macros
	// expanded. Intended: rpmbuild drops the newline that ends the last
	// line of each body (nfpm keeps the file as it is); sh runs both the
	// same.
	want := scriptlets.Render(name, a.report.Version, a.report.Release)
	wantBody := map[string]string{"post": want.Post, "preun": want.Preun, "postun": want.Postun}
	if !scripts {
		wantBody = map[string]string{}
	}
	for _, rep := range []*inspect.Report{a.report, r.report} {
		got := map[string]string{}
		for _, s := range rep.Scriptlets {
			if s.Prog != "/bin/sh" {
				t.Errorf("%s: %%%s runs %q, want /bin/sh", rep.File, s.Phase, s.Prog)
			}
			got[s.Phase] = s.Body
		}
		if len(got) != len(wantBody) {
			t.Errorf("%s has scriptlets %q, want %q", rep.File, keys(got), keys(wantBody))
		}
		for phase, body := range wantBody {
			if strings.TrimSuffix(got[phase], "\n") != strings.TrimSuffix(body, "\n") {
				t.Errorf("%s: %%%s is not scriptlets/%s.sh expanded:\n%s", rep.File, phase, phase, got[phase])
			}
		}
	}

	// Dependencies, as rpm -qR prints them, as sets: no difference is
	// intended (the header comparison above also checks their flags and
	// order). TestNoIntendedDifferences keeps it so.
	compareDeps(t, "Requires", a.report.Requires, r.report.Requires)
	compareDeps(t, "Provides", a.report.Provides, r.report.Provides)
	compareDeps(t, "Conflicts", a.report.Conflicts, r.report.Conflicts)
	compareDeps(t, "Obsoletes", a.report.Obsoletes, r.report.Obsoletes)
	for _, want := range []string{"/bin/sh", "rpmlib(PayloadIsZstd) <= 5.4.18-1"} {
		if !scripts && want == "/bin/sh" {
			continue
		}
		if !slices.Contains(a.report.Requires, want) {
			t.Errorf("%s does not require %q: %q", a.path, want, a.report.Requires)
		}
	}
	return a, r
}

// compareDeps fails unless nfpm and rpmbuild list the same dependencies.
func compareDeps(t *testing.T, what string, nfpm, rb []string) {
	t.Helper()
	a, b := set(nfpm), set(rb)
	for d := range a {
		if !b[d] {
			t.Errorf("%s: %q is only in the nfpm package", what, d)
		}
	}
	for d := range b {
		if !a[d] {
			t.Errorf("%s: %q is only in the rpmbuild package", what, d)
		}
	}
}

// checkHelper checks that the helper's package holds the helper, the
// macros and its docs, byte for byte the same helper and macros as
// qemu-user-static-go of the same build (rpm shares identical files between
// packages; different ones would conflict), no binfmt.d file, and the
// same-version relation both ways.
func checkHelper(t *testing.T, h *pkg, main string) {
	t.Helper()
	m := readPkg(t, main)
	for _, p := range []string{"/usr/bin/binfmtctl", "/usr/lib/rpm/macros.d/macros.binfmtctl",
		"/usr/share/man/man8/binfmtctl.8.gz", "/usr/share/bash-completion/completions/binfmtctl",
		"/usr/share/zsh/site-functions/_binfmtctl", "/usr/share/fish/vendor_completions.d/binfmtctl.fish"} {
		if _, ok := h.files[p]; !ok || h.files[p] != m.files[p] {
			t.Errorf("%s: %s is %s, in %s %s", h.path, p, h.files[p], main, m.files[p])
		}
	}
	for _, p := range []string{"/usr/share/doc/binfmtctl/README", "/usr/share/licenses/binfmtctl/COPYING"} {
		if _, ok := h.files[p]; !ok {
			t.Errorf("%s has no %s", h.path, p)
		}
	}
	if len(h.confs) != 0 {
		t.Errorf("%s ships binfmt.d files: %q", h.path, keys(h.confs))
	}
	evr := h.report.Version + "-" + h.report.Release
	if want := "(" + name + " = " + evr + " if " + name + ")"; !slices.Contains(h.report.Requires, want) {
		t.Errorf("%s does not require %q: %q", h.path, want, h.report.Requires)
	}
	if want := "(" + helperName + " = " + evr + " if " + helperName + ")"; !slices.Contains(m.report.Requires, want) {
		t.Errorf("%s does not require %q: %q", main, want, m.report.Requires)
	}
}

// checkConfs checks that a package's binfmt.d files are the generator's
// for cpus on the package's architecture (every target but the host
// family's when cpus is nil), and that it conflicts with exactly the
// Fedora subpackages of those cpus' groups, besides qemu-user-static and
// qemu-user-binfmt.
func checkConfs(t *testing.T, p *pkg, cpus []string, explicit bool) {
	t.Helper()
	want, err := qemu.Generate(cpus, p.report.Arch, qemu.Options{IncludeHostFamily: explicit})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k, v := range p.confs {
		got[k] = v
	}
	for _, f := range want {
		path := "/usr/lib/binfmt.d/" + f.Name
		if got[path] != string(f.Data) {
			t.Errorf("%s: %s is %q, want %q", p.path, path, got[path], f.Data)
		}
		delete(got, path)
	}
	for path := range got {
		t.Errorf("%s: unexpected %s", p.path, path)
	}
	if len(want) < 2 {
		t.Errorf("the generator gave %d files; the test needs targets outside the host family", len(want))
	}
	// Every file's cpu group shows up as a conflict; the group names
	// themselves are compared between the builds in compare.
	conflicts := set(p.report.Conflicts)
	for _, c := range []string{"qemu-user-static", "qemu-user-binfmt"} {
		if !conflicts[c] {
			t.Errorf("%s does not conflict with %s", p.path, c)
		}
	}
	if len(conflicts) < 3 {
		t.Errorf("%s conflicts with %q: no qemu-user-static-<group>", p.path, p.report.Conflicts)
	}
}

// checkSRPM checks that the source package holds the spec as it is in the
// repository, the tarball and the scriptlets, and nothing else: the
// scriptlets it runs are scriptlets/*.sh themselves.
func checkSRPM(t *testing.T, srpm, src, version string) {
	t.Helper()
	if srpm == "" {
		t.Fatal("rpmbuild -ba wrote no source rpm")
	}
	f, err := os.Open(srpm)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := rpmutils.ReadRpm(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		specFile:                         filepath.Join(src, specFile),
		name + "-" + version + ".tar.gz": "",
	}
	for _, s := range specSources(t, src) {
		want[s] = filepath.Join(src, "scriptlets", s)
	}
	pr, err := r.PayloadReaderExtended()
	if err != nil {
		t.Fatal(err)
	}
	for {
		fi, err := pr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(fi.Name())
		p, ok := want[base]
		if !ok {
			t.Errorf("%s: unexpected %s", srpm, fi.Name())
			continue
		}
		delete(want, base)
		if p == "" {
			continue
		}
		got, err := io.ReadAll(pr)
		if err != nil {
			t.Fatal(err)
		}
		if orig, err := os.ReadFile(p); err != nil || !bytes.Equal(got, orig) {
			t.Errorf("%s: %s is not %s (%v)", srpm, base, p, err)
		}
	}
	for base := range want {
		t.Errorf("%s: no %s", srpm, base)
	}
	// One copy of the scriptlet text: the spec only %includes it.
	spec, err := os.ReadFile(filepath.Join(src, specFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(spec, []byte("binfmtctl hook")) {
		t.Errorf("%s runs binfmtctl itself; its scriptlets must be %%include %%{SOURCEn} of scriptlets/*.sh", specFile)
	}
}

// rpmlintLine is one finding: "PKG: E: ID DETAILS" (or "FILE.spec:N: W: ...").
var rpmlintLine = regexp.MustCompile(`^(\S+?)(?::\d+)?: ([EW]): (\S+)(?: (.*))?$`)

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("no package matches %s (%v)", pattern, err)
	}
	return m
}

// rpmlint runs the stack's rpmlint with spec/rpmlintrc on each group of
// packages and fails on any error, and on any warning docs/rpmlint.md does
// not list.
func rpmlint(t *testing.T, st sandbox.Stack, src, home string, groups map[string][]string) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(src, "docs", "rpmlint.md"))
	if err != nil {
		t.Fatalf("reading the list of accepted rpmlint warnings: %v", err)
	}
	var wg sync.WaitGroup
	outs := map[string][]byte{}
	errs := map[string]error{}
	var mu sync.Mutex
	for g, files := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// --ignore-unused-rpmlintrc: each filter is for one of the
			// builds, or for the spec, which only the source rpm has.
			args := append([]string{"-r", filepath.Join(src, "spec", "rpmlintrc"), "--ignore-unused-rpmlintrc"}, files...)
			share := []string{src, home}
			for _, f := range files {
				share = append(share, filepath.Dir(f))
			}
			out, err := st.Run(t, sandbox.RunOptions{Share: share, Env: []string{"HOME=" + home}}, "rpmlint", args...)
			mu.Lock()
			outs[g], errs[g] = []byte(out), err
			mu.Unlock()
		}()
	}
	wg.Wait()
	for g := range groups {
		out := outs[g]
		var errors, warnings []string
		for _, line := range strings.Split(string(out), "\n") {
			m := rpmlintLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if m[2] == "E" {
				errors = append(errors, line)
				continue
			}
			warnings = append(warnings, line)
			if !bytes.Contains(doc, []byte("`"+m[3]+"`")) {
				t.Errorf("rpmlint on %s (%s build): warning %s is not in docs/rpmlint.md; fix it, or list it there with the reason: %s", st.Name, g, m[3], line)
			}
		}
		if len(errors) > 0 {
			t.Errorf("rpmlint on %s (%s build): %d errors; fix them, or filter them in spec/rpmlintrc and list them in docs/rpmlint.md with the reason:\n%s", st.Name, g, len(errors), strings.Join(errors, "\n"))
		}
		if errs[g] != nil && len(errors) == 0 {
			t.Errorf("rpmlint on %s (%s build) failed: %v\n%s", st.Name, g, errs[g], out)
		}
		t.Logf("rpmlint on %s (%s build): %d errors, %d warnings", st.Name, g, len(errors), len(warnings))
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func union(a, b []string) []string {
	s := set(append(slices.Clone(a), b...))
	return keys(s)
}

func set(list []string) map[string]bool {
	s := map[string]bool{}
	for _, x := range list {
		s[x] = true
	}
	return s
}
