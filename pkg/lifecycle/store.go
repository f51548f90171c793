package lifecycle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// DefaultStateDir is where the record lives on a running system.
const DefaultStateDir = "/var/lib/binfmtctl"

// ErrUnsafeState is returned when the state directory or a record file is
// a symlink or is not owned by root, so that a hostile link can never make
// the helper read or write elsewhere as root.
var ErrUnsafeState = errors.New("unsafe state directory")

// Store is the record of what each package registered: one file per
// package, DIR/PACKAGE, written whole through a temporary file, fsync and
// rename. Its format is plain text so that a shell script can act on it
// (the erase %postun runs after binfmtctl itself is gone):
//
//	# binfmtctl record 1
//	== qemu-aarch64
//	enabled
//	interpreter /usr/bin/qemu-aarch64-static
//	flags: F
//	offset 0
//	magic 7f454c46...
//	mask ffffffff...
//	== qemu-riscv64
//	...
//
// Each "== NAME" section is a claim: the entry file, byte for byte, that
// the kernel shows once that definition of NAME is registered. A name has
// several claims only while one definition replaces another.
type Store struct {
	Dir string
}

// recordHeader starts every record; the number is the format's version.
const recordHeader = "# binfmtctl record 1\n"

// Claims maps an entry name to the definitions a package claims for it.
type Claims map[string][]binfmt.Entry

// Owns reports whether live is one of the package's claims.
func (c Claims) Owns(l binfmt.Live) bool {
	for _, e := range c[l.Name] {
		if l.Matches(e) {
			return true
		}
	}
	return false
}

// Names returns the claimed entry names, sorted.
func (c Claims) Names() []string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Add adds the claim e unless it is there already.
func (c Claims) Add(e binfmt.Entry) {
	for _, x := range c[e.Name] {
		if binfmt.SameDefinition(x, e) {
			return
		}
	}
	c[e.Name] = append(c[e.Name], e)
}

// Clone returns a copy that can be changed without changing c.
func (c Claims) Clone() Claims {
	out := make(Claims, len(c))
	for n, es := range c {
		out[n] = append([]binfmt.Entry(nil), es...)
	}
	return out
}

// ValidPackage checks a package name before it becomes a file name.
func ValidPackage(pkg string) error {
	if pkg == "" || pkg == "." || pkg == ".." || strings.ContainsAny(pkg, "/\x00\n") || strings.HasPrefix(pkg, ".") {
		return fmt.Errorf("package name %q is not valid", pkg)
	}
	return nil
}

// checkDir refuses a state directory that is a symlink, not a directory,
// owned by anyone but root or the user running the helper, or writable by
// group or others. A directory of root's is safe for any user to read:
// status run by a user still shows the owners.
func checkDir(p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%w: %q is a symlink", ErrUnsafeState, p)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %q is not a directory", ErrUnsafeState, p)
	}
	// os.Lstat fills a syscall.Stat_t (not x/sys/unix's type); without
	// owner information the directory is refused, never assumed safe.
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%w: %q: no owner information", ErrUnsafeState, p)
	}
	if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: %q is owned by uid %d, not root", ErrUnsafeState, p, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: %q is writable by group or others (mode %04o)", ErrUnsafeState, p, fi.Mode().Perm())
	}
	return nil
}

// Claims reads the record of one package. A package without a record has
// no claims. A record that does not parse is reported in the error; the
// claims that did parse are returned with it.
func (s Store) Claims(pkg string) (Claims, error) {
	if err := ValidPackage(pkg); err != nil {
		return nil, err
	}
	if err := checkDir(s.Dir); errors.Is(err, fs.ErrNotExist) {
		return Claims{}, nil
	} else if err != nil {
		return nil, err
	}
	p := filepath.Join(s.Dir, pkg)
	data, err := readNoFollow(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Claims{}, nil
	}
	if err != nil {
		return nil, err
	}
	c, err := ParseRecord(data)
	if err != nil {
		return c, fmt.Errorf("record %q: %w", p, err)
	}
	return c, nil
}

// ParseRecord parses a record. It returns every claim that parses, and an
// error for the rest: a record cut short or damaged loses only the claims
// it damaged, and one of an unknown version yields none.
func ParseRecord(data []byte) (Claims, error) {
	c := Claims{}
	text := string(data)
	if !strings.HasPrefix(text, "# binfmtctl record ") {
		return c, fmt.Errorf("%w: no record header", ErrBadRecord)
	}
	if !strings.HasPrefix(text, recordHeader) {
		first, _, _ := strings.Cut(text, "\n")
		return c, fmt.Errorf("%w: unknown record version %q", ErrBadRecord, first)
	}
	// A claim starts at a line "== NAME", and only at the start of a
	// line: names and interpreters may contain "== " themselves. The
	// shell reader in scriptlets/postun.sh reads it line by line too.
	sections := strings.Split("\n"+text[len(recordHeader):], "\n== ")
	var errs []error
	if strings.TrimSpace(sections[0]) != "" {
		errs = append(errs, fmt.Errorf("%w: text before the first claim", ErrBadRecord))
	}
	for i, sec := range sections[1:] {
		name, body, ok := strings.Cut(sec, "\n")
		// Render ends every claim with a newline; the separator took it
		// from all but the last. A last claim without one was cut inside
		// a line, where a shorter magic or mask would still parse.
		if last := i == len(sections)-2; !ok || last && !strings.HasSuffix(body, "\n") {
			errs = append(errs, fmt.Errorf("%w: claim %q is cut short", ErrBadRecord, name))
			continue
		}
		if err := binfmt.ValidName(name); err != nil {
			errs = append(errs, fmt.Errorf("%w: %v", ErrBadRecord, err))
			continue
		}
		e, err := ParseClaim(name, []byte(body))
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %v", ErrBadRecord, err))
			continue
		}
		c.Add(e)
	}
	return c, errors.Join(errs...)
}

// ErrBadRecord is wrapped by errors about a record that does not parse.
var ErrBadRecord = errors.New("damaged record")

// ParseClaim parses one claim: the entry file as the kernel shows it.
func ParseClaim(name string, data []byte) (binfmt.Entry, error) {
	l, err := binfmt.ParseLive(name, data)
	if err != nil {
		return binfmt.Entry{}, err
	}
	return l.Entry, nil
}

// Render writes the record for c.
func (c Claims) Render() []byte {
	var b strings.Builder
	b.WriteString(recordHeader)
	for _, n := range c.Names() {
		for _, e := range c[n] {
			fmt.Fprintf(&b, "== %s\n%s", n, e.Status())
		}
	}
	return []byte(b.String())
}

// Packages lists the packages that have a record.
func (s Store) Packages() ([]string, error) {
	if err := checkDir(s.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	names, err := readDirNames(s.Dir)
	if err != nil {
		return nil, err
	}
	var pkgs []string
	for _, n := range names {
		if ValidPackage(n) == nil {
			pkgs = append(pkgs, n)
		}
	}
	return pkgs, nil
}

// Save replaces pkg's record with c, atomically. An empty c removes the
// record, and the state directory with it once it is empty, so nothing is
// left when the last package goes.
func (s Store) Save(pkg string, c Claims) error {
	if err := ValidPackage(pkg); err != nil {
		return err
	}
	if len(c) == 0 {
		err := os.Remove(filepath.Join(s.Dir, pkg))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing record %q: %w", filepath.Join(s.Dir, pkg), err)
		}
		if err == nil {
			_ = syncDir(s.Dir)
		}
		if err := unix.Rmdir(s.Dir); err == nil {
			_ = syncDir(filepath.Dir(s.Dir))
		}
		return nil
	}
	if err := mkdirSafe(s.Dir); err != nil {
		return err
	}
	return writeAtomic(s.Dir, pkg, c.Render())
}

func readDirNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("listing %q: %w", dir, err)
	}
	sort.Strings(names)
	return names, nil
}

// readNoFollow reads a record file, refusing a symlink in its place.
func readNoFollow(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%w: record %q is a symlink", ErrUnsafeState, p)
		}
		return nil, fmt.Errorf("reading record %q: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading record %q: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: record %q is not a regular file", ErrUnsafeState, p)
	}
	// A record is a few hundred bytes per entry; refuse anything absurd.
	if fi.Size() > 1<<20 {
		return nil, fmt.Errorf("reading record %q: %d bytes is too large", p, fi.Size())
	}
	buf := make([]byte, fi.Size())
	n, err := f.ReadAt(buf, 0)
	if err != nil && n != len(buf) {
		return nil, fmt.Errorf("reading record %q: %w", p, err)
	}
	return buf[:n], nil
}

func mkdirSafe(d string) error {
	err := unix.Mkdir(d, 0o755)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("creating record directory %q: %w", d, err)
	}
	if err == nil {
		// Mkdir honours the umask; the record must be readable by all
		// (status) and writable by root alone.
		if err := unix.Chmod(d, 0o755); err != nil {
			return fmt.Errorf("creating record directory %q: %w", d, err)
		}
		_ = syncDir(filepath.Dir(d))
	}
	return checkDir(d)
}

// writeAtomic writes name in dir through a temporary file, fsync and
// rename, then fsyncs dir, so a crash leaves either the old file or the
// new one, never a torn one.
func writeAtomic(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, "."+name+".tmp")
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("writing record %q: %w", tmp, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing record %q: %w", tmp, werr)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing record %q: %w", filepath.Join(dir, name), err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}

// Lock takes an exclusive lock that serialises hooks. It locks the
// directory above the state directory, which always exists and is never
// removed, because the state directory itself comes and goes.
func (s Store) Lock() (unlock func(), err error) {
	parent := filepath.Dir(filepath.Clean(s.Dir))
	fd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		// A bare root (a fresh image) may have no /var/lib yet.
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return nil, fmt.Errorf("locking %q: %w", parent, err)
		}
		fd, err = unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("locking %q: %w", parent, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("locking %q: %w", parent, err)
	}
	return func() { unix.Close(fd) }, nil
}
