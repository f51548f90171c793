package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// rpmCalls replaces the root's rpm with a shell wrapper that appends
// each command line to a log inside the root and runs the real rpm. dnf
// links librpm and never starts it: what the log shows is what the
// scriptlets and the helper started. It returns a function that reads
// the rpm -qf queries logged since the last call, and among them the
// triggers' owner queries (lifecycle.RPM.HookOwners, whose format starts
// with "@@ "), and empties the log.
func rpmCalls(t *testing.T, r *sandbox.Root) func() (qf, hooks []string) {
	t.Helper()
	bin := r.Path("/usr/bin/rpm")
	real := bin + ".real"
	if err := os.Rename(bin, real); err != nil {
		t.Fatalf("moving the root's rpm aside: %v", err)
	}
	const log = "/var/tmp/rpm-calls"
	wrapper := "#!/bin/sh\necho \"$*\" >>" + log + "\nexec /usr/bin/rpm.real \"$@\"\n"
	if err := os.WriteFile(bin, []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	return func() (qf, hooks []string) {
		t.Helper()
		data, err := os.ReadFile(r.Path(log))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		os.Remove(r.Path(log))
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(" "+l+" ", " -qf ") {
				qf = append(qf, l)
				if strings.Contains(l, "--qf @@ ") {
					hooks = append(hooks, l)
				}
			}
		}
		return qf, hooks
	}
}

// TestOldWayTriggersAskRPMOnlyForClaims: issue 13's performance point.
// An rpm -qf costs more than the rest of a trigger step, and every file a
// file trigger passes is a file of a package in the transaction: the
// helper's triggers ask rpm who owns an old-way package's binfmt.d file
// only when a record claims an entry the file defines. On a container
// host, where the triggers register and unregister the entry: its
// install and its erase ask nothing; once "binfmtctl sync PACKAGE" made a
// record, its upgrade asks (leaving, guard-after) and its erase asks once
// (leaving; removing uses that answer), and the erase takes the record
// with the entry (the erase then runs as that package's, which asks rpm
// for the files' owners once more, as its hooks would).
func TestOldWayTriggersAskRPMOnlyForClaims(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			ns := sandbox.Enter(t)
			if ns == nil {
				return
			}
			helper := guardHelperAt(t, func(p int) int { return p })
			old1, old2 := oldWay(t, "1"), oldWay(t, "2")
			r := ns.DNFRootOn(st)
			hostConfs, _ := filepath.Glob(r.Path("/usr/lib/binfmt.d/*"))
			for _, f := range hostConfs {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
			if out, err := r.DNF("install", helper); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			queries := rpmCalls(t, r)
			fs := &binfmt.FS{Dir: r.BinfmtDir}
			step := func(what string, wantQueries int, wantLive bool, args ...string) {
				t.Helper()
				out, err := r.DNF(args...)
				if err != nil {
					t.Fatalf("%s: %v\n%s", what, err, out)
				}
				if _, err := fs.Entry("oldway"); (err == nil) != wantLive {
					t.Fatalf("%s: the old-way entry is live: %v, want %v\n%s", what, err == nil, wantLive, out)
				}
				qf, hooks := queries()
				if len(hooks) != wantQueries || wantQueries == 0 && len(qf) > 0 {
					t.Errorf("%s: the triggers asked rpm who owns files %d times, want %d; every rpm -qf: %q\n%s", what, len(hooks), wantQueries, qf, out)
				}
			}
			step("install, no record", 0, true, "install", old1)
			step("erase, no record", 0, false, "remove", "oldway-binfmt")

			step("install again", 0, true, "install", old1)
			if out, err := r.Chroot("/usr/bin/binfmtctl", "sync", "oldway-binfmt"); err != nil {
				t.Fatalf("binfmtctl sync oldway-binfmt: %v\n%s", err, out)
			}
			record := r.Path("/var/lib/binfmtctl/oldway-binfmt")
			if _, err := os.Stat(record); err != nil {
				t.Fatalf("binfmtctl sync made no record: %v", err)
			}
			queries()
			step("upgrade, with a record", 2, true, "install", old2)
			step("erase, with a record", 1, false, "remove", "oldway-binfmt")
			if _, err := os.Stat(record); err == nil {
				t.Errorf("the old-way package's record outlives its erase")
			}
		})
	}
}

// TestHookPackageWithoutRecordOnContainerHost: a package that calls the
// hooks but has no record (installed with --nopost, so its %post never
// ran; the same holds when binfmt_misc was missing at its %post) is, to
// the triggers, a package that never calls the hooks: nothing claims its
// entries, so they ask rpm nothing (AskOwners) and act on exact matches
// only, as its hooks would. On a container host its entry is registered
// once, by guard-after, and on its erase unregistered once, by removing:
// its %preun hook then finds nothing of its own live and says nothing.
func TestHookPackageWithoutRecordOnContainerHost(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			ns := sandbox.Enter(t)
			if ns == nil {
				return
			}
			r := ns.DNFRootOn(st)
			hostConfs, _ := filepath.Glob(r.Path("/usr/lib/binfmt.d/*"))
			for _, f := range hostConfs {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
			cpus := []string{"aarch64"}
			v1 := nfpmBuilder(t, r)(t, interpreters(t, cpus, ""), cpus, "1.0")
			queries := rpmCalls(t, r)
			out, err := r.RPM("-i", "--nopost", v1)
			if err != nil {
				t.Fatalf("rpm -i --nopost: %v\n%s", err, out)
			}
			if strings.Contains(out, "binfmtctl:") {
				t.Errorf("the install says something about the entries:\n%s", out)
			}
			fs := &binfmt.FS{Dir: r.BinfmtDir}
			if _, err := fs.Entry("qemu-aarch64"); err != nil {
				t.Fatalf("after rpm -i --nopost on a container host the helper's trigger did not register qemu-aarch64: %v\n%s", err, out)
			}
			if _, err := os.Stat(r.Path("/var/lib/binfmtctl/" + pkgName)); err == nil {
				t.Errorf("the trigger made a record for %s, a package whose hooks did not run", pkgName)
			}
			if _, hooks := queries(); len(hooks) != 0 {
				t.Errorf("the triggers asked rpm who owns files %d times, want none: %q", len(hooks), hooks)
			}
			out, err = r.RPM("-e", pkgName)
			if err != nil {
				t.Fatalf("rpm -e: %v\n%s", err, out)
			}
			if _, err := fs.Entry("qemu-aarch64"); err == nil {
				t.Fatalf("qemu-aarch64 outlives its package\n%s", out)
			}
			// Unregistered once: the %preun hook, after removing, has
			// nothing to say about an entry already gone.
			if strings.Contains(out, "binfmtctl:") {
				t.Errorf("the erase says something about the entries:\n%s", out)
			}
		})
	}
}
