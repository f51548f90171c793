// Package assemble builds the project's two RPMs in-process from spec/:
// qemu-user-static-go (spec/nfpm.yaml), with qemu's interpreters, their
// binfmt.d files and the helper, and binfmtctl (spec/binfmtctl.yaml), the
// helper alone for other packagers. It finds the interpreters, generates
// their binfmt.d files with package qemu, builds the binfmtctl helper,
// expands the scriptlets, reads the packages' file triggers from
// spec/triggers.yaml, and hands each package to rpmfile.
//
// Every package is written by rpmfile, which writes the dependencies and
// triggers rpmbuild writes; nfpm only parses the package definitions. (nfpm's
// own packager cannot write Requires(post) or file triggers, so nfpm's
// compression strings are refused.)
//
// The same inputs give the same bytes: file times and the build time come
// from Options.SourceDateEpoch, and the build host is fixed by the spec.
package assemble
