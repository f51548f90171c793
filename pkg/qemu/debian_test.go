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
// byte: every target Debian ships must have Debian's magic and mask.
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
		if e.Offset != 0 || !bytes.Equal(e.Magic, tg.Magic) || !bytes.Equal(e.Mask, tg.Mask) {
			t.Errorf("%s differs from Debian's %s\n ours:   offset 0 magic %x\n                  mask  %x\n Debian: offset %d magic %x\n                  mask  %x",
				cpu, filepath.Join(debianDir, "qemu-"+cpu+".conf"), tg.Magic, tg.Mask, e.Offset, e.Magic, e.Mask)
			continue
		}
		same = append(same, cpu)
	}
	var ours []string
	for _, cpu := range CPUs() {
		if _, ok := deb[cpu]; !ok {
			ours = append(ours, cpu)
		}
	}
	t.Logf("equal to Debian's byte for byte: %d targets: %s", len(same), strings.Join(same, " "))
	t.Logf("Debian targets qemu-binfmt-conf.sh does not know: %s", strings.Join(only, " "))
	t.Logf("targets Debian ships no file for here (the script's data is kept): %s", strings.Join(ours, " "))
}

// TestDebianMatchesSamePrograms checks Debian's files as a whole, with
// the entries the table does not have (cris): every header built from the
// ELF facts of a target Debian ships is matched by Debian's entry for it
// and by no other Debian entry.
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
