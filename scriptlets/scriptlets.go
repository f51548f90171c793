// Package scriptlets holds the %post, %preun and %postun bodies of the
// package, the single copy that both the in-process build and
// qemu-user-static-go.spec use.
//
// The bodies name the package with rpm macros (%{name}, %{version},
// %{release}): rpmbuild expands them when it reads the spec, and Render
// expands them the same way for a build that does not go through rpmbuild.
// rpm gives a scriptlet no other way to learn which package it belongs to.
package scriptlets

import (
	_ "embed"
	"fmt"
	"strings"
)

// The raw bodies, as kept in this directory.
var (
	//go:embed post.sh
	Post string
	//go:embed preun.sh
	Preun string
	//go:embed postun.sh
	Postun string
)

// Set is the three bodies for one package.
type Set struct {
	Post, Preun, Postun string
}

// Render expands the package macros the bodies use, as rpmbuild would.
func Render(name, version, release string) Set {
	vars := map[string]string{"name": name, "version": version, "release": release}
	var s Set
	var errs [3]error
	s.Post, errs[0] = Expand("post.sh", Post, vars)
	s.Preun, errs[1] = Expand("preun.sh", Preun, vars)
	s.Postun, errs[2] = Expand("postun.sh", Postun, vars)
	for _, err := range errs {
		if err != nil {
			// The bodies are part of this package and use only these
			// macros; TestRenderLeavesNoMacro keeps it so.
			panic(err)
		}
	}
	return s
}

// Expand expands the rpm macros a scriptlet may use, the way
// rpmbuild expands them when it reads a spec: %{name}, %{version},
// %{release} and %{arch}, and %% for a literal %. nfpm copies scriptlets
// verbatim and rpm does not expand macros when it runs them, so without
// this the scriptlets in scriptlets/ would see "%{name}" literally.
//
// Any other %{...} is an error rather than being left for the shell:
// rpmbuild would expand it (or fail) and the two builds must agree. A %
// not followed by { or % is left alone, as rpmbuild leaves "${x%/*}".
func Expand(file, s string, vars map[string]string) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '%':
			b.WriteByte('%')
			s = s[i+2:]
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("expanding %s: unterminated macro %q", file, firstLine(s[i:]))
			}
			name := s[i+2 : i+end]
			v, ok := vars[name]
			if !ok {
				return "", fmt.Errorf("expanding %s: macro %%{%s} is not one the build defines (%s)", file, name, macroNames(vars))
			}
			b.WriteString(v)
			s = s[i+end+1:]
		default:
			b.WriteByte('%')
			s = s[i+1:]
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func macroNames(vars map[string]string) string {
	var names []string
	for _, n := range []string{"name", "version", "release", "arch"} {
		if _, ok := vars[n]; ok {
			names = append(names, "%{"+n+"}")
		}
	}
	return strings.Join(names, " ")
}
