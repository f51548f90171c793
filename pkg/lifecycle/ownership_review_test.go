package lifecycle_test

import (
	"os"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// TestOwnershipMoreShapes tries issue 16's point 2 on the shapes
// TestOwnershipFollowsFiles does not: renamed packages whose files have
// other names than the old ones', one file path two packages share, and
// the administrator's mask. After every transaction an entry some file on
// disk still defines is live as that file defines it, and nothing else.
func TestOwnershipMoreShapes(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { ownershipMoreShapesOn(t, st) })
	}
}

func ownershipMoreShapesOn(t *testing.T, st sandbox.Stack) {
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

	for _, via := range []string{"rpm -U", "dnf install"} {
		t.Run("renamed via "+via+", the file renamed too, one definition", func(t *testing.T) {
			line := ":rv-a:M::RVA::" + interp + ":F"
			old := testPkg{name: "rv-old", version: "1", confs: map[string]string{"rv-old.conf": line + "\n"}}
			renamed := testPkg{name: "rv-new", version: "2", confs: map[string]string{"rv-new.conf": line + "\n"}, obsoletes: []string{"rv-old"}}
			defer cleanup([]string{"rv-old", "rv-new"}, "rv-a")
			must(t, "dnf install rv-old")(r.DNF("install", old.build(t, helper)))
			var out string
			if via == "rpm -U" {
				out = must(t, via)(r.RPM("-U", renamed.build(t, helper)))
			} else {
				out = must(t, via)(r.DNF("install", renamed.build(t, helper)))
			}
			checkTable(t, via, bm, want(t, others, line), out)
			checkRecord(t, via, state, "rv-new", entries(t, line))
			checkRecord(t, via, state, "rv-old", nil)
			out = must(t, "dnf remove rv-new")(r.DNF("remove", "rv-new"))
			checkTable(t, "remove rv-new", bm, others, out)
		})
		t.Run("renamed via "+via+", the old file sorting last, two definitions", func(t *testing.T) {
			lineOld := ":rw-a:M::RWOLD::" + interp + ":"
			lineNew := ":rw-a:M::RWNEW::" + interp + ":"
			// During the new %post the old file is still on disk and
			// wins systemd's order; once it is gone the new one must.
			old := testPkg{name: "rw-old", version: "1", confs: map[string]string{"z-rw.conf": lineOld + "\n"}}
			renamed := testPkg{name: "rw-new", version: "2", confs: map[string]string{"a-rw.conf": lineNew + "\n"}, obsoletes: []string{"rw-old"}}
			defer cleanup([]string{"rw-old", "rw-new"}, "rw-a")
			must(t, "dnf install rw-old")(r.DNF("install", old.build(t, helper)))
			var out string
			if via == "rpm -U" {
				out = must(t, via)(r.RPM("-U", renamed.build(t, helper)))
			} else {
				out = must(t, via)(r.DNF("install", renamed.build(t, helper)))
			}
			checkTable(t, via, bm, want(t, others, lineNew), out)
			checkRecord(t, via, state, "rw-new", entries(t, lineNew))
			checkRecord(t, via, state, "rw-old", nil)
			out = must(t, "rpm -e rw-new")(r.RPM("-e", "rw-new"))
			checkTable(t, "remove rw-new", bm, others, out)
		})
	}

	t.Run("one path two packages share", func(t *testing.T) {
		line := ":sh-a:M::SHA::" + interp + ":F"
		conf := map[string]string{"shared.conf": line + "\n"}
		a := testPkg{name: "sh-a", version: "1", confs: conf}
		b := testPkg{name: "sh-b", version: "1", confs: conf}
		defer cleanup([]string{"sh-a", "sh-b"}, "sh-a")
		must(t, "dnf install sh-a")(r.DNF("install", a.build(t, helper)))
		out := must(t, "dnf install sh-b")(r.DNF("install", b.build(t, helper)))
		checkTable(t, "install both", bm, want(t, others, line), out)
		out = must(t, "rpm -e sh-a")(r.RPM("-e", "sh-a"))
		checkTable(t, "remove sh-a", bm, want(t, others, line), out)
		checkRecord(t, "remove sh-a", state, "sh-b", entries(t, line))
		out = must(t, "rpm -e sh-b")(r.RPM("-e", "sh-b"))
		checkTable(t, "remove sh-b", bm, others, out)
		checkRecord(t, "remove sh-b", state, "sh-b", nil)
	})

	t.Run("the administrator's mask", func(t *testing.T) {
		line := ":mk-a:M::MKA::" + interp + ":"
		p := testPkg{name: "mk", version: "1", confs: map[string]string{"mk.conf": line + "\n"}}
		defer cleanup([]string{"mk"}, "mk-a")
		os.MkdirAll(r.Path("/etc/binfmt.d"), 0o755)
		mask := r.Path("/etc/binfmt.d/mk.conf")
		defer os.Remove(mask)
		// Masked before the install: nothing is registered.
		if err := os.Symlink("/dev/null", mask); err != nil {
			t.Fatal(err)
		}
		rpmMK := p.build(t, helper)
		out := must(t, "dnf install, masked")(r.DNF("install", rpmMK))
		checkTable(t, "install, masked", bm, others, out)
		checkRecord(t, "install, masked", state, "mk", nil)
		// Unmasked and synced, then masked again and erased: at boot
		// nothing would be registered, so nothing stays.
		os.Remove(mask)
		out = must(t, "binfmtctl sync mk")(r.Chroot("/usr/bin/binfmtctl", "sync", "mk"))
		checkTable(t, "sync, unmasked", bm, want(t, others, line), out)
		if err := os.Symlink("/dev/null", mask); err != nil {
			t.Fatal(err)
		}
		out = must(t, "rpm -e mk, masked")(r.RPM("-e", "mk"))
		checkTable(t, "erase, masked", bm, others, out)
		checkRecord(t, "erase, masked", state, "mk", nil)
	})
}
