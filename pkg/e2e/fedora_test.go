package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// The Fedora host scenario (issue 13): the neighbours a Fedora machine
// has and the disposable root has not, put there by the test.

// fedoraConf is the stand-in for Fedora's qemu-user-static-aarch64 conf:
// Fedora's path and flag F, with a mask that differs from ours (masks
// change between qemu releases), so that "ours is live" and "Fedora's is
// live" are told apart.
const fedoraConf = `:qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F`

// fedoraScriptlet is what Fedora's qemu.spec runs in %post and %postun of
// each qemu-user-static-<group> subpackage.
const fedoraScriptlet = "systemctl --system try-restart systemd-binfmt.service &>/dev/null || :\n"

// fedoraQemu is the stand-in for Fedora's qemu-user-static-aarch64.
func fedoraQemu(t *testing.T) string {
	sandbox.Require(t, "/usr/bin/qemu-aarch64-static", "qemu-user-static")
	return sandbox.BuildRPM(t, fedoraQemuSpec())
}

// fedoraQemuSpec is fedoraQemu's package.
func fedoraQemuSpec() sandbox.PackageSpec {
	return sandbox.PackageSpec{
		Name: "qemu-user-static-aarch64", Version: "10.1.0", Release: "1.fc43", Arch: "x86_64",
		Files: []sandbox.File{
			{Dst: "/usr/bin/qemu-aarch64-static", Src: "/usr/bin/qemu-aarch64-static", Mode: 0o755},
			{Dst: "/usr/lib/binfmt.d/qemu-aarch64-static.conf", Content: []byte(fedoraConf + "\n")},
		},
		Post: fedoraScriptlet, PostUn: fedoraScriptlet,
	}
}

// systemdTrigger is a package that carries systemd's binfmt trigger,
// running the real systemd-binfmt (sandbox.SystemdTrigger, shared with
// pkg/bench).
var systemdTrigger = sandbox.SystemdTrigger

// oldWay is a package that ships a binfmt.d file and never calls the
// hooks: it relies on systemd, as most packages do. Its interpreter is a
// script whose bytes change with the version, and its entry has flag F,
// so an upgrade must register it again for F to pin the new file.
func oldWay(t *testing.T, version string) string {
	return sandbox.BuildRPM(t, sandbox.PackageSpec{
		Name: "oldway-binfmt", Version: version,
		Files: []sandbox.File{
			{Dst: "/usr/libexec/oldway-binfmt", Type: "dir"},
			{Dst: "/usr/libexec/oldway-binfmt/run", Content: []byte("#!/bin/sh\necho oldway " + version + "\n"), Mode: 0o755},
			{Dst: "/usr/lib/binfmt.d/oldway-binfmt.conf", Content: []byte(":oldway:M::OLDWAYMAGIC::/usr/libexec/oldway-binfmt/run:F\n")},
		},
	})
}

// fedoraTx is one way of running the scenario's transactions.
type fedoraTx struct {
	install func(r *sandbox.Root, paths ...string) (string, error)
	// swap replaces the installed package "from" by the ones at paths.
	swap   func(r *sandbox.Root, from string, paths ...string) (string, error)
	remove func(r *sandbox.Root, name string) (string, error)
}

var fedoraViaDNF = fedoraTx{
	install: func(r *sandbox.Root, p ...string) (string, error) { return r.DNF(append([]string{"install"}, p...)...) },
	swap: func(r *sandbox.Root, _ string, p ...string) (string, error) {
		return r.DNF(append([]string{"install", "--allowerasing"}, p...)...)
	},
	remove: func(r *sandbox.Root, n string) (string, error) { return r.DNF("remove", n) },
}

// The rpm CLI cannot erase and install in one transaction: the swap is an
// erase and an install, as a user without dnf does it.
var fedoraViaRPM = fedoraTx{
	install: func(r *sandbox.Root, p ...string) (string, error) { return r.RPM(append([]string{"-U"}, p...)...) },
	swap: func(r *sandbox.Root, from string, p ...string) (string, error) {
		out, err := r.RPM("-e", from)
		if err != nil {
			return out, err
		}
		more, err := r.RPM(append([]string{"-i"}, p...)...)
		return out + more, err
	},
	remove: func(r *sandbox.Root, n string) (string, error) { return r.RPM("-e", n) },
}

// helperOf is the binfmtctl package the build wrote beside ours.
func helperOf(t *testing.T, ours string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(filepath.Dir(ours), "binfmtctl-*.rpm"))
	if len(m) != 1 {
		t.Fatalf("the build wrote %v beside %s, want one binfmtctl package", m, ours)
	}
	return m[0]
}

// fedoraHost runs the scenario: Fedora's package, the swap to ours, an
// old-way package installed and upgraded, our upgrade, the old-way
// package removed, ours removed, Fedora's package again. After every
// step the administrator's entry is byte for byte the same (disabled, as
// it was left), the docker-style entry too or it is named on stderr, ours
// follow the invariant (boot equivalence included), and the old-way
// package's entry is there exactly while its package is.
func fedoraHost(t *testing.T, tx fedoraTx, withSystemd bool) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { fedoraHostOn(t, st, tx, withSystemd) })
	}
}

func fedoraHostOn(t *testing.T, st sandbox.Stack, tx fedoraTx, withSystemd bool) {
	before := hostState(t)
	ns := sandbox.Enter(t)
	if ns == nil {
		if after := hostState(t); after != before {
			t.Fatalf("the host changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		return
	}
	sandbox.Require(t, "/lib/systemd/systemd-binfmt", "systemd")
	cpus := []string{"aarch64", "riscv64"}
	cpus2 := []string{"aarch64", "s390x"}
	all := []string{"aarch64", "riscv64", "s390x"}
	start := time.Now()
	r := ns.DNFRootOn(st)
	build := nfpmBuilder(t, r)
	v1 := build(t, interpreters(t, cpus, ""), cpus, "1.0")
	v2 := build(t, interpreters(t, cpus2, "\x00version 2\x00"), cpus2, "2.0")
	fedora := fedoraQemu(t)
	old1, old2 := oldWay(t, "1"), oldWay(t, "2")
	t.Logf("packages built in %.1fs", time.Since(start).Seconds())

	s := &suite{t: t, ns: ns, r: r, hellos: map[string]string{}}
	// The host's own binfmt.d files are not the Fedora host's: hide them
	// (whiteouts in the overlay; the host keeps its files).
	hostConfs, _ := filepath.Glob(s.r.Path("/usr/lib/binfmt.d/*"))
	for _, f := range hostConfs {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if withSystemd {
		if err := os.MkdirAll(s.r.Path(scriptletsSystemdBooted), 0o755); err != nil {
			t.Fatal(err)
		}
		s.do("install systemd's trigger", func() (string, error) { return s.r.DNF("install", systemdTrigger(t)) })
	}
	for _, cpu := range all {
		bin := sandbox.CrossBuild(t, goarch[cpu], sandbox.HelloSource("hello from "+cpu))
		data, _ := os.ReadFile(bin)
		p := "/tmp/hello-" + cpu
		os.WriteFile(s.r.Path(p), data, 0o755)
		s.hellos[cpu] = p
	}
	fs := &binfmt.FS{Dir: s.r.BinfmtDir}
	var dockerName = "qemu-docker-riscv64"
	dockerGone := false // named on stderr once flushed

	// After every step.
	check := func(out string, ours []string) {
		s.t.Helper()
		if os.Getenv("FEDORA_DEBUG") != "" {
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "binfmtctl") {
					s.t.Log(l)
				}
			}
		}
		tab := s.table()
		for n, want := range s.frozen {
			got, ok := tab[n]
			switch {
			case ok && got == want:
			case n == dockerName && !ok && (dockerGone || strings.Contains(out, `entry "`+dockerName+`"`)):
				// Flushed by systemd-binfmt: it cannot be registered
				// again, and the guard said so.
				if !dockerGone && !strings.Contains(out, "cannot be registered again") {
					s.t.Fatalf("the docker-style entry was lost without a word:\n%s", out)
				}
				dockerGone = true
			default:
				s.t.Fatalf("entry %s changed:\n%q\nwant\n%q\n--- output:\n%s", n, got, want, out)
			}
		}
		if ours != nil {
			s.installedFedora(ours, all)
		}
		// Two packages carry the triggers: each step ran once.
		if state, err := os.ReadFile(s.r.Path("/run/binfmtctl/transaction")); err == nil {
			seen := map[string]bool{}
			for _, l := range strings.Split(string(state), "\n") {
				if strings.HasPrefix(l, "ran ") {
					if seen[l] {
						s.t.Fatalf("a trigger step ran twice in one transaction (%q):\n%s", l, state)
					}
					seen[l] = true
				}
			}
		}
	}
	oldLive := func(want bool, version string) {
		s.t.Helper()
		l, err := fs.Entry("oldway")
		if !want {
			if err == nil {
				s.t.Fatalf("the old-way package's entry is still registered: %+v", l)
			}
			return
		}
		if err != nil {
			s.t.Fatalf("the old-way package's entry is not registered: %v", err)
		}
		// F pins the file on disk now: the entry was registered after
		// the interpreter file was last replaced.
		st, err := os.Stat(filepath.Join(s.r.BinfmtDir, "oldway"))
		if err != nil {
			s.t.Fatal(err)
		}
		var ist syscall.Stat_t
		if err := syscall.Stat(s.r.Path("/usr/libexec/oldway-binfmt/run"), &ist); err != nil {
			s.t.Fatal(err)
		}
		if ctime := time.Unix(ist.Ctim.Sec, ist.Ctim.Nsec); ctime.After(st.ModTime()) {
			s.t.Fatalf("the old-way entry (registered %v) pins the interpreter replaced at %v by version %s", st.ModTime(), ctime, version)
		}
		// status names its package, which has no record: its file
		// defines the entry.
		out := s.do("binfmtctl status --json oldway", func() (string, error) { return s.r.Chroot("/usr/bin/binfmtctl", "status", "--json", "oldway") })
		var report struct {
			Entries []struct {
				Owner string `json:"owner"`
			} `json:"entries"`
		}
		if err := json.Unmarshal([]byte(out), &report); err != nil || len(report.Entries) != 1 || report.Entries[0].Owner != "oldway-binfmt" {
			s.t.Fatalf("status does not name oldway-binfmt as the owner of its entry (%v):\n%s", err, out)
		}
	}

	s.step("Fedora's package", func() string {
		out := s.do("install Fedora's package", func() (string, error) { return tx.install(s.r, fedora) })
		if !withSystemd {
			// On a container host nothing registers at install; the
			// entry is there from the host's boot. Do what that boot did.
			s.do("systemd-binfmt at boot", func() (string, error) { return s.r.Chroot("/usr/lib/systemd/systemd-binfmt") })
		}
		live, err := fs.Raw("qemu-aarch64")
		if err != nil || !strings.Contains(string(live), "fffffffffffffffcff") {
			s.t.Fatalf("Fedora's qemu-aarch64 is not live: %v\n%s", err, live)
		}
		if err := fs.RegisterString("admin-entry", ":admin-entry:M::ADMINMAGIC::/bin/true:"); err != nil {
			s.t.Fatal(err)
		}
		if err := fs.Disable("admin-entry"); err != nil {
			s.t.Fatal(err)
		}
		// A docker-style entry (tonistiigi/binfmt): F, and the
		// interpreter deleted once registered, as when its container
		// exits.
		interp := filepath.Join(t.TempDir(), "qemu-riscv64")
		data, _ := os.ReadFile("/usr/bin/qemu-riscv64-static")
		if err := os.WriteFile(interp, data, 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := fs.RegisterString(dockerName, ":"+dockerName+":M::\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xf3\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:"+interp+":OCF"); err != nil {
			s.t.Fatal(err)
		}
		os.Remove(interp)
		s.frozen = map[string]string{}
		for _, n := range []string{"admin-entry", dockerName} {
			raw, _ := fs.Raw(n)
			s.frozen[n] = string(raw)
		}
		return out
	})
	s.step("swap to ours", func() string {
		// With the binfmtctl package beside it: both carry the
		// triggers, and each step runs once.
		out := s.do("swap to ours", func() (string, error) { return tx.swap(s.r, "qemu-user-static-aarch64", v1, helperOf(t, v1)) })
		if os.Getenv("FEDORA_DEBUG") != "" {
			trig, _ := s.r.RPM("-q", "--filetriggers", pkgName)
			state, _ := os.ReadFile(s.r.Path("/run/binfmtctl/transaction"))
			s.t.Logf("triggers:\n%s\nstate:\n%s", trig, state)
		}
		check(out, cpus)
		return out
	})
	s.step("old-way package installed", func() string {
		out := s.do("install the old-way package", func() (string, error) { return tx.install(s.r, old1) })
		check(out, cpus)
		oldLive(true, "1")
		return out
	})
	s.step("our upgrade", func() string {
		out := s.do("upgrade ours", func() (string, error) { return tx.install(s.r, v2, helperOf(t, v2)) })
		check(out, cpus2)
		oldLive(true, "1")
		return out
	})
	s.step("old-way package upgraded", func() string {
		out := s.do("upgrade the old-way package", func() (string, error) { return tx.install(s.r, old2) })
		check(out, cpus2)
		oldLive(true, "2")
		// An administrator's sync gives the old-way package a record;
		// its erase must still take the entry, and the record with it.
		s.do("binfmtctl sync oldway-binfmt", func() (string, error) { return s.r.Chroot("/usr/bin/binfmtctl", "sync", "oldway-binfmt") })
		if _, err := os.Stat(s.r.Path("/var/lib/binfmtctl/oldway-binfmt")); err != nil {
			s.t.Fatalf("sync made no record for the old-way package: %v", err)
		}
		oldLive(true, "2")
		return out
	})
	s.step("old-way package removed", func() string {
		out := s.do("remove the old-way package", func() (string, error) { return tx.remove(s.r, "oldway-binfmt") })
		check(out, cpus2)
		oldLive(false, "")
		if _, err := os.Stat(s.r.Path("/var/lib/binfmtctl/oldway-binfmt")); err == nil {
			s.t.Fatalf("the old-way package's record outlives it")
		}
		return out
	})
	s.step("ours removed", func() string {
		out := s.do("remove ours", func() (string, error) { return tx.remove(s.r, pkgName) })
		check(out, nil)
		for n := range s.table() {
			if _, ok := s.frozen[n]; !ok {
				s.t.Fatalf("entry %s is left after remove", n)
			}
		}
		// The binfmtctl package stays, with the helper and the macros.
		for _, cpu := range all {
			for _, p := range []string{"/usr/bin/qemu-" + cpu + "-static", "/usr/lib/binfmt.d/qemu-" + cpu + "-static.conf"} {
				if _, err := os.Lstat(s.r.Path(p)); err == nil {
					s.t.Errorf("%s is left behind", p)
				}
			}
		}
		if _, err := os.Stat(s.r.Path("/var/lib/binfmtctl")); err == nil {
			s.t.Errorf("/var/lib/binfmtctl is left behind")
		}
		return out
	})
	s.step("Fedora's package again", func() string {
		out := s.do("install Fedora's package again", func() (string, error) { return tx.install(s.r, fedora) })
		// Fedora's definition is live: by systemd's trigger where it
		// runs, by the helper's (the binfmtctl package is still there)
		// where it does not; the guard kept the other entries.
		check(out, nil)
		live, err := fs.Raw("qemu-aarch64")
		if err != nil || !strings.Contains(string(live), "fffffffffffffffcff") {
			s.t.Fatalf("Fedora's qemu-aarch64 is not live after its install: %v\n%s", err, live)
		}
		return out
	})
}

// scriptletsSystemdBooted is systemd's "booted with systemd" marker,
// which makes its binfmt trigger run.
const scriptletsSystemdBooted = sandbox.SystemdBooted

// installedFedora checks our entries as installed does, with the root's
// status output, and boot equivalence for the qemu entries.
func (s *suite) installedFedora(cpus, all []string) {
	s.t.Helper()
	out, err := s.r.Chroot("/usr/bin/binfmtctl", "status", "--json")
	s.must("binfmtctl status --json", out, err)
	var report struct {
		Entries []struct {
			Name              string `json:"name"`
			Owner             string `json:"owner"`
			InterpreterExists bool   `json:"interpreter_exists"`
			StalePin          bool   `json:"stale_pin"`
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		s.t.Fatalf("status --json: %v\n%s", err, out)
	}
	owned := map[string]bool{}
	for _, e := range report.Entries {
		if e.Name == "qemu-docker-riscv64" {
			continue
		}
		if strings.HasPrefix(e.Name, "qemu-") {
			if e.Owner != pkgName || !e.InterpreterExists || e.StalePin {
				s.t.Fatalf("entry %s: owner %q, interpreter present %v, stale pin %v\n%s", e.Name, e.Owner, e.InterpreterExists, e.StalePin, s.dumpTable())
			}
			owned[e.Name] = true
		}
	}
	// Claimed by our record, not only defined by our files: the erase
	// unregisters what the record claims.
	record, err := os.ReadFile(s.r.Path("/var/lib/binfmtctl/" + pkgName))
	if err != nil {
		s.t.Fatalf("reading our record: %v", err)
	}
	for _, cpu := range all {
		if contains(cpus, cpu) {
			if !owned["qemu-"+cpu] {
				s.t.Fatalf("qemu-%s is not registered and owned by %s\n%s", cpu, pkgName, s.dumpTable())
			}
			if !strings.Contains(string(record), "== qemu-"+cpu+"\n") {
				s.t.Fatalf("our record does not claim qemu-%s:\n%s", cpu, record)
			}
			s.runs(cpu)
		} else if owned["qemu-"+cpu] {
			s.t.Fatalf("qemu-%s is still registered", cpu)
		}
	}
	s.bootEquivalent("qemu-docker-riscv64")
}

func TestFedoraHostDNF(t *testing.T) { fedoraHost(t, fedoraViaDNF, true) }
func TestFedoraHostRPM(t *testing.T) { fedoraHost(t, fedoraViaRPM, true) }

// TestContainerHostDNF is the same scenario without systemd's trigger
// and without /run/systemd/system: a container host.
func TestContainerHostDNF(t *testing.T) { fedoraHost(t, fedoraViaDNF, false) }
func TestContainerHostRPM(t *testing.T) { fedoraHost(t, fedoraViaRPM, false) }

// do runs f and fails the test when it fails, showing its output.
func (s *suite) do(what string, f func() (string, error)) string {
	s.t.Helper()
	out, err := f()
	return s.must(what, out, err)
}
