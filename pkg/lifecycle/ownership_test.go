package lifecycle_test

import (
	"os"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// TestOwnershipFollowsFiles checks issue 16's point 2 end to end, with
// real rpm and dnf transactions: an entry belongs to the binfmt.d files
// that define it, not to one package's record. After every transaction
// an entry some file on disk still defines is live as that file defines
// it, and an erase takes away only what no remaining file defines.
func TestOwnershipFollowsFiles(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { ownershipFollowsFilesOn(t, st) })
	}
}

func ownershipFollowsFilesOn(t *testing.T, st sandbox.Stack) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	helper := buildHelper(t)
	r := ns.DNFRootOn(st)
	bm := r.BinfmtDir
	state := r.Path("/var/lib/binfmtctl")

	// ctl ships binfmtctl and the interpreter every entry here uses; the
	// other packages call it through the rpm macros.
	ctl := testPkg{name: "ctl", version: "1.0", self: true}
	must(t, "dnf install ctl")(r.DNF("install", ctl.build(t, helper)))
	const interp = "/usr/libexec/ctl/interp"

	fs := &binfmt.FS{Dir: bm}
	manual := ":own-manual:M::OWNMAN::/bin/true:"
	if err := fs.RegisterString("own-manual", manual); err != nil {
		t.Fatal(err)
	}
	others := table(t, bm)
	// cleanup leaves nothing of a subtest behind, failed or not, so each
	// subtest checks its own point alone.
	cleanup := func(pkgs []string, names ...string) {
		for _, p := range pkgs {
			r.RPM("-e", "--noscripts", "--nodeps", p)
			os.Remove(r.Path("/var/lib/binfmtctl/" + p))
		}
		clearEntries(t, bm, names...)
	}

	t.Run("two packages, different files, one definition", func(t *testing.T) {
		line := ":own-x:M::OWNX::" + interp + ":F"
		a := testPkg{name: "own-a", version: "1", confs: map[string]string{"own-a.conf": line + "\n"}}
		b := testPkg{name: "own-b", version: "1", confs: map[string]string{"own-b.conf": line + "\n"}}
		defer cleanup([]string{"own-a", "own-b"}, "own-x")
		must(t, "dnf install own-a")(r.DNF("install", a.build(t, helper)))
		out := must(t, "dnf install own-b")(r.DNF("install", b.build(t, helper)))
		checkTable(t, "install both", bm, want(t, others, line), out)
		checkRecord(t, "install both", state, "own-a", entries(t, line))
		checkRecord(t, "install both", state, "own-b", entries(t, line))
		// Today's code unregistered it here, although own-b defines it.
		out = must(t, "dnf remove own-a")(r.DNF("remove", "own-a"))
		checkTable(t, "remove own-a", bm, want(t, others, line), out)
		checkRecord(t, "remove own-a", state, "own-a", nil)
		checkRecord(t, "remove own-a", state, "own-b", entries(t, line))
		out = must(t, "dnf remove own-b")(r.DNF("remove", "own-b"))
		checkTable(t, "remove own-b", bm, others, out)
		checkRecord(t, "remove own-b", state, "own-b", nil)
	})

	t.Run("two packages, two definitions", func(t *testing.T) {
		// own-d.conf sorts after own-c.conf: systemd-binfmt applies it
		// last, so its definition is the one live.
		lineC := ":own-y:M::OWNYC::" + interp + ":"
		lineD := ":own-y:M::OWNYD::" + interp + ":"
		c := testPkg{name: "own-c", version: "1", confs: map[string]string{"own-c.conf": lineC + "\n"}}
		d := testPkg{name: "own-d", version: "1", confs: map[string]string{"own-d.conf": lineD + "\n"}}
		defer cleanup([]string{"own-c", "own-d"}, "own-y")
		must(t, "dnf install own-c")(r.DNF("install", c.build(t, helper)))
		out := must(t, "dnf install own-d")(r.DNF("install", d.build(t, helper)))
		checkTable(t, "install both", bm, want(t, others, lineD), out)
		checkRecord(t, "install both", state, "own-c", entries(t, lineD))
		out = must(t, "rpm -e own-d")(r.RPM("-e", "own-d"))
		checkTable(t, "remove own-d", bm, want(t, others, lineC), out)
		checkRecord(t, "remove own-d", state, "own-c", entries(t, lineC))
		checkRecord(t, "remove own-d", state, "own-d", nil)
		out = must(t, "rpm -e own-c")(r.RPM("-e", "own-c"))
		checkTable(t, "remove own-c", bm, others, out)
	})

	for _, via := range []string{"rpm -U", "dnf install"} {
		t.Run("renamed package via "+via, func(t *testing.T) {
			line := ":own-ren:M::OWNREN::" + interp + ":F"
			conf := map[string]string{"own-ren.conf": line + "\n"}
			old := testPkg{name: "ren-old", version: "1", confs: conf}
			renamed := testPkg{name: "ren-new", version: "2", confs: conf, obsoletes: []string{"ren-old"}}
			defer cleanup([]string{"ren-old", "ren-new"}, "own-ren")
			must(t, "dnf install ren-old")(r.DNF("install", old.build(t, helper)))
			checkTable(t, "install ren-old", bm, want(t, others, line), "")
			var out string
			if via == "rpm -U" {
				out = must(t, via)(r.RPM("-U", renamed.build(t, helper)))
			} else {
				out = must(t, via)(r.DNF("install", renamed.build(t, helper)))
			}
			if q, err := r.RPM("-q", "ren-old"); err == nil {
				t.Fatalf("%s did not obsolete ren-old:\n%s", via, q)
			}
			// Today's code: ren-new's %post took the entry over, then
			// ren-old's %preun removed it.
			checkTable(t, via+" ren-new", bm, want(t, others, line), out)
			checkRecord(t, via+" ren-new", state, "ren-new", entries(t, line))
			checkRecord(t, via+" ren-new", state, "ren-old", nil)
			out = must(t, "dnf remove ren-new")(r.DNF("remove", "ren-new"))
			checkTable(t, "remove ren-new", bm, others, out)
			checkRecord(t, "remove ren-new", state, "ren-new", nil)
		})
	}

	t.Run("the administrator's file of the same name", func(t *testing.T) {
		line := ":own-adm:M::OWNADM::" + interp + ":"
		p := testPkg{name: "own-p", version: "1", confs: map[string]string{"own-adm.conf": line + "\n"}}
		defer cleanup([]string{"own-p"}, "own-adm")
		os.MkdirAll(r.Path("/etc/binfmt.d"), 0o755)
		if err := os.WriteFile(r.Path("/etc/binfmt.d/own-adm.conf"), []byte(line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(r.Path("/etc/binfmt.d/own-adm.conf"))
		out := must(t, "dnf install own-p")(r.DNF("install", p.build(t, helper)))
		checkTable(t, "install", bm, want(t, others, line), out)
		// systemd-binfmt registers it at boot from /etc: it stays.
		out = must(t, "dnf remove own-p")(r.DNF("remove", "own-p"))
		checkTable(t, "remove with the administrator's equal file", bm, want(t, others, line), out)
		if !strings.Contains(out, "/etc/binfmt.d/own-adm.conf:1 still defines it") {
			t.Errorf("no notice naming the administrator's file:\n%s", out)
		}
		checkRecord(t, "remove", state, "own-p", nil)
		clearEntries(t, bm, "own-adm")
	})

	t.Run("the administrator's file overriding the entry", func(t *testing.T) {
		line := ":own-ovr:M::OWNOVR::" + interp + ":"
		admin := ":own-ovr:M::OWNADMIN::/bin/true:"
		p := testPkg{name: "own-q", version: "1", confs: map[string]string{"own-ovr.conf": line + "\n"}}
		defer cleanup([]string{"own-q"}, "own-ovr")
		out := must(t, "dnf install own-q")(r.DNF("install", p.build(t, helper)))
		checkTable(t, "install", bm, want(t, others, line), out)
		// Written after the install: zz sorts last, so at boot the
		// administrator's definition wins.
		os.MkdirAll(r.Path("/etc/binfmt.d"), 0o755)
		if err := os.WriteFile(r.Path("/etc/binfmt.d/zz-admin.conf"), []byte(admin+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(r.Path("/etc/binfmt.d/zz-admin.conf"))
		out = must(t, "rpm -e own-q")(r.RPM("-e", "own-q"))
		checkTable(t, "remove with the administrator's override", bm, want(t, others, admin), out)
		checkRecord(t, "remove", state, "own-q", nil)
		clearEntries(t, bm, "own-ovr")
	})

	t.Run("one package, two files for one entry: systemd's order", func(t *testing.T) {
		lineA := ":own-ord:M::ORDA::" + interp + ":"
		lineZ := ":own-ord:M::ORDZ::" + interp + ":"
		// rpm lists /etc before /usr, systemd sorts by file name.
		p := testPkg{name: "own-o", version: "1", paths: map[string]string{
			"/etc/binfmt.d/z-ord.conf": lineZ + "\n", "/usr/lib/binfmt.d/a-ord.conf": lineA + "\n"}}
		defer cleanup([]string{"own-o"}, "own-ord")
		out := must(t, "dnf install own-o")(r.DNF("install", p.build(t, helper)))
		checkTable(t, "install", bm, want(t, others, lineZ), out)
		checkRecord(t, "install", state, "own-o", entries(t, lineZ))
		out = must(t, "dnf remove own-o")(r.DNF("remove", "own-o"))
		checkTable(t, "remove", bm, others, out)
	})
}

// TestInstallrootSharesHostTable runs dnf --installroot with the host's
// /proc in the root, as an image build does: the root's scriptlets see
// the host's own table. The host's entries, even one the root's package
// defines exactly, are neither adopted nor removed; the root's package
// still registers and removes its own.
func TestInstallrootSharesHostTable(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { installrootSharesHostTableOn(t, st) })
	}
}

func installrootSharesHostTableOn(t *testing.T, st sandbox.Stack) {
	// AtProc: the namespace's own table is at /proc/sys/fs/binfmt_misc,
	// as the host's is, and the root's /proc shows the same table.
	ns := sandbox.Enter(t, sandbox.AtProc())
	if ns == nil {
		return
	}
	helper := buildHelper(t)
	r := ns.DNFRootOn(st)
	bm := r.BinfmtDir
	const hostLine = ":host-x:M::HOSTX::/bin/true:F"
	// The host registered it from its own binfmt.d (not in the root).
	fs := &binfmt.FS{Dir: ns.BinfmtDir}
	if err := fs.RegisterString("host-x", hostLine); err != nil {
		t.Fatal(err)
	}
	host := table(t, ns.BinfmtDir)
	if got := table(t, bm); got["host-x"] == "" {
		t.Fatalf("the root does not see the host's table: %v", got)
	}
	registered := func() string {
		t.Helper()
		fi, err := os.Stat(ns.BinfmtDir + "/host-x")
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime().String()
	}
	since := registered()

	own := ":root-own:E::rootown::/bin/true:"
	p := testPkg{name: "img", version: "1", self: true, confs: map[string]string{"img.conf": hostLine + "\n" + own + "\n"}}
	out := must(t, "dnf install img")(r.DNF("install", p.build(t, helper)))
	checkTable(t, "install in the root", bm, want(t, host, own), out)
	if registered() != since {
		t.Errorf("the host's entry was registered again from the root (pinning the root's file)")
	}
	checkRecord(t, "install in the root", r.Path("/var/lib/binfmtctl"), "img", entries(t, own))
	if !strings.Contains(out, `entry "host-x" is registered by someone else`) {
		t.Errorf("no notice that host-x is the host's:\n%s", out)
	}
	out = must(t, "dnf remove img")(r.DNF("remove", "img"))
	checkTable(t, "remove in the root", bm, host, out)
	if registered() != since {
		t.Errorf("the host's entry was touched by the erase")
	}
}

// TestExactQuery checks issue 16's point 7 in real transactions: the
// %post finds its own package exactly, even when another package's name
// makes rpm's own lookup ambiguous, and after an epoch bump, when both
// instances are in the database.
func TestExactQuery(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { exactQueryOn(t, st) })
	}
}

func exactQueryOn(t *testing.T, st sandbox.Stack) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	helper := buildHelper(t)
	r := ns.DNFRootOn(st)
	bm := r.BinfmtDir
	state := r.Path("/var/lib/binfmtctl")
	ctl := testPkg{name: "ctl", version: "1.0", self: true}
	must(t, "dnf install ctl")(r.DNF("install", ctl.build(t, helper)))
	const interp = "/usr/libexec/ctl/interp"
	others := table(t, bm)
	cleanup := func(pkgs []string, names ...string) {
		for _, p := range pkgs {
			r.RPM("-e", "--noscripts", "--nodeps", p)
			os.Remove(r.Path("/var/lib/binfmtctl/" + p))
		}
		clearEntries(t, bm, names...)
	}

	t.Run("a package called amb-1 and amb 1-1", func(t *testing.T) {
		defer cleanup([]string{"amb", "amb-1"}, "amb-x", "amb-other")
		lineOther := ":amb-other:M::AMBO::" + interp + ":"
		lineX := ":amb-x:M::AMBX::" + interp + ":"
		// rpm -q amb-1-1 finds amb-1, version 1, before amb 1-1.
		other := testPkg{name: "amb-1", version: "1", release: "5", confs: map[string]string{"amb-other.conf": lineOther + "\n"}}
		amb := testPkg{name: "amb", version: "1", confs: map[string]string{"amb-x.conf": lineX + "\n"}}
		must(t, "dnf install amb-1")(r.DNF("install", other.build(t, helper)))
		out := must(t, "dnf install amb")(r.DNF("install", amb.build(t, helper)))
		checkTable(t, "install amb", bm, want(t, others, lineOther, lineX), out)
		checkRecord(t, "install amb", state, "amb", entries(t, lineX))
		checkRecord(t, "install amb", state, "amb-1", entries(t, lineOther))
		// amb-1 erased without its scriptlets, then synced: rpm -q amb-1
		// finds amb 1-1, which is not amb-1.
		must(t, "rpm -e --noscripts amb-1")(r.RPM("-e", "--noscripts", "amb-1"))
		out = must(t, "binfmtctl sync amb-1")(r.Chroot("/usr/bin/binfmtctl", "sync", "amb-1"))
		checkTable(t, "sync amb-1 once erased", bm, want(t, others, lineX), out)
		checkRecord(t, "sync amb-1 once erased", state, "amb-1", nil)
		out = must(t, "dnf remove")(r.DNF("remove", "amb"))
		checkTable(t, "remove amb", bm, others, out)
	})

	for _, self := range []bool{false, true} {
		how := "the macros, which pass the epoch"
		if self {
			how = "scriptlets without the epoch"
		}
		t.Run("epoch bump through "+how, func(t *testing.T) {
			lineA := ":ep-a:M::EPA::" + interp + ":"
			lineB := ":ep-b:M::EPB::" + interp + ":"
			name := "ep"
			if self {
				name = "eps"
			}
			defer cleanup([]string{name}, "ep-a", "ep-b")
			v0 := testPkg{name: name, version: "1", self: self, confs: map[string]string{"ep-a.conf": lineA + "\n", "ep-b.conf": lineB + "\n"}}
			v1 := testPkg{name: name, epoch: "1", version: "1", self: self, confs: map[string]string{"ep-a.conf": lineA + "\n"}}
			if self {
				// The helper is in ctl: the package's own copy would
				// conflict with it.
				v0.self, v1.self = false, false
			}
			must(t, "dnf install 0:1-1")(r.DNF("install", v0.build(t, helper)))
			checkTable(t, "install 0:1-1", bm, want(t, others, lineA, lineB), "")
			p1 := v1.build(t, helper)
			if self {
				p1 = rebuildWithoutEpoch(t, v1, helper)
			}
			out := must(t, "rpm -U 1:1-1")(r.RPM("-U", p1))
			// Before: both instances matched and their files merged, so
			// ep-b, which 1:1-1 dropped, stayed registered and claimed.
			checkTable(t, "upgrade to 1:1-1", bm, want(t, others, lineA), out)
			checkRecord(t, "upgrade to 1:1-1", state, name, entries(t, lineA))
			out = must(t, "rpm -e")(r.RPM("-e", name))
			checkTable(t, "erase", bm, others, out)
		})
	}
}

// rebuildWithoutEpoch builds p, which has an epoch, with scriptlets that
// name it without one, as callers older than the epoch in the macros do.
func rebuildWithoutEpoch(t *testing.T, p testPkg, helper string) string {
	t.Helper()
	q := p
	q.epoch = ""
	spec := sandbox.PackageSpec{Name: p.name, Epoch: p.epoch, Version: p.version, Arch: "x86_64",
		Post: rpmEval(t, q, "%binfmtctl_post"), PreUn: rpmEval(t, q, "%binfmtctl_preun"), PostUn: rpmEval(t, q, "%binfmtctl_postun"),
		Requires: []string{"/usr/bin/binfmtctl"}}
	for name, content := range p.confs {
		spec.Files = append(spec.Files, sandbox.File{Dst: "/usr/lib/binfmt.d/" + name, Content: []byte(content), Mode: 0o644})
	}
	return sandbox.BuildRPM(t, spec)
}
