package qemu

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// DefaultBinDir is where the static interpreters live, as in Fedora's
// qemu-user-static packages.
const DefaultBinDir = "/usr/bin"

// ErrUnknownCPU is returned, wrapped with the name, for a cpu that is not
// in the table.
var ErrUnknownCPU = errors.New("unknown qemu target")

// ErrHostCPU is returned, wrapped with the names, when the cpus asked for
// include the host's own: its entry would send every native program, the
// interpreter included, through qemu.
var ErrHostCPU = errors.New("the host's own cpu")

// Options choose what goes into the generated entries besides flag F,
// which is always set so that the kernel opens the interpreter when the
// entry is registered and the entry keeps working in chroots and
// containers that do not have the interpreter.
type Options struct {
	// Preserve sets flag P: the interpreter receives the program's
	// original argv[0] as well as its path.
	Preserve bool
	// Credentials sets flag C, and so O: the kernel computes credentials
	// from the program instead of the interpreter, so a setuid foreign
	// program runs with raised privileges inside qemu, which does not
	// defend against it. qemu dropped its --credential option and Debian
	// stopped setting C in 2025 for that reason; set it only where the
	// interpreter checks of package binfmt pass.
	Credentials bool
	// IncludeHostFamily also generates files for targets in the host's own
	// family (i386 on an x86_64 host). The host's own cpu is left out even
	// then: an entry for it would send every native program, the
	// interpreter included, through qemu.
	IncludeHostFamily bool
	// BinDir is the directory of the interpreters; DefaultBinDir if empty.
	BinDir string
}

func (o Options) binDir() string {
	if o.BinDir == "" {
		return DefaultBinDir
	}
	return o.BinDir
}

// Entry returns the binfmt_misc entry for t: name qemu-<cpu>, interpreter
// <BinDir>/qemu-<cpu>-static (qemu-i386-static for i486), flag F, and P
// and C (which implies O) as opts ask.
func (t Target) Entry(opts Options) binfmt.Entry {
	flags := "F"
	if opts.Preserve {
		flags += "P"
	}
	if opts.Credentials {
		flags += "C"
	}
	// Only P, C and F are ever passed in, so this cannot fail.
	flags, _ = binfmt.NormalizeFlags(flags)
	return binfmt.Entry{
		Name:        t.Name(),
		Type:        binfmt.TypeMagic,
		Offset:      0,
		Magic:       bytes.Clone(t.Magic),
		Mask:        bytes.Clone(t.Mask),
		Interpreter: path.Join(opts.binDir(), t.InterpreterName()),
		Flags:       flags,
	}
}

// ConfName is the name of the binfmt.d file for cpu, as Fedora names it:
// "qemu-<cpu>-static.conf".
func ConfName(cpu string) string { return "qemu-" + cpu + "-static.conf" }

// Conf renders the binfmt.d file for t: a comment line, then the register
// line, each ending in a newline. binfmt.Parse reads it back as exactly
// t.Entry(opts).
func Conf(t Target, opts Options) []byte {
	e := t.Entry(opts)
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s: run %s programs with %s\n", e.Name, t.CPU, e.Interpreter)
	b.WriteString(e.RegisterString())
	b.WriteByte('\n')
	return b.Bytes()
}

// File is one generated binfmt.d file.
type File struct {
	// Name is the file name, ConfName(CPU), to be installed in
	// /usr/lib/binfmt.d.
	Name string
	CPU  string
	Data []byte
}

// Generate renders the binfmt.d files for cpus (every target if cpus is
// empty) as they should be installed on host, which is a GOARCH, a uname
// -m value or a family name (see HostFamily). Targets in the host's family
// are skipped unless opts.IncludeHostFamily is set, and the host's own cpu
// always is; so an x86_64 host gets no x86_64, i386 or i486 file by
// default. The files come in table order, whatever the order of cpus.
//
// It fails, naming them, for cpus not in the table and for cpus that are
// the host's own (rather than leave out what was asked for), and for an
// empty host or a relative BinDir, and it checks that every file parses
// back to the entry it was made from.
func Generate(cpus []string, host string, opts Options) ([]File, error) {
	if host == "" {
		return nil, errors.New("generating binfmt.d files: the host architecture is empty; pass GOARCH or uname -m")
	}
	if !path.IsAbs(opts.binDir()) {
		return nil, fmt.Errorf("generating binfmt.d files: interpreter directory %q is not an absolute path", opts.BinDir)
	}
	want := map[string]bool{}
	var unknown []string
	for _, cpu := range cpus {
		if _, ok := Lookup(cpu); !ok {
			unknown = append(unknown, fmt.Sprintf("%q", cpu))
			continue
		}
		want[cpu] = true
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("generating binfmt.d files: %w %s (known targets: %s)",
			ErrUnknownCPU, strings.Join(unknown, ", "), strings.Join(CPUs(), " "))
	}

	hostCPU, family := HostCPU(host), HostFamily(host)
	var own []string
	for _, t := range table {
		if want[t.CPU] && t.Emulator() == hostCPU {
			own = append(own, t.CPU)
		}
	}
	if len(own) > 0 {
		return nil, fmt.Errorf("generating binfmt.d files: %s: %w %s; its entry would run every native program, the interpreter included, through qemu",
			strings.Join(own, ", "), ErrHostCPU, host)
	}
	var files []File
	for _, t := range table {
		if len(cpus) > 0 && !want[t.CPU] {
			continue
		}
		if t.Emulator() == hostCPU || t.Family == family && !opts.IncludeHostFamily {
			continue
		}
		name := ConfName(t.CPU)
		data := Conf(t, opts)
		if err := checkConf(name, data, t.Entry(opts)); err != nil {
			return nil, fmt.Errorf("generating binfmt.d files: %w", err)
		}
		files = append(files, File{Name: name, CPU: t.CPU, Data: data})
	}
	return files, nil
}

// checkConf parses data with systemd's rules and the kernel's, and checks
// that it holds exactly want. It catches an interpreter directory that
// cannot be written into a register string (a newline, say).
func checkConf(name string, data []byte, want binfmt.Entry) error {
	lines, errs := binfmt.Parse(bytes.NewReader(data), name)
	if len(errs) > 0 {
		return fmt.Errorf("rendered %s does not parse: %w", name, errors.Join(errs...))
	}
	if len(lines) != 1 || lines[0].Name != want.Name || !binfmt.SameDefinition(lines[0].Entry, want) {
		return fmt.Errorf("rendered %s does not read back as entry %s for %s", name, want.Name, want.Interpreter)
	}
	return nil
}
