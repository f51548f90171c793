package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// fedoraBEConf is a second entry of the stand-in for Fedora's
// qemu-user-static-aarch64, which ships qemu-aarch64_be-static.conf
// beside qemu-aarch64-static.conf: an entry our package (in this test)
// does not define. Without F, so that putting it back after the flush
// would succeed: the test sees a wrong restore, not only a wrong notice.
const fedoraBEConf = `:qemu-aarch64_be:M::\x7fELF\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7:\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff:/usr/bin/qemu-aarch64_be-static:`

func fedoraQemuBE(t *testing.T) string {
	sandbox.Require(t, "/usr/bin/qemu-aarch64-static", "qemu-user-static")
	return sandbox.BuildRPM(t, sandbox.PackageSpec{
		Name: "qemu-user-static-aarch64", Version: "10.1.0", Release: "1.fc43", Arch: "x86_64",
		Files: []sandbox.File{
			{Dst: "/usr/bin/qemu-aarch64-static", Src: "/usr/bin/qemu-aarch64-static", Mode: 0o755},
			{Dst: "/usr/bin/qemu-aarch64_be-static", Src: "/usr/bin/qemu-aarch64-static", Mode: 0o755},
			{Dst: "/usr/lib/binfmt.d/qemu-aarch64-static.conf", Content: []byte(fedoraConf + "\n")},
			{Dst: "/usr/lib/binfmt.d/qemu-aarch64_be-static.conf", Content: []byte(fedoraBEConf + "\n")},
		},
		Post: fedoraScriptlet, PostUn: fedoraScriptlet,
	})
}

// TestFedoraSwapDropsWhatOnlyFedoraDefined: dnf swaps Fedora's package
// (two entries) for ours and the binfmtctl package (which define only
// qemu-aarch64) on a host with systemd's trigger. The swap removes
// Fedora's qemu-aarch64_be-static.conf and its interpreter: removing its
// entry was the point of the transaction, so the guard around systemd's
// flush must not put it back (issue 13 point 1, "Don't restore an entry
// whose defining file was removed in the same transaction"), nor name it
// as an entry it could not register again; the administrator's entry
// still comes back byte for byte.
func TestFedoraSwapDropsWhatOnlyFedoraDefined(t *testing.T) { swapDrops(t, true) }

// TestContainerSwapDropsWhatOnlyFedoraDefined is the same on a container
// host (no systemd trigger, no /run/systemd/system): there the removing
// trigger alone must unregister Fedora's qemu-aarch64_be (issue 13 point
// 2, "On erase, the entries its binfmt.d files defined are
// unregistered"), in the transaction that installs the helper.
func TestContainerSwapDropsWhatOnlyFedoraDefined(t *testing.T) { swapDrops(t, false) }

func swapDrops(t *testing.T, withSystemd bool) {
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
			fedora, trigger := fedoraQemuBE(t), ""
			if withSystemd {
				trigger = systemdTrigger(t)
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
				if out, err := r.DNF("install", trigger); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
			}
			if out, err := r.DNF("install", fedora); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !withSystemd {
				// What the container host's boot did.
				if out, err := r.Chroot("/usr/lib/systemd/systemd-binfmt"); err != nil {
					t.Fatalf("systemd-binfmt: %v\n%s", err, out)
				}
			}
			fs := &binfmt.FS{Dir: r.BinfmtDir}
			if _, err := fs.Entry("qemu-aarch64_be"); err != nil {
				t.Fatalf("Fedora's qemu-aarch64_be is not registered before the swap: %v", err)
			}
			if err := fs.RegisterString("admin-entry", ":admin-entry:M::ADMINMAGIC::/bin/true:"); err != nil {
				t.Fatal(err)
			}
			if err := fs.Disable("admin-entry"); err != nil {
				t.Fatal(err)
			}
			want, _ := fs.Raw("admin-entry")

			out, err := r.DNF("install", "--allowerasing", ours, helperOf(t, ours))
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if got, err := fs.Raw("admin-entry"); err != nil || string(got) != string(want) {
				t.Fatalf("the administrator's entry is %q (%v), want %q\n%s", got, err, want, out)
			}
			if raw, err := fs.Raw("qemu-aarch64_be"); err == nil {
				t.Fatalf("Fedora's qemu-aarch64_be outlives the swap that removed its file and its interpreter:\n%s--- transaction output:\n%s", raw, out)
			}
			if strings.Contains(out, `"qemu-aarch64_be"`) {
				t.Errorf("the swap names qemu-aarch64_be, whose removal was its point:\n%s", out)
			}
		})
	}
}
