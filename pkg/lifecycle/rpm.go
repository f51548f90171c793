package lifecycle

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Manifest is what the rpm database records for one installed package.
type Manifest struct {
	Name  string
	NEVRA string
	// Epoch, Version and Release are the header's own (the epoch as a
	// number, 0 without one), for matching a NEVRA exactly; empty when
	// the query output did not carry them.
	Epoch, Version, Release string
	// InstallTID is the id of the transaction that installed it, and
	// Instance its header's number in the database: the instance a
	// %post runs for has the highest pair. (rpm's transaction id is the
	// time in seconds, so two transactions can share one.)
	InstallTID, Instance int64
	Files                []string
}

// Querier reads installed packages from the rpm database.
type Querier interface {
	// Manifest returns the manifest of the installed package with this
	// exact NEVRA.
	Manifest(nevra string) (Manifest, error)
	// Installed returns the manifests of every installed package called
	// name (several during an upgrade), or none.
	Installed(name string) ([]Manifest, error)
	// Owners returns, for each of paths, the names of the installed
	// packages that own it (none: nobody's). A path missing from the
	// result is of unknown owner.
	Owners(paths []string) (map[string][]string, error)
}

// ErrNotInstalled is returned when rpm does not know the package.
var ErrNotInstalled = errors.New("package is not installed")

// RPM queries the rpm database with the rpm command, which works inside
// every scriptlet, the nested query included (rpm 4.18, see DESIGN.md).
type RPM struct {
	// Root is passed as --root unless it is "" or "/".
	Root string
	// Command is the rpm binary; "" means "rpm" from PATH.
	Command string
}

// queryFormat prints one header line per package, then its files. The
// header starts with "@", and file names always start with "/", so the
// two are never confused. Its fields are the name, the NEVRA for
// messages, then the epoch, version, release, install transaction and
// database instance that an exact match compares.
const queryFormat = `@%{NAME} %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH} %{EPOCHNUM} %{VERSION} %{RELEASE} %{INSTALLTID} %{DBINSTANCE}\n[%{FILENAMES}\n]`

// command is the rpm program to run: Command, or "rpm" from $PATH.
func (r RPM) command() string {
	if r.Command == "" {
		return "rpm"
	}
	return r.Command
}

//go:noinline
func (r RPM) query(arg string) ([]Manifest, error) {
	return r.queryArgs(arg, "-q", "--qf", queryFormat, "--", arg)
}

func (r RPM) queryArgs(what string, qargs ...string) ([]Manifest, error) {
	arg := what
	cmd := r.command()
	args := []string{}
	if r.Root != "" && r.Root != "/" {
		args = append(args, "--root", r.Root)
	}
	// "--" keeps a NEVRA that starts with "-" from being read as an
	// option; exec never involves a shell, so metacharacters are inert.
	args = append(args, qargs...)
	stdout, stderr, err := run(cmd, args)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errorf("querying rpm for %q: %s not found in $PATH: is rpm installed?", arg, cmd)
		}
		if strings.Contains(stdout.String()+stderr.String(), "is not installed") {
			return nil, errorf("querying rpm for %q: %w", arg, ErrNotInstalled)
		}
		return nil, errorf("querying rpm for %q: %v: %s", arg, err, strings.TrimSpace(stderr.String()))
	}
	return ParseManifests(stdout)
}

// Manifest implements Querier. The package is looked up by its name
// alone and the instances are filtered on version, release and, when
// nevra carries one, epoch: rpm's own lookup of "x-1-1" matches a package
// called "x-1" before x 1-1. Without an epoch (older callers, and the
// scriptlets of a package without one), of the instances left the ones
// the latest transaction installed win: after an epoch bump, 0:1-1 and
// 1:1-1 are both in the database while the new one's %post runs.
func (r RPM) Manifest(nevra string) (Manifest, error) {
	want, err := ParseNEVR(nevra)
	if err != nil {
		return Manifest{}, errorf("querying rpm for %q: %w", nevra, err)
	}
	all, err := r.query(want.Name)
	if errors.Is(err, ErrNotInstalled) {
		return Manifest{}, errorf("querying rpm for %q: %w", nevra, ErrNotInstalled)
	}
	if err != nil {
		return Manifest{}, err
	}
	return pickManifest(nevra, want, all)
}

// pickManifest keeps the instances in ms that are exactly want, as
// Manifest describes, and merges their files.
func pickManifest(nevra string, want NEVR, ms []Manifest) (Manifest, error) {
	var match []Manifest
	var latest Manifest
	for _, m := range ms {
		if m.Name != want.Name || m.Version != want.Version || m.Release != want.Release {
			continue
		}
		if want.Epoch != "" && m.Epoch != want.Epoch {
			continue
		}
		match = append(match, m)
		if m.InstallTID > latest.InstallTID || m.InstallTID == latest.InstallTID && m.Instance > latest.Instance {
			latest = m
		}
	}
	if len(match) == 0 {
		return Manifest{}, errorf("querying rpm for %q: %w", nevra, ErrNotInstalled)
	}
	// A reinstall has two instances of one NEVRA in the database for a
	// moment, and a multilib package one per arch; both share one name
	// and one set of binfmt.d files, so merge them. Instances with
	// another epoch than the latest are the old side of an upgrade.
	var m Manifest
	for _, o := range match {
		if want.Epoch == "" && o.Epoch != latest.Epoch {
			continue
		}
		if m.Name == "" {
			m = o
			m.Files = append([]string(nil), o.Files...)
			continue
		}
		m.Files = append(m.Files, o.Files...)
	}
	m.Files = dedupe(m.Files)
	return m, nil
}

// NEVR is a package's name, epoch, version and release.
type NEVR struct {
	Name, Epoch, Version, Release string
}

// ParseNEVR splits name-[epoch:]version-release, as NameOf does. Epoch
// is "" when none is given.
func ParseNEVR(s string) (NEVR, error) {
	name, err := NameOf(s)
	if err != nil {
		return NEVR{}, err
	}
	vr := strings.Split(s[len(name)+1:], "-")
	n := NEVR{Name: name, Version: vr[0], Release: vr[1]}
	if e, v, ok := strings.Cut(n.Version, ":"); ok {
		if e == "" || strings.Trim(e, "0123456789") != "" || v == "" {
			return NEVR{}, errorf("%q is not name-[epoch:]version-release: bad epoch %q", s, e)
		}
		n.Epoch, n.Version = strings.TrimLeft(e, "0"), v
		if n.Epoch == "" {
			n.Epoch = "0"
		}
	}
	if strings.Contains(n.Release, ":") || strings.Contains(n.Version, ":") {
		return NEVR{}, errorf("%q is not name-[epoch:]version-release: stray \":\"", s)
	}
	return n, nil
}

// Owners implements Querier with one rpm -qf for all paths. The query
// prints each owner's whole file list, which is how a line of output is
// tied to the path it answers for.
func (r RPM) Owners(paths []string) (map[string][]string, error) {
	if len(paths) == 0 {
		return map[string][]string{}, nil
	}
	cmd := r.command()
	args := []string{}
	if r.Root != "" && r.Root != "/" {
		args = append(args, "--root", r.Root)
	}
	args = append(append(args, "-qf", "--qf", queryFormat, "--"), paths...)
	stdout, stderr, err := run(cmd, args)
	if err != nil && stdout == nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errorf("asking rpm who owns %s: %s not found in $PATH: is rpm installed?", strings.Join(paths, " "), cmd)
		}
		return nil, errorf("asking rpm who owns %s: %v", strings.Join(paths, " "), err)
	}
	owners, perr := ParseOwners(stdout.String(), paths)
	if perr == nil && err != nil && len(owners) == 0 {
		// rpm exits non-zero for a file nobody owns too; with no answer
		// at all, it failed.
		return nil, errorf("asking rpm who owns %s: %v: %s", strings.Join(paths, " "), err, firstLine(stderr.String()))
	}
	if perr != nil {
		return nil, errorf("asking rpm who owns %s: %w: %s", strings.Join(paths, " "), perr, firstLine(stderr.String()))
	}
	return owners, nil
}

// ParseOwners reads the output of rpm -qf --qf queryFormat for paths:
// each path that some header's file list holds is owned by that
// package, and each path rpm says "is not owned by any package" is
// nobody's. A path rpm said nothing about is left out: unknown.
func ParseOwners(out string, paths []string) (map[string][]string, error) {
	res := map[string][]string{}
	asked := map[string]bool{}
	for _, p := range paths {
		asked[p] = true
	}
	var rest []string
	for _, line := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(line, "file "); ok {
			if p, ok := strings.CutSuffix(p, " is not owned by any package"); ok && asked[p] {
				if _, seen := res[p]; !seen {
					res[p] = []string{}
				}
				continue
			}
		}
		rest = append(rest, line)
	}
	ms, err := ParseManifests(strings.NewReader(strings.Join(rest, "\n")))
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		for _, f := range m.Files {
			if !asked[f] {
				continue
			}
			found := false
			for _, o := range res[f] {
				found = found || o == m.Name
			}
			if !found {
				res[f] = append(res[f], m.Name)
			}
		}
	}
	return res, nil
}

// Installed implements Querier.
func (r RPM) Installed(name string) ([]Manifest, error) {
	ms, err := r.query(name)
	if errors.Is(err, ErrNotInstalled) {
		return nil, nil
	}
	return ms, err
}

// ParseManifests parses the output of queryFormat.
func ParseManifests(r io.Reader) ([]Manifest, error) {
	var ms []Manifest
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if h, ok := strings.CutPrefix(line, "@"); ok {
			f := strings.Split(h, " ")
			if len(f) != 2 && len(f) != 7 || f[0] == "" || f[1] == "" {
				return nil, errorf("parsing rpm query output: line %d: bad header %q", n, h)
			}
			m := Manifest{Name: f[0], NEVRA: f[1]}
			if len(f) == 7 {
				tid, err1 := strconv.ParseInt(f[5], 10, 64)
				inst, err2 := strconv.ParseInt(f[6], 10, 64)
				if f[2] == "" || f[3] == "" || f[4] == "" || err1 != nil || err2 != nil {
					return nil, errorf("parsing rpm query output: line %d: bad header %q", n, h)
				}
				m.Epoch, m.Version, m.Release, m.InstallTID, m.Instance = f[2], f[3], f[4], tid, inst
			}
			ms = append(ms, m)
			continue
		}
		if line == "" || line == "(none)" {
			continue
		}
		if len(ms) == 0 {
			return nil, errorf("parsing rpm query output: line %d: file %q before any package header", n, line)
		}
		if !strings.HasPrefix(line, "/") {
			return nil, errorf("parsing rpm query output: line %d: file %q is not an absolute path", n, line)
		}
		ms[len(ms)-1].Files = append(ms[len(ms)-1].Files, line)
	}
	if err := sc.Err(); err != nil {
		return nil, errorf("parsing rpm query output: %w", err)
	}
	return ms, nil
}

// ConfNames returns the base names of the binfmt.d files among files:
// *.conf files directly inside one of binfmt.ConfigDirs.
func ConfNames(files []string, dirs []string) []string {
	var names []string
	seen := map[string]bool{}
	for _, f := range files {
		f = filepath.Clean(f)
		if !strings.HasSuffix(f, ".conf") {
			continue
		}
		dir, base := filepath.Dir(f), filepath.Base(f)
		for _, d := range dirs {
			if dir == d && !seen[base] {
				seen[base] = true
				names = append(names, base)
			}
		}
	}
	return names
}

// Not inlined: one copy for its many callers keeps binfmtctl small.
//
//go:noinline
func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// run runs name with args and returns its output. It uses os.StartProcess
// rather than os/exec, which would add a tenth to the helper's size for
// this one call; no shell is ever involved.
func run(name string, args []string) (stdout, stderr *bytes.Buffer, err error) {
	path, err := lookPath(name)
	if err != nil {
		return nil, nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, nil, err
	}
	p, err := os.StartProcess(path, append([]string{name}, args...), &os.ProcAttr{
		Files: []*os.File{nil, outW, errW},
	})
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, nil, err
	}
	stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
	done := make(chan error, 1)
	go func() {
		_, err := stderr.ReadFrom(errR)
		done <- err
	}()
	_, rerr := stdout.ReadFrom(outR)
	if err := <-done; rerr == nil {
		rerr = err
	}
	outR.Close()
	errR.Close()
	st, err := p.Wait()
	if err != nil {
		return stdout, stderr, err
	}
	if !st.Success() {
		return stdout, stderr, errorf("%s", st)
	}
	return stdout, stderr, rerr
}

// lookPath finds name in the absolute directories of $PATH, or takes it
// as it is when it has a slash.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/bin:/bin:/usr/sbin:/sbin"
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			// An empty or relative element means the working
			// directory, which may be a user's: root must not run
			// that user's "rpm" (os/exec's ErrDot, for this reason).
			continue
		}
		p := joinPath(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errorf("%s: %w", name, fs.ErrNotExist)
}

// firstLine is the first line of rpm's error output, for a one-line
// notice (rpm repeats a database error once per path).
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
