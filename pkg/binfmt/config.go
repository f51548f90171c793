package binfmt

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ConfigDirs are the binfmt.d directories in systemd's order of priority:
// a file in an earlier directory overrides a file of the same name in a
// later one (binfmt.d(5)).
var ConfigDirs = []string{
	"/etc/binfmt.d",
	"/run/binfmt.d",
	"/usr/local/lib/binfmt.d",
	"/usr/lib/binfmt.d",
}

// Config looks binfmt.d files up under Root, which is "" or "/" for the
// running system and a directory for a chroot or a test.
type Config struct {
	Root string
}

// File is the file that wins the lookup for one name.
type File struct {
	// Name is the file's base name, the key of the lookup.
	Name string
	// Path is the path as the system sees it, without Root.
	Path string
	// Masked is true for a symlink to /dev/null or an empty file; such a
	// file defines nothing and hides every file of that name below it.
	Masked bool
	// Shadowed lists the lower-priority paths of the same name.
	Shadowed []string
}

func (c Config) host(p string) string {
	if c.Root == "" || c.Root == "/" {
		return p
	}
	return joinPath(c.Root, p)
}

// Lookup finds the file called name (a base name such as
// "qemu-aarch64-static.conf") in ConfigDirs. It returns an error wrapping
// fs.ErrNotExist when no directory has it.
func (c Config) Lookup(name string) (File, error) {
	if name == "" || strings.Contains(name, "/") || name == "." || name == ".." {
		return File{}, errorf("looking up binfmt.d file %q: not a plain file name", name)
	}
	var f File
	for _, dir := range ConfigDirs {
		p := joinPath(dir, name)
		var st unix.Stat_t
		err := unix.Lstat(c.host(p), &st)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return File{}, errorf("looking up binfmt.d file %q: %w", p, &fs.PathError{Op: "lstat", Path: p, Err: err})
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			continue
		}
		if f.Path != "" {
			f.Shadowed = append(f.Shadowed, p)
			continue
		}
		masked, err := c.masked(p, &st)
		if err != nil {
			return File{}, err
		}
		f = File{Name: name, Path: p, Masked: masked}
	}
	if f.Path == "" {
		return File{}, errorf("looking up binfmt.d file %q in %s: %w", name, strings.Join(ConfigDirs, ", "), fs.ErrNotExist)
	}
	return f, nil
}

// masked reports whether p masks its name: a symlink to /dev/null, or a
// file that is empty or a character device once followed (systemd's
// null_or_empty_path). st is p's lstat. Plain system calls into a
// Stat_t: binfmtctl resolves every file it is given, in each rpm
// transaction, and os.Lstat allocates for each.
func (c Config) masked(p string, st *unix.Stat_t) (bool, error) {
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		target, err := readlink(c.host(p))
		if err != nil {
			return false, errorf("reading link %q: %w", p, err)
		}
		if target == "/dev/null" {
			return true, nil
		}
		var followed unix.Stat_t
		if err := unix.Stat(c.host(p), &followed); err != nil {
			// A dangling link is not a mask; reading it reports the error.
			return false, nil
		}
		st = &followed
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return true, nil
	case unix.S_IFREG:
		return st.Size == 0, nil
	}
	return false, nil
}

// Files lists every *.conf name in ConfigDirs with the file that wins for
// it, sorted by name: the set systemd-binfmt applies at boot.
func (c Config) Files() ([]File, error) {
	names := map[string]bool{}
	for _, dir := range ConfigDirs {
		ents, err := readDir(c.host(dir))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, errorf("listing %q: %w", dir, err)
		}
		for _, e := range ents {
			// systemd skips hidden files (hidden_or_backup_file).
			if strings.HasSuffix(e.Name(), ".conf") && !strings.HasPrefix(e.Name(), ".") && !e.IsDir() {
				names[e.Name()] = true
			}
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sortStrings(sorted)
	files := make([]File, 0, len(sorted))
	for _, n := range sorted {
		f, err := c.Lookup(n)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// Resolve finds the file an argument of systemd-binfmt FILE... names: an
// absolute path is used as it is, and a bare name is looked up.
func (c Config) Resolve(arg string) (File, error) {
	if !filepath.IsAbs(arg) {
		if strings.Contains(arg, "/") {
			return File{}, errorf("resolving %q: want an absolute path or a bare file name", arg)
		}
		return c.Lookup(arg)
	}
	var st unix.Stat_t
	if err := unix.Lstat(c.host(arg), &st); err != nil {
		return File{}, errorf("resolving binfmt.d file %q: %w", arg, &fs.PathError{Op: "lstat", Path: arg, Err: err})
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return File{}, errorf("resolving binfmt.d file %q: is a directory", arg)
	}
	masked, err := c.masked(arg, &st)
	if err != nil {
		return File{}, err
	}
	return File{Name: filepath.Base(arg), Path: arg, Masked: masked}, nil
}

// Load parses the file f. A masked file has no lines. Errors name
// f.Path and the line.
func (c Config) Load(f File) ([]Line, []error) {
	if f.Masked {
		return nil, nil
	}
	// Errors and lines name the path as the system sees it, not with
	// the root prefix.
	return parseFileAs(c.host(f.Path), f.Path)
}

// readDir is os.ReadDir without its sort: the names are collected into
// a set and sorted by Files, and os.ReadDir's slices.SortFunc over
// fs.DirEntry is a generic pdqsort of its own in the helper.
func readDir(dir string) ([]fs.DirEntry, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadDir(-1)
}
