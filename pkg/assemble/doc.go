// Package assemble builds the qemu-user-static-go RPM in-process: it finds
// the qemu interpreters, generates their binfmt.d files with package qemu,
// builds the binfmtctl helper, expands the scriptlets, and fills in the
// nfpm package definition in spec/nfpm.yaml.
//
// The package is written either by nfpm's own rpm packager, for nfpm's
// compression strings ("gzip", "zstd:best", "xz"...), or by rpmfile for
// the presets ("small", "fast", "smallest"), which stream the payload
// through zstd with a long window. Both take the same nfpm.Info, so both
// make the same package; only the payload's encoding differs.
//
// The same inputs give the same bytes: file times and the build time come
// from Options.SourceDateEpoch, and the build host is fixed by the spec.
package assemble
