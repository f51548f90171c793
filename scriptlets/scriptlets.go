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
	r := strings.NewReplacer("%{name}", name, "%{version}", version, "%{release}", release)
	return Set{Post: r.Replace(Post), Preun: r.Replace(Preun), Postun: r.Replace(Postun)}
}
