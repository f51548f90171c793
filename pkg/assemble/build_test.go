package assemble_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	rpmutils "github.com/sassoftware/go-rpmutils"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/inspect"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/qemu"
)

// epoch is the fixed SOURCE_DATE_EPOCH of the tests' builds.
var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// sourceDir is the repository: the tests build the real package from the
// real spec and scriptlets.
func sourceDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := assemble.FindSourceDir(wd)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

var (
	helperOnce sync.Once
	helperDir  string
	helperPath string
	helperErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if helperDir != "" {
		os.RemoveAll(helperDir)
	}
	os.Exit(code)
}

// helper builds binfmtctl once for the tests that do not test building
// it, so that they stay quick.
func helper(t *testing.T) string {
	t.Helper()
	helperOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rpmbuild-test-helper-*")
		if err != nil {
			helperErr = err
			return
		}
		helperDir = dir
		helperPath = filepath.Join(dir, "binfmtctl")
		cmd := exec.Command("go", "build", "-trimpath", "-o", helperPath, "./cmd/binfmtctl")
		cmd.Dir = sourceDir(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			helperErr = errors.New("building binfmtctl: " + err.Error() + "\n" + string(out))
		}
	})
	if helperErr != nil {
		t.Fatal(helperErr)
	}
	return helperPath
}

// needInterpreters fails unless Debian's interpreters for cpus exist.
func needInterpreters(t *testing.T, cpus ...string) {
	t.Helper()
	for _, cpu := range cpus {
		sandbox.Require(t, "/usr/bin/qemu-"+cpu+"-static", "qemu-user-static")
	}
}

// build builds the package into a new directory with the test defaults
// (fixed epoch, prebuilt helper unless o.Binfmtctl is "-").
func build(t *testing.T, o assemble.Options) *assemble.Result {
	t.Helper()
	if o.OutputDir == "" {
		o.OutputDir = t.TempDir()
	}
	if o.SourceDateEpoch.IsZero() {
		o.SourceDateEpoch = epoch
	}
	switch o.Binfmtctl {
	case "":
		o.Binfmtctl = helper(t)
	case "-":
		o.Binfmtctl = ""
	}
	if o.Version == "" {
		o.Version = "1.2.3"
	}
	o.TempDir = t.TempDir()
	var log bytes.Buffer
	o.Log = &log
	res, err := assemble.Build(context.Background(), o)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	return res
}

// pkgFile is what a test needs of one packaged file.
type pkgFile struct {
	mode         int
	owner, group string
	size         int64
	flags        int
	data         []byte // regular files only
}

// readPackage reads the rpm at p with go-rpmutils: the header and every
// file's content.
func readPackage(t *testing.T, p string) (*rpmutils.RpmHeader, map[string]*pkgFile) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, err := rpmutils.Verify(f, nil); err != nil {
		t.Fatalf("verifying %s: %v", p, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	pkg, err := rpmutils.ReadRpm(f)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := pkg.Header.GetFiles()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*pkgFile{}
	for _, fi := range infos {
		files[fi.Name()] = &pkgFile{mode: fi.Mode(), owner: fi.UserName(), group: fi.GroupName(), size: fi.Size(), flags: fi.Flags()}
	}
	pr, err := pkg.PayloadReaderExtended()
	if err != nil {
		t.Fatal(err)
	}
	for {
		fi, err := pr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading the payload of %s: %v", p, err)
		}
		if fi.Mode()&0o170000 != 0o100000 {
			continue
		}
		data, err := io.ReadAll(pr)
		if err != nil {
			t.Fatal(err)
		}
		files[fi.Name()].data = data
	}
	return pkg.Header, files
}

func strs(t *testing.T, h *rpmutils.RpmHeader, tag int) []string {
	t.Helper()
	v, err := h.GetStrings(tag)
	if err != nil {
		return nil
	}
	return v
}

// expanded is a scriptlet from the repository with the macros rpmbuild
// would expand, expanded independently of the code under test.
func expanded(t *testing.T, name, version, release string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(sourceDir(t), "scriptlets", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("%{name}", "qemu-user-static-go", "%{version}", version, "%{release}", release, "%%", "%").Replace(string(data))
}

func TestBuildContents(t *testing.T) {
	needInterpreters(t, "aarch64", "riscv64")
	res := build(t, assemble.Options{CPUs: []string{"riscv64", "aarch64"}, Release: "7", Compression: "small"})

	if want := "qemu-user-static-go-1.2.3-7.x86_64.rpm"; filepath.Base(res.Path) != want {
		t.Errorf("file name %s, want %s", filepath.Base(res.Path), want)
	}
	if !slices.Equal(res.CPUs, []string{"aarch64", "riscv64"}) {
		t.Errorf("cpus %v, want table order [aarch64 riscv64]", res.CPUs)
	}
	h, files := readPackage(t, res.Path)

	nevra, err := h.GetNEVRA()
	if err != nil {
		t.Fatal(err)
	}
	if nevra.Name != "qemu-user-static-go" || nevra.Version != "1.2.3" || nevra.Release != "7" || nevra.Arch != "x86_64" {
		t.Errorf("NEVRA %+v", nevra)
	}

	// The manifest: every path, its mode and owner.
	want := map[string]int{
		"/usr/bin/binfmtctl":                              0o100755,
		"/usr/bin/qemu-aarch64-static":                    0o100755,
		"/usr/bin/qemu-riscv64-static":                    0o100755,
		"/usr/lib/binfmt.d":                               0o040755,
		"/usr/lib/binfmt.d/qemu-aarch64-static.conf":      0o100644,
		"/usr/lib/binfmt.d/qemu-riscv64-static.conf":      0o100644,
		"/usr/lib/rpm/macros.d/macros.binfmtctl":          0o100644,
		"/usr/share/doc/qemu-user-static-go":              0o040755,
		"/usr/share/doc/qemu-user-static-go/README":       0o100644,
		"/usr/share/licenses/qemu-user-static-go":         0o040755,
		"/usr/share/licenses/qemu-user-static-go/COPYING": 0o100644,
	}
	helperWant := map[string]int{
		"/usr/bin/binfmtctl":                                  0o100755,
		"/usr/lib/rpm/macros.d/macros.binfmtctl":              0o100644,
		"/usr/share/man/man8/binfmtctl.8.gz":                  0o100644,
		"/usr/share/bash-completion/completions/binfmtctl":    0o100644,
		"/usr/share/zsh/site-functions/_binfmtctl":            0o100644,
		"/usr/share/fish/vendor_completions.d/binfmtctl.fish": 0o100644,
	}
	// Both packages carry the helper, its macros, manual and completions.
	for p, m := range helperWant {
		want[p] = m
	}
	checkManifest(t, files, want)

	// binfmtctl's package: the same helper files, its own docs, nothing
	// of qemu's, no scriptlets.
	if len(res.Packages) != 2 || res.Packages[0].Name != "binfmtctl" || filepath.Base(res.Packages[0].Path) != "binfmtctl-1.2.3-7.x86_64.rpm" {
		t.Fatalf("packages %+v, want binfmtctl-1.2.3-7.x86_64.rpm first", res.Packages)
	}
	hh, helperFiles := readPackage(t, res.Packages[0].Path)
	for p, m := range map[string]int{
		"/usr/share/doc/binfmtctl":              0o040755,
		"/usr/share/doc/binfmtctl/README":       0o100644,
		"/usr/share/licenses/binfmtctl":         0o040755,
		"/usr/share/licenses/binfmtctl/COPYING": 0o100644,
	} {
		helperWant[p] = m
	}
	checkManifest(t, helperFiles, helperWant)
	for p := range helperWant {
		if f := files[p]; f != nil && !bytes.Equal(f.data, helperFiles[p].data) {
			t.Errorf("%s differs between the two packages", p)
		}
	}
	for _, tag := range []int{rpmutils.POSTIN, rpmutils.PREUN, rpmutils.POSTUN} {
		if body := strs(t, hh, tag); len(body) != 0 {
			t.Errorf("binfmtctl's package has scriptlet %d: %q", tag, body)
		}
	}
	if src := strs(t, hh, rpmutils.SOURCERPM); len(src) != 1 || src[0] != "qemu-user-static-go-1.2.3-7.src.rpm" {
		t.Errorf("binfmtctl's source rpm is %q, want qemu-user-static-go's, as rpmbuild's subpackage", src)
	}

	// rpm marks the license and the doc.
	if files["/usr/share/licenses/qemu-user-static-go/COPYING"].flags&(1<<7) == 0 {
		t.Error("COPYING is not marked as a license file")
	}
	if files["/usr/share/doc/qemu-user-static-go/README"].flags&(1<<1) == 0 {
		t.Error("README is not marked as documentation")
	}
	testInterpretersAndConfs(t, h, files, res.Path)
}

// checkManifest fails unless files holds exactly the paths of want, each
// with its mode, owned by root.
func checkManifest(t *testing.T, files map[string]*pkgFile, want map[string]int) {
	t.Helper()
	var got []string
	for p, f := range files {
		got = append(got, p)
		if f.owner != "root" || f.group != "root" {
			t.Errorf("%s is owned by %s:%s, want root:root", p, f.owner, f.group)
		}
		if m, ok := want[p]; ok && f.mode != m {
			t.Errorf("%s has mode %o, want %o", p, f.mode, m)
		}
	}
	var wantPaths []string
	for p := range want {
		wantPaths = append(wantPaths, p)
	}
	sort.Strings(got)
	sort.Strings(wantPaths)
	if !slices.Equal(got, wantPaths) {
		t.Errorf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantPaths, "\n"))
	}
}

// testInterpretersAndConfs checks qemu-user-static-go's interpreters,
// binfmt.d files and scriptlets.
func testInterpretersAndConfs(t *testing.T, h *rpmutils.RpmHeader, files map[string]*pkgFile, path string) {
	t.Helper()

	// The interpreters are the host's, byte for byte.
	for _, cpu := range []string{"aarch64", "riscv64"} {
		src, err := os.ReadFile("/usr/bin/qemu-" + cpu + "-static")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(files["/usr/bin/qemu-"+cpu+"-static"].data, src) {
			t.Errorf("the packaged qemu-%s-static differs from /usr/bin's", cpu)
		}
	}

	// The conf files are the generator's, and parse to its entries.
	confs, err := qemu.Generate([]string{"aarch64", "riscv64"}, "x86_64", qemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range confs {
		data := files["/usr/lib/binfmt.d/"+c.Name].data
		if !bytes.Equal(data, c.Data) {
			t.Errorf("%s:\n%s\nwant:\n%s", c.Name, data, c.Data)
		}
		lines, errs := binfmt.Parse(bytes.NewReader(data), c.Name)
		if len(errs) > 0 || len(lines) != 1 {
			t.Fatalf("%s: %v %v", c.Name, lines, errs)
		}
		tgt, _ := qemu.Lookup(c.CPU)
		if e := lines[0].Entry; e.Interpreter != "/usr/bin/"+tgt.InterpreterName() || e.Flags != "F" {
			t.Errorf("%s: entry %+v", c.Name, e)
		}
	}

	// The scriptlets are the repository's, macros expanded.
	for tag, name := range map[int]string{rpmutils.POSTIN: "post.sh", rpmutils.PREUN: "preun.sh", rpmutils.POSTUN: "postun.sh"} {
		body := strs(t, h, tag)
		if len(body) != 1 || body[0] != expanded(t, name, "1.2.3", "7") {
			t.Errorf("scriptlet %s:\n%q\nwant:\n%q", name, body, expanded(t, name, "1.2.3", "7"))
		}
		if strings.Contains(body[0], "%{") {
			t.Errorf("scriptlet %s still has a macro", name)
		}
	}

	// Conflicts with Fedora's packages that own the same paths.
	conflicts := strs(t, h, rpmutils.CONFLICTNAME)
	for _, c := range []string{"qemu-user-static", "qemu-user-binfmt", "qemu-user-static-aarch64", "qemu-user-static-riscv"} {
		if !slices.Contains(conflicts, c) {
			t.Errorf("conflicts %v lack %s", conflicts, c)
		}
	}
	if len(conflicts) != 4 {
		t.Errorf("conflicts %v, want 4", conflicts)
	}

	// Build time and file times are the epoch; the build host is fixed.
	if host := strs(t, h, rpmutils.BUILDHOST); len(host) != 1 || host[0] != "reproducible" {
		t.Errorf("build host %v", host)
	}
	if bt, _ := h.GetInts(rpmutils.BUILDTIME); len(bt) != 1 || int64(bt[0]) != epoch.Unix() {
		t.Errorf("build time %v, want %d", bt, epoch.Unix())
	}
	mtimes, _ := h.GetInts(rpmutils.FILEMTIMES)
	for _, m := range mtimes {
		if int64(m) != epoch.Unix() {
			t.Errorf("file mtime %d, want %d", m, epoch.Unix())
		}
	}

	// The real rpm agrees.
	rpmK(t, path)
	sandbox.Require(t, "rpm", "rpm")
	out, err := exec.Command("rpm", "-qp", "--scripts", path).CombinedOutput()
	if err != nil {
		t.Fatalf("rpm -qp --scripts: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "/usr/bin/binfmtctl hook post 'qemu-user-static-go-1.2.3-7' \"$1\" || :") {
		t.Errorf("rpm -qp --scripts:\n%s", out)
	}

	// And the package passes its own lint.
	rep, err := inspect.File(path, inspect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Errorf("inspect found problems: %v", rep.Problems)
	}
	if len(rep.Entries) != 2 {
		t.Errorf("inspect found entries %v", rep.Entries)
	}
}

// rpmK runs rpm -K and wants every check OK.
func rpmK(t *testing.T, p string, args ...string) string {
	t.Helper()
	sandbox.Require(t, "rpm", "rpm")
	out, err := exec.Command("rpm", append(args, "-K", p)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") || strings.Contains(string(out), "NOT OK") {
		t.Fatalf("rpm -K %s: %v\n%s", p, err, out)
	}
	return string(out)
}

func sha(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func TestReproducible(t *testing.T) {
	needInterpreters(t, "s390x")
	for _, comp := range []string{"small", "fast"} {
		t.Run(comp, func(t *testing.T) {
			// The helper is built each time too: its bytes must not
			// change either.
			a := build(t, assemble.Options{CPUs: []string{"s390x"}, Compression: comp, Binfmtctl: "-"})
			b := build(t, assemble.Options{CPUs: []string{"s390x"}, Compression: comp, Binfmtctl: "-"})
			if a.SHA256 != b.SHA256 || sha(t, a.Path) != sha(t, b.Path) || a.SHA256 != sha(t, a.Path) {
				t.Errorf("two builds differ: %s and %s", a.SHA256, b.SHA256)
			}
		})
	}
}

func TestConfFlags(t *testing.T) {
	needInterpreters(t, "s390x")
	for _, c := range []struct {
		o    assemble.Options
		want string
	}{
		{assemble.Options{}, ":F\n"},
		{assemble.Options{Preserve: true}, ":PF\n"},
		{assemble.Options{Preserve: true, Credentials: true}, ":POCF\n"},
	} {
		c.o.CPUs = []string{"s390x"}
		c.o.Compression = "fast"
		_, files := readPackage(t, build(t, c.o).Path)
		conf := files["/usr/lib/binfmt.d/qemu-s390x-static.conf"]
		if conf == nil || !strings.HasSuffix(string(conf.data), c.want) {
			t.Errorf("Preserve %v, Credentials %v: conf ends %q, want flags %q", c.o.Preserve, c.o.Credentials, conf.data, c.want)
		}
	}
}

func TestCompressions(t *testing.T) {
	needInterpreters(t, "s390x")
	sandbox.Require(t, "rpm2cpio", "rpm")
	sandbox.Require(t, "cpio", "cpio")
	for _, comp := range []string{"small", "fast", "smallest"} {
		t.Run(comp, func(t *testing.T) {
			res := build(t, assemble.Options{CPUs: []string{"s390x"}, Compression: comp})
			rpmK(t, res.Path)
			// rpm's own decompressor reads the whole payload.
			cmd := exec.Command("sh", "-c", `rpm2cpio "$1" | cpio -it --quiet`, "sh", res.Path)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "usr/bin/qemu-s390x-static") {
				t.Fatalf("rpm2cpio | cpio -t: %v\n%s", err, out)
			}
			if _, err := inspect.File(res.Path, inspect.Options{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBuildsHelper(t *testing.T) {
	needInterpreters(t, "s390x")
	res := build(t, assemble.Options{CPUs: []string{"s390x"}, Version: "4.5", Release: "6", Binfmtctl: "-", Compression: "fast"})
	_, files := readPackage(t, res.Path)
	exe := filepath.Join(t.TempDir(), "binfmtctl")
	if err := os.WriteFile(exe, files["/usr/bin/binfmtctl"].data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("binfmtctl --version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "4.5-6") {
		t.Errorf("binfmtctl --version says %q, want the package version 4.5-6", out)
	}
	// Static: no program interpreter to load.
	if out, err := exec.Command("file", exe).CombinedOutput(); err == nil && !strings.Contains(string(out), "statically linked") {
		t.Errorf("binfmtctl is not static: %s", out)
	}
}

func TestSelectCPUs(t *testing.T) {
	needInterpreters(t, "aarch64", "i386", "x86_64", "s390x")
	// A qemu directory with links to a few interpreters.
	dir := t.TempDir()
	for _, cpu := range []string{"aarch64", "i386", "x86_64", "s390x"} {
		if err := os.Symlink("/usr/bin/qemu-"+cpu+"-static", filepath.Join(dir, "qemu-"+cpu+"-static")); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("default leaves out the host family", func(t *testing.T) {
		res := build(t, assemble.Options{QemuDir: dir, Compression: "fast"})
		if !slices.Equal(res.CPUs, []string{"s390x", "aarch64"}) {
			t.Errorf("cpus %v, want [s390x aarch64]", res.CPUs)
		}
		_, files := readPackage(t, res.Path)
		for _, p := range []string{"/usr/bin/qemu-x86_64-static", "/usr/bin/qemu-i386-static", "/usr/lib/binfmt.d/qemu-i386-static.conf"} {
			if _, ok := files[p]; ok {
				t.Errorf("%s is in the package", p)
			}
		}
	})

	t.Run("an explicit host-family cpu is packaged", func(t *testing.T) {
		res := build(t, assemble.Options{QemuDir: dir, CPUs: []string{"i386"}, Compression: "fast"})
		_, files := readPackage(t, res.Path)
		if _, ok := files["/usr/lib/binfmt.d/qemu-i386-static.conf"]; !ok {
			t.Error("no qemu-i386-static.conf")
		}
	})

	errorCases := []struct {
		name string
		cpus []string
		want []string
		is   error
	}{
		{"missing interpreter", []string{"aarch64", "riscv64", "ppc64le"}, []string{"ppc64le, riscv64", "qemu-riscv64-static"}, assemble.ErrNoInterpreter},
		{"unknown cpu", []string{"z80"}, []string{`z80`}, qemu.ErrUnknownCPU},
		{"host cpu", []string{"x86_64"}, []string{"x86_64", "every native program"}, nil},
	}
	for _, c := range errorCases {
		t.Run(c.name, func(t *testing.T) {
			_, err := assemble.Build(context.Background(), assemble.Options{
				QemuDir: dir, CPUs: c.cpus, OutputDir: t.TempDir(), Binfmtctl: helper(t), SourceDateEpoch: epoch,
			})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
		})
	}

	t.Run("empty qemu directory", func(t *testing.T) {
		_, err := assemble.Build(context.Background(), assemble.Options{QemuDir: t.TempDir(), OutputDir: t.TempDir(), Binfmtctl: helper(t), SourceDateEpoch: epoch})
		if !errors.Is(err, assemble.ErrNoInterpreter) {
			t.Errorf("error %v, want ErrNoInterpreter", err)
		}
	})
}

func TestBadOptions(t *testing.T) {
	needInterpreters(t, "s390x")
	cases := []struct {
		name string
		o    assemble.Options
		want string
	}{
		{"compression", assemble.Options{Compression: "bzip2"}, `compression "bzip2": unknown`},
		{"version with a dash", assemble.Options{Version: "1.0-2"}, `version "1.0-2"`},
		{"release with a space", assemble.Options{Release: "1 2"}, `release "1 2"`},
		{"helper for another arch", assemble.Options{Binfmtctl: "arm64"}, "built for aarch64, the package is for x86_64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.o.CPUs = []string{"s390x"}
			c.o.OutputDir = t.TempDir()
			c.o.SourceDateEpoch = epoch
			switch c.o.Binfmtctl {
			case "":
				c.o.Binfmtctl = helper(t)
			case "arm64":
				c.o.Binfmtctl = sandbox.CrossBuild(t, "arm64", sandbox.HelloSource("not binfmtctl"))
			}
			_, err := assemble.Build(context.Background(), c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one mentioning %q", err, c.want)
			}
			if ents, _ := os.ReadDir(c.o.OutputDir); len(ents) > 0 {
				t.Errorf("a failed build left %v", ents)
			}
		})
	}
}

// TestInstallErase installs the package with the real rpm into an empty
// root, without scriptlets (they are the lifecycle tests' business), and
// erases it: every directory the package made must go with it.
func TestInstallErase(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("rpm --root needs root to chroot and chown; run the tests as root")
	}
	needInterpreters(t, "aarch64", "sparc64")
	sandbox.Require(t, "rpm", "rpm")
	// "fast" is there for its payload of several zstd frames, which
	// rpm must read as one stream.
	for _, comp := range []string{"small", "fast"} {
		t.Run(comp, func(t *testing.T) { installErase(t, comp) })
	}
}

func installErase(t *testing.T, comp string) {
	res := build(t, assemble.Options{CPUs: []string{"aarch64", "sparc64"}, Compression: comp})
	root := t.TempDir()
	rpm := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("rpm", append([]string{"--root", root, "--dbpath", "/var/lib/rpm"}, args...)...)
		cmd.Env = append(os.Environ(), "HOME=/root")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("rpm %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if len(res.Packages) != 2 || res.Packages[0].Name != "binfmtctl" || res.Packages[1].Path != res.Path {
		t.Fatalf("build wrote %+v, want binfmtctl's package, then qemu-user-static-go's", res.Packages)
	}
	helperPkg := res.Packages[0].Path
	// Both at once: they share the helper and the macros, identical
	// files rpm lets two packages own.
	rpm("-i", "--nodeps", "--noscripts", res.Path, helperPkg)
	for p, mode := range map[string]os.FileMode{
		"usr/bin/qemu-aarch64-static":               0o755,
		"usr/bin/binfmtctl":                         0o755,
		"usr/lib/binfmt.d/qemu-aarch64-static.conf": 0o644,
		"usr/share/doc/binfmtctl/README":            0o644,
	} {
		st, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s installed with mode %v", p, st.Mode())
		}
	}
	// --nodeps: the empty root has no /bin/sh for the scriptlets.
	if out := rpm("-V", "--nodeps", "qemu-user-static-go", "binfmtctl"); strings.TrimSpace(out) != "" {
		t.Errorf("rpm -V after install:\n%s", out)
	}
	if out := rpm("-qf", "/usr/bin/binfmtctl"); out != "qemu-user-static-go-1.2.3-1.x86_64\nbinfmtctl-1.2.3-1.x86_64\n" && out != "binfmtctl-1.2.3-1.x86_64\nqemu-user-static-go-1.2.3-1.x86_64\n" {
		t.Errorf("rpm -qf /usr/bin/binfmtctl: %q, want both packages", out)
	}
	// Erasing one leaves the shared files to the other.
	rpm("-e", "--nodeps", "--noscripts", "qemu-user-static-go")
	if _, err := os.Stat(filepath.Join(root, "usr/bin/binfmtctl")); err != nil {
		t.Errorf("erasing qemu-user-static-go took binfmtctl's helper: %v", err)
	}
	if out := rpm("-V", "--nodeps", "binfmtctl"); strings.TrimSpace(out) != "" {
		t.Errorf("rpm -V binfmtctl after erasing qemu-user-static-go:\n%s", out)
	}
	rpm("-e", "--nodeps", "--noscripts", "binfmtctl")

	// What remains are the shared system directories rpm made for the
	// package's files and does not remove because nobody owns them, and
	// rpm's database.
	shared := map[string]bool{
		"usr": true, "usr/bin": true, "usr/lib": true, "usr/share": true,
		"usr/share/doc": true, "usr/share/licenses": true, "usr/lib/rpm": true, "usr/lib/rpm/macros.d": true,
		// The manual's and the completions' directories are man's,
		// bash-completion's, zsh's and fish's.
		"usr/share/man": true, "usr/share/man/man8": true,
		"usr/share/bash-completion": true, "usr/share/bash-completion/completions": true,
		"usr/share/zsh": true, "usr/share/zsh/site-functions": true,
		"usr/share/fish": true, "usr/share/fish/vendor_completions.d": true,
	}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." || rel == "var" || rel == "var/lib" || strings.HasPrefix(rel, "var/lib/rpm") {
			return nil
		}
		if !shared[rel] {
			t.Errorf("%s is left after the erase", rel)
		}
		return nil
	})
}

func TestSigned(t *testing.T) {
	needInterpreters(t, "s390x")
	sandbox.Require(t, "gpg", "gnupg")
	sandbox.Require(t, "rpm", "rpm")
	home := t.TempDir()
	gpg := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", "secret"}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %v: %v", args, err)
		}
		return out
	}
	gpg("--quick-gen-key", "Package Signer <signer@example.com>", "rsa2048", "sign", "never")
	key := filepath.Join(home, "key.asc")
	pub := filepath.Join(home, "pub.asc")
	if err := os.WriteFile(key, gpg("--armor", "--export-secret-keys"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, gpg("--armor", "--export"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, comp := range []string{"fast", "small"} {
		t.Run(comp, func(t *testing.T) {
			res := build(t, assemble.Options{CPUs: []string{"s390x"}, Compression: comp, SignKey: key, SignPassphrase: "secret"})
			db := t.TempDir()
			if out, err := exec.Command("rpm", "--dbpath", db, "--import", pub).CombinedOutput(); err != nil {
				t.Fatalf("rpm --import: %v\n%s", err, out)
			}
			// Both packages are signed with the key.
			for _, p := range res.Packages {
				if out := rpmK(t, p.Path, "--dbpath", db); !strings.Contains(out, "signatures OK") {
					t.Errorf("rpm -K %s: %s", p.Name, out)
				}
			}
			keys, err := inspect.ReadKeyring(pub)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := inspect.File(res.Path, inspect.Options{Keyring: keys})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Signatures) != 2 || !rep.Signatures[0].Verified || rep.Signatures[0].Signer != "Package Signer <signer@example.com>" {
				t.Errorf("signatures %+v", rep.Signatures)
			}
		})
	}

	t.Run("wrong passphrase", func(t *testing.T) {
		_, err := assemble.Build(context.Background(), assemble.Options{
			CPUs: []string{"s390x"}, OutputDir: t.TempDir(), Binfmtctl: helper(t), SourceDateEpoch: epoch,
			SignKey: key, SignPassphrase: "wrong",
		})
		if err == nil || !strings.Contains(err.Error(), "signing key") {
			t.Errorf("error %v", err)
		}
	})
}
