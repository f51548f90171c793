package qemu

import (
	"encoding/binary"
	"slices"
	"strings"
)

// Target is one qemu linux-user target as binfmt_misc sees it: the ELF
// header bytes that identify its programs, and the family of hosts that
// run those programs natively.
type Target struct {
	// CPU is qemu's name for the target ("aarch64", "mipsn32el", "i486").
	CPU string
	// Family groups targets a host of that family runs natively, with the
	// names qemu-binfmt-conf.sh uses: an x86_64 host is in family "i386"
	// and runs i386, i486 and x86_64 programs itself.
	Family string
	// Magic and Mask are matched at offset 0 the way the kernel does it:
	// a file matches when (file[i] ^ Magic[i]) & Mask[i] is zero for
	// every i. They have the same length.
	Magic []byte
	Mask  []byte
}

// Name is the binfmt_misc entry name, "qemu-<cpu>".
func (t Target) Name() string { return "qemu-" + t.CPU }

// Emulator is the qemu target whose program runs t's binaries: t.CPU
// itself, except for i486, which qemu-i386 runs.
func (t Target) Emulator() string {
	if t.CPU == "i486" {
		return "i386"
	}
	return t.CPU
}

// InterpreterName is the file name of t's static interpreter,
// "qemu-<emulator>-static".
func (t Target) InterpreterName() string { return "qemu-" + t.Emulator() + "-static" }

// EI_CLASS and EI_DATA values.
const (
	elf32 = 1
	elf64 = 2
	lsb   = 1 // little-endian
	msb   = 2 // big-endian
)

// e_machine values, from the ELF gABI and binutils' include/elf/common.h.
const (
	emSPARC         = 2
	em386           = 3
	em68K           = 4
	em486           = 6 // obsolete, but qemu-binfmt-conf.sh still matches it
	emMIPS          = 8
	emPARISC        = 15
	emSPARC32PLUS   = 18
	emPPC           = 20
	emPPC64         = 21
	emS390          = 22
	emARM           = 40
	emSH            = 42
	emSPARCV9       = 43
	emX86_64        = 62
	emOpenRISC      = 92
	emXtensa        = 94
	emHexagon       = 164
	emAArch64       = 183
	emRISCV         = 243
	emLoongArch     = 258
	emAlpha         = 0x9026 // the unofficial number Linux/alpha uses
	emMicroBlazeOld = 0xbaab // the pre-standard number qemu matches
)

// efMIPSABI2 is the e_flags bit that marks the n32 ABI; o32 has it clear.
const efMIPSABI2 = 0x20

// Masks for e_ident (the first 16 bytes). The common one checks
// everything but EI_OSABI, so that both ELFOSABI_NONE and ELFOSABI_GNU
// programs match.
var (
	identCommon = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// identOSABI3 takes EI_OSABI 0 to 3 only: a mask cannot list
	// ELFOSABI_NONE (0) and ELFOSABI_GNU (3), so Debian lets through 1
	// (HP-UX) and 2 (NetBSD) as well.
	identOSABI3 = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// identX86 also ignores the low bit of EI_DATA and EI_VERSION, as the
	// script's i386, i486 and x86_64 entries do.
	identX86 = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xfe, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// identX86OSABI3 is identX86 taking EI_OSABI 0 to 3 only, as qemu
	// 11.1's i386 and x86_64 files do.
	identX86OSABI3 = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xfe, 0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// identMIPS ignores EI_OSABI and EI_ABIVERSION, as qemu 11.1 does.
	// mips toolchains set EI_ABIVERSION to 1 and higher (a mips64el
	// program with ABI version 4 runs under qemu), so Debian 12's mask,
	// which took only 0 and 1, left such programs to fail with ENOEXEC.
	identMIPS = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// identLoongArch takes EI_OSABI 0 to 3 and any EI_ABIVERSION.
	identLoongArch = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

func order(data byte) binary.AppendByteOrder {
	if data == msb {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// head returns the first 20 bytes of an ELF executable's header: e_ident
// (class, byte order, EV_CURRENT, EI_OSABI 0, EI_ABIVERSION 0), then
// e_type ET_EXEC and e_machine in the file's byte order.
func head(class, data byte, machine uint16) []byte {
	b := []byte{0x7f, 'E', 'L', 'F', class, data, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	b = order(data).AppendUint16(b, 2) // ET_EXEC
	return order(data).AppendUint16(b, machine)
}

// headMask returns the mask for head: ident for e_ident, e_type with its
// low bit ignored so that ET_EXEC (2) and ET_DYN (3, PIE) both match, and
// machine for e_machine.
func headMask(ident []byte, data byte, machine uint16) []byte {
	b := slices.Clone(ident)
	b = order(data).AppendUint16(b, 0xfffe)
	return order(data).AppendUint16(b, machine)
}

// mips32Len is how much of the header the mips o32 and n32 entries
// cover: both ABIs are 32-bit EM_MIPS, so the entries read on to the end
// of e_flags (bytes 36 to 39), where n32 sets EF_MIPS_ABI2, a bit of
// e_flags' lowest byte: byte 36 in little-endian files, 39 in big-endian
// ones. qemu 11.1's four entries are all 40 bytes long.
const mips32Len = 40

// mips32 returns the magic for mips o32 (flags 0) or n32 (flags
// efMIPSABI2): head, e_version EV_CURRENT (1), then zeros up to the end
// of e_flags, whose lowest byte holds flags. e_entry, e_phoff and e_shoff
// are left to the mask to ignore.
func mips32(data byte, flags byte) []byte {
	b := head(elf32, data, emMIPS)
	b = order(data).AppendUint32(b, 1)
	b = append(b, make([]byte, mips32Len-len(b))...)
	b[flagsLow(data)] = flags
	return b
}

// mips32Mask is the mask for mips32: after e_machine, e_version and
// EF_MIPS_ABI2 count, as in qemu 11.1's files.
func mips32Mask(data byte) []byte {
	b := headMask(identMIPS, data, 0xffff)
	b = order(data).AppendUint32(b, 0xffffffff)
	b = append(b, make([]byte, mips32Len-len(b))...)
	b[flagsLow(data)] = efMIPSABI2
	return b
}

// flagsLow is the offset of the lowest byte of a 32-bit ELF file's
// e_flags (bytes 36 to 39) in the file's byte order.
func flagsLow(data byte) int {
	if data == lsb {
		return 36
	}
	return 39
}

// table lists the targets in the order of qemu-binfmt-conf.sh's
// qemu_target_list, with the family it gives each. The list and the
// families come from scripts/qemu-binfmt-conf.sh in qemu's master branch
// as of 2025 (qemu 10.x), which has the loongarch64 and hexagon entries.
//
// The magic and mask of every target follow current qemu: they equal,
// byte for byte, the binfmt.d files of qemu 11.1 as Debian sid's
// qemu-user 1:11.1.3 ships them in /usr/share/qemu/binfmt.d (kept in
// testdata/qemu-11.1 and checked by TestQemu11MagicMask). Those come
// from Debian's own table, debian/binfmt-install, not from
// qemu-binfmt-conf.sh: it checks EI_OSABI <= 3 for i386, x86_64, ppc,
// ppc64, ppc64le, s390x, sh4, sh4eb and the sparcs, checks EI_DATA and
// EI_VERSION for alpha and EI_VERSION for m68k, ignores EI_ABIVERSION for
// the mips, and checks e_version for mips o32/n32. qemu 11.1 has no i486
// file; i486 keeps the script's magic and mask. qemu dropped the cris
// target (Debian's package stopped building it), so the table has no
// cris entry and the package ships none.
//
// How this differs from Debian 12's files (qemu 7.2), which the table
// followed before, is listed in debian_test.go's debian12Differences.
//
// The microblaze entry has e_type in big-endian byte order (00 02) as
// microblaze is big-endian; the script's has it in little-endian order
// (02 00), which no real microblaze program matches.
var table = []Target{
	{CPU: "i386", Family: "i386", Magic: head(elf32, lsb, em386), Mask: headMask(identX86OSABI3, lsb, 0xffff)},
	{CPU: "i486", Family: "i386", Magic: head(elf32, lsb, em486), Mask: headMask(identX86, lsb, 0xffff)},
	{CPU: "alpha", Family: "alpha", Magic: head(elf64, lsb, emAlpha), Mask: headMask(identCommon, lsb, 0xffff)},
	{CPU: "arm", Family: "arm", Magic: head(elf32, lsb, emARM), Mask: headMask(identCommon, lsb, 0xffff)},
	{CPU: "armeb", Family: "armeb", Magic: head(elf32, msb, emARM), Mask: headMask(identCommon, msb, 0xffff)},
	{CPU: "sparc", Family: "sparc", Magic: head(elf32, msb, emSPARC), Mask: headMask(identOSABI3, msb, 0xffff)},
	{CPU: "sparc32plus", Family: "sparc", Magic: head(elf32, msb, emSPARC32PLUS), Mask: headMask(identOSABI3, msb, 0xffff)},
	{CPU: "sparc64", Family: "sparc", Magic: head(elf64, msb, emSPARCV9), Mask: headMask(identOSABI3, msb, 0xffff)},
	{CPU: "ppc", Family: "ppc", Magic: head(elf32, msb, emPPC), Mask: headMask(identOSABI3, msb, 0xffff)},
	{CPU: "ppc64", Family: "ppc", Magic: head(elf64, msb, emPPC64), Mask: headMask(identOSABI3, msb, 0xffff)},
	// The high byte of e_machine is ignored for ppc64le only, by Debian
	// and the script alike.
	{CPU: "ppc64le", Family: "ppcle", Magic: head(elf64, lsb, emPPC64), Mask: headMask(identOSABI3, lsb, 0x00ff)},
	{CPU: "m68k", Family: "m68k", Magic: head(elf32, msb, em68K), Mask: headMask(identCommon, msb, 0xffff)},
	{CPU: "mips", Family: "mips", Magic: mips32(msb, 0), Mask: mips32Mask(msb)},
	{CPU: "mipsel", Family: "mips", Magic: mips32(lsb, 0), Mask: mips32Mask(lsb)},
	{CPU: "mipsn32", Family: "mips", Magic: mips32(msb, efMIPSABI2), Mask: mips32Mask(msb)},
	{CPU: "mipsn32el", Family: "mips", Magic: mips32(lsb, efMIPSABI2), Mask: mips32Mask(lsb)},
	{CPU: "mips64", Family: "mips", Magic: head(elf64, msb, emMIPS), Mask: headMask(identMIPS, msb, 0xffff)},
	{CPU: "mips64el", Family: "mips", Magic: head(elf64, lsb, emMIPS), Mask: headMask(identMIPS, lsb, 0xffff)},
	{CPU: "sh4", Family: "sh4", Magic: head(elf32, lsb, emSH), Mask: headMask(identOSABI3, lsb, 0xffff)},
	{CPU: "sh4eb", Family: "sh4", Magic: head(elf32, msb, emSH), Mask: headMask(identOSABI3, msb, 0xffff)},
	{CPU: "s390x", Family: "s390x", Magic: head(elf64, msb, emS390), Mask: headMask(identOSABI3, msb, 0xffff)},
	{CPU: "aarch64", Family: "arm", Magic: head(elf64, lsb, emAArch64), Mask: headMask(identCommon, lsb, 0xffff)},
	{CPU: "aarch64_be", Family: "armeb", Magic: head(elf64, msb, emAArch64), Mask: headMask(identCommon, msb, 0xffff)},
	{CPU: "hppa", Family: "hppa", Magic: head(elf32, msb, emPARISC), Mask: headMask(identCommon, msb, 0xffff)},
	{CPU: "riscv32", Family: "riscv", Magic: head(elf32, lsb, emRISCV), Mask: headMask(identCommon, lsb, 0xffff)},
	{CPU: "riscv64", Family: "riscv", Magic: head(elf64, lsb, emRISCV), Mask: headMask(identCommon, lsb, 0xffff)},
	{CPU: "xtensa", Family: "xtensa", Magic: head(elf32, lsb, emXtensa), Mask: headMask(identCommon, lsb, 0xffff)},
	{CPU: "xtensaeb", Family: "xtensaeb", Magic: head(elf32, msb, emXtensa), Mask: headMask(identCommon, msb, 0xffff)},
	{CPU: "microblaze", Family: "microblaze", Magic: head(elf32, msb, emMicroBlazeOld), Mask: headMask(identCommon, msb, 0xffff)},
	{CPU: "microblazeel", Family: "microblazeel", Magic: head(elf32, lsb, emMicroBlazeOld), Mask: headMask(identCommon, lsb, 0xffff)},
	{CPU: "or1k", Family: "or1k", Magic: head(elf32, msb, emOpenRISC), Mask: headMask(identCommon, msb, 0xffff)},
	{CPU: "x86_64", Family: "i386", Magic: head(elf64, lsb, emX86_64), Mask: headMask(identX86OSABI3, lsb, 0xffff)},
	{CPU: "hexagon", Family: "hexagon", Magic: head(elf32, lsb, emHexagon), Mask: headMask(identCommon, lsb, 0xffff)},
	{CPU: "loongarch64", Family: "loongarch", Magic: head(elf64, lsb, emLoongArch), Mask: headMask(identLoongArch, lsb, 0xffff)},
}

// Targets returns every target, in the order of qemu-binfmt-conf.sh's
// target list. The slices are copies; changing them changes nothing here.
func Targets() []Target {
	out := make([]Target, len(table))
	for i, t := range table {
		out[i] = t.clone()
	}
	return out
}

// Lookup returns the target qemu calls cpu ("aarch64", "i486").
func Lookup(cpu string) (Target, bool) {
	for _, t := range table {
		if t.CPU == cpu {
			return t.clone(), true
		}
	}
	return Target{}, false
}

// CPUs returns the names of all targets, in table order.
func CPUs() []string {
	out := make([]string, len(table))
	for i, t := range table {
		out[i] = t.CPU
	}
	return out
}

func (t Target) clone() Target {
	t.Magic = slices.Clone(t.Magic)
	t.Mask = slices.Clone(t.Mask)
	return t
}

// HostCPU maps a host architecture name, either Go's GOARCH ("amd64",
// "arm64", "loong64", "mipsle") or the kernel's uname -m ("x86_64",
// "armv7l", "ppc64le", "i686"), to qemu's name for it. A name it does not
// know comes back unchanged.
func HostCPU(machine string) string {
	switch {
	case machine == "386" || machine == "i86pc" ||
		len(machine) == 4 && machine[0] == 'i' && machine[1] >= '3' && machine[1] <= '6' && machine[2:] == "86":
		return "i386"
	case machine == "amd64":
		return "x86_64"
	case machine == "arm64":
		return "aarch64"
	case machine == "armel" || machine == "armhf" || isARMv(machine, 'l'):
		return "arm"
	case isARMv(machine, 'b'):
		return "armeb"
	case machine == "powerpc":
		return "ppc"
	case machine == "ppc64el":
		return "ppc64le"
	case machine == "mipsle":
		return "mipsel"
	case machine == "mips64le":
		return "mips64el"
	case machine == "loong64":
		return "loongarch64"
	case machine == "parisc" || machine == "parisc64":
		// The kernel calls hppa "parisc"; qemu-binfmt-conf.sh does not map
		// it, which would register qemu-hppa on an hppa host.
		return "hppa"
	}
	return machine
}

// isARMv reports whether machine is a 32-bit ARM uname -m such as
// "armv7l" (little-endian, end 'l') or "armv5tejb" (big-endian, end 'b').
func isARMv(machine string, end byte) bool {
	return strings.HasPrefix(machine, "armv") && len(machine) > 5 &&
		machine[4] >= '4' && machine[4] <= '9' && machine[len(machine)-1] == end
}

// HostFamily returns the family of a host, named by GOARCH or uname -m
// (see HostCPU): "i386" for amd64 and x86_64, "arm" for arm64 and armv7l,
// "ppcle" for ppc64le. Targets of that family are the ones the host runs
// natively. A family name is returned as is, and so is an unknown name,
// which is then a family of its own that excludes no target.
func HostFamily(machine string) string {
	cpu := HostCPU(machine)
	if t, ok := Lookup(cpu); ok {
		return t.Family
	}
	return cpu
}
