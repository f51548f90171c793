package assemble

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/qemu"
)

// ErrNoInterpreter is returned, wrapped with the cpus and the directory,
// when a requested cpu has no qemu-<cpu><suffix> in the qemu directory.
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

// DefaultQemuSuffix ends the interpreters' file names in the qemu
// directory: Fedora's and Debian 12's qemu-user-static ship
// /usr/bin/qemu-<cpu>-static. Debian 13 and later ship static-pie
// /usr/bin/qemu-<cpu> instead, which suffix "" finds (qemu-binfmt-conf.sh's
// --qemu-suffix). The package installs them as qemu-<cpu>-static whatever
// their name in the qemu directory.
const DefaultQemuSuffix = "-static"

// ErrNotStatic is returned, wrapped with the interpreters' paths, for an
// interpreter that needs a program interpreter or shared libraries.
var ErrNotStatic = errors.New("not statically linked")

// selection is what goes into the package: the targets to register and
// the interpreters they run on, with the package architecture.
type selection struct {
	arch         arch
	targets      []qemu.Target
	interpreters map[string]string // file name in /usr/bin -> source path
	explicit     bool              // the cpus were named: host-family ones among them are wanted
	skipped      []skipped         // interpreters found in the directory and left out
}

// skipped is a group of interpreter files left out for one reason.
type skipped struct {
	names []string // file names in the qemu directory
	why   string
}

// checkCPUNames fails, naming them all, for cpus not in qemu's table.
func checkCPUNames(cpus []string) error {
	var unknown []string
	for _, cpu := range cpus {
		if _, ok := qemu.Lookup(cpu); !ok {
			unknown = append(unknown, cpu)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("selecting cpus: %w %s (known: %s)", qemu.ErrUnknownCPU, strings.Join(unknown, ", "), strings.Join(qemu.CPUs(), " "))
	}
	return nil
}

// checkSuffix refuses a suffix that would make the file name a path.
func checkSuffix(suffix string) error {
	if strings.ContainsAny(suffix, "/\x00") {
		return fmt.Errorf("interpreter suffix %q: a file name suffix cannot hold '/' or NUL", suffix)
	}
	return nil
}

// checkStatic fails for an ELF file that names a program interpreter
// (PT_INTERP) or needs shared libraries (DT_NEEDED). The package's entries
// have flag F: the kernel opens the interpreter when the entry is
// registered and runs it inside any chroot or container, where the host's
// loader and libraries are not. Static and static-pie files have neither,
// and pass.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("checking that %q is static: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		interp, _ := io.ReadAll(p.Open())
		return fmt.Errorf("%w: %q is dynamically linked (program interpreter %s)", ErrNotStatic, path, strings.TrimRight(string(interp), "\x00"))
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		return fmt.Errorf("%w: %q needs shared libraries (%s)", ErrNotStatic, path, strings.Join(libs, " "))
	}
	return nil
}

// selectTargets finds the interpreters, named qemu-<cpu><suffix>, in dir.
// With no cpus it takes every target whose interpreter is there, except
// those in the host's family (the host runs them natively); with cpus,
// exactly those, and it fails naming any that has no interpreter or that
// is the host's own cpu. Every chosen interpreter must be static. The other
// qemu-<name><suffix> files in dir are returned as skipped, with the
// reason.
func selectTargets(dir, suffix string, cpus []string) (*selection, error) {
	if err := checkSuffix(suffix); err != nil {
		return nil, err
	}
	fileName := func(t qemu.Target) string { return "qemu-" + t.Emulator() + suffix }
	present := func(t qemu.Target) (string, bool) {
		p := filepath.Join(dir, fileName(t))
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
			hint := "install qemu-user-static, pass --qemu-dir, or --qemu-suffix '' for Debian 13's qemu-user"
			if suffix == "" {
				hint = "install qemu-user (Debian 13 and later) or pass --qemu-dir"
			}
			return nil, fmt.Errorf("finding interpreters: %w: no qemu-<cpu>%s for any known cpu in %s (%s)", ErrNoInterpreter, suffix, dir, hint)
		}
	} else {
		// Unknown cpus and missing interpreters are all named at once;
		// the selection comes in table order, as Generate's files do.
		if err := checkCPUNames(cpus); err != nil {
			return nil, err
		}
		want := map[string]bool{}
		for _, cpu := range cpus {
			want[cpu] = true
		}
		var missing, names []string
		for _, t := range qemu.Targets() {
			if !want[t.CPU] {
				continue
			}
			if _, ok := present(t); !ok {
				missing = append(missing, t.CPU)
				names = append(names, fileName(t))
				continue
			}
			chosen = append(chosen, t)
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("selecting cpus: %w for %s in %s (looked for %s)", ErrNoInterpreter, strings.Join(missing, ", "), dir, strings.Join(names, ", "))
		}
	}

	// Every interpreter must be static, and they decide the
	// architecture, on which they must agree.
	var dynamic []error
	for _, t := range chosen {
		p, _ := present(t)
		if err := checkStatic(p); err != nil {
			if !errors.Is(err, ErrNotStatic) {
				return nil, err
			}
			dynamic = append(dynamic, err)
		}
	}
	if len(dynamic) > 0 {
		return nil, fmt.Errorf("finding interpreters: an interpreter with flag F runs inside foreign chroots without their libraries, so the package takes static ones only (qemu-user-static, or Debian 13's static-pie qemu-user): %w", errors.Join(dynamic...))
	}
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
	var hostFamily []string
	for _, t := range chosen {
		switch {
		case t.Emulator() == hostCPU:
			if len(cpus) > 0 {
				return nil, fmt.Errorf("selecting cpus: %s is the package architecture %s itself; an entry for it would run every native program through qemu", t.CPU, sel.arch.rpm)
			}
			hostFamily = appendNew(hostFamily, fileName(t))
			continue
		case t.Family == family && len(cpus) == 0:
			// i386 and i486 share qemu-i386: name it once.
			hostFamily = appendNew(hostFamily, fileName(t))
			continue
		}
		p, _ := present(t)
		sel.targets = append(sel.targets, t)
		sel.interpreters[t.InterpreterName()] = p
	}
	if len(sel.targets) == 0 {
		return nil, fmt.Errorf("finding interpreters: %w in %s but for the host family %s of %s", ErrNoInterpreter, dir, family, sel.arch.rpm)
	}
	sel.skipped = skippedFiles(dir, suffix, sel, hostFamily, family)
	return sel, nil
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// qemuTools are the programs qemu installs as qemu-<name> in /usr/bin
// that are not linux-user interpreters (Debian's qemu-utils, qemu-guest-
// agent, qemu-system-common), so that an empty --qemu-suffix in /usr/bin does
// not report them as skipped interpreters.
var qemuTools = map[string]bool{"img": true, "io": true, "nbd": true, "edid": true, "ga": true, "keymap": true}

// skippedFiles names the qemu-<name><suffix> files in dir that are not
// packaged, grouped by why: no target in the table (qemu-cris-static), the
// host's family, or not named by --cpus. A name with a '-' in it is not a
// linux-user interpreter (qemu-system-x86_64, qemu-pr-helper) and is not
// counted, nor are qemu's tools (qemu-img); with suffix "" that also leaves
// out qemu-<cpu>-static.
func skippedFiles(dir, suffix string, sel *selection, hostFamily []string, family string) []skipped {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	used := map[string]bool{}
	for _, p := range sel.interpreters {
		used[filepath.Base(p)] = true
	}
	host := map[string]bool{}
	for _, n := range hostFamily {
		host[n] = true
	}
	known := map[string]bool{}
	for _, t := range qemu.Targets() {
		known[t.Emulator()] = true
	}
	var unknown, notNamed []string
	var unknownCPUs []string
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "qemu-") || !strings.HasSuffix(name, suffix) || used[name] || host[name] {
			continue
		}
		cpu := strings.TrimSuffix(strings.TrimPrefix(name, "qemu-"), suffix)
		if cpu == "" || strings.Contains(cpu, "-") || qemuTools[cpu] {
			continue
		}
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || !st.Mode().IsRegular() {
			continue
		}
		if !known[cpu] {
			unknown = append(unknown, name)
			unknownCPUs = append(unknownCPUs, cpu)
		} else {
			notNamed = append(notNamed, name)
		}
	}
	var out []skipped
	if len(unknown) > 0 {
		out = append(out, skipped{unknown, fmt.Sprintf("no binfmt_misc entry for %s in the qemu table", strings.Join(unknownCPUs, ", "))})
	}
	if len(hostFamily) > 0 {
		out = append(out, skipped{hostFamily, fmt.Sprintf("the host family %s of %s runs those programs natively", family, sel.arch.rpm)})
	}
	if len(notNamed) > 0 {
		out = append(out, skipped{notNamed, "not named by --cpus"})
	}
	return out
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
