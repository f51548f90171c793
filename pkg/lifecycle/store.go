package lifecycle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// DefaultStateDir is where the record lives on a running system.
const DefaultStateDir = "/var/lib/binfmtctl"

// ErrUnsafeState is returned when the state directory or a record file is
// a symlink or is not owned by root, so that a hostile link can never make
// the helper read or write elsewhere as root.
var ErrUnsafeState = errors.New("unsafe state directory")

// Store is the record of what each package registered. Layout:
//
//	DIR/PACKAGE/ENTRY/HASH
//
// where each HASH file holds, byte for byte, the entry file the kernel
// shows once that definition is registered and enabled. Several claims
// for one entry exist only in the middle of a replacement.
type Store struct {
	Dir string
}

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

// ValidPackage checks a package name before it becomes a directory name.
func ValidPackage(pkg string) error {
	if pkg == "" || pkg == "." || pkg == ".." || strings.ContainsAny(pkg, "/\x00\n") || strings.HasPrefix(pkg, ".") {
		return fmt.Errorf("package name %q is not valid", pkg)
	}
	return nil
}

// claimFile names a claim by a hash of its content, so that writing the
// same claim twice is a no-op and two claims never collide.
func claimFile(e binfmt.Entry) string {
	sum := sha256.Sum256([]byte(e.Status()))
	return hex.EncodeToString(sum[:8])
}

// checkDir refuses a state path that is a symlink, not a directory, or
// not owned by the user running the helper (root in a transaction).
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
	if st, ok := fi.Sys().(*unix.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: %q is owned by uid %d, not %d", ErrUnsafeState, p, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: %q is writable by group or others (mode %04o)", ErrUnsafeState, p, fi.Mode().Perm())
	}
	return nil
}

// Claims reads the claims of one package. A package without a record has
// no claims. A claim file that does not parse is reported, not trusted.
func (s Store) Claims(pkg string) (Claims, error) {
	if err := ValidPackage(pkg); err != nil {
		return nil, err
	}
	c := Claims{}
	dir := filepath.Join(s.Dir, pkg)
	if err := checkDir(s.Dir); errors.Is(err, fs.ErrNotExist) {
		return c, nil
	} else if err != nil {
		return nil, err
	}
	if err := checkDir(dir); errors.Is(err, fs.ErrNotExist) {
		return c, nil
	} else if err != nil {
		return nil, err
	}
	names, err := readDirNames(dir)
	if err != nil {
		return nil, err
	}
	var bad []error
	for _, name := range names {
		if binfmt.ValidName(name) != nil || strings.HasPrefix(name, ".") {
			continue
		}
		edir := filepath.Join(dir, name)
		if err := checkDir(edir); err != nil {
			bad = append(bad, err)
			continue
		}
		files, err := readDirNames(edir)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if strings.HasPrefix(f, ".") {
				continue
			}
			data, err := readNoFollow(filepath.Join(edir, f))
			if err != nil {
				bad = append(bad, err)
				continue
			}
			e, err := ParseClaim(name, data)
			if err != nil {
				bad = append(bad, fmt.Errorf("record %q: %w", filepath.Join(edir, f), err))
				continue
			}
			c[name] = append(c[name], e)
		}
		if _, ok := c[name]; !ok {
			// An entry directory whose claims are all unreadable still
			// says the package registered that name once.
			c[name] = nil
		}
	}
	return c, errors.Join(bad...)
}

// ParseClaim parses a claim file: the entry file as the kernel shows it.
func ParseClaim(name string, data []byte) (binfmt.Entry, error) {
	l, err := binfmt.ParseLive(name, data)
	if err != nil {
		return binfmt.Entry{}, err
	}
	return l.Entry, nil
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
	sort.Strings(pkgs)
	return pkgs, nil
}

// AddClaim records that pkg is about to register e. It is written before
// the kernel write, so that a crash in between leaves a claim for an
// entry that may be live, never a live entry without a claim.
func (s Store) AddClaim(pkg string, e binfmt.Entry) error {
	if err := ValidPackage(pkg); err != nil {
		return err
	}
	if err := binfmt.ValidName(e.Name); err != nil {
		return err
	}
	dir := filepath.Join(s.Dir, pkg, e.Name)
	for _, d := range []string{s.Dir, filepath.Join(s.Dir, pkg), dir} {
		if err := mkdirSafe(d); err != nil {
			return err
		}
	}
	return writeAtomic(dir, claimFile(e), []byte(e.Status()))
}

// DropClaims removes pkg's claims for the entry called name, except keep
// when it is not nil, and removes directories left empty, up to and
// including the state directory itself.
func (s Store) DropClaims(pkg, name string, keep *binfmt.Entry) error {
	if err := ValidPackage(pkg); err != nil {
		return err
	}
	if err := binfmt.ValidName(name); err != nil {
		return err
	}
	dir := filepath.Join(s.Dir, pkg, name)
	files, err := readDirNames(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return s.tidy(pkg)
	}
	if err != nil {
		return err
	}
	keepFile := ""
	if keep != nil {
		keepFile = claimFile(*keep)
	}
	for _, f := range files {
		if f == keepFile {
			continue
		}
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing record %q: %w", filepath.Join(dir, f), err)
		}
	}
	if err := syncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if keep == nil {
		return s.tidy(pkg, name)
	}
	return nil
}

// tidy removes empty record directories: the entry's, the package's and
// the state directory, so that nothing is left once a package is gone.
func (s Store) tidy(pkg string, name ...string) error {
	var dirs []string
	if len(name) > 0 {
		dirs = append(dirs, filepath.Join(s.Dir, pkg, name[0]))
	}
	dirs = append(dirs, filepath.Join(s.Dir, pkg), s.Dir)
	for _, d := range dirs {
		err := unix.Rmdir(d)
		if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			return nil
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("removing empty record directory %q: %w", d, err)
		}
		_ = syncDir(filepath.Dir(d))
	}
	return nil
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
	// A claim is a few hundred bytes; refuse anything absurd.
	if fi.Size() > 64<<10 {
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
