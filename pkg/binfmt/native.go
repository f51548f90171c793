package binfmt

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrNative is wrapped by the error for an entry that would match the
// host's own programs, or its own interpreter. Registered, such an entry
// makes the kernel hand every matching exec to the interpreter, which is
// itself such a program: each exec then fails with ELOOP ("Too many
// levels of symbolic links"), binfmtctl's own included, so the entry
// cannot even be removed with the tool that registered it.
var ErrNative = errors.New("the entry would run the host's own programs")

// NativeSample is the beginning of one of the host's own executables, as
// the kernel sees it when it looks for a binfmt_misc handler.
type NativeSample struct {
	What string // "binfmtctl's own file /proc/self/exe", "a static x86-64 ELF executable"
	Path string // the file name the kernel would match an extension against
	Head []byte // the first 256 bytes, zero-padded, as prepare_binprm reads them
}

// NativeSamples returns the host's own executables to test entries
// against: the running program's file (/proc/self/exe: binfmtctl
// itself), /bin/sh, and the header of each ELF form the host runs
// natively, static and PIE (ET_EXEC and ET_DYN, with the System V and
// the GNU OS ABI), synthesised from the running program's own header so
// that they have the host's class, byte order and machine.
func NativeSamples() []NativeSample {
	var out []NativeSample
	self, err := headOf("/proc/self/exe")
	if err == nil {
		out = append(out, NativeSample{What: "binfmtctl's own file /proc/self/exe", Path: "/proc/self/exe", Head: self})
	}
	sh, err := headOf("/bin/sh")
	if err == nil {
		out = append(out, NativeSample{What: "/bin/sh", Path: "/bin/sh", Head: sh})
	}
	// The forms are made from the running program's header; inside a
	// chroot without /proc, from /bin/sh's; failing both, from what the
	// program was built for.
	template := self
	if !isELF(template) {
		template = sh
	}
	if !isELF(template) {
		template = builtFor()
	}
	if template == nil {
		return out
	}
	self = template
	desc := elfName(self, nil)
	for _, form := range []struct {
		what  string
		etype uint16
		abi   byte
	}{
		{"static", 2, 0}, {"static (GNU ABI)", 2, 3}, {"PIE", 3, 0}, {"PIE (GNU ABI)", 3, 3},
	} {
		h := append([]byte(nil), self...)
		h[7] = form.abi
		order(h).PutUint16(h[16:], form.etype)
		out = append(out, NativeSample{What: "a " + form.what + " " + desc + " executable of the host", Path: "/usr/bin/program", Head: h})
	}
	return out
}

// CheckNative returns an error wrapping ErrNative when e matches one of
// samples (NativeSamples), or its own interpreter file under root: an
// interpreter that its own entry matches would be handed to itself at
// every exec.
func CheckNative(e Entry, samples []NativeSample, root string) error {
	for _, s := range samples {
		if e.Handles(s.Path, s.Head) {
			return errorf("entry %q matches %s: %w through %s, and every such exec would loop", e.Name, s.What, ErrNative, e.Interpreter)
		}
	}
	p := e.Interpreter
	if root != "" && root != "/" {
		p = joinPath(root, p)
	}
	if head, err := headOf(p); err == nil && e.Handles(e.Interpreter, head) {
		return errorf("entry %q matches its own interpreter %s: %w (the interpreter would be handed to itself at every exec)", e.Name, e.Interpreter, ErrNative)
	}
	return nil
}

// headOf reads the first 256 bytes of a regular file, zero-padded.
// The file is opened non-blocking and checked to be a regular file
// before it is read: a FIFO in its place must not hang the caller.
func headOf(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, errorf("reading the head of %q: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, errorf("reading the head of %q: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errorf("reading the head of %q: not a regular file", path)
	}
	buf := make([]byte, bufSize)
	for n := 0; n < len(buf); {
		m, err := unix.Read(fd, buf[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, errorf("reading the head of %q: %w", path, err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	return buf, nil
}

// builtFor returns an ELF header for the machine this program was built
// for, or nil for one not in the table. A switch, not a map: a map
// literal would be built at every start-up.
func builtFor() []byte {
	var class, data byte = 2, 1
	var machine uint16
	switch runtime.GOARCH {
	case "amd64":
		machine = 62
	case "386":
		class, machine = 1, 3
	case "arm64":
		machine = 183
	case "arm":
		class, machine = 1, 40
	case "riscv64":
		machine = 243
	case "ppc64le":
		machine = 21
	case "ppc64":
		data, machine = 2, 21
	case "s390x":
		data, machine = 2, 22
	case "loong64":
		machine = 258
	case "mips64le":
		machine = 8
	case "mips64":
		data, machine = 2, 8
	case "mipsle":
		class, machine = 1, 8
	case "mips":
		class, data, machine = 1, 2, 8
	default:
		return nil
	}
	h := make([]byte, bufSize)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = class, data, 1
	order(h).PutUint16(h[18:], machine)
	return h
}

func isELF(h []byte) bool {
	return len(h) >= 20 && h[0] == 0x7f && h[1] == 'E' && h[2] == 'L' && h[3] == 'F' && (h[5] == 1 || h[5] == 2)
}

func order(h []byte) binary.ByteOrder {
	if h[5] == 2 {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// DescribeELF describes an ELF magic as people read it: "ELF 64-bit LSB
// aarch64". It reports false unless magic, at offset 0, holds an ELF
// header's class, byte order and machine, and mask (nil: all bits)
// fixes them. A field the mask leaves open is left out.
func DescribeELF(offset int, magic, mask []byte) (string, bool) {
	if offset != 0 || !isELF(magic) {
		return "", false
	}
	fixed := func(i int) bool { return mask == nil || mask[i] == 0xff }
	for i := 0; i < 4; i++ {
		if !fixed(i) {
			return "", false
		}
	}
	if !fixed(5) || !fixed(18) || !fixed(19) {
		return "", false
	}
	return elfName(magic, mask), true
}

// elfName names the class, byte order and machine of an ELF header.
func elfName(h, mask []byte) string {
	s := "ELF"
	if mask == nil || mask[4] == 0xff {
		switch h[4] {
		case 1:
			s += " 32-bit"
		case 2:
			s += " 64-bit"
		}
	}
	if h[5] == 2 {
		s += " MSB"
	} else {
		s += " LSB"
	}
	m := order(h).Uint16(h[18:])
	if name := machineName(m); name != "" {
		return s + " " + name
	}
	return s + " machine " + strconv.Itoa(int(m))
}

// machineName names the e_machine values of the targets qemu emulates,
// as uname -m and qemu's binary names spell them. A switch, not a map,
// for the same reason as in builtFor.
func machineName(m uint16) string {
	switch m {
	case 2:
		return "sparc"
	case 3:
		return "i386"
	case 4:
		return "m68k"
	case 8:
		return "mips"
	case 15:
		return "hppa"
	case 18:
		return "sparc32plus"
	case 20:
		return "ppc"
	case 21:
		return "ppc64"
	case 22:
		return "s390x"
	case 40:
		return "arm"
	case 42:
		return "sh4"
	case 43:
		return "sparc64"
	case 62:
		return "x86_64"
	case 76:
		return "cris"
	case 92:
		return "or1k"
	case 94:
		return "xtensa"
	case 164:
		return "hexagon"
	case 183:
		return "aarch64"
	case 189, 0xbaab:
		return "microblaze"
	case 243:
		return "riscv"
	case 258:
		return "loongarch"
	case 0x9026:
		return "alpha"
	}
	return ""
}
