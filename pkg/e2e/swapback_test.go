package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// swapBack: issue 13 point 3, "Swapping back to Fedora's package leaves
// Fedora's definition live", as one dnf transaction (dnf install
// --allowerasing of Fedora's package, which erases ours through our
// Conflicts), with and without systemd's trigger, with and without the
// binfmtctl package left installed. The administrator's disabled entry
// stays byte for byte, and no record of ours is left.
//
// viaRPM runs the swap back through the rpm CLI, which cannot erase and
// install in one transaction of its own accord: Fedora's stand-in then
// obsoletes ours, so that "rpm -U" of it erases ours in the transaction
// that installs its binfmt.d file, as dnf's does.
func swapBack(t *testing.T, withSystemd, withHelper, viaRPM bool) {
	swapBackWith(t, swapOpts{systemd: withSystemd, helper: withHelper, viaRPM: viaRPM})
}

// swapOpts are swapBack's, and: eraseHelper, Fedora's stand-in obsoletes
// the binfmtctl package too, so that the swap back erases both packages
// that ship the helper in one transaction (through the rpm CLI);
// dnfSwap, the swap back is "dnf swap qemu-user-static-go FEDORA.rpm".
type swapOpts struct {
	systemd, helper, viaRPM, eraseHelper, dnfSwap bool
	// activeService: Fedora's %post restarts an active
	// systemd-binfmt.service, which flushes before our %preun.
	activeService bool
}

func swapBackWith(t *testing.T, o swapOpts) {
	withSystemd, withHelper, viaRPM, eraseHelper := o.systemd, o.helper, o.viaRPM, o.eraseHelper
	helperLeft := withHelper && !eraseHelper
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			ns := sandbox.Enter(t)
			if ns == nil {
				return
			}
			sandbox.Require(t, "/lib/systemd/systemd-binfmt", "systemd")
			r := ns.DNFRootOn(st)
			cpus := []string{"aarch64"}
			ours := nfpmBuilder(t, r)(t, interpreters(t, cpus, ""), cpus, "1.0")
			fedora := fedoraQemu(t)
			if o.activeService {
				// What "systemctl try-restart systemd-binfmt.service"
				// does where the service is active, as on a host that
				// booted with our binfmt.d files: its ExecStop, then its
				// ExecStart.
				spec := fedoraQemuSpec()
				spec.Post = "if [ -d /run/systemd/system ]; then /usr/lib/systemd/systemd-binfmt --unregister; /usr/lib/systemd/systemd-binfmt; fi\n"
				fedora = sandbox.BuildRPM(t, spec)
			}
			if viaRPM {
				spec := fedoraQemuSpec()
				spec.Obsoletes = []string{pkgName}
				if eraseHelper {
					spec.Obsoletes = append(spec.Obsoletes, "binfmtctl")
				}
				fedora = sandbox.BuildRPM(t, spec)
			}
			hostConfs, _ := filepath.Glob(r.Path("/usr/lib/binfmt.d/*"))
			for _, f := range hostConfs {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
			if withSystemd {
				if err := os.MkdirAll(r.Path(scriptletsSystemdBooted), 0o755); err != nil {
					t.Fatal(err)
				}
				if out, err := r.DNF("install", systemdTrigger(t)); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
			}
			pkgs := []string{ours}
			if withHelper {
				pkgs = append(pkgs, helperOf(t, ours))
			}
			if out, err := r.DNF(append([]string{"install"}, pkgs...)...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			fs := &binfmt.FS{Dir: r.BinfmtDir}
			if raw, err := fs.Raw("qemu-aarch64"); err != nil || strings.Contains(string(raw), "fffffffffffffffcff") {
				t.Fatalf("our qemu-aarch64 is not live: %v\n%s", err, raw)
			}
			if err := fs.RegisterString("admin-entry", ":admin-entry:M::ADMINMAGIC::/bin/true:"); err != nil {
				t.Fatal(err)
			}
			if err := fs.Disable("admin-entry"); err != nil {
				t.Fatal(err)
			}
			want, _ := fs.Raw("admin-entry")
			registerDocker(t, fs)
			docker, _ := fs.Raw(dockerEntry)
			swap := func() (string, error) { return r.DNF("install", "--allowerasing", fedora) }
			if viaRPM {
				swap = func() (string, error) { return r.RPM("-U", fedora) }
			}
			if o.dnfSwap {
				swap = func() (string, error) { return r.DNF("swap", pkgName, fedora) }
			}
			out, err := swap()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			log := waitEraseGuards(t, r)
			t.Log(log)
			out += log
			// Where systemd's trigger runs and the admin's entry is
			// live, our %preun starts the erase guard; it acts only
			// when no helper is left.
			switch want := map[bool]string{true: "is installed, and its triggers guarded the transaction", false: "systemd-binfmt flushed the table"}[helperLeft]; {
			case withSystemd && !strings.Contains(log, want):
				t.Errorf("the erase guard's log does not say %q:\n%s", want, out)
			case !withSystemd && log != "":
				t.Errorf("an erase guard ran where systemd's trigger does not:\n%s", log)
			}
			if q, _ := r.RPM("-q", pkgName); !strings.Contains(q, "not installed") {
				t.Fatalf("the swap back left ours installed: %s\n%s", q, out)
			}
			if q, _ := r.RPM("-q", "binfmtctl"); eraseHelper && !strings.Contains(q, "not installed") {
				t.Fatalf("the swap back left the binfmtctl package installed: %s\n%s", q, out)
			}
			if got, err := fs.Raw("admin-entry"); err != nil || string(got) != string(want) {
				t.Errorf("the administrator's entry is %q (%v), want %q\n%s", got, err, want, out)
			}
			// The docker-style entry stays where nothing flushes;
			// where systemd-binfmt flushes it cannot come back (flag
			// F, its interpreter deleted), and is named: with no
			// helper left, by our %preun before and by the erase
			// guard's log after.
			gotDocker, err := fs.Raw(dockerEntry)
			named := `entry "` + dockerEntry + `" was flushed by systemd-binfmt and cannot be registered again`
			switch {
			case !withSystemd && string(gotDocker) != string(docker):
				t.Errorf("the docker-style entry is %q (%v), want %q\n%s", gotDocker, err, docker, out)
			case withSystemd && (err == nil || !strings.Contains(out, named)):
				t.Errorf("the docker-style entry is %q (%v), want it flushed and named (%q)\n%s", gotDocker, err, named, out)
			case withSystemd && !helperLeft && !strings.Contains(out, `entry "`+dockerEntry+`" cannot be registered again if systemd-binfmt flushes the table in this transaction`):
				t.Errorf("our %%preun did not name the docker-style entry at risk:\n%s", out)
			}
			live, err := fs.Raw("qemu-aarch64")
			if err != nil || !strings.Contains(string(live), "fffffffffffffffcff") {
				t.Errorf("Fedora's qemu-aarch64 is not live after the swap back: %v\n%s\n--- transaction output:\n%s", err, live, out)
			}
			if _, err := os.Stat(r.Path("/var/lib/binfmtctl/" + pkgName)); err == nil {
				t.Errorf("our record outlives our package")
			}
		})
	}
}

func TestSwapBackFedoraHost(t *testing.T)                { swapBack(t, true, true, false) }
func TestSwapBackContainerHost(t *testing.T)             { swapBack(t, false, true, false) }
func TestSwapBackContainerHostNoHelperLeft(t *testing.T) { swapBack(t, false, false, false) }

// TestSwapBackFedoraHostNoHelperLeft is the swap back where our package
// is the only one that ships the helper: no guard of ours runs after
// systemd's flush inside the transaction, so the erase guard, started by
// our %preun, puts the administrator's entry back once it is over.
func TestSwapBackFedoraHostNoHelperLeft(t *testing.T) { swapBack(t, true, false, false) }

// The same four through the rpm CLI.
func TestSwapBackFedoraHostRPM(t *testing.T)                { swapBack(t, true, true, true) }
func TestSwapBackContainerHostRPM(t *testing.T)             { swapBack(t, false, true, true) }
func TestSwapBackContainerHostNoHelperLeftRPM(t *testing.T) { swapBack(t, false, false, true) }
func TestSwapBackFedoraHostNoHelperLeftRPM(t *testing.T)    { swapBack(t, true, false, true) }

// TestSwapBackFedoraHostBothHelpersErasedRPM: the swap back erases both
// packages that ship the helper in the transaction that installs
// Fedora's binfmt.d file. The binfmtctl package has no %preun of its
// own, and neither package's %transfiletriggerin runs after the flush
// (both are erased), so our %preun's erase guard puts back what the
// flush took. (dnf cannot erase a package it is not asked to; rpm -U
// erases what the installed package obsoletes.)
func TestSwapBackFedoraHostBothHelpersErasedRPM(t *testing.T) {
	swapBackWith(t, swapOpts{systemd: true, helper: true, viaRPM: true, eraseHelper: true})
}

// TestSwapBackFedoraHostNoHelperLeftDNFSwap is the swap back with no
// helper left as "dnf swap", on both stacks: the erase guard puts back.
func TestSwapBackFedoraHostNoHelperLeftDNFSwap(t *testing.T) {
	swapBackWith(t, swapOpts{systemd: true, dnfSwap: true})
}

// TestSwapBackFedoraHostNoHelperLeftActiveService is the swap back with
// no helper left where systemd-binfmt.service is active (a host that
// booted with our binfmt.d files): Fedora's %post, which dnf runs before
// our %preun, restarts it, and its ExecStop flushes the table before our
// %preun looks.
func TestSwapBackFedoraHostNoHelperLeftActiveService(t *testing.T) {
	swapBackWith(t, swapOpts{systemd: true, activeService: true})
}

// TestSwapBackFedoraHostActiveService is the same with the binfmtctl
// package kept: its triggers' guard puts back, from the early snapshot,
// what the restart flushed before the transaction's end.
func TestSwapBackFedoraHostActiveService(t *testing.T) {
	swapBackWith(t, swapOpts{systemd: true, helper: true, activeService: true})
}
