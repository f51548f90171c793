// Package inspect reads any rpm package with go-rpmutils, without
// installing it, and reports what it is and what it would do to
// binfmt_misc: its NEVRA, whether its digests and signatures check out,
// its scriptlets and files, and the binfmt entries its binfmt.d files
// define.
//
// It also lints a package that ships binfmt.d files. A Report holds
// Problems; those of SeverityError make the package unfit to install:
//
//   - a binfmt.d file in the payload does not parse;
//   - an entry with flag F names an interpreter that the package neither
//     ships nor requires: the kernel opens it when the entry is
//     registered, so registration fails;
//   - an entry matches programs of the host's own architecture family,
//     which would send native programs through an emulator;
//   - %post registers entries but neither %preun nor %postun ever
//     unregisters them, so they outlive the package (Red Hat bug
//     1732178: Fedora's own qemu-user-static only restarts
//     systemd-binfmt).
//
// Damaged input (truncated, corrupted, not an rpm at all) is an error
// from File, never a panic: the structure of both headers is checked
// before go-rpmutils parses them.
//
// Both package formats are read: v4, which rpm 4 writes and build
// writes, and v6, rpm 6's default. For v6 the digests, the OpenPGP
// signatures and the stripped cpio payload are checked and read here
// (v6.go), because go-rpmutils 0.4 cannot.
package inspect
