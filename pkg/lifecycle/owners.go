package lifecycle

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"strings"
)

// Owner is an installed package that owns a file.
type Owner struct {
	Name string
	// Hooks is true when the package's %post calls binfmtctl's hooks (our
	// scriptlets or the rpm macros): its entries are its hooks' business,
	// and the helper's triggers leave them alone.
	Hooks bool
}

// OwnerQuerier finds the installed packages that own files and whether
// they call the hooks. RPM implements it; without it the triggers treat
// every file as owned by no package, so that they touch nothing.
type OwnerQuerier interface {
	// HookOwners maps each of paths that an installed package owns to
	// its owners, saying for each whether it calls the hooks.
	HookOwners(paths []string) (map[string][]Owner, error)
}

// hookMarker is in the %post of every package that calls the hooks: our
// scriptlets/post.sh and the %binfmtctl_post macro.
const hookMarker = "binfmtctl hook post "

// ownersFormat prints, for each package owning one of the files, a header,
// its %post shell-quoted (one shell word, however many lines), and its
// files. File names start with "/" and the header with "@@ ", so the
// three never mix; the quoted %post is read by its quotes, not by lines.
const ownersFormat = `@@ %{NAME}\n%{POSTIN:shescape}\n[%{FILENAMES}\n]`

// HookOwners implements OwnerQuerier with one rpm -qf for all paths.
func (r RPM) HookOwners(paths []string) (map[string][]Owner, error) {
	if len(paths) == 0 {
		return map[string][]Owner{}, nil
	}
	cmd := r.command()
	var args []string
	if r.Root != "" && r.Root != "/" {
		args = append(args, "--root", r.Root)
	}
	args = append(args, "-qf", "--qf", ownersFormat, "--")
	args = append(args, paths...)
	stdout, stderr, err := run(cmd, args)
	if err != nil && (stdout == nil || stdout.Len() == 0) {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errorf("asking rpm who owns %q: %s not found in $PATH: is rpm installed?", paths, cmd)
		}
		// Exit status 1: some file is owned by no package, which the
		// output says; anything else is a real failure.
		if stderr == nil || !strings.Contains(stderr.String()+stdout.String(), "not owned") {
			msg := ""
			if stderr != nil {
				msg = strings.TrimSpace(stderr.String())
			}
			return nil, errorf("asking rpm who owns %q: %v: %s", paths, err, msg)
		}
	}
	pkgs, perr := ParseHookOwners(stdout)
	if perr != nil {
		return nil, perr
	}
	want := map[string]bool{}
	for _, p := range paths {
		want[p] = true
	}
	out := map[string][]Owner{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			if want[f] && !hasOwner(out[f], p.Owner.Name) {
				out[f] = append(out[f], p.Owner)
			}
		}
	}
	return out, nil
}

func hasOwner(os []Owner, name string) bool {
	for _, o := range os {
		if o.Name == name {
			return true
		}
	}
	return false
}

// OwnedFiles is one package of ownersFormat's output.
type OwnedFiles struct {
	Owner Owner
	Files []string
}

// ParseHookOwners parses the output of ownersFormat. Lines rpm prints for a
// file no package owns ("file … is not owned by any package") are
// skipped.
func ParseHookOwners(r io.Reader) ([]OwnedFiles, error) {
	br := bufio.NewReader(r)
	var out []OwnedFiles
	n := 0
	for {
		line, err := br.ReadString('\n')
		if line == "" && err != nil {
			if err == io.EOF {
				return out, nil
			}
			return nil, errorf("parsing rpm's owners output: %w", err)
		}
		n++
		line = strings.TrimSuffix(line, "\n")
		name, ok := strings.CutPrefix(line, "@@ ")
		if ok {
			if ValidPackage(name) != nil {
				return nil, errorf("parsing rpm's owners output: line %d: bad package name %q", n, name)
			}
			post, lines, err := readShellWord(br)
			if err != nil {
				return nil, errorf("parsing rpm's owners output: %%post of %s: %w", name, err)
			}
			n += lines
			out = append(out, OwnedFiles{Owner: Owner{Name: name, Hooks: strings.Contains(post, hookMarker)}})
			continue
		}
		if strings.HasPrefix(line, "/") && len(out) > 0 {
			out[len(out)-1].Files = append(out[len(out)-1].Files, line)
		}
		if err != nil {
			return out, nil
		}
	}
}

// readShellWord reads what rpm's :shescape prints, then the newline after
// it: 'text' where each ' of the text is written '\”, or (none) for a
// package without the scriptlet. It returns the text and the number of
// lines read.
func readShellWord(br *bufio.Reader) (string, int, error) {
	first, err := br.Peek(1)
	if err != nil {
		return "", 0, errorf("want the quoted scriptlet: %w", err)
	}
	if first[0] != '\'' {
		line, err := br.ReadString('\n')
		if strings.TrimSuffix(line, "\n") != "(none)" {
			return "", 1, errorf("want a quoted scriptlet or (none), got %q (%v)", line, err)
		}
		return "", 1, nil
	}
	var b strings.Builder
	lines := 0
	for {
		// At a quote that opens a quoted part.
		br.ReadByte()
		part, err := br.ReadString('\'')
		if err != nil {
			return "", lines, errorf("unterminated quote")
		}
		lines += strings.Count(part, "\n")
		b.WriteString(part[:len(part)-1])
		next, err := br.Peek(3)
		if err == nil && string(next) == `\''` {
			br.Discard(2)
			b.WriteByte('\'')
			continue
		}
		c, err := br.ReadByte()
		switch {
		case err == io.EOF:
			return b.String(), lines, nil
		case err != nil:
			return "", lines, err
		case c != '\n':
			return "", lines, errorf("want a newline after the quoted scriptlet, got %q", c)
		}
		return b.String(), lines + 1, nil
	}
}
