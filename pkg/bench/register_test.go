package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// rounds is how often each side runs: few in make test, more for the
// report (BENCH_ROUNDS).
func rounds(def int) int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return def
}

// report appends a section to the file named by BENCH_REPORT, if set.
func report(t *testing.T, section string) {
	t.Helper()
	t.Log("\n" + section)
	path := os.Getenv("BENCH_REPORT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintln(f, section)
}

func goBuild(t *testing.T, pkg, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
}

// qemuConfs is every qemu-*.conf of the machine, the set both tools apply.
func qemuConfs(t *testing.T) []string {
	t.Helper()
	sandbox.Require(t, "/usr/lib/binfmt.d/qemu-aarch64.conf", "qemu-user-static")
	files, _ := filepath.Glob("/usr/lib/binfmt.d/qemu-*.conf")
	return files
}

// flush unregisters every entry by name.
func flush(t *testing.T, fs *binfmt.FS) {
	t.Helper()
	names, err := fs.Names()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := fs.Unregister(n); err != nil {
			t.Fatal(err)
		}
	}
}

func timeCmd(t *testing.T, name string, args ...string) time.Duration {
	t.Helper()
	cmd := exec.Command(name, args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return d
}

// TestRegistrationAgainstSystemdBinfmt applies every qemu-*.conf of the
// machine with systemd-binfmt FILE... and with binfmtctl register FILE...,
// interleaved, each starting from an empty private binfmt_misc. It also
// measures the floor: the same writes from a process that is already
// running, and starting a no-op static binary.
//
// The target is binfmtctl ≤ 0.6× systemd-binfmt. On the 2-core VMs this
// runs on, starting any Go binary already costs about 0.4× of
// systemd-binfmt's whole run, a minimal Go program doing the same writes
// about 0.6×, and the figures swing by ±20 % when make test runs other
// packages alongside, so the guard fails above guardRatio, and only when
// a second measurement confirms it; docs/benchmarks.md has the measured
// ratio.
func TestRegistrationAgainstSystemdBinfmt(t *testing.T) {
	ns := sandbox.Enter(t, sandbox.AtProc())
	if ns == nil {
		return
	}
	sandbox.Require(t, "/lib/systemd/systemd-binfmt", "systemd")
	confs := qemuConfs(t)
	dir := t.TempDir()
	ctl, noop, loop := filepath.Join(dir, "binfmtctl"), filepath.Join(dir, "noop"), filepath.Join(dir, "loop")
	goBuild(t, "../../cmd/binfmtctl", ctl)
	os.WriteFile(filepath.Join(dir, "noop.go"), []byte("package main\nfunc main() {}\n"), 0o644)
	goBuild(t, filepath.Join(dir, "noop.go"), noop)
	os.WriteFile(filepath.Join(dir, "loop.go"), []byte(minimalLoop), 0o644)
	goBuild(t, filepath.Join(dir, "loop.go"), loop)

	fs := &binfmt.FS{Dir: ns.BinfmtDir}
	var lines []binfmt.Line
	for _, c := range confs {
		l, errs := binfmt.ParseFile(c)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		lines = append(lines, l...)
	}
	check := func(what string) {
		names, _ := fs.Names()
		if len(names) != len(lines) {
			t.Fatalf("%s registered %d entries, want %d", what, len(names), len(lines))
		}
		flush(t, fs)
	}
	// 41 rounds take about 2 s; fewer leave the median at the mercy of a
	// few slow runs, and the guard below runs in make test.
	n := rounds(41)
	measure := func() []Sample {
		return Interleave(n,
			func() time.Duration {
				d := timeCmd(t, "/lib/systemd/systemd-binfmt", confs...)
				check("systemd-binfmt")
				return d
			},
			func() time.Duration {
				d := timeCmd(t, ctl, append([]string{"register"}, confs...)...)
				check("binfmtctl")
				return d
			},
			func() time.Duration {
				start := time.Now()
				for _, r := range fs.Apply(lines, "/") {
					if r.Err != nil {
						t.Fatal(r.Err)
					}
				}
				d := time.Since(start)
				check("in-process Apply")
				return d
			},
			func() time.Duration { return timeCmd(t, noop) },
			func() time.Duration {
				d := timeCmd(t, loop, confs...)
				check("the minimal Go loop")
				return d
			},
		)
	}
	s := measure()
	if r := Ratio(s[1], s[0]); r > guardRatio && !reporting() {
		// A burst of other work on the 2 CPUs moves one run's median by
		// ±20 %: a real regression shows again in a second run, a burst
		// seldom does. The report (make bench) keeps its first figures.
		t.Logf("binfmtctl register took %.2f× systemd-binfmt's time; measuring again to tell a regression from the load of other work", r)
		s = measure()
	}
	sd, ctlS, inproc, spawn, minimal := s[0], s[1], s[2], s[3], s[4]
	ratio := Ratio(ctlS, sd)
	fi, _ := os.Stat(ctl)
	report(t, fmt.Sprintf("## Registration: %d qemu entries, %d interleaved rounds\n\n%s\nbinfmtctl / systemd-binfmt: **%.2f×** (target ≤ 0.6×). Floor (no-op start + in-process writes): %.2f×. Stripped static binfmtctl: %.2f MB.\n",
		len(lines), n,
		Table([]string{"what", "median (min–max)", "÷ systemd-binfmt"}, [][]string{
			{"`systemd-binfmt FILE...`", sd.String(), "1.00×"},
			{"`binfmtctl register FILE...`", ctlS.String(), fmt.Sprintf("%.2f×", ratio)},
			{"the same writes, in a running process", inproc.String(), fmt.Sprintf("%.2f×", Ratio(inproc, sd))},
			{"start a no-op static Go binary", spawn.String(), fmt.Sprintf("%.2f×", Ratio(spawn, sd))},
			{"a minimal Go program: os.ReadFile each file, write each line (no checks, no output)", minimal.String(), fmt.Sprintf("%.2f×", Ratio(minimal, sd))},
		}),
		ratio, float64(inproc.Median()+spawn.Median())/float64(sd.Median()), float64(fi.Size())/1e6))
	if ratio > guardRatio {
		t.Errorf("binfmtctl register takes %.2f× systemd-binfmt's time in two runs of %d rounds; the target is ≤ 0.6× (this guard fails above %.2f×)", ratio, n, guardRatio)
	}
}

// guardRatio is where make test's registration guard fails: well above
// the 0.6× target, well below the 1.0× of a binfmtctl no faster than the
// tool it replaces.
const guardRatio = 0.85

// minimalLoop is the least a Go program can do to apply binfmt.d files:
// the reference for what binfmtctl's checks and output cost on top.
const minimalLoop = `package main

import (
	"os"
	"strings"
)

func main() {
	for _, p := range os.Args[1:] {
		data, err := os.ReadFile(p)
		if err != nil {
			os.Exit(1)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || line[0] == '#' || line[0] == ';' {
				continue
			}
			f, err := os.OpenFile("/proc/sys/fs/binfmt_misc/register", os.O_WRONLY, 0)
			if err != nil {
				os.Exit(1)
			}
			if _, err := f.WriteString(line); err != nil {
				os.Exit(1)
			}
			f.Close()
		}
	}
}
`

// TestStatusWithFortyEntries times binfmtctl status with 40 entries.
func TestStatusWithFortyEntries(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	dir := t.TempDir()
	ctl := filepath.Join(dir, "binfmtctl")
	goBuild(t, "../../cmd/binfmtctl", ctl)
	fs := &binfmt.FS{Dir: ns.BinfmtDir}
	for i := 0; i < 40; i++ {
		if err := fs.RegisterString(fmt.Sprintf("e%02d", i), fmt.Sprintf(":e%02d:M::ENTRY%02d::/bin/true:", i, i)); err != nil {
			t.Fatal(err)
		}
	}
	s := Interleave(rounds(20),
		func() time.Duration {
			return timeCmd(t, ctl, "--binfmt-dir", ns.BinfmtDir, "--state-dir", dir, "status")
		},
		func() time.Duration {
			return timeCmd(t, ctl, "--binfmt-dir", ns.BinfmtDir, "--state-dir", dir, "status", "--json")
		},
	)
	fi, _ := os.Stat(ctl)
	report(t, fmt.Sprintf("## The helper\n\n%s", Table([]string{"what", "figure"}, [][]string{
		{"stripped static size (`CGO_ENABLED=0 go build -trimpath -ldflags '-s -w'`)", fmt.Sprintf("%.2f MB (target ≤ 2.5 MB)", float64(fi.Size())/1e6)},
		{"`binfmtctl status`, 40 entries", s[0].String()},
		{"`binfmtctl status --json`, 40 entries", s[1].String()},
	})))
	if fi.Size() > 2_500_000 {
		t.Errorf("stripped binfmtctl is %d bytes, the target is ≤ 2.5 MB", fi.Size())
	}
}
