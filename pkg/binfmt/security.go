package binfmt

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// CheckInterpreter checks e's interpreter under root before e is
// registered.
//
// With flag C (or O) the kernel runs the interpreter with the credentials
// of the binary it runs, setuid bits included, so whoever can replace the
// interpreter, or rename a directory above it, gains those credentials.
// Such an entry is refused, with an error wrapping ErrUnsafe that names
// the offending path, unless the interpreter and every directory above it
// are owned by root and writable by no one else.
//
// Without C or O, it returns warnings for problems the kernel reports
// itself, such as flag F with a missing interpreter; with C or O a
// missing interpreter is refused like an unsafe one.
func CheckInterpreter(root string, e Entry) (warnings []string, err error) {
	return newChecker(root).check(e)
}

// checker remembers what it found during one run: entries share their
// directories (all of qemu's share all of them), so each path is looked
// at once. binfmtctl runs inside rpm transactions, where every allocation
// touches fresh memory, so lookups use plain system calls into reused
// structures.
type checker struct {
	root     string
	verdicts map[string]verdict
}

// verdict is what resolve found for one path.
type verdict struct {
	real string // the path with every symlink on the way followed
	err  error
}

func newChecker(root string) *checker {
	return &checker{root: root, verdicts: map[string]verdict{}}
}

func (c *checker) host(p string) string {
	if c.root == "" || c.root == "/" {
		return p
	}
	return filepath.Join(c.root, p)
}

func (c *checker) check(e Entry) (warnings []string, err error) {
	if e.HasFlag('C') || e.HasFlag('O') {
		// resolve looks at the interpreter and every link to it, so a
		// missing interpreter is refused there.
		if _, err := c.resolve(filepath.Clean(e.Interpreter), 0); err != nil {
			var u *unsafeError
			if errors.As(err, &u) {
				return nil, fmt.Errorf("entry %q with flags %s: %w: %s", e.Name, e.Flags, ErrUnsafe, u.why)
			}
			return nil, fmt.Errorf("checking interpreter of %q: %w", e.Name, err)
		}
		return nil, nil
	}
	var st unix.Stat_t
	if err := unix.Stat(c.host(e.Interpreter), &st); errors.Is(err, unix.ENOENT) {
		if e.HasFlag('F') {
			warnings = append(warnings, fmt.Sprintf("entry %q: interpreter %q does not exist; the kernel refuses flag F without it", e.Name, e.Interpreter))
		} else {
			warnings = append(warnings, fmt.Sprintf("entry %q: interpreter %q does not exist; matching programs will fail to run", e.Name, e.Interpreter))
		}
	}
	return warnings, nil
}

// unsafeError says which path makes an interpreter unsafe, and why.
type unsafeError struct{ why string }

func (e *unsafeError) Error() string { return e.why }

// resolve checks everything whose owner and mode decide who controls the
// absolute, clean path p: each directory above it, p itself, and the
// same for where each symlink on the way leads, relative to the root. It
// returns the path p really names.
func (c *checker) resolve(p string, depth int) (string, error) {
	if v, ok := c.verdicts[p]; ok {
		return v.real, v.err
	}
	real, err := c.resolveOnce(p, depth)
	c.verdicts[p] = verdict{real, err}
	return real, err
}

func (c *checker) resolveOnce(p string, depth int) (string, error) {
	if depth > 40 {
		return "", fmt.Errorf("resolving %q: too many levels of symbolic links", p)
	}
	// q is p with its directory's symlinks followed, so that the lstat
	// below looks at p itself inside the root, never through a link.
	q := p
	if p != "/" {
		dir, err := c.resolve(filepath.Dir(p), depth)
		if err != nil {
			return "", err
		}
		q = filepath.Join(dir, filepath.Base(p))
	}
	var st unix.Stat_t
	if err := unix.Lstat(c.host(q), &st); errors.Is(err, unix.ENOENT) {
		return "", &unsafeError{fmt.Sprintf("%q does not exist", q)}
	} else if err != nil {
		return "", fmt.Errorf("checking %q: %w", q, &fs.PathError{Op: "lstat", Path: q, Err: err})
	}
	if st.Uid != 0 {
		return "", &unsafeError{fmt.Sprintf("%q is owned by uid %d, not root", q, st.Uid)}
	}
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	// Symlinks have mode 0777 on Linux and cannot be written through.
	if !isLink && st.Mode&0o022 != 0 {
		return "", &unsafeError{fmt.Sprintf("%q is writable by group or others (mode %04o)", q, st.Mode&0o777)}
	}
	if !isLink {
		return q, nil
	}
	target, err := readlink(c.host(q))
	if err != nil {
		return "", fmt.Errorf("reading link %q: %w", q, err)
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(q), target)
	}
	return c.resolve(filepath.Clean(target), depth+1)
}
