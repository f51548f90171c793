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

// checker remembers the directories it looked at during one run: all of
// qemu's entries share them, so each is looked at once. binfmtctl runs
// inside rpm transactions, where every allocation touches fresh memory,
// so lookups use plain system calls and the memo is a short slice.
type checker struct {
	root string
	dirs []verdict
}

// verdict is what resolve found for one path.
type verdict struct {
	path string
	real string // the path with every symlink on the way followed
	err  error
}

func newChecker(root string) *checker {
	return &checker{root: root, dirs: make([]verdict, 0, 8)}
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

// resolveDir is resolve for a directory above a path, remembered. The
// directories above p are resolved first, from the top down, so that
// each finds its parent remembered and resolve never recurses deeper
// than one directory: a deep recursion would grow the goroutine's stack,
// which costs more than the lookups it saves.
func (c *checker) resolveDir(p string, depth int) (string, error) {
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		d := p[:i]
		if _, ok := c.remembered(d); ok {
			continue
		}
		real, err := c.resolve(d, depth)
		c.dirs = append(c.dirs, verdict{d, real, err})
	}
	v, _ := c.remembered(p)
	return v.real, v.err
}

func (c *checker) remembered(p string) (verdict, bool) {
	for _, v := range c.dirs {
		if v.path == p {
			return v, true
		}
	}
	return verdict{}, false
}

// resolve checks everything whose owner and mode decide who controls the
// absolute, clean path p: each directory above it, p itself, and the
// same for where each symlink on the way leads, relative to the root. It
// returns the path p really names.
func (c *checker) resolve(p string, depth int) (string, error) {
	if depth > 40 {
		return "", fmt.Errorf("resolving %q: too many levels of symbolic links", p)
	}
	// q is p with its directory's symlinks followed, so that the lstat
	// below looks at p itself inside the root, never through a link.
	q := p
	if p != "/" {
		parent := filepath.Dir(p)
		dir, err := c.resolveDir(parent, depth)
		if err != nil {
			return "", err
		}
		if dir != parent {
			q = filepath.Join(dir, filepath.Base(p))
		}
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
