package binfmt

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultDir is where binfmt_misc is mounted on a running system.
const DefaultDir = "/proc/sys/fs/binfmt_misc"

// fsMagic is BINFMTFS_MAGIC from include/uapi/linux/magic.h.
const fsMagic = 0x42494e4d

// FS is a binfmt_misc mount.
type FS struct {
	Dir string
	// AllowNative lets Apply register an entry that matches the host's
	// own programs (CheckNative). Only a person asks for it (register
	// --force); package hooks never do.
	AllowNative bool
}

// Open returns the binfmt_misc mounted at dir, or an error wrapping
// ErrNotMounted when dir is not a binfmt_misc mount.
func Open(dir string) (*FS, error) {
	ok, err := Mounted(dir)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errorf("opening %q: %w", dir, ErrNotMounted)
	}
	return &FS{Dir: dir}, nil
}

// Mounted reports whether dir is a binfmt_misc mount, by its statfs magic.
// A missing directory is "not mounted", not an error.
func Mounted(dir string) (bool, error) {
	var st unix.Statfs_t
	err := unix.Statfs(dir, &st)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, errorf("checking whether %q is binfmt_misc: %w", dir, err)
	}
	return st.Type == fsMagic, nil
}

// Mount mounts binfmt_misc at dir, unless it is mounted there already.
func Mount(dir string) error {
	if ok, err := Mounted(dir); err != nil || ok {
		return err
	}
	if err := unix.Mount("binfmt_misc", dir, "binfmt_misc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			// Not "no such entry", which kernelError would say: the
			// mount point itself is missing.
			return errorf("mounting binfmt_misc at %q: %w", dir, errNoMountPoint{})
		}
		return kernelError(fmt.Sprintf("mounting binfmt_misc at %q", dir), err)
	}
	return nil
}

// errNoMountPoint is Mount's error for a mount point that does not
// exist. It is fs.ErrNotExist for errors.Is, but says so once: wrapping
// fs.ErrNotExist itself would end the message "the directory does not
// exist: file does not exist".
type errNoMountPoint struct{}

func (errNoMountPoint) Error() string        { return "the directory does not exist" }
func (errNoMountPoint) Is(target error) bool { return target == fs.ErrNotExist }

// Live is an entry as the kernel reports it in its entry file.
type Live struct {
	Entry
	Enabled bool
}

// Names lists the registered entry names in the kernel's directory
// order, which is the most recently registered first: the order in which
// the kernel tries them (fs/binfmt_misc.c adds entries at the list head).
func (f *FS) Names() ([]string, error) {
	// Plain system calls, as in readFile: os.Open would also set up the
	// runtime's poller, which status and register never need otherwise.
	fd, err := unix.Open(f.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, kernelError(fmt.Sprintf("listing %q", f.Dir), err)
	}
	defer unix.Close(fd)
	var names []string
	// Small enough to stay on the stack without growing it: a 4 KiB
	// buffer made the main goroutine's stack grow, which costs fresh
	// pages on every run. Most tables fit in one or two reads.
	buf := make([]byte, 1024)
	for {
		n, err := unix.ReadDirent(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, kernelError(fmt.Sprintf("listing %q", f.Dir), err)
		}
		if n == 0 {
			return names, nil
		}
		// ParseDirent keeps getdents order and skips "." and "..".
		var all []string
		_, _, all = unix.ParseDirent(buf[:n], -1, all)
		for _, name := range all {
			if name != "register" && name != "status" {
				names = append(names, name)
			}
		}
	}
}

// Entries reads every live entry, most recent first. An entry removed
// while listing is skipped.
func (f *FS) Entries() ([]Live, error) {
	names, err := f.Names()
	if err != nil {
		return nil, err
	}
	out := make([]Live, 0, len(names))
	for _, n := range names {
		l, err := f.Entry(n)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// Entry reads the live entry called name.
func (f *FS) Entry(name string) (Live, error) {
	if err := ValidName(name); err != nil {
		return Live{}, errorf("reading entry %q: %w", name, err)
	}
	data, err := readFile(joinPath(f.Dir, name))
	if err != nil {
		return Live{}, kernelError(fmt.Sprintf("reading entry %q", name), err)
	}
	return ParseLive(name, data)
}

// Raw returns the bytes of the entry file called name, for byte-for-byte
// comparisons.
func (f *FS) Raw(name string) ([]byte, error) {
	if err := ValidName(name); err != nil {
		return nil, errorf("reading entry %q: %w", name, err)
	}
	data, err := readFile(joinPath(f.Dir, name))
	if err != nil {
		return nil, kernelError(fmt.Sprintf("reading entry %q", name), err)
	}
	return data, nil
}

// Status reports whether binfmt_misc as a whole is enabled.
func (f *FS) Status() (bool, error) {
	data, err := readFile(joinPath(f.Dir, "status"))
	if err != nil {
		return false, kernelError(fmt.Sprintf("reading %q", joinPath(f.Dir, "status")), err)
	}
	switch s := strings.TrimSpace(string(data)); s {
	case "enabled":
		return true, nil
	case "disabled":
		return false, nil
	default:
		return false, errorf("reading binfmt_misc status: unexpected %q", s)
	}
}

// ParseLive parses an entry file as fs/binfmt_misc.c's entry_status
// writes it:
//
//	enabled
//	interpreter /usr/bin/qemu-aarch64-static
//	flags: OCF
//	offset 0
//	magic 7f454c46
//	mask ffffffff
//
// or "extension .foo" instead of the offset, magic and mask lines.
func ParseLive(name string, data []byte) (Live, error) {
	l := Live{Entry: Entry{Name: name}}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) < 3 {
		return Live{}, badLive(name, "%d lines, want at least 3", len(lines))
	}
	switch lines[0] {
	case "enabled":
		l.Enabled = true
	case "disabled":
	default:
		return Live{}, badLive(name, "first line %q, want enabled or disabled", lines[0])
	}
	interp, ok := strings.CutPrefix(lines[1], "interpreter ")
	if !ok || interp == "" {
		return Live{}, badLive(name, "second line %q, want interpreter PATH", lines[1])
	}
	l.Interpreter = interp
	flags, ok := strings.CutPrefix(lines[2], "flags: ")
	if !ok {
		// The kernel prints "flags: " with a trailing space; tolerate a
		// trimmed copy.
		if lines[2] != "flags:" {
			return Live{}, badLive(name, "third line %q, want flags: ...", lines[2])
		}
		flags = ""
	}
	f, err := NormalizeFlags(flags)
	if err != nil {
		return Live{}, errorf("parsing entry %q: %w", name, err)
	}
	l.Flags = f
	rest := lines[3:]
	if len(rest) == 1 {
		ext, ok := strings.CutPrefix(rest[0], "extension .")
		if !ok || ext == "" {
			return Live{}, badLive(name, "line %q, want extension .EXT", rest[0])
		}
		l.Type, l.Magic = TypeExtension, []byte(ext)
		return l, nil
	}
	if len(rest) != 2 && len(rest) != 3 {
		return Live{}, badLive(name, "%d lines after flags, want offset, magic and an optional mask", len(rest))
	}
	l.Type = TypeMagic
	off, ok := strings.CutPrefix(rest[0], "offset ")
	n, err := strconv.Atoi(off)
	if !ok || err != nil || n < 0 {
		return Live{}, badLive(name, "line %q, want offset N", rest[0])
	}
	l.Offset = n
	m, ok := strings.CutPrefix(rest[1], "magic ")
	if l.Magic, err = hex.DecodeString(m); !ok || err != nil || len(l.Magic) == 0 {
		return Live{}, badLive(name, "line %q, want magic HEX", rest[1])
	}
	if len(rest) == 3 {
		k, ok := strings.CutPrefix(rest[2], "mask ")
		if l.Mask, err = hex.DecodeString(k); !ok || err != nil || len(l.Mask) != len(l.Magic) {
			return Live{}, badLive(name, "line %q, want mask HEX as long as the magic", rest[2])
		}
	}
	return l, nil
}

// badLive is ParseLive's error for entry name, a call rather than a copy
// of the formatting inlined into each of ParseLive's checks.
//
//go:noinline
func badLive(name, format string, args ...any) error {
	return errorf("parsing entry %q: %w: %s", name, ErrInvalid, fmt.Sprintf(format, args...))
}

// Matches reports whether the live entry is what registering e gives:
// same type, interpreter, flags, offset, magic and mask. The enabled
// state is not compared: disabling an entry does not change who owns it.
//
// It is not inlined: each inlined copy moves both structs field by field.
//
//go:noinline
func (l Live) Matches(e Entry) bool {
	return l.Name == e.Name && SameDefinition(l.Entry, e)
}

// SameDefinition compares two entries after normalisation, ignoring the
// name.
func SameDefinition(a, b Entry) bool {
	fa, errA := NormalizeFlags(a.Flags)
	fb, errB := NormalizeFlags(b.Flags)
	if errA != nil || errB != nil || fa != fb {
		return false
	}
	if a.Type != b.Type || a.Interpreter != b.Interpreter || !bytes.Equal(a.Magic, b.Magic) {
		return false
	}
	if a.Type == TypeExtension {
		return true
	}
	return a.Offset == b.Offset && bytes.Equal(a.Mask, b.Mask)
}

// Status renders the entry file the kernel shows once e is registered and
// enabled, byte for byte, so a shell script can compare it with cat.
func (e Entry) Status() string {
	var b strings.Builder
	fmt.Fprintf(&b, "enabled\ninterpreter %s\nflags: %s\n", e.Interpreter, e.Flags)
	if e.Type == TypeExtension {
		fmt.Fprintf(&b, "extension .%s\n", e.Magic)
		return b.String()
	}
	fmt.Fprintf(&b, "offset %d\nmagic %s\n", e.Offset, hex.EncodeToString(e.Magic))
	if len(e.Mask) > 0 {
		fmt.Fprintf(&b, "mask %s\n", hex.EncodeToString(e.Mask))
	}
	return b.String()
}

// InterpreterExists reports whether the entry's interpreter is on disk
// under root.
func (e Entry) InterpreterExists(root string) bool {
	p := e.Interpreter
	if root != "" && root != "/" {
		p = joinPath(root, p)
	}
	_, err := os.Stat(p)
	return !errors.Is(err, fs.ErrNotExist)
}
