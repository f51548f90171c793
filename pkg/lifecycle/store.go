package lifecycle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// DefaultStateDir is where the record lives on a running system.
const DefaultStateDir = "/var/lib/binfmtctl"

// DefaultLockFile is the lock binfmtctl takes on a running system: /run
// is root's alone, and emptied at boot.
const DefaultLockFile = "/run/binfmtctl.lock"

// ErrUnsafeState is returned when the state directory, a record file or
// the lock file is a symlink, is not a directory or regular file as it
// should be (a FIFO would block the reader), or is owned by neither root
// nor the user running binfmtctl (root, in every hook), and when the
// state directory or a record is writable by group or others (a lock
// file that is is made 0600 instead): so that no hostile link or file
// can make the helper read or write elsewhere as root, or trust claims
// someone else planted. The shell %postun, which runs as root, refuses
// the same records, and as ParseRecord it trusts none without the header
// and no claim on a name binfmt.ValidName refuses
// (TestForeignRecordShellAndGoAgree).
var ErrUnsafeState = errors.New("unsafe state directory")

// ErrRecordTooLarge is returned by Save for a record larger than
// MaxRecordSize, which could not be read back.
var ErrRecordTooLarge = errors.New("record too large")

// ErrLockTimeout is returned by Lock when another binfmtctl holds the
// lock for longer than the Store's LockTimeout.
var ErrLockTimeout = errors.New("timed out waiting for the binfmtctl lock")

// MaxRecordSize is the largest record binfmtctl writes, and so reads.
// A claim is at most a few KiB (the register string is at most 1920
// bytes), and a few hundred bytes for qemu's entries: 16 MiB is some
// 25,000 such entries, far more than any package ships, and Save refuses
// more, while the entries are still manageable, rather than write what
// could not be read back.
var MaxRecordSize int64 = 16 << 20

// DefaultLockTimeout bounds every wait for the lock: a hook that cannot
// get it in that time says so and gives up, so nothing can hang an rpm
// transaction (which ignores SIGTERM) for good.
const DefaultLockTimeout = 10 * time.Second

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
	// LockFile is the file Lock locks; "" means Dir+".lock". binfmtctl
	// uses /run/binfmtctl.lock. Only root may open it: a lock file that
	// anyone can open, as /var/lib was, lets any user hang every hook.
	LockFile string
	// LockTimeout bounds the wait for the lock; 0 means
	// DefaultLockTimeout.
	LockTimeout time.Duration
}

// recordHeader starts every record; the number is the format's version.
const recordHeader = "# binfmtctl record 1\n"

// Claims maps an entry name to the definitions a package claims for it.
type Claims map[string][]binfmt.Entry

// Owns reports whether live is one of the package's claims.
//
// Not inlined: one copy for its many callers keeps binfmtctl small.
//
//go:noinline
func (c Claims) Owns(l binfmt.Live) bool {
	for _, e := range c[l.Name] {
		if l.Matches(e) {
			return true
		}
	}
	return false
}

// Names returns the claimed entry names, sorted.
//
// Not inlined: one copy for its many callers keeps binfmtctl small.
//
//go:noinline
func (c Claims) Names() []string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sortStrings(names)
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
//
// Not inlined: one copy for its many callers keeps binfmtctl small.
//
//go:noinline
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
		return errorf("package name %q is not valid", pkg)
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
		return errorf("%w: %q is a symlink", ErrUnsafeState, p)
	}
	if !fi.IsDir() {
		return errorf("%w: %q is not a directory", ErrUnsafeState, p)
	}
	// os.Lstat fills a syscall.Stat_t (not x/sys/unix's type); without
	// owner information the directory is refused, never assumed safe.
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return errorf("%w: %q: no owner information", ErrUnsafeState, p)
	}
	if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return errorf("%w: %q is owned by uid %d, not root", ErrUnsafeState, p, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return errorf("%w: %q is writable by group or others (mode %04o)", ErrUnsafeState, p, fi.Mode().Perm())
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
	p := joinPath(s.Dir, pkg)
	data, err := readNoFollow(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Claims{}, nil
	}
	if err != nil {
		return nil, err
	}
	c, err := ParseRecord(data)
	if err != nil {
		return c, errorf("record %q: %w", p, err)
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
		return c, errorf("%w: no record header", ErrBadRecord)
	}
	if !strings.HasPrefix(text, recordHeader) {
		first, _, _ := strings.Cut(text, "\n")
		return c, errorf("%w: unknown record version %q", ErrBadRecord, first)
	}
	// A claim starts at a line "== NAME", and only at the start of a
	// line: names and interpreters may contain "== " themselves. The
	// shell reader in scriptlets/postun.sh reads it line by line too.
	sections := strings.Split("\n"+text[len(recordHeader):], "\n== ")
	var errs []error
	if strings.TrimSpace(sections[0]) != "" {
		errs = append(errs, errorf("%w: text before the first claim", ErrBadRecord))
	}
	for i, sec := range sections[1:] {
		name, body, ok := strings.Cut(sec, "\n")
		// Render ends every claim with a newline; the separator took it
		// from all but the last. A last claim without one was cut inside
		// a line, where a shorter magic or mask would still parse.
		if last := i == len(sections)-2; !ok || last && !strings.HasSuffix(body, "\n") {
			errs = append(errs, errorf("%w: claim %q is cut short", ErrBadRecord, name))
			continue
		}
		if err := binfmt.ValidName(name); err != nil {
			errs = append(errs, errorf("%w: %v", ErrBadRecord, err))
			continue
		}
		e, err := ParseClaim(name, []byte(body))
		if err != nil {
			errs = append(errs, errorf("%w: %v", ErrBadRecord, err))
			continue
		}
		c.Add(e)
	}
	return c, joinErrors(errs)
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
		err := os.Remove(joinPath(s.Dir, pkg))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return errorf("removing record %q: %w", joinPath(s.Dir, pkg), err)
		}
		if err == nil {
			_ = syncDir(s.Dir)
		}
		if err := unix.Rmdir(s.Dir); err == nil {
			_ = syncDir(filepath.Dir(s.Dir))
		}
		return nil
	}
	data := c.Render()
	if int64(len(data)) > MaxRecordSize {
		return errorf("%w: the record of %s would be %d bytes for %d entries, more than the %d binfmtctl reads back; nothing registered", ErrRecordTooLarge, pkg, len(data), len(c), MaxRecordSize)
	}
	if err := mkdirSafe(s.Dir); err != nil {
		return err
	}
	return writeAtomic(s.Dir, pkg, data, true)
}

func readDirNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, errorf("listing %q: %w", dir, err)
	}
	sortStrings(names)
	return names, nil
}

// readNoFollow reads a record file, refusing a symlink in its place, and
// anything but a regular file of root's (or the caller's) that group and
// others cannot write: the claims in it decide what is unregistered. It
// opens with O_NONBLOCK and checks the type with fstat before reading, so
// a FIFO planted in its place cannot block the reader.
func readNoFollow(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, errorf("%w: record %q is a symlink", ErrUnsafeState, p)
		}
		return nil, errorf("reading record %q: %w", p, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, errorf("reading record %q: %w", p, err)
	}
	if err := checkFile("record", p, &st); err != nil {
		return nil, err
	}
	if st.Size > MaxRecordSize {
		return nil, errorf("reading record %q: %d bytes is more than the %d binfmtctl writes", p, st.Size, MaxRecordSize)
	}
	buf := make([]byte, st.Size)
	n := 0
	for n < len(buf) {
		m, err := unix.Pread(fd, buf[n:], int64(n))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, errorf("reading record %q: %w", p, err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	return buf[:n], nil
}

// checkFile refuses a state file that is not a regular file, is owned by
// neither root nor the caller, or is writable by group or others.
func checkFile(what, p string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return errorf("%w: %s %q is not a regular file", ErrUnsafeState, what, p)
	}
	if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return errorf("%w: %s %q is owned by uid %d, not root", ErrUnsafeState, what, p, st.Uid)
	}
	if st.Mode&0o022 != 0 {
		return errorf("%w: %s %q is writable by group or others (mode %04o)", ErrUnsafeState, what, p, st.Mode&0o7777)
	}
	return nil
}

func mkdirSafe(d string) error {
	err := unix.Mkdir(d, 0o755)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return errorf("creating record directory %q: %w", d, err)
	}
	if err == nil {
		// Mkdir honours the umask; the record must be readable by all
		// (status) and writable by root alone.
		if err := unix.Chmod(d, 0o755); err != nil {
			return errorf("creating record directory %q: %w", d, err)
		}
		_ = syncDir(filepath.Dir(d))
	}
	return checkDir(d)
}

// writeAtomic writes name in dir through a temporary file, fsync and
// rename, then fsyncs dir, so a crash leaves either the old file or the
// new one, never a torn one.
// writeAtomic replaces dir/name with data through a temporary file and a
// rename, so that a reader, or a run killed midway, sees the old bytes or
// the new ones. durable adds the fsyncs that make it survive a crash of
// the system too: the records need them, the transaction state does not.
func writeAtomic(dir, name string, data []byte, durable bool) error {
	tmp := joinPath(dir, "."+name+".tmp")
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return errorf("writing record %q: %w", tmp, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, werr := f.Write(data)
	if werr == nil && durable {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return errorf("writing record %q: %w", tmp, werr)
	}
	if err := os.Rename(tmp, joinPath(dir, name)); err != nil {
		_ = os.Remove(tmp)
		return errorf("writing record %q: %w", joinPath(dir, name), err)
	}
	if !durable {
		return nil
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

// Lock takes an exclusive lock that serialises hooks, sync and prune.
// It locks LockFile, a file only root can open (mode 0600 in a
// directory only root can write), so no other user can take the lock
// and hang a transaction: flock needs an open file, and an O_PATH one
// does not do. The wait is bounded by LockTimeout; past it Lock returns
// an error wrapping ErrLockTimeout. The file is created on first use and
// never removed, because removing a lock file races with its waiters.
func (s Store) Lock() (unlock func(), err error) {
	p := s.LockFile
	if p == "" {
		p = filepath.Clean(s.Dir) + ".lock"
	}
	timeout := s.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	open := func() (int, error) {
		// O_NONBLOCK: a FIFO in its place must not block the open.
		return unix.Open(p, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	}
	fd, err := open()
	if errors.Is(err, unix.ENOENT) {
		// A bare root (a fresh image) may have no /run or /var/lib yet.
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, errorf("locking %q: %w", p, err)
		}
		fd, err = open()
	}
	if errors.Is(err, unix.ELOOP) {
		return nil, errorf("%w: lock file %q is a symlink", ErrUnsafeState, p)
	}
	if err != nil {
		return nil, errorf("locking %q: %w", p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, errorf("locking %q: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		unix.Close(fd)
		// The same words as for a record; the mode is fixed below.
		st.Mode &^= 0o022
		return nil, checkFile("lock file", p, &st)
	}
	if st.Mode&0o077 != 0 {
		// Readable by others, someone else could open and lock it.
		if err := unix.Fchmod(fd, 0o600); err != nil {
			unix.Close(fd)
			return nil, errorf("locking %q: making it root's alone: %w", p, err)
		}
	}
	deadline := time.Now().Add(timeout)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Close(fd) }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			unix.Close(fd)
			return nil, errorf("locking %q: %w", p, err)
		}
		if time.Now().After(deadline) {
			unix.Close(fd)
			return nil, errorf("%w: %s is held by another binfmtctl for more than %v", ErrLockTimeout, p, timeout)
		}
		time.Sleep(wait)
	}
}
