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
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// qemu11Dir holds qemu 11.1's binfmt.d files, as Debian sid's qemu-user
// 1:11.1.3+ds-1 ships them in /usr/share/qemu/binfmt.d (its
// qemu-user-binfmt links the foreign ones into /usr/lib/binfmt.d). They
// are facts, kept as they are: see testdata/qemu-11.1/README.
const qemu11Dir = "testdata/qemu-11.1"

// qemu11Entries parses the kept qemu 11.1 files, by cpu.
func qemu11Entries(t *testing.T) map[string]binfmt.Entry {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(qemu11Dir, "qemu-*.conf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no qemu 11.1 binfmt.d files in %s (%v)", qemu11Dir, err)
	}
	out := map[string]binfmt.Entry{}
	for _, p := range paths {
		cpu := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "qemu-"), ".conf")
		lines, errs := binfmt.ParseFile(p)
		if len(errs) > 0 || len(lines) != 1 {
			t.Fatalf("%s: want one entry, got %d lines and errors %v", p, len(lines), errs)
		}
		e := lines[0].Entry
		if lines[0].Name != "qemu-"+cpu || e.Offset != 0 || e.Interpreter != "/usr/bin/qemu-"+cpu || e.Flags != "POF" {
			t.Fatalf("%s: unexpected entry %q (offset %d, interpreter %q, flags %q)", p, lines[0].Name, e.Offset, e.Interpreter, e.Flags)
		}
		out[cpu] = e
	}
	return out
}

// qemu11Absent are the table's targets qemu 11.1 ships no file for, and
// why. Every other target must equal qemu's file byte for byte.
var qemu11Absent = map[string]string{
	// qemu-binfmt-conf.sh still lists i486 (EM_486, obsolete) and runs it
	// with qemu-i386; Debian's table has no i486 line. Ours keeps the
	// script's entry, which matches no program of another target.
	"i486": "an alias of i386 in qemu-binfmt-conf.sh only",
}

// TestQemu11MagicMask checks every target of the table against qemu
// 11.1's binfmt.d files: the same set of targets (but qemu11Absent), and
// for each the same magic and mask, byte for byte.
func TestQemu11MagicMask(t *testing.T) {
	q := qemu11Entries(t)
	for _, cpu := range slices.Sorted(maps.Keys(q)) {
		if _, ok := Lookup(cpu); !ok {
			t.Errorf("qemu 11.1 ships %s/qemu-%s.conf, a target the table does not have", qemu11Dir, cpu)
		}
	}
	for _, tg := range Targets() {
		e, ok := q[tg.CPU]
		if _, absent := qemu11Absent[tg.CPU]; absent {
			if ok {
				t.Errorf("%s is listed as absent from qemu 11.1, but %s/qemu-%s.conf exists", tg.CPU, qemu11Dir, tg.CPU)
			}
			continue
		}
		if !ok {
			t.Errorf("qemu 11.1 ships no file for %s: add it to qemu11Absent with the reason", tg.CPU)
			continue
		}
		if !bytes.Equal(e.Magic, tg.Magic) || !bytes.Equal(e.Mask, tg.Mask) {
			t.Errorf("%s differs from qemu 11.1's %s/qemu-%s.conf\n ours: magic %x\n       mask  %x\n qemu: magic %x\n       mask  %x",
				tg.CPU, qemu11Dir, tg.CPU, tg.Magic, tg.Mask, e.Magic, e.Mask)
		}
	}
}

// TestQemu11MatchesSamePrograms checks qemu 11.1's entries as a whole
// against headers built from the ELF facts: each is matched by its own
// entry and no other, so the table inherits no overlap from them.
func TestQemu11MatchesSamePrograms(t *testing.T) {
	q := qemu11Entries(t)
	var entries []binfmt.Entry
	for cpu, e := range q {
		e.Name = "qemu-" + cpu
		entries = append(entries, e)
	}
	for cpu := range q {
		for variant, h := range elfHeaders(t, cpu) {
			if got := matching(entries, h); !slices.Equal(got, []string{"qemu-" + cpu}) {
				t.Errorf("%s header (%s) is matched by qemu 11.1's %v, want only qemu-%s", cpu, variant, got, cpu)
			}
		}
	}
}

// TestQemu11FilesAreSids checks that the kept files are what the sid test
// root's qemu-user ships now, so that a newer qemu in sid shows up as a
// failure here, with the files to update, rather than going unnoticed.
func TestQemu11FilesAreSids(t *testing.T) {
	st := sandbox.SidStack(t)
	dir := filepath.Join(st.Sysroot, "usr/share/qemu/binfmt.d")
	paths, err := filepath.Glob(filepath.Join(dir, "qemu-*.conf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("the sid root has no qemu binfmt.d files in %s (%v)", dir, err)
	}
	kept := map[string]bool{}
	for _, p := range must(filepath.Glob(filepath.Join(qemu11Dir, "qemu-*.conf"))) {
		kept[filepath.Base(p)] = true
	}
	for _, p := range paths {
		name := filepath.Base(p)
		delete(kept, name)
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(qemu11Dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("sid's %s differs from %s/%s (%v): sid's qemu moved on (%s); update the kept files and the table",
				name, qemu11Dir, name, err, strings.TrimSpace(st.Versions))
		}
	}
	for name := range kept {
		t.Errorf("%s/%s is no longer in sid's qemu", qemu11Dir, name)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
