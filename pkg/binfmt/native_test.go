package binfmt_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// hostMagic returns the magic and mask qemu-binfmt-conf.sh would write
// for the host's own machine: the ELF identification, class and byte
// order of /bin/true, the OS ABI open, e_type 2 or 3, and its e_machine.
func hostMagic(t *testing.T) (magic, mask []byte) {
	t.Helper()
	head, err := os.ReadFile("/bin/true")
	if err != nil || len(head) < 20 || !bytes.HasPrefix(head, []byte("\x7fELF")) {
		t.Fatalf("reading /bin/true's ELF header: %v", err)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if head[5] == 2 {
		order = binary.BigEndian
	}
	magic = make([]byte, 20)
	copy(magic, head[:7])
	order.PutUint16(magic[16:], 2)
	copy(magic[18:], head[18:20])
	mask = bytes.Repeat([]byte{0xff}, 20)
	mask[7] = 0
	order.PutUint16(mask[16:], 0xfffe)
	return magic, mask
}

func TestCheckNative(t *testing.T) {
	magic, mask := hostMagic(t)
	dir := t.TempDir()
	// A script interpreter whose own first bytes its entry matches.
	loop := filepath.Join(dir, "loop-interp")
	writeFile(t, loop, "#!LOOPMAGIC\n")
	foreign := append([]byte(nil), magic...)
	foreign[18], foreign[19] = 0xb7, 0 // aarch64
	if magic[18] == 0xb7 {
		foreign[18] = 0xf3 // riscv, on an aarch64 host
	}
	tests := []struct {
		name   string
		entry  binfmt.Entry
		native bool
	}{
		{"host ELF form, qemu's mask", binfmt.Entry{Name: "host", Type: binfmt.TypeMagic, Magic: magic, Mask: mask, Interpreter: "/usr/bin/qemu-host"}, true},
		// The exact static form: e_type 2, OS ABI 0, as Go links.
		{"host ELF form, no mask", binfmt.Entry{Name: "host-exact", Type: binfmt.TypeMagic, Magic: magic[:20], Interpreter: "/usr/bin/qemu-host"}, true},
		{"any ELF", binfmt.Entry{Name: "any-elf", Type: binfmt.TypeMagic, Magic: []byte("\x7fELF"), Interpreter: "/usr/bin/x"}, true},
		{"foreign ELF", binfmt.Entry{Name: "foreign", Type: binfmt.TypeMagic, Magic: foreign, Mask: mask, Interpreter: "/bin/true"}, false},
		{"extension", binfmt.Entry{Name: "handmade", Type: binfmt.TypeExtension, Magic: []byte("xyz"), Interpreter: "/bin/true"}, false},
		{"python bytecode", binfmt.Entry{Name: "python", Type: binfmt.TypeMagic, Magic: []byte("\xcb\x0d\x0d\x0a"), Interpreter: "/usr/bin/python3"}, false},
		{"its own interpreter", binfmt.Entry{Name: "loop", Type: binfmt.TypeMagic, Magic: []byte("#!LOOP"), Interpreter: loop}, true},
		{"its own interpreter by extension", binfmt.Entry{Name: "loop-ext", Type: binfmt.TypeExtension, Magic: []byte("sh"), Interpreter: filepath.Join(dir, "x.sh")}, false},
	}
	writeFile(t, filepath.Join(dir, "x.sh"), "echo\n")
	tests[len(tests)-1].native = true
	samples := binfmt.NativeSamples()
	for _, tt := range tests {
		err := binfmt.CheckNative(tt.entry, samples, "/")
		if got := errors.Is(err, binfmt.ErrNative); got != tt.native {
			t.Errorf("%s: CheckNative = %v, want native %v", tt.name, err, tt.native)
		}
		if err != nil && !strings.Contains(err.Error(), "would run the host's own programs") {
			t.Errorf("%s: message %q does not say the entry would run the host's own programs", tt.name, err)
		}
	}
}

// TestNativeSamples checks that the samples are the real files and the
// host's forms: the running program itself, /bin/sh, and static and PIE
// headers of the running program's machine.
func TestNativeSamples(t *testing.T) {
	s := binfmt.NativeSamples()
	var whats []string
	for _, x := range s {
		whats = append(whats, x.What)
		if len(x.Head) != 256 {
			t.Errorf("%s: head of %d bytes, want 256", x.What, len(x.Head))
		}
	}
	self, _ := os.ReadFile("/proc/self/exe")
	if len(s) < 6 || !bytes.Equal(s[0].Head[:64], self[:64]) {
		t.Fatalf("samples %q: want /proc/self/exe first, then /bin/sh and four synthesised forms", whats)
	}
	joined := strings.Join(whats, "\n")
	host, ok := binfmt.DescribeELF(0, self[:20], nil)
	if !ok {
		t.Fatalf("DescribeELF of the running program's header %x failed", self[:20])
	}
	for _, want := range []string{"/bin/sh", "a static " + host + " executable of the host", "a PIE " + host + " executable of the host"} {
		if !strings.Contains(joined, want) {
			t.Errorf("samples lack %q: %q", want, whats)
		}
	}
	types := map[uint16]bool{}
	for _, x := range s[2:] {
		types[binary.LittleEndian.Uint16(x.Head[16:])|binary.BigEndian.Uint16(x.Head[16:])] = true
	}
	if len(types) < 2 {
		t.Errorf("synthesised forms cover e_type %v, want both ET_EXEC and ET_DYN", types)
	}
}

func TestDescribeELF(t *testing.T) {
	ff := bytes.Repeat([]byte{0xff}, 20)
	elf := func(class, data byte, machine uint16) []byte {
		m := make([]byte, 20)
		copy(m, "\x7fELF")
		m[4], m[5], m[6] = class, data, 1
		if data == 2 {
			binary.BigEndian.PutUint16(m[18:], machine)
		} else {
			binary.LittleEndian.PutUint16(m[18:], machine)
		}
		return m
	}
	openClass := append([]byte(nil), ff...)
	openClass[4] = 0
	openMachine := append([]byte(nil), ff...)
	openMachine[18] = 0
	tests := []struct {
		offset      int
		magic, mask []byte
		want        string
	}{
		{0, elf(2, 1, 183), ff, "ELF 64-bit LSB aarch64"},
		{0, elf(1, 1, 40), nil, "ELF 32-bit LSB arm"},
		{0, elf(1, 2, 8), ff, "ELF 32-bit MSB mips"},
		{0, elf(2, 2, 22), ff, "ELF 64-bit MSB s390x"},
		{0, elf(2, 1, 0x9026), ff, "ELF 64-bit LSB alpha"},
		{0, elf(2, 1, 999), ff, "ELF 64-bit LSB machine 999"},
		{0, elf(2, 1, 62), openClass, "ELF LSB x86_64"},
		{0, elf(2, 1, 62), openMachine, ""},
		{0, []byte("\x7fELF"), nil, ""},
		{1, elf(2, 1, 62), ff, ""},
		{0, []byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8\x00\x00\x00"), nil, ""},
	}
	for _, tt := range tests {
		got, ok := binfmt.DescribeELF(tt.offset, tt.magic, tt.mask)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("DescribeELF(%d, %x, %x) = %q, %v; want %q", tt.offset, tt.magic, tt.mask, got, ok, tt.want)
		}
	}
}

// TestKernelNativeEntryLoops shows on the real kernel what CheckNative
// prevents, and that Apply refuses such an entry unless AllowNative: an
// entry with the host's own ELF magic makes every exec fail with ELOOP.
func TestKernelNativeEntryLoops(t *testing.T) {
	ns := sandbox.Enter(t, sandbox.AtProc())
	if ns == nil {
		return
	}
	magic, mask := hostMagic(t)
	e := binfmt.Entry{Name: "host-elf", Type: binfmt.TypeMagic, Magic: magic, Mask: mask, Interpreter: "/bin/true"}
	line := binfmt.Line{Entry: e, File: "host.conf", Num: 1, Raw: e.RegisterString()}
	fs := openFS(t, ns.BinfmtDir)
	good := binfmt.Line{Entry: binfmt.Entry{Name: "good", Type: binfmt.TypeExtension, Magic: []byte("good"), Interpreter: "/bin/sh"}, File: "good.conf", Num: 1}
	good.Raw = good.RegisterString()
	rs := fs.Apply([]binfmt.Line{line, good}, "/")
	if !errors.Is(rs[0].Err, binfmt.ErrNative) || rs[0].Action != binfmt.Failed {
		t.Fatalf("Apply of the host's ELF form: %v %v, want ErrNative", rs[0].Action, rs[0].Err)
	}
	if rs[1].Err != nil || rs[1].Action != binfmt.Registered {
		t.Fatalf("Apply of a harmless entry beside it: %v %v", rs[1].Action, rs[1].Err)
	}
	if _, err := os.Stat(filepath.Join(ns.BinfmtDir, "host-elf")); !os.IsNotExist(err) {
		t.Fatalf("the refused entry is registered: %v", err)
	}
	if err := exec.Command("/bin/true").Run(); err != nil {
		t.Fatalf("exec after the refusal: %v", err)
	}

	// What --force does, and why it is refused otherwise.
	fs.AllowNative = true
	rs = fs.Apply([]binfmt.Line{line}, "/")
	if rs[0].Err != nil {
		t.Fatalf("Apply with AllowNative: %v", rs[0].Err)
	}
	err := exec.Command("/bin/true").Run()
	// Removed by a write, not by a program: no program can run now.
	if uerr := fs.Unregister("host-elf"); uerr != nil {
		t.Fatalf("unregistering the native entry: %v", uerr)
	}
	if !errors.Is(err, unix.ELOOP) {
		t.Fatalf("exec with the host's ELF form registered: %v, want ELOOP (too many levels of symbolic links)", err)
	}
	if err := exec.Command("/bin/true").Run(); err != nil {
		t.Fatalf("exec after removing it: %v", err)
	}
}

// FuzzDescribeELF checks that DescribeELF never panics and describes
// only magics that start with the ELF identification.
func FuzzDescribeELF(f *testing.F) {
	f.Add(0, []byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"), bytes.Repeat([]byte{0xff}, 20))
	f.Add(0, []byte("\x7fELF"), []byte{})
	f.Add(3, []byte("\x7fELF\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28"), []byte{})
	f.Fuzz(func(t *testing.T, offset int, magic, mask []byte) {
		if len(mask) == 0 {
			mask = nil
		} else if len(mask) != len(magic) {
			return // Entry guarantees equal lengths
		}
		d, ok := binfmt.DescribeELF(offset, magic, mask)
		if ok != (d != "") || ok && (!bytes.HasPrefix(magic, []byte("\x7fELF")) || !strings.HasPrefix(d, "ELF ")) {
			t.Fatalf("DescribeELF(%d, %x, %x) = %q, %v", offset, magic, mask, d, ok)
		}
	})
}

// TestBuiltForMatchesTheRunningProgram checks the fallback used where
// neither /proc/self/exe nor /bin/sh can be read: its header has the
// running program's class, byte order and machine.
func TestBuiltForMatchesTheRunningProgram(t *testing.T) {
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	h := binfmt.BuiltFor()
	if h == nil {
		t.Fatalf("no ELF machine known for this GOARCH")
	}
	if !bytes.Equal(h[:7], self[:7]) || !bytes.Equal(h[18:20], self[18:20]) {
		t.Errorf("BuiltFor() = %x, the running program starts %x", h[:20], self[:20])
	}
}
