package lifecycle

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Manifest is what the rpm database records for one installed package.
type Manifest struct {
	Name  string
	NEVRA string
	Files []string
}

// Querier reads installed packages from the rpm database.
type Querier interface {
	// Manifest returns the manifest of the installed package with this
	// exact NEVRA.
	Manifest(nevra string) (Manifest, error)
	// Installed returns the manifests of every installed package called
	// name (several during an upgrade), or none.
	Installed(name string) ([]Manifest, error)
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
// two are never confused.
const queryFormat = `@%{NAME} %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n[%{FILENAMES}\n]`

func (r RPM) query(arg string) ([]Manifest, error) {
	cmd := r.Command
	if cmd == "" {
		cmd = "rpm"
	}
	args := []string{}
	if r.Root != "" && r.Root != "/" {
		args = append(args, "--root", r.Root)
	}
	// "--" keeps a NEVRA that starts with "-" from being read as an
	// option; exec never involves a shell, so metacharacters are inert.
	args = append(args, "-q", "--qf", queryFormat, "--", arg)
	stdout, stderr, err := run(cmd, args)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("querying rpm for %q: %s not found in $PATH: is rpm installed?", arg, cmd)
		}
		if strings.Contains(stdout.String()+stderr.String(), "is not installed") {
			return nil, fmt.Errorf("querying rpm for %q: %w", arg, ErrNotInstalled)
		}
		return nil, fmt.Errorf("querying rpm for %q: %v: %s", arg, err, strings.TrimSpace(stderr.String()))
	}
	return ParseManifests(stdout)
}

// Manifest implements Querier.
func (r RPM) Manifest(nevra string) (Manifest, error) {
	ms, err := r.query(nevra)
	if err != nil {
		return Manifest{}, err
	}
	switch len(ms) {
	case 0:
		return Manifest{}, fmt.Errorf("querying rpm for %q: %w", nevra, ErrNotInstalled)
	case 1:
		return ms[0], nil
	}
	// A reinstall has two instances of one NEVRA in the database for a
	// moment, and a multilib package one per arch; both share one name
	// and one set of binfmt.d files, so merge them.
	m := ms[0]
	for _, o := range ms[1:] {
		if o.Name != m.Name {
			return Manifest{}, fmt.Errorf("querying rpm for %q: matches %s and %s; pass the exact name-version-release", nevra, m.NEVRA, o.NEVRA)
		}
		m.Files = append(m.Files, o.Files...)
	}
	m.Files = dedupe(m.Files)
	return m, nil
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
			name, nevra, ok := strings.Cut(h, " ")
			if !ok || name == "" || nevra == "" || strings.Contains(nevra, " ") {
				return nil, fmt.Errorf("parsing rpm query output: line %d: bad header %q", n, h)
			}
			ms = append(ms, Manifest{Name: name, NEVRA: nevra})
			continue
		}
		if line == "" || line == "(none)" {
			continue
		}
		if len(ms) == 0 {
			return nil, fmt.Errorf("parsing rpm query output: line %d: file %q before any package header", n, line)
		}
		if !strings.HasPrefix(line, "/") {
			return nil, fmt.Errorf("parsing rpm query output: line %d: file %q is not an absolute path", n, line)
		}
		ms[len(ms)-1].Files = append(ms[len(ms)-1].Files, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parsing rpm query output: %w", err)
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
		return stdout, stderr, fmt.Errorf("%s", st)
	}
	return stdout, stderr, rerr
}

// lookPath finds name in $PATH, or takes it as it is when it has a slash.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/bin:/bin:/usr/sbin:/sbin"
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, fs.ErrNotExist)
}
