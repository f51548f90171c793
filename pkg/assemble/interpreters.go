package assemble

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/qemu"
)

// ErrNoInterpreter is returned, wrapped with the cpus and the directory,
// when a requested cpu has no qemu-<cpu>-static in the qemu directory.
var ErrNoInterpreter = errors.New("no interpreter")

// arch is a package architecture: rpm's name for it and how Go builds the
// helper for it.
type arch struct {
	rpm    string
	goarch string
	goarm  string
}

// archOf maps an interpreter's ELF header to the package architecture:
// the interpreters are the package's only foreign-arch content, so they
// decide it, and the helper is cross-built to match.
func archOf(path string) (arch, error) {
	f, err := elf.Open(path)
	if err != nil {
		return arch{}, fmt.Errorf("reading the architecture of %q: %w", path, err)
	}
	defer f.Close()
	le := f.ByteOrder == binary.LittleEndian
	is64 := f.Class == elf.ELFCLASS64
	switch {
	case f.Machine == elf.EM_X86_64:
		return arch{"x86_64", "amd64", ""}, nil
	case f.Machine == elf.EM_386:
		return arch{"i686", "386", ""}, nil
	case f.Machine == elf.EM_AARCH64 && le:
		return arch{"aarch64", "arm64", ""}, nil
	case f.Machine == elf.EM_ARM && le:
		return arch{"armv7hl", "arm", "7"}, nil
	case f.Machine == elf.EM_PPC64 && le:
		return arch{"ppc64le", "ppc64le", ""}, nil
	case f.Machine == elf.EM_PPC64:
		return arch{"ppc64", "ppc64", ""}, nil
	case f.Machine == elf.EM_S390 && is64:
		return arch{"s390x", "s390x", ""}, nil
	case f.Machine == elf.EM_RISCV && is64:
		return arch{"riscv64", "riscv64", ""}, nil
	case f.Machine == elf.EM_LOONGARCH && is64:
		return arch{"loongarch64", "loong64", ""}, nil
	case f.Machine == elf.EM_MIPS && is64 && le:
		return arch{"mips64el", "mips64le", ""}, nil
	}
	return arch{}, fmt.Errorf("reading the architecture of %q: no rpm architecture for %v %v %v", path, f.Class, f.ByteOrder, f.Machine)
}

// selection is what goes into the package: the targets to register and
// the interpreters they run on, with the package architecture.
type selection struct {
	arch         arch
	targets      []qemu.Target
	interpreters map[string]string // file name in /usr/bin -> source path
	explicit     bool              // the cpus were named: host-family ones among them are wanted
}

// selectTargets finds the interpreters in dir. With no cpus it takes every
// target whose interpreter is there, except those in the host's family
// (the host runs them natively); with cpus, exactly those, and it fails
// naming any that has no interpreter or that is the host's own cpu.
func selectTargets(dir string, cpus []string) (*selection, error) {
	present := func(t qemu.Target) (string, bool) {
		p := filepath.Join(dir, t.InterpreterName())
		st, err := os.Stat(p)
		return p, err == nil && st.Mode().IsRegular()
	}
	var chosen []qemu.Target
	if len(cpus) == 0 {
		for _, t := range qemu.Targets() {
			if _, ok := present(t); ok {
				chosen = append(chosen, t)
			}
		}
		if len(chosen) == 0 {
			return nil, fmt.Errorf("finding interpreters: %w: no qemu-<cpu>-static for any known cpu in %s (install qemu-user-static, or pass --qemu-dir)", ErrNoInterpreter, dir)
		}
	} else {
		// Unknown cpus and missing interpreters are all named at once;
		// the selection comes in table order, as Generate's files do.
		want := map[string]bool{}
		var unknown []string
		for _, cpu := range cpus {
			if _, ok := qemu.Lookup(cpu); !ok {
				unknown = append(unknown, cpu)
			}
			want[cpu] = true
		}
		if len(unknown) > 0 {
			return nil, fmt.Errorf("selecting cpus: %w %s (known: %s)", qemu.ErrUnknownCPU, strings.Join(unknown, ", "), strings.Join(qemu.CPUs(), " "))
		}
		var missing, names []string
		for _, t := range qemu.Targets() {
			if !want[t.CPU] {
				continue
			}
			if _, ok := present(t); !ok {
				missing = append(missing, t.CPU)
				names = append(names, t.InterpreterName())
				continue
			}
			chosen = append(chosen, t)
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("selecting cpus: %w for %s in %s (looked for %s)", ErrNoInterpreter, strings.Join(missing, ", "), dir, strings.Join(names, ", "))
		}
	}

	// The interpreters decide the architecture, and must agree on it.
	sel := &selection{interpreters: map[string]string{}, explicit: len(cpus) > 0}
	var first string
	for _, t := range chosen {
		p, _ := present(t)
		a, err := archOf(p)
		if err != nil {
			return nil, err
		}
		if first == "" {
			sel.arch, first = a, p
		} else if a != sel.arch {
			return nil, fmt.Errorf("finding interpreters: %q is for %s but %q is for %s; a package has one architecture", first, sel.arch.rpm, p, a.rpm)
		}
	}

	hostCPU, family := qemu.HostCPU(sel.arch.rpm), qemu.HostFamily(sel.arch.rpm)
	for _, t := range chosen {
		switch {
		case t.Emulator() == hostCPU:
			if len(cpus) > 0 {
				return nil, fmt.Errorf("selecting cpus: %s is the package architecture %s itself; an entry for it would run every native program through qemu", t.CPU, sel.arch.rpm)
			}
			continue
		case t.Family == family && len(cpus) == 0:
			continue
		}
		p, _ := present(t)
		sel.targets = append(sel.targets, t)
		sel.interpreters[t.InterpreterName()] = p
	}
	if len(sel.targets) == 0 {
		return nil, fmt.Errorf("finding interpreters: %w in %s but for the host family %s of %s", ErrNoInterpreter, dir, family, sel.arch.rpm)
	}
	return sel, nil
}

// fedoraSubpackage is the Fedora qemu-user-static subpackage that ships
// cpu's interpreter and binfmt.d file (the %files sections of Fedora's
// qemu.spec), so that the package can conflict with exactly those.
func fedoraSubpackage(cpu string) string {
	switch cpu {
	case "aarch64", "aarch64_be":
		return "qemu-user-static-aarch64"
	case "arm", "armeb":
		return "qemu-user-static-arm"
	case "microblaze", "microblazeel":
		return "qemu-user-static-microblaze"
	case "mips", "mipsel", "mips64", "mips64el", "mipsn32", "mipsn32el":
		return "qemu-user-static-mips"
	case "ppc", "ppc64", "ppc64le":
		return "qemu-user-static-ppc"
	case "riscv32", "riscv64":
		return "qemu-user-static-riscv"
	case "sh4", "sh4eb":
		return "qemu-user-static-sh4"
	case "sparc", "sparc32plus", "sparc64":
		return "qemu-user-static-sparc"
	case "i386", "i486", "x86_64":
		return "qemu-user-static-x86"
	case "xtensa", "xtensaeb":
		return "qemu-user-static-xtensa"
	}
	return "qemu-user-static-" + cpu
}
