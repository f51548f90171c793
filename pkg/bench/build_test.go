package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// epoch is SOURCE_DATE_EPOCH for every build here, so that repeated
// builds give the same bytes and the sizes do not drift.
const epoch = "1700000000"

// builder holds what the package builds need: the build command, a
// prebuilt binfmtctl, and the repository.
type builder struct {
	tool, helper, src string
}

func newBuilder(t *testing.T) builder {
	t.Helper()
	sandbox.Require(t, "rpmbuild", "rpm")
	sandbox.Require(t, "rpm2cpio", "rpm")
	sandbox.Require(t, "cpio", "cpio")
	sandbox.Require(t, "/usr/bin/qemu-aarch64-static", "qemu-user-static")
	wd, _ := os.Getwd()
	src, err := assemble.FindSourceDir(wd)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b := builder{tool: filepath.Join(dir, "qemu-user-static-go"), helper: filepath.Join(dir, "binfmtctl"), src: src}
	goBuild(t, "../../cmd/qemu-user-static-go", b.tool)
	goBuild(t, "../../cmd/binfmtctl", b.helper)
	return b
}

// args is the build command line for compression ("" for the default)
// and cpus (nil for every interpreter on the machine).
func (b builder) args(out, compression string, cpus []string) []string {
	args := []string{"build", "--binfmtctl", b.helper, "--version", "1.0", "--release", "1", "--output", out}
	if compression != "" {
		args = append(args, "--compression", compression)
	}
	if cpus != nil {
		args = append(args, "--cpus", strings.Join(cpus, ","))
	}
	return args
}

// build runs the build command as a child process, so that its CPU time
// and peak RSS are its own, and returns the package it wrote.
func (b builder) build(t *testing.T, compression string, cpus []string) (string, proc) {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command(b.tool, b.args(out, compression, cpus)...)
	cmd.Dir = b.src
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+epoch)
	p := measure(t, cmd)
	// binfmtctl's package is written beside it; the measured one is
	// qemu-user-static-go's.
	rpms, _ := filepath.Glob(filepath.Join(out, "qemu-user-static-go-*.rpm"))
	if len(rpms) != 1 {
		t.Fatalf("build wrote %v, want one qemu-user-static-go rpm\n%s", rpms, p.Out)
	}
	return rpms[0], p
}

// rpmbuildTree is the content of a built package, unpacked, with the
// spec that makes rpmbuild package the same files.
type rpmbuildTree struct {
	dir, spec string
}

// unpack extracts pkg into a new directory and writes a spec whose
// %install hard-links that tree into the build root: rpmbuild's figures
// are then its packaging alone, without copying the files.
func unpack(t *testing.T, pkg string) rpmbuildTree {
	t.Helper()
	base := t.TempDir()
	tree := filepath.Join(base, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	// rpm2cpio | cpio -idm, in tree; the cpio names start with "./".
	cmd := exec.Command("sh", "-c", `rpm2cpio "$1" | cpio -idm --quiet --no-absolute-filenames`, "sh", pkg)
	cmd.Dir = tree
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unpacking %s: %v\n%s", pkg, err, out)
	}
	out, err := exec.Command("rpm", "-qp", "--qf", `[%{FILEMODES:perms} %{FILENAMES}\n]`, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("listing %s: %v\n%s", pkg, err, out)
	}
	var files []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		perms, name, _ := strings.Cut(l, " ")
		if strings.HasPrefix(perms, "d") {
			files = append(files, "%dir "+name)
		} else {
			files = append(files, name)
		}
	}
	sort.Strings(files)
	spec := filepath.Join(base, "bench.spec")
	text := fmt.Sprintf(`Name: qemu-user-static-go
Version: 1.0
Release: 1
Summary: the same files as the build command's package
License: GPL-2.0-only
%%global debug_package %%{nil}
%%global _build_id_links none
%%global __os_install_post %%{nil}

%%description
The same files as the build command's package, for rpmbuild's figures.

%%install
mkdir -p %%{buildroot}
cp -al %s/. %%{buildroot}/

%%files
%s
`, tree, strings.Join(files, "\n"))
	if err := os.WriteFile(spec, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return rpmbuildTree{dir: tree, spec: spec}
}

// rpmbuildArgs is rpmbuild's command line for payload (_binary_payload).
func rpmbuildArgs(top, spec, payload string) []string {
	return []string{"-bb", "--nodeps", "--quiet",
		"--define", "_topdir " + top,
		"--define", "_binary_payload " + payload,
		spec}
}

// rpmbuild runs rpmbuild -bb on tree with payload and returns the
// package.
func (tr rpmbuildTree) rpmbuild(t *testing.T, payload string) (string, proc) {
	t.Helper()
	top := t.TempDir()
	cmd := exec.Command("rpmbuild", rpmbuildArgs(top, tr.spec, payload)...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+epoch)
	p := measure(t, cmd)
	rpms, _ := filepath.Glob(filepath.Join(top, "RPMS", "*", "*.rpm"))
	if len(rpms) != 1 {
		t.Fatalf("rpmbuild wrote %v, want one rpm\n%s", rpms, p.Out)
	}
	return rpms[0], p
}

// checkRPM runs rpm -K: the digests of what was written must hold.
func checkRPM(t *testing.T, pkg string) {
	t.Helper()
	if out, err := exec.Command("rpm", "-K", pkg).CombinedOutput(); err != nil {
		t.Fatalf("rpm -K %s: %v\n%s", pkg, err, out)
	}
}

func size(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// buildSetting is one way of building the full package.
type buildSetting struct {
	rpmbuild bool   // rpmbuild -bb rather than the build command
	setting  string // --compression, or rpmbuild's _binary_payload
	what     string
	once     bool // slow: one round
	full     bool // slower still: only with BENCH_FULL=1
}

var buildSettings = []buildSetting{
	{setting: "small", what: "the default: zstd \"better\", 32 MiB window, streamed"},
	{setting: "fast", what: "the same in two frames, compressed at once"},
	{setting: "smallest", what: "zstd \"best\", 32 MiB window, streamed", once: true},
	{rpmbuild: true, setting: "w3T0.zstdio", what: "zstd -3, threaded"},
	{rpmbuild: true, setting: "w19T0.zstdio", what: "zstd -19, threaded: Fedora's", once: true, full: true},
	{rpmbuild: true, setting: "w6T0.xzdio", what: "xz -6, threaded", once: true, full: true},
}

// buildResult is what one setting measured.
type buildResult struct {
	buildSetting
	wall, cpu, rss Sample // rss in bytes, kept as a Sample for its median
	size           int64
}

// TestBenchBuild builds the package of every interpreter on the machine
// with each compression the build command offers, and rpmbuild -bb the
// same files at the payload settings issue 6 names, and reports wall
// time, CPU time, peak RSS and size. The settings that take a few seconds
// run several rounds, interleaved; the slow ones once, and those slower
// than a minute only with BENCH_FULL=1 (rpmbuild's
// zstd -19 and xz). It runs only for the report (BENCH_REPORT): it takes
// minutes.
func TestBenchBuild(t *testing.T) {
	if !reporting() {
		t.Skip("a benchmark of several minutes: it runs with BENCH_REPORT set (make bench); TestBuildDefaultMemoryAndSize guards the default in make test")
	}
	load := loadavg()
	b := newBuilder(t)
	// The reference content: the default package. Its size is measured
	// again below, in turn with the others.
	ref, _ := b.build(t, "", nil)
	tree := unpack(t, ref)
	var raw int64
	filepath.Walk(tree.dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			raw += fi.Size()
		}
		return nil
	})
	interps, _ := filepath.Glob(filepath.Join(tree.dir, "usr/bin/qemu-*-static"))
	os.Remove(ref)

	var results []*buildResult
	for _, s := range buildSettings {
		if s.full && !full() {
			continue
		}
		results = append(results, &buildResult{buildSetting: s})
	}
	run := func(r *buildResult) {
		var pkg string
		var p proc
		if r.rpmbuild {
			pkg, p = tree.rpmbuild(t, r.setting)
		} else {
			pkg, p = b.build(t, r.setting, nil)
		}
		checkRPM(t, pkg)
		n := size(t, pkg)
		if r.size != 0 && n != r.size {
			t.Errorf("%s: %d bytes, then %d: the build is not reproducible", r.setting, r.size, n)
		}
		r.size = n
		r.wall = append(r.wall, p.Wall)
		r.cpu = append(r.cpu, p.CPU)
		r.rss = append(r.rss, time.Duration(p.MaxRSS))
		os.RemoveAll(filepath.Dir(pkg))
		t.Logf("%s %s: %s, CPU %s, %s peak RSS, %s", builderName(r.buildSetting), r.setting, secs(p.Wall), secs(p.CPU), mb(p.MaxRSS), mb(n))
	}
	n := buildRounds()
	for i := 0; i < n; i++ {
		for _, r := range results {
			if !r.once {
				run(r)
			}
		}
	}
	for _, r := range results {
		if r.once {
			run(r)
		}
	}

	get := func(rpmbuild bool, setting string) *buildResult {
		for _, r := range results {
			if r.rpmbuild == rpmbuild && r.setting == setting {
				return r
			}
		}
		return nil
	}
	var rows [][]string
	for _, r := range results {
		rows = append(rows, []string{
			builderName(r.buildSetting), "`" + r.setting + "`", r.what,
			spread(r.wall, secs), spread(r.cpu, secs),
			spread(r.rss, func(d time.Duration) string { return mb(int64(d)) }),
			mb(r.size), fmt.Sprintf("%d", len(r.wall)),
		})
	}
	var targets []string
	small, fast, w3, w19 := get(false, "small"), get(false, "fast"), get(true, "w3T0.zstdio"), get(true, "w19T0.zstdio")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	if w19 != nil {
		sr, tr := float64(small.size)/float64(w19.size), Ratio(small.wall, w19.wall)
		targets = append(targets,
			fmt.Sprintf("- Default size ≤ rpmbuild at Fedora's zstd -19: %s against %s, **%.2f×**: %s.", mb(small.size), mb(w19.size), sr, verdict(sr <= 1)),
			fmt.Sprintf("- Default built in ≤ 0.5× rpmbuild's time for that size: %s against %s, **%.2f×**: %s.", secs(small.wall.Median()), secs(w19.wall.Median()), tr, verdict(tr <= 0.5)))
	} else {
		targets = append(targets, "- The size and time targets against rpmbuild at zstd -19 need BENCH_FULL=1.")
	}
	rss := int64(small.rss.Median())
	targets = append(targets, fmt.Sprintf("- Default peak RSS ≤ 256 MB: %s: %s.", mb(rss), verdict(rss <= 256e6)))
	fr := Ratio(fast.wall, w3.wall)
	targets = append(targets, fmt.Sprintf("- The fast setting within 1.5× of rpmbuild's zstd -3 time: %s against %s, **%.2f×**: %s.", secs(fast.wall.Median()), secs(w3.wall.Median()), fr, verdict(fr <= 1.5)))

	specText, _ := os.ReadFile(tree.spec)
	report(t, fmt.Sprintf(`## Package build: %d interpreters, %s unpacked

Every qemu-*-static interpreter on the machine except the host's own family, their binfmt.d files and binfmtctl, %s in all; load average %s at the start. Wall and CPU times (user + system, children included) are medians with min–max over the rounds, interleaved; peak RSS is wait4's ru_maxrss, the largest process of the build. Every package passes `+"`rpm -K`"+`. Reproduce with:

    BENCH_REPORT=/tmp/bench.md BENCH_FULL=1 go test -count=1 -timeout 60m -run '^TestBenchBuild$' -v ./pkg/bench

%s
%s

Each figure is one of these commands, timed (SOURCE_DATE_EPOCH=%s in the environment):

- `+"`qemu-user-static-go %s`"+`, run in the repository, with SETTING the setting, after `+"`CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o DIR/X ./cmd/X`"+` of qemu-user-static-go and binfmtctl;
- `+"`rpmbuild %s`"+` with PAYLOAD the setting, and this spec, where TREE is the default package unpacked with `+"`rpm2cpio PKG | cpio -idm --no-absolute-filenames`"+`:

<details><summary>bench.spec</summary>

`+"```"+`
%s`+"```"+`

</details>
`,
		len(interps), mb(raw), mb(raw), load,
		Table([]string{"builder", "setting", "what", "wall", "CPU", "peak RSS", "size", "rounds"}, rows),
		strings.Join(targets, "\n"),
		epoch,
		shellJoin(builder{helper: "DIR/binfmtctl"}.args("OUT", "SETTING", nil)),
		shellJoin(rpmbuildArgs("TOP", "bench.spec", "PAYLOAD")),
		strings.ReplaceAll(string(specText), tree.dir, "TREE")))
}

func builderName(s buildSetting) string {
	if s.rpmbuild {
		return "rpmbuild -bb"
	}
	return "build"
}

// buildRounds is how often the quick settings run: BENCH_BUILD_ROUNDS,
// or 3.
func buildRounds() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("BENCH_BUILD_ROUNDS"), &n); err == nil && n > 0 {
		return n
	}
	return 3
}

// fedoraOverFast is the size of rpmbuild's zstd -19 package (Fedora's
// payload) over its zstd -3 one, for the three interpreters of hookCPUs:
// 7.6 MB over 9.3 MB with Debian 12's qemu 7.2 and libzstd 1.5.4. Running
// zstd -19 itself would take 15 s or more of make test; zstd -3 takes one.
const fedoraOverFast = 0.82

// TestBuildDefaultMemoryAndSize guards two of issue 6's build targets in
// make test, cheaply: the default package of three interpreters must stay
// within 256 MB of peak RSS, and no larger than rpmbuild makes it at
// Fedora's zstd -19, estimated as fedoraOverFast times rpmbuild's zstd -3
// package of the same files, built in the same run. The default is 0.66×
// that zstd -3 package here, so the guard leaves a margin of a fifth.
func TestBuildDefaultMemoryAndSize(t *testing.T) {
	b := newBuilder(t)
	pkg, p := b.build(t, "", hookCPUs)
	checkRPM(t, pkg)
	w3, _ := unpack(t, pkg).rpmbuild(t, "w3T0.zstdio")
	ours, fast := size(t, pkg), size(t, w3)
	t.Logf("default build of %s: %s peak RSS, %s; rpmbuild -bb at w3T0.zstdio: %s (%.2f×)", strings.Join(hookCPUs, ","), mb(p.MaxRSS), mb(ours), mb(fast), float64(ours)/float64(fast))
	if p.MaxRSS > 256e6 {
		t.Errorf("the default build of %s peaked at %s of RSS; the target is ≤ 256 MB", strings.Join(hookCPUs, ","), mb(p.MaxRSS))
	}
	if limit := int64(fedoraOverFast * float64(fast)); ours > limit {
		t.Errorf("the default package of %s is %s, larger than rpmbuild's at zstd -19 (estimated %s: %.2f× its zstd -3 package, %s)", strings.Join(hookCPUs, ","), mb(ours), mb(limit), fedoraOverFast, mb(fast))
	}
}
