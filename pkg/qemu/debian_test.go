package qemu

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// debianDir is where Debian's qemu-user-static package puts its binfmt.d
// files, one qemu-<cpu>.conf per target.
const debianDir = "/usr/lib/binfmt.d"

// debianDiffers lists the targets whose mask (and, for mips o32/n32, the
// magic's length and fields) differ between qemu-binfmt-conf.sh, which the
// table follows, and Debian's own table (debian/binfmt-install in Debian's
// qemu 7.2 package). Both match the headers of real programs, which
// TestDebianMatchesSamePrograms checks; they differ in which odd headers
// they also accept.
var debianDiffers = map[string]string{
	"alpha": "qemu ignores the low bit of EI_DATA and EI_VERSION; Debian checks them",
	"m68k":  "qemu ignores the low bit of EI_VERSION; Debian checks it",
	// Debian takes EI_OSABI 0 to 3 only; qemu takes any EI_OSABI.
	"ppc":         "Debian checks EI_OSABI <= 3",
	"ppc64":       "Debian checks EI_OSABI <= 3",
	"ppc64le":     "Debian checks EI_OSABI <= 3",
	"s390x":       "Debian checks EI_OSABI <= 3",
	"sh4":         "Debian checks EI_OSABI <= 3",
	"sh4eb":       "Debian checks EI_OSABI <= 3",
	"sparc":       "Debian checks EI_OSABI <= 3",
	"sparc32plus": "Debian checks EI_OSABI <= 3",
	"sparc64":     "Debian checks EI_OSABI <= 3",
	// qemu ignores EI_ABIVERSION for mips, whose toolchains set it; Debian
	// takes 0 and 1. For o32/n32 qemu also checks e_version, which Debian
	// does not, and Debian's little-endian magics stop at the e_flags byte
	// that matters (37 bytes) where qemu's run to the end of e_flags (40).
	"mips":      "EI_ABIVERSION and e_version checks differ",
	"mipsel":    "EI_ABIVERSION and e_version checks differ; 37 vs 40 bytes",
	"mipsn32":   "EI_ABIVERSION and e_version checks differ",
	"mipsn32el": "EI_ABIVERSION and e_version checks differ; 37 vs 40 bytes",
	"mips64":    "Debian checks EI_ABIVERSION <= 1; qemu ignores it",
	"mips64el":  "Debian checks EI_ABIVERSION <= 1; qemu ignores it",
}

// debianEntries parses Debian's qemu binfmt.d files, by cpu.
func debianEntries(t *testing.T) map[string]binfmt.Entry {
	t.Helper()
	if _, err := os.Stat(filepath.Join(debianDir, "qemu-aarch64.conf")); err != nil {
		t.Fatalf("Debian's qemu binfmt.d files are missing (%v); install them with: apt-get install -y qemu-user-static", err)
	}
	paths, err := filepath.Glob(filepath.Join(debianDir, "qemu-*.conf"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]binfmt.Entry{}
	for _, p := range paths {
		cpu := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "qemu-"), ".conf")
		lines, errs := binfmt.ParseFile(p)
		if len(errs) > 0 || len(lines) != 1 {
			t.Errorf("%s: want one entry, got %d lines and errors %v", p, len(lines), errs)
			continue
		}
		if lines[0].Name != "qemu-"+cpu {
			t.Errorf("%s: entry is named %q, want qemu-%s", p, lines[0].Name, cpu)
		}
		out[cpu] = lines[0].Entry
	}
	return out
}

// TestDebianMagicMask compares the table with Debian's files, byte for
// byte. Every difference must be one listed in debianDiffers, and every
// listed one must still be there.
func TestDebianMagicMask(t *testing.T) {
	deb := debianEntries(t)
	var same, only []string
	for _, cpu := range slices.Sorted(maps.Keys(deb)) {
		e := deb[cpu]
		tg, ok := Lookup(cpu)
		if !ok {
			only = append(only, cpu)
			continue
		}
		equal := bytes.Equal(e.Magic, tg.Magic) && bytes.Equal(e.Mask, tg.Mask) && e.Offset == 0
		reason, listed := debianDiffers[cpu]
		switch {
		case equal && listed:
			t.Errorf("%s: now equal to Debian's; drop it from debianDiffers (%s)", cpu, reason)
		case !equal && !listed:
			t.Errorf("%s differs from Debian's %s\n ours:   magic %x\n         mask  %x\n Debian: magic %x\n         mask  %x",
				cpu, filepath.Join(debianDir, "qemu-"+cpu+".conf"), tg.Magic, tg.Mask, e.Magic, e.Mask)
		case equal:
			same = append(same, cpu)
		}
	}
	for cpu := range debianDiffers {
		if _, ok := deb[cpu]; !ok {
			t.Errorf("%s is listed in debianDiffers but Debian ships no %s", cpu, filepath.Join(debianDir, "qemu-"+cpu+".conf"))
		}
	}
	t.Logf("equal to Debian's byte for byte: %s", strings.Join(same, " "))
	t.Logf("different by design (see debianDiffers): %d targets", len(debianDiffers))
	t.Logf("Debian targets qemu-binfmt-conf.sh does not know: %s", strings.Join(only, " "))
}

// TestDebianMatchesSamePrograms checks that, where the bytes differ, both
// tables still send the same programs to the same emulator: every header
// built from the ELF facts of a target Debian ships is matched by Debian's
// entry for it and by no other Debian entry, just as in our table.
func TestDebianMatchesSamePrograms(t *testing.T) {
	deb := debianEntries(t)
	var entries []binfmt.Entry
	for _, e := range deb {
		entries = append(entries, e)
	}
	for _, cpu := range CPUs() {
		if _, ok := deb[cpu]; !ok {
			continue
		}
		for variant, h := range elfHeaders(t, cpu) {
			if got := matching(entries, h); !slices.Equal(got, []string{"qemu-" + cpu}) {
				t.Errorf("%s header (%s) is matched by Debian's %v, want only qemu-%s", cpu, variant, got, cpu)
			}
		}
	}
}

// TestInterpreters checks that the interpreters Debian's qemu-user-static
// installs are where the generated files point, and logs the targets this
// machine has no interpreter for.
func TestInterpreters(t *testing.T) {
	deb := debianEntries(t)
	var missing []string
	for _, tg := range Targets() {
		p := filepath.Join(DefaultBinDir, tg.InterpreterName())
		_, err := os.Stat(p)
		if _, shipped := deb[tg.CPU]; shipped && err != nil {
			t.Errorf("Debian ships %s but not its interpreter: %v; reinstall with: apt-get install --reinstall -y qemu-user-static", ConfName(tg.CPU), err)
		}
		if err != nil {
			missing = append(missing, tg.CPU)
		}
	}
	if len(missing) == 0 {
		missing = []string{"none"}
	}
	t.Logf("targets with no %s/qemu-<cpu>-static here: %s", DefaultBinDir, strings.Join(missing, " "))

	known := map[string]bool{}
	for _, tg := range Targets() {
		known[tg.InterpreterName()] = true
	}
	found, _ := filepath.Glob(filepath.Join(DefaultBinDir, "qemu-*-static"))
	var extra []string
	for _, p := range found {
		if !known[filepath.Base(p)] {
			extra = append(extra, filepath.Base(p))
		}
	}
	t.Logf("interpreters here that no target uses: %s", strings.Join(extra, " "))
}
