package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Trigger is one rpm file trigger of a test package. nfpm cannot write
// triggers, so a PackageSpec with Triggers is built with rpmbuild
// (BuildRPM chooses), which is the reference for what rpm does with them.
type Trigger struct {
	// Kind is the scriptlet section without "%": filetriggerin,
	// filetriggerun, filetriggerpostun, transfiletriggerin,
	// transfiletriggerun or transfiletriggerpostun.
	Kind string
	// Priority is the -P value; 0 leaves rpm's default (1000000).
	Priority int
	// Interpreter is the -p value, "<lua>" for rpm's embedded Lua; ""
	// means /bin/sh.
	Interpreter string
	// Paths are the path prefixes that fire the trigger.
	Paths []string
	// Body is the script, used as it is: rpmbuild's macro expansion is
	// escaped away, so a "%" in it stays a "%".
	Body string
}

// Section renders the trigger as a spec file section.
func (tr Trigger) Section() string {
	var b strings.Builder
	b.WriteString("%" + tr.Kind)
	if tr.Priority != 0 {
		fmt.Fprintf(&b, " -P %d", tr.Priority)
	}
	if tr.Interpreter != "" {
		b.WriteString(" -p " + tr.Interpreter)
	}
	b.WriteString(" -- " + strings.Join(tr.Paths, " ") + "\n")
	b.WriteString(escapeMacros(tr.Body))
	if !strings.HasSuffix(tr.Body, "\n") {
		b.WriteString("\n")
	}
	return b.String()
}

func escapeMacros(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// buildSpecRPM builds p with rpmbuild -bb from a spec written for it,
// with no automatic dependencies, so that the package holds exactly what
// p says, as the nfpm build does.
func buildSpecRPM(dir string, p PackageSpec) (string, error) {
	if _, err := exec.LookPath("rpmbuild"); err != nil {
		return "", fmt.Errorf("building %s with triggers needs rpmbuild: install with `apt-get install -y rpm` (%v)", p.Name, err)
	}
	top, err := os.MkdirTemp(dir, "rpmbuild-")
	if err != nil {
		return "", fmt.Errorf("building %s: %w", p.Name, err)
	}
	defer os.RemoveAll(top)
	src := filepath.Join(top, "files")
	if err := os.Mkdir(src, 0o755); err != nil {
		return "", fmt.Errorf("building %s: %w", p.Name, err)
	}

	var spec strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&spec, format, args...) }
	w("Name: %s\nVersion: %s\nRelease: %s\nSummary: test package %s\nLicense: MIT\n", p.Name, p.Version, p.Release, p.Name)
	if p.Arch == "noarch" {
		w("BuildArch: noarch\n")
	}
	w("AutoReqProv: no\n")
	for _, rel := range []struct {
		tag  string
		list []string
	}{{"Provides", p.Provides}, {"Requires", p.Requires}, {"Conflicts", p.Conflicts}, {"Obsoletes", p.Obsoletes}} {
		for _, v := range rel.list {
			w("%s: %s\n", rel.tag, v)
		}
	}
	w("%%global debug_package %%{nil}\n%%global _build_id_links none\n%%global __os_install_post %%{nil}\n")
	w("%%description\ntest package %s\n", p.Name)

	var install, list strings.Builder
	for i, f := range p.Files {
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
			if f.Type == "dir" {
				mode = 0o755
			}
		}
		dst := "%{buildroot}" + escapeMacros(f.Dst)
		fmt.Fprintf(&install, "mkdir -p %q\n", filepath.Dir(dst))
		attr := fmt.Sprintf("%%attr(%04o,root,root) ", mode)
		switch f.Type {
		case "dir":
			fmt.Fprintf(&install, "mkdir -p %q\n", dst)
			fmt.Fprintf(&list, "%s%%dir %s\n", attr, escapeMacros(f.Dst))
			continue
		case "symlink":
			fmt.Fprintf(&install, "ln -s %q %q\n", escapeMacros(f.Src), dst)
			fmt.Fprintf(&list, "%s\n", escapeMacros(f.Dst))
			continue
		case "ghost":
			fmt.Fprintf(&list, "%s%%ghost %s\n", attr, escapeMacros(f.Dst))
			continue
		case "config":
			attr += "%config "
		case "config|noreplace":
			attr += "%config(noreplace) "
		case "":
		default:
			return "", fmt.Errorf("building %s: file type %q of %q is not one the rpmbuild path knows", p.Name, f.Type, f.Dst)
		}
		from := f.Src
		if from == "" {
			from = filepath.Join(src, fmt.Sprintf("file%d", i))
			if err := os.WriteFile(from, f.Content, 0o644); err != nil {
				return "", fmt.Errorf("building %s: writing content of %q: %w", p.Name, f.Dst, err)
			}
		}
		fmt.Fprintf(&install, "cp %q %q\n", escapeMacros(from), dst)
		fmt.Fprintf(&list, "%s%s\n", attr, escapeMacros(f.Dst))
	}
	w("%%install\n%s\n%%files\n%s\n", install.String(), list.String())
	for _, s := range []struct{ name, body string }{
		{"pre", p.Pre}, {"post", p.Post}, {"preun", p.PreUn}, {"postun", p.PostUn},
		{"pretrans", p.PreTrans}, {"posttrans", p.PostTrans},
	} {
		if s.body != "" {
			w("%%%s\n%s\n", s.name, escapeMacros(s.body))
		}
	}
	for _, tr := range p.Triggers {
		w("%s\n", tr.Section())
	}

	specPath := filepath.Join(top, p.Name+".spec")
	if err := os.WriteFile(specPath, []byte(spec.String()), 0o644); err != nil {
		return "", fmt.Errorf("building %s: %w", p.Name, err)
	}
	args := []string{"-bb", "--nodeps", "--quiet", "--define", "_topdir " + top}
	if p.Arch != "noarch" {
		args = append(args, "--target", p.Arch)
	}
	cmd := exec.Command("rpmbuild", append(args, specPath)...)
	// Nothing from a user's ~/.rpmmacros.
	cmd.Env = append(os.Environ(), "HOME="+top)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s with rpmbuild: %v\n%s\n--- spec:\n%s", p.Name, err, out, spec.String())
	}
	name := fmt.Sprintf("%s-%s-%s.%s.rpm", p.Name, p.Version, p.Release, p.Arch)
	out := filepath.Join(dir, name)
	if err := os.Rename(filepath.Join(top, "RPMS", p.Arch, name), out); err != nil {
		return "", fmt.Errorf("building %s: rpmbuild wrote no %s: %w", p.Name, name, err)
	}
	return out, nil
}
