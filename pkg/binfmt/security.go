package binfmt

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// CheckInterpreter checks e's interpreter under root before e is
// registered.
//
// With flag C (or O) the kernel runs the interpreter with the credentials
// of the binary it runs, setuid bits included, so whoever can replace the
// interpreter, or rename a directory above it, gains those credentials.
// The kernel resolves the path itself, later: at exec time in the process
// that runs the binary (or at registration, with F). So the path is
// walked here the way the kernel walks it, component by component and
// never cleaned up first, and such an entry is refused, with an error
// wrapping ErrUnsafe that names the offending path, unless:
//
//   - the interpreter is an absolute, canonical path: no "." or ".."
//     component, no empty one, no trailing slash. "/tmp/x/../../bin/i"
//     names whatever /tmp/x is at exec time, not /bin/i;
//   - the resolution never passes through /proc or any procfs mount,
//     whose magic links (/proc/self/cwd, /proc/PID/root, fd/N) the kernel
//     resolves per process, in the process that runs the binary;
//   - every directory the resolution passes through, every symlink on the
//     way and everything each symlink's target passes through, as it
//     stands, and the interpreter itself are owned by root and writable
//     by no one else.
//
// Without C or O, it returns warnings for problems the kernel reports
// itself, such as flag F with a missing interpreter; with C or O a
// missing interpreter is refused like an unsafe one.
func CheckInterpreter(root string, e Entry) (warnings []string, err error) {
	return newChecker(root).check(e)
}

// maxSymlinks is the kernel's MAXSYMLINKS: more links than this in one
// resolution fail with ELOOP.
const maxSymlinks = 40

// procSuperMagic is PROC_SUPER_MAGIC from linux/magic.h, the f_type
// statfs reports for procfs.
const procSuperMagic = 0x9fa0

// checker remembers the directories it judged during one run: all of
// qemu's entries share them, so each is looked at once. binfmtctl runs
// inside rpm transactions, where every allocation touches fresh memory,
// so lookups use plain system calls and the memo is a short slice.
type checker struct {
	root string
	dirs []judged
}

// judged is what judge found for one real path (a path with every
// symlink above its last component already followed).
type judged struct {
	path   string
	isDir  bool
	isLink bool
	target string // the link's target, as it stands
	err    error
}

func newChecker(root string) *checker {
	return &checker{root: root, dirs: make([]judged, 0, 8)}
}

func (c *checker) host(p string) string {
	if c.root == "" || c.root == "/" {
		return p
	}
	return joinPath(c.root, p)
}

func (c *checker) check(e Entry) (warnings []string, err error) {
	if e.HasFlag('C') || e.HasFlag('O') {
		// walk looks at the interpreter and every link to it, so a
		// missing interpreter is refused there.
		if err := c.walk(e.Interpreter); err != nil {
			var u *unsafeError
			if errors.As(err, &u) {
				return nil, errorf("entry %q with flags %s: %w: %s", e.Name, e.Flags, ErrUnsafe, u.why)
			}
			return nil, errorf("checking interpreter of %q: %w", e.Name, err)
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

// Not inlined: one copy for its many callers keeps binfmtctl small.
//
//go:noinline
func unsafef(format string, args ...any) error {
	return &unsafeError{fmt.Sprintf(format, args...)}
}

// canonical refuses an interpreter path the kernel would resolve
// differently from how it reads: anything but "/" followed by non-empty
// components other than "." and "..".
func canonical(p string) error {
	if !strings.HasPrefix(p, "/") {
		return unsafef("%q is not an absolute path", p)
	}
	if p == "/" {
		return unsafef("%q is a directory", p)
	}
	for rest := p[1:]; ; {
		comp, r, more := strings.Cut(rest, "/")
		switch comp {
		case "":
			return unsafef("%q has an empty component (a doubled or trailing slash); only a canonical path is accepted", p)
		case ".", "..":
			return unsafef("%q has a %q component: the kernel resolves it through whatever the path before it names when a program runs, so only a canonical path is accepted", p, comp)
		}
		if !more {
			return nil
		}
		rest = r
	}
}

// walk resolves the absolute interpreter path p under the root the way
// the kernel's path walk does (fs/namei.c): component by component, a
// symlink's target spliced in where the link was, an absolute target
// starting again at the root, ".." in a target going up from the real
// directory the walk is in. It judges the root, every directory it
// enters, every symlink it follows and the file it ends at.
func (c *checker) walk(p string) error {
	if err := canonical(p); err != nil {
		return err
	}
	if j := c.judge("/", true); j.err != nil {
		return j.err
	}
	cur := "/"    // the real directory the walk is in
	rest := p[1:] // what is left to resolve, relative to cur
	links := 0
	lastLink := "" // the last symlink followed, for errors
	for rest != "" {
		comp, r, _ := strings.Cut(rest, "/")
		var next string
		if links == 0 {
			// Still in p itself, which is canonical: the path so far is
			// a prefix of p, taken without building a new string
			// (binfmtctl checks every entry in each rpm transaction).
			next = p[:len(p)-len(rest)+len(comp)]
		}
		rest = r
		switch comp {
		case "", ".":
			continue
		case "..":
			// cur and everything above it were judged on the way down, so
			// its parent is one of them; at the root, ".." stays there.
			cur = filepath.Dir(cur)
			continue
		}
		if next == "" {
			next = cur + "/" + comp
			if cur == "/" {
				next = "/" + comp
			}
		}
		if next == "/proc" {
			via := ""
			if lastLink != "" {
				via = fmt.Sprintf(" (by way of the link %q)", lastLink)
			}
			return unsafef("%q goes through /proc%s, whose links the kernel resolves in the process that runs the program (magic links such as /proc/self/cwd)", p, via)
		}
		j := c.judge(next, rest != "")
		if j.err != nil {
			return j.err
		}
		if j.isLink {
			lastLink = next
			if links++; links > maxSymlinks {
				return errorf("resolving %q: too many levels of symbolic links", p)
			}
			t := j.target
			if strings.HasPrefix(t, "/") {
				cur, t = "/", t[1:]
			}
			if rest != "" {
				t += "/" + rest
			}
			rest = t
			continue
		}
		if rest != "" && !j.isDir {
			return unsafef("%q is not a directory", next)
		}
		cur = next
	}
	return nil
}

// judge looks at the real path p itself, never through a link: its
// owner, its mode, and for a directory the file system it is on. Paths
// the walk goes through (dir is true) are remembered.
func (c *checker) judge(p string, dir bool) judged {
	if dir {
		for _, j := range c.dirs {
			if j.path == p {
				return j
			}
		}
	}
	j := c.look(p)
	if dir {
		c.dirs = append(c.dirs, j)
	}
	return j
}

func (c *checker) look(p string) judged {
	j := judged{path: p}
	var st unix.Stat_t
	if err := unix.Lstat(c.host(p), &st); errors.Is(err, unix.ENOENT) {
		j.err = unsafef("%q does not exist", p)
		return j
	} else if err != nil {
		j.err = errorf("checking %q: %w", p, &fs.PathError{Op: "lstat", Path: p, Err: err})
		return j
	}
	if st.Uid != 0 {
		j.err = unsafef("%q is owned by uid %d, not root", p, st.Uid)
		return j
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		// Symlinks have mode 0777 on Linux and cannot be written
		// through; what they lead to is judged as the walk goes on.
		target, err := readlink(c.host(p))
		if err != nil {
			j.err = errorf("reading link %q: %w", p, err)
			return j
		}
		if target == "" {
			j.err = unsafef("%q is an empty symbolic link", p)
			return j
		}
		j.isLink, j.target = true, target
		return j
	case unix.S_IFDIR:
		j.isDir = true
		// A link inside procfs can be a magic link, which lstat shows as
		// root's symlink and which resolves per process: refuse every
		// procfs directory, wherever it is mounted.
		var sfs unix.Statfs_t
		if err := unix.Statfs(c.host(p), &sfs); err != nil {
			j.err = errorf("checking %q: %w", p, &fs.PathError{Op: "statfs", Path: p, Err: err})
			return j
		}
		if sfs.Type == procSuperMagic {
			j.err = unsafef("%q is on procfs, whose links the kernel resolves in the process that runs the program (magic links)", p)
			return j
		}
	}
	if st.Mode&0o022 != 0 {
		j.err = unsafef("%q is writable by group or others (mode %04o)", p, st.Mode&0o777)
	}
	return j
}
