package qemu

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// scriptTargets is qemu_target_list from qemu's scripts/qemu-binfmt-conf.sh.
var scriptTargets = []string{
	"i386", "i486", "alpha", "arm", "armeb", "sparc", "sparc32plus", "sparc64",
	"ppc", "ppc64", "ppc64le", "m68k", "mips", "mipsel", "mipsn32", "mipsn32el", "mips64", "mips64el",
	"sh4", "sh4eb", "s390x", "aarch64", "aarch64_be", "hppa", "riscv32", "riscv64", "xtensa", "xtensaeb",
	"microblaze", "microblazeel", "or1k", "x86_64", "hexagon", "loongarch64",
}

func TestTargetList(t *testing.T) {
	if got := CPUs(); !slices.Equal(got, scriptTargets) {
		t.Errorf("CPUs() = %v\nwant the script's list %v", got, scriptTargets)
	}
	for i, tg := range Targets() {
		if tg.CPU != scriptTargets[i] {
			t.Errorf("Targets()[%d].CPU = %q, want %q", i, tg.CPU, scriptTargets[i])
		}
	}
}

func TestFamilies(t *testing.T) {
	// The script's <cpu>_family values.
	want := map[string]string{
		"i386": "i386", "i486": "i386", "x86_64": "i386", "alpha": "alpha",
		"arm": "arm", "aarch64": "arm", "armeb": "armeb", "aarch64_be": "armeb",
		"sparc": "sparc", "sparc32plus": "sparc", "sparc64": "sparc",
		"ppc": "ppc", "ppc64": "ppc", "ppc64le": "ppcle", "m68k": "m68k",
		"mips": "mips", "mipsel": "mips", "mipsn32": "mips", "mipsn32el": "mips", "mips64": "mips", "mips64el": "mips",
		"sh4": "sh4", "sh4eb": "sh4", "s390x": "s390x", "hppa": "hppa",
		"riscv32": "riscv", "riscv64": "riscv", "xtensa": "xtensa", "xtensaeb": "xtensaeb",
		"microblaze": "microblaze", "microblazeel": "microblazeel", "or1k": "or1k",
		"hexagon": "hexagon", "loongarch64": "loongarch",
	}
	for _, tg := range Targets() {
		if tg.Family != want[tg.CPU] {
			t.Errorf("%s: family %q, want %q", tg.CPU, tg.Family, want[tg.CPU])
		}
	}
}

func TestLookup(t *testing.T) {
	tg, ok := Lookup("aarch64")
	if !ok || tg.CPU != "aarch64" || tg.Name() != "qemu-aarch64" || tg.InterpreterName() != "qemu-aarch64-static" {
		t.Fatalf("Lookup(aarch64) = %+v, %v", tg, ok)
	}
	tg.Magic[18] = 0 // the caller's copy; the table must not change
	if again, _ := Lookup("aarch64"); again.Magic[18] != 0xb7 {
		t.Errorf("changing a looked-up target changed the table")
	}
	i486, _ := Lookup("i486")
	if i486.Name() != "qemu-i486" || i486.Emulator() != "i386" || i486.InterpreterName() != "qemu-i386-static" {
		t.Errorf("i486 alias: name %q, emulator %q, interpreter %q", i486.Name(), i486.Emulator(), i486.InterpreterName())
	}
	for _, cpu := range []string{"", "arm64", "amd64", "qemu-arm", "ARM", "cris", "nios2"} {
		if _, ok := Lookup(cpu); ok {
			t.Errorf("Lookup(%q) found a target", cpu)
		}
	}
}

// TestTableShape checks what the kernel demands of every entry, and what
// the table's data actually holds.
func TestTableShape(t *testing.T) {
	for _, tg := range Targets() {
		if len(tg.Magic) != len(tg.Mask) {
			t.Errorf("%s: magic is %d bytes, mask %d", tg.CPU, len(tg.Magic), len(tg.Mask))
			continue
		}
		// Offset is always 0; the kernel reads the first 256 bytes.
		if len(tg.Magic) > 256 {
			t.Errorf("%s: magic is %d bytes, over 256", tg.CPU, len(tg.Magic))
		}
		wantLen := 20
		switch tg.CPU {
		case "mips", "mipsn32", "mipsel", "mipsn32el":
			wantLen = 40 // up to the end of e_flags, to tell o32 from n32, as qemu 11.1's
		}
		if len(tg.Magic) != wantLen {
			t.Errorf("%s: magic is %d bytes, want %d", tg.CPU, len(tg.Magic), wantLen)
		}
		if !bytes.HasPrefix(tg.Magic, []byte("\x7fELF")) || !bytes.HasPrefix(tg.Mask, []byte{0xff, 0xff, 0xff, 0xff, 0xff}) {
			t.Errorf("%s: magic %x / mask %x do not pin the ELF magic and class", tg.CPU, tg.Magic, tg.Mask)
		}
		if _, err := binfmt.ParseLine(tg.Entry(Options{}).RegisterString()); err != nil {
			t.Errorf("%s: the kernel would refuse the entry: %v", tg.CPU, err)
		}
	}
}

// TestMagicOutsideMask records where a magic has bits its mask ignores.
// The kernel compares (file ^ magic) & mask, so those bits never matter,
// but they show up when the entry is read back. In the table's data this
// happens only for the low bit of EI_DATA and EI_VERSION (bytes 5 and 6),
// which the script's i386, i486 and x86_64 masks ignore.
func TestMagicOutsideMask(t *testing.T) {
	want := map[string][]int{"i386": {5, 6}, "i486": {5, 6}, "x86_64": {5, 6}}
	for _, tg := range Targets() {
		var got []int
		for i := range tg.Magic {
			if tg.Magic[i]&^tg.Mask[i] != 0 {
				got = append(got, i)
			}
		}
		if !slices.Equal(got, want[tg.CPU]) {
			t.Errorf("%s: magic bits outside the mask at bytes %v, want %v", tg.CPU, got, want[tg.CPU])
		}
	}
}

// TestNoOverlap checks that no file can match two entries: for each pair
// some byte has a bit both masks check and the magics disagree on. The
// kernel tries the newest entry first, so an overlap would make the
// registration order decide which emulator runs a program.
func TestNoOverlap(t *testing.T) {
	all := Targets()
	for i, a := range all {
		for _, b := range all[i+1:] {
			n := min(len(a.Magic), len(b.Magic))
			apart := false
			for k := 0; k < n && !apart; k++ {
				apart = (a.Magic[k]^b.Magic[k])&a.Mask[k]&b.Mask[k] != 0
			}
			if !apart {
				t.Errorf("%s and %s can match the same file", a.CPU, b.CPU)
			}
		}
	}
}

// elfFacts are the ELF header fields of each target's programs, written
// from the ELF specifications rather than from the table, so that the
// table is checked against them.
var elfFacts = map[string]struct {
	class, data byte // 1/2 = 32/64-bit, 1/2 = little/big-endian
	machine     uint16
	flags       uint32
}{
	"i386": {1, 1, 3, 0}, "i486": {1, 1, 6, 0}, "x86_64": {2, 1, 62, 0}, "alpha": {2, 1, 0x9026, 0},
	"arm": {1, 1, 40, 0x05000200}, "armeb": {1, 2, 40, 0x05000200},
	"aarch64": {2, 1, 183, 0}, "aarch64_be": {2, 2, 183, 0},
	"sparc": {1, 2, 2, 0}, "sparc32plus": {1, 2, 18, 0x100}, "sparc64": {2, 2, 43, 0},
	"ppc": {1, 2, 20, 0}, "ppc64": {2, 2, 21, 1}, "ppc64le": {2, 1, 21, 2}, "m68k": {1, 2, 4, 0},
	// o32 leaves EF_MIPS_ABI2 (0x20) clear, n32 sets it.
	"mips": {1, 2, 8, 0x70001007}, "mipsel": {1, 1, 8, 0x70001007},
	"mipsn32": {1, 2, 8, 0x60000027}, "mipsn32el": {1, 1, 8, 0x60000027},
	"mips64": {2, 2, 8, 0x80000007}, "mips64el": {2, 1, 8, 0x80000007},
	"sh4": {1, 1, 42, 0x9}, "sh4eb": {1, 2, 42, 0x9}, "s390x": {2, 2, 22, 0}, "hppa": {1, 2, 15, 0x210},
	"riscv32": {1, 1, 243, 0x5}, "riscv64": {2, 1, 243, 0x5},
	"xtensa": {1, 1, 94, 0x300}, "xtensaeb": {1, 2, 94, 0x300},
	"microblaze": {1, 2, 0xbaab, 0}, "microblazeel": {1, 1, 0xbaab, 0}, "or1k": {1, 2, 92, 0},
	"hexagon": {1, 1, 164, 0x73}, "loongarch64": {2, 1, 258, 0x43},
}

// elfHeaders builds the 64-byte headers a linker writes for cpu's
// programs: executables and PIEs, for ELFOSABI_NONE and ELFOSABI_GNU, with
// EI_ABIVERSION 0 (and 1 and 4 for mips, whose toolchains set them), and
// real looking entry point and table offsets.
func elfHeaders(t *testing.T, cpu string) map[string][]byte {
	t.Helper()
	f, ok := elfFacts[cpu]
	if !ok {
		t.Fatalf("no ELF facts for %s", cpu)
	}
	var bo binary.AppendByteOrder = binary.LittleEndian
	if f.data == 2 {
		bo = binary.BigEndian
	}
	abiVersions := []byte{0}
	if f.machine == 8 {
		abiVersions = []byte{0, 1, 4}
	}
	out := map[string][]byte{}
	for _, osabi := range []byte{0, 3} {
		for _, abiv := range abiVersions {
			for _, typ := range []uint16{2, 3} {
				h := []byte{0x7f, 'E', 'L', 'F', f.class, f.data, 1, osabi, abiv, 0, 0, 0, 0, 0, 0, 0}
				h = bo.AppendUint16(h, typ)
				h = bo.AppendUint16(h, f.machine)
				h = bo.AppendUint32(h, 1) // e_version
				if f.class == 1 {
					h = bo.AppendUint32(h, 0x00010234) // e_entry
					h = bo.AppendUint32(h, 52)         // e_phoff
					h = bo.AppendUint32(h, 0x0001f3c8) // e_shoff
				} else {
					h = bo.AppendUint64(h, 0x0000000000401234)
					h = bo.AppendUint64(h, 64)
					h = bo.AppendUint64(h, 0x000000000001f3c8)
				}
				h = bo.AppendUint32(h, f.flags)
				h = append(h, make([]byte, 64-len(h))...)
				out[fmt.Sprintf("osabi=%d abiversion=%d e_type=%d", osabi, abiv, typ)] = h
			}
		}
	}
	return out
}

// matching returns the entries that match head, as the kernel decides it.
func matching(entries []binfmt.Entry, head []byte) []string {
	var names []string
	for _, e := range entries {
		if e.Handles("prog", head) {
			names = append(names, e.Name)
		}
	}
	return names
}

func ourEntries() []binfmt.Entry {
	var out []binfmt.Entry
	for _, tg := range Targets() {
		out = append(out, tg.Entry(Options{}))
	}
	return out
}

// TestELFHeaders checks every entry against headers built from the ELF
// facts: each such header is matched by its own target and no other.
func TestELFHeaders(t *testing.T) {
	entries := ourEntries()
	for _, cpu := range CPUs() {
		for variant, h := range elfHeaders(t, cpu) {
			if got := matching(entries, h); !slices.Equal(got, []string{"qemu-" + cpu}) {
				t.Errorf("%s header (%s) %x is matched by %v, want only qemu-%s", cpu, variant, h[:24], got, cpu)
			}
		}
	}
	// Relocatable objects and core files are not programs.
	for _, typ := range []uint16{1, 4} {
		h := elfHeaders(t, "aarch64")["osabi=0 abiversion=0 e_type=2"]
		binary.LittleEndian.PutUint16(h[16:], typ)
		if got := matching(entries, h); len(got) > 0 {
			t.Errorf("aarch64 header with e_type %d is matched by %v", typ, got)
		}
	}
}

// TestHostProgram checks the table against a real program: this test
// binary is matched by the host's own target only.
func TestHostProgram(t *testing.T) {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatalf("opening the running test binary: %v", err)
	}
	defer f.Close()
	head := make([]byte, 256)
	n, err := f.Read(head)
	if err != nil {
		t.Fatalf("reading the running test binary: %v", err)
	}
	want := "qemu-" + HostCPU(runtime.GOARCH)
	if got := matching(ourEntries(), head[:n]); !slices.Equal(got, []string{want}) {
		t.Errorf("this %s test binary is matched by %v, want only %s", runtime.GOARCH, got, want)
	}
}

func TestHostFamily(t *testing.T) {
	for _, tc := range []struct{ machine, cpu, family string }{
		{"amd64", "x86_64", "i386"},
		{"x86_64", "x86_64", "i386"},
		{"386", "i386", "i386"},
		{"i686", "i386", "i386"},
		{"i586", "i386", "i386"},
		{"i86pc", "i386", "i386"},
		{"arm64", "aarch64", "arm"},
		{"aarch64", "aarch64", "arm"},
		{"arm", "arm", "arm"},
		{"armv7l", "arm", "arm"},
		{"armv8l", "arm", "arm"},
		{"armhf", "arm", "arm"},
		{"armel", "arm", "arm"},
		{"armv7b", "armeb", "armeb"},
		{"aarch64_be", "aarch64_be", "armeb"},
		{"ppc64le", "ppc64le", "ppcle"},
		{"ppc64el", "ppc64le", "ppcle"},
		{"ppc64", "ppc64", "ppc"},
		{"powerpc", "ppc", "ppc"},
		{"mips", "mips", "mips"},
		{"mipsle", "mipsel", "mips"},
		{"mips64", "mips64", "mips"},
		{"mips64le", "mips64el", "mips"},
		{"riscv64", "riscv64", "riscv"},
		{"s390x", "s390x", "s390x"},
		{"loong64", "loongarch64", "loongarch"},
		{"loongarch64", "loongarch64", "loongarch"},
		{"sparc64", "sparc64", "sparc"},
		{"parisc", "hppa", "hppa"},
		{"parisc64", "hppa", "hppa"},
		{"m68k", "m68k", "m68k"},
		// Family names stand for themselves.
		{"ppcle", "ppcle", "ppcle"},
		{"riscv", "riscv", "riscv"},
		{"loongarch", "loongarch", "loongarch"},
		// Unknown names are a family of their own.
		{"wasm", "wasm", "wasm"},
		{"armv3l", "armv3l", "armv3l"},
		{"i786", "i786", "i786"},
	} {
		if got := HostCPU(tc.machine); got != tc.cpu {
			t.Errorf("HostCPU(%q) = %q, want %q", tc.machine, got, tc.cpu)
		}
		if got := HostFamily(tc.machine); got != tc.family {
			t.Errorf("HostFamily(%q) = %q, want %q", tc.machine, got, tc.family)
		}
	}
}
