package qemu

import (
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

// debian12Differences lists where the table, which follows qemu 11.1,
// differs from Debian 12's files (qemu-user-static 1:7.2+dfsg): the
// bytes of magic or mask that differ, and why. Every other target Debian
// 12 ships is equal byte for byte. Debian 12 ships no file for the host's
// own family, so on amd64 the i386 and x86_64 differences (qemu 11.1
// checks EI_OSABI <= 3, byte 7's mask fc, where Debian 12's table and
// qemu-binfmt-conf.sh have 00) cannot be compared here.
var debian12Differences = map[string]struct {
	bytes []int
	why   string
}{
	"mips":      {[]int{8, 20, 21, 22, 23}, "EI_ABIVERSION is ignored (mask fe -> 00); e_version must be 1"},
	"mipsn32":   {[]int{8, 20, 21, 22, 23}, "EI_ABIVERSION is ignored (mask fe -> 00); e_version must be 1"},
	"mipsel":    {[]int{8, 20, 21, 22, 23, 37, 38, 39}, "EI_ABIVERSION is ignored; e_version must be 1; 40 bytes long, to the end of e_flags (Debian 12: 37)"},
	"mipsn32el": {[]int{8, 20, 21, 22, 23, 37, 38, 39}, "EI_ABIVERSION is ignored; e_version must be 1; 40 bytes long, to the end of e_flags (Debian 12: 37)"},
	"mips64":    {[]int{8}, "EI_ABIVERSION is ignored (mask fe -> 00)"},
	"mips64el":  {[]int{8}, "EI_ABIVERSION is ignored (mask fe -> 00)"},
}

// differingBytes returns the offsets at which two entries' magic or mask
// differ, counting bytes only one of them has.
func differingBytes(aMagic, aMask, bMagic, bMask []byte) []int {
	var out []int
	for i := range max(len(aMagic), len(bMagic)) {
		if i >= len(aMagic) || i >= len(bMagic) || aMagic[i] != bMagic[i] || aMask[i] != bMask[i] {
			out = append(out, i)
		}
	}
	return out
}

// TestDebianMagicMask compares the table with Debian 12's files: every
// target Debian ships has Debian's magic and mask byte for byte, except
// where debian12Differences says otherwise, and there exactly at the
// bytes it lists.
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
		got := differingBytes(tg.Magic, tg.Mask, e.Magic, e.Mask)
		if e.Offset != 0 {
			got = append([]int{-1}, got...)
		}
		if want := debian12Differences[cpu]; !slices.Equal(got, want.bytes) {
			t.Errorf("%s: differs from Debian's %s at bytes %v, documented %v (%s)\n ours:   offset 0 magic %x\n                  mask  %x\n Debian: offset %d magic %x\n                  mask  %x",
				cpu, filepath.Join(debianDir, "qemu-"+cpu+".conf"), got, want.bytes, want.why, tg.Magic, tg.Mask, e.Offset, e.Magic, e.Mask)
			continue
		}
		if len(got) == 0 {
			same = append(same, cpu)
		}
	}
	for cpu := range debian12Differences {
		if _, ok := deb[cpu]; !ok {
			t.Errorf("%s: documented as differing from Debian 12, but %s has no file for it", cpu, debianDir)
		}
	}
	var ours []string
	for _, cpu := range CPUs() {
		if _, ok := deb[cpu]; !ok {
			ours = append(ours, cpu)
		}
	}
	t.Logf("equal to Debian's byte for byte: %d targets: %s", len(same), strings.Join(same, " "))
	t.Logf("Debian targets the table does not have: %s", strings.Join(only, " "))
	t.Logf("targets Debian ships no file for here: %s", strings.Join(ours, " "))
}

// TestDebianMatchesSamePrograms checks Debian's files as a whole, with
// the entries the table does not have (cris, which qemu has since
// dropped): every header built from the ELF facts of a target Debian
// ships is matched by Debian's entry for it and by no other Debian entry,
// except the mips programs with EI_ABIVERSION above 1, which Debian 12
// matches with no entry: the difference debian12Differences lists, and
// the reason the table follows qemu 11.1.
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
			want := []string{"qemu-" + cpu}
			if elfFacts[cpu].machine == emMIPS && h[8] > 1 {
				want = nil
			}
			if got := matching(entries, h); !slices.Equal(got, want) {
				t.Errorf("%s header (%s) is matched by Debian's %v, want %v", cpu, variant, got, want)
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
