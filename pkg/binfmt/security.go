package binfmt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
// It returns warnings for problems the kernel reports itself, such as
// flag F with a missing interpreter.
func CheckInterpreter(root string, e Entry) (warnings []string, err error) {
	return newChecker(root).check(e)
}

// checker remembers what it looked up during one run: entries share their
// directories (all of qemu's share all of them), so each path is looked at
// once.
type checker struct {
	root  string
	infos map[string]lstatResult
}

type lstatResult struct {
	fi  fs.FileInfo
	err error
}

func newChecker(root string) *checker {
	return &checker{root: root, infos: map[string]lstatResult{}}
}

func (c *checker) host(p string) string {
	if c.root == "" || c.root == "/" {
		return p
	}
	return filepath.Join(c.root, p)
}

func (c *checker) lstat(p string) (fs.FileInfo, error) {
	r, ok := c.infos[p]
	if !ok {
		r.fi, r.err = os.Lstat(c.host(p))
		c.infos[p] = r
	}
	return r.fi, r.err
}

func (c *checker) check(e Entry) (warnings []string, err error) {
	host := c.host
	if _, statErr := os.Stat(host(e.Interpreter)); errors.Is(statErr, fs.ErrNotExist) {
		if e.HasFlag('F') {
			warnings = append(warnings, fmt.Sprintf("entry %q: interpreter %q does not exist; the kernel refuses flag F without it", e.Name, e.Interpreter))
		} else {
			warnings = append(warnings, fmt.Sprintf("entry %q: interpreter %q does not exist; matching programs will fail to run", e.Name, e.Interpreter))
		}
	}
	if !e.HasFlag('C') && !e.HasFlag('O') {
		return warnings, nil
	}
	paths, err := c.chain(e.Interpreter)
	if err != nil {
		return warnings, fmt.Errorf("checking interpreter of %q: %w", e.Name, err)
	}
	for _, p := range paths {
		fi, err := c.lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return warnings, fmt.Errorf("entry %q with flags %s: %w: %q does not exist", e.Name, e.Flags, ErrUnsafe, p)
		}
		if err != nil {
			return warnings, fmt.Errorf("checking %q for entry %q: %w", p, e.Name, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return warnings, fmt.Errorf("checking %q for entry %q: no owner information", p, e.Name)
		}
		if st.Uid != 0 {
			return warnings, fmt.Errorf("entry %q with flags %s: %w: %q is owned by uid %d, not root", e.Name, e.Flags, ErrUnsafe, p, st.Uid)
		}
		// Symlinks have mode 0777 on Linux and cannot be written through.
		if fi.Mode()&fs.ModeSymlink == 0 && fi.Mode().Perm()&0o022 != 0 {
			return warnings, fmt.Errorf("entry %q with flags %s: %w: %q is writable by group or others (mode %04o)", e.Name, e.Flags, ErrUnsafe, p, fi.Mode().Perm())
		}
	}
	return warnings, nil
}

// chain lists every path whose owner and mode decide who controls p: p
// itself, each directory above it, and the same for each symlink target
// on the way.
func (c *checker) chain(p string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	var walk func(p string, depth int) error
	walk = func(p string, depth int) error {
		if depth > 40 {
			return fmt.Errorf("resolving %q: too many levels of symbolic links", p)
		}
		p = filepath.Clean(p)
		for q := p; ; q = filepath.Dir(q) {
			if !seen[q] {
				seen[q] = true
				out = append(out, q)
			}
			if q == "/" {
				break
			}
		}
		// Follow symlinks in every component, relative to root.
		parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
		cur := "/"
		for i, part := range parts {
			next := filepath.Join(cur, part)
			fi, err := c.lstat(next)
			if err != nil {
				return nil
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				target, err := os.Readlink(c.host(next))
				if err != nil {
					return fmt.Errorf("reading link %q: %w", next, err)
				}
				if !filepath.IsAbs(target) {
					target = filepath.Join(cur, target)
				}
				rest := filepath.Join(append([]string{target}, parts[i+1:]...)...)
				return walk(rest, depth+1)
			}
			cur = next
		}
		return nil
	}
	if err := walk(p, 0); err != nil {
		return nil, err
	}
	return out, nil
}
